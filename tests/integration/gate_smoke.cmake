# tests/integration/gate_smoke.cmake — the `tokengate gate` process in tcp
# mode end to end (real CA, SoftHSM2 client key, curl, a python upstream):
# start, splice, tls-reject, reload, stop. The full gate suite is gate.cmake.
tg_add_script_test(integration_gate_smoke
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_gate_smoke.sh
  TIMEOUT 180)
