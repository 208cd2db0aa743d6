# tests/unit/core.cmake — unit tests of the shared core (token/core/) and the
# source format check.

# One executable per tgcore module, each linked with tgcore only.
foreach(t test_buf test_err test_secret test_hex test_dec test_pkey test_mgm test_file test_pin_src test_cli test_piv)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tgcore)
endforeach()

tg_add_unit_test(test_log
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_log.c
  LIBS tglog PkgConfig::JANSSON)

# Every tracked *.c/*.h must match .clang-format.
tg_add_script_test(format_check
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/unit/format-check.sh
  LABELS unit
  TIMEOUT 120)
