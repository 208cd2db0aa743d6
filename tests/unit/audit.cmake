# tests/unit/audit.cmake — unit tests of tgaudit (host/audit): the writer's
# chain, rotation, torn tails, fsync modes, unsafe files, failed writes and
# the verifier's refusals, batch mode's sync thread, a failing sync.
tg_add_unit_test(test_audit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit.c LIBS tgaudit)
# fdatasync wrapped: a test makes it fail (writes fail closed, then resume)
target_link_options(test_audit PRIVATE -Wl,--wrap=fdatasync)
