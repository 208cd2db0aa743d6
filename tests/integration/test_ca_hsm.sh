#!/usr/bin/env bash
# test_ca_hsm.sh — level hsm-operator (`tokengate ca issue --hsm-key`) on
# SoftHSM2, with every way around it that issue 8 found, each asserting the
# refusal and its message:
#   - a new CA lists no HSM in hsm_tokens: hsm-operator is refused, the
#     module not loaded; after listing SoftHSM2 it issues (EC and RSA, by
#     module-path, a symlink to it, module-name, or no module at all); an
#     entry whose serial glob does not match refuses, naming the token;
#   - a library whose constructor writes a marker file, given as
#     module-path= (also hidden behind "LISTED_DIR/../.."): refused naming
#     hsm_tokens, and the marker file never appears;
#   - a planted public key: the public-key object of a non-exportable key
#     replaced by a software key's public key with the same CKA_ID (then by
#     a certificate of it); a CSR of the software key is refused (the
#     token's challenge signature does not verify with it), a CSR of the real
#     key still issues;
#   - pin-value= on the command line is refused;
#   - crl_url in policy.yaml puts a CRL distribution point in the leaf,
#     absent otherwise; a bad crl_url and the old allow_hsm_operator key are
#     refused with their line;
#   - a CSR of the token's key asking for a subject, CA:TRUE, more names and
#     key usages gets the CA's leaf profile, its --id the only name.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"

tg_require_cmd pkcs11-tool openssl jq python3
TG=$TG_BIN_DIR/tokengate
[[ -x $TG ]] || tg_skip "$TG is not built"
[[ -f ${TG_MARKER_MODULE:-} ]] || tg_skip "the marker module is not built (TG_MARKER_MODULE)"
T=$TG_TMP
cd "$T"
TD=example.org
tg_softhsm_default
export TOKENGATE_PIN=$TG_SOFTHSM_PIN
M="module-path=$TG_SOFTHSM2_MODULE"
KEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=p256;type=private"
p11() { pkcs11-tool --module "$TG_SOFTHSM2_MODULE" --token-label "$TG_SOFTHSM_TOKEN" \
	--login --pin "$TG_SOFTHSM_PIN" "$@"; }
# issue CADIR CSR URI OUT: `ca issue --hsm-key` for spiffe://TD/svc/api
issue() { "$TG" ca issue --dir "$1" --csr "$2" --id "spiffe://$TD/svc/api" --hsm-key "$3" --out "$4"; }
serial=$(pkcs11-tool --module "$TG_SOFTHSM2_MODULE" -L 2>/dev/null |
	awk -v l="$TG_SOFTHSM_TOKEN" '/token label/ {ok = ($NF == l)} ok && /serial num/ {print $NF; exit}')
[[ -n $serial ]] || tg_fail "no serial for token $TG_SOFTHSM_TOKEN"

# CSRs signed on the token (enroll --out-dir needs no CA) and a software key's
"$TG" enroll --key "$KEY?$M" --id "spiffe://$TD/svc/api" --out-dir p256req >/dev/null
"$TG" enroll --key "pkcs11:token=$TG_SOFTHSM_TOKEN;object=rsa2048;type=private?$M" \
	--id "spiffe://$TD/svc/api" --out-dir rsareq >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sw.key 2>/dev/null
openssl req -new -key sw.key -subj /CN=api -out sw.csr

# ---- a new CA lists no HSM ------------------------------------------------
"$TG" ca init --dir newca --trust-domain "$TD" >/dev/null
grep -q "^hsm_tokens" newca/policy.yaml && tg_fail "a new CA must list no HSM: $(cat newca/policy.yaml)"
tg_expect_exit 1 "PKCS#11 module '$TG_SOFTHSM2_MODULE' is not listed in hsm_tokens of the CA policy (policy.yaml; modules listed: none), so it was not loaded" \
	issue newca p256req/csr.pem "$KEY?$M" x.pem
