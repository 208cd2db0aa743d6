# bench/authz.cmake — nginx + auth_request → `tokengate gate --mode authz`
# beside nginx alone (same mTLS setup) and the gate alone (issue 13):
# keep-alive requests/s and their ratios. Run:
#   bench/authz-vs-nginx.sh [--seconds S] [--threads N] [--workers N] [BUILD_DIR]
# (or: cmake --build BUILD --target bench_authz). Ratios, never timing
# assertions; the smoke test only checks that every figure comes out.
tg_add_bench(authz SCRIPT ${CMAKE_CURRENT_LIST_DIR}/authz-vs-nginx.sh
  DEPENDS gate_load tokengate TIMEOUT 300)
