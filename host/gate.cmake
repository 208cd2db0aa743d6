# host/gate.cmake — tggate, the gate's core: the request path's normal
# form (tg_gate_path.h), the per-route policy in YAML (tg_gate_policy.h),
# the decision (tg_gate_decide.h) — pure, no I/O — and the client-certificate
# verifier (tg_gate_verify.h: certificates in, verdict out, no sockets). The
# `tokengate gate` command, its TLS, HTTP and audit parts come later and call
# these.
add_library(tggate STATIC
  ${CMAKE_CURRENT_LIST_DIR}/gate/path.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/policy.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/decide.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/verify.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/tls.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/tickets.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/asynckey.c)
tg_area_headers(tggate ${CMAKE_CURRENT_LIST_DIR}/gate PUBLIC
  tg_gate_path.h tg_gate_policy.h tg_gate_decide.h tg_gate_verify.h
  tg_gate_tls.h)
# Public: the headers include tg_err.h (tgcore), the CA's provenance and
# attestation types (tg_prov.h, tg_att.h) and OpenSSL's X509 types.
target_link_libraries(tggate PUBLIC tgcore tgca OpenSSL::Crypto PRIVATE tgyaml)
# The gate's TLS (tls.c, tickets.c, asynckey.c): libssl, the server key on
# a token through libtgp11, signing threads.
find_package(Threads REQUIRED)
target_link_libraries(tggate PUBLIC OpenSSL::SSL PRIVATE tgp11 Threads::Threads)
