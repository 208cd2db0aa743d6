#!/usr/bin/env bash
# test_embed_curl.sh — the embedding API (host/embed/tokengate.h) through
# its example, examples/curl-client.c (libcurl, CURLOPT_SSL_CTX_FUNCTION),
# against a running `tokengate gate`: the client key is the SoftHSM2 key
# p256 with its hsm-operator leaf (`tokengate enroll` + `ca issue`, made by
# gate_pki GATE_HSM=1). Checks: GET allowed with the identity the gate
# verified and keep-alive requests costing one token signature; a route
# the policy denies answered 403 (exit 1); the certificate taken from the
# token when --cert is left out; openssl s_server -Verify 1
# -verify_return_error accepting it; an exportable key refused before any
# connection with the trust check's reason (exit 3); a certificate of
# another key refused (exit 3); usage errors (exit 2).
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
CC=${TG_CURL_CLIENT:?TG_CURL_CLIENT is not set: run this test through ctest}
[[ -x $CC ]] || tg_skip "$CC is not built"
gate_require
tg_require_cmd pkcs11-tool
cd "$TG_TMP"
gate_hsm_setup
export TOKENGATE_PIN=$TG_SOFTHSM_PIN
KEY="$GATE_HSM_KEY?module-path=$TG_SOFTHSM2_MODULE&pin-source=env:TOKENGATE_PIN"
URL="https://127.0.0.1:$GATE_PORT"

# ---- allowed, 5 keep-alive requests, 1 signature ----------------------------
gate_audit_mark
"$CC" --key "$KEY" --cert "$PKI/hsm-api.pem" --cacert "$PKI/srvca.pem" --requests 5 \
	"$URL/v1/datasets/train" >body.out 2>cc.err || tg_fail "curl-client: $(cat cc.err)"
grep -qx "curl-client: 5 request(s), HTTP 200, token signatures: 1" cc.err ||
	tg_fail "curl-client summary: $(cat cc.err)"
# the upstream saw the identity the gate verified (last of the 5 bodies)
got=$(tail -n 1 body.out | jq -r '[.headers[] | select(.[0] | ascii_downcase == "x-tokengate-identity")] | map(.[1]) | join(",")')
[[ $got == "spiffe://$TD/svc/api" ]] || tg_fail "identity upstream: '$got' ($(tail -c 400 body.out))"
gate_audit_expect "event=$GATE_EV_REQ" decision=allow route=datasets-read "identity=spiffe://$TD/svc/api"
echo "ok: curl-client through the gate: $(cat cc.err)"

# ---- 403 on a route that wants a device-attested key -------------------------
tg_expect_exit 1 "HTTP 403" "$CC" --key "$KEY" --cert "$PKI/hsm-api.pem" --cacert "$PKI/srvca.pem" \
	"$URL/v1/models/m1"
echo "ok: a denied route gives 403 and exit 1"

# ---- the certificate from the token ----------------------------------------------
openssl x509 -in "$PKI/hsm-api.pem" -outform DER -out hsm-api.der
pkcs11-tool --module "$TG_SOFTHSM2_MODULE" --token-label "$TG_SOFTHSM_TOKEN" --login --pin "$TG_SOFTHSM_PIN" \
	--write-object hsm-api.der --type cert --id 01 --label p256 >/dev/null 2>&1 ||
	tg_fail "cannot store the certificate on the token"
"$CC" --key "$KEY" --cacert "$PKI/srvca.pem" "$URL/v1/datasets/train" >body2.out 2>cc2.err ||
	tg_fail "curl-client, token certificate: $(cat cc2.err)"
grep -q "HTTP 200, token signatures: 1" cc2.err || tg_fail "token certificate: $(cat cc2.err)"
echo "ok: the certificate from the token: $(cat cc2.err)"

# ---- openssl s_server -Verify: the client certificate it verified --------------
SPORT=$(tg_free_port_pair)
openssl s_server -accept "127.0.0.1:$SPORT" -cert "$PKI/server.pem" -key "$PKI/server.key" \
	-Verify 1 -verify_return_error -CAfile "$PKI/ca/ca.pem" -www -naccept 1 \
	</dev/null >s_server.out 2>&1 &
SPID=$!
tg_on_exit gate__kill "$SPID"
tg_wait_until 20 grep -q ACCEPT s_server.out || tg_fail "s_server did not start: $(cat s_server.out)"
"$CC" --key "$KEY" --cacert "$PKI/srvca.pem" "https://127.0.0.1:$SPORT/" >s_www.out 2>cc3.err ||
	tg_fail "curl-client against s_server: $(cat cc3.err) $(cat s_server.out)"
grep -q "HTTP 200, token signatures: 1" cc3.err || tg_fail "s_server: $(cat cc3.err)"
grep -q "Client certificate" s_www.out || tg_fail "s_server saw no client certificate: $(head -c 2000 s_www.out)"
echo "ok: openssl s_server -Verify 1 -verify_return_error accepts the token key's certificate: $(cat cc3.err)"

# ---- refusals ----------------------------------------------------------------------
XKEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=exportable;type=private?module-path=$TG_SOFTHSM2_MODULE&pin-source=env:TOKENGATE_PIN"
gate_audit_mark
tg_expect_exit 3 "is refused (exportable): CKA_EXTRACTABLE is true" \
	"$CC" --key "$XKEY" --cert "$PKI/hsm-api.pem" --cacert "$PKI/srvca.pem" "$URL/v1/datasets/train"
P384="pkcs11:token=$TG_SOFTHSM_TOKEN;object=p384;type=private?module-path=$TG_SOFTHSM2_MODULE&pin-source=env:TOKENGATE_PIN"
tg_expect_exit 3 "is not the key of certificate '$PKI/hsm-api.pem'" \
	"$CC" --key "$P384" --cert "$PKI/hsm-api.pem" --cacert "$PKI/srvca.pem" "$URL/v1/datasets/train"
tg_expect_exit 3 "is not a pkcs11: URI" \
	"$CC" --key "$PKI/leaf.key" --cert "$PKI/hsm-api.pem" --cacert "$PKI/srvca.pem" "$URL/v1/datasets/train"
# a PIN never appears in a message
tg_expect_exit 3 "pin-value=***" "$CC" --key "pkcs11:token=$TG_SOFTHSM_TOKEN;object=p384?module-path=$TG_SOFTHSM2_MODULE&pin-value=$TG_SOFTHSM_PIN" \
	--cert "$PKI/hsm-api.pem" --cacert "$PKI/srvca.pem" "$URL/"
! grep -q "pin-value=$TG_SOFTHSM_PIN" "$TG_TMP/err" || tg_fail "the PIN is in a message"
echo "ok: exportable key, another key's certificate, a file key refused before connecting (exit 3)"
tg_expect_exit 2 "usage: curl-client" "$CC" --cacert "$PKI/srvca.pem" "$URL/"
tg_expect_exit 2 "usage: curl-client" "$CC" --key "$KEY" --cacert x --requests 0 "$URL/"
"$CC" --help | grep -q "exit: 0 all 2xx" || tg_fail "--help"
echo "ok: usage errors (exit 2), --help"