if p11-kit list-modules 2>/dev/null | grep -q "^softhsm2:"; then
	# module-name resolves to the registered file, then the same rule
	tg_expect_exit 1 "is not listed in hsm_tokens of the CA policy" \
		issue newca p256req/csr.pem "$KEY?module-name=softhsm2" x.pem
fi
tg_expect_exit 1 "the CA policy lists no HSM (hsm_tokens in policy.yaml is empty), so no HSM key is certified" \
	issue newca p256req/csr.pem "$KEY" x.pem
[[ ! -e x.pem ]] || tg_fail "a certificate was written"
ls newca/issued | grep -q . && tg_fail "a refused request was recorded: $(ls newca/issued)"
echo "ok: a new CA refuses hsm-operator until hsm_tokens lists an HSM"

# ---- an entry whose serial glob does not match -------------------------------
"$TG" ca init --dir strict --trust-domain "$TD" >/dev/null
tg_softhsm_ca_trust strict "no-such-serial-*"
tg_expect_exit 1 "token '$TG_SOFTHSM_TOKEN' (module '$TG_SOFTHSM2_MODULE', manufacturer 'SoftHSM project', model 'SoftHSM v2', serial '$serial') matches no entry of hsm_tokens in the CA policy" \
	issue strict p256req/csr.pem "$KEY?$M" x.pem
[[ ! -e x.pem ]] || tg_fail "a certificate was written"
echo "ok: a token whose serial the entry's glob does not match is refused, named"

# ---- SoftHSM2 listed as a test HSM: it issues ---------------------------------
"$TG" ca init --dir ca --trust-domain "$TD" >/dev/null
tg_softhsm_ca_trust ca
issue ca p256req/csr.pem "$KEY?$M" p256.pem >/dev/null
"$TG" ca show --cert p256.pem >show.json
[[ $(jq -r '.provenance | [.level, .token_serial, .pin_policy, .touch_policy, .token_manufacturer, .token_model] | join("|")' show.json) == \
	"hsm-operator|$serial|once|never|SoftHSM project|SoftHSM v2" ]] || tg_fail "provenance: $(cat show.json)"
openssl verify -CAfile ca/ca.pem -purpose sslclient p256.pem >/dev/null || tg_fail "p256 leaf"
openssl x509 -in p256.pem -noout -text | grep -q "CRL Distribution Points" &&
	tg_fail "a CRL distribution point without crl_url"
# RSA: the challenge is signed with PKCS#1 v1.5 on the token
issue ca rsareq/csr.pem "pkcs11:token=$TG_SOFTHSM_TOKEN;object=rsa2048;type=private?$M" rsa.pem >/dev/null
# no module named: the modules hsm_tokens lists are tried (never the proxy)
issue ca p256req/csr.pem "$KEY" nomod.pem >/dev/null
# module-name resolves through p11-kit's registry, then the same rule
if p11-kit list-modules 2>/dev/null | grep -q "^softhsm2:"; then
	issue ca p256req/csr.pem "$KEY?module-name=softhsm2" byname.pem >/dev/null
fi
# a symlink to the listed module is that module
ln -s "$TG_SOFTHSM2_MODULE" "$T/softhsm-link.so"
issue ca p256req/csr.pem "$KEY?module-path=$T/softhsm-link.so" link.pem >/dev/null
tg_expect_exit 1 "no token matching the --hsm-key URI in the modules hsm_tokens lists ('$TG_SOFTHSM2_MODULE')" \
	issue ca p256req/csr.pem "pkcs11:token=nope;object=p256;type=private" x.pem
echo "ok: SoftHSM2 listed in hsm_tokens: EC and RSA keys issue (module-path, symlink, module-name, none)"

