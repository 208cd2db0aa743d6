# tests/unit/gate.cmake — unit tests of host/gate/ (tggate): the request
# path's normal form, the policy parser, the decision and the connect
# limit's shares.
foreach(t test_gate_path test_gate_policy test_gate_decide test_gate_deadline)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tggate)
endforeach()
# failed handshakes per source (ratelimit.c), also from several threads
find_package(Threads REQUIRED)
tg_add_unit_test(test_gate_ratelimit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_ratelimit.c
  LIBS tggate Threads::Threads)
# HTTP/1.1 framing (host/gate/http.c): the reader's refusals and events, the writers' bytes.
tg_add_unit_test(test_gate_http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_http.c
  LIBS tggate)
# upstream.c against in-process loopback servers (plain, TLS, unix): the
# pool, refusals, timeouts, certificate and host checks of https upstreams.
tg_add_unit_test(test_gate_upstream SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_upstream.c
  LIBS tggate tgaudit PkgConfig::LIBEVENT PkgConfig::LIBEVENT_OPENSSL OpenSSL::SSL)
target_include_directories(test_gate_upstream PRIVATE ${CMAKE_SOURCE_DIR}/host/gate)
# The configuration (flags and YAML file), the inject_headers secrets and
# the metrics (tg_gate_config.h, tg_gate_secret.h, tg_gate_metrics.h).
tg_add_unit_test(test_gate_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_config.c
  LIBS tggate)
tg_add_unit_test(test_gate_secret SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_secret.c
  LIBS tggate)
tg_add_unit_test(test_gate_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_metrics.c
  LIBS tggate)
# The allocator's thresholds for the gate's and the agent's loops (tg_gate_alloc.h).
tg_add_unit_test(test_gate_alloc SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_alloc.c
  LIBS tggate)
# The admin listener on a real socket, asked by libevent's HTTP client.
tg_add_unit_test(test_gate_admin SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_admin.c
  LIBS tggate PkgConfig::LIBEVENT_PTHREADS)
# the session-ticket key file parser and the ticket callback's work
# (tls-int.h, an internal header of host/gate)
tg_add_unit_test(test_gate_tickets SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_tickets.c
  LIBS tggate)
target_include_directories(test_gate_tickets PRIVATE ${CMAKE_SOURCE_DIR}/host/gate)
# the server TLS set-up from a configuration (tls.c): good files, each
# refusal with its message, the CRL reload, the handshake's waits
tg_add_unit_test(test_gate_tls SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_tls.c
  LIBS tggate PkgConfig::LIBEVENT OpenSSL::SSL)
target_include_directories(test_gate_tls PRIVATE ${CMAKE_SOURCE_DIR}/host/gate)
# the same set-up with every allocation made to fail in turn (tg_test_failalloc.h)
tg_add_failalloc_test(test_gate_tls_failalloc
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_tls_failalloc.c
  LIBS tggate PkgConfig::LIBEVENT OpenSSL::SSL)
target_include_directories(test_gate_tls_failalloc PRIVATE ${CMAKE_SOURCE_DIR}/host/gate)
# authz mode (authz.c, gate-int.h): the certificate header's strict decoding,
# the cache of verdicts (generation, expiry, bounded sets) and the evaluation
# of a subrequest with a real verifier (tests/lib/gate_authz_pki.h).
tg_add_unit_test(test_gate_authz SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_authz.c
  LIBS tggate PkgConfig::LIBEVENT OpenSSL::SSL)
target_include_directories(test_gate_authz PRIVATE ${CMAKE_SOURCE_DIR}/host/gate)
# --- coverage: parsers ---
# refusals of the configuration checks and the YAML reader (config.c)
tg_add_unit_test(test_gatep_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gatep_config.c
  LIBS tggate)
# authz.c: the unix socket of an authz listener, a subrequest's headers,
# the escape decoder's digits (white-box: gate-int.h)
tg_add_unit_test(test_gatep_authz SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gatep_authz.c
  LIBS tggate PkgConfig::LIBEVENT OpenSSL::SSL)
target_include_directories(test_gatep_authz PRIVATE ${CMAKE_SOURCE_DIR}/host/gate)
# verify.c on certificates and CRLs made in the test: CA and CRL files, reloads, refusals
tg_add_unit_test(test_gatep_verify SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gatep_verify.c
  LIBS tggate OpenSSL::Crypto)
# policy.c: refusals of sections and values of the wrong shape
tg_add_unit_test(test_gatep_policy SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gatep_policy.c
  LIBS tggate)
# http.c: chunk extensions, long methods, status lines, extras without a value
tg_add_unit_test(test_gatep_http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gatep_http.c
  LIBS tggate PkgConfig::LIBEVENT)
# tickets.c: the key file read from disk (white-box: tls-int.h)
tg_add_unit_test(test_gatep_tickets SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gatep_tickets.c
  LIBS tggate OpenSSL::Crypto)
target_include_directories(test_gatep_tickets PRIVATE ${CMAKE_SOURCE_DIR}/host/gate)
# path.c and decide.c: buffers of exactly the size and one byte less, NULL arguments
tg_add_unit_test(test_gatep_path SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gatep_path.c
  LIBS tggate)
# admin.c: the admin socket's refusals (numeric addresses only)
tg_add_unit_test(test_gatep_admin SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gatep_admin.c
  LIBS tggate PkgConfig::LIBEVENT)
# every allocation of the parsers and checks made to fail in turn (tg_test_failalloc.h)
tg_add_failalloc_test(test_gatep_failalloc
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gatep_failalloc.c
  LIBS tggate PkgConfig::LIBEVENT OpenSSL::SSL)
target_include_directories(test_gatep_failalloc PRIVATE ${CMAKE_SOURCE_DIR}/host/gate)
# --- end ---
