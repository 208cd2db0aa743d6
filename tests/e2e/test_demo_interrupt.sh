#!/usr/bin/env bash
# test_demo_interrupt.sh — `make demo` interrupted with Ctrl-C leaves
# nothing behind. scripts/demo runs in a session of its own; in the middle
# of its tour (while alice's completion streams: pcscd, the simulator, the
# platform, the gate and the agents all running) its process group gets
# SIGINT, as a terminal's Ctrl-C does. Asserted: it exits 130 saying it was
# interrupted, no process it started is left (those seen before the
# interrupt, and any with its throw-away directory on the command line),
# the throw-away directory is gone, and its logs were copied out.
# Usage: test_demo_interrupt.sh BUILD_DIR
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
BUILD=${1:-$TG_BUILD_DIR}
DEMO=$TG_SOURCE_DIR/scripts/demo
tg_require_cmd setsid ps
((EUID == 0)) || tg_skip "the demo's private pcscd needs root"
cd "$TG_TMP"

# pids_of DIR: the processes (other than this test's) with DIR on their
# command line. One grep over /proc: a loop of greps takes seconds on a
# loaded machine, and the demo goes on meanwhile.
pids_of()
{
	grep -lsF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null |
		sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p' | grep -vx -e "$$" -e "$BASHPID" || true
}
# session_pids SID: the processes of session SID.
session_pids()
{
	ps -eo pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'
}

# A command started with & by a shell without job control ignores SIGINT,
# and bash cannot trap a signal ignored on entry: give it back its default,
# as a terminal's foreground job has.
# The stream slowed down (events 2 s apart) so the interrupt lands in it
# however loaded the machine is.
TG_DEMO_CHUNK_MS=2000 env --default-signal=INT setsid bash "$DEMO" "$BUILD" --logs "$TG_TMP/logs" \
	>demo.out 2>demo.err &
DPID=$!
tg_on_exit kill -KILL -- "-$DPID"
# (the comm field has no space: bash, setsid)
own_session()
{
	local pgid sid
	read -r _ _ _ _ pgid sid _ <"/proc/$DPID/stat" || return 1
	[[ $pgid == "$DPID" && $sid == "$DPID" ]]
}
tg_wait_until 10 own_session ||
	tg_fail "setsid did not give the demo a session of its own: $(cat "/proc/$DPID/stat" 2>&1) $(cat demo.err)"

# The middle of the tour: the first streamed event has arrived.
streaming()
{
	grep -q '^ *+[0-9.]*s  "' demo.out
}
if ! tg_wait_until 180 streaming; then
	cat demo.out demo.err >&2
	tg_fail "the demo did not reach its streaming step within 180 s"
fi
DIR=$(sed -n 's/^Throw-away directory (removed at the end): //p' demo.out)
[[ -n $DIR && -d $DIR ]] || tg_fail "no throw-away directory in the demo's output: $(head -n3 demo.out)"
# whatever the outcome, this test leaves none of the demo's processes
reap()
{
	local p
	kill -KILL -- "-$DPID" 2>/dev/null || true
	for p in $(pids_of "$DIR"); do
		kill -KILL "$p" 2>/dev/null || true
	done
	# (a demo killed by the test's own cleanup could not remove it)
	[[ $DIR == /*/tg-demo.* ]] && rm -rf -- "$DIR"
	return 0
}
tg_on_exit reap
mapfile -t BEFORE < <({ pids_of "$DIR"; session_pids "$DPID"; } | sort -un)
tg__pid_alive "$DPID" ||
	tg_fail "the demo ended before the test could interrupt it: $(tail -n 3 demo.out)"
names=$(for p in "${BEFORE[@]}"; do
	{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null || true
	echo
done)
for want in pcscd tokengate-sim llm-platform.py 'tokengate gate'; do
	grep -qF -- "$want" <<<"$names" || tg_fail "before the interrupt, no '$want' among the demo's processes: $names"
done
echo "before Ctrl-C: ${#BEFORE[@]} processes, $DIR present"

kill -INT -- "-$DPID"
t0=$(tg__now_ms)
rc=0
wait "$DPID" || rc=$?
echo "the demo exited $rc, $(($(tg__now_ms) - t0)) ms after SIGINT"
[[ $rc == 130 ]] || tg_fail "the demo exited $rc after SIGINT, want 130: $(tail -n 5 demo.err)"
grep -q 'interrupted' demo.err || tg_fail "the demo did not say it was interrupted: $(cat demo.err)"

left=()
for p in "${BEFORE[@]}"; do
	tg__pid_alive "$p" && left+=("$p: $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)")
done
for p in $(pids_of "$DIR"); do
	tg__pid_alive "$p" && left+=("$p: $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)")
done
((${#left[@]} == 0)) || tg_fail "processes left after Ctrl-C: $(printf '%s; ' "${left[@]}")"
[[ ! -e $DIR ]] || tg_fail "the throw-away directory $DIR is still there after Ctrl-C"
[[ -s $TG_TMP/logs/gate.log && -s $TG_TMP/logs/llm-platform.log ]] ||
	tg_fail "the logs were not copied to --logs: $(ls -la "$TG_TMP/logs" 2>&1)"
echo "ok: Ctrl-C stopped all ${#BEFORE[@]} processes, removed $DIR, kept the logs"
