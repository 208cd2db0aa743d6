# host/audit.cmake — tgaudit, the gate's tamper-evident audit log (the
# writer with its hash chain, rotation and fsync modes) and `tokengate audit
# verify`, which checks the chain.
add_library(tgaudit STATIC
  ${CMAKE_CURRENT_LIST_DIR}/audit/log.c
  ${CMAKE_CURRENT_LIST_DIR}/audit/verify.c
  ${CMAKE_CURRENT_LIST_DIR}/audit/cmd_audit.c)
# The gate writes through tg_audit.h; the verifier is public for its tests
# and fuzz target.
tg_area_headers(tgaudit ${CMAKE_CURRENT_LIST_DIR}/audit PUBLIC tg_audit.h tg_audit_verify.h)
# Public: tg_audit.h includes tg_err.h and jansson.h.
target_link_libraries(tgaudit
  PUBLIC tgcore PkgConfig::JANSSON
  PRIVATE tgcmd OpenSSL::Crypto)
# batch mode's sync thread
find_package(Threads REQUIRED)
target_link_libraries(tgaudit PRIVATE Threads::Threads)
