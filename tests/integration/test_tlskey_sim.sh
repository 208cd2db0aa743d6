#!/usr/bin/env bash
# test_tlskey_sim.sh — the token key for TLS (tg_tlskey.h) on a simulated
# PIV card through OpenSC (emulated PKCS#11, so no CKA_LOCAL the card
# vouches for), driven by tlskey_probe:
#   - a key generated on the card is accepted as an identity key: the card's
#     PIV metadata (GET METADATA, origin "generated") is the evidence;
#   - a key imported into the card is refused with the metadata's verdict,
#     and accepted with TG_TLSKEY_ALLOW_IMPORTED;
#   - presence (WATCH, ASYNC): a handshake signs on the card; the card
#     removed -> "removed" on the event fd, handshakes fail without reaching
#     the card; the same card back -> logged in again (PIN from its
#     source), "inserted", the same SSL_CTX handshakes again, the card
#     evidence kept.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/sim_lib.sh"

tg_require_cmd yubico-piv-tool pkcs11-tool openssl
[[ -e $TG_OPENSC_MODULE ]] || tg_skip "OpenSC PKCS#11 module $TG_OPENSC_MODULE not found; install opensc-pkcs11"
PROBE=${TG_TLSKEY_PROBE:?TG_TLSKEY_PROBE is not set: run this test through ctest}
unset TOKENGATE_PIN
T=$TG_TMP
cd "$T"

tg_pcscd_start
tg_sim_init "$T/card.state"
tg_sim_start "$T/card.state" --log-level info
gen_cert 9a ECCP256 --pin-policy=once
# an imported key in 9c
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out imp.key 2>/dev/null
run_ok "import a key to 9c" ypt -k"$SIM_MGM" -a import-key -s 9c -i imp.key --pin-policy=once
openssl pkey -in imp.key -pubout -out "$T/9c.pub.pem" 2>/dev/null
issue_cert 9c
run_ok "import certificate 9c" ypt -k"$SIM_MGM" -a import-certificate -s 9c -i "$T/9c.cert.pem"
export SIMPIN=$SIM_PIN
URI="pkcs11:id=%01;type=private?module-path=$TG_OPENSC_MODULE&pin-source=env:SIMPIN"
URI9C="pkcs11:id=%02;type=private?module-path=$TG_OPENSC_MODULE&pin-source=env:SIMPIN"

# ---- card evidence -----------------------------------------------------------
out=$(echo quit | "$PROBE" "$URI") || tg_fail "generated key: $out"
[[ $out == "open ok present=1" ]] || tg_fail "generated key: $out"
echo "ok: a key generated on the card is accepted (PIV metadata as evidence)"
rc=0
out=$(echo quit | "$PROBE" "$URI9C") || rc=$?
[[ $rc -eq 1 && $out == "open failed: client key: "*"is refused (imported)"*"PIV metadata"* ]] ||
	tg_fail "imported key: exit $rc: $out"
echo "ok: an imported key is refused: $out"
out=$(echo quit | "$PROBE" "$URI9C" --allow-imported) || tg_fail "imported key allowed: $out"
[[ $out == "open ok present=1" ]] || tg_fail "imported key allowed: $out"
echo "ok: an imported key with TG_TLSKEY_ALLOW_IMPORTED"

# ---- presence --------------------------------------------------------------------
coproc PR { exec "$PROBE" "$URI" --async --watch 2>"$T/probe.err"; }
tg_on_exit kill "$PR_PID"
# ask CMD: one answer line from the probe into $ans
ask() {
	echo "$1" >&"${PR[1]}"
	IFS= read -r -t 60 ans <&"${PR[0]}" || tg_fail "probe: no answer to $1 ($(cat "$T/probe.err"))"
	tg_log "probe $1 -> $ans"
}
IFS= read -r -t 60 ans <&"${PR[0]}" || tg_fail "probe did not open: $(cat "$T/probe.err")"
[[ $ans == "open ok present=1" ]] || tg_fail "probe: $ans"
ask hs
[[ $ans =~ ^hs\ ok\ count=1\ pauses=[1-9] ]] || tg_fail "first handshake: $ans"
tg_sim_stop
ask ev
[[ $ans == "ev removed: "* ]] || tg_fail "removal: $ans"
ask hs
[[ $ans == "hs failed count=1 pauses=0" ]] || tg_fail "handshake while removed: $ans"
echo "ok: removed: the event, and a handshake fails without reaching the card"
tg_sim_start "$T/card.state" --log-level info
ask ev
[[ $ans == "ev inserted: "*"logged in again"*"signs again" ]] || tg_fail "insertion: $ans"
ask hs
[[ $ans =~ ^hs\ ok\ count=2\ pauses=[1-9] ]] || tg_fail "handshake after insertion: $ans"
echo quit >&"${PR[1]}"
echo "ok: inserted: logged in again, the same SSL_CTX handshakes again ($ans)"
