#!/usr/bin/env bash
# test_sim_ykman.sh — Yubico's own manager, ykman (Debian's yubikey-manager
# 4.0.9, yubikit underneath), drives tokengate-sim over PC/SC as it drives a
# YubiKey 5 (`ykman --reader "Virtual PCD 00 00" ...`), and every result is
# checked with openssl: info (management application), piv info, keys
# generate (ECCP256, ECCP384, RSA2048 with PIN and touch policies), keys
# attest (to the manufacturer CA through F9), certificates generate /
# request / import / export / delete, access change-pin / change-puk /
# unblock-pin / set-retries, change-management-key (TDES, AES192, and
# --protect: stored in PRINTED, then used with only the PIN), piv reset, and
# a configuration write refused.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/../integration/sim_lib.sh"

command -v ykman >/dev/null 2>&1 ||
	tg_skip "ykman not found; install Debian's yubikey-manager (scripts/install-deps)"
tg_require_cmd opensc-tool openssl python3

SERIAL=24681357
sim_up --serial "$SERIAL"
T=$TG_TMP
MFR_CA=$TG_SIM_STATE.mfr-ca.pem
[[ -r $MFR_CA ]] || tg_fail "tokengate-sim init left no manufacturer CA at $MFR_CA"

# yk ARGS...: ykman on the simulator's reader, stdin closed (never prompts).
yk()
{
	ykman --reader "$TG_READER" "$@" </dev/null
}

# has WHAT TEXT: the last output ($T/last.out) holds TEXT (fixed string).
has()
{
	grep -qF -- "$2" "$T/last.out" || tg_fail "$1: no '$2' in: $(cat "$T/last.out")"
}

# self_signed SLOT: export SLOT's certificate, check its self-signature and
# that it holds the key generated in SLOT ($T/SLOT.pub.pem).
self_signed()
{
	local s=$1
	run_ok "export $s" yk piv certificates export "$s" "$T/$s.crt.pem"
	run_ok "$s self-signature" openssl verify -check_ss_sig -partial_chain \
		-CAfile "$T/$s.crt.pem" "$T/$s.crt.pem"
	same_pubkey "$T/$s.pub.pem" "$T/$s.crt.pem" ||
		tg_fail "certificate in $s does not hold the key generated in $s"
}

# --- info: the management application ------------------------------------
run_ok info yk info
has info "Serial number: $SERIAL"
has info "Firmware version: 5.4.3"
has info "Device type: YubiKey 5"
grep -qE '^PIV[[:space:]]+Enabled' "$T/last.out" || tg_fail "info: PIV not enabled: $(cat "$T/last.out")"
for app in OTP FIDO2 'FIDO U2F' OATH OpenPGP; do
	grep -qE "^${app}[[:space:]]+Not available" "$T/last.out" ||
		tg_fail "info: $app should be 'Not available': $(cat "$T/last.out")"
done
echo "ok: ykman info — YubiKey 5, serial $SERIAL, firmware 5.4.3, PIV alone over USB"

# A configuration write (WRITE CONFIG) is refused and changes nothing.
expect_fail "config set-lock-code" yk config set-lock-code -n 00112233445566778899aabbccddeeff -f
has "config set-lock-code" "Failed to set the lock code"
run_ok "info after the refused write" yk info
grep -q 'protected by a lock code' "$T/last.out" &&
	tg_fail "info: configuration locked after a refused write: $(cat "$T/last.out")"
echo "ok: ykman config set-lock-code refused, nothing changed"

# --- piv info: GET DATA 5FFF00 answers 6A82 on a new card ----------------
[[ $(apdu 00CB3FFF055C035FFF00) == 6A82 ]] || tg_fail "GET DATA 5FFF00 on a new card: not 6A82"
run_ok "piv info" yk piv info
has "piv info" "PIV version: 5.4.3"
has "piv info" "PIN tries remaining: 3/3"
has "piv info" "Management key algorithm: TDES"
echo "ok: ykman piv info on a factory token"

# --- keys generate with PIN and touch policies -----------------------------
run_ok "generate 9a" yk piv keys generate -m "$SIM_MGM" -a ECCP256 --pin-policy ONCE \
	--touch-policy NEVER 9a "$T/9a.pub.pem"
