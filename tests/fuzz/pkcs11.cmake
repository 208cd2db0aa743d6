# tests/fuzz/pkcs11.cmake — fuzz targets of libtgp11 (docs/fuzzing.md).
tg_add_fuzz(fuzz_p11_uri
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_p11_uri.c
  LIBS tgp11)
