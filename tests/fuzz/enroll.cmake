# tests/fuzz/enroll.cmake — fuzz target of what host/enroll/ parses itself
# next to libykpiv (public keys, the AES management-key exchange, the
# management key's metadata, ATTEST's DER, the PC/SC reader list); replayed
# over its corpus in the suite.
tg_add_fuzz(fuzz_piv_client
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_piv_client.c
  LIBS tgpivc)