run_ok "generate 9c" yk piv keys generate -m "$SIM_MGM" -a ECCP384 --pin-policy ALWAYS \
	--touch-policy ALWAYS 9c "$T/9c.pub.pem"
run_ok "generate 9d" yk piv keys generate -m "$SIM_MGM" -a RSA2048 --pin-policy NEVER \
	--touch-policy CACHED 9d "$T/9d.pub.pem"
openssl pkey -pubin -in "$T/9a.pub.pem" -noout -text | grep -q 'NIST CURVE: P-256' ||
	tg_fail "9a: not a P-256 key"
openssl pkey -pubin -in "$T/9c.pub.pem" -noout -text | grep -q 'NIST CURVE: P-384' ||
	tg_fail "9c: not a P-384 key"
openssl pkey -pubin -in "$T/9d.pub.pem" -noout -text | grep -q 'Public-Key: (2048 bit)' ||
	tg_fail "9d: not an RSA-2048 key"
for sp in "9a once never" "9c always always" "9d never cached"; do
	read -r s pin touch <<<"$sp"
	[[ $(sim_slot "$s" pin_policy) == "$pin" && $(sim_slot "$s" touch_policy) == "$touch" ]] ||
		tg_fail "$s: policies $(sim_slot "$s" pin_policy)/$(sim_slot "$s" touch_policy), want $pin/$touch"
done
echo "ok: ykman piv keys generate ECCP256/ECCP384/RSA2048 with PIN and touch policies"

# --- certificates generate (signed on the token) and request ---------------
for s in 9a 9c 9d; do
	run_ok "certificates generate $s" yk piv certificates generate -m "$SIM_MGM" \
		-P "$SIM_PIN" -s "CN=ykman $s" "$s" "$T/$s.pub.pem"
	self_signed "$s"
done
run_ok "piv info lists the certificates" yk piv info
has "piv info" "Subject DN:	CN=ykman 9c"
echo "ok: ykman piv certificates generate 9a/9c/9d, self-signatures verified by openssl"

run_ok "certificates request 9a" yk piv certificates request -P "$SIM_PIN" -s "CN=ykman csr" \
	9a "$T/9a.pub.pem" "$T/9a.csr"
run_ok "CSR signature" openssl req -in "$T/9a.csr" -verify -noout
[[ "$(openssl req -in "$T/9a.csr" -noout -pubkey)" == "$(pubkey_of "$T/9a.pub.pem")" ]] ||
	tg_fail "CSR does not hold the key of 9a"
echo "ok: ykman piv certificates request 9a, CSR verified by openssl"

# --- keys attest: slot cert <- F9 <- manufacturer CA ----------------------
run_ok "attest 9a" yk piv keys attest 9a "$T/9a.att.pem"
run_ok "export f9" yk piv certificates export f9 "$T/f9.pem"
run_ok "attestation chain" openssl verify -CAfile "$MFR_CA" -untrusted "$T/f9.pem" \
	"$T/9a.att.pem"
same_pubkey "$T/9a.pub.pem" "$T/9a.att.pem" || tg_fail "attestation of 9a certifies another key"
echo "ok: ykman piv keys attest 9a verifies to the manufacturer CA through F9"

# --- certificates import / export / delete --------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=imported -keyout "$T/imp.key" -out "$T/imp.pem" 2>/dev/null
run_ok "certificates import 82" yk piv certificates import -m "$SIM_MGM" 82 "$T/imp.pem"
run_ok "certificates export 82" yk piv certificates export -F DER 82 "$T/imp.out.der"
cmp -s <(openssl x509 -in "$T/imp.pem" -outform DER) "$T/imp.out.der" ||
	tg_fail "exported certificate differs from the imported one"
run_ok "certificates delete 82" yk piv certificates delete -m "$SIM_MGM" 82
expect_fail "export deleted certificate" yk piv certificates export 82 "$T/gone.pem"
has "export deleted" "No certificate found"
echo "ok: ykman piv certificates import/export/delete"

# --- access: PIN, PUK, unblock, retries -----------------------------------
run_ok change-pin yk piv access change-pin -P "$SIM_PIN" -n 654321
run_ok change-puk yk piv access change-puk -p "$SIM_PUK" -n 87654321
for left in 2 1; do
	expect_fail "wrong PIN" yk piv access change-pin -P 000000 -n 111111
	has "wrong PIN" "$left tries left"
