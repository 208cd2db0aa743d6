# tests/unit/enroll.cmake — unit tests of host/enroll/ (tokengate enroll):
# what the PIV client parses next to libykpiv, reader selection, the CSR signed externally.
foreach(t test_enroll_pivc test_enroll_reader test_enroll_csr)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tghost)
endforeach()
