# tests/integration/tlskey.cmake — the token key for TLS (tg_tlskey.h)
# against SoftHSM2: handshakes signed on the token (inline and off the
# loop), the signature counter, refusals, and presence through
# p11_watch_wrap (defined in pkcs11.cmake), which hides the token on demand.
tg_add_wrap_test(test_tlskey_softhsm
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tlskey_softhsm.c
  LIBS tgtlskey tgp11
  TIMEOUT 300)

# The embedding API's example (examples/curl-client.c) against a running
# gate (tests/lib/gate_lib.sh).
tg_add_script_test(integration_embed_curl
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_embed_curl.sh
  ENV "TG_CURL_CLIENT=$<TARGET_FILE:curl-client>"
  TIMEOUT 240)

# The same on a simulated PIV card through OpenSC: card evidence, and
# removal and insertion of the card (tlskey_probe, driven by the script).
add_executable(tlskey_probe ${CMAKE_CURRENT_LIST_DIR}/tlskey_probe.c)
target_link_libraries(tlskey_probe PRIVATE tgtlskey)
target_include_directories(tlskey_probe PRIVATE ${CMAKE_SOURCE_DIR}/tests/lib)
set_target_properties(tlskey_probe PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
tg_add_script_test(integration_tlskey_sim
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_tlskey_sim.sh
  ENV "TG_TLSKEY_PROBE=$<TARGET_FILE:tlskey_probe>"
  TIMEOUT 300)

# The embedding API's functions and result codes (tokengate.h) on SoftHSM2.
tg_add_unit_test(test_embed_softhsm
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_embed_softhsm.c
  LIBS tokengate_embed tgp11
  LABELS integration
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh
  TIMEOUT 300)
