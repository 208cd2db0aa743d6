# tests/unit/sim.cmake — unit tests of tokengate-sim's modules (issue 3):
# the vpcd frame codec and the state file I/O.
tg_add_unit_test(test_sim_vpcd
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_vpcd.c
          ${CMAKE_SOURCE_DIR}/firmware-sim/vpcd.c
  LIBS tgcore tglog PkgConfig::LIBEVENT)
target_include_directories(test_sim_vpcd PRIVATE ${CMAKE_SOURCE_DIR}/firmware-sim)
tg_add_unit_test(test_sim_statefile
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_statefile.c
          ${CMAKE_SOURCE_DIR}/firmware-sim/statefile.c
  LIBS tgcore tglog)
target_include_directories(test_sim_statefile PRIVATE ${CMAKE_SOURCE_DIR}/firmware-sim)
