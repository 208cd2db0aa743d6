# tests/fuzz/token.cmake — fuzz target of the PIV token core's APDU entry
# point (with state); its corpus replays in the suite (label fuzz).
tg_add_fuzz(fuzz_apdu
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_apdu.c
  LIBS tgtoken)
# white-box: tok-int.h (tok_dup)
target_include_directories(fuzz_apdu PRIVATE ${CMAKE_SOURCE_DIR}/token)
