#!/usr/bin/env bash
# test_gate_ops.sh — running `tokengate gate`:
#   --check: a good configuration passes; a bad policy, a bad config file,
#   a missing file and a bad flag are refused with file:line (or the flag)
#   and the fix, exit 1 (2 for the command line); so are a server
#   certificate, a server key, a client CA file and a CRL that are not what
#   they should be (each message names the file and what to give);
#   a reload of a --config file changing what needs a restart (workers, the
#   admin address, the audit log or its fsync mode, a listener, the number
#   of listeners) is refused naming the change, and counted;
#   --dry-run allows what the policy denies and records it as dry-run;
#   the admin listener: /healthz, /readyz, /metrics (every tokengate_ name
#   of issue 11), 404 and 405;
#   SIGHUP reload under load: two client loops (keep-alive and a new
#   connection per request) run while the policy, the secret and the CRL
#   are reloaded several times, a broken policy among the reloads (refused,
#   the log names its line, the policy in force stays): zero failed
#   requests; an SSE stream begun before the reloads completes; a new
#   policy takes effect; a bad new policy keeps the old one and the log
#   says why.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
cd "$TG_TMP"
gate_pki
gate_crl "$TG_TMP/gate.crl"
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up

# ---- --check ------------------------------------------------------------------------
flags=(--listen 127.0.0.1:1 --cert "$PKI/server.pem" --key "$PKI/server.key" --client-ca "$PKI/ca/ca.pem"
	--upstream "http://127.0.0.1:$UP_PORT" --audit "$TG_TMP/check-audit.log")
"$TG" gate --check "${flags[@]}" --policy policy.yaml >out 2>err || tg_fail "--check of a good configuration: $(cat err)"
cat >bad-policy.yaml <<EOF
routes:
  - name: r1
    paths: ["/a"]
    allow:
      - identity: "spiffe://$TD/dev/*"
        keyy: hsm-operator
EOF
tg_expect_exit 1 "bad-policy.yaml line 6:" "$TG" gate --check "${flags[@]}" --policy bad-policy.yaml
grep -qF "keyy" "$TG_TMP/err" || tg_fail "the message does not name the unknown key: $(cat "$TG_TMP/err")"
cat >bad-upstream.yaml <<EOF
routes:
  - name: r1
    paths: ["/a"]
    upstream: nowhere
    allow:
      - identity: "spiffe://$TD/dev/*"
EOF
tg_expect_exit 1 "bad-upstream.yaml line 4:" "$TG" gate --check "${flags[@]}" --policy bad-upstream.yaml
cat >bad.yaml <<EOF
listeners:
  - name: api
    listen: 127.0.0.1:1
    upstrem: http://127.0.0.1:$UP_PORT
tls:
  cert: $PKI/server.pem
  key: $PKI/server.key
  client_ca: [$PKI/ca/ca.pem]
policy: $TG_TMP/policy.yaml
audit: {file: $TG_TMP/check-audit.log}
EOF
tg_expect_exit 1 "bad.yaml line 4:" "$TG" gate --check --config bad.yaml
grep -qF "upstrem" "$TG_TMP/err" || tg_fail "the message does not name the unknown key: $(cat "$TG_TMP/err")"
sed 's/upstrem:/upstream:/; s/^  - name: api/  - name: api\n    mode: htttp/' bad.yaml >bad2.yaml
tg_expect_exit 1 "bad2.yaml line 3:" "$TG" gate --check --config bad2.yaml
grep -qF "htttp" "$TG_TMP/err" || tg_fail "the message does not name the bad mode: $(cat "$TG_TMP/err")"
sed 's/upstrem:/upstream:/' bad.yaml >good.yaml
"$TG" gate --check --config good.yaml >out 2>err || tg_fail "--check of a good config file: $(cat err)"
f2=("${flags[@]}")
f2[3]=$TG_TMP/missing.pem
tg_expect_exit 1 "missing.pem" "$TG" gate --check "${f2[@]}" --policy policy.yaml
tg_expect_exit 2 "--bogus" "$TG" gate --check "${flags[@]}" --policy policy.yaml --bogus
# files that are not what they should be: each refused naming the file and
# what to give instead (flags[3] is --cert's value, [5] --key's, [7] --client-ca's)
echo "not PEM at all" >garbage.pem
cp garbage.pem garbage.key
chmod 600 garbage.key
mkdir -p crl.dir
bad_file()
{
	local i=$1 file=$2 want=$3 f2=("${flags[@]}")
	f2[i]=$file
	tg_expect_exit 1 "$want" "$TG" gate --check "${f2[@]}" --policy policy.yaml
}
bad_file 3 garbage.pem "server certificate: 'garbage.pem' holds no X.509 certificate (PEM, or DER with nothing after it)"
bad_file 5 garbage.key "server key 'garbage.key' is not an unencrypted PEM private key; give the key of the server certificate (PEM) or a pkcs11: URI"
bad_file 7 garbage.pem "client CA file 'garbage.pem' holds no PEM certificate; give the CA's ca.pem"
tg_expect_exit 1 "CRL file 'garbage.pem' holds no CRL (PEM or DER); give the file \`tokengate ca crl\` wrote" \
	"$TG" gate --check "${flags[@]}" --policy policy.yaml --crl garbage.pem
