#!/usr/bin/env bash
# test_ca_sim.sh — `tokengate ca` with attestations made by the simulated
# token (tokengate-sim behind a private pcscd, driven by yubico-piv-tool):
# the same verifier that accepts real YubiKeys accepts the simulator's
# attestations with the simulator's manufacturer root, issues
# device-attested certificates with the token's real serial and policies,
# and refuses: a PIN policy the CA does not allow, an imported key (the
# token cannot attest it, so no proof is given), another token's F9, an
# attestation forged with a slot key and chained through the slot's genuine
# attestation.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_SOURCE_DIR/tests/integration/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool openssl jq
TG=$TG_BIN_DIR/tokengate
[[ -x $TG ]] || tg_skip "$TG is not built"
T=$TG_TMP
cd "$T"

# expect_refused WANT CMD...: CMD must exit 1 and say WANT on stderr.
expect_refused()
{
	tg_expect_exit 1 "$@"
}

# csr_on_token SLOT ID CN: a CSR signed on the token by SLOT's key (CKA_ID
# ID) through OpenSC's module (p11-kit proxy) and libp11's OpenSSL engine.
# yubico-piv-tool 2.2 cannot sign requests with OpenSSL 3
# (Yubico/yubico-piv-tool#388), and OpenSC shows a PIV key only when its
# slot holds a certificate: a placeholder certificate for the slot's public
# key goes in first.
csr_on_token()
{
	local slot=$1 id=$2 cn=$3
	[[ -f tmpca.key ]] || {
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out tmpca.key 2>/dev/null
		openssl req -x509 -new -key tmpca.key -subj /CN=placeholder -out tmpca.pem
		openssl req -new -key tmpca.key -subj /CN=placeholder -out tmp.csr
	}
	openssl x509 -req -in tmp.csr -CA tmpca.pem -CAkey tmpca.key -set_serial 1 \
		-force_pubkey "$slot.pub.pem" -out "$slot.placeholder.pem" 2>/dev/null
	run_ok "placeholder certificate $slot" ypt -k"$SIM_MGM" -a import-certificate \
		-s "$slot" -i "$slot.placeholder.pem"
	run_ok "CSR $slot" openssl req -new -engine pkcs11 -keyform engine \
		-key "pkcs11:id=%$id;type=private;pin-value=$SIM_PIN" -subj "/CN=$cn" \
		-out "$slot.csr.pem"
}

openssl engine pkcs11 >/dev/null 2>&1 ||
	tg_skip "openssl's pkcs11 engine (Debian libengine-pkcs11-openssl) is missing"
SERIAL=24681357
sim_up --serial "$SERIAL"
# the simulator's own manufacturer CA (created next to the state file)
mkdir -p roots
cp "$T/card.state.mfr-ca.pem" roots/sim-mfr.pem

run_ok "read F9" ypt -a read-certificate -s f9 -o f9.pem
run_ok "generate 9a" ypt -k"$SIM_MGM" -a generate -s 9a -A ECCP256 \
	--pin-policy=once --touch-policy=never -o 9a.pub.pem
run_ok "attest 9a" ypt -a attest -s 9a -o 9a.att.pem
csr_on_token 9a 01 alice

"$TG" ca verify-attestation --roots roots --attestation 9a.att.pem \
	--intermediate f9.pem --pubkey 9a.csr.pem >v.json
fw=$(sim_json firmware)
[[ $(jq -r '[.slot, .key_algorithm, (.serial|tostring), .firmware, .pin_policy, .touch_policy] | join(" ")' v.json) == \
	"9a secp256r1 $SERIAL $fw once never" ]] || tg_fail "facts: $(cat v.json) (firmware $fw)"

"$TG" ca init --dir ca --trust-domain example.org --attestation-roots "$T/roots" >/dev/null
"$TG" ca issue --dir ca --csr 9a.csr.pem --id spiffe://example.org/dev/alice \
	--attestation 9a.att.pem --intermediate f9.pem --out alice.pem
