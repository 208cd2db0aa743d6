#!/usr/bin/env bash
# test_fault_upstream.sh — the upstream dies under load and comes back.
# Four keep-alive mTLS clients (two reconnecting every 5 requests) run
# through `tokengate gate` (http mode) the whole time, while the upstream
# is killed with SIGKILL, left dead for 2 s and started again on its port:
#   - while it is down every failed request is a 502 with a reason, never
#     a broken connection, a hang or another status; each 502 has its
#     "upstream-error" record (kind refused or broken);
#   - the gate does not crash: it stays up, /healthz and /readyz say 200;
#   - service resumes by itself: the restarted upstream gets requests and
#     the clients see 200s again, with no restart of the gate;
#   - descriptors come back to where they were; the audit chain verifies.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
cd "$TG_TMP"
gate_pki
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
PORT0=$UP_PORT
gate_start
fds() { find "/proc/$GATE_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
fd0=$(fds)
# lines_ge FILE N: FILE has at least N lines (a function: tg_wait_until
# runs its command again each time, "$(...)" arguments would not be)
lines_ge() { [[ -e $1 ]] && (($(wc -l <"$1") >= $2)); }

# ---- load: 4 clients, two of them reconnecting every 5 requests ---------
pids=()
tg_on_exit touch "$TG_TMP/stop" # the loops end with the test, whatever happens
for i in 1 2 3 4; do
	per=1000000
	((i <= 2)) || per=5
	GATE_CLIENT_DIRECT=1 gate_py alice loop /echo --stop-file stop --per-conn "$per" >"loop$i.json" 2>"loop$i.err" &
	pids+=($!)
done
tg_wait_until 20 lines_ge up-up.jsonl 40 || tg_fail "the clients got nowhere: $(cat loop1.err)"
n_before=$(wc -l <up-up.jsonl)

# ---- the upstream killed ------------------------------------------------
gate_audit_mark
kill -KILL "$UP_PID"
tg_wait_until 10 bash -c '! kill -0 '"$UP_PID"' 2>/dev/null' || tg_fail "the upstream survived SIGKILL"
gate_audit_expect event=$GATE_EV_UPERR status=502
sleep 2
tg__pid_alive "$GATE_PID" || tg_fail "the gate died with its upstream: $(tail -n 20 "$GATE_LOG")"
for p in healthz readyz; do
	code=$(curl -sS -o /dev/null -w '%{http_code}' "http://$GATE_ADMIN/$p")
	[[ $code == 200 ]] || tg_fail "/$p said $code while the upstream is down"
done
echo "ok: upstream killed under load: 502s with upstream-error records; the gate up, /healthz and /readyz 200"

# ---- the upstream back on its port --------------------------------------
gate_upstream_start up2 --listen "127.0.0.1:$PORT0"
tg_wait_until 20 test -s up-up2.jsonl || tg_fail "no request reached the restarted upstream"
tg_wait_until 20 lines_ge up-up2.jsonl 40 || tg_fail "the restarted upstream got only $(wc -l <up-up2.jsonl) requests"
touch stop
for p in "${pids[@]}"; do
	wait "$p" || tg_fail "a client loop failed: $(cat loop*.err)"
done

ok=0 fail=0
for i in 1 2 3 4; do
	# every failure is an HTTP 502 whose body gives the reason
	bad=$(jq -c '.failures[] | select(.status != 502 or (.body | test("upstream") | not))' "loop$i.json")
	[[ -z $bad ]] || tg_fail "client $i: a failure that is not a 502 with its reason: $bad"
	ok=$((ok + $(jq .ok "loop$i.json")))
	fail=$((fail + $(jq .fail "loop$i.json")))
done
((fail > 0)) || tg_fail "no 502 while the upstream was down for 2 s ($ok ok)"
nerr=$(gate__audit_new | jq -c "select(.event == \"$GATE_EV_UPERR\")" | wc -l)
kinds=$(gate__audit_new | jq -r "select(.event == \"$GATE_EV_UPERR\") | .kind" | sort -u | tr '\n' ' ')
[[ $kinds =~ ^((refused|broken) )+$ ]] || tg_fail "upstream-error kinds: '$kinds'"
((nerr >= fail)) || tg_fail "$fail failed requests, only $nerr upstream-error records"
echo "ok: $ok requests answered 200 and $fail answered 502 (kinds: $kinds); $n_before before the kill, $(wc -l <up-up2.jsonl) to the restarted upstream"

# the clients' connections are gone: descriptors back (the pool may keep
# its idle upstream connections: at most one per connection made)
fds_back() { (($(fds) <= fd0 + 8)); }
tg_wait_until 10 fds_back || tg_fail "descriptors: $fd0 before, $(fds) after"
fd1=$(fds)
out=$(gate_py alice req /echo) || tg_fail "a request after the fault: $out"
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "after the fault: $out"
gate_stop
"$TG" audit verify "$GATE_AUDIT" >/dev/null || tg_fail "the audit chain does not verify"
echo "ok: descriptors back ($fd0 before the load, $fd1 after); served after the fault; the chain verifies"
