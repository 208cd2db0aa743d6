# tests/integration/gate_proxy.cmake — the gate's http mode (proxy.c,
# upstream.c) end to end: `tokengate gate` between a python TLS client and
# a raw python upstream (gate_proxy_peer.py).
tg_add_script_test(integration_gate_proxy
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_gate_proxy.sh
  TIMEOUT 240)
