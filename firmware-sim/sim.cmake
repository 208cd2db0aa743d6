# firmware-sim/sim.cmake — the tokengate-sim executable (issue 3): the token
# core (tgtoken) behind the vpcd transport, with a libevent loop.
add_executable(tokengate-sim
  ${CMAKE_CURRENT_LIST_DIR}/main.c
  ${CMAKE_CURRENT_LIST_DIR}/init.c
  ${CMAKE_CURRENT_LIST_DIR}/run.c
  ${CMAKE_CURRENT_LIST_DIR}/status.c
  ${CMAKE_CURRENT_LIST_DIR}/vpcd.c
  ${CMAKE_CURRENT_LIST_DIR}/statefile.c
  ${CMAKE_CURRENT_LIST_DIR}/touch.c
  ${CMAKE_CURRENT_LIST_DIR}/mfrca.c)
target_include_directories(tokengate-sim PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(tokengate-sim PRIVATE
  tgtoken tgcore tglog PkgConfig::LIBEVENT PkgConfig::JANSSON OpenSSL::Crypto)
