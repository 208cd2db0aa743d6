# tests/unit/audit.cmake — unit tests of tgaudit (host/audit): the writer's
# chain, rotation, torn tails, fsync modes, unsafe files, failed writes and
# the verifier's refusals.
tg_add_unit_test(test_audit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit.c LIBS tgaudit)
