# tests/integration/gate_tls.cmake — the gate's server TLS (tg_gate_tls.h)
# through gate_tls_probe, a non-blocking server loop on it, with openssl
# s_client and curl as the clients: client certificates from a CA made by
# `tokengate ca init` (hsm-operator leaves on SoftHSM2), refusals, session
# resumption (TLS 1.3 and 1.2, shared and rotated ticket keys, revocation
# after the session began) and the server key on SoftHSM2 signing off the
# loop (SSL_MODE_ASYNC pauses).
add_executable(gate_tls_probe ${CMAKE_CURRENT_SOURCE_DIR}/integration/gate_tls_probe.c)
target_link_libraries(gate_tls_probe PRIVATE tggate)
set_target_properties(gate_tls_probe PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
tg_add_script_test(integration_gate_tls
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_gate_tls.sh
  ENV "TG_GATE_TLS_PROBE=$<TARGET_FILE:gate_tls_probe>"
  TIMEOUT 600)