# ---- a library whose constructor would run inside the CA -----------------------
export TG_MARKER_FILE=$T/marker
python3 -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' "$TG_MARKER_MODULE"
[[ -e $T/marker ]] || tg_fail "the marker module does not write its marker when loaded"
rm -f "$T/marker"
tg_expect_exit 1 "PKCS#11 module '$TG_MARKER_MODULE' is not listed in hsm_tokens of the CA policy (policy.yaml; modules listed: '$TG_SOFTHSM2_MODULE'), so it was not loaded" \
	issue ca p256req/csr.pem "$KEY?module-path=$TG_MARKER_MODULE" x.pem
[[ ! -e $T/marker ]] || tg_fail "the CA loaded a module hsm_tokens does not list"
# the same library behind a path that starts like the listed module's
sneaky="$(dirname "$TG_SOFTHSM2_MODULE")$(printf '/..%.0s' $(seq 1 12))$TG_MARKER_MODULE"
tg_expect_exit 1 "PKCS#11 module '$sneaky' is not listed in hsm_tokens" \
	issue ca p256req/csr.pem "$KEY?module-path=$sneaky" x.pem
[[ ! -e $T/marker ]] || tg_fail "the CA loaded a module through a ../ path"
grep -qF -- "add an entry '- module: $TG_MARKER_MODULE'" "$T/err" || tg_fail "canonical path: $(cat "$T/err")"
echo "ok: an unlisted module is refused before it is loaded (no marker file)"

# ---- pin-value= on the command line ---------------------------------------------
tg_expect_exit 1 "--hsm-key: the URI holds pin-value=, and a PIN on the command line is visible to every user in ps; use pin-source=file:PATH in the URI or set TOKENGATE_PIN" \
	issue ca p256req/csr.pem "$KEY?$M&pin-value=$TG_SOFTHSM_PIN" x.pem
grep -q "$TG_SOFTHSM_PIN" "$T/err" && tg_fail "the refusal shows the PIN"
echo "ok: pin-value= refused"

# ---- what a CSR asks for beyond its key is ignored ---------------------------
# (before the planted public key below: libp11 takes the key's public half
# from the token's public-key object) A CSR of the token's key (signed on it
# through OpenSSL's pkcs11 engine)
# asking for a subject, a CA certificate, more names and key usages: the
# leaf has the CA's own profile, the --id as its only name.
ENGINE=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so
if [[ -f $ENGINE ]]; then
	PKCS11_MODULE_PATH=$TG_SOFTHSM2_MODULE openssl req -new -engine pkcs11 -keyform engine \
		-key "$KEY;pin-value=$TG_SOFTHSM_PIN" -subj "/CN=admin/O=evil" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectAltName=URI:spiffe://$TD/ops/root,DNS:evil.example" \
		-addext "extendedKeyUsage=serverAuth,codeSigning" -out greedy.csr 2>greedy.err ||
		tg_fail "openssl req with the token key: $(cat greedy.err)"
	issue ca greedy.csr "$KEY?$M" greedy.pem >/dev/null
	openssl x509 -in greedy.pem -noout -text >greedy.txt
	grep -A1 "X509v3 Basic Constraints" greedy.txt | grep -q "CA:FALSE" || tg_fail "the leaf became a CA: $(cat greedy.txt)"
	! grep -q -e "Certificate Sign" -e "CRL Sign" -e "Code Signing" -e "TLS Web Server" greedy.txt ||
		tg_fail "the leaf took the CSR's key usages: $(grep -A1 -e 'Key Usage' greedy.txt)"
	san=$(grep -A1 "X509v3 Subject Alternative Name" greedy.txt | tail -n 1 | tr -d ' ')
	[[ $san == "URI:spiffe://$TD/svc/api" ]] || tg_fail "the leaf's names: $san"
	! openssl x509 -in greedy.pem -noout -subject | grep -q -e admin -e evil ||
		tg_fail "the leaf took the CSR's subject: $(openssl x509 -in greedy.pem -noout -subject)"
	echo "ok: a CSR asking for a subject, CA:TRUE, more names and usages gets the CA's profile only"
