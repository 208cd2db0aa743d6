# Interop tests of tokengate-sim (issues 3 and 15): software nobody here
# wrote (yubico-piv-tool, OpenSC's tools and PKCS#11 module, Yubico's ykman,
# openssl) drives the simulator through a private pcscd. ykman starts a
# Python process per command: its test takes about a minute (three under
# the sanitizers), hence the timeout.
foreach(t yubico_piv_tool opensc attest ykman)
  tg_add_script_test(interop_sim_${t}
    SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_sim_${t}.sh
    LABELS interop TIMEOUT 300)
endforeach()
