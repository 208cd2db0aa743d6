# tests/load/gate.cmake — load tests (label "load"), bounded in time: 1,000
# concurrent connections through the gate, and through agent + gate.
# TG_LOAD_SECONDS (from the environment; default 10 s) sets how long the
# requests flow; `make check-all` runs them for 60 s.
foreach(t gate agent)
  tg_add_script_test(load_${t}
    SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/load/test_load.sh ARGS ${t}
    LABELS load TIMEOUT 600)
endforeach()
