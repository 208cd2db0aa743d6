# host/token.cmake — `tokengate token` (issue 4), added to tghost.
target_sources(tghost PRIVATE ${CMAKE_CURRENT_LIST_DIR}/token/token.c)
target_link_libraries(tghost PUBLIC tgp11 PkgConfig::JANSSON)
