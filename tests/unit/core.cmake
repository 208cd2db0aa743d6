# tests/unit/core.cmake — unit tests of the shared core (token/core/) and the
# source format check.

tg_add_unit_test(test_buf
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_buf.c
  LIBS tgcore)

tg_add_unit_test(test_err
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_err.c
  LIBS tgcore)

tg_add_unit_test(test_secret
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_secret.c
  LIBS tgcore)

tg_add_unit_test(test_hex
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hex.c
  LIBS tgcore)

tg_add_unit_test(test_pkey
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_pkey.c
  LIBS tgcore)

tg_add_unit_test(test_mgm
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_mgm.c
  LIBS tgcore)

tg_add_unit_test(test_log
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_log.c
  LIBS tglog PkgConfig::JANSSON)

# Every tracked *.c/*.h must match .clang-format.
tg_add_script_test(format_check
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/unit/format-check.sh
  LABELS unit
  TIMEOUT 120)
