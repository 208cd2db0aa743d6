# host/doctor.cmake — tgdoctor, `tokengate doctor`: USB, PC/SC, PIV and
# PKCS#11 probes, one report, text and JSON output.
add_library(tgdoctor STATIC
  ${CMAKE_CURRENT_LIST_DIR}/doctor/doctor.c
  ${CMAKE_CURRENT_LIST_DIR}/doctor/known.c
  ${CMAKE_CURRENT_LIST_DIR}/doctor/p11.c
  ${CMAKE_CURRENT_LIST_DIR}/doctor/pcsc.c
  ${CMAKE_CURRENT_LIST_DIR}/doctor/piv.c
  ${CMAKE_CURRENT_LIST_DIR}/doctor/render.c
  ${CMAKE_CURRENT_LIST_DIR}/doctor/report.c
  ${CMAKE_CURRENT_LIST_DIR}/doctor/usb.c)
# No public header: the command's entry point is declared in tg_cmd.h.
tg_area_headers(tgdoctor ${CMAKE_CURRENT_LIST_DIR}/doctor)
# p11-kit only for <p11-kit/pkcs11.h> (the CKF_* token flags doctor names);
# modules and tokens are listed through libtgp11.
target_link_libraries(tgdoctor PRIVATE tgcmd tgp11 tgcore PkgConfig::LIBUSB PkgConfig::PCSC
                      PkgConfig::P11KIT PkgConfig::JANSSON)
