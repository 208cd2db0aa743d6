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
