#!/usr/bin/env bash
# test_enroll_sim.sh — `tokengate enroll` end to end on the simulated PIV
# token (tokengate-sim behind a private pcscd): a management key changed
# with yubico-piv-tool, `tokengate ca init` trusting the simulator's
# manufacturer CA, `tokengate enroll --ca-dir` for slot 9a (ec-p256, PIN
# once, touch never) -> a device-attested certificate with the token's
# serial and policies (`tokengate ca show`), stored on the token (OpenSC's
# module lists key + certificate), then a TLS 1.3 handshake whose client
# key signs on the token through OpenSC's module against
# `openssl s_server -Verify 1` (the server prints the client's identity and
# the token counts the private-key operation). Then --out-dir with
# `tokengate ca issue` and `enroll --install-cert`, 9c with ec-p384 and
# 9d with rsa-2048.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_SOURCE_DIR/tests/integration/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool pkcs11-tool openssl jq ss
TG=$TG_BIN_DIR/tokengate
[[ -x $TG ]] || tg_skip "$TG is not built"
openssl engine pkcs11 >/dev/null 2>&1 ||
	tg_skip "openssl's pkcs11 engine (Debian libengine-pkcs11-openssl) is missing"
T=$TG_TMP
cd "$T"

SERIAL=31415926
MGM=A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718
TD=example.org
sim_up --serial "$SERIAL"
run_ok "set-mgm-key" ypt -k"$SIM_MGM" -a set-mgm-key -n "$MGM"

# the CA's default attestation roots directory gets the simulator's
# manufacturer CA
"$TG" ca init --dir ca --trust-domain "$TD" >/dev/null
cp "$T/card.state.mfr-ca.pem" ca/attestation-roots/sim-mfr.pem

ops_before=$(sim_json private_key_operations)
# PIN from a file (--pin-source), management key from the environment
printf '%s\n' "$SIM_PIN" >pin.txt
chmod 600 pin.txt # a PIN file open to others is refused
TOKENGATE_MGM_KEY=$MGM "$TG" enroll --reader "PCD 00 00" --slot 9a \
	--id "spiffe://$TD/dev/alice" --algorithm ec-p256 --pin-policy once \
	--touch-policy never --pin-source "file:$T/pin.txt" --ca-dir ca \
	--cert-out alice.pem >enroll.out 2>enroll.err ||
	{ cat enroll.out enroll.err >&2; tg_fail "enroll 9a"; }
cat enroll.out
grep -q "level device-attested" enroll.out || tg_fail "enroll output: $(cat enroll.out)"
grep -q "the PIN is the factory default\|PIN is the factory default" enroll.err ||
	tg_fail "no warning about the default PIN: $(cat enroll.err)"

# the certificate: identity, provenance with the token's serial and policies
"$TG" ca show --cert alice.pem >show.json
[[ $(jq -r '.provenance | [.level, .token_serial, .pin_policy, .touch_policy] | join(" ")' show.json) == \
	"device-attested $SERIAL once never" ]] || tg_fail "ca show: $(cat show.json)"
grep -q "spiffe://$TD/dev/alice" show.json || tg_fail "identity: $(cat show.json)"
openssl verify -CAfile ca/ca.pem -purpose sslclient alice.pem >/dev/null || tg_fail "chain"
[[ $(sim_slot 9a origin) == generated ]] || tg_fail "slot 9a origin $(sim_slot 9a origin)"
echo "ok: enrolled 9a: device-attested, serial $SERIAL, PIN once, touch never"

# on the token: OpenSC shows the private key and the certificate
p11 -O >objects.txt 2>&1 || { cat objects.txt >&2; tg_fail "pkcs11-tool -O"; }
p11 -l --pin "$SIM_PIN" -O >objects-login.txt 2>&1 ||
	{ cat objects-login.txt >&2; tg_fail "pkcs11-tool -l -O"; }
grep -A5 "^Certificate Object" objects.txt | grep -q "ID: *01" ||
	tg_fail "no certificate with id 01 on the token: $(cat objects.txt)"
grep -A4 "^Private Key Object" objects-login.txt | grep -q "ID: *01" ||
	tg_fail "no private key with id 01 on the token: $(cat objects-login.txt)"
ypt -a read-certificate -s 9a -o on-token.pem >/dev/null 2>&1 || tg_fail "read-certificate 9a"
cmp <(openssl x509 -in on-token.pem -outform DER) <(openssl x509 -in alice.pem -outform DER) ||
	tg_fail "the certificate on the token is not the issued one"
