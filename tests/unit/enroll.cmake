# tests/unit/enroll.cmake — unit tests of host/enroll/ (tokengate enroll):
# the PIV client's parsers and reader selection (tgpivc), the CSR signed
# externally (tgenroll's internal csr.c, so its folder is added).
foreach(t test_enroll_pivc test_enroll_pcsc)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tgpivc)
endforeach()
tg_add_unit_test(test_enroll_csr SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_enroll_csr.c
  LIBS tgenroll tgcore OpenSSL::Crypto)
target_include_directories(test_enroll_csr PRIVATE ${CMAKE_SOURCE_DIR}/host/enroll)
