# token/token.cmake — libtgtoken, the PIV card application as pure logic
# (issue 3). Included from token/CMakeLists.txt.
add_library(tgtoken STATIC
  ${CMAKE_CURRENT_LIST_DIR}/apdu.c
  ${CMAKE_CURRENT_LIST_DIR}/piv.c
  ${CMAKE_CURRENT_LIST_DIR}/objects.c
  ${CMAKE_CURRENT_LIST_DIR}/pin.c
  ${CMAKE_CURRENT_LIST_DIR}/mgmt.c
  ${CMAKE_CURRENT_LIST_DIR}/keys.c
  ${CMAKE_CURRENT_LIST_DIR}/sign.c
  ${CMAKE_CURRENT_LIST_DIR}/attest.c
  ${CMAKE_CURRENT_LIST_DIR}/state.c
  ${CMAKE_CURRENT_LIST_DIR}/tok.c)
target_include_directories(tgtoken PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(tgtoken PUBLIC tgcore OpenSSL::Crypto)
