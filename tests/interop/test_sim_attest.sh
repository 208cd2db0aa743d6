#!/usr/bin/env bash
# test_sim_attest.sh — attestation: the certificate from
# `yubico-piv-tool -a attest` verifies with `openssl verify` up to the
# manufacturer CA through the slot-F9 certificate (read with
# `yubico-piv-tool -a read-certificate -s f9`), and its Yubico extensions
# (1.3.6.1.4.1.41482.3.3/.7/.8/.9) carry the token's firmware and serial and
# the slot's real PIN and touch policies. Imported keys cannot be attested.
# The manufacturer CA here is made by openssl and given to
# `tokengate-sim init --manufacturer-cert/--manufacturer-key`.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/../integration/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool openssl python3
T=$TG_TMP

# A manufacturer root made by someone else (openssl), with an intermediate
# between it and the token, so no single root is assumed.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -days 30 \
	-subj "/O=Test Vendor/CN=Test Vendor Root" -keyout "$T/root.key" -out "$T/root.pem" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
	2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/O=Test Vendor/CN=Test Vendor Intermediate" -keyout "$T/mfr.key" -out "$T/mfr.csr" \
	2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' >"$T/ext.cnf"
openssl x509 -req -in "$T/mfr.csr" -CA "$T/root.pem" -CAkey "$T/root.key" -days 30 \
	-set_serial 7 -extfile "$T/ext.cnf" -out "$T/mfr.pem" 2>/dev/null
chmod 600 "$T/mfr.key"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-subj "/O=Test Vendor/CN=Test Vendor Root" -keyout "$T/other.key" -out "$T/other.pem" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
	2>/dev/null

SERIAL=13572468
sim_up --serial "$SERIAL" --manufacturer-cert "$T/mfr.pem" --manufacturer-key "$T/mfr.key"

run_ok "read F9 certificate" ypt -a read-certificate -s f9 -o "$T/f9.pem"
run_ok "F9 chains to the manufacturer CA" openssl verify -CAfile "$T/root.pem" \
	-untrusted "$T/mfr.pem" "$T/f9.pem"
echo "ok: F9 certificate issued by the manufacturer CA"

# hexof CERT OID: the hex dump of the extension value of OID in CERT.
hexof()
{
	openssl asn1parse -in "$1" | awk -v oid="$2" '
		index($0, ":" oid) && $0 ~ /OBJECT/ { want = 1; next }
		want && /OCTET STRING/ { sub(/.*\[HEX DUMP\]:/, ""); print; exit }'
}

# attest_check SLOT PIN TOUCH: attest SLOT and check chain and extensions
# (PIN: 01 never, 02 once, 03 always; TOUCH: 01 never, 02 always, 03 cached).
attest_check()
{
	local slot=$1 pin=$2 touch=$3 v sn
	run_ok "attest $slot" ypt -a attest -s "$slot" -o "$T/$slot.att.pem"
	run_ok "attestation $slot chain" openssl verify -CAfile "$T/root.pem" \
		-untrusted "$T/mfr.pem" -untrusted "$T/f9.pem" "$T/$slot.att.pem"
	# Verifying against another root must fail (the check above can fail).
	expect_fail "attestation $slot vs another root" openssl verify -CAfile "$T/other.pem" \
		-untrusted "$T/mfr.pem" -untrusted "$T/f9.pem" "$T/$slot.att.pem"
	same_pubkey "$T/$slot.pub.pem" "$T/$slot.att.pem" ||
		tg_fail "attest $slot: attested key is not the slot's key"
	[[ $(openssl x509 -in "$T/$slot.att.pem" -noout -issuer) == \
		"issuer=$(openssl x509 -in "$T/f9.pem" -noout -subject | sed 's/^subject=//')" ]] ||
		tg_fail "attest $slot: issuer is not the F9 subject"
	v=$(hexof "$T/$slot.att.pem" 1.3.6.1.4.1.41482.3.3)
	[[ ${v^^} =~ ^05[0-9A-F]{4}$ ]] || tg_fail "attest $slot: firmware extension '$v', want 05xxxx"
	[[ $(sim_json firmware) == "$((16#${v:0:2})).$((16#${v:2:2})).$((16#${v:4:2}))" ]] ||
		tg_fail "attest $slot: firmware $v is not the token's $(sim_json firmware)"
	v=$(hexof "$T/$slot.att.pem" 1.3.6.1.4.1.41482.3.7)
	# DER INTEGER 02 len value
	[[ ${v:0:2} == 02 ]] || tg_fail "attest $slot: serial extension '$v' is not a DER INTEGER"
	sn=$((16#${v:4}))
	((sn == SERIAL)) || tg_fail "attest $slot: serial $sn, want $SERIAL"
	v=$(hexof "$T/$slot.att.pem" 1.3.6.1.4.1.41482.3.8)
	[[ ${v^^} == "$pin$touch" ]] || tg_fail "attest $slot: policy extension '$v', want $pin$touch"
	v=$(hexof "$T/$slot.att.pem" 1.3.6.1.4.1.41482.3.9)
	[[ ${#v} == 2 ]] || tg_fail "attest $slot: form factor extension '$v' is not 1 byte"
	openssl x509 -in "$T/$slot.att.pem" -noout -text >"$T/$slot.att.txt"
	grep -q '1\.3\.6\.1\.4\.1\.41482\.3\.8' "$T/$slot.att.txt" ||
		tg_fail "attest $slot: openssl x509 -text does not show the policy extension"
	echo "ok: attest $slot: chain to root, key, firmware, serial $SERIAL, policies $pin$touch"
}

ypt_gen()
{
	run_ok "generate $2 in $1" ypt -k"$SIM_MGM" -a generate -s "$1" -A "$2" "${@:3}" \
		-o "$T/$1.pub.pem"
}
ypt_gen 9a ECCP256 --pin-policy=once --touch-policy=cached
ypt_gen 9c ECCP384 --pin-policy=always --touch-policy=never
ypt_gen 9d RSA2048 --pin-policy=never --touch-policy=always
ypt_gen 9e ECCP256
attest_check 9a 02 03
attest_check 9c 03 01
attest_check 9d 01 02
# 9e's defaults (PIN never, touch never).
attest_check 9e 01 01

# An imported key cannot be attested.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/imp.key" 2>/dev/null
run_ok "import-key 82" ypt -k"$SIM_MGM" -a import-key -s 82 -i "$T/imp.key"
expect_fail "attest imported key" ypt -a attest -s 82 -o "$T/82.att.pem"
[[ $(sim_slot 82 origin) == imported ]] ||
	tg_fail "tokengate-sim status: slot 82 origin '$(sim_slot 82 origin)', want imported"
[[ $(sim_slot 9a origin) == generated ]] ||
	tg_fail "tokengate-sim status: slot 9a origin '$(sim_slot 9a origin)', want generated"
echo "ok: imported key in 82 cannot be attested"
echo PASS
