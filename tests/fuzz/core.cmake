# tests/fuzz/core.cmake — fuzz targets of the shared core (token/core/).
# See docs/fuzzing.md.

tg_add_fuzz(fuzz_tlv
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_tlv.c
  LIBS tgcore)
