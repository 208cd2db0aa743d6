# host/embed.cmake — tokengate_embed (libtokengate.a), the embedding API:
# one public header, tokengate.h, with stable tokengate_* names, over
# tgtlskey. For C programs that want TLS with a token key (examples/).
add_library(tokengate_embed STATIC ${CMAKE_CURRENT_LIST_DIR}/embed/embed.c)
set_target_properties(tokengate_embed PROPERTIES OUTPUT_NAME tokengate)
tg_area_headers(tokengate_embed ${CMAKE_CURRENT_LIST_DIR}/embed PUBLIC tokengate.h)
# Public: tokengate.h includes OpenSSL's ssl.h.
target_link_libraries(tokengate_embed PUBLIC OpenSSL::SSL PRIVATE tgtlskey tgcore)
