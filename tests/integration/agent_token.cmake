# tests/integration/agent_token.cmake — `tokengate agent` in front of a real
# gate with real tokens (issue 12): SoftHSM2 (allow/deny, streaming, token
# operations per 1,000 requests, an exportable key refused, the token's
# certificate and a unix socket), the simulator through OpenSC
# (device-attested, its own operation counter), removal and insertion, a
# slow token (--sign-latency-ms 150). Helpers: tests/lib/agent_lib.sh.
foreach(t hsm sim presence slow)
  tg_add_script_test(integration_agent_${t}
    SCRIPT ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_agent_${t}.sh
    TIMEOUT 300)
endforeach()
