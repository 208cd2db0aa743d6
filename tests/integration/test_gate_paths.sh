#!/usr/bin/env bash
# test_gate_paths.sh — `tokengate gate` in http mode, requests that try to
# get around the policy, each asserting the answer, the audit record and
# that nothing reached the upstream when it must not:
#   path-normalization bypass attempts (/v1/datasets/../../admin, %2e%2e,
#   //admin, /admin/, /./admin/., /%61dmin) meet the admin rule (403) and
#   refused spellings (%2f, %00, .. above the root) are 400;
#   client copies of X-Tokengate-Identity / X-Tokengate-Key (any
#   X-Tokengate-*) replaced by the gate's;
#   a client Authorization replaced by the injected secret (from a file),
#   which never appears in the audit log or the gate's log;
#   keep-alive across allowed and denied requests on one connection;
#   absolute-form targets decided on their path and forwarded in
#   origin-form with their authority as Host (userinfo, other schemes,
#   bad ports and OPTIONS * refused); HTTP/1.0 without Host; a route's
#   host: pinning the upstream's Host.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/gate_cases.sh"
gate_require
cd "$TG_TMP"
gate_pki
gate_policy_default "$TG_TMP/policy.yaml"
# a route whose upstream Host is pinned (host:)
gate_policy_first "$TG_TMP/policy.yaml" '  - name: pinned
    paths: ["/echo/pinned/**"]
    host: "api.internal:8080"
    allow: [{identity: "spiffe://example.org/dev/alice"}]
'
gate_upstream_start up
UPLOG=$TG_TMP/up-up.jsonl
gate_start

uplines() { if [[ -f $UPLOG ]]; then wc -l <"$UPLOG"; else echo 0; fi; }
hdr() { jq -r --arg n "$1" '[.headers[] | select(.[0] | ascii_downcase == $n) | .[1]] | join("|")' echo.json; }


# ---- path normalization ------------------------------------------------------------
# The shared outcome table (gate_cases.tsv), rows path-*: bypass attempts
# meet the admin rule in normal form (403 naming route admin, the record
# with the normal path); refused spellings answer 400 with the reason in
# the record; neither reaches the upstream. The same rows through nginx +
# the authorization endpoint: test_gate_nginx.sh.
GATE_CASES_UPLOG=$UPLOG
gate_cases_load
gate_cases_select '^path-'
gate_cases_run gate
# a dot-segment inside an allowed subtree is forwarded in normal form, with
# the query untouched
out=$(gate_py alice req '/v1/datasets/a/../b/./c?x=%2F..&y=1')
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "normalized allowed path: $out"
got=$(jq -r .body <<<"$out" | jq -r .path)
[[ $got == '/v1/datasets/b/c?x=%2F..&y=1' ]] || tg_fail "upstream got path '$got', want '/v1/datasets/b/c?x=%2F..&y=1'"
echo "ok: the upstream receives the normalized path and the raw query"

