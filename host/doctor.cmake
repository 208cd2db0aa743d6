# host/doctor.cmake — `tokengate doctor` (issue 4 item 3): USB, PC/SC and
# PKCS#11 probes, one report, text and JSON output.
target_sources(tghost PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/doctor/doctor.c
  ${CMAKE_CURRENT_SOURCE_DIR}/doctor/known.c
  ${CMAKE_CURRENT_SOURCE_DIR}/doctor/p11.c
  ${CMAKE_CURRENT_SOURCE_DIR}/doctor/pcsc.c
  ${CMAKE_CURRENT_SOURCE_DIR}/doctor/render.c
  ${CMAKE_CURRENT_SOURCE_DIR}/doctor/report.c
  ${CMAKE_CURRENT_SOURCE_DIR}/doctor/usb.c)
target_link_libraries(tghost PUBLIC PkgConfig::LIBUSB PkgConfig::PCSC PkgConfig::P11KIT
                      PkgConfig::JANSSON)
