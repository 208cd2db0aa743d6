# tests/unit/audit.cmake — unit tests of tgaudit (host/audit): the writer's
# chain, rotation, torn tails, fsync modes, unsafe files, failed writes and
# the verifier's refusals; a failing sync.
tg_add_unit_test(test_audit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit.c LIBS tgaudit)
# a failing fdatasync (wrapped by the linker): writes fail closed, then resume
tg_add_unit_test(test_audit_sync SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_audit_sync.c
  LIBS tgaudit)
target_link_options(test_audit_sync PRIVATE -Wl,--wrap=fdatasync)
