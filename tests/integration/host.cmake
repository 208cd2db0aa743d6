# tests/integration/host.cmake — integration tests of host/ (tokengate
# subcommands). Each area keeps its own clearly separated block; append yours
# below the last one.

# --- doctor ---
tg_add_script_test(doctor_integration
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_doctor.sh
  TIMEOUT 300)
# --- end doctor ---

# --- ca ---
tg_add_script_test(integration_ca SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_ca.sh)
tg_add_script_test(integration_ca_sim SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_ca_sim.sh)
tg_add_script_test(integration_ca_store SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_ca_store.sh)
# --- end ca ---
