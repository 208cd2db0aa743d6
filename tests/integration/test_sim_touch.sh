#!/usr/bin/env bash
# test_sim_touch.sh — simulated touch and latency: with --touch signal a
# SIGHUP while the token waits is the touch; without it the operation fails
# (6982 from the core, an error in yubico-piv-tool); a cached touch covers
# the next operation; --touch deny refuses; --sign-latency-ms still answers
# and the operation count grows. No timing is asserted.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool openssl python3
sim_up -- --touch signal --touch-timeout-ms 3000
T=$TG_TMP
st=$TG_SIM_STATE

gen_cert 9a ECCP256 --pin-policy=once --touch-policy=always
gen_cert 9c ECCP256 --pin-policy=always --touch-policy=cached

# waits_for_touch N: the simulator logged its N-th touch wait.
waits_for_touch()
{
	(($(grep -c 'sim.touch.wait' "$TG_SIM_LOG") >= $1))
}

# sign_touched SLOT N: sign with SLOT; SIGHUP once the N-th touch wait shows.
sign_touched()
{
	local slot=$1 n=$2 pid rc=0
	ypt -a verify-pin -P "$SIM_PIN" -a test-signature -s "$slot" -i "$T/$slot.cert.pem" \
		>"$T/bg.out" 2>&1 &
	pid=$!
	if ! tg_wait_until 30 waits_for_touch "$n"; then
		wait "$pid" || true
		tg_fail "$slot: the simulator never asked for a touch: $(cat "$T/bg.out")"
	fi
	kill -HUP "$TG_SIM_PID"
	wait "$pid" || rc=$?
	((rc == 0)) || tg_fail "$slot: signing with a touch failed: $(cat "$T/bg.out")"
	grep -q 'Successful .* verification' "$T/bg.out" || tg_fail "$slot: $(cat "$T/bg.out")"
}

# A stray SIGHUP while nothing waits is not a touch for later.
kill -HUP "$TG_SIM_PID"
sleep 0.2
sign_touched 9a 1
echo "ok: SIGHUP during the wait is the touch (9a, touch always)"

# No touch: the operation fails after the timeout.
expect_fail "9a without touch" ypt -a verify-pin -P "$SIM_PIN" -a test-signature -s 9a \
	-i "$T/9a.cert.pem"
grep -q 'touch not given' "$TG_SIM_LOG" || tg_fail "simulator did not log the missing touch"
echo "ok: no touch: operation refused"

# Touch always: a second operation needs a second touch.
sign_touched 9a 3
echo "ok: touch always asks every time"

# Touch cached: one touch, then a second operation within 15 s needs none
ypt -P "$SIM_PIN" -s 9c -i "$T/9c.cert.pem" -a verify-pin -a test-signature \
	-a verify-pin -a test-signature >"$T/bg.out" 2>&1 &
pid=$!
tg_wait_until 30 waits_for_touch 4 || tg_fail "9c: no touch asked: $(cat "$T/bg.out")"
kill -HUP "$TG_SIM_PID"
rc=0
wait "$pid" || rc=$?
((rc == 0)) || tg_fail "9c twice with one touch failed: $(cat "$T/bg.out")"
(($(grep -c 'Successful ECDSA verification' "$T/bg.out") == 2)) ||
	tg_fail "9c: expected two verified signatures: $(cat "$T/bg.out")"
(($(grep -c 'sim.touch.wait' "$TG_SIM_LOG") == 4)) || tg_fail "cached touch asked again"
echo "ok: touch cached covers the next operation in the session"
# ...and a new session right after (pcscd resets the card in between).
token_signs 9c
(($(grep -c 'sim.touch.wait' "$TG_SIM_LOG") == 4)) || tg_fail "cached touch lost by the card reset"
echo "ok: touch cached survives a card reset (next session)"

# --touch deny.
tg_sim_stop
tg_sim_start "$st" --log-level info --touch deny
expect_fail "9a with --touch deny" ypt -a verify-pin -P "$SIM_PIN" -a test-signature -s 9a \
	-i "$T/9a.cert.pem"
echo "ok: --touch deny refuses"

# --touch auto and --sign-latency-ms: answers arrive, the count grows.
tg_sim_stop
tg_sim_start "$st" --log-level info --touch auto --sign-latency-ms 150
before=$(sim_json private_key_operations)
token_signs 9a
after=$(sim_json private_key_operations)
((after == before + 1)) || tg_fail "private_key_operations $before -> $after, want +1"
echo "ok: --touch auto with --sign-latency-ms 150; operations $before -> $after"
echo PASS
