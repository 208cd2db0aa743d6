# tests/interop/agent_interop.cmake — stunnel (client mode, pkcs11 engine,
# a SoftHSM2 key) against `tokengate gate`, and Python's standard library
# (urllib, http.client) through `tokengate agent`.
tg_add_script_test(interop_agent
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_agent_interop.sh
  LABELS interop TIMEOUT 240)
