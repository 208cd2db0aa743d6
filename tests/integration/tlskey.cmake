# tests/integration/tlskey.cmake — the token key for TLS (tg_tlskey.h)
# against SoftHSM2: handshakes signed on the token (inline and off the
# loop), the signature counter, refusals, and presence through
# p11_watch_wrap (defined in pkcs11.cmake), which hides the token on demand.
tg_add_unit_test(test_tlskey_softhsm
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tlskey_softhsm.c
  LIBS tgtlskey tgp11
  LABELS integration
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh
  TIMEOUT 300)
target_compile_definitions(test_tlskey_softhsm PRIVATE
  TG_P11_WATCH_WRAP_PATH="$<TARGET_FILE:p11_watch_wrap>")
add_dependencies(test_tlskey_softhsm p11_watch_wrap)
