# host/tlskey.cmake — tgtlskey, a token key for TLS (tg_tlskey.h): a
# private key on a PKCS#11 token found and trust-checked through libtgp11,
# its certificate, signatures off the event loop (asynckey.c, OpenSSL ASYNC
# jobs and signing threads), presence watching and a signature counter.
# Shared by the gate (its server key on an HSM), the agent and the
# embedding API; `tokengate token` finds its keys with the same card
# evidence (tg_tlskey_key_evidence).
add_library(tgtlskey STATIC
  ${CMAKE_CURRENT_LIST_DIR}/tlskey/tlskey.c
  ${CMAKE_CURRENT_LIST_DIR}/tlskey/asynckey.c
  ${CMAKE_CURRENT_LIST_DIR}/tlskey/evidence.c)
tg_area_headers(tgtlskey ${CMAKE_CURRENT_LIST_DIR}/tlskey PUBLIC tg_tlskey.h)
# Public: tg_tlskey.h includes tg_err.h (tgcore) and OpenSSL's ssl.h.
find_package(Threads REQUIRED)
target_link_libraries(tgtlskey
  PUBLIC tgcore OpenSSL::SSL OpenSSL::Crypto
  PRIVATE tgp11 tgpivc Threads::Threads)
# evidence.c: PIV GET METADATA of an emulated token's card (tgpivc, PC/SC),
# shared with tgtokencli.
