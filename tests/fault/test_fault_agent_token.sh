#!/usr/bin/env bash
# test_fault_agent_token.sh — `tokengate agent` when the token's stack
# crashes under it: the simulated card (tokengate-sim, enrolled with
# `tokengate enroll`, device-attested, used through OpenSC behind a private
# pcscd) signs every private-key operation after LAT ms (--sign-latency-ms,
# default 1000), in front of a real gate; one agent process throughout,
# each outcome also checked in the gate's audit log:
#   1. pcscd killed (SIGKILL, a crash) while a client loop (curl, a new
#      client connection every ~50 ms) sends GET /echo through the agent:
#      - until the agent sees the token gone (its watcher polls the slot
#        every 250 ms) requests may still be answered 200 over its pooled
#        TLS connections to the gate, already authenticated on the token:
#        docs/agent.md closes those only at the removal (one request in
#        flight then may see its client connection closed, no answer);
#      - then the agent reports the token absent: every later request gets
#        503 with a one-line reason naming the token (no 200, no other
#        status, no broken connection), tokengate_agent_token_present reads
#        0, its log says "the token is not available", and it holds no
#        connection to the gate (pool emptied, as documented for a removal);
#      - fail closed: while pcscd is down no request reaches the gate (no
#        audit record at all);
#      - pcscd started again on the same socket and vpcd port: the
#        simulator reconnects by itself and the agent serves 200 again
#        without a restart (same PID): token_present 1, "the token is
#        back" logged, allow records at the gate for erin (device-attested,
#        the token's serial), and the first new connection to the gate is
#        a full handshake (the TLS session was forgotten: handshakes minus
#        resumptions grew); after the first 200 only 200s.
#   2. the simulator killed with kill -9 in the middle of a signature: the
#      gate is restarted (same port and audit log) so the agent's next
#      request needs a new TLS connection and a full handshake signed on
#      the token; the simulator is killed as soon as its log shows the
#      GENERAL AUTHENTICATE (ins 87) with slot 9a, while it holds the
#      answer for LAT ms. Proven in flight: the token counted (and
#      persisted) exactly one more private-key operation, the request did
#      not get 200 (502 with a one-line reason naming the failed handshake
#      and the token that did not sign, or 503 naming the token; the agent answers 502 before its watcher
#      sees the card gone), and no record with erin's identity reached the
#      gate (it logs the aborted handshake as tls-reject). Then:
#      token_present 0 and 503s; the simulator restarted on the same state
#      file: PIN and PUK retry counters unchanged (tokengate-sim status
#      --json) and no VERIFY ever answered a wrong-PIN or blocked status
#      (the agent logged in again with the PIN from its file: VERIFY 9000),
#      slots unchanged; the key intact: the agent proved it with a
#      signature over a fresh challenge checked against the public key it
#      had before, and the gate accepted a new full handshake with the
#      same leaf ($PKI/erin.pem): 200 again, allow record for erin with the
#      same provenance serial, same agent PID.
#   3. the agent stops on SIGTERM with exit 0 ("tokengate agent: stopped"),
#      the gate too, and `tokengate audit verify` finds the gate's audit
#      chain intact across both gate processes.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/agent_lib.sh"
source "$TG_SOURCE_DIR/tests/integration/sim_lib.sh"
gate_require
agent_require
agent_sim_require ss
cd "$TG_TMP"
T0=$(tg__now_ms)
LAT=${TG_FAULT_SIGN_LATENCY_MS:-1000}
SERIAL=31415926
# debug: the simulator logs each APDU's header and status word (never data)
SIM_ARGS=(--log-level debug --sign-latency-ms "$LAT")

# ---- set-up: agent_sim_setup's steps, with the simulator's own flags -------
tg_pcscd_start
tg_sim_init "$TG_TMP/card.state" --serial "$SERIAL"
tg_sim_start "$TG_TMP/card.state" "${SIM_ARGS[@]}"
gate_pki
ERIN=spiffe://$TD/dev/erin
agent_sim_enroll erin "$ERIN"
unset TOKENGATE_PIN
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
gate_start
agent_start --key "$AGENT_SIM_KEY" --cert "$PKI/erin.pem"
pid0=$AGENT_PID
tg_log "set-up took $(($(tg__now_ms) - T0)) ms (token latency $LAT ms)"

