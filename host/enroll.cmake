# host/enroll.cmake — `tokengate enroll`: the host PIV client on Yubico's
# libykpiv (tgpivc), the CSR signed on a token (tgcsr) and the enrollment
# itself (tgenroll), which issues through the CA (tgca) and reaches HSM keys
# through libtgp11.

# tgpivc: the host side of the PIV commands on libykpiv; shared with
# tgtlskey (PIV metadata of a key's slot, for the gate, the agent and
# `tokengate token`).
add_library(tgpivc STATIC ${CMAKE_CURRENT_LIST_DIR}/enroll/piv_client.c)
tg_area_headers(tgpivc ${CMAKE_CURRENT_LIST_DIR}/enroll PUBLIC tg_pivc.h)
# Public: tg_pivc.h includes tg_buf.h, tg_err.h and OpenSSL's headers.
target_link_libraries(tgpivc PUBLIC tgcore OpenSSL::Crypto PRIVATE PkgConfig::YKPIV)

# tgcsr: a PKCS#10 request signed by a key that never leaves its token;
# shared with `tokengate token csr`.
add_library(tgcsr STATIC ${CMAKE_CURRENT_LIST_DIR}/enroll/csr.c)
tg_area_headers(tgcsr ${CMAKE_CURRENT_LIST_DIR}/enroll PUBLIC tg_csr.h)
target_link_libraries(tgcsr PUBLIC tgcore OpenSSL::Crypto)

add_library(tgenroll STATIC
  ${CMAKE_CURRENT_LIST_DIR}/enroll/piv.c
  ${CMAKE_CURRENT_LIST_DIR}/enroll/enroll.c)
# No public header: the command's entry point is declared in tg_cmd.h.
tg_area_headers(tgenroll ${CMAKE_CURRENT_LIST_DIR}/enroll)
target_link_libraries(tgenroll PRIVATE tgcmd tgpivc tgcsr tgca tgp11 tgcore
                      PkgConfig::YKPIV PkgConfig::JANSSON OpenSSL::Crypto)