tg_expect_exit 1 "--crl: CRL 'crl.dir' is not a regular file" \
	"$TG" gate --check "${flags[@]}" --policy policy.yaml --crl crl.dir
[[ ! -e $TG_TMP/check-audit.log ]] || tg_fail "--check created the audit log"
"$TG" gate --help >out 2>&1 || tg_fail "gate --help failed"
grep -qF -- "--policy" out || tg_fail "gate --help does not list --policy"
echo "ok: --check refuses bad configurations with file, line and what is wrong"

# ---- --dry-run ------------------------------------------------------------------------------
gate_ports
gate_start --dry-run
gate_audit_mark
out=$(gate_py alice req /admin/users /v1/pin/x /echo)
[[ $(jq -sr 'map(.status) | join(" ")' <<<"$out") == "200 200 200" ]] || tg_fail "dry-run statuses: $out"
gate_audit_expect event=$GATE_EV_REQ decision=dry-run route=admin path=/admin/users \
	"reason~route admin has no allow entry for spiffe://$TD/dev/alice"
gate_audit_expect event=$GATE_EV_REQ decision=dry-run route=pin-always "reason~needs PIN policy always"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo
[[ $(gate_audit_count decision=deny) == 0 ]] || tg_fail "dry-run recorded a deny"
grep -q '^tokengate_requests_total{.*decision="dry-run"' <(curl -sS "http://$GATE_ADMIN/metrics") ||
	tg_fail "no dry-run requests in /metrics"
# dry-run does not make bad certificates good
GATE_BAD= gate_leaf mallory-other "spiffe://$TD/dev/mallory" 2 2 1 "$PKI/other"
rc=0
gate_py mallory-other req /echo >/dev/null || rc=$?
[[ $rc == 3 ]] || tg_fail "dry-run: a leaf of another CA got past the handshake (exit $rc)"
gate_stop
echo "ok: --dry-run allows and records what would be denied"

# ---- admin listener and metrics ----------------------------------------------------------------
GATE_AUDIT=$TG_TMP/audit2.log
gate_ports
gate_start --crl "$TG_TMP/gate.crl"
gate_py alice resume /echo >/dev/null
gate_py alice req /admin/x >/dev/null
curl -sS -o body -w '%{http_code}' "http://$GATE_ADMIN/healthz" >code
[[ $(cat code) == 200 ]] || tg_fail "/healthz: $(cat code) $(cat body)"
curl -sS -o body -w '%{http_code}' "http://$GATE_ADMIN/readyz" >code
[[ $(cat code) == 200 ]] || tg_fail "/readyz: $(cat code) $(cat body)"
curl -sS -o body -w '%{http_code}' "http://$GATE_ADMIN/nope" >code
[[ $(cat code) == 404 ]] || tg_fail "/nope: $(cat code)"
curl -sS -o body -w '%{http_code}' -X POST "http://$GATE_ADMIN/metrics" >code
[[ $(cat code) == 405 ]] || tg_fail "POST /metrics: $(cat code)"
curl -sS "http://$GATE_ADMIN/metrics" >metrics.txt
for m in tokengate_connections_open tokengate_connections_total tokengate_handshakes_total \
	tokengate_resumptions_total tokengate_requests_total tokengate_audit_failures_total \
	tokengate_audit_ok tokengate_request_duration_seconds_bucket tokengate_request_duration_seconds_sum \
	tokengate_request_duration_seconds_count; do
	grep -q "^$m[{ ]" metrics.txt || tg_fail "/metrics lacks $m: $(cat metrics.txt)"
done
for m in tokengate_upstream_errors_total tokengate_reloads_total tokengate_connections_refused_total; do
	grep -q "^# TYPE $m " metrics.txt || tg_fail "/metrics has no TYPE line for $m"
done
grep -q '^tokengate_requests_total{.*route="admin".*decision="deny".*} 1$' metrics.txt ||
	grep -q '^tokengate_requests_total{.*decision="deny".*route="admin".*} 1$' metrics.txt ||
	tg_fail "no deny of route admin counted: $(grep requests_total metrics.txt)"
