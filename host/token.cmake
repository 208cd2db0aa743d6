# host/token.cmake — `tokengate token` (issue 4), added to tghost: one file
# per subcommand (tok-int.h holds what they share).
target_sources(tghost PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/token/token.c
  ${CMAKE_CURRENT_LIST_DIR}/token/list.c
  ${CMAKE_CURRENT_LIST_DIR}/token/keygen.c
  ${CMAKE_CURRENT_LIST_DIR}/token/sign.c
  ${CMAKE_CURRENT_LIST_DIR}/token/cert.c
  ${CMAKE_CURRENT_LIST_DIR}/token/csr.c
  ${CMAKE_CURRENT_LIST_DIR}/token/evidence.c
  ${CMAKE_CURRENT_LIST_DIR}/token/show.c)
target_link_libraries(tghost PUBLIC tgp11 PkgConfig::JANSSON)
