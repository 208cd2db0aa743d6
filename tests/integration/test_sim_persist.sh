#!/usr/bin/env bash
# test_sim_persist.sh — tokengate-sim's state survives kill -9: keys,
# certificates and PIN counters are there after a restart, and a wrong PIN
# is counted even when the process is killed right after answering the
# VERIFY (the counter is decremented and written before the compare); PIN
# guessing with 5 configured tries blocks the PIN after exactly 5, across
# power-offs (removal and insertion), restarts and kill -9; a state file
# others can read is served with a warning; the debug log holds no PIN.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool openssl python3
sim_up
T=$TG_TMP
st=$TG_SIM_STATE

# The state file is private.
[[ $(stat -c %a "$st") == 600 ]] || tg_fail "state file mode $(stat -c %a "$st"), want 600"

gen_cert 9a ECCP256 --pin-policy=once
gen_cert 9d RSA2048 --pin-policy=once

# --- keys survive kill -9 -------------------------------------------------
tg_sim_kill9
tg_sim_start "$st" --log-level info
for s in 9a 9d; do
	run_ok "read-certificate $s after kill -9" ypt -a read-certificate -s "$s" -o "$T/$s.after.pem"
	cmp -s <(openssl x509 -in "$T/$s.after.pem" -outform DER) \
		<(openssl x509 -in "$T/$s.cert.pem" -outform DER) ||
		tg_fail "$s: certificate changed across kill -9"
	# The same private key signs: test-signature verifies with the old cert.
	token_signs "$s"
done
echo "ok: keys and certificates survive kill -9"

# --- a wrong PIN is counted even when killed right after the VERIFY -------
WRONG=0020008008313131313131FFFF # "111111", FF-padded
[[ $(apdu 00200080) == 63C3 ]] || tg_fail "PIN status before: $(apdu 00200080), want 63C3"
sw=$(apdu "$WRONG")
tg_sim_kill9
[[ $sw == 63C2 ]] || tg_fail "wrong PIN answered $sw, want 63C2"
tg_sim_start "$st" --log-level info
sw=$(apdu 00200080)
[[ $sw == 63C2 ]] || tg_fail "after kill -9: PIN status $sw, want 63C2 (the wrong try was lost)"
[[ $(sim_json pin.tries_left) == 2 ]] || tg_fail "status: PIN tries left $(sim_json pin.tries_left)"
echo "ok: wrong PIN counted across kill -9 (63C2)"

# Two more wrong tries, each followed by kill -9: the PIN ends blocked.
for want in 63C1 63C0; do
	sw=$(apdu "$WRONG")
	tg_sim_kill9
	[[ $sw == "$want" ]] || tg_fail "wrong PIN answered $sw, want $want"
	tg_sim_start "$st" --log-level info
done
[[ $(apdu 00200080) == 6983 ]] || tg_fail "PIN status after 3 wrong tries: $(apdu 00200080), want 6983"
expect_fail "right PIN while blocked" ypt -a verify-pin -P "$SIM_PIN"
echo "ok: PIN blocked after 3 wrong tries across kill -9"

# The PUK counter persists too, and unblocking is persisted.
run_ok "unblock-pin" ypt -a unblock-pin -P "$SIM_PUK" -N 654321
tg_sim_kill9
tg_sim_start "$st" --log-level info
run_ok "new PIN after kill -9" ypt -a verify-pin -P 654321
[[ $(sim_json pin.tries_left) == 3 ]] || tg_fail "PIN tries left $(sim_json pin.tries_left), want 3"
echo "ok: unblock-pin persisted"

# --- configured tries: 5, guessed across restarts and power-offs ----------
# pin-retries sets the PIN's tries to 5 (and the PIN back to the default);
# five wrong guesses, with a power-off (removal and insertion) and a restart
# (SIGTERM, then run again) in between, leave it blocked: neither a
# power-off nor a restart gives a try back.
run_ok "pin-retries 5" ypt -k"$SIM_MGM" -a verify-pin -P 654321 -a pin-retries \
	--pin-retries=5 --puk-retries=4
