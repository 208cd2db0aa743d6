# tests/integration/enroll.cmake — `tokengate enroll` end to end (issue 5
# item 3): on the simulated PIV token behind a private pcscd and on
# SoftHSM2, plus every refusal with its message.
tg_add_script_test(e2e_enroll_sim
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_enroll_sim.sh
  LABELS e2e integration TIMEOUT 300)
tg_add_script_test(integration_enroll_refusals
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_enroll_refusals.sh
  LABELS integration TIMEOUT 300)
tg_add_script_test(e2e_enroll_hsm
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_enroll_hsm.sh
  LABELS e2e integration TIMEOUT 300)
