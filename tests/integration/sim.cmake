# Integration tests of tokengate-sim (issue 3): CLI, persistence across
# kill -9, removal/insertion and pcscd restarts, touch and latency. Each
# starts its own private pcscd (tests/lib/fixtures.sh) where it needs one.
foreach(t cli persist removal touch)
  tg_add_script_test(integration_sim_${t}
    SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_sim_${t}.sh
    LABELS integration TIMEOUT 120)
endforeach()
