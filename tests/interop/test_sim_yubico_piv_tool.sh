#!/usr/bin/env bash
# test_sim_yubico_piv_tool.sh — yubico-piv-tool drives tokengate-sim as it
# drives a YubiKey: status, generate (ECCP256, ECCP384, RSA2048) with PIN
# and touch policies, verify-pin + selfsign-certificate, import-certificate,
# read-certificate, test-signature, attest, change-pin, change-puk,
# unblock-pin, set-mgm-key (weak DES keys refused), pin-retries, and reset after blocking PIN and PUK.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/../integration/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool openssl python3

SERIAL=4711
sim_up --serial "$SERIAL"
T=$TG_TMP

# --- status and version -------------------------------------------------
run_ok version ypt -a version
grep -q 'Application version 5\.' "$T/last.out" ||
	tg_fail "version: expected 5.x, got: $(cat "$T/last.out")"
run_ok status ypt -a status
grep -q "Serial Number:.*$SERIAL" "$T/last.out" ||
	tg_fail "status: serial $SERIAL not shown: $(cat "$T/last.out")"
grep -q 'PIN tries left:.*3' "$T/last.out" ||
	tg_fail "status: expected 3 PIN tries: $(cat "$T/last.out")"
echo "ok: version and status (serial $SERIAL)"

# --- generate with policies, self-sign, import, read --------------------
gen_cert 9a ECCP256 --pin-policy=once --touch-policy=never
openssl pkey -pubin -in "$T/9a.pub.pem" -noout -text | grep -q 'NIST CURVE: P-256' ||
	tg_fail "9a: public key is not P-256"
same_pubkey "$T/9a.pub.pem" "$T/9a.cert.pem" || tg_fail "9a: certificate key differs"
gen_cert 9c ECCP384 --pin-policy=always --touch-policy=never
openssl pkey -pubin -in "$T/9c.pub.pem" -noout -text | grep -q 'NIST CURVE: P-384' ||
	tg_fail "9c: public key is not P-384"
gen_cert 9d RSA2048 --pin-policy=never --touch-policy=always
openssl pkey -pubin -in "$T/9d.pub.pem" -noout -text | grep -q 'Public-Key: (2048 bit)' ||
	tg_fail "9d: public key is not RSA-2048"
echo "ok: generate ECCP256/ECCP384/RSA2048 with policies, import-certificate"

# verify-pin + selfsign-certificate. yubico-piv-tool 2.2.0 built against
# OpenSSL 3 (Debian 12) fails inside the tool before it sends the sign
# APDU (Yubico/yubico-piv-tool#388). Accept that failure only when the
# token was never asked to sign; any other failure fails the test.
ops=$(sim_json private_key_operations)
if ypt -a verify-pin -P "$SIM_PIN" -a selfsign-certificate -s 9a -S "/CN=self 9a/" \
	-i "$T/9a.pub.pem" -o "$T/9a.self.pem" >"$T/last.out" 2>&1; then
	run_ok "9a self-signature" openssl verify -check_ss_sig -partial_chain \
		-CAfile "$T/9a.self.pem" "$T/9a.self.pem"
	echo "ok: verify-pin + selfsign-certificate (signature verified by openssl)"
else
	grep -q 'Successfully verified PIN' "$T/last.out" ||
		tg_fail "verify-pin before selfsign: $(cat "$T/last.out")"
	grep -q 'Failed signing certificate' "$T/last.out" ||
		tg_fail "selfsign-certificate: $(cat "$T/last.out")"
	[[ $(sim_json private_key_operations) == "$ops" ]] ||
		tg_fail "selfsign-certificate failed after the token signed: $(cat "$T/last.out")"
	echo "NOTE: selfsign-certificate fails inside yubico-piv-tool before any sign APDU" \
		"(Yubico/yubico-piv-tool#388, OpenSSL 3); verify-pin passed, signing is checked" \
		"with test-signature below"
fi

