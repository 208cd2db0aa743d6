# host/gate.cmake — tggate, the gate's core: the request path's normal
# form (tg_gate_path.h), the per-route policy in YAML (tg_gate_policy.h),
# the decision (tg_gate_decide.h) — pure, no I/O — and the client-certificate
# verifier (tg_gate_verify.h: certificates in, verdict out, no sockets) —
# and the `tokengate gate` process built around them (gate-int.h: server,
# connections, tcp, http and authz modes, upstreams, TLS, configuration, metrics).
add_library(tggate STATIC
  ${CMAKE_CURRENT_LIST_DIR}/gate/path.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/policy.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/proxy.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/authz.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/upstream.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/deadline.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/ratelimit.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/decide.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/verify.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/server.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/conn.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/tcp.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/cmd_gate.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/http.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/config.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/secret.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/metrics.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/admin.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/tls.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/tickets.c
  ${CMAKE_CURRENT_LIST_DIR}/gate/alloc.c)
tg_area_headers(tggate ${CMAKE_CURRENT_LIST_DIR}/gate PUBLIC
  tg_gate_path.h tg_gate_policy.h tg_gate_decide.h tg_gate_verify.h
  tg_gate_http.h
  tg_gate_config.h
  tg_gate_secret.h
  tg_gate_metrics.h
  tg_gate_tls.h
  tg_gate_alloc.h
  tg_gate_deadline.h
  tg_gate_ratelimit.h)
# Public: the headers include tg_err.h (tgcore), the CA's provenance and
# attestation types (tg_prov.h, tg_att.h) and OpenSSL's X509 types.
target_link_libraries(tggate PUBLIC tgcore tgca OpenSSL::Crypto PRIVATE tgyaml)
# server.c, conn.c, tcp.c, cmd_gate.c: the `tokengate gate` process
# (worker threads with libevent loops, TLS bufferevents, the audit log).
target_link_libraries(tggate PRIVATE tgcmd)
target_link_libraries(tggate PRIVATE tgaudit)
target_link_libraries(tggate PRIVATE PkgConfig::LIBEVENT)
target_link_libraries(tggate PRIVATE PkgConfig::LIBEVENT_OPENSSL)
target_link_libraries(tggate PRIVATE PkgConfig::LIBEVENT_PTHREADS)
target_link_libraries(tggate PRIVATE PkgConfig::JANSSON)
target_link_libraries(tggate PRIVATE OpenSSL::SSL)
# http.c: HTTP/1.1 framing over http-parser; its header takes libevent's evbuffer.
target_link_libraries(tggate PUBLIC PkgConfig::LIBEVENT)
target_link_libraries(tggate PRIVATE tg_http_parser)
# proxy.c and upstream.c (http mode, upstream connections): libevent with
# OpenSSL bufferevents and evdns, jansson for audit records.
target_link_libraries(tggate PRIVATE tgaudit PkgConfig::LIBEVENT PkgConfig::LIBEVENT_OPENSSL PkgConfig::JANSSON OpenSSL::SSL)
# config.c, secret.c, metrics.c, admin.c: tg_gate_config.h includes tg_audit.h
# and tg_gate_metrics.h libevent's headers; the admin listener is evhttp.
target_link_libraries(tggate PUBLIC tgaudit)
target_link_libraries(tggate PUBLIC PkgConfig::LIBEVENT)

# The gate's TLS (tls.c, tickets.c): libssl, the server key on a token
# (tgtlskey: libtgp11, signing threads), the libevent events a
# non-blocking handshake waits on, a pending signature's among them
# (tg_gate_hs_io, shared with the agent); the workers' threads.
find_package(Threads REQUIRED)
target_link_libraries(tggate PUBLIC OpenSSL::SSL PRIVATE tgtlskey Threads::Threads)
