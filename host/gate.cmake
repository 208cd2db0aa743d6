# host/gate.cmake — tggate, the gate's pure core: the request path's normal
# form (tg_gate_path.h), the per-route policy in YAML (tg_gate_policy.h) and
# the decision (tg_gate_decide.h). No I/O: the `tokengate gate` command, its
# TLS, HTTP and audit parts come later and call this one decision.
add_library(tggate STATIC
  ${CMAKE_CURRENT_LIST_DIR}/gate/path.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/policy.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/decide.c)
tg_area_headers(tggate ${CMAKE_CURRENT_LIST_DIR}/gate PUBLIC
  tg_gate_path.h tg_gate_policy.h tg_gate_decide.h)
# Public: the headers include tg_err.h (tgcore) and the CA's provenance and
# attestation types (tg_prov.h, tg_att.h: levels, PIN and touch policies).
target_link_libraries(tggate PUBLIC tgcore tgca PRIVATE PkgConfig::YAML)