echo "ok: OpenSC's module shows key + certificate in 9a; it is the issued certificate"

# TLS 1.3: the client key signs on the token through OpenSC's module
tls_server_cert
ops_mid=$(sim_json private_key_operations)
port=$(tg_free_port_pair)
# s_server ends when its stdin closes: keep it open through a FIFO held by
# this shell until the test ends
mkfifo srv.in
openssl s_server -accept "127.0.0.1:$port" -cert srv.pem -key srv.key -CAfile ca/ca.pem \
	-verify 1 -Verify 1 -verify_return_error -tls1_3 -naccept 1 <srv.in >s_server.log 2>&1 &
s_server_pid=$!
exec 3>srv.in
tg_wait_until 20 bash -c "ss -ltn | grep -q '127.0.0.1:$port '" || tg_fail "s_server did not listen"
rc=0
printf 'hello from the token\n' | PKCS11_MODULE_PATH=$TG_OPENSC_MODULE timeout 60 \
	openssl s_client -connect "127.0.0.1:$port" -tls1_3 -engine pkcs11 -keyform engine \
	-key "pkcs11:id=%01;type=private?pin-value=$SIM_PIN" -cert alice.pem -CAfile srv.pem \
	-verify_return_error >s_client.log 2>&1 || rc=$?
tg_wait_until 20 bash -c "! kill -0 $s_server_pid 2>/dev/null" || true
stop_server
((rc == 0)) || { cat s_client.log s_server.log >&2; tg_fail "TLS handshake with the token key"; }
grep -q "TLSv1.3" s_client.log || tg_fail "not TLS 1.3: $(cat s_client.log)"
grep -q "verify return:1" s_server.log || tg_fail "server did not verify: $(cat s_server.log)"
# the server prints the client's certificate: its URI SAN is the identity
sed -n '/^Client certificate/,/^-----END CERTIFICATE-----/p' s_server.log | sed 1d >peer.pem
openssl x509 -in peer.pem -noout -ext subjectAltName 2>/dev/null |
	grep -q "URI:spiffe://$TD/dev/alice" ||
	tg_fail "the server did not print the client's identity: $(cat s_server.log)"
grep -q "^subject=CN = alice" s_server.log || tg_fail "client subject: $(grep subject= s_server.log)"
grep -q "hello from the token" s_server.log || tg_fail "no data: $(cat s_server.log)"
ops_after=$(sim_json private_key_operations)
((ops_mid > ops_before)) || tg_fail "enroll signed no CSR on the token ($ops_before -> $ops_mid)"
((ops_after > ops_mid)) || tg_fail "the handshake did not sign on the token ($ops_mid -> $ops_after)"
echo "ok: TLS 1.3 client authentication signed on the token (operations $ops_before -> $ops_mid -> $ops_after); server saw URI:spiffe://$TD/dev/alice"

# offline CA: --out-dir, then `tokengate ca issue` with the written files,
# then --install-cert
TOKENGATE_MGM_KEY=$MGM TOKENGATE_PIN=$SIM_PIN "$TG" enroll --reader "$TG_READER" --slot 9c \
	--id "spiffe://$TD/svc/builder" --algorithm ec-p384 --pin-policy always \
	--touch-policy never --out-dir offline >offline.out 2>offline.err ||
	{ cat offline.out offline.err >&2; tg_fail "enroll --out-dir"; }
cat offline.out
for f in csr.pem attestation.pem f9.pem; do
	[[ -s offline/$f ]] || tg_fail "--out-dir wrote no $f"
done
cmd=$(grep -m1 'tokengate ca issue' offline.out | sed 's/^ *//; s/CA_DIR/ca/; s/^tokengate/"$TG"/')
[[ -n $cmd ]] || tg_fail "no 'tokengate ca issue' command printed"
eval "$cmd" >issue.out || tg_fail "the printed command failed: $cmd"
[[ -s offline/cert.pem ]] || tg_fail "ca issue wrote no offline/cert.pem"
"$TG" ca show --cert offline/cert.pem >show2.json
[[ $(jq -r '.provenance | [.level, .token_serial, .pin_policy, .touch_policy] | join(" ")' show2.json) == \
	"device-attested $SERIAL always never" ]] || tg_fail "ca show 9c: $(cat show2.json)"
