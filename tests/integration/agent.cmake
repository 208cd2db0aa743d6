# tests/integration/agent.cmake — `tokengate agent` end to end: curl ->
# agent (SoftHSM2 key) -> `tokengate gate` -> tests/lib/gate_upstream.py.
tg_add_script_test(integration_agent
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_agent.sh
  TIMEOUT 240
  ENV "TG_WATCH_WRAP_MODULE=$<TARGET_FILE:p11_watch_wrap>")
