#!/usr/bin/env bash
# test_p11_watch_sim.sh — libtgp11's presence watcher against cards that try
# to pass for the watched one, on simulated PIV cards behind a private
# pcscd and OpenSC (through OpenSC's pkcs11-spy, which logs every call):
#   B  carries card A's CHUID (so OpenSC shows A's token serial), its own key
#      and another PIN: REPLACED before login; B's PIN counter stays at 3;
#   B2 carries A's CHUID and A's certificate (so the public key it shows is
#      A's) over its own key: REPLACED by the failed proof, logged out again;
#   A  back: INSERTED and the key signs again;
#   C  another serial in the slot for seconds: no event, no C_GetTokenInfo
#      per poll, and A is taken back afterwards.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool pkcs11-tool openssl python3
[[ -e $TG_OPENSC_MODULE ]] || tg_skip "OpenSC PKCS#11 module $TG_OPENSC_MODULE not found; install opensc-pkcs11"
SPY=$(dirname "$(readlink -f "$TG_OPENSC_MODULE")")/pkcs11-spy.so
[[ -e $SPY ]] || tg_skip "OpenSC's pkcs11-spy.so not found next to $TG_OPENSC_MODULE"
WATCH="$TG_BUILD_DIR/tests/p11_watch_probe"
unset TOKENGATE_PIN
T=$TG_TMP
cd "$T"

token_serial() {
	p11 -L 2>/dev/null | sed -n 's/^ *serial num *: *//p' | head -n 1
}
token_label() {
	p11 -L 2>/dev/null | sed -n 's/^ *token label *: *//p' | head -n 1
}
# new_card NAME PIN: a fresh simulated card in the (empty) reader.
new_card() {
	tg_sim_init "$T/$1.state" --pin "$2"
	tg_sim_start "$T/$1.state" --log-level info
}
# swap_to NAME: the card in the reader is taken out and NAME's put in.
swap_to() {
	tg_sim_stop
	tg_sim_start "$T/$1.state" --log-level info
}
pin_tries() { # pin_tries NAME
	"$SIM_BIN" status --state "$T/$1.state" --json | python3 -c 'import json,sys
print(json.load(sys.stdin)["pin"]["tries_left"])'
}
# wait_event N WHAT: watch.out has N lines starting with WHAT.
wait_event() {
	tg_wait_until 30 bash -c "[[ \$(grep -c '^$2' watch.out) -ge $1 ]]" || {
		cat watch.out >&2
		tg_fail "no '$2' number $1 from the watcher"
	}
}

# ---- card A: the user's; its CHUID is what an attacker copies ----------
tg_pcscd_start
tg_sim_init "$T/a.state"
tg_sim_start "$T/a.state" --log-level info
gen_cert 9a ECCP256 --pin-policy=once
cp 9a.cert.pem a.cert.pem
run_ok "read A's CHUID" ypt -a read-object --id 0x5fc102 -f binary -o chuid.bin
serial_a=$(token_serial)
label=$(token_label)
[[ -n $serial_a ]] || tg_fail "no token serial for card A: $(p11 -L 2>&1)"
tg_log "card A: token '$label', serial $serial_a"

# ---- card B: A's CHUID, its own key and certificate, another PIN ---------
tg_sim_stop
new_card b 654321
gen_cert 9a ECCP256 --pin-policy=once
run_ok "write A's CHUID to B" ypt -k"$SIM_MGM" -a write-object --id 0x5fc102 -f binary -i chuid.bin
[[ $(token_serial) == "$serial_a" && $(token_label) == "$label" ]] ||
	tg_fail "card B does not pass for A: $(p11 -L 2>&1)"

