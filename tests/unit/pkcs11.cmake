# tests/unit/pkcs11.cmake — unit tests of libtgp11 (no token needed).
tg_add_unit_test(test_p11_uri
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_uri.c
  LIBS tgp11)
tg_add_unit_test(test_p11_trust
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_trust.c
  LIBS tgp11)
