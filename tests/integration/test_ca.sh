#!/usr/bin/env bash
# test_ca.sh — `tokengate ca` end to end with openssl as the judge:
# init (file key, 0600), verify-attestation on the real YubiKey vectors,
# device-attested issuance from a test-made Yubico-format attestation chain,
# every refusal with its reason, show, revoke + CRL, and the hsm-operator
# level on SoftHSM2 (exportable key refused).
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"

tg_require_cmd openssl jq xxd
TG=$TG_BIN_DIR/tokengate
[[ -x $TG ]] || tg_skip "$TG is not built"
T=$TG_TMP
cd "$T"

# expect_fail WANT CMD...: CMD must exit 1 and say WANT on stderr.
expect_fail()
{
	tg_expect_exit 1 "$@"
}

# ---- help and usage -------------------------------------------------
for c in verify-attestation init issue list revoke crl show; do
	"$TG" ca "$c" --help | grep -q "usage: tokengate ca $c" ||
		tg_fail "ca $c --help"
done
"$TG" ca --help | grep -q verify-attestation || tg_fail "ca --help"
rc=0; "$TG" ca issue --dir x 2>/dev/null || rc=$?
[[ $rc -eq 2 ]] || tg_fail "missing options must exit 2, got $rc"
rc=0; "$TG" ca frobnicate 2>/dev/null || rc=$?
[[ $rc -eq 2 ]] || tg_fail "unknown command must exit 2, got $rc"

# ---- verify-attestation on real vectors ------------------------------
V=$TG_TESTDATA_DIR/yubikey-attestation
if [[ -d $V ]]; then
	mkdir -p yroots y574roots
	cp "$V/roots/yubico-piv-ca-1.pem" yroots/
	cp "$V/roots/yubico-ca-1_Attestation-Root-1.pem" y574roots/
	"$TG" ca verify-attestation --roots yroots \
		--attestation "$V/docker-tuf-2024-06-04-25515003/Slot9CAttestation.pem" \
		--intermediate "$V/docker-tuf-2024-06-04-25515003/SlotF9Intermediate.pem" >v.json
	[[ $(jq -r '[.slot, .key_algorithm, .serial, .firmware, .pin_policy, .touch_policy, .form_factor] | join(" ")' v.json) == \
		"9c secp384r1 25515003 5.4.3 always never 0x83" ]] || tg_fail "facts: $(cat v.json)"
	# DER input, and --pubkey matching the attested key
	openssl x509 -in "$V/go-piv-ValidChain/keyCert-attestation.pem" -outform DER -out att.der
	openssl x509 -in "$V/go-piv-ValidChain/keyCert-attestation.pem" -pubkey -noout >att.pub
	"$TG" ca verify-attestation --roots yroots --attestation att.der \
		--intermediate "$V/go-piv-ValidChain/deviceCert-f9.pem" --pubkey att.pub >v.json
	[[ $(jq -r '[.slot, .key_algorithm, .serial, .firmware, .pin_policy, .touch_policy, .form_factor] | join(" ")' v.json) == \
		"9a secp256r1 15732500 5.4.3 once never 0x04" ]] || tg_fail "facts: $(cat v.json)"
	# 5.7.4 through the intermediates
	"$TG" ca verify-attestation --roots y574roots \
		--attestation "$V/ovh-piv-checker-32718477-fw5.7.4/attestation-9a.pem" \
		--intermediate "$V/ovh-piv-checker-32718477-fw5.7.4/keyCertificate-f9.pem" \
		--intermediate "$V/roots/yubico-intermediate.pem" >v.json
	[[ $(jq -r '.firmware + " " + (.serial|tostring) + " " + .key_algorithm' v.json) == "5.7.4 32718477 RSA-2048" ]] ||
		tg_fail "5.7.4: $(cat v.json)"
	# YubiKey 4: F9 without basicConstraints
	"$TG" ca verify-attestation --roots yroots \
		--attestation "$V/ovh-piv-checker-5970478-fw4.3.5/attestation-9a.pem" \
		--intermediate "$V/ovh-piv-checker-5970478-fw4.3.5/keyCertificate-f9.pem" >v.json
	[[ $(jq -r '.firmware' v.json) == 4.3.5 && $(jq -r '.form_factor' v.json) == null ]] ||
		tg_fail "4.3.5: $(cat v.json)"
	expect_fail "does not verify with the F9 device certificate's key" \
		"$TG" ca verify-attestation --roots yroots \
		--attestation "$V/docker-tuf-2024-06-04-25515003/Slot9CAttestation.pem" \
		--intermediate "$V/docker-tuf-2024-06-04-25599865/SlotF9Intermediate.pem"
	expect_fail "differs from the key being certified" \
		"$TG" ca verify-attestation --roots yroots \
		--attestation "$V/tamemycerts/inline-csr/L877_csr.extracted/attestation.pem" \
		--intermediate "$V/tamemycerts/inline-csr/L877_csr.extracted/f9-intermediate.pem" \
		--pubkey "$V/tamemycerts/inline-csr/L877_csr.pem"
	expect_fail "does not chain to a trusted root" \
		"$TG" ca verify-attestation --roots y574roots \
		--attestation "$V/docker-tuf-2024-06-04-25515003/Slot9CAttestation.pem" \
		--intermediate "$V/docker-tuf-2024-06-04-25515003/SlotF9Intermediate.pem"
