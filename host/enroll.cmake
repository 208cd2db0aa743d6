# host/enroll.cmake — `tokengate enroll`: the host PIV client (tgpivc) and
# the enrollment itself (tgenroll: the CSR signed on the token and the
# command), which issues through the CA (tgca) and reaches HSM keys through
# libtgp11.

# tgpivc: the PC/SC transport and the host side of the PIV commands; shared
# with `tokengate token` (PIV metadata of a key's slot).
add_library(tgpivc STATIC
  ${CMAKE_CURRENT_LIST_DIR}/enroll/pcsc.c
  ${CMAKE_CURRENT_LIST_DIR}/enroll/piv_client.c)
tg_area_headers(tgpivc ${CMAKE_CURRENT_LIST_DIR}/enroll PUBLIC tg_pcsc.h tg_pivc.h)
# Public: tg_pivc.h includes tg_buf.h, tg_err.h and OpenSSL's headers.
target_link_libraries(tgpivc PUBLIC tgcore OpenSSL::Crypto PRIVATE PkgConfig::PCSC)

add_library(tgenroll STATIC
  ${CMAKE_CURRENT_LIST_DIR}/enroll/csr.c
  ${CMAKE_CURRENT_LIST_DIR}/enroll/enroll.c)
# No public header: the command's entry point is declared in tg_cmd.h.
tg_area_headers(tgenroll ${CMAKE_CURRENT_LIST_DIR}/enroll)
target_link_libraries(tgenroll PRIVATE tgcmd tgpivc tgca tgp11 tgcore OpenSSL::Crypto)
