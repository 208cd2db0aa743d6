#!/usr/bin/env bash
# test_gate_bruteforce.sh — the gate limits failed TLS handshakes per
# source address (limits.handshake_failures within
# limits.handshake_failure_ms), driven by real curl and openssl s_client:
#   - handshakes without a client certificate, with another CA's
#     certificate and with an expired one each fail with a "tls-reject"
#     record; the 4th failure (max 4) blocks 127.0.0.1: one
#     "source-blocked" record (source, failures, window) and one line on the
#     gate's log naming the address, the count and the two settings;
#   - while blocked, every new connection from 127.0.0.1 is closed before
#     any handshake (a valid client too), with no further record, and
#     tokengate_connections_refused_total{reason="handshake-failures"}
#     counts each; a valid client from 127.0.0.2 (another source) is served;
#   - connections that close or stay silent before a ClientHello (port
#     checks) never count;
#   - once the window is over 127.0.0.1 is served again, and starts from
#     zero (3 more failures do not block it);
#   - `tokengate gate --help` names both settings.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
tg_require_cmd curl openssl jq timeout
cd "$TG_TMP"
gate_pki
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
UPLOG=$TG_TMP/up-up.jsonl
WINDOW=4000

"$TG" gate --help >help.txt
grep -q "handshake_failures 20, handshake_failure_ms 60000" help.txt ||
	tg_fail "gate --help does not give the handshake failure limit's defaults: $(grep -i handshake help.txt)"

gate_config_limits "handshake_failures: 4, handshake_failure_ms: $WINDOW"
gate_start

# a leaf of another CA (not trusted) and an expired one of the gate's CA
gate_leaf mallory "spiffe://$TD/dev/mallory" 1 1 1 "$PKI/other"
START=20200101000000Z END=20200102000000Z gate_leaf expired "spiffe://$TD/dev/alice" 1 1 1

# ok FROM: a valid client (alice) from address FROM gets 200
ok()
{
	curl -sS --max-time 10 --interface "$1" --cacert "$PKI/srvca.pem" --cert "$PKI/alice.pem" \
		--key "$(gate_key_of alice)" -o /dev/null -w '%{http_code}' "$(gate_url /echo)" 2>curl.err
}
# fail_hs ARGS: one handshake from 127.0.0.1 that the gate refuses
fail_hs()
{
	if curl -sS --max-time 10 --interface 127.0.0.1 --cacert "$PKI/srvca.pem" "$@" \
		-o /dev/null "$(gate_url /echo)" 2>curl.err; then
		tg_fail "a handshake the gate must refuse succeeded: curl $*"
	fi
}
refused_metric() { gate_metric 'tokengate_connections_refused_total{reason="handshake-failures"}'; }

# ---- port checks: closed or silent before a ClientHello never count -----
for _ in 1 2 3 4 5 6; do
	timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$GATE_PORT; exec 3>&-" || true
done
[[ $(ok 127.0.0.1) == 200 ]] || tg_fail "after 6 port checks 127.0.0.1 is not served: $(cat curl.err)"
gate_audit_none event=source-blocked
echo "ok: 6 connections closed before a ClientHello did not count against 127.0.0.1"

# ---- four failed handshakes block the source ----------------------------
gate_audit_mark
fail_hs                                                  # no certificate
fail_hs --cert "$PKI/mallory.pem" --key "$(gate_key_of mallory)" # another CA
fail_hs --cert "$PKI/expired.pem" --key "$(gate_key_of expired)" # expired
gate_audit_none event=source-blocked
t_block=$(date +%s%3N)
fail_hs # the 4th
gate_audit_expect event=tls-reject
gate_audit_expect event=source-blocked source=127.0.0.1 failures=4 window_ms=$WINDOW
n=$(gate__audit_new | jq -c 'select(.event == "tls-reject")' | wc -l)
[[ $n == 4 ]] || tg_fail "$n tls-reject records for 4 failed handshakes"
tg_wait_until 5 grep -q "4 failed TLS handshakes from 127.0.0.1 within $WINDOW ms; its connections are refused for $WINDOW ms (limits.handshake_failures, limits.handshake_failure_ms)" "$GATE_LOG" ||
	tg_fail "the gate's log does not say why 127.0.0.1 is refused: $(tail -n 5 "$GATE_LOG")"
echo "ok: the 4th failed handshake blocked 127.0.0.1: one source-blocked record, one log line"

# ---- while blocked: closed before the handshake, counted, not recorded --
gate_audit_mark
before=$(refused_metric)
nup=$(wc -l <"$UPLOG")
for _ in 1 2 3; do
	code=$(ok 127.0.0.1) && tg_fail "a blocked source was served (HTTP $code)"
done
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$GATE_PORT" -CAfile "$PKI/srvca.pem" \
	-cert "$PKI/alice.pem" -key "$(gate_key_of alice)" </dev/null 2>&1) || true
grep -q "Server certificate" <<<"$out" && tg_fail "a blocked source got the server's certificate: $out"
after=$(refused_metric)
((after - ${before:-0} == 4)) || tg_fail "refused{handshake-failures} went from '${before:-0}' to '$after', want +4"
[[ $(wc -l <"$UPLOG") == "$nup" ]] || tg_fail "a blocked source's request reached the upstream"
gate_audit_none event=tls-reject
gate_audit_none event=source-blocked
code=$(ok 127.0.0.2) || true
[[ $code == 200 ]] || tg_fail "127.0.0.2 (another source) was not served while 127.0.0.1 is blocked: HTTP $code $(cat curl.err)"
gate_audit_expect event=request decision=allow peer~127.0.0.2
echo "ok: blocked: 4 connections from 127.0.0.1 closed before a handshake (counted, not recorded, nothing upstream); 127.0.0.2 served"

# ---- the window is over: served again, counting from zero ----------------
left=$((t_block + WINDOW + 300 - $(date +%s%3N)))
((left <= 0)) || sleep "$((left / 1000)).$(printf '%03d' $((left % 1000)))"
[[ $(ok 127.0.0.1) == 200 ]] || tg_fail "127.0.0.1 is not served once the block is over: $(cat curl.err)"
gate_audit_mark
fail_hs
fail_hs
fail_hs
[[ $(ok 127.0.0.1) == 200 ]] || tg_fail "3 failures after the block blocked 127.0.0.1 again (max 4): $(cat curl.err)"
gate_audit_none event=source-blocked
echo "ok: after the block 127.0.0.1 is served and counts from zero"

gate_stop
"$TG" audit verify "$TG_TMP/audit.log" >/dev/null || tg_fail "the audit chain does not verify"
echo "ok: the audit chain verifies"
