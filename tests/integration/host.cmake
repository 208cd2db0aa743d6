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

# --- ca hsm ---
# level hsm-operator on SoftHSM2: hsm_tokens, the challenge signature, a
# planted public key, a module whose constructor would run, pin-value=
add_library(tg_marker_module MODULE ${CMAKE_CURRENT_SOURCE_DIR}/integration/marker_module.c)
set_target_properties(tg_marker_module PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
# loaded by plain python3 in the test (to show it does write its marker):
# no sanitizer runtime in it
target_compile_options(tg_marker_module PRIVATE -fno-sanitize=all)
target_link_options(tg_marker_module PRIVATE -fno-sanitize=all)
tg_add_script_test(integration_ca_hsm SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_ca_hsm.sh
  ENV "TG_MARKER_MODULE=$<TARGET_FILE:tg_marker_module>")
# --- end ca hsm ---
