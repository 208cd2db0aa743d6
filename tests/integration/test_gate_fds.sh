#!/usr/bin/env bash
# test_gate_fds.sh — the gate out of file descriptors (accept's EMFILE):
#   the gate runs with a low descriptor limit (prlimit --nofile); a flood of
#   idle TCP connections takes every descriptor it has left;
#   - it says why, naming the listener ("accept failed: Too many open
#     files; pausing it for 100 ms"), and does not spin on the listening
#     socket (its CPU over 2 s of exhaustion stays far below a CPU);
#   - a keep-alive client connected before the flood goes on being served
#     on its connection, with no failed request;
#   - once the flood goes away the gate accepts and serves new connections
#     again, and its descriptors come back to where they were.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
tg_require_cmd prlimit python3
cd "$TG_TMP"
gate_pki
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up

NOFILE=64
GATE_WRAP=(prlimit --nofile=$NOFILE:$NOFILE)
gate_start
unset GATE_WRAP
fds() { find "/proc/$GATE_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$GATE_PID/stat"; }
fd0=$(fds)
((fd0 < NOFILE - 20)) || tg_fail "the gate already holds $fd0 of its $NOFILE descriptors at start"

# a keep-alive client, connected (and served) before the flood
gate_py alice loop /echo --stop-file loop.stop >loop.json 2>loop.err &
LOOP=$!
tg_wait_until 10 grep -q '"decision":"allow"' "$GATE_AUDIT" || tg_fail "the keep-alive client got nowhere: $(cat loop.err)"

# the flood: idle TCP connections held open (the kernel completes them; the
# gate accepts until it has no descriptor left)
python3 - "$GATE_PORT" flood.ready <<'EOF' &
import socket, sys, time
port, ready = int(sys.argv[1]), sys.argv[2]
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(120)]
open(ready, "w").write("%d\n" % len(held))
time.sleep(600)
EOF
FLOOD=$!
stop_flood() { kill "$FLOOD" 2>/dev/null || true; }
tg_on_exit stop_flood
tg_wait_until 20 test -s flood.ready || tg_fail "the flood did not connect"
tg_wait_until 10 grep -qF "listener 'main': accept failed: Too many open files; pausing it for 100 ms" "$GATE_LOG" ||
	tg_fail "no log line for the exhausted descriptors: $(tail -5 "$GATE_LOG"); $(fds) fds"
echo "ok: out of descriptors ($(fds) open, limit $NOFILE): $(grep -m1 'accept failed' "$GATE_LOG")"
# the gate's CPU with its client paused: only the listening socket is left
# to wake it (200 ticks would be a whole CPU for 2 s; a spin on EMFILE
# takes one per worker)
# (gate_py runs the client in a child of the background shell)
loop_pids=("$LOOP" $(pgrep -P "$LOOP" || true))
kill -STOP "${loop_pids[@]}"
sleep 0.2
c0=$(cpu_ticks)
sleep 2
c1=$(cpu_ticks)
kill -CONT "${loop_pids[@]}"
(((c1 - c0) <= 20)) || tg_fail "the gate used $((c1 - c0)) CPU ticks in 2 s while out of descriptors and idle (a spin?); threads: $(for t in /proc/$GATE_PID/task/*; do printf '%s ' "$(awk '{print $2, $14+$15}' "$t/stat")"; done); log: $(grep -c . "$GATE_LOG") lines, $(tail -3 "$GATE_LOG")"
n_during=$(grep -c '"event":"request"' "$GATE_AUDIT")
sleep 1
(($(grep -c '"event":"request"' "$GATE_AUDIT") > n_during)) ||
	tg_fail "the keep-alive client connected before the flood is no longer served"
echo "ok: while out of descriptors the gate does not spin ($((c1 - c0)) ticks in 2 s) and serves the connection it had"

# the flood goes away: the gate accepts again
stop_flood
wait "$FLOOD" 2>/dev/null || true
tg_wait_until 20 sh -c "[ \$(find /proc/$GATE_PID/fd -mindepth 1 -maxdepth 1 | wc -l) -le $((fd0 + 4)) ]" ||
	tg_fail "the gate's descriptors did not come back: $(fds) (at start $fd0)"
out=$(gate_py alice req /echo) || tg_fail "a new connection after the flood: $out"
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "a new connection after the flood: $out"
touch loop.stop
wait "$LOOP" || tg_fail "the keep-alive client failed: $(cat loop.err)"
[[ $(jq -r .fail loop.json) == 0 ]] || tg_fail "the keep-alive client saw failures: $(cat loop.json)"
echo "ok: after the flood the gate serves new connections ($(fds) fds, $fd0 at start); the keep-alive client made $(jq -r .ok loop.json) requests, none failed"
gate_stop
"$TG" audit verify "$GATE_AUDIT" >/dev/null || tg_fail "the audit log does not verify"
