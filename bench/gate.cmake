# bench/gate.cmake — the gate beside nginx doing the same job (issue 11):
# full mTLS handshakes/s, keep-alive requests/s, the handshake rate with the
# server key on SoftHSM2, resident memory per idle mTLS connection. Run:
#   bench/gate-vs-nginx.sh [--seconds S] [--threads N] [--workers N] [BUILD_DIR]
# (or: cmake --build BUILD --target bench_gate). Ratios, never timing
# assertions; the smoke test below only checks that figures come out.
find_package(Threads REQUIRED)
add_executable(gate_load ${CMAKE_CURRENT_LIST_DIR}/gate_load.c)
target_link_libraries(gate_load PRIVATE tgp11 OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
set_target_properties(gate_load PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
# The smoke test bench_gate_smoke: the whole script with --quick (about
# 2 s per phase).
tg_add_bench(gate SCRIPT ${CMAKE_CURRENT_LIST_DIR}/gate-vs-nginx.sh
  DEPENDS gate_load tokengate)

# bench/agent-vs-stunnel.sh (issue 12): `tokengate agent` + gate with the
# key on the simulator at 0 and 150 ms per signature, token operations per
# 1,000 requests, and agent + gate beside stunnel + nginx; the same
# gate_load (--plain) for both. Run it whole with the target bench_agent.
tg_add_bench(agent SCRIPT ${CMAKE_CURRENT_LIST_DIR}/agent-vs-stunnel.sh
  DEPENDS gate_load tokengate tokengate-sim)
