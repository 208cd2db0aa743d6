# bench/authz.cmake — nginx + auth_request → `tokengate gate --mode authz`
# beside nginx alone (same mTLS setup) and the gate alone (issue 13):
# keep-alive requests/s and their ratios. Run:
#   bench/authz-vs-nginx.sh [--seconds S] [--threads N] [--workers N] [BUILD_DIR]
# (or: cmake --build BUILD --target bench_authz). Ratios, never timing
# assertions; the smoke test only checks that every figure comes out.
add_custom_target(bench_authz
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/authz-vs-nginx.sh ${CMAKE_BINARY_DIR}
  DEPENDS gate_load tokengate
  USES_TERMINAL)
tg_add_script_test(bench_authz_smoke
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/authz-vs-nginx.sh
  ARGS --quick ${CMAKE_BINARY_DIR}
  LABELS bench
  TIMEOUT 300)
