# tests/integration/audit.cmake — `tokengate audit verify` on intact and
# tampered audit logs.
tg_add_script_test(integration_audit
  SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_audit.sh
  TIMEOUT 120)
