# tests/fault/gate.cmake — fault tests (label "fault"): the system under a
# fault, asserting its behaviour and its audit records. The ones that
# started as integration tests keep their name and get the label too (see
# the list below); docs/threat-model.md has the whole table.
foreach(t upstream clients agent_token)
  tg_add_script_test(fault_${t}
    SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/fault/test_fault_${t}.sh
    LABELS fault integration TIMEOUT 300)
endforeach()

# Fault tests that began as integration tests of one part:
#   integration_gate_audit     the gate killed (SIGKILL) under load: the chain
#                              verifies, every forwarded request has its record;
#                              the audit log's filesystem full: refused, metric
#                              and log say why, service back with the space
#   integration_gate_smoke     the audit log over a file size limit (fail closed,
#                              recovery after rotation); a broken policy on SIGHUP
#   integration_gate_fds       descriptors exhausted (a low ulimit -n): new
#                              connections wait, established ones served, recovery
#   integration_gate_ops       SIGHUP reloads in a loop under load: zero failed
#                              requests; a broken policy keeps the old one
#   integration_gate_http      oversized and malformed heads: limits enforced
#   integration_gate_proxy     slowloris 408, stalled bodies, a dead upstream
#   integration_gate_bruteforce  failed handshakes per source address
#   integration_sim_persist    the simulator killed (kill -9), even right after a
#                              wrong PIN: PIN counters and keys intact
#   integration_sim_removal    pcscd restarted: the simulator reconnects
#   integration_agent_presence the token removed and inserted under the agent
set_property(TEST integration_gate_audit integration_gate_smoke integration_gate_fds
  integration_gate_ops integration_gate_http integration_gate_proxy integration_gate_bruteforce
  integration_sim_persist integration_sim_removal integration_agent_presence
  APPEND PROPERTY LABELS fault)
