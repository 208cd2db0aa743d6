#!/usr/bin/env bash
# test_gate_interop.sh — clients nobody here wrote, with a key nobody can
# read: a SoftHSM2 key enrolled by `tokengate enroll` and certified by
# `tokengate ca issue`, used by curl and by `openssl s_client` through
# OpenSSL's pkcs11 engine (libengine-pkcs11-openssl; curl --engine pkcs11
# --key-type ENG, s_client -engine pkcs11 -keyform engine), against
# `tokengate gate`: allowed and denied requests, connection reuse, a
# streamed request body, TLS 1.2 and 1.3 (and nothing older; TLS 1.2 with
# forward-secret AEAD suites only, CBC suites and renegotiation refused), session
# resumption through s_client's -sess_out/-sess_in keeping the
# authorization, a framing attack sent raw through s_client; each with its
# audit record.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
gate_require_engine
cd "$TG_TMP"
gate_hsm_setup

# ---- curl -------------------------------------------------------------------------------------
gate_audit_mark
gate_curl -sS -w '%{http_code} %{num_connects}\n' -o a.json "$(gate_url /echo)" -o b.json /v1/datasets/d \
	>codes.txt || tg_fail "curl: $(cat codes.txt)"
[[ $(tr '\n' ' ' <codes.txt) == "200 1 200 0 " ]] || tg_fail "curl /echo + /v1/datasets/d: $(cat codes.txt) $(cat a.json)"
[[ $(jq -r .path b.json) == /v1/datasets/d ]] || tg_fail "curl second URL: $(cat b.json)"
[[ $(jq -r .conn a.json) == "$(jq -r .conn b.json)" ]] || tg_fail "curl's two requests did not share the connection"
[[ $(jq -r '.headers[] | select(.[0] | ascii_downcase == "x-tokengate-identity") | .[1]' a.json) == "$API" ]] ||
	tg_fail "identity upstream: $(cat a.json)"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo identity=$API provenance.level=hsm-operator
gate_audit_expect event=$GATE_EV_REQ decision=allow route=datasets-read path=/v1/datasets/d identity=$API
echo "ok: curl with the key on SoftHSM2 (pkcs11 engine): two requests on one connection"
head -c 3000000 /dev/urandom >body.bin
gate_curl -sS -X POST --data-binary @body.bin -H 'Content-Type: application/octet-stream' -o post.json /echo ||
	tg_fail "curl POST"
[[ $(jq -r .body_sha256 post.json) == $(sha256sum body.bin | cut -c1-64) ]] || tg_fail "POST body changed: $(cat post.json)"
gate_curl -sS -X POST -H 'Transfer-Encoding: chunked' --data-binary @body.bin -o post2.json /echo || tg_fail "curl chunked POST"
[[ $(jq -r .body_sha256 post2.json) == $(sha256sum body.bin | cut -c1-64) ]] || tg_fail "chunked POST body changed"
echo "ok: a 3 MB request body (Content-Length and chunked) arrives intact"
gate_audit_mark
code=$(gate_curl -sS -o deny.json -w '%{http_code}' /v1/models/m)
[[ $code == 403 ]] || tg_fail "curl on a device-attested route: $code"
[[ $(jq -r .route deny.json) == models ]] || tg_fail "403 body: $(cat deny.json)"
jq -r .reason deny.json | grep -qF "needs key level device-attested; the key is hsm-operator" || tg_fail "403 reason: $(cat deny.json)"
gate_audit_expect event=$GATE_EV_REQ decision=deny route=models status=403 identity=$API
echo "ok: curl denied with the rule and why"
v=$(gate_curl -sS -o /dev/null -w '%{http_code} %{ssl_verify_result}' --tlsv1.2 --tls-max 1.2 /echo)
[[ $v == "200 0" ]] || tg_fail "TLS 1.2: $v"
rc=0
gate_curl -sS -o /dev/null --tlsv1.1 --tls-max 1.1 /echo 2>tls11.err || rc=$?
((rc != 0)) || tg_fail "TLS 1.1 was accepted"
echo "ok: TLS 1.2 works, TLS 1.1 does not"
# TLS 1.2 suites: forward-secret AEAD only. ECDHE-ECDSA with CBC (forward
# secret, not AEAD) and with AES-GCM (the control) against the EC server key
# (a whole request, its answer read to the close: with stdin at EOF at once,
# s_client under load sometimes sent a lone LF, which the gate refuses)
printf 'GET /echo HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n\r\n' |
	gate_sclient -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 -ign_eof >gcm.out 2>&1 || true