for s in 9a 9c 9d; do
	run_ok "read-certificate $s" ypt -a read-certificate -s "$s" -o "$T/$s.read.pem"
	[[ $(openssl x509 -in "$T/$s.read.pem" -outform DER | sha256sum) == \
		$(openssl x509 -in "$T/$s.cert.pem" -outform DER | sha256sum) ]] ||
		tg_fail "read-certificate $s: differs from the imported certificate"
	token_signs "$s"
done

# PIN policies are enforced: 9a (once) and 9c (always) refuse to sign
# without a verified PIN in the session, 9d (never) signs without one.
expect_fail "9a without PIN" ypt -a test-signature -s 9a -i "$T/9a.cert.pem"
expect_fail "9c without PIN" ypt -a test-signature -s 9c -i "$T/9c.cert.pem"
run_ok "9d without PIN (policy never)" ypt -a test-signature -s 9d -i "$T/9d.cert.pem"
# 9c (always): one VERIFY covers one signature only.
expect_fail "9c twice after one VERIFY" ypt -P "$SIM_PIN" -s 9c -i "$T/9c.cert.pem" \
	-a verify-pin -a test-signature -a test-signature
grep -q 'Successful ECDSA verification' "$T/last.out" ||
	tg_fail "9c: first signature after VERIFY failed: $(cat "$T/last.out")"
echo "ok: PIN policies once/always/never enforced"

# Decryption and key agreement: RSA decrypt in 9d, ECDH in 9e.
gen_cert 9e ECCP256 --pin-policy=never
run_ok "test-decipher 9d (RSA)" ypt -a test-decipher -s 9d -i "$T/9d.cert.pem"
grep -q 'Successfully performed RSA decryption' "$T/last.out" ||
	tg_fail "RSA decryption: $(cat "$T/last.out")"
run_ok "test-decipher 9e (ECDH)" ypt -a test-decipher -s 9e -i "$T/9e.cert.pem"
grep -q 'Successfully performed ECDH exchange' "$T/last.out" ||
	tg_fail "ECDH: $(cat "$T/last.out")"
echo "ok: RSA decryption (9d) and ECDH (9e) on the token"

run_ok status ypt -a status
for s in 9a 9c 9d; do
	grep -q "Slot $s" "$T/last.out" || tg_fail "status does not list slot $s: $(cat "$T/last.out")"
done
echo "ok: read-certificate, test-signature and status for 9a 9c 9d"

# The simulator's own view agrees on policies and origin.
[[ $(sim_slot 9a pin_policy) == once &&
	$(sim_slot 9a touch_policy) == never && $(sim_slot 9a origin) == generated ]] ||
	tg_fail "tokengate-sim status: slot 9a is $(sim_slot 9a pin_policy)/$(sim_slot 9a touch_policy)/$(sim_slot 9a origin)"
echo "ok: tokengate-sim status shows 9a once/never generated"

# --- attest -------------------------------------------------------------
run_ok "attest 9a" ypt -a attest -s 9a -o "$T/9a.att.pem"
same_pubkey "$T/9a.pub.pem" "$T/9a.att.pem" || tg_fail "attest 9a: attested key differs"
echo "ok: attest"

# --- PIN and PUK ----------------------------------------------------------
NEWPIN=24681357
NEWPUK=97531864
run_ok change-pin ypt -a change-pin -P "$SIM_PIN" -N "$NEWPIN"
expect_fail "verify old PIN" ypt -a verify-pin -P "$SIM_PIN"
run_ok "verify new PIN" ypt -a verify-pin -P "$NEWPIN"
run_ok change-puk ypt -a change-puk -P "$SIM_PUK" -N "$NEWPUK"
echo "ok: change-pin, change-puk"

# Block the PIN (3 wrong tries; the one above used one, the right one reset it).
for _ in 1 2 3; do
	expect_fail "wrong PIN" ypt -a verify-pin -P 11111111