grep -q '^tokengate_handshakes_total{result="ok"} [1-9]' metrics.txt || tg_fail "no ok handshake counted"
grep -q '^tokengate_resumptions_total [1-9]' metrics.txt || tg_fail "no resumption counted"
grep -q '^tokengate_audit_ok 1' metrics.txt || tg_fail "tokengate_audit_ok is not 1"
! grep -v '^#' metrics.txt | grep -v '^tokengate_' | grep -q . || tg_fail "a metric without the tokengate_ prefix: $(grep -v '^#' metrics.txt | grep -v '^tokengate_')"
echo "ok: /healthz, /readyz and /metrics"

# ---- reload under load --------------------------------------------------------------------------
gate_audit_mark
rm -f stop
GATE_CLIENT_DIRECT=1 gate_py alice loop /echo --stop-file "$TG_TMP/stop" >loop1.out 2>&1 &
l1=$!
GATE_CLIENT_DIRECT=1 gate_py alice loop /v1/datasets/x --per-conn 1 --stop-file "$TG_TMP/stop" >loop2.out 2>&1 &
l2=$!
tg_on_exit touch "$TG_TMP/stop"
GATE_CLIENT_DIRECT=1 gate_py alice sse '/sse?n=8&ms=500' >sse.out 2>&1 &
sse=$!
sleep 1
for i in 1 2 3 4; do
	if ((i == 3)); then
		# a broken policy in the middle of the reloads, under the same load:
		# refused, the log says why, the policy in force stays
		printf 'routes:\n  - name: broken\n    pathz: ["/x"]\n' >policy.yaml
		[[ $(gate_reload) == refused ]] || tg_fail "under load: a bad policy was not refused on reload"
		grep 'reload (SIGHUP) refused' "$GATE_LOG" | tail -1 | grep -qF "policy.yaml line 3" ||
			tg_fail "under load: the refusal does not name the policy's line: $(grep reload "$GATE_LOG" | tail -1)"
		out=$(gate_py alice req /extra2)
		[[ $(jq -r .status <<<"$out") == 404 ]] || tg_fail "under load: after a refused reload, route extra2 is gone: $out"
	fi
	# a policy that differs each time (one more route), a new secret, a new CRL
	gate_policy_default policy.new
	printf '  - name: extra%d\n    paths: ["/extra%d"]\n    allow:\n      - identity: "spiffe://%s/dev/*"\n' "$i" "$i" "$TD" >>policy.new
	mv policy.new policy.yaml
	printf 'sk-rotated-%d-%s\n' "$i" "$(openssl rand -hex 8)" >"$PKI/llm-key.new"
	chmod 600 "$PKI/llm-key.new"
	mv "$PKI/llm-key.new" "$PKI/llm-key"
	gate_crl "$TG_TMP/gate.crl.new"
	mv "$TG_TMP/gate.crl.new" "$TG_TMP/gate.crl"
	[[ $(gate_reload) == ok ]] || tg_fail "reload $i: $(grep 'reload' "$GATE_LOG" | tail -1)"
	sleep 0.5
done
wait "$sse" || tg_fail "the SSE stream begun before the reloads broke: $(cat sse.out)"
[[ $(jq -s 'map(select(.data)) | length' sse.out) == 8 ]] || tg_fail "SSE across reloads lost events: $(cat sse.out)"
touch stop
wait "$l1" || true
wait "$l2" || true
for f in loop1.out loop2.out; do
	[[ $(jq -r .fail "$f") == 0 ]] || tg_fail "requests failed during the reloads ($f): $(cat "$f")"
	(($(jq -r .ok "$f") >= 5)) || tg_fail "too few requests ran during the reloads ($f): $(cat "$f")"
done
echo "ok: 4 reloads and a refused one under load, zero failures ($(jq -r .ok loop1.out) keep-alive + $(jq -r .ok loop2.out) new-connection requests)"
# the last policy is in force: /extra4 exists now
out=$(gate_py alice req /extra4)
[[ $(jq -r .status <<<"$out") != 403 || $(jq -r .body <<<"$out") != *"no route"* ]] ||
	tg_fail "the reloaded policy is not in force: $out"
