# token/token.cmake — libtgtoken, the PIV card application as pure logic
# (issue 3). Included from token/CMakeLists.txt.
add_library(tgtoken STATIC
  ${CMAKE_CURRENT_LIST_DIR}/apdu.c
  ${CMAKE_CURRENT_LIST_DIR}/piv.c
  ${CMAKE_CURRENT_LIST_DIR}/mgmt_app.c
  ${CMAKE_CURRENT_LIST_DIR}/objects.c
  ${CMAKE_CURRENT_LIST_DIR}/pin.c
  ${CMAKE_CURRENT_LIST_DIR}/mgmt.c
  ${CMAKE_CURRENT_LIST_DIR}/keys.c
  ${CMAKE_CURRENT_LIST_DIR}/sign.c
  ${CMAKE_CURRENT_LIST_DIR}/attest.c
  ${CMAKE_CURRENT_LIST_DIR}/state.c
  ${CMAKE_CURRENT_LIST_DIR}/tok.c)
# Dependents see tg_tok.h only; tok-int.h stays inside (white-box tests add
# this folder themselves).
include(TgArea)
tg_area_headers(tgtoken ${CMAKE_CURRENT_LIST_DIR} PUBLIC tg_tok.h)
target_link_libraries(tgtoken PUBLIC tgcore OpenSSL::Crypto)
