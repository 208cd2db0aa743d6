#!/usr/bin/env bash
# test_gate_verify.sh — the gate's client-certificate verifier
# (tg_gate_verify_peer, through gate_verify_probe) on the certificate matrix
# of issue 11: a CA made by `tokengate ca init` issuing hsm-operator leaves
# from SoftHSM2 (accepted, with their provenance, notAfter and SHA-256), and
# each bad certificate refused with its reason: self-signed; another CA;
# expired; not yet valid; revoked (ca revoke + ca crl, PEM and DER); a bad
# new CRL keeping the old one; no provenance extension; provenance copied
# into a certificate from a CA the gate does not trust; serverAuth only; a
# CA certificate as leaf; two URI SANs; no basicConstraints; no EKU or
# anyExtendedKeyUsage; a URI SAN that is not spiffe://.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"

TG=$TG_BIN_DIR/tokengate
P=${TG_GATE_VERIFY_PROBE:-}
[[ -x $TG ]] || tg_skip "$TG is not built"
[[ -x $P ]] || tg_skip "gate_verify_probe is not built (TG_GATE_VERIFY_PROBE)"
cd "$TG_TMP"
TD=example.org
if [[ ${1:-} == sim ]]; then
	source "$TG_SOURCE_DIR/tests/integration/test_gate_verify_sim.sh"
	exit 0
fi
tg_require_cmd pkcs11-tool openssl
tg_softhsm_default
export TOKENGATE_PIN=$TG_SOFTHSM_PIN

# ---- a real CA and real hsm-operator leaves -----------------------------
"$TG" ca init --dir ca --trust-domain "$TD" >/dev/null
tg_softhsm_ca_trust ca
KEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=p256;type=private?module-path=$TG_SOFTHSM2_MODULE"
"$TG" enroll --key "$KEY" --id "spiffe://$TD/svc/api" --out-dir req >/dev/null
issue() { "$TG" ca issue --dir ca --csr req/csr.pem --id "spiffe://$TD/svc/api" --hsm-key "$KEY" --out "$1" >/dev/null; }
issue good.pem
issue victim.pem
"$TG" ca init --dir other --trust-domain "$TD" >/dev/null

# ---- accepted, with its provenance ----------------------------------------
# the token serial as openssl reads it from the extension (not our decoder)
off=$(openssl asn1parse -in good.pem | grep -A1 ':2.25.55409018484616740550661563879703842270.1' |
	sed -n 's/^ *\([0-9]*\):.*OCTET STRING.*/\1/p')
