# tests/fuzz/sim.cmake — fuzz target of tokengate-sim's vpcd frame codec
# (the parser of the bytes pcscd's vpcd driver sends); its corpus replays in
# the suite (label fuzz).
tg_add_fuzz(fuzz_vpcd
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_vpcd.c
          ${CMAKE_SOURCE_DIR}/firmware-sim/vpcd.c
  LIBS tgcore tglog PkgConfig::LIBEVENT)
target_include_directories(fuzz_vpcd PRIVATE ${CMAKE_SOURCE_DIR}/firmware-sim)