ms_since() { echo $(($(tg__now_ms) - $1)); }
present_is() { agent_metric_is tokengate_agent_token_present "$1"; }
no_conns() { (($(agent_conns_to_gate) == 0)); }
# full handshakes with the gate so far (one token signature each)
full_hs() { echo $(($(agent_metric 'tokengate_agent_handshakes_total{result="ok"}') - $(agent_metric tokengate_agent_resumptions_total))); }
agent_same() { [[ $AGENT_PID == "$pid0" ]] && tg__pid_alive "$AGENT_PID"; }
# get FILE PATH: one request through the agent; prints the HTTP status
get()
{
	curl -sS --max-time 60 -o "$1" -w '%{http_code}' "$(agent_url "$2")" 2>"$1.err" || true
}
served() { [[ $(get back.txt /echo) == 200 ]]; }

# ---- the client loop: a new client connection every ~50 ms until loop.stop --
# loop.log, one line per request, in order: "START END STATUS [BODY_LINES
# FIRST_LINE]", START and END the wall clock (ms) before curl started and
# after it ended (on a loaded machine curl may take a while to start: a
# request reaches the agent somewhere in between), STATUS 000: no answer
client_loop()
{
	local t code n
	while [[ ! -e loop.stop ]]; do
		t=$(tg__now_ms)
		code=$(curl -sS --max-time 30 -o loop.body -w '%{http_code}' "$(agent_url /echo)" 2>loop.err) || true
		[[ -n $code ]] || code=000
		if [[ $code == 200 ]]; then
			echo "$t $(tg__now_ms) $code" >>loop.log
		else
			n=$(grep -c . loop.body 2>/dev/null) || n=0
			echo "$t $(tg__now_ms) $code $n $(head -n 1 loop.body 2>/dev/null | tr -d '\r')$(head -c 200 loop.err | tr '\n' ' ')" >>loop.log
		fi
		sleep 0.05
	done
}
# n_since T STATUS: requests ended at or after T that got STATUS
n_since() { awk -v t="$1" -v c="$2" '$2 >= t && $3 == c' loop.log | wc -l; }
n_ge() { (($(n_since "$1" "$2") >= $3)); }
# first_since T STATUS: the line of the first such request ("" if none)
first_since() { awk -v t="$1" -v c="$2" '$2 >= t && $3 == c { print; exit }' loop.log; }

# =====================================================================
# 1. pcscd killed and restarted under traffic
# =====================================================================
: >loop.log
rm -f loop.stop
client_loop &
loop_pid=$!
# at exit: the loop and the watcher below, while they are still ours
# (their variables are cleared once reaped, so no reused pid is signalled)
stop_helpers()
{
	touch "$TG_TMP/loop.stop"
	[[ -z ${loop_pid:-} ]] || gate__kill "$loop_pid"
	[[ -z ${wpid:-} ]] || gate__kill "$wpid"
}
tg_on_exit stop_helpers
tg_wait_until 30 n_ge 0 200 5 || tg_fail "the client loop through the agent got no 5 × 200 within 30 s: $(tail -n 5 loop.log)"
gate_audit_mark
gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo identity=$ERIN provenance.serial=$SERIAL
present_is 1 || tg_fail "token_present '$(agent_metric tokengate_agent_token_present)' before the fault, want 1"
full0=$(full_hs)

port=$TG_VPCD_PORT
t_kill=$(tg__now_ms)
kill -KILL "$TG_PCSCD_PID"
tg_wait_until 10 tg__not tg__pid_alive "$TG_PCSCD_PID" || tg_fail "pcscd survived SIGKILL"
tg_pcscd_stop # reaps it and forgets the instance (its socket file stays, stale)
tg__pid_alive "$TG_SIM_PID" || tg_fail "the simulator died with pcscd"

# the agent sees the token gone: 503s in the loop, token_present 0
tg_wait_until 30 n_ge "$t_kill" 503 1 ||
	tg_fail "no 503 within 30 s of killing pcscd: $(tail -n 5 loop.log); agent: $(tail -n 3 "$AGENT_LOG")"
read -r _ t_503 _ < <(first_since "$t_kill" 503)
tg_wait_until 10 present_is 0 ||
	tg_fail "token_present '$(agent_metric tokengate_agent_token_present)' while the loop gets 503, want 0"
