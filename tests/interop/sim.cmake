# Interop tests of tokengate-sim (issue 3): software nobody here wrote
# (yubico-piv-tool, OpenSC's tools and PKCS#11 module, openssl) drives the
# simulator through a private pcscd.
foreach(t yubico_piv_tool opensc attest ykman)
  tg_add_script_test(interop_sim_${t}
    SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_sim_${t}.sh
    LABELS interop TIMEOUT 300)
endforeach()
