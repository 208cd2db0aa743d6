# tests/unit/enroll.cmake — unit tests of host/enroll/ (tokengate enroll):
# what the PIV client parses next to libykpiv and its reader selection
# (tgpivc), and the CSR signed externally (tgcsr).
foreach(t test_enroll_pivc test_enroll_reader)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tgpivc)
endforeach()
tg_add_unit_test(test_enroll_csr SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_enroll_csr.c
  LIBS tgcsr tgcore OpenSSL::Crypto)
