# tests/unit/agent.cmake — unit tests of host/agent/ (tgagent): the
# configuration's flags and YAML file; the lookups of the gate's name.
tg_add_unit_test(test_agent_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_agent_config.c
  LIBS tgagent)
# The lookups of the gate's name off the loop (agent-int.h, resolve.c).
tg_add_unit_test(test_agent_resolve SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_agent_resolve.c
  LIBS tgagent tgtlskey PkgConfig::LIBEVENT OpenSSL::SSL)
target_include_directories(test_agent_resolve PRIVATE ${CMAKE_SOURCE_DIR}/host/agent)
# The token key for TLS refusing what it cannot use, on SoftHSM2: a wrong
# PIN, a missing key, a chain from a PEM file, certificates below the
# SSL_CTX's security level (tlskey.c).
tg_add_unit_test(test_agent_tlskey SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_agent_tlskey.c
  LIBS tgtlskey tgp11 OpenSSL::SSL
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh
  TIMEOUT 120)
