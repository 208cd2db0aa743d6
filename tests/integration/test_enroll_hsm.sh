#!/usr/bin/env bash
# test_enroll_hsm.sh — `tokengate enroll --key pkcs11:URI` end to end on
# SoftHSM2 (level hsm-operator): an existing non-exportable key, a key that
# does not exist yet (generated on the token, non-exportable, then
# certified), --out-dir with the printed `tokengate ca issue --hsm-key`
# command, the certificate imported next to the key (same CKA_ID), and the
# refusal of the fixture's exportable key.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"

tg_require_cmd pkcs11-tool openssl jq
TG=$TG_BIN_DIR/tokengate
[[ -x $TG ]] || tg_skip "$TG is not built"
T=$TG_TMP
cd "$T"
TD=example.org
tg_softhsm_default
M="module-path=$TG_SOFTHSM2_MODULE"
export TOKENGATE_PIN=$TG_SOFTHSM_PIN
p11() { pkcs11-tool --module "$TG_SOFTHSM2_MODULE" --token-label "$TG_SOFTHSM_TOKEN" \
	--login --pin "$TG_SOFTHSM_PIN" "$@"; }

"$TG" ca init --dir ca --trust-domain "$TD" >/dev/null
# SoftHSM2 is listed as a test HSM (a new CA lists none)
tg_softhsm_ca_trust ca

# an existing key (p256, id 01)
"$TG" enroll --key "pkcs11:token=tg-test;object=p256;type=private?$M" \
	--id "spiffe://$TD/svc/api" --ca-dir ca --cert-out api.pem >out 2>err ||
	{ cat out err >&2; tg_fail "enroll p256"; }
cat out
"$TG" ca show --cert api.pem >show.json
jq -e '.provenance.level == "hsm-operator"' show.json >/dev/null || tg_fail "show: $(cat show.json)"
openssl verify -CAfile ca/ca.pem -purpose sslclient api.pem >/dev/null || tg_fail "chain"
p11 --list-objects --type cert >certs.txt
grep -A4 "Certificate Object" certs.txt | grep -q "ID: *01" ||
	tg_fail "no certificate with the key's id 01: $(cat certs.txt)"
p11 --read-object --type cert --id 01 -o api-on-token.der
cmp api-on-token.der <(openssl x509 -in api.pem -outform DER) || tg_fail "certificate on the token differs"
echo "ok: existing SoftHSM2 key enrolled (hsm-operator), certificate stored with id 01"

# a key that does not exist: generated on the token, non-exportable
"$TG" enroll --key "pkcs11:token=tg-test;object=fresh;type=private?$M" --algorithm ec-p384 \
	--id "spiffe://$TD/svc/fresh" --ca-dir ca --cert-out fresh.pem >out 2>err ||
	{ cat out err >&2; tg_fail "enroll with keygen"; }
grep -q "generated a non-exportable ec-p384 key" err || tg_fail "no keygen message: $(cat err)"
p11 --list-objects --type privkey >keys.txt
grep -A12 "label: *fresh" keys.txt >fresh.txt || tg_fail "no key 'fresh': $(cat keys.txt)"
grep -q "never extractable" fresh.txt || tg_fail "fresh key: $(cat fresh.txt)"
grep -q "sensitive" fresh.txt || tg_fail "fresh key not sensitive: $(cat fresh.txt)"
openssl x509 -in fresh.pem -noout -text | grep -q "NIST CURVE: P-384" || tg_fail "not P-384"
"$TG" ca show --cert fresh.pem | jq -e '.provenance.level == "hsm-operator"' >/dev/null ||
	tg_fail "fresh: not hsm-operator"
p11 --list-objects --type cert | grep -q "label: *fresh" || tg_fail "fresh: certificate not stored"
echo "ok: a missing key is generated on the token (non-exportable, P-384) and enrolled"

# --validity reaches the CA: a 2-hour certificate for the p384 key
"$TG" enroll --key "pkcs11:token=tg-test;object=p384;type=private?$M" --validity 2h \
	--id "spiffe://$TD/svc/short" --ca-dir ca --cert-out short.pem >/dev/null 2>err ||
	{ cat err >&2; tg_fail "enroll --validity 2h"; }
nb=$(date -d "$(openssl x509 -in short.pem -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in short.pem -noout -enddate | cut -d= -f2)" +%s)
((na - nb == 7200)) || tg_fail "--validity 2h gave $((na - nb)) s"
echo "ok: --validity 2h gives a 2-hour certificate"

# --out-dir: the request and the exact `ca issue --hsm-key` command
# (the PIN given in the URI is not printed: the command takes it from
# TOKENGATE_PIN instead)
"$TG" enroll --key "pkcs11:token=tg-test;object=rsa2048;type=private?$M&pin-value=$TG_SOFTHSM_PIN" \
	--id "spiffe://$TD/svc/batch" --out-dir offline >out 2>err ||
	{ cat out err >&2; tg_fail "enroll --out-dir"; }
