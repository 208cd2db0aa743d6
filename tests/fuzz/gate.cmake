# tests/fuzz/gate.cmake — fuzz targets of the gate's pure core: a request
# line through path normalization and the decision under a fixed policy;
# and the policy parser alone; each replayed over its corpus in the suite.
tg_add_fuzz(fuzz_gate_decide
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_gate_decide.c
  LIBS tggate)
tg_add_fuzz(fuzz_gate_policy
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_gate_policy.c
  LIBS tggate)
tg_add_fuzz(fuzz_gate_config
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_gate_config.c
  LIBS tggate)
# the session-ticket key file parser
tg_add_fuzz(fuzz_gate_tickets
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_gate_tickets.c
  LIBS tggate)
# The request path before any upstream: request line and headers through the
# HTTP reader, path normalization, the decision and the upstream head writer.
tg_add_fuzz(fuzz_gate_http
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_gate_http.c
  LIBS tggate)
# authz mode: a subrequest's raw bytes through the HTTP reader, the
# certificate header decoded and verified (a cache kept across inputs),
# the original URI normalized and decided.
tg_add_fuzz(fuzz_gate_authz
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_gate_authz.c
  LIBS tggate)
target_include_directories(fuzz_gate_authz PRIVATE ${CMAKE_SOURCE_DIR}/host/gate
  ${CMAKE_SOURCE_DIR}/tests/lib)