# ---- card B2: A's CHUID and A's certificate over its own key -------------
tg_sim_stop
new_card b2 "$SIM_PIN"
run_ok "generate in B2" ypt -k"$SIM_MGM" -a generate -s 9a -A ECCP256 --pin-policy=once -o b2.pub.pem
run_ok "import A's certificate to B2" ypt -k"$SIM_MGM" -a import-certificate -s 9a -i a.cert.pem
run_ok "write A's CHUID to B2" ypt -k"$SIM_MGM" -a write-object --id 0x5fc102 -f binary -i chuid.bin
[[ $(token_serial) == "$serial_a" && $(token_label) == "$label" ]] ||
	tg_fail "card B2 does not pass for A: $(p11 -L 2>&1)"

# ---- card C: another serial, same label ----------------------------------
tg_sim_stop
new_card c "$SIM_PIN"
gen_cert 9a ECCP256 --pin-policy=once
[[ $(token_serial) != "$serial_a" ]] || tg_fail "card C has A's serial"

# ---- the watcher on A's key, through pkcs11-spy --------------------------
swap_to a
enc_label=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$label")
# OpenSC's pkcs11-spy leaks and is dlclosed before LeakSanitizer runs, so
# its leaks cannot be suppressed by frame name (as in test_p11_cli): leak
# checking is off for this probe; test_p11_sim runs it without the spy.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
	PKCS11SPY=$TG_OPENSC_MODULE PKCS11SPY_OUTPUT=$T/spy.log TOKENGATE_PIN=$SIM_PIN \
	"$WATCH" "pkcs11:token=$enc_label;id=%01?module-path=$SPY" 240 6 \
	>watch.out 2>&1 &
wpid=$!
tg_on_exit bash -c "kill $wpid 2>/dev/null || true"
tg_wait_until 30 grep -q "^watching present=1" watch.out || {
	cat watch.out >&2
	tg_fail "watch probe did not start"
}

# B: told apart before login; the PIN is never sent to it
swap_to b
wait_event 1 "event removed"
wait_event 1 "event replaced"
grep "^event replaced" watch.out | head -n 1 | grep -q "another public key.*the PIN was not sent to it" ||
	tg_fail "B: $(cat watch.out)"
grep -q "^no signature after replacement" watch.out || tg_fail "B: the key still signs: $(cat watch.out)"
sleep 1
tries=$(pin_tries b)
[[ $tries == 3 ]] || tg_fail "card B's PIN was tried (tries left $tries): $(cat watch.out)"
tg_log "B: $(grep '^event replaced' watch.out | head -n 1); B's PIN tries left: $tries"

# B2: shows A's public key; logged in, fails the proof, logged out again
swap_to b2
wait_event 2 "event replaced"
grep "^event replaced" watch.out | sed -n 2p |
	grep -q "does not verify with the public key checked before the removal.*logged out again" ||
	tg_fail "B2: $(cat watch.out)"
tg_log "B2: $(grep '^event replaced' watch.out | sed -n 2p)"

# A back: bound again, signs
swap_to a
wait_event 1 "signed after insertion"
grep -q "^event inserted.*proven by a signature over a fresh challenge; logged in again" watch.out ||
	tg_fail "A: $(cat watch.out)"

# C (another serial) for 6 s: no event, token info not read on every poll
before=$(grep -c "C_GetTokenInfo" spy.log || true)
swap_to c
wait_event 2 "event removed"
sleep 6
after=$(grep -c "C_GetTokenInfo" spy.log || true)
tg_log "C_GetTokenInfo calls from A's removal to 6 s with card C in the slot: $((after - before))"
((after - before >= 1 && after - before <= 2)) ||
	tg_fail "C_GetTokenInfo called $((after - before)) times (want the one at C's insertion)"
(($(grep -c '^event' watch.out) == 5)) || tg_fail "an event for card C: $(cat watch.out)"
swap_to a
wait_event 2 "signed after insertion"
wait "$wpid" || {
	cat watch.out >&2
	tg_fail "watch probe failed"
}
tg_log "watch: $(tr '\n' '|' <watch.out)"
echo "PASS: the presence watcher takes back only the proven same key"