gate_audit_mark
gate_py alice req /extra4 >/dev/null
gate_audit_expect event=$GATE_EV_REQ route=extra4
# the rotated secret is the one injected
out=$(gate_py alice req -X POST -d '{}' /v1/chat/completions)
jq -r .body <<<"$out" | jq -r '.headers[] | select(.[0] | ascii_downcase == "authorization") | .[1]' >auth.txt
[[ $(cat auth.txt) == "Bearer $(head -n1 "$PKI/llm-key")" ]] || tg_fail "the reloaded secret is not injected: $(cat auth.txt)"
! grep -qF "$(head -n1 "$PKI/llm-key")" "$GATE_AUDIT" "$GATE_LOG" || tg_fail "the rotated secret was logged"
# a bad new policy: refused, the old one stays, the log says why
cp policy.yaml policy.good
printf 'routes:\n  - name: broken\n    pathz: ["/x"]\n' >policy.yaml
[[ $(gate_reload) == refused ]] || tg_fail "a bad policy was not refused on reload"
grep 'reload (SIGHUP) refused' "$GATE_LOG" | tail -1 | grep -qF "policy.yaml line 3" ||
	tg_fail "the refusal does not name the policy's line: $(grep reload "$GATE_LOG" | tail -1)"
# (route extra4 allows alice; the upstream itself has no /extra4: its 404)
out=$(gate_py alice req /extra4 /admin/x)
[[ $(jq -sr 'map(.status) | join(" ")' <<<"$out") == "404 403" ]] || tg_fail "after a refused reload: $out"
[[ $(head -n1 <<<"$out" | jq -r .body | jq -r .error) == "no such path" ]] || tg_fail "after a refused reload, /extra4 was not forwarded: $out"
grep -q '^tokengate_reloads_total{result="failed"} 2' <(curl -sS "http://$GATE_ADMIN/metrics") ||
	tg_fail "the failed reloads (one under load, one after) are not counted"
cp policy.good policy.yaml
gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the gate exited $GATE_RC on SIGTERM"
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"

# ---- what a reload cannot change: each refused, naming the change ---------
GATE_AUDIT=$TG_TMP/audit3.log
gate_config_limits "max_conns: 100"
gate_start
cp "$GATE_CONFIG" gate.good.yaml
needs_restart()
{
	local sed_expr=$1 want=$2
	sed "$sed_expr" gate.good.yaml >"$GATE_CONFIG"
	[[ $(gate_reload) == refused ]] || tg_fail "a reload changing '$sed_expr' was not refused"
	grep 'reload (SIGHUP) refused' "$GATE_LOG" | tail -1 | grep -qF "$want; that needs a restart of the gate" ||
		tg_fail "the refusal of '$sed_expr': $(grep 'reload (SIGHUP)' "$GATE_LOG" | tail -1), want '$want'"
	cp gate.good.yaml "$GATE_CONFIG"
}
needs_restart 's/^workers: 2$/workers: 3/' "workers changed from 2 to 3"
admin2=127.0.0.1:$(tg_free_port_pair)
needs_restart "s|^admin: .*|admin: $admin2|" "the admin address changed from $GATE_ADMIN to $admin2"
needs_restart "s|^audit: .*|audit: {file: $TG_TMP/other.log}|" "the audit log changed from $GATE_AUDIT to $TG_TMP/other.log"
needs_restart "s|^audit: {file: \(.*\)}|audit: {file: \1, fsync: always}|" "the audit log changed from $GATE_AUDIT to $GATE_AUDIT"
needs_restart "s|^  - name: api$|  - name: api2|" "listener 'api' (127.0.0.1:$GATE_PORT, mode http) became 'api2' (127.0.0.1:$GATE_PORT, mode http)"
# a second listener (inserted before tls:)
awk -v port="$(tg_free_port_pair)" -v up="$UP_PORT" '
	/^tls:/ { print "  - name: second"; print "    listen: 127.0.0.1:" port; print "    upstream: http://127.0.0.1:" up }
	{ print }' gate.good.yaml >"$GATE_CONFIG"
[[ $(gate_reload) == refused ]] || tg_fail "a reload adding a listener was not refused"
grep 'reload (SIGHUP) refused' "$GATE_LOG" | tail -1 | grep -qF "the number of listeners changed from 1 to 2; that needs a restart of the gate" ||
	tg_fail "the refusal of a second listener: $(grep 'reload (SIGHUP)' "$GATE_LOG" | tail -1)"
cp gate.good.yaml "$GATE_CONFIG"
[[ $(gate_reload) == ok ]] || tg_fail "the unchanged configuration was not reloaded"
out=$(gate_py alice req /echo)
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "after the refused reloads: $out"
grep -q '^tokengate_reloads_total{result="failed"} 6' <(curl -sS "http://$GATE_ADMIN/metrics") ||
	tg_fail "the 6 refused reloads are not counted: $(grep reloads <(curl -sS "http://$GATE_ADMIN/metrics"))"
gate_stop
echo "ok: a reload changing workers, the admin address, the audit log or its fsync, a listener or their number is refused, naming the change; the gate serves on"
echo "ok: operations"
