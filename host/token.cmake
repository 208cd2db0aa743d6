# host/token.cmake — tgtokencli, `tokengate token`: key commands on PKCS#11
# tokens through libtgp11, with PIV metadata as evidence of a card key's
# origin (tgtlskey's tg_tlskey_key_evidence, on tgpivc), and CSRs signed on
# the token (tgcsr). One file per
# subcommand; tok-int.h holds what they share.
add_library(tgtokencli STATIC
  ${CMAKE_CURRENT_LIST_DIR}/token/token.c
  ${CMAKE_CURRENT_LIST_DIR}/token/list.c
  ${CMAKE_CURRENT_LIST_DIR}/token/keygen.c
  ${CMAKE_CURRENT_LIST_DIR}/token/sign.c
  ${CMAKE_CURRENT_LIST_DIR}/token/cert.c
  ${CMAKE_CURRENT_LIST_DIR}/token/csr.c
  ${CMAKE_CURRENT_LIST_DIR}/token/evidence.c
  ${CMAKE_CURRENT_LIST_DIR}/token/show.c)
# No public header: the command's entry point is declared in tg_cmd.h.
tg_area_headers(tgtokencli ${CMAKE_CURRENT_LIST_DIR}/token)
target_link_libraries(tgtokencli PRIVATE tgcmd tgp11 tgtlskey tgcsr tgcore OpenSSL::Crypto
                      PkgConfig::JANSSON)
