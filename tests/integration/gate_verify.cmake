# tests/integration/gate_verify.cmake — the gate's client-certificate
# verifier (tggate) on real certificates: a CA made by `tokengate ca
# init`, hsm-operator leaves from SoftHSM2, revocation by `ca revoke` + `ca
# crl`, and bad certificates made with openssl.
add_executable(gate_verify_probe ${CMAKE_CURRENT_SOURCE_DIR}/integration/gate_verify_probe.c)
target_link_libraries(gate_verify_probe PRIVATE tggate)
set_target_properties(gate_verify_probe PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
tg_add_script_test(integration_gate_verify
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_gate_verify.sh
  ENV "TG_GATE_VERIFY_PROBE=$<TARGET_FILE:gate_verify_probe>")
# a device-attested leaf from the simulator
tg_add_script_test(integration_gate_verify_sim
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_gate_verify.sh ARGS sim
  ENV "TG_GATE_VERIFY_PROBE=$<TARGET_FILE:gate_verify_probe>")