tokserial=$(openssl asn1parse -in good.pem -strparse "$off" | awk -F: '/UTF8STRING/ {print $NF; exit}')
[[ -n $tokserial ]] || tg_fail "no token serial in the provenance of good.pem"
"$P" --ca ca/ca.pem good.pem >out.txt || tg_fail "good leaf refused: $(cat out.txt)"
fp=$(openssl x509 -in good.pem -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
na=$(date -u -d "$(openssl x509 -in good.pem -noout -enddate | cut -d= -f2)" +%s)
want="ok identity=spiffe://$TD/svc/api level=hsm-operator pin=once touch=never serial=$tokserial not_after=$na sha256=$fp"
[[ $(cat out.txt) == "$want" ]] || tg_fail "accepted leaf: got '$(cat out.txt)', want '$want'"
# the TLS verify-callback entry point gives the same verdict
"$P" --ca ca/ca.pem --store-ctx good.pem >out2.txt || tg_fail "good leaf refused through the store ctx"
cmp -s out.txt out2.txt || tg_fail "store ctx: got '$(cat out2.txt)', want '$want'"
# several CAs configured: still accepted
"$P" --ca other/ca.pem --ca ca/ca.pem good.pem >/dev/null || tg_fail "good leaf with two CAs"
echo "ok: an hsm-operator leaf is accepted with its identity, provenance, notAfter and SHA-256"

# ---- validity, with `now` moved instead of the clock ----------------------
nb=$(date -u -d "$(openssl x509 -in good.pem -noout -startdate | cut -d= -f2)" +%s)
tg_expect_exit 1 "has expired; enroll again" "$P" --ca ca/ca.pem --now $((na + 60)) good.pem
tg_expect_exit 1 "is not yet valid" "$P" --ca ca/ca.pem --now $((nb - 3600)) good.pem

# ---- certificates made with openssl ---------------------------------------
# the provenance extension of the good leaf, as hex for an openssl config
prov=$(openssl asn1parse -in good.pem | grep -A1 ':2.25.55409018484616740550661563879703842270.1' |
	sed -n 's/.*\[HEX DUMP\]://p')
[[ -n $prov ]] || tg_fail "no provenance extension found in good.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf.key 2>/dev/null
openssl req -new -key leaf.key -subj /CN=api -out leaf.csr
# mk NAME CAKEY CACERT EXTS...: a leaf of leaf.key signed by CAKEY with EXTS
mk() {
	local name=$1 key=$2 cert=$3
	shift 3
	printf '%s\n' "[e]" "$@" >"$name.cnf"
	openssl x509 -req -in leaf.csr -CA "$cert" -CAkey "$key" -days "${DAYS:-1}" -set_serial "0x$RANDOM$RANDOM" \
		-extfile "$name.cnf" -extensions e -out "$name.pem" 2>/dev/null
}
SAN="subjectAltName=URI:spiffe://$TD/svc/api"
OK=("basicConstraints=critical,CA:FALSE" "extendedKeyUsage=clientAuth" "$SAN")
PROV="2.25.55409018484616740550661563879703842270.1=DER:$prov"
mk copied other/ca.key other/ca.pem "${OK[@]}" "$PROV"
mk otherca other/ca.key other/ca.pem "${OK[@]}"
mk noprov ca/ca.key ca/ca.pem "${OK[@]}"
DAYS=3650 mk longlived ca/ca.key ca/ca.pem "${OK[@]}" "$PROV"
mk withprov ca/ca.key ca/ca.pem "${OK[@]}" "$PROV"
mk serveronly ca/ca.key ca/ca.pem "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth" "$SAN" "$PROV"
mk twouris ca/ca.key ca/ca.pem "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=clientAuth" \
	"$SAN,URI:spiffe://$TD/svc/other" "$PROV"
mk noeku ca/ca.key ca/ca.pem "basicConstraints=critical,CA:FALSE" "$SAN" "$PROV"
mk anyeku ca/ca.key ca/ca.pem "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=anyExtendedKeyUsage" "$SAN" "$PROV"
mk nobc ca/ca.key ca/ca.pem "extendedKeyUsage=clientAuth" "$SAN" "$PROV"
mk badid ca/ca.key ca/ca.pem "${OK[0]}" "${OK[1]}" "subjectAltName=URI:https://$TD/svc/api" "$PROV"
openssl req -x509 -key leaf.key -subj /CN=api -days 1 -out selfsigned.pem \
	-addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=clientAuth" \
	-addext "$SAN" -addext "$PROV"

# the control: the same openssl recipe with the provenance, from the CA, passes
"$P" --ca ca/ca.pem withprov.pem >out.txt 2>err || tg_fail "openssl-made leaf with provenance: $(cat err)"
NOTCA="was not issued by a configured tokengate CA"
tg_expect_exit 1 "$NOTCA" "$P" --ca ca/ca.pem selfsigned.pem
tg_expect_exit 1 "$NOTCA" "$P" --ca ca/ca.pem otherca.pem
tg_expect_exit 1 "$NOTCA" "$P" --ca ca/ca.pem copied.pem
tg_expect_exit 1 "$NOTCA" "$P" --ca ca/ca.pem --store-ctx copied.pem
# ... also when the client sends the untrusted CA along as its chain
tg_expect_exit 1 "$NOTCA" "$P" --ca ca/ca.pem --chain other/ca.pem copied.pem
tg_expect_exit 1 "has no key-provenance extension (2.25.55409018484616740550661563879703842270.1)" \
	"$P" --ca ca/ca.pem noprov.pem
tg_expect_exit 1 "extendedKeyUsage lacks clientAuth" "$P" --ca ca/ca.pem serveronly.pem
tg_expect_exit 1 "extendedKeyUsage lacks clientAuth" "$P" --ca ca/ca.pem noeku.pem
tg_expect_exit 1 "extendedKeyUsage lacks clientAuth" "$P" --ca ca/ca.pem anyeku.pem
tg_expect_exit 1 "is a CA certificate (basicConstraints CA:TRUE)" "$P" --ca ca/ca.pem ca/ca.pem
tg_expect_exit 1 "has no basicConstraints" "$P" --ca ca/ca.pem nobc.pem
tg_expect_exit 1 "URI" "$P" --ca ca/ca.pem twouris.pem
grep -qF "client certificate /CN=api:" err || tg_fail "two URIs: the certificate is not named: $(cat err)"
tg_expect_exit 1 "client certificate /CN=api:" "$P" --ca ca/ca.pem badid.pem

# ---- revocation ---------------------------------------------------------
"$TG" ca crl --dir ca --out crl0.pem
"$P" --ca ca/ca.pem --crl crl0.pem victim.pem >/dev/null || tg_fail "not yet revoked: must verify"
vserial=$(openssl x509 -in victim.pem -noout -serial | cut -d= -f2)
"$TG" ca revoke --dir ca --serial "$vserial"
"$TG" ca crl --dir ca --out crl.pem
openssl crl -in crl.pem -outform DER -out crl.der
tg_expect_exit 1 "is revoked by the configured CRL" "$P" --ca ca/ca.pem --crl crl.pem victim.pem
tg_expect_exit 1 "is revoked by the configured CRL" "$P" --ca ca/ca.pem --crl crl.der victim.pem
"$P" --ca ca/ca.pem --crl crl.pem good.pem >/dev/null || tg_fail "good leaf refused with the CRL"
# reload: a good new CRL replaces the old one
"$P" --ca ca/ca.pem --crl crl0.pem --reload crl.pem good.pem >/dev/null 2>err || tg_fail "reload: $(cat err)"
grep -qx "reload: ok" err || tg_fail "reload of a good CRL: $(cat err)"
tg_expect_exit 1 "is revoked" "$P" --ca ca/ca.pem --crl crl0.pem --reload crl.pem victim.pem
# a bad new file keeps the old CRL (victim still revoked) and says why
echo garbage >bad.crl
tg_expect_exit 1 "reload: new CRL refused, the previous one stays in use: CRL file 'bad.crl' holds no CRL" \
	"$P" --ca ca/ca.pem --crl crl.pem --reload bad.crl victim.pem
grep -qF "is revoked by the configured CRL" err || tg_fail "old CRL not kept: $(cat err)"
tg_expect_exit 1 "reload: new CRL refused, the previous one stays in use: cannot read the CRL file 'missing.crl'" \
	"$P" --ca ca/ca.pem --crl crl.pem --reload missing.crl victim.pem
"$TG" ca crl --dir other --out other.crl
tg_expect_exit 1 "reload: new CRL refused, the previous one stays in use: CRL file 'other.crl': a CRL is not signed by any configured client CA" \
	"$P" --ca ca/ca.pem --crl crl.pem --reload other.crl victim.pem
grep -qF "is revoked by the configured CRL" err || tg_fail "old CRL not kept: $(cat err)"
# at load: a CRL of another CA is refused; a CRL with no entry for the
# leaf's CA refuses the leaf
tg_expect_exit 2 "load: CRL file 'other.crl': a CRL is not signed by any configured client CA" \
	"$P" --ca ca/ca.pem --crl other.crl good.pem
tg_expect_exit 1 "the CRL file has no CRL of the CA that issued" \
	"$P" --ca ca/ca.pem --ca other/ca.pem --crl crl.pem otherca.pem
# a CRL past its nextUpdate refuses every leaf (a leaf valid for ten years)
nu=$(date -u -d "$(openssl crl -in crl.pem -noout -nextupdate | cut -d= -f2)" +%s)
"$P" --ca ca/ca.pem --crl crl.pem longlived.pem >/dev/null || tg_fail "long-lived leaf refused"
tg_expect_exit 1 "the configured CRL is out of date (nextUpdate passed), so client certificate /CN=api cannot be checked" \
	"$P" --ca ca/ca.pem --crl crl.pem --now $((nu + 60)) longlived.pem
# ... and a CRL already stale is refused at load and on reload (old kept)
: >index.txt
printf '%s\n' "[ca]" "default_ca=c" "[c]" "database=index.txt" "default_md=sha256" >stale.cnf
openssl ca -gencrl -batch -config stale.cnf -keyfile ca/ca.key -cert ca/ca.pem -crlsec 1 -out stale.crl 2>/dev/null
sleep 2
tg_expect_exit 2 "load: CRL file 'stale.crl' is out of date" "$P" --ca ca/ca.pem --crl stale.crl good.pem
tg_expect_exit 1 "reload: new CRL refused, the previous one stays in use: CRL file 'stale.crl' is out of date" \
	"$P" --ca ca/ca.pem --crl crl.pem --reload stale.crl victim.pem
grep -qF "is revoked by the configured CRL" err || tg_fail "old CRL not kept: $(cat err)"
# no CA, or a file that is not a CA
tg_expect_exit 2 "load: no client CA configured" "$P" good.pem
tg_expect_exit 2 "holds a certificate that is not a CA" "$P" --ca good.pem good.pem
echo "ok: the certificate matrix"