power_off_on()
{
	kill -USR1 "$TG_SIM_PID"
	tg_wait_until "$TG_WAIT_SECS" tg__not tg_reader_card_present || tg_fail "the card did not go away on SIGUSR1"
	kill -USR2 "$TG_SIM_PID"
	tg_wait_until "$TG_WAIT_SECS" tg_reader_card_present || tg_fail "the card did not come back on SIGUSR2"
}
[[ $(apdu 00200080) == 63C5 ]] || tg_fail "PIN status after pin-retries 5: $(apdu 00200080), want 63C5"
i=0
for want in 63C4 63C3 63C2 63C1 63C0; do
	i=$((i + 1))
	sw=$(apdu "$WRONG")
	[[ $sw == "$want" ]] || tg_fail "wrong guess $i answered $sw, want $want"
	case $((i % 3)) in
	1) power_off_on ;;
	2)
		tg_sim_stop
		tg_sim_start "$st" --log-level info
		;;
	0) tg_sim_kill9 && tg_sim_start "$st" --log-level info ;;
	esac
	status=$want
	[[ $want != 63C0 ]] || status=6983 # no try left: blocked
	[[ $(apdu 00200080) == "$status" ]] || tg_fail "after guess $i and a power-off or restart: $(apdu 00200080), want $status"
done
[[ $(apdu 00200080) == 6983 ]] || tg_fail "PIN status after 5 wrong guesses: $(apdu 00200080), want 6983"
expect_fail "the right PIN once blocked" ypt -a verify-pin -P "$SIM_PIN"
power_off_on
expect_fail "the right PIN once blocked, after a power-off" ypt -a verify-pin -P "$SIM_PIN"
[[ $(sim_json pin.tries_left) == 0 ]] || tg_fail "status: PIN tries left $(sim_json pin.tries_left), want 0"
run_ok "unblock-pin after the guessing" ypt -a unblock-pin -P "$SIM_PUK" -N 654321
echo "ok: PIN blocked after its 5 configured tries, guessed across power-offs, restarts and kill -9"

# No temporary files are left beside the state file.
left=$(find "$(dirname "$st")" -maxdepth 1 -name "$(basename "$st").tmp.*" | wc -l)
((left == 0)) || tg_fail "$left temporary state files left behind"

# While a simulator serves the state, neither a second one nor init --force
# may touch it.
sum=$(sha256sum <"$st")
expect_fail "second run on the same state" "$SIM_BIN" run --state "$st" --vpcd "127.0.0.1:$TG_VPCD_PORT"
grep -q 'stop it first' "$T/last.out" || tg_fail "second run: $(cat "$T/last.out")"
expect_fail "init --force on a served state" "$SIM_BIN" init --state "$st" --force
grep -q 'stop it first' "$T/last.out" || tg_fail "init --force: $(cat "$T/last.out")"
[[ $(sha256sum <"$st") == "$sum" ]] || tg_fail "the served state file was changed"
tg__pid_alive "$TG_SIM_PID" || tg_fail "the serving simulator died"
echo "ok: a served state file is locked against a second run and init --force"

# A damaged state file is refused with a message naming it.
tg_sim_stop
cp "$st" "$T/damaged.state"
printf '\x55' | dd of="$T/damaged.state" bs=1 seek=40 conv=notrunc 2>/dev/null
if "$SIM_BIN" status --state "$T/damaged.state" >"$T/out" 2>&1; then
	# The byte may have held the same value; flip another.
	printf '\xAA' | dd of="$T/damaged.state" bs=1 seek=40 conv=notrunc 2>/dev/null
	! "$SIM_BIN" status --state "$T/damaged.state" >"$T/out" 2>&1 ||
		tg_fail "a damaged state file was accepted"
fi
grep -q "$T/damaged.state" "$T/out" || tg_fail "error does not name the file: $(cat "$T/out")"
echo "ok: damaged state refused: $(cat "$T/out")"

# A state file others can read is served with a warning; the debug log
# shows each APDU's header and status, never its data (the PIN).
chmod 644 "$st"
tg_sim_start "$st" --log-level debug
grep -q "state file.*(it holds private keys)" "$TG_SIM_LOG" ||
	tg_fail "no warning for a state file of mode 0644: $(head -n 5 "$TG_SIM_LOG")"
run_ok "verify-pin with debug logs" ypt -a verify-pin -P 654321
run_ok "change-pin with debug logs" ypt -a change-pin -P 654321 -N 135790
grep -q "sim.apdu" "$TG_SIM_LOG" || tg_fail "no APDU in the debug log: $(tail -n 5 "$TG_SIM_LOG")"
for pin in 654321 135790; do
	hex=$(printf '%s' "$pin" | od -An -tx1 | tr -d ' \n')
	spaced=$(printf '%s' "$pin" | od -An -tx1 | sed 's/^ //')
	! grep -qi -e "$pin" -e "$hex" -e "$spaced" "$TG_SIM_LOG" ||
		tg_fail "the debug log holds PIN $pin: $(grep -i -e "$pin" -e "$hex" -e "$spaced" "$TG_SIM_LOG" | head -n 3)"
done
chmod 600 "$st"
echo "ok: a 0644 state file is served with a warning; the debug log holds no PIN"
echo PASS
