# libtgp11: the host-side PKCS#11 layer (issue 4). Included by
# pkcs11/CMakeLists.txt.
find_file(TG_P11KIT_PROXY p11-kit-proxy.so
          PATHS /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib
          PATH_SUFFIXES "" p11-kit)
if(NOT TG_P11KIT_PROXY)
  set(TG_P11KIT_PROXY p11-kit-proxy.so)
endif()

find_package(Threads REQUIRED)

add_library(tgp11 STATIC
  ${CMAKE_CURRENT_LIST_DIR}/module.c
  ${CMAKE_CURRENT_LIST_DIR}/uri.c
  ${CMAKE_CURRENT_LIST_DIR}/token.c
  ${CMAKE_CURRENT_LIST_DIR}/key.c
  ${CMAKE_CURRENT_LIST_DIR}/trust.c
  ${CMAKE_CURRENT_LIST_DIR}/keygen.c
  ${CMAKE_CURRENT_LIST_DIR}/cert.c
  ${CMAKE_CURRENT_LIST_DIR}/watch.c)
# Dependents see tg_p11.h only; p11-int.h stays inside (white-box tests add
# this folder themselves).
include(TgArea)
tg_area_headers(tgp11 ${CMAKE_CURRENT_LIST_DIR} PUBLIC tg_p11.h)
target_compile_definitions(tgp11 PRIVATE TG_P11_PROXY_PATH="${TG_P11KIT_PROXY}")
# Public: tg_p11.h includes tg_err.h and OpenSSL's ssl.h, evp.h, x509.h.
target_link_libraries(tgp11
  PUBLIC tgcore OpenSSL::SSL OpenSSL::Crypto
  PRIVATE PkgConfig::LIBP11 PkgConfig::P11KIT Threads::Threads ${CMAKE_DL_LIBS})