grep -q "tokengate agent: the token is not available (.*erin" "$AGENT_LOG" ||
	tg_fail "the agent did not log the token's absence: $(tail -n 3 "$AGENT_LOG")"
tg_wait_until 5 no_conns ||
	tg_fail "the agent still holds $(agent_conns_to_gate) connection(s) to the gate while the token is absent"
tg_log "pcscd killed: the first 503 came $((t_503 - t_kill)) ms after the kill;" \
	"$(awk -v a="$t_kill" '$2 >= a && $3 == 200' loop.log | wc -l) request(s) answered 200 after the kill"

# fail closed: nothing reaches the gate while pcscd is down
gate_audit_mark
t_m=$(tg__now_ms)
tg_wait_until 20 n_ge "$t_m" 503 5 || tg_fail "the loop made no 5 requests in 20 s: $(tail -n 3 loop.log)"
sleep 0.3 # a record written late would show
gate_audit_none
present_is 0 || tg_fail "token_present '$(agent_metric tokengate_agent_token_present)' while pcscd is down"
agent_same || tg_fail "the agent died when pcscd was killed: $(tail -n 5 "$AGENT_LOG")"
echo "ok: pcscd killed: 503 '$(first_since 0 503 | cut -d' ' -f5-)'; token_present 0; nothing at the gate"

# pcscd back on the same socket and vpcd port: the simulator reconnects
t_re=$(tg__now_ms)
TG_PORT_MIN=$port TG_PORT_MAX=$((port + 2)) tg_pcscd_start
[[ $TG_VPCD_PORT == "$port" ]] || tg_fail "pcscd restarted on vpcd port $TG_VPCD_PORT, not $port"
tg_wait_until 60 tg_reader_card_present || tg_fail "the simulator did not reconnect to the restarted pcscd within 60 s"
t_card=$(tg__now_ms)
grep -q 'sim.vpcd.lost' "$TG_SIM_LOG" || tg_fail "the simulator did not log the lost pcscd connection"
gate_audit_mark
tg_wait_until 60 n_ge "$t_re" 200 1 ||
	tg_fail "no 200 through the agent within 60 s of the card's return: $(tail -n 3 loop.log); agent: $(tail -n 3 "$AGENT_LOG")"
read -r _ t_200 _ < <(first_since "$t_re" 200)
agent_same || tg_fail "the agent was restarted"
tg_wait_until 10 present_is 1 || tg_fail "token_present '$(agent_metric tokengate_agent_token_present)' after recovery, want 1"
grep -q "tokengate agent: the token is back (.*erin" "$AGENT_LOG" || tg_fail "the agent did not log the token's return"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo identity=$ERIN provenance.serial=$SERIAL resumed=false
full1=$(full_hs)
((full1 > full0)) || tg_fail "no full handshake after the token came back ($full0 before, $full1 after): a session was resumed without the token"
tg_wait_until 20 n_ge "$t_200" 200 5 || tg_fail "the loop is not served after recovery: $(tail -n 3 loop.log)"
touch loop.stop
wait "$loop_pid" || true
loop_pid=