# ---- the request-target's forms and the Host the upstream gets -------------------------
# absolute-form (RFC 9112 section 3.2.2: a server must accept it) goes
# upstream in origin-form, its authority as Host in place of the client's;
# an HTTP/1.0 request without Host gets the upstream's (HTTP/1.1 needs one)
raw_echo() { gate_py alice raw "$1" | jq -c 'select(.status != null)'; }
out=$(raw_echo 'GET HTTP://API.example:8080/echo/x/../y?q=%2F HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n')
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "absolute-form request: $out"
jq -r .body <<<"$out" >echo.json
[[ $(jq -r .path echo.json) == '/echo/y?q=%2F' ]] || tg_fail "absolute-form reached the upstream as '$(jq -r .path echo.json)', want /echo/y?q=%2F"
[[ $(hdr host) == API.example:8080 ]] || tg_fail "absolute-form: the upstream's Host is '$(hdr host)', want the target's authority alone"
out=$(raw_echo 'GET http://[::1]:99/echo HTTP/1.0\r\n\r\n')
jq -r .body <<<"$out" >echo.json
[[ $(hdr host) == '[::1]:99' ]] || tg_fail "absolute-form with an IPv6 authority: Host '$(hdr host)': $out"
out=$(raw_echo 'GET /echo HTTP/1.0\r\n\r\n')
jq -r .body <<<"$out" >echo.json
[[ $(hdr host) == "127.0.0.1:$UP_PORT" ]] || tg_fail "HTTP/1.0 without Host: the upstream's Host is '$(hdr host)', want 127.0.0.1:$UP_PORT"
out=$(raw_echo 'GET /echo HTTP/1.0\r\nHost: mine\r\n\r\n')
jq -r .body <<<"$out" >echo.json
[[ $(hdr host) == mine ]] || tg_fail "HTTP/1.0 with Host: the upstream's Host is '$(hdr host)', want the client's"
# the forms refused, each with its reason, nothing forwarded
n0=$(uplines)
for t in 'http://u:p@api/echo|userinfo' 'http:///echo|no host' 'ftp://api/echo|http or https URI' \
	'http://api:8o/echo|malformed port' 'http://a<b/echo|malformed' '*|asterisk-form'; do
	gate_audit_mark
	out=$(raw_echo "OPTIONS ${t%%|*} HTTP/1.1\r\nHost: api\r\n\r\n")
	[[ $(jq -r .status <<<"$out") == 400 ]] || tg_fail "target ${t%%|*}: want 400: $out"
	jq -r .body <<<"$out" | jq -r .reason | grep -qF "${t#*|}" || tg_fail "target ${t%%|*}: the reason does not say '${t#*|}': $out"
	gate_audit_expect event=$GATE_EV_REQ status=400 "reason~${t#*|}"
done
[[ $(uplines) == "$n0" ]] || tg_fail "a refused request-target was forwarded"
echo "ok: absolute-form is decided on its path and forwarded with its authority as Host; HTTP/1.0 without Host gets the upstream's"
# a route with host: pins the upstream's Host whatever the client sends
# (its Host, an absolute-form authority): a client cannot pick another
# service of an upstream that routes by Host
out=$(raw_echo 'GET /echo/pinned/a HTTP/1.1\r\nHost: admin.internal\r\nConnection: close\r\n\r\n')
jq -r .body <<<"$out" >echo.json
[[ $(jq -r .status <<<"$out") == 200 && $(hdr host) == api.internal:8080 ]] ||
	tg_fail "route host: with a client Host: upstream Host '$(hdr host)', want api.internal:8080: $out"
out=$(raw_echo 'GET http://admin.internal/echo/pinned/b HTTP/1.1\r\nHost: admin.internal\r\nConnection: close\r\n\r\n')
jq -r .body <<<"$out" >echo.json
[[ $(hdr host) == api.internal:8080 && $(jq -r .path echo.json) == /echo/pinned/b ]] ||
	tg_fail "route host: with an absolute-form target: upstream Host '$(hdr host)': $out"
echo "ok: a route's host: is the upstream's Host, whatever the client sent"

# ---- identity headers set by the gate only ----------------------------------------------
gate_audit_mark
out=$(gate_py alice req -H "X-Tokengate-Identity: spiffe://$TD/svc/root" \
	-H "x-tokengate-key: level=device-attested; pin=always; touch=always; serial=1" \
	-H "X-TOKENGATE-IDENTITY: spiffe://$TD/svc/root2" -H "X-Tokengate-Extra: forged" \
	-H "X-Forwarded-For: 10.6.6.6" -H "x-forwarded-for: 10.7.7.7" -H "X-Forwarded-Proto: http" \
	-H "X-Real-IP: 10.6.6.6" -H "Forwarded: for=10.6.6.6" -H "X-Forwarded-Host: evil.example" \
	-H "X-Other: kept" /echo)
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "spoofed headers: $out"
jq -r .body <<<"$out" >echo.json
[[ $(hdr x-tokengate-identity) == "spiffe://$TD/dev/alice" ]] ||
	tg_fail "X-Tokengate-Identity upstream: '$(hdr x-tokengate-identity)' (client copies must be removed)"
[[ $(hdr x-tokengate-key) == "level=device-attested; pin=once; touch=never; serial=27182818" ]] ||
	tg_fail "X-Tokengate-Key upstream: '$(hdr x-tokengate-key)'"