else
	tg_log "skipped the greedy CSR: OpenSSL's pkcs11 engine ($ENGINE) is missing"
fi

# ---- a planted public key ----------------------------------------------------------
# the non-exportable p256 key (id 01) keeps its private key; its public-key
# object is replaced by one holding the software key's public key
openssl pkey -in sw.key -pubout -outform DER -out sw.pub.der
p11 --delete-object --type pubkey --id 01 >/dev/null 2>&1
p11 --write-object sw.pub.der --type pubkey --id 01 --label p256 >/dev/null 2>&1
p11 --read-object --type pubkey --id 01 -o planted.der >/dev/null 2>&1
cmp -s planted.der sw.pub.der ||
	openssl pkey -pubin -inform DER -in planted.der -outform DER 2>/dev/null | cmp -s - sw.pub.der ||
	tg_fail "the public key was not planted"
tg_expect_exit 1 "HSM key 'p256' signed the CA's random challenge on the token, but the signature does not verify with the CSR's public key" \
	issue ca sw.csr "$KEY?$M" x.pem
[[ ! -e x.pem ]] || tg_fail "the software key was certified"
# the real key's CSR still issues: only the private key is evidence
issue ca p256req/csr.pem "$KEY?$M" real.pem >/dev/null
cmp <(openssl x509 -in real.pem -noout -pubkey) <(openssl req -in p256req/csr.pem -noout -pubkey) ||
	tg_fail "the certificate is not for the real key"
# the same with a planted certificate instead of a public-key object
openssl req -x509 -key sw.key -subj /CN=p256 -days 1 -outform DER -out sw.crt.der
p11 --delete-object --type pubkey --id 01 >/dev/null 2>&1
p11 --write-object sw.crt.der --type cert --id 01 --label p256 >/dev/null 2>&1
tg_expect_exit 1 "HSM key 'p256' signed the CA's random challenge on the token, but the signature does not verify with the CSR's public key" \
	issue ca sw.csr "$KEY?$M" x.pem
[[ ! -e x.pem ]] || tg_fail "the software key was certified"
issue ca p256req/csr.pem "$KEY?$M" real2.pem >/dev/null
echo "ok: a planted public key or certificate does not get a software key certified"

# ---- crl_url ---------------------------------------------------------------------------
"$TG" ca init --dir crlca --trust-domain "$TD" >/dev/null
tg_softhsm_ca_trust crlca
echo 'crl_url: "http://ca.example.org/crl/ca.crl"' >>crlca/policy.yaml
issue crlca p256req/csr.pem "$KEY?$M" crl.pem >/dev/null
openssl x509 -in crl.pem -noout -text >crl.txt
grep -A3 "X509v3 CRL Distribution Points" crl.txt | grep -q "URI:http://ca.example.org/crl/ca.crl" ||
	tg_fail "no CRL distribution point: $(cat crl.txt)"
"$TG" ca init --dir badcrl --trust-domain "$TD" >/dev/null
echo 'crl_url: "file:///etc/passwd"' >>badcrl/policy.yaml
line=$(grep -n '^crl_url' badcrl/policy.yaml | cut -d: -f1)
tg_expect_exit 1 "policy.yaml line $line: crl_url 'file:///etc/passwd' is not an http:// or https:// URL" \
	issue badcrl p256req/csr.pem "$KEY?$M" x.pem
"$TG" ca init --dir oldca --trust-domain "$TD" >/dev/null
echo 'allow_hsm_operator: true' >>oldca/policy.yaml
tg_expect_exit 1 "'allow_hsm_operator' is no longer supported: list the HSMs whose keys may be certified in 'hsm_tokens'" \
	issue oldca p256req/csr.pem "$KEY?$M" x.pem
echo "ok: crl_url gives leaves a CRL distribution point; bad keys are refused"

echo "PASS: tokengate ca issue --hsm-key"
