# tests/integration/agent.cmake — `tokengate agent` end to end: curl ->
# agent (SoftHSM2 key) -> `tokengate gate` -> tests/lib/gate_upstream.py.
tg_add_script_test(integration_agent
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_agent.sh
  TIMEOUT 240
  ENV "TG_WATCH_WRAP_MODULE=$<TARGET_FILE:p11_watch_wrap>")

# The agent at the edges of its connections, against a stand-in gate
# (tests/lib/agent_standin.py): a retry when a pooled connection was closed
# under a request (never for a POST), the response and client timeouts,
# tcp mode's half-close, the exportable key's refusal.
tg_add_script_test(integration_agent_edges
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_agent_edges.sh
  TIMEOUT 240)

# tcp mode end to end through the real gate (tcp mode too): the client's
# half-close reaching an upstream that reads to EOF before it answers, and
# the idle timeouts of the gate (limits.idle_ms) and of the agent
# (--idle-timeout-ms), each with the gate's audit records.
tg_add_script_test(integration_agent_tcp
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_agent_tcp.sh
  TIMEOUT 240)

# The agent against gates that misbehave (tests/lib/agent_badgate.py:
# not TLS, closed before the handshake, an unknown CA, the wrong identity,
# answers that are not HTTP or cut short) and clients that send what HTTP
# does not allow: each refusal's status and text; start refusals, --check,
# the admin listener.
tg_add_script_test(integration_agent_faults
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_agent_faults.sh
  TIMEOUT 240)

# Clients that leave while their upstream handshake waits for the token's
# signature (the simulator with --sign-latency-ms 600): the paused signing
# job is never freed with its connection; the abandoned handshakes
# complete, the agent goes on serving and exits 0 at a SIGTERM during a
# signature, without a sanitizer report.
tg_add_script_test(integration_agent_leave_signing
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_agent_leave_signing.sh
  TIMEOUT 300)
