# tests/integration/pkcs11.cmake — libtgp11 and `tokengate token` against
# SoftHSM2 (and, when the simulator is there, OpenSC's module).
tg_add_unit_test(test_p11_softhsm
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_softhsm.c
  LIBS tgp11
  LABELS integration
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh
  TIMEOUT 600)