openssl verify -CAfile ca/ca.pem -purpose sslclient alice.pem || tg_fail "leaf"
"$TG" ca show --cert alice.pem >show.json
attsha=$(openssl x509 -in 9a.att.pem -outform DER | sha256sum | cut -d' ' -f1)
[[ $(jq -r '.provenance | [.level, .token_serial, .pin_policy, .touch_policy, .attestation_sha256] | join(" ")' show.json) == \
	"device-attested $SERIAL once never $attsha" ]] || tg_fail "show: $(cat show.json)"

# the issued certificate goes onto the token, and the token key with it
# authenticates a TLS 1.3 client to openssl s_server -Verify (signature on
# the token through OpenSC's module); once revoked, a CRL-checking server
# refuses it
run_ok "install certificate 9a" ypt -k"$SIM_MGM" -a import-certificate -s 9a -i alice.pem
tls_server_cert
# tls_client NAME S_SERVER_ARGS...: one TLS 1.3 handshake; 0 when it succeeded
tls_client()
{
	local name=$1 port rc=0
	shift
	port=$(tg_free_port_pair)
	openssl s_server -accept "127.0.0.1:$port" -cert srv.pem -key srv.key \
		-CAfile ca/ca.pem -Verify 1 -verify_return_error -tls1_3 -www -naccept 1 \
		"$@" >"s_server-$name.log" 2>&1 &
	s_server_pid=$!
	tg_wait_until 20 bash -c "ss -ltn | grep -q '127.0.0.1:$port '" ||
		tg_fail "$name: s_server did not listen"
	printf 'GET / HTTP/1.0\r\n\r\n' | timeout 60 openssl s_client \
		-connect "127.0.0.1:$port" -tls1_3 -engine pkcs11 -keyform engine \
		-key "pkcs11:id=%01;type=private;pin-value=$SIM_PIN" -cert alice.pem \
		-CAfile srv.pem -verify_return_error -ign_eof >"s_client-$name.log" 2>&1 || rc=$?
	stop_server
	return $rc
}
tls_client ok || { cat s_client-ok.log s_server-ok.log >&2; tg_fail "TLS 1.3 with the token key"; }
grep -q "TLSv1.3" s_client-ok.log || tg_fail "not TLS 1.3: $(cat s_client-ok.log)"
grep -q "HTTP/1.0 200 ok" s_client-ok.log || tg_fail "no answer: $(cat s_client-ok.log)"
grep -q "Client certificate" s_client-ok.log || tg_fail "server saw no client certificate"
echo "ok: TLS 1.3 client authentication with the token key and the issued certificate"
"$TG" ca revoke --dir ca --serial "$(openssl x509 -in alice.pem -noout -serial | cut -d= -f2)" >/dev/null
"$TG" ca crl --dir ca --out crl.pem
if tls_client revoked -CRL crl.pem -crl_check; then
	tg_fail "a revoked certificate passed a CRL-checking server"
fi
grep -q "certificate revoked" s_server-revoked.log ||
	tg_fail "revoked: $(cat s_server-revoked.log)"
echo "ok: revoked certificate refused by a CRL-checking server"

# a forged attestation: anyone holding the token can sign with the 9a key,
# so they can hang an "attestation" for a software key, claiming any serial
# and policies, from the token's genuine 9a attestation, itself under the
# genuine F9 and the trusted root. The CA refuses the slot certificate in
# the F9's place.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out soft.key 2>/dev/null
openssl req -new -key soft.key -subj /CN=mallory -out mallory.csr
openssl req -new -key soft.key -subj "/CN=YubiKey PIV Attestation 9a" -out forged.csr
cat >forged.ext <<-EXT
[att]
1.3.6.1.4.1.41482.3.3 = DER:05:04:03
1.3.6.1.4.1.41482.3.7 = DER:02:04:01:02:03:04
1.3.6.1.4.1.41482.3.8 = DER:03:02
1.3.6.1.4.1.41482.3.9 = DER:03
EXT
run_ok "forge an attestation with the 9a key" openssl x509 -req -in forged.csr -CA 9a.att.pem \
	-engine pkcs11 -CAkeyform engine -CAkey "pkcs11:id=%01;type=private;pin-value=$SIM_PIN" \
	-set_serial 0x4d41 -days 30 -extfile forged.ext -extensions att -out forged.pem