done
expect_fail "verify blocked PIN" ypt -a verify-pin -P "$NEWPIN"
grep -qi 'blocked' "$T/last.out" || tg_fail "blocked PIN not reported: $(cat "$T/last.out")"
[[ $(sim_json pin.tries_left) == 0 ]] || tg_fail "PIN tries left $(sim_json pin.tries_left), want 0"
run_ok unblock-pin ypt -a unblock-pin -P "$NEWPUK" -N "$SIM_PIN"
run_ok "verify after unblock" ypt -a verify-pin -P "$SIM_PIN"
[[ $(sim_json pin.tries_left) == 3 ]] || tg_fail "PIN tries left $(sim_json pin.tries_left), want 3"
echo "ok: PIN blocked, unblock-pin with the PUK"

# --- management key -------------------------------------------------------
NEWMGM=0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080
run_ok set-mgm-key ypt -k"$SIM_MGM" -a set-mgm-key -n "$NEWMGM"
expect_fail "old management key" ypt -k"$SIM_MGM" -a generate -s 9e -A ECCP256 -o "$T/x.pem"
run_ok "new management key" ypt -k"$NEWMGM" -a generate -s 9e -A ECCP256 -o "$T/9e.pub.pem"
run_ok "set-mgm-key back" ypt -k"$NEWMGM" -a set-mgm-key -n "$SIM_MGM"
# A weak DES key (FEFE..FE) in any of the three positions is refused and
# the default key stays: yubico-piv-tool itself refuses one in K1; in K2 or
# K3 it sends it and the card answers 6A80 (wrong data).
WEAK=fefefefefefefefe
for k in "${WEAK}${NEWMGM:16}" "${NEWMGM:0:16}${WEAK}${NEWMGM:32}" "${NEWMGM:0:32}${WEAK}"; do
	expect_fail "weak management key $k" ypt -k"$SIM_MGM" -a set-mgm-key -n "$k"
	tg_log "set-mgm-key $k: $(tr '\n' ' ' <"$T/last.out")"
done
run_ok "default management key after the weak ones" ypt -k"$SIM_MGM" -a set-mgm-key -n "$SIM_MGM"
echo "ok: set-mgm-key"

# --- pin-retries (resets PIN and PUK to the defaults) ---------------------
run_ok pin-retries ypt -k"$SIM_MGM" -a verify-pin -P "$SIM_PIN" -a pin-retries \
	--pin-retries=5 --puk-retries=4
run_ok status ypt -a status
grep -q 'PIN tries left:.*5' "$T/last.out" || tg_fail "pin-retries: $(cat "$T/last.out")"
[[ $(sim_json pin.tries_max) == 5 && $(sim_json puk.tries_max) == 4 ]] ||
	tg_fail "pin-retries: simulator has PIN max $(sim_json pin.tries_max), PUK max $(sim_json puk.tries_max)"
run_ok "default PIN after pin-retries" ypt -a verify-pin -P "$SIM_PIN"
echo "ok: pin-retries 5/4"

# --- reset: refused until PIN and PUK are both blocked --------------------
expect_fail "reset while PIN/PUK usable" ypt -a reset
for _ in 1 2 3 4 5; do
	expect_fail "wrong PIN" ypt -a verify-pin -P 11111111
done
for _ in 1 2 3 4; do
	expect_fail "wrong PUK" ypt -a change-puk -P 11111111 -N 22222222
done
[[ $(sim_json pin.tries_left) == 0 && $(sim_json puk.tries_left) == 0 ]] ||
	tg_fail "PIN/PUK not both blocked: $(sim_json pin) $(sim_json puk)"
run_ok reset ypt -a reset
run_ok "default PIN after reset" ypt -a verify-pin -P "$SIM_PIN"
expect_fail "certificate gone after reset" ypt -a read-certificate -s 9a -o "$T/gone.pem"
[[ $(sim_json serial) == "$SERIAL" ]] || tg_fail "serial changed by reset: $(sim_json serial)"
run_ok "default management key after reset" ypt -k"$SIM_MGM" -a generate -s 9a -A ECCP256 \
	-o "$T/after-reset.pem"
echo "ok: reset after blocking PIN and PUK"
echo PASS