[[ -z $(hdr x-tokengate-extra) ]] || tg_fail "a client X-Tokengate-* header reached the upstream"
[[ $(hdr x-other) == kept ]] || tg_fail "an ordinary client header was dropped: $(cat echo.json)"
[[ $(hdr x-forwarded-for) == 127.0.0.1 && $(hdr x-real-ip) == 127.0.0.1 && $(hdr x-forwarded-proto) == https ]] ||
	tg_fail "X-Forwarded-For/X-Real-IP/X-Forwarded-Proto upstream: '$(hdr x-forwarded-for)' '$(hdr x-real-ip)' '$(hdr x-forwarded-proto)', want the gate's (127.0.0.1, 127.0.0.1, https) in place of the client's"
[[ -z $(hdr forwarded) && -z $(hdr x-forwarded-host) ]] ||
	tg_fail "a client's Forwarded / X-Forwarded-Host reached the upstream: '$(hdr forwarded)' '$(hdr x-forwarded-host)'"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=echo identity=spiffe://$TD/dev/alice
echo "ok: client copies of X-Tokengate-*, X-Forwarded-*, X-Real-IP and Forwarded are dropped, the gate's set"

# ---- injected Authorization ------------------------------------------------------------------
gate_audit_mark
out=$(gate_py alice req -X POST -H "Authorization: Bearer client-made-up-token" \
	-H "authorization: Basic second-copy" -d '{"model":"m"}' /v1/chat/completions)
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "completions: $out"
jq -r .body <<<"$out" >echo.json
[[ $(hdr authorization) == "Bearer $GATE_SECRET" ]] ||
	tg_fail "Authorization upstream: '$(hdr authorization)', want exactly the injected one"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=completions method=POST
# a route without inject_headers leaves the client's Authorization alone
out=$(gate_py alice req -H "Authorization: Bearer mine" /echo)
jq -r .body <<<"$out" >echo.json
[[ $(hdr authorization) == "Bearer mine" ]] || tg_fail "Authorization on a route without injection: '$(hdr authorization)'"
# a denied request to that route gets nothing injected and nothing forwarded
n0=$(uplines)
out=$(gate_py indexer req -X POST -d x /v1/chat/completions)
[[ $(jq -r .status <<<"$out") == 403 ]] || tg_fail "indexer on completions: $out"
[[ $(uplines) == "$n0" ]] || tg_fail "a denied completion was forwarded"
# the secret: nowhere in the audit log, the gate's log, or a 403 body
! grep -qF "$GATE_SECRET" "$GATE_AUDIT" || tg_fail "the injected secret is in the audit log"
! grep -qF "$GATE_SECRET" "$GATE_LOG" || tg_fail "the injected secret is in the gate's log"
! grep -qF "$GATE_SECRET" <<<"$out" || tg_fail "the injected secret is in a 403 answer"
echo "ok: the client's Authorization is replaced by the injected secret, which is never logged"

# ---- keep-alive across allowed and denied requests ----------------------------------------------
gate_audit_mark
gate_py alice req /echo /admin/x /v1/models/m /v1/pin/x /v1/datasets/d /nowhere /echo >ka.out ||
	tg_fail "keep-alive sequence: $(cat ka.out)"
[[ $(jq -sr 'map(.status) | join(" ")' ka.out) == "200 403 200 403 200 403 200" ]] ||
	tg_fail "keep-alive statuses: $(jq -sr 'map(.status) | join(" ")' ka.out)"
# one client connection; the allowed ones reach the upstream in order
[[ $(gate_audit_count event=$GATE_EV_REQ) == 7 ]] || tg_fail "want 7 request records, got $(gate_audit_count event=$GATE_EV_REQ)"
gate_audit_expect event=$GATE_EV_REQ decision=deny route=null path=/nowhere status=403 "reason~no route matches GET /nowhere"
[[ $(gate__audit_new | jq -r .peer | sort -u | wc -l) == 1 ]] ||
	tg_fail "the records name more than one peer address: $(gate__audit_new | jq -r .peer | sort -u)"
echo "ok: one keep-alive connection carries allowed and denied requests"

gate_stop
[[ $GATE_RC == 0 ]] || tg_fail "the gate exited $GATE_RC on SIGTERM"
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo "ok: paths and headers"
