# tests/fuzz/audit.cmake — fuzz target of the audit chain's verifier; its
# corpus replays in the suite (label fuzz).
tg_add_fuzz(fuzz_audit_verify
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_audit_verify.c
  LIBS tgaudit)