done
expect_fail "wrong PIN" yk piv access change-pin -P 000000 -n 111111
expect_fail "blocked PIN" yk piv access change-pin -P 654321 -n 111111
has "blocked PIN" "PIN is blocked"
run_ok unblock-pin yk piv access unblock-pin -p 87654321 -n 222222
run_ok "new PIN works" yk piv certificates request -P 222222 -s CN=x 9a "$T/9a.pub.pem" "$T/x.csr"
run_ok set-retries yk piv access set-retries -m "$SIM_MGM" -P 222222 -f 5 6
run_ok "piv info" yk piv info
has "piv info" "PIN tries remaining: 5/5"
[[ $(sim_json puk.tries_max) == 6 ]] || tg_fail "PUK tries after set-retries: $(sim_json puk.tries_max)"
echo "ok: ykman piv access change-pin/change-puk/unblock-pin/set-retries"

# --- change-management-key: TDES, AES192, --protect -----------------------
K1=0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a09080
K2=00112233445566778899aabbccddeeff0011223344556677
run_ok "mgm key TDES" yk piv access change-management-key -m "$SIM_MGM" -a TDES -n "$K1" -f
run_ok "mgm key AES192" yk piv access change-management-key -m "$K1" -a AES192 -n "$K2" -f
run_ok "piv info" yk piv info
has "piv info" "Management key algorithm: AES192"
expect_fail "old management key" yk piv certificates delete -m "$K1" 9d
[[ $(sim_json management_key.algorithm) == AES192 ]] ||
	tg_fail "tokengate-sim status: management key $(sim_json management_key.algorithm)"
run_ok "mgm key --protect" yk piv access change-management-key -m "$K2" -a AES192 --protect \
	-P "$SIM_PIN" -f
run_ok "piv info" yk piv info
has "piv info" "Management key is stored on the YubiKey, protected by PIN."
# The stored key is in PRINTED, which the card gives out only after VERIFY.
[[ $(apdu 00CB3FFF055C035FC109) == 6982 ]] || tg_fail "PRINTED readable without the PIN"
[[ $(apdu 0020008008313233343536FFFF 00CB3FFF055C035FC109) == 9000 ]] ||
	tg_fail "PRINTED not readable after VERIFY"
[[ $(apdu 00CB3FFF055C035FFF00) == 9000 ]] || tg_fail "PIVMAN data 5FFF00 not written by ykman"
# A management operation with only the PIN.
run_ok "generate with only the PIN" yk piv keys generate -P "$SIM_PIN" -a ECCP256 9e "$T/9e.pub.pem"
run_ok "certificate with only the PIN" yk piv certificates generate -P "$SIM_PIN" -s CN=pin-only \
	9e "$T/9e.pub.pem"
self_signed 9e
echo "ok: ykman change-management-key TDES, AES192, --protect (then used with only the PIN)"

# --- piv reset ---------------------------------------------------------------
run_ok "piv reset" yk piv reset -f
run_ok "piv info after reset" yk piv info
has "piv info" "PIN tries remaining: 3/3"
has "piv info" "Management key algorithm: TDES"
grep -q 'Slot 9' "$T/last.out" && tg_fail "piv info: slots left after reset: $(cat "$T/last.out")"
[[ $(sim_json management_key.default) == True || $(sim_json management_key.default) == true ]] ||
	tg_fail "management key not the default after reset"
[[ $(apdu 00CB3FFF055C035FFF00) == 6A82 ]] || tg_fail "PIVMAN data left after reset"
# The device's F9 key and certificate survive: a new key still attests.
run_ok "generate after reset" yk piv keys generate -m "$SIM_MGM" -a ECCP256 9a "$T/9a.pub.pem"
run_ok "attest after reset" yk piv keys attest 9a "$T/9a.att.pem"
run_ok "attestation chain after reset" openssl verify -CAfile "$MFR_CA" -untrusted "$T/f9.pem" \
	"$T/9a.att.pem"
echo "ok: ykman piv reset (F9 kept, attestation still verifies)"
echo PASS