cat out
grep -q "pin-value" out && tg_fail "the printed command shows the PIN: $(cat out)"
grep -Eq "pin-source=env(:|%3A)TOKENGATE_PIN" out || tg_fail "printed command: $(cat out)"
[[ -s offline/csr.pem ]] || tg_fail "no offline/csr.pem"
cmd=$(grep -m1 'tokengate ca issue' out | sed 's/^ *//; s/CA_DIR/ca/; s/^tokengate/"$TG"/')
eval "$cmd" >/dev/null || tg_fail "printed command failed: $cmd"
"$TG" ca show --cert offline/cert.pem | jq -e '.provenance.level == "hsm-operator"' >/dev/null ||
	tg_fail "offline: not hsm-operator"
echo "ok: --out-dir then the printed tokengate ca issue --hsm-key"

# --out-dir named with shell syntax (quotes, $(...), backticks, a newline):
# the printed command, run by sh, hands every value over unchanged and runs
# nothing else
odd=$T/$'it\'s $(touch pwned) `touch pwned2` "q" \\ $HOME\nline 2'
"$TG" enroll --key "pkcs11:token=tg-test;object=p384;type=private?$M" \
	--id "spiffe://$TD/svc/odd" --out-dir "$odd" >out 2>err ||
	{ cat out err >&2; tg_fail "enroll --out-dir with an odd name"; }
cmd=$(sed -n '/^  tokengate ca issue/,$p' out)
mapfile -d '' got < <(sh -c "tokengate() { printf '%s\0' \"\$@\"; }; $cmd")
want=(ca issue --dir CA_DIR --csr "$odd/csr.pem" --id "spiffe://$TD/svc/odd"
	--hsm-key "pkcs11:token=tg-test;object=p384;type=private?$M" --out "$odd/cert.pem")
[[ ${#got[@]} -eq ${#want[@]} ]] || tg_fail "printed command gave ${#got[@]} arguments: $cmd"
for i in "${!want[@]}"; do
	[[ ${got[$i]} == "${want[$i]}" ]] || tg_fail "argument $i: got [${got[$i]}], want [${want[$i]}]"
done
[[ ! -e pwned && ! -e pwned2 ]] || tg_fail "the printed command ran a command substitution"
TG=$TG sh -c "tokengate() { \"\$TG\" \"\$@\"; }; ${cmd/CA_DIR/ca}" >/dev/null || tg_fail "printed command failed: $cmd"
"$TG" ca show --cert "$odd/cert.pem" | jq -e '.provenance.level == "hsm-operator"' >/dev/null ||
	tg_fail "odd out-dir: not hsm-operator"
echo "ok: the printed command survives quotes, \$(...), backticks and newlines through sh"

# the fixture's exportable key is refused, with the reason
rc=0
"$TG" enroll --key "pkcs11:token=tg-test;object=exportable;type=private?$M" \
	--id "spiffe://$TD/svc/leaky" --ca-dir ca >out 2>err || rc=$?
((rc == 1)) || tg_fail "exportable key: exit $rc ($(cat err))"
grep -q "CKA_EXTRACTABLE is true" err || tg_fail "exportable key message: $(cat err)"
grep -q "the CA certifies only keys generated non-exportable on the token (enroll takes no --allow-imported" err ||
	tg_fail "exportable key: no enroll context: $(cat err)"
echo "refused as expected: $(cat err)"
[[ ! -e ca/issued/leaky.pem ]]
# no token matches
rc=0
"$TG" enroll --key "pkcs11:token=nope;object=p256;type=private?$M" \
	--id "spiffe://$TD/svc/api" --ca-dir ca >out 2>err || rc=$?
((rc == 1)) || tg_fail "missing token: exit $rc"
grep -q "token 'nope' not found" err || tg_fail "missing token message: $(cat err)"
echo "refused as expected: $(cat err)"
# a CA that lists no HSM refuses before a key is generated on the token
"$TG" ca init --dir nohsm --trust-domain "$TD" >/dev/null
tg_expect_exit 1 "the CA in nohsm refuses this HSM key (nothing was changed on the token): PKCS#11 module '$TG_SOFTHSM2_MODULE' is not listed in hsm_tokens" \
	"$TG" enroll --key "pkcs11:token=tg-test;object=unlisted;type=private?$M" \
	--id "spiffe://$TD/svc/unlisted" --ca-dir nohsm
tg_expect_exit 1 "the CA in nohsm refuses this HSM key (nothing was changed on the token): the CA policy lists no HSM (hsm_tokens in policy.yaml is empty)" \
	"$TG" enroll --key "pkcs11:token=tg-test;object=unlisted;type=private" \
	--id "spiffe://$TD/svc/unlisted" --ca-dir nohsm
p11 --list-objects --type privkey | grep -q "label: *unlisted" && tg_fail "a key was generated for a CA that refuses the HSM"
echo "ok: an HSM the CA does not list is refused before any key is generated"
echo "PASS: tokengate enroll on SoftHSM2"
