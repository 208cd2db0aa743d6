# Integration tests of tokengate-sim (issue 3): CLI, persistence across
# kill -9, removal/insertion and pcscd restarts, touch and latency. Each
# starts its own private pcscd (tests/lib/fixtures.sh) where it needs one.
foreach(t cli persist removal touch)
  tg_add_script_test(integration_sim_${t}
    SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_sim_${t}.sh
    LABELS integration TIMEOUT 120)
endforeach()
# tokengate-sim's command-line refusals beyond integration_sim_cli (damaged
# state files, init usage errors), with their messages.
tg_add_script_test(integration_sim_cli_errors
  SCRIPT ${CMAKE_SOURCE_DIR}/tests/integration/test_sim_cli_errors.sh
  LABELS integration TIMEOUT 120)
# `tokengate-sim run` against a stand-in vpcd listener (no pcscd needed).
tg_add_script_test(integration_sim_run_standin
  SCRIPT ${CMAKE_SOURCE_DIR}/tests/integration/test_sim_run_standin.sh
  LABELS integration TIMEOUT 120)