# the whole loop, in order: until the first 503, 200s (on pooled connections
# already authenticated) and at most one 000 (the request in flight when the
# agent closed its connections); then only 503s, one line naming the token,
# until a 200 that ended after pcscd's restart began; then only 200s
bad=$(awk -v re="$t_re" '
	st == 0 && $3 == 200 { next }
	st == 0 && $3 == "000" { if (++cut > 1) print "a second connection cut:", $0; next }
	st == 0 && $3 == 503 { st = 1 }
	st == 0 { print "before the first 503:", $0; next }
	st == 1 && $3 == 503 { if ($4 != 1 || tolower($0) !~ /token/) print "a 503 without a one-line reason naming the token:", $0; next }
	st == 1 && $3 == 200 { st = 2; if ($2 < re) print "200 while pcscd was down:", $0; next }
	st == 1 { print "while absent:", $0; next }
	st == 2 && $3 != 200 { print "after recovery:", $0 }
	END { if (st != 2) print "the loop never went from 503 back to 200" }' loop.log)
[[ -z $bad ]] || tg_fail "unexpected answers in the client loop: $bad"
echo "ok: pcscd restarted: card back $((t_card - t_re)) ms after the restart began, the first 200" \
	"$((t_200 - t_card)) ms after that; same agent (pid $AGENT_PID), token_present 1, allow record," \
	"full handshakes $full0 -> $full1; loop: $(cut -d' ' -f3 loop.log | sort | uniq -c | xargs)"

# =====================================================================
# 2. the simulator killed with kill -9 while a signature is in flight
# =====================================================================
pin0=$(sim_json pin.tries_left)
puk0=$(sim_json puk.tries_left)
slots0=$(sim_json slots)
ops0=$(sim_ops)
[[ $pin0 == 3 && $puk0 == 3 ]] || tg_fail "PIN/PUK tries left $pin0/$puk0 before the kill, want 3/3"
fail0=$(agent_metric 'tokengate_agent_handshakes_total{result="failed"}')

# A new gate process: the agent's pooled connections end and its session
# ticket is no good there, so the next request needs a full handshake.
gate_stop
((GATE_RC == 0)) || tg_fail "the gate exited $GATE_RC on SIGTERM"
gate_audit_mark
gate_start

# The watcher kills the simulator the moment its log shows the signature
# (GENERAL AUTHENTICATE, ins 87, with the key of slot 9a) written after
# offset $off, and prints when it saw it and when it killed.
off=$(stat -c %s "$TG_SIM_LOG")
"$GATE_PYTHON" - "$TG_SIM_LOG" "$off" "$TG_SIM_PID" watcher.ready >watcher.out 2>watcher.err <<'PY' &
import os, re, signal, sys, time
log, off, pid, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
open(ready, "w").close()
end = time.monotonic() + 60
buf = b""
with open(log, "rb") as f:
    f.seek(off)
    while time.monotonic() < end:
        buf += f.read()
        for line in buf.split(b"\n"):
            if re.search(rb"sim\.apdu 00 87 [0-9a-f]{2} 9a ", line):
                seen = time.time()
                os.kill(pid, signal.SIGKILL)
                print("%d %d %s" % (seen * 1000, time.time() * 1000, line.decode()))
                sys.exit(0)
        buf = buf[buf.rfind(b"\n") + 1:]
        time.sleep(0.005)
sys.exit(1)
PY
wpid=$!
tg_wait_until 30 test -e watcher.ready || tg_fail "the log watcher did not start"
t_req=$(tg__now_ms)
code=$(get trig.txt /echo)
t_ans=$(tg__now_ms)
trig=$code
wrc=0
wait "$wpid" || wrc=$?
wpid=
((wrc == 0)) || tg_fail "the simulator's log showed no signature within 60 s (request: HTTP $code $(cat trig.txt trig.txt.err))"
read -r t_seen t_k9 _ <watcher.out
tg_sim_kill9 # reaps it; waits until pcscd shows no card
ops1=$(sim_ops)
tg_log "kill -9: the signature showed in the simulator's log $((t_seen - t_req)) ms after the request," \
	"killed $((t_k9 - t_seen)) ms later (the answer was held $LAT ms); the request was answered" \
	"$((t_ans - t_req)) ms after it started: HTTP $code '$(head -n 1 trig.txt)'"
# in flight: the token counted it (persisted before the answer) ...
((ops1 == ops0 + 1)) || tg_fail "private-key operations $ops0 -> $ops1 across the kill, want exactly one more (the signature in flight)"
# ... and its answer never came: no 200, nothing with erin's identity at the gate
[[ $code == 502 || $code == 503 ]] || tg_fail "the request whose signature was cut got HTTP $code, want 502 or 503: $(cat trig.txt trig.txt.err)"
(($(grep -c . trig.txt) == 1)) || tg_fail "the $code body is not one line: $(cat trig.txt)"
if [[ $code == 502 ]]; then
	grep -q 'TLS handshake with the gate .* failed: the token did not sign' trig.txt ||
		tg_fail "502 without the failed handshake and the token as its reason: $(cat trig.txt)"
	fail1=$(agent_metric 'tokengate_agent_handshakes_total{result="failed"}')
	((fail1 > fail0)) || tg_fail "handshakes_total{result=\"failed\"} $fail0 -> $fail1 after a 502"
else
	grep -qi token trig.txt || tg_fail "503 without the token in its reason: $(cat trig.txt)"
fi
tg_wait_until 10 present_is 0 || tg_fail "token_present '$(agent_metric tokengate_agent_token_present)' with the simulator dead, want 0"
code=$(get gone.txt /echo)
[[ $code == 503 ]] && (($(grep -c . gone.txt) == 1)) && grep -qi token gone.txt ||
	tg_fail "request with the simulator dead: HTTP $code '$(cat gone.txt gone.txt.err)', want 503 with a one-line reason naming the token"
sleep 0.3
gate_audit_none identity=$ERIN
gate_audit_none event=$GATE_EV_REQ
agent_same || tg_fail "the agent died when the simulator was killed: $(tail -n 5 "$AGENT_LOG")"
# counters as the crash left them on disk
[[ $(sim_json pin.tries_left) == "$pin0" && $(sim_json puk.tries_left) == "$puk0" ]] ||
	tg_fail "after kill -9: PIN/PUK tries left $(sim_json pin.tries_left)/$(sim_json puk.tries_left), want $pin0/$puk0"
echo "ok: kill -9 mid-signature: HTTP $trig '$(head -n 1 trig.txt)'; the token counted the operation; nothing reached the gate; token_present 0, then 503"
gate__audit_new | jq -c 'select(.event == "tls-reject") | {event, reason}' | sed 's/^/  gate: /' || true

# the simulator back on the same state file
nproved=$(grep -c 'proven by a signature over a fresh challenge' "$AGENT_LOG" || true)
t_s=$(tg__now_ms)
tg_sim_start "$TG_TMP/card.state" "${SIM_ARGS[@]}"
tg_wait_until 60 served || tg_fail "no 200 within 60 s of restarting the simulator: $(cat back.txt back.txt.err); agent: $(tail -n 3 "$AGENT_LOG")"
t_back=$(tg__now_ms)
agent_same || tg_fail "the agent was restarted"
tg_wait_until 10 present_is 1 || tg_fail "token_present '$(agent_metric tokengate_agent_token_present)' after the simulator's restart"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo identity=$ERIN provenance.serial=$SERIAL \
	provenance.level=device-attested resumed=false
(($(grep -c 'proven by a signature over a fresh challenge' "$AGENT_LOG") > nproved)) ||
	tg_fail "the agent did not prove the key again after the restart: $(tail -n 3 "$AGENT_LOG")"
# PIN and PUK counters and the slots as before; the agent's login was the right PIN
[[ $(sim_json pin.tries_left) == "$pin0" && $(sim_json puk.tries_left) == "$puk0" ]] ||
	tg_fail "after recovery: PIN/PUK tries left $(sim_json pin.tries_left)/$(sim_json puk.tries_left), want $pin0/$puk0"
[[ $(sim_json slots) == "$slots0" ]] || tg_fail "the slots changed: $slots0 -> $(sim_json slots)"
grep -Eq 'sim\.apdu 00 20 00 80 \([0-9]+ bytes\) -> 9000' "$TG_SIM_LOG" ||
	tg_fail "the restarted simulator saw no successful VERIFY (the agent's login)"
if grep -Eh 'sim\.apdu 00 2[0c] .* -> (63c[0-2]|6983)' "$TG_TMP"/sim.*.log; then
	tg_fail "a VERIFY was answered with a wrong-PIN or blocked status (above)"
fi
ops2=$(sim_ops)
echo "ok: simulator restarted: 200 again $((t_back - t_s)) ms after the restart began, same agent (pid $AGENT_PID)," \
	"PIN/PUK tries $pin0/$puk0 unchanged, key proven and accepted by the gate with the same leaf" \
	"(token operations $ops1 -> $ops2)"

# =====================================================================
# 3. clean stop; the audit chain
# =====================================================================
tg_log "agent at the end: full handshakes $(full_hs), failed handshakes" \
	"$(agent_metric 'tokengate_agent_handshakes_total{result="failed"}'), its token operations" \
	"$(agent_metric tokengate_agent_token_operations_total), the token's own count $(sim_ops)"
agent_stop
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC on SIGTERM"
grep -q 'tokengate agent: stopped' "$AGENT_LOG" || tg_fail "the agent's log does not end with 'stopped': $(tail -n 3 "$AGENT_LOG")"
gate_stop
((GATE_RC == 0)) || tg_fail "the gate exited $GATE_RC on SIGTERM"
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "the audit chain does not verify: $(cat verify.out)"
echo "ok: agent and gate stopped with exit 0; audit: $(cat verify.out)"
tg_log "total $(ms_since "$T0") ms"
echo PASS