grep -q "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" gcm.out || tg_fail "TLS 1.2 AES-GCM: $(grep -i cipher gcm.out) $(tail -n 5 gcm.out)"
grep -aq '^HTTP/1.1 200' gcm.out || tg_fail "TLS 1.2 AES-GCM request: $(grep -a -e HTTP -e error gcm.out)"
for c in ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA384; do
	rc=0
	gate_sclient -tls1_2 -cipher "$c" </dev/null >cbc.out 2>&1 || rc=$?
	((rc != 0)) && grep -q "handshake failure" cbc.out || tg_fail "TLS 1.2 with $c (not AEAD) was not refused: $(grep -i -e cipher -e alert cbc.out)"
done
# renegotiation: refused (s_client's R asks for it on a TLS 1.2 connection)
{
	sleep 1
	printf 'R\n'
	sleep 2
} | gate_sclient -tls1_2 >reneg.out 2>&1 || true
grep -q "RENEGOTIATING" reneg.out || tg_fail "s_client did not try to renegotiate: $(tail -n 5 reneg.out)"
grep -qi "no renegotiation\|alert" reneg.out || tg_fail "renegotiation was not refused: $(tail -n 8 reneg.out)"
echo "ok: TLS 1.2 takes AES-GCM with ECDHE, refuses CBC suites and renegotiation"

# ---- openssl s_client ------------------------------------------------------------------------------
gate_audit_mark
printf 'GET /echo HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n\r\n' |
	gate_sclient -quiet -sess_out sess.pem >sc1.out 2>sc1.err || true
head -n1 sc1.out | grep -q '^HTTP/1.1 200' || tg_fail "s_client: $(head -c 600 sc1.out) $(tail -5 sc1.err)"
[[ -s sess.pem ]] || tg_fail "s_client saved no session"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo identity=$API resumed=false
gate_audit_mark
printf 'GET /v1/datasets/r HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n\r\n' |
	gate_sclient -sess_in sess.pem -ign_eof >sc2.out 2>sc2.err || true
grep -q '^Reused, TLSv1.3' sc2.out || tg_fail "s_client did not resume the session: $(grep -E '^(New|Reused)' sc2.out) $(tail -3 sc2.err)"
grep -aq 'HTTP/1.1 200 OK' sc2.out || tg_fail "resumed s_client: $(grep -a HTTP sc2.out)"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=datasets-read identity=$API provenance.level=hsm-operator resumed=true
printf 'GET /v1/models/m HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n\r\n' |
	gate_sclient -sess_in sess.pem -ign_eof >sc3.out 2>sc3.err || true
grep -q '^Reused' sc3.out || tg_fail "s_client did not resume the session (3)"
grep -aq 'HTTP/1.1 403 Forbidden' sc3.out || tg_fail "resumed session on a route it may not use: $(grep -a HTTP sc3.out)"
echo "ok: s_client resumes the session (-sess_in) and is authorized like the full handshake"
gate_audit_mark
printf 'POST /echo HTTP/1.1\r\nHost: gate\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' |
	gate_sclient -quiet >sc4.out 2>sc4.err || true
head -n1 sc4.out | grep -q '^HTTP/1.1 400' || tg_fail "CL+TE through s_client: $(head -n1 sc4.out)"
gate_audit_expect event=$GATE_EV_REQ decision=deny status=400
echo "ok: a framing attack through s_client is refused with 400"
# no client certificate: the handshake fails
gate_audit_mark
printf 'GET /echo HTTP/1.1\r\nHost: gate\r\n\r\n' |
	timeout 20 openssl s_client -quiet -connect "127.0.0.1:$GATE_PORT" -CAfile "$PKI/srvca.pem" >sc5.out 2>sc5.err || true
! grep -q '^HTTP/' sc5.out || tg_fail "an HTTP answer without a client certificate: $(head -n1 sc5.out)"
grep -qi 'alert\|error' sc5.err || tg_fail "s_client without a certificate saw no TLS error: $(cat sc5.err)"
gate_audit_expect event=$GATE_EV_TLS "reason~no client certificate"
echo "ok: no client certificate: the handshake fails"
gate_stop
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo "ok: interop with curl and openssl s_client"
