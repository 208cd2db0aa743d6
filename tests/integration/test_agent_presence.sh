#!/usr/bin/env bash
# test_agent_presence.sh — `tokengate agent` follows its token: the
# simulated card (enrolled with `tokengate enroll`, used through OpenSC) is
# removed (SIGUSR1 to tokengate-sim) and inserted (SIGUSR2), twice, with one
# agent process throughout:
#   - removed: a streaming response through the agent is cut and the agent's
#     TLS connections to the gate are closed within 1 s of the removal;
#     new requests get 503 with a one-line reason, and none reaches the gate
#     (no audit record); tokengate_agent_token_present reads 0;
#   - inserted: the agent logs in again (PIN read again from its 0600 file)
#     and serves 200 (allow record at the gate), without a restart;
#     tokengate_agent_token_present reads 1.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/agent_lib.sh"
source "$TG_SOURCE_DIR/tests/integration/sim_lib.sh"
gate_require
agent_require
agent_sim_require ss
cd "$TG_TMP"
agent_sim_setup
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
gate_start
agent_start --key "$AGENT_SIM_KEY" --cert "$PKI/erin.pem"
pid0=$AGENT_PID

get()
{
	curl -sS --max-time 30 -o "$1" -w '%{http_code}' "$(agent_url "$2")" 2>"$1.err" || echo "curl-failed"
}
present_is()
{
	agent_metric_is tokengate_agent_token_present "$1"
}
# (functions, not "$(...)" arguments: tg_wait_until runs its command again each time)
# (the time it started looking is kept: on a loaded machine `ss -p` can
# take longer than the agent took to close, and that is not the agent's)
no_conns()
{
	tg__now_ms >no_conns.t
	(($(agent_conns_to_gate) == 0))
}
served()
{
	[[ $(get back.json /echo) == 200 ]]
}

for round in 1 2; do
	gate_audit_mark
	code=$(get ok.json /echo)
	[[ $code == 200 ]] || tg_fail "round $round: before removal: HTTP $code: $(cat ok.json ok.json.err)"
	gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo identity=$ERIN
	present_is 1 || tg_fail "round $round: token_present '$(agent_metric tokengate_agent_token_present)', want 1"
	conns=$(agent_conns_to_gate)
	((conns >= 1)) || tg_fail "round $round: the agent holds no connection to the gate after a request"

	# a response streaming through an authenticated connection when the token leaves:
	# removed once the stream flows (a fixed sleep lost the race on a loaded
	# machine: the client started after the removal and got 503)
	rm -f stream.started
	agent_client stream --path '/sse?n=100&ms=100' --max-seconds 20 \
		--started-file stream.started >stream.json &
	spid=$!
	tg_wait_until 20 test -e stream.started ||
		tg_fail "round $round: the stream through the agent did not start within 20 s"
	sleep 0.4 # a few more chunks
	t0=$(tg__now_ms)
	kill -USR1 "$TG_SIM_PID"
	# the agent's TLS connections to the gate: all gone
	tg_wait_until 5 no_conns ||
		tg_fail "round $round: the agent still holds $(agent_conns_to_gate) connection(s) to the gate 5 s after the removal"
	t_conns=$(($(cat no_conns.t) - t0))
	wait "$spid" || true
	[[ $(jq -r .complete stream.json) == false ]] ||
		tg_fail "round $round: the stream ran to its end after the removal: $(cat stream.json)"
	(($(jq '.chunks | length' stream.json) >= 3)) ||
		tg_fail "round $round: the stream had not started before the removal: $(cat stream.json)"
	# when the stream was cut, in ms after the signal
	t_cut=$(jq -r --argjson t0 "$t0" '(.start_epoch_ms + .end_ms - $t0) | floor' stream.json)
	tg_log "round $round: removed: the stream through the agent cut $t_cut ms after the removal," \
		"no connection to the gate left $t_conns ms after it (seen by a look that started then; looks 0.1 s apart)"
	((t_cut <= ${AGENT_CLOSE_MS:-1000})) ||
		tg_fail "round $round: the stream was cut $t_cut ms after the removal (want <= ${AGENT_CLOSE_MS:-1000} ms)"
	((t_conns <= 1500)) || tg_fail "round $round: connections to the gate closed only after ${t_conns} ms"

	# new requests: 503 with a one-line reason; nothing reaches the gate
	tg_wait_until 5 present_is 0 || tg_fail "round $round: token_present '$(agent_metric tokengate_agent_token_present)' after removal, want 0"
	gate_audit_mark
	code=$(get gone.txt /echo)
	[[ $code == 503 ]] || tg_fail "round $round: request while the token is out: HTTP $code, want 503: $(cat gone.txt gone.txt.err)"
	lines=$(grep -c . gone.txt || true)
	[[ $lines == 1 ]] || tg_fail "round $round: the 503 body is $lines lines, want one line: $(cat gone.txt)"
	grep -qi "token" gone.txt || tg_fail "round $round: the 503 reason does not mention the token: $(cat gone.txt)"
	echo "ok: round $round: removed → 503 '$(cat gone.txt)'"
	sleep 0.3
	gate_audit_none event=$GATE_EV_REQ
	tg__pid_alive "$AGENT_PID" || tg_fail "the agent died when the token was removed"

	# inserted again: served again, same process
	kill -USR2 "$TG_SIM_PID"
	tg_wait_until 30 served ||
		tg_fail "round $round: no 200 within 30 s of the insertion: $(cat back.json back.json.err)"
	[[ $AGENT_PID == "$pid0" ]] && tg__pid_alive "$AGENT_PID" || tg_fail "the agent was restarted"
	present_is 1 || tg_fail "round $round: token_present '$(agent_metric tokengate_agent_token_present)' after insertion, want 1"
	gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo identity=$ERIN
	echo "ok: round $round: inserted → 200 again, same agent process"
done
agent_stop
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC on SIGTERM"
echo PASS