install=$(grep -m1 'tokengate enroll' offline.out | sed 's/^ *//; s/^tokengate/"$TG"/')
TOKENGATE_MGM_KEY=$MGM eval "$install" >install.out || tg_fail "install: $install"
ypt -a read-certificate -s 9c -o 9c-on-token.pem >/dev/null 2>&1 || tg_fail "read 9c"
cmp <(openssl x509 -in 9c-on-token.pem -outform DER) <(openssl x509 -in offline/cert.pem -outform DER) ||
	tg_fail "9c certificate on the token differs"
# installing a certificate for another key is refused
expect_fail "install a foreign certificate" env TOKENGATE_MGM_KEY=$MGM \
	"$TG" enroll --reader "$TG_READER" --slot 9c --install-cert alice.pem
grep -q "is not a certificate for the key in slot 9c" "$T/last.out" ||
	tg_fail "foreign certificate message: $(cat "$T/last.out")"
echo "ok: --out-dir + tokengate ca issue + --install-cert (9c, ec-p384, PIN always)"

# rsa-2048 in 9d (PKCS#1 v1.5 block built here, signed on the token)
# (--json: what was done, as one JSON object on stdout)
TOKENGATE_MGM_KEY=$MGM TOKENGATE_PIN=$SIM_PIN "$TG" enroll --reader "$TG_READER" --slot 9d \
	--id "spiffe://$TD/dev/rsa-user" --algorithm rsa-2048 --touch-policy cached \
	--ca-dir ca --cert-out rsa.pem --json >rsa.out 2>rsa.err || { cat rsa.out rsa.err >&2; tg_fail "enroll rsa"; }
fp=$(openssl x509 -in rsa.pem -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
cserial=$("$TG" ca show --cert rsa.pem | jq -r .serial)
jq -e --arg td "$TD" --arg fp "$fp" --arg cs "$cserial" --arg rd "$TG_READER" \
	'.identity == "spiffe://\($td)/dev/rsa-user" and .slot == "9d" and .reader == $rd and
	 .algorithm == "rsa-2048" and .key == "generated" and .token_serial == "31415926" and
	 .serial == $cs and .level == "device-attested" and .pin_policy == "once" and
	 .touch_policy == "cached" and .certificate_path == "rsa.pem" and
	 .certificate_sha256 == $fp and .stored_on_token == true' rsa.out >/dev/null ||
	tg_fail "enroll --json: $(cat rsa.out)"
echo "ok: enroll --json reports slot, algorithm, serials, certificate path and fingerprint"
[[ $(openssl x509 -in rsa.pem -noout -text | grep -c "Public-Key: (2048 bit)") == 1 ]] ||
	tg_fail "not an RSA-2048 certificate"
"$TG" ca show --cert rsa.pem | jq -e '.provenance.touch_policy == "cached"' >/dev/null ||
	tg_fail "touch policy cached not recorded"
echo "ok: 9d rsa-2048, touch cached"
# --existing-key: a key yubico-piv-tool generated on the token (touch
# always: the simulator touches itself) is attested and enrolled as it is
run_ok "generate 9e" ypt -k"$MGM" -a generate -s 9e -A ECCP256 --pin-policy=once \
	--touch-policy=always -o 9e.pub.pem
TOKENGATE_MGM_KEY=$MGM TOKENGATE_PIN=$SIM_PIN "$TG" enroll --reader "$TG_READER" --slot 9e \
	--id "spiffe://$TD/dev/existing" --existing-key --ca-dir ca --cert-out 9e.pem >e.out 2>e.err ||
	{ cat e.out e.err >&2; tg_fail "enroll --existing-key"; }
cmp <(openssl pkey -pubin -in 9e.pub.pem -outform DER) <(openssl x509 -in 9e.pem -noout -pubkey |
	openssl pkey -pubin -outform DER) || tg_fail "--existing-key certified another key"
"$TG" ca show --cert 9e.pem | jq -e '.provenance.touch_policy == "always" and .provenance.pin_policy == "once"' \
	>/dev/null || tg_fail "9e provenance: $("$TG" ca show --cert 9e.pem)"
echo "ok: --existing-key enrolls the generated key of 9e (touch always)"
"$TG" --help | grep -q "^  enroll " || tg_fail "tokengate --help does not list enroll"
"$TG" enroll --help | grep -q "^usage: tokengate enroll" || tg_fail "enroll --help"
"$TG" enroll --help | grep -q -- "--json" || tg_fail "enroll --help does not document --json"
echo "PASS: tokengate enroll on the simulator"
