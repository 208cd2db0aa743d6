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
# tokengate-sim's manufacturer CA (mfrca.c) and the vpcd connection shell
# over a local listener standing in for vpcd (vpcd.c).
tg_add_unit_test(test_sim_mfrca
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_mfrca.c
          ${CMAKE_SOURCE_DIR}/firmware-sim/mfrca.c
  LIBS tgcore tglog)
target_include_directories(test_sim_mfrca PRIVATE ${CMAKE_SOURCE_DIR}/firmware-sim)
tg_add_unit_test(test_sim_vpcd_conn
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_vpcd_conn.c
          ${CMAKE_SOURCE_DIR}/firmware-sim/vpcd.c
  LIBS tgcore tglog PkgConfig::LIBEVENT)
target_include_directories(test_sim_vpcd_conn PRIVATE ${CMAKE_SOURCE_DIR}/firmware-sim)
tg_add_unit_test(test_sim_touch
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_touch.c
          ${CMAKE_SOURCE_DIR}/firmware-sim/touch.c
  LIBS tgcore tglog)
target_include_directories(test_sim_touch PRIVATE ${CMAKE_SOURCE_DIR}/firmware-sim)
# tokengate-sim's modules under allocation failure (tg_test_failalloc.h).
tg_add_failalloc_test(test_sim_failalloc
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sim_failalloc.c
          ${CMAKE_SOURCE_DIR}/firmware-sim/mfrca.c
          ${CMAKE_SOURCE_DIR}/firmware-sim/statefile.c
          ${CMAKE_SOURCE_DIR}/firmware-sim/vpcd.c
  LIBS tgcore tglog PkgConfig::LIBEVENT)
target_include_directories(test_sim_failalloc PRIVATE ${CMAKE_SOURCE_DIR}/firmware-sim)
