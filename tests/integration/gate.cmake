# tests/integration/gate.cmake — `tokengate gate` running: a real gate on
# random ports in front of tests/lib/gate_upstream.py, clients from
# tests/lib/gate_client.py, curl and openssl s_client (tests/lib/gate_lib.sh).
# Each script asserts the client's outcome and the audit record.
foreach(t certs resume http paths stream ops audit tcp sim fds bruteforce)
  tg_add_script_test(integration_gate_${t}
    SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_gate_${t}.sh
    TIMEOUT 240)
endforeach()
# authz mode (nginx auth_request endpoint) asked by curl as nginx asks, on a
# unix socket and a loopback port.
tg_add_script_test(integration_gate_authz
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_gate_authz.sh
  TIMEOUT 240)
# the running gate against upstreams that answer oddly and set-ups that
# cannot work (interim and unasked 101 responses, broken bodies, idle
# pooled connections closing or talking, unresolvable and TLS-closing
# upstreams, [::1] and a failed audit rotation, tcp mode with a refusing
# or resetting upstream, start-up and reload refusals).
tg_add_script_test(integration_gate_runtime
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_gate_runtime.sh
  TIMEOUT 240)
