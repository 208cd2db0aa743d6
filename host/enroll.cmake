# host/enroll.cmake — `tokengate enroll` (issue 5 item 3): the host side
# of the PIV commands on Yubico's libykpiv, the CSR signed on the token
# and the command itself. Needs the CA library (host/ca.cmake) and the
# PKCS#11 layer (HSM keys, PIN sources).
target_sources(tghost PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/enroll/piv_client.c
  ${CMAKE_CURRENT_SOURCE_DIR}/enroll/csr.c
  ${CMAKE_CURRENT_SOURCE_DIR}/enroll/piv.c
  ${CMAKE_CURRENT_SOURCE_DIR}/enroll/enroll.c)
target_include_directories(tghost PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/enroll)
target_link_libraries(tghost PUBLIC tgp11 PkgConfig::YKPIV PkgConfig::JANSSON OpenSSL::Crypto)
