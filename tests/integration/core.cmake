# Integration tests of the test fixtures themselves (tests/lib): the
# SoftHSM2 fixture, the private pcscd fixture (two at once) and the
# simulator hooks. Names contain "fixture": ctest -L integration -R fixture
tg_add_script_test(integration_softhsm_fixture
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_softhsm_fixture.sh)
tg_add_script_test(integration_pcsc_fixture
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_pcsc_fixture.sh ARGS pcscd)
# Skipped (77) until tokengate-sim is built.
tg_add_script_test(integration_sim_fixture
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_pcsc_fixture.sh ARGS sim)

# A cmocka test run through each wrapper, as C tests of other areas will
# be: the layout seen through SoftHSM2 and the reader through libpcsclite,
# plus the tg_test.h helpers. One source, one executable per wrapper.
tg_add_unit_test(integration_fixture_softhsm_c
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_fixture_env.c
  LIBS PkgConfig::P11KIT ${CMAKE_DL_LIBS}
  LABELS integration
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh)
target_compile_definitions(integration_fixture_softhsm_c PRIVATE TG_FIXTURE_SOFTHSM)
tg_add_unit_test(integration_fixture_pcsc_c
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_fixture_env.c
  LIBS PkgConfig::PCSC
  LABELS integration
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-pcscd.sh)
target_compile_definitions(integration_fixture_pcsc_c PRIVATE TG_FIXTURE_PCSC)