# (the F9 role is checked after the attestation's signature verified with
# the key of the certificate in the F9's place: the forgery is well made)
expect_refused "the certificate given as F9 device certificate ('CN=YubiKey PIV Attestation 9a') is a slot attestation certificate" \
	"$TG" ca issue --dir ca --csr mallory.csr --id spiffe://example.org/dev/mallory \
	--attestation forged.pem --intermediate 9a.att.pem --intermediate f9.pem --out mallory.pem
[[ ! -e mallory.pem ]] || tg_fail "a certificate was written for the forged attestation"
expect_refused "is a slot attestation certificate" \
	"$TG" ca verify-attestation --roots roots --attestation forged.pem \
	--intermediate 9a.att.pem --intermediate f9.pem --pubkey mallory.csr
echo "ok: an attestation forged with a slot key is refused"

# PIN policy never: refused by the default policy (once, always)
run_ok "generate 9e" ypt -k"$SIM_MGM" -a generate -s 9e -A ECCP384 \
	--pin-policy=never --touch-policy=cached -o 9e.pub.pem
run_ok "attest 9e" ypt -a attest -s 9e -o 9e.att.pem
csr_on_token 9e 04 bob
expect_refused "PIN policy 'never' is not allowed" \
	"$TG" ca issue --dir ca --csr 9e.csr.pem --id spiffe://example.org/dev/bob \
	--attestation 9e.att.pem --intermediate f9.pem --out bob.pem
# the 9a attestation does not vouch for the 9e key
expect_refused "differs from the key being certified" \
	"$TG" ca issue --dir ca --csr 9e.csr.pem --id spiffe://example.org/dev/bob \
	--attestation 9a.att.pem --intermediate f9.pem --out bob.pem

# an imported key: the token refuses to attest it, so the CA gets no proof
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out imp.key 2>/dev/null
run_ok "import-key 9d" ypt -k"$SIM_MGM" -a import-key -s 9d -i imp.key
if ypt -a attest -s 9d -o 9d-imported.att.pem >/dev/null 2>&1; then
	tg_fail "the token attested an imported key"
fi
openssl req -new -key imp.key -subj /CN=carol -out imp.csr
expect_refused "no proof that the key lives on a token" \
	"$TG" ca issue --dir ca --csr imp.csr --id spiffe://example.org/dev/carol --out carol.pem
# ... and another slot's attestation does not help it
expect_refused "differs from the key being certified" \
	"$TG" ca issue --dir ca --csr imp.csr --id spiffe://example.org/dev/carol \
	--attestation 9a.att.pem --intermediate f9.pem --out carol.pem

# a second token: its F9 cannot vouch for the first token's attestation,
# and a CA trusting only Yubico's roots refuses the simulator
tg_sim_stop
tg_sim_init "$T/card2.state" --serial 11112222
tg_sim_start "$T/card2.state"
run_ok "read F9 of token 2" ypt -a read-certificate -s f9 -o f9-2.pem
expect_refused "signature does not verify with the F9 device certificate's key" \
	"$TG" ca issue --dir ca --csr 9a.csr.pem --id spiffe://example.org/dev/alice \
	--attestation 9a.att.pem --intermediate f9-2.pem --out x.pem
if [[ -d $TG_TESTDATA_DIR/yubikey-attestation/roots ]]; then
	mkdir -p yroots
	cp "$TG_TESTDATA_DIR/yubikey-attestation/roots/yubico-piv-ca-1.pem" yroots/
	expect_refused "does not chain to a trusted root" \
		"$TG" ca verify-attestation --roots yroots --attestation 9a.att.pem \
		--intermediate f9.pem
fi
echo "PASS: tokengate ca with the simulator"
