# tests/interop/gate.cmake — curl and openssl s_client (OpenSSL's pkcs11
# engine, a SoftHSM2 key enrolled by `tokengate enroll`) against
# `tokengate gate`.
tg_add_script_test(interop_gate
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_gate_interop.sh
  LABELS interop TIMEOUT 240)
