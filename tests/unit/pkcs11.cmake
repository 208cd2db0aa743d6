# tests/unit/pkcs11.cmake — unit tests of libtgp11 (no token needed).
tg_add_unit_test(test_p11_uri
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_uri.c
  LIBS tgp11)
# White-box (p11-int.h: a key struct without a token, for the refusal's message).
tg_add_unit_test(test_p11_trust
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_trust.c
  LIBS tgp11 PkgConfig::LIBP11 PkgConfig::P11KIT)
target_include_directories(test_p11_trust PRIVATE ${CMAKE_SOURCE_DIR}/pkcs11)
