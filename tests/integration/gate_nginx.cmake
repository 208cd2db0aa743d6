# tests/integration/gate_nginx.cmake — the shared outcome table
# (gate_cases.tsv) through the gate alone and through a real nginx
# (examples/nginx-authz.conf) in front of `tokengate gate --mode authz`;
# header smuggling and nginx reload under traffic (docs/nginx.md).
tg_add_script_test(integration_gate_nginx
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_gate_nginx.sh
  TIMEOUT 600)
