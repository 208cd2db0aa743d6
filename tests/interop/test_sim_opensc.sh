#!/usr/bin/env bash
# test_sim_opensc.sh — OpenSC drives tokengate-sim: opensc-tool -a,
# pkcs15-tool -D, and pkcs11-tool through opensc-pkcs11.so listing objects,
# signing with ECDSA P-256 and P-384, RSA-PKCS and RSA-PSS (each signature
# verified by openssl against the slot's certificate), and
# pkcs11-tool --test --login.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/../integration/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool pkcs15-tool pkcs11-tool openssl python3
[[ -e $TG_OPENSC_MODULE ]] || tg_skip "OpenSC PKCS#11 module $TG_OPENSC_MODULE not found; install opensc-pkcs11"

sim_up
T=$TG_TMP

# --- ATR ------------------------------------------------------------------
atr=$(opensc-tool -r "$TG_READER" -a 2>&1) || tg_fail "opensc-tool -a: $atr"
[[ ${atr,,} =~ ^3b(:[0-9a-f]{2})+$ ]] || tg_fail "opensc-tool -a: not an ATR: $atr"
echo "ok: opensc-tool -a: $atr"
run_ok "opensc-tool -n" opensc-tool -r "$TG_READER" -n
grep -Eqi 'PIV|Personal Identity Verification|YubiKey' "$T/last.out" || tg_fail "card not recognised as PIV: $(cat "$T/last.out")"
echo "ok: opensc-tool -n: $(cat "$T/last.out")"

# Keys made with yubico-piv-tool (OpenSC lists a key only with its certificate):
# 9a P-256 (id 01), 9c P-384 (id 02, PIN always), 9d RSA-2048 (id 03).
gen_cert 9a ECCP256 --pin-policy=once
gen_cert 9c ECCP384
gen_cert 9d RSA2048 --pin-policy=once

# --- pkcs15-tool -D -------------------------------------------------------
run_ok "pkcs15-tool -D" pkcs15-tool -r "$TG_READER" -D
for want in 'PIV AUTH key' 'SIGN key' 'KEY MAN key' 'Certificate for PIV Authentication' \
	'Certificate for Digital Signature' 'Certificate for Key Management'; do
	grep -q "$want" "$T/last.out" || tg_fail "pkcs15-tool -D lacks '$want': $(cat "$T/last.out")"
done
echo "ok: pkcs15-tool -D lists the three keys and certificates"

# --- pkcs11-tool: objects -------------------------------------------------
run_ok "list slots" p11 -L
grep -q 'token label' "$T/last.out" || tg_fail "no token in pkcs11-tool -L: $(cat "$T/last.out")"
run_ok "list objects" p11 --login --pin "$SIM_PIN" -O
for want in 'Private Key Object; EC' 'Private Key Object; RSA' 'Certificate Object'; do
	grep -q "$want" "$T/last.out" || tg_fail "pkcs11-tool -O lacks '$want': $(cat "$T/last.out")"
done
[[ $(grep -c 'Private Key Object' "$T/last.out") == 3 ]] ||
	tg_fail "expected 3 private keys: $(cat "$T/last.out")"
echo "ok: pkcs11-tool -O lists 3 private keys and their certificates"

head -c 3000 /dev/urandom >"$T/data"

# sign_verify ID MECH SLOT [OPENSSL ARGS...]: sign $T/data on the token and
# verify the signature with openssl and the slot's certificate.
sign_verify()
{
	local id=$1 mech=$2 slot=$3 fmt=()
	shift 3
	[[ $mech == ECDSA* ]] && fmt=(--signature-format openssl)
	run_ok "sign $mech with $slot" p11 --login --pin "$SIM_PIN" --sign --id "$id" -m "$mech" \
		"${fmt[@]}" "${P11_EXTRA[@]}" -i "$T/data" -o "$T/sig.$slot.$mech"
	openssl x509 -in "$T/$slot.cert.pem" -noout -pubkey >"$T/$slot.certpub.pem"
	run_ok "openssl verify $mech" openssl dgst "$@" -verify "$T/$slot.certpub.pem" \
		-signature "$T/sig.$slot.$mech" "$T/data"
	grep -q 'Verified OK' "$T/last.out" || tg_fail "$mech: $(cat "$T/last.out")"
	echo "ok: $mech with slot $slot verified by openssl"
}
P11_EXTRA=()
sign_verify 01 ECDSA-SHA256 9a -sha256
sign_verify 02 ECDSA-SHA384 9c -sha384
sign_verify 03 SHA256-RSA-PKCS 9d -sha256
P11_EXTRA=(--mgf MGF1-SHA256)
sign_verify 03 SHA256-RSA-PKCS-PSS 9d -sha256 -sigopt rsa_padding_mode:pss \
	-sigopt rsa_pss_saltlen:auto -sigopt rsa_mgf1_md:sha256
P11_EXTRA=()

# A wrong signature must not verify (the check above can fail).
cp "$T/data" "$T/data2"
printf 'x' >>"$T/data2"
openssl x509 -in "$T/9a.cert.pem" -noout -pubkey >"$T/9a.certpub.pem"
expect_fail "tampered data" openssl dgst -sha256 -verify "$T/9a.certpub.pem" \
	-signature "$T/sig.9a.ECDSA-SHA256" "$T/data2"
echo "ok: a signature over other data does not verify"

# --- pkcs11-tool --test --login -------------------------------------------
run_ok "pkcs11-tool --test --login" p11 --test --login --pin "$SIM_PIN"
grep -q 'No errors' "$T/last.out" || tg_fail "pkcs11-tool --test: $(cat "$T/last.out")"
echo "ok: pkcs11-tool --test --login: $(grep -c 'OK' "$T/last.out") checks OK"

ops=$(sim_json private_key_operations)
((ops >= 4)) || tg_fail "tokengate-sim status counts $ops private-key operations, want >= 4"
echo "ok: simulator counted $ops private-key operations"
echo PASS