else
	echo "note: $V absent, real-vector CLI checks not run"
fi

# ---- a test manufacturer: root -> F9 (no basicConstraints) -> attestation
ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

make_mfr() # make_mfr NAME: NAME-root.{key,pem}, NAME-f9.{key,pem}
{
	ec_key "$1-root.key"
	openssl req -x509 -new -key "$1-root.key" -subj "/CN=$1 Attestation Root" \
		-days 3650 -out "$1-root.pem" 2>/dev/null
	ec_key "$1-f9.key"
	openssl req -new -key "$1-f9.key" -subj "/CN=$1 PIV Attestation" -out "$1-f9.csr"
	printf '[f9]\n1.3.6.1.4.1.41482.3.3 = DER:05:04:03\n' >f9.ext
	openssl x509 -req -in "$1-f9.csr" -CA "$1-root.pem" -CAkey "$1-root.key" \
		-set_serial 7 -days 3650 -extfile f9.ext -extensions f9 \
		-out "$1-f9.pem" 2>/dev/null
}

# attest MFR KEY OUT [PIN TOUCH FW SERIAL]: attestation of KEY's public key
attest()
{
	local mfr=$1 key=$2 out=$3 pin=${4:-02} touch=${5:-01} fw=${6:-05:04:03}
	local serial=${7:-02:04:01:02:03:04}
	openssl req -new -key "$key" -subj "/CN=YubiKey PIV Attestation 9a" -out att.csr
	cat >att.ext <<-EXT
	[att]
	1.3.6.1.4.1.41482.3.3 = DER:$fw
	1.3.6.1.4.1.41482.3.7 = DER:$serial
	1.3.6.1.4.1.41482.3.8 = DER:$pin:$touch
	1.3.6.1.4.1.41482.3.9 = DER:03
	EXT
	openssl x509 -req -in att.csr -CA "$mfr-f9.pem" -CAkey "$mfr-f9.key" \
		-set_serial 0x1234 -days 365 -extfile att.ext -extensions att \
		-out "$out" 2>/dev/null
}

make_mfr Acme
make_mfr Evil
openssl x509 -in Acme-f9.pem -noout -text | grep -q "Basic Constraints" &&
	tg_fail "test F9 must lack basicConstraints, like a YubiKey 4's"
mkdir -p acme-roots evil-roots
cp Acme-root.pem acme-roots/
cp Evil-root.pem evil-roots/

ec_key tok.key
openssl req -new -key tok.key -subj "/CN=alice" -out alice.csr
attest Acme tok.key att.pem
"$TG" ca verify-attestation --roots acme-roots --attestation att.pem \
	--intermediate Acme-f9.pem --pubkey alice.csr >v.json
[[ $(jq -r '[.slot, .key_algorithm, .serial, .firmware, .pin_policy, .touch_policy, .form_factor] | join(" ")' v.json) == \
	"9a secp256r1 16909060 5.4.3 once never 0x03" ]] || tg_fail "test chain facts: $(cat v.json)"

