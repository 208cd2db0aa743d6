# tests/unit/enroll.cmake — unit tests of host/enroll/ (tokengate enroll):
# the PIV client's parsers, reader selection, the CSR signed externally.
foreach(t test_enroll_pivc test_enroll_pcsc test_enroll_csr)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tghost)
endforeach()
