# host/agent.cmake — tgagent, `tokengate agent`: the configuration
# (tg_agent_config.h: flags and YAML, pure), and the process around it
# (agent-int.h: one libevent loop, listeners, mutual TLS to the gate with
# the token key through tg_tlskey, the http and tcp modes, presence, the
# admin listener). Uses the gate's public headers only: tg_gate_config.h
# (address and URL parsing), tg_gate_http.h (HTTP/1.1 framing),
# tg_gate_path.h (request-target forms), tg_gate_deadline.h (connect
# limits) and tg_gate_tls.h (the handshake's events).
add_library(tgagent STATIC
  ${CMAKE_CURRENT_LIST_DIR}/agent/config.c
  ${CMAKE_CURRENT_LIST_DIR}/agent/cmd_agent.c
  ${CMAKE_CURRENT_LIST_DIR}/agent/server.c
  ${CMAKE_CURRENT_LIST_DIR}/agent/upstream.c
  ${CMAKE_CURRENT_LIST_DIR}/agent/resolve.c
  ${CMAKE_CURRENT_LIST_DIR}/agent/http.c
  ${CMAKE_CURRENT_LIST_DIR}/agent/tcp.c)
tg_area_headers(tgagent ${CMAKE_CURRENT_LIST_DIR}/agent PUBLIC tg_agent_config.h)
# Public: tg_agent_config.h includes tg_gate_config.h (tggate's public headers).
target_link_libraries(tgagent PUBLIC tgcore tggate PRIVATE tgcmd tgyaml)
target_link_libraries(tgagent PRIVATE PkgConfig::LIBEVENT PkgConfig::LIBEVENT_OPENSSL
  OpenSSL::SSL)
# The token key for TLS (signatures off the loop, presence events).
target_link_libraries(tgagent PRIVATE tgtlskey)