# ---- ca init ------------------------------------------------------------
"$TG" ca init --dir ca --trust-domain example.org --attestation-roots "$T/acme-roots"
[[ $(stat -c %a ca/ca.key) == 600 ]] || tg_fail "ca.key mode $(stat -c %a ca/ca.key)"
[[ -f ca/ca.pem && -f ca/policy.yaml && -d ca/issued ]] || tg_fail "CA layout"
openssl x509 -in ca/ca.pem -noout -ext basicConstraints | grep -q "CA:TRUE" || tg_fail "CA cert"
expect_fail "already exists" "$TG" ca init --dir ca --trust-domain example.org
"$TG" ca init --dir ca-default --trust-domain example.org >/dev/null
[[ -d ca-default/attestation-roots ]] || tg_fail "default roots dir"
grep -q 'attestation_roots: "attestation-roots"' ca-default/policy.yaml || tg_fail "default roots in policy"

# ---- issue device-attested ---------------------------------------------
"$TG" ca issue --dir ca --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem --out alice.pem
openssl verify -CAfile ca/ca.pem alice.pem || tg_fail "leaf does not verify"
openssl verify -CAfile ca/ca.pem -purpose sslclient alice.pem || tg_fail "leaf not sslclient"
openssl x509 -in alice.pem -noout -text >alice.txt
grep -q "URI:spiffe://example.org/dev/alice" alice.txt || tg_fail "URI SAN"
[[ $(grep -c "URI:" alice.txt) -eq 1 ]] || tg_fail "exactly one URI SAN"
grep -A1 "Basic Constraints: critical" alice.txt | grep -q "CA:FALSE" || tg_fail "cA=false critical"
grep -A1 "Key Usage: critical" alice.txt | grep -q "^ *Digital Signature$" || tg_fail "digitalSignature"
grep -A1 "Extended Key Usage" alice.txt | grep -q "TLS Web Client Authentication" || tg_fail "clientAuth"
grep -q "Subject Key Identifier" alice.txt && grep -q "Authority Key Identifier" alice.txt || tg_fail "SKI/AKI"
grep -q "2.25.55409018484616740550661563879703842270.1:" alice.txt || tg_fail "provenance ext"
grep -A0 "2.25.55409018484616740550661563879703842270.1: critical" alice.txt && tg_fail "provenance critical"
serial=$(openssl x509 -in alice.pem -noout -serial | cut -d= -f2)
[[ ${#serial} -eq 32 ]] || tg_fail "serial $serial is not 16 bytes"
[[ -f ca/issued/$serial.pem && -f ca/issued/$serial.json ]] || tg_fail "issued record for $serial"
# validity: the default (1 day)
nb=$(date -d "$(openssl x509 -in alice.pem -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in alice.pem -noout -enddate | cut -d= -f2)" +%s)
[[ $((na - nb)) -eq 86400 ]] || tg_fail "validity $((na - nb))s, want 86400"

# ---- show round-trips every provenance field ---------------------------
"$TG" ca show --cert alice.pem >show.json
attsha=$(openssl x509 -in att.pem -outform DER | sha256sum | cut -d' ' -f1)
[[ $(jq -r .identity show.json) == spiffe://example.org/dev/alice ]] || tg_fail "show id"
[[ $(jq -r .serial show.json) == "$serial" ]] || tg_fail "show serial"
[[ $(jq -r '.provenance | [.version, .level, .token_serial, .pin_policy, .touch_policy, .form_factor, .attestation_sha256] | map(tostring) | join(" ")' show.json) == \
	"1 device-attested 16909060 once never 0x03 $attsha" ]] || tg_fail "show provenance: $(cat show.json)"
[[ $(jq -r .attestation_sha256 v.json) == "$attsha" ]] || tg_fail "verify-attestation sha256"

# a second token: PIN always, touch cached, DER inputs, validity asked for
ec_key tok2.key
openssl req -new -key tok2.key -subj "/CN=bob" -outform DER -out bob.csr.der
attest Acme tok2.key att2.pem 03 03 05:07:04 02:03:01:00:00
openssl x509 -in att2.pem -outform DER -out att2.der
openssl x509 -in Acme-f9.pem -outform DER -out Acme-f9.der
"$TG" ca issue --dir ca --csr bob.csr.der --id spiffe://example.org/svc/bob \
	--attestation att2.der --intermediate Acme-f9.der --validity 2h --out bob.pem
"$TG" ca show --cert bob.pem >show2.json
[[ $(jq -r '.provenance | [.token_serial, .pin_policy, .touch_policy] | join(" ")' show2.json) == \
	"65536 always cached" ]] || tg_fail "bob provenance: $(cat show2.json)"
nb=$(date -d "$(openssl x509 -in bob.pem -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in bob.pem -noout -enddate | cut -d= -f2)" +%s)
[[ $((na - nb)) -eq 7200 ]] || tg_fail "bob validity $((na - nb))s, want 7200"

# the attestation and F9 carried inside the CSR (Yubico / TameMyCerts format)
derhex() { openssl x509 -in "$1" -outform DER | xxd -p | tr -d '\n' | sed 's/../&:/g; s/:$//'; }
openssl req -new -key tok.key -subj "/CN=alice" \
	-addext "1.3.6.1.4.1.41482.3.11=DER:$(derhex att.pem)" \
	-addext "1.3.6.1.4.1.41482.3.2=DER:$(derhex Acme-f9.pem)" -out alice-embedded.csr
"$TG" ca issue --dir ca --csr alice-embedded.csr --id spiffe://example.org/dev/alice \
	--out alice-embedded.pem
"$TG" ca show --cert alice-embedded.pem | jq -e '.provenance.level == "device-attested"' >/dev/null ||
	tg_fail "CSR-embedded attestation"
# real YubiKey CSRs (TameMyCerts) with their embedded attestations
if [[ -d $V ]]; then
	"$TG" ca init --dir yca --trust-domain example.org --attestation-roots "$T/yroots" >/dev/null
	"$TG" ca issue --dir yca --id spiffe://example.org/dev/tada --out tada.pem \
		--csr "$V/tamemycerts/inline-csr/L44__yubikey_valid_5_4_3_Once_Never_UsbAKeychain_9a_Normal_RSA_2048_CSR.pem"
	"$TG" ca show --cert tada.pem >tada.json
	[[ $(jq -r '.provenance | [.token_serial, .pin_policy, .touch_policy, .form_factor] | join(" ")' tada.json) == \
		"19661687 once never 0x01" ]] || tg_fail "real YubiKey CSR: $(cat tada.json)"
	openssl verify -CAfile yca/ca.pem -purpose sslclient tada.pem || tg_fail "tada leaf"
	"$TG" ca init --dir yca574 --trust-domain example.org --attestation-roots "$T/y574roots" >/dev/null
	"$TG" ca issue --dir yca574 --id spiffe://example.org/dev/y574 --out y574.pem \
		--csr "$V/tamemycerts/resources/csr_5_7_4_standard.pem" \
		--intermediate "$V/roots/yubico-intermediate.pem"
	expect_fail "differs from the key being certified" \
		"$TG" ca issue --dir yca --id spiffe://example.org/dev/x --out x.pem \
		--csr "$V/tamemycerts/inline-csr/L877_csr.pem"
	expect_fail "is not a DER certificate" \
		"$TG" ca issue --dir yca --id spiffe://example.org/dev/x --out x.pem \
		--csr "$V/tamemycerts/inline-csr/L376_csr.pem"
	expect_fail "no proof that the key lives on a token" \
		"$TG" ca issue --dir yca --id spiffe://example.org/dev/x --out x.pem \
		--csr "$V/tamemycerts/inline-csr/L331_csr.pem"
fi

# ---- refusals, each with its reason ------------------------------------
echo "== negative cases"
issue() { "$TG" ca issue --dir ca --out refused.pem "$@"; }
# attestation from an untrusted root
attest Evil tok.key evil-att.pem
expect_fail "does not chain to a trusted root" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation evil-att.pem --intermediate Evil-f9.pem
# attested key != CSR key
ec_key other.key
openssl req -new -key other.key -subj "/CN=alice" -out other.csr
expect_fail "differs from the key being certified" \
	issue --csr other.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem
# tampered attestation signature (last byte of the DER is in the signature)
openssl x509 -in att.pem -outform DER | xxd -p | tr -d '\n' >att.hex
hex=$(cat att.hex)
flipped=$(printf "%02x" $(( 0x${hex: -2} ^ 0x01 )))
printf '%s%s' "${hex:0:${#hex}-2}" "$flipped" | xxd -r -p >att-tampered.der
expect_fail "signature does not verify with the F9 device certificate's key" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att-tampered.der --intermediate Acme-f9.pem
# PIN policy never when the CA requires once (or always)
attest Acme tok.key att-never.pem 01 01
expect_fail "PIN policy 'never' is not allowed" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att-never.pem --intermediate Acme-f9.pem
# CSR signature invalid
openssl req -in alice.csr -outform DER | xxd -p | tr -d '\n' >csr.hex
hex=$(cat csr.hex)
flipped=$(printf '%02x' $(( 0x${hex: -2} ^ 0x01 )))
printf '%s%s' "${hex:0:${#hex}-2}" "$flipped" | xxd -r -p >alice-bad.csr.der
expect_fail "CSR's signature does not verify" \
	issue --csr alice-bad.csr.der --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem
# SAN not in the trust domain
expect_fail "is not in the trust domain 'example.org'" \
	issue --csr alice.csr --id spiffe://other.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem
expect_fail "must start with /dev/ (people) or /svc/" \
	issue --csr alice.csr --id spiffe://example.org/admin/alice \
	--attestation att.pem --intermediate Acme-f9.pem
# no provenance at all (what an imported key amounts to: no attestation)
expect_fail "no proof that the key lives on a token" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice
# validity beyond the maximum
expect_fail "validity 31d exceeds the policy maximum of 30d (max_validity in policy.yaml); ask for at most 30d" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem --validity 31d
# firmware below the minimum
cp ca/policy.yaml policy.orig
sed -i 's/^min_firmware: .*/min_firmware: 5.7.0/' ca/policy.yaml
expect_fail "token firmware 5.4.3 is below the CA policy's minimum 5.7.0" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem
cp policy.orig ca/policy.yaml
# serial not in the allow-list
echo "serials: [12345678]" >>ca/policy.yaml
expect_fail "token serial 16909060 is not in the CA policy's serial allow-list" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem
cp policy.orig ca/policy.yaml
echo "serials: [16909060]" >>ca/policy.yaml
issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem >/dev/null ||
	tg_fail "serial in the allow-list refused"
cp policy.orig ca/policy.yaml
# a policy with an unknown key stops the CA
echo "colour: blue" >>ca/policy.yaml
expect_fail "unknown key 'colour'" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem
cp policy.orig ca/policy.yaml
# a CA key readable by others is refused
chmod 644 ca/ca.key
expect_fail "readable by others" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem
chmod 600 ca/ca.key

# ---- revoke + CRL --------------------------------------------------------
"$TG" ca crl --dir ca --out crl0.pem
openssl verify -crl_check -CRLfile crl0.pem -CAfile ca/ca.pem alice.pem ||
	tg_fail "not yet revoked: must verify with the CRL"
"$TG" ca revoke --dir ca --serial "$serial"
expect_fail "already revoked" "$TG" ca revoke --dir ca --serial "$serial"
expect_fail "issued no certificate with serial" "$TG" ca revoke --dir ca --serial 0xDEADBEEF
"$TG" ca crl --dir ca --out crl.pem
openssl crl -in crl.pem -noout -text >crl.txt
grep -q "Serial Number: $serial" crl.txt || tg_fail "CRL lacks $serial: $(cat crl.txt)"
grep -q "X509v3 CRL Number" crl.txt || tg_fail "CRL number"
openssl crl -in crl.pem -CAfile ca/ca.pem -noout 2>&1 | grep -q "verify OK" || tg_fail "CRL signature"
if openssl verify -crl_check -CRLfile crl.pem -CAfile ca/ca.pem alice.pem 2>verify.err; then
	tg_fail "revoked certificate still verifies with the CRL"
fi
grep -q "certificate revoked" verify.err || tg_fail "revocation reason: $(cat verify.err)"
openssl verify -crl_check -CRLfile crl.pem -CAfile ca/ca.pem bob.pem || tg_fail "bob is not revoked"

# ---- issue --json: the fields of ca show, plus where the files are ---------
"$TG" ca issue --dir ca --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem --out carol.pem --json >issue.json
js=$(jq -r .serial issue.json)
[[ $js == $(openssl x509 -in carol.pem -noout -serial | cut -d= -f2) ]] || tg_fail "json serial: $(cat issue.json)"
fp=$(openssl x509 -in carol.pem -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
[[ $(jq -r '[.identity, .sha256_fingerprint, .provenance.level, .cert, .record] | join(" ")' issue.json) == \
	"spiffe://example.org/dev/alice $fp device-attested carol.pem ca/issued/$js.pem" ]] ||
	tg_fail "issue --json: $(cat issue.json)"
[[ $(date -d "$(jq -r .not_after issue.json)" +%s) == \
	$(date -d "$(openssl x509 -in carol.pem -noout -enddate | cut -d= -f2)" +%s) ]] || tg_fail "json not_after"
[[ $(date -d "$(jq -r .not_before issue.json)" +%s) == \
	$(date -d "$(openssl x509 -in carol.pem -noout -startdate | cut -d= -f2)" +%s) ]] || tg_fail "json not_before"
"$TG" ca issue --help | grep -q -- "--json" || tg_fail "issue --help names --json"
# ca show, issued/*.json and issue --json: the same field names and values
"$TG" ca show --cert carol.pem >carol-show.json
[[ $(jq -S . carol-show.json) == $(jq -S . "ca/issued/$js.json") ]] ||
	tg_fail "show and issued/$js.json differ: $(diff <(jq -S . carol-show.json) <(jq -S . "ca/issued/$js.json"))"
[[ $(jq -S 'del(.cert, .record)' issue.json) == $(jq -S . carol-show.json) ]] ||
	tg_fail "issue --json and show differ"

# ---- ca issue fails loudly: every failure after signing exits 1 ----------
rc=0
"$TG" ca issue --dir ca --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem --out full.pem >/dev/full 2>full.err || rc=$?
[[ $rc -eq 1 ]] || tg_fail "output to a full disk must exit 1, got $rc"
grep -q "was issued and recorded as ca/issued/.*\.pem, but the command did not finish.*cannot print the result: No space left on device" full.err ||
	tg_fail "full-disk message: $(cat full.err)"
expect_fail "cannot create a temporary file in its directory: No such file or directory" \
	"$TG" ca issue --dir ca --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem --out "$T/no/such/dir/x.pem"
grep -q "was issued and recorded as ca/issued/" "$TG_TMP/err" || tg_fail "names the recorded copy: $(cat "$TG_TMP/err")"
# an option given twice is refused, not the last one taken
tg_expect_exit 2 "tokengate ca issue: option '--out' is given twice (try 'tokengate ca issue --help')" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem --out other.pem
expect_fail "validity 20000d exceeds the policy maximum of 30d" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem --validity 20000d
sed -i 's/^max_validity: .*/max_validity: 36500d/' ca/policy.yaml
expect_fail "the CA certificate expires on 20" \
	issue --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem --validity 20000d
grep -q "before the requested validity of 20000d ends" "$TG_TMP/err" || tg_fail "CA expiry message"
cp policy.orig ca/policy.yaml

# file errors give the OS reason
expect_fail "cannot read '.': Is a directory" "$TG" ca show --cert .
expect_fail "cannot open 'nope.pem': No such file or directory" "$TG" ca show --cert nope.pem

# one reader for every file: DER must hold exactly one object, PEM blocks of
# other types are skipped
{ cat att2.der; printf 'x'; } >att2-trailing.der
expect_fail "'att2-trailing.der' holds no X.509 certificate (PEM, or DER with nothing after it)" \
	"$TG" ca show --cert att2-trailing.der
{ openssl pkey -in tok.key -pubout; cat bob.pem; } >mixed.pem
"$TG" ca show --cert mixed.pem | jq -e '.identity == "spiffe://example.org/svc/bob"' >/dev/null ||
	tg_fail "a PEM certificate after a public key block"

# ---- ca list: status of every issued certificate ----------------------------
"$TG" ca issue --dir ca --csr alice.csr --id spiffe://example.org/dev/short \
	--attestation att.pem --intermediate Acme-f9.pem --validity 1s --out short.pem >/dev/null
short=$(openssl x509 -in short.pem -noout -serial | cut -d= -f2)
bobs=$(openssl x509 -in bob.pem -noout -serial | cut -d= -f2)
sleep 2
"$TG" ca list --dir ca >list.txt
[[ $(grep -c . list.txt) -eq $(ls ca/issued/*.pem | wc -l) ]] || tg_fail "list lists every certificate: $(cat list.txt)"
grep -Eq "^$serial +revoked +[0-9TZ:-]+ +spiffe://example.org/dev/alice +unspecified [0-9]{4}-" list.txt ||
	tg_fail "alice revoked in list: $(cat list.txt)"
grep -Eq "^$short +expired +" list.txt || tg_fail "short expired in list: $(cat list.txt)"
grep -Eq "^$bobs +valid +[0-9TZ:-]+ +spiffe://example.org/svc/bob$" list.txt || tg_fail "bob valid in list: $(cat list.txt)"
"$TG" ca list --dir ca --json >list.json
[[ $(jq -r --arg s "$serial" '.[] | select(.serial == $s) | [.status, .reason, (.revoked_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T"))] | map(tostring) | join(" ")' list.json) == \
	"revoked unspecified true" ]] || tg_fail "list --json revoked: $(cat list.json)"
[[ $(jq -r --arg s "$short" '.[] | select(.serial == $s) | .status' list.json) == expired ]] || tg_fail "list --json expired"
[[ $(jq -r --arg s "$bobs" '.[] | select(.serial == $s) | [.status, .identity, (has("reason")|tostring)] | join(" ")' list.json) == \
	"valid spiffe://example.org/svc/bob false" ]] || tg_fail "list --json valid"
[[ $(jq -S --arg s "$bobs" '.[] | select(.serial == $s) | del(.status)' list.json) == $(jq -S . "ca/issued/$bobs.json") ]] ||
	tg_fail "list --json and issued/*.json use other fields"
[[ $("$TG" ca list --dir ca --status expired | cut -d' ' -f1) == "$short" ]] || tg_fail "--status expired"
[[ $("$TG" ca list --dir ca --status revoked --json | jq -r '.[].serial') == "$serial" ]] || tg_fail "--status revoked"
tg_expect_exit 2 "--status 'gone' is not valid, revoked or expired" "$TG" ca list --dir ca --status gone
tg_expect_exit 2 "--csr does not apply to ca list" "$TG" ca list --dir ca --csr alice.csr
tg_expect_exit 2 "--dir is required" "$TG" ca list
"$TG" ca init --dir emptyca --trust-domain example.org >/dev/null
[[ -z $("$TG" ca list --dir emptyca) && $("$TG" ca list --dir emptyca --json | jq length) == 0 ]] ||
	tg_fail "an empty CA lists nothing"

# ---- revoke with a reason, by serial in any case or by certificate ---------
"$TG" ca revoke --dir ca --serial "$(echo "$js" | tr A-F a-f)" --reason keycompromise >rev.out
grep -q "^revoked $js (keyCompromise)" rev.out || tg_fail "revoke output: $(cat rev.out)"
grep -q "^$js [0-9]* keyCompromise$" ca/revoked.txt || tg_fail "revoked.txt reason: $(cat ca/revoked.txt)"
tg_expect_exit 2 "--reason 'certificateHold' is not accepted; use one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn" \
	"$TG" ca revoke --dir ca --cert bob.pem --reason certificateHold
tg_expect_exit 2 "give --serial HEX or --cert FILE (one of them)" \
	"$TG" ca revoke --dir ca --cert bob.pem --serial "$bobs"
tg_expect_exit 2 "give --serial HEX or --cert FILE (one of them)" "$TG" ca revoke --dir ca
# a certificate of another CA: other issuer, or same name and another key
expect_fail "'Acme-root.pem': the certificate was not issued by this CA: its issuer is 'CN=Acme Attestation Root', this CA is 'CN=tokengate CA example.org,O=tokengate'" \
	"$TG" ca revoke --dir ca --cert Acme-root.pem
cp Acme-root.pem ca-default/attestation-roots/
"$TG" ca issue --dir ca-default --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem --out other-ca.pem >/dev/null
expect_fail "names this CA ('CN=tokengate CA example.org,O=tokengate') as its issuer but its signature does not verify with this CA's key" \
	"$TG" ca revoke --dir ca --cert other-ca.pem
"$TG" ca revoke --dir ca --cert bob.pem --reason superseded >/dev/null
expect_fail "certificate $bobs is already revoked" "$TG" ca revoke --dir ca --cert bob.pem
"$TG" ca crl --dir ca --out crl2.pem
openssl crl -in crl2.pem -noout -text >crl2.txt
grep -A4 "Serial Number: $js" crl2.txt | grep -A1 "CRL Reason Code" | grep -q "Key Compromise" ||
	tg_fail "CRL reason keyCompromise: $(cat crl2.txt)"
grep -A4 "Serial Number: $bobs" crl2.txt | grep -A1 "CRL Reason Code" | grep -q "Superseded" ||
	tg_fail "CRL reason superseded: $(cat crl2.txt)"
# RFC 5280 5.3.1: unspecified is left out of the CRL entry
grep -A3 "Serial Number: $serial" crl2.txt | grep -q "CRL Reason Code" && tg_fail "unspecified reason in the CRL"
[[ $("$TG" ca list --dir ca --json | jq -r --arg s "$bobs" '.[] | select(.serial == $s) | .reason') == superseded ]] ||
	tg_fail "list shows the reason"

# ---- hsm-operator on SoftHSM2 --------------------------------------------
ENGINE_OK=0
if openssl engine pkcs11 >/dev/null 2>&1; then ENGINE_OK=1; fi
tg_softhsm_default
export TOKENGATE_PIN=$TG_SOFTHSM_PIN
# SoftHSM2 is a test HSM: this CA lists it (a new CA lists no HSM; every
# refusal of the HSM path is in test_ca_hsm.sh)
tg_softhsm_ca_trust ca
if [[ $ENGINE_OK -eq 1 ]]; then
	# the CSR is signed on the token (libp11's engine)
	openssl req -new -engine pkcs11 -keyform engine \
		-key "pkcs11:token=tg-test;object=p256;type=private;pin-value=$TG_SOFTHSM_PIN" \
		-subj "/CN=api" -out hsm.csr 2>/dev/null || ENGINE_OK=0
fi
if [[ $ENGINE_OK -eq 1 ]]; then
	"$TG" ca issue --dir ca --csr hsm.csr --id spiffe://example.org/svc/api \
		--hsm-key "pkcs11:token=tg-test;object=p256;type=private" --out hsm.pem
	"$TG" ca show --cert hsm.pem >hsm.json
	[[ $(jq -r '.provenance | [.level, .pin_policy, .touch_policy, (.attestation_sha256|tostring)] | join(" ")' hsm.json) == \
		"hsm-operator once never null" ]] || tg_fail "hsm provenance: $(cat hsm.json)"
	openssl verify -CAfile ca/ca.pem -purpose sslclient hsm.pem || tg_fail "hsm leaf"
	# the HSM key is not the CSR's key: its challenge signature does not
	# verify with the CSR's public key
	expect_fail "signature does not verify with the CSR's public key" \
		issue --csr alice.csr --id spiffe://example.org/svc/api \
		--hsm-key "pkcs11:token=tg-test;object=p384;type=private"
else
	echo "note: openssl's pkcs11 engine is unavailable; hsm-operator success case not run"
fi
# an exportable HSM key
expect_fail "is exportable (CKA_EXTRACTABLE is true)" \
	issue --csr alice.csr --id spiffe://example.org/svc/api \
	--hsm-key "pkcs11:token=tg-test;object=exportable;type=private"


# ---- a CA whose key lives on the HSM (generated there when absent) -------
"$TG" ca init --dir hsmca --trust-domain example.org --attestation-roots "$T/acme-roots" \
	--key "pkcs11:token=tg-test;object=ca-key;type=private"
[[ ! -e hsmca/ca.key && -f hsmca/ca.key.uri ]] || tg_fail "HSM CA must not have a key file"
pkcs11-tool --module "$TG_SOFTHSM2_MODULE" --token-label tg-test --login \
	--pin "$TG_SOFTHSM_PIN" --list-objects --type privkey 2>/dev/null |
	grep -q "label: *ca-key" || tg_fail "CA key not generated on the token"
"$TG" ca issue --dir hsmca --csr alice.csr --id spiffe://example.org/dev/alice \
	--attestation att.pem --intermediate Acme-f9.pem --out alice-hsmca.pem
openssl verify -CAfile hsmca/ca.pem -purpose sslclient alice-hsmca.pem || tg_fail "HSM CA leaf"
s2=$(openssl x509 -in alice-hsmca.pem -noout -serial | cut -d= -f2)
"$TG" ca revoke --dir hsmca --serial "$s2"
"$TG" ca crl --dir hsmca --out hsmca-crl.pem
if openssl verify -crl_check -CRLfile hsmca-crl.pem -CAfile hsmca/ca.pem alice-hsmca.pem 2>/dev/null; then
	tg_fail "revoked by the HSM CA but still verifies"
fi
expect_fail "pin-value" "$TG" ca init --dir hsmca2 --trust-domain example.org \
	--key "pkcs11:token=tg-test;object=ca-key;type=private?pin-value=1234"

echo "PASS: tokengate ca"
