#!/usr/bin/env bash
# test_pcsc_fixture.sh        the private pcscd fixture: two instances at
#                             once, each with the vpcd reader on its own
#                             socket and port; the system's pcscd socket
#                             untouched; nothing left after stop/exit.
# test_pcsc_fixture.sh sim    the simulator hooks (tg_sim_*, with-pcscd.sh
#                             --sim) against tokengate-sim; skipped while
#                             tokengate-sim is not built.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"

tg_require_cmd opensc-tool ss stat

SYS_SOCK=/run/pcscd/pcscd.comm

# "absent" or "inode:mtime" of the system socket.
sys_sock_state()
{
	if [[ -e $SYS_SOCK ]]; then
		stat -c '%i:%Y' "$SYS_SOCK"
	else
		echo absent
	fi
}

# Is anything mounted on /run/pcscd in our own mount namespace?
run_pcscd_mounted()
{
	awk '$5 == "/run/pcscd" { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# PIDs of processes whose command line mentions our temp dir.
our_pids()
{
	local p cmd
	for p in /proc/[0-9]*; do
		cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		[[ $cmd == *"$TG_TMP"* ]] && echo "${p#/proc/}"
	done
	return 0
}

check_instance()
{
	local name=$1 sock=$2 port=$3 pid=$4 out
	[[ -S $sock ]] || tg_fail "$name: no socket at $sock"
	[[ $sock == "$TG_TMP"/* ]] || tg_fail "$name: socket $sock outside the temp dir"
	out=$(PCSCLITE_CSOCK_NAME=$sock opensc-tool -l 2>&1) ||
		tg_fail "$name: opensc-tool -l failed on $sock: $out"
	grep -q "Virtual PCD 00 00\$" <<<"$out" ||
		tg_fail "$name: reader 'Virtual PCD 00 00' not listed on $sock: $out"
	grep -q "Virtual PCD 00 01\$" <<<"$out" ||
		tg_fail "$name: reader 'Virtual PCD 00 01' not listed on $sock: $out"
	for p in "$port" "$((port + 1))"; do
		ss -Hltnp "sport = :$p" | grep -q "pid=$pid," ||
			tg_fail "$name: vpcd port $p not listened on by pcscd $pid"
	done
	[[ $(readlink "/proc/$pid/ns/mnt") != "$(readlink /proc/self/ns/mnt)" ]] ||
		tg_fail "$name: pcscd $pid runs in our mount namespace"
	echo "ok: $name: pcscd $pid, socket $sock, vpcd ports $port/$((port + 1)), reader listed"
}

check_gone()
{
	local name=$1 sock=$2 port=$3 pid=$4
	! tg__pid_alive "$pid" || tg_fail "$name: pcscd $pid still running after stop"
	tg_port_free "$port" "$((port + 1))" ||
		tg_fail "$name: vpcd ports $port/$((port + 1)) still in use after stop"
	[[ ! -S $sock ]] || tg_fail "$name: socket $sock left after stop"
	echo "ok: $name stopped: process gone, ports free, socket gone"
}

test_two_instances()
{
	local before after sa pa ida sb pb idb out rc wsock left
	before=$(sys_sock_state)
	! run_pcscd_mounted || tg_fail "/run/pcscd is already a mount point in our namespace"

	tg_pcscd_start a
	sa=$PCSCLITE_CSOCK_NAME pa=$TG_VPCD_PORT ida=$TG_PCSCD_PID
	tg_pcscd_start b
	sb=$PCSCLITE_CSOCK_NAME pb=$TG_VPCD_PORT idb=$TG_PCSCD_PID
	[[ $sa != "$sb" ]] || tg_fail "both instances share socket $sa"
	((pa != pb && pa + 1 != pb && pb + 1 != pa)) ||
		tg_fail "instances share vpcd ports ($pa, $pb)"
	[[ $ida != "$idb" ]] || tg_fail "both instances are process $ida"

	check_instance a "$sa" "$pa" "$ida"
	check_instance b "$sb" "$pb" "$idb"

	# tg_pcscd_use switches the exported variables between instances.
	tg_pcscd_use a
	[[ $PCSCLITE_CSOCK_NAME == "$sa" && $TG_VPCD_PORT == "$pa" ]] ||
		tg_fail "tg_pcscd_use a exported $PCSCLITE_CSOCK_NAME/$TG_VPCD_PORT"

	# A third one through the wrapper, beside the two; status passed on.
	out=$(bash "$TG_FIXTURES/with-pcscd.sh" bash -c '
		echo "sock=$PCSCLITE_CSOCK_NAME"
		opensc-tool -l | grep -q "Virtual PCD 00 00\$" || exit 9
		exit 4') && rc=0 || rc=$?
	((rc == 4)) || tg_fail "with-pcscd.sh returned $rc, expected the command's 4: $out"
	wsock=$(sed -n 's/^sock=//p' <<<"$out")
	[[ -n $wsock && $wsock != "$sa" && $wsock != "$sb" ]] ||
		tg_fail "with-pcscd.sh did not get a socket of its own: '$wsock'"
	[[ ! -e $wsock && ! -e ${wsock%/run/*} ]] ||
		tg_fail "with-pcscd.sh left $wsock behind"
	echo "ok: with-pcscd.sh beside them (own socket, status passed, removed)"

	# Nothing of ours leaked into the host's view of /run/pcscd.
	after=$(sys_sock_state)
	[[ $before == "$after" ]] ||
		tg_fail "system socket $SYS_SOCK changed while ours ran: $before -> $after"
	! run_pcscd_mounted || tg_fail "a bind mount over /run/pcscd leaked into our namespace"
	echo "ok: $SYS_SOCK untouched ($after), no mount visible outside"

	tg_pcscd_stop a
	check_gone a "$sa" "$pa" "$ida"
	# b keeps running while a is stopped.
	check_instance b "$sb" "$pb" "$idb"
	tg_pcscd_stop b
	check_gone b "$sb" "$pb" "$idb"
	[[ -z ${PCSCLITE_CSOCK_NAME:-} ]] ||
		tg_fail "PCSCLITE_CSOCK_NAME still set after stopping: $PCSCLITE_CSOCK_NAME"
	left=$(our_pids | grep -vx "$$" | grep -vx "$BASHPID" || true)
	for p in $left; do
		if tg__pid_alive "$p" && [[ $({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null) == *pcscd* ]]; then
			tg_fail "pcscd process $p of ours still running"
		fi
	done
	after=$(sys_sock_state)
	[[ $before == "$after" ]] ||
		tg_fail "system socket $SYS_SOCK changed: $before -> $after"
	echo "ok: both stopped, no pcscd of ours left, $SYS_SOCK untouched"
}

# A test that exits (normally, by failing, or by SIGTERM) with a pcscd
# running leaves nothing behind.
test_cleanup_on_exit()
{
	local how line ctmp cpid cport
	for how in 'exit 0' 'false' 'kill -TERM $$; sleep 5'; do
		line=$(bash -c 'set -euo pipefail
			source "$TG_FIXTURES/fixtures.sh"
			tg_pcscd_start
			echo "$TG_TMP $TG_PCSCD_PID $TG_VPCD_PORT"
			'"$how" 2>/dev/null) || true
		read -r ctmp cpid cport <<<"$line"
		[[ -n ${cport:-} ]] || tg_fail "child ($how) printed '$line'"
		! tg__pid_alive "$cpid" || tg_fail "child ($how) left pcscd $cpid running"
		tg_port_free "$cport" "$((cport + 1))" ||
			tg_fail "child ($how) left vpcd ports $cport/$((cport + 1)) in use"
		[[ ! -e $ctmp ]] || tg_fail "child ($how) left $ctmp behind"
		echo "ok: nothing left after child '$how'"
	done
}

test_sim()
{
	[[ -x $TG_BIN_DIR/tokengate-sim ]] ||
		tg_skip "tokengate-sim not built in $TG_BIN_DIR"
	local out rc
	tg_pcscd_start
	tg_sim_init "$TG_TMP/card.state"
	tg_sim_start "$TG_TMP/card.state"
	tg_reader_card_present || tg_fail "no card in '$TG_READER' after tg_sim_start"
	echo "ok: tg_sim_start: card in '$TG_READER'"
	tg_sim_kill9
	! tg_reader_card_present || tg_fail "card still present after tg_sim_kill9"
	echo "ok: tg_sim_kill9: card gone"
	tg_sim_start "$TG_TMP/card.state"
	echo "ok: restarted on the same state"
	tg_sim_stop
	! tg_reader_card_present || tg_fail "card still present after tg_sim_stop"
	echo "ok: tg_sim_stop: card gone"
	tg_pcscd_stop

	out=$(bash "$TG_FIXTURES/with-pcscd.sh" --sim bash -c '
		opensc-tool -l | grep -Eq "^[0-9]+ +Yes .*$TG_READER\$" || exit 9
		kill -0 "$TG_SIM_PID" || exit 8
		[[ -f $TG_SIM_STATE ]] || exit 7
		exit 5') && rc=0 || rc=$?
	((rc == 5)) || tg_fail "with-pcscd.sh --sim returned $rc, expected 5: $out"
	echo "ok: with-pcscd.sh --sim"
}

case ${1:-pcscd} in
pcscd)
	test_two_instances
	test_cleanup_on_exit
	;;
sim) test_sim ;;
*) tg_fail "unknown mode '$1' (pcscd or sim)" ;;
esac
echo "PASS"
