# host/token.cmake — tgtokencli, `tokengate token`: key commands on PKCS#11
# tokens through libtgp11, with PIV metadata (tgpivc) as evidence of a
# card key's origin.
add_library(tgtokencli STATIC ${CMAKE_CURRENT_LIST_DIR}/token/token.c)
# No public header: the command's entry point is declared in tg_cmd.h.
tg_area_headers(tgtokencli ${CMAKE_CURRENT_LIST_DIR}/token)
target_link_libraries(tgtokencli PRIVATE tgcmd tgp11 tgpivc tgcore OpenSSL::Crypto
                      PkgConfig::JANSSON)
