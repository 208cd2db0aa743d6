# tests/fuzz/enroll.cmake — fuzz target of host/enroll/ parsers (the PIV
# client's response parsers and the PC/SC reader list); replayed over its
# corpus in the suite.
tg_add_fuzz(fuzz_piv_client
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_piv_client.c
  LIBS tgpivc)
