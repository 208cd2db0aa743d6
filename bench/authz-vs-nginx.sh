#!/usr/bin/env bash
# bench/authz-vs-nginx.sh — what tokengate's decision costs an existing
# nginx: keep-alive requests per second through
#   nginx + authz   nginx running examples/nginx-authz.conf (auth_request
#                   to `tokengate gate --mode authz` on a unix socket, for
#                   every request), in front of the upstream;
#   nginx           the same nginx, the same mTLS setup and access log, no
#                   auth_request;
#   nginx+noop      ONLY A YARDSTICK, not a product setup: nginx running the
#                   same examples/nginx-authz.conf, its auth_request going
#                   to a stand-in endpoint that costs about nothing (a
#                   second nginx answering `return 200;` on a unix socket,
#                   no check at all): what the subrequest alone costs
#                   nginx, so the best ratio any endpoint could reach here;
#   gate            `tokengate gate` alone (http mode) in front of the
#                   same upstream;
# driven by the same load tool (build/bench/gate_load --mode keepalive),
# in alternating runs. Prints medians, their spread over the runs (max-min
# as % of the median: the machine's noise) and the ratios
# nginx+authz / nginx (goal >= 0.75), nginx+noop / nginx (the bound) and
# gate / nginx. Asserts no timing.
#
#   bench/authz-vs-nginx.sh [--seconds S] [--threads N] [--workers N]
#                           [--runs R] [--conns C] [--quick] [BUILD_DIR]
#
# Defaults: --seconds 5 per run and front end, --threads 4 load threads,
# --workers = online CPUs (nginx's worker_processes, the endpoint's and the
# gate's --workers), --runs 3, --conns 4 keep-alive connections per load
# thread; --quick = --seconds 2 --runs 1 (the smoke test). BUILD_DIR
# defaults to ./build.
#
# The job: a client certificate of a tokengate CA (software key: the
# keep-alive rate does not depend on where the client's key lives), TLS
# 1.3, the client certificate required and verified, every request proxied
# over pooled keep-alive connections to an nginx answering `return 200
# "ok"`. The endpoint and the gate decide each request against the same
# policy (one route for the client's identity) and write the audit line
# (--audit-fsync batch).
#
# Needs nginx with auth_request, openssl, ss. Exit codes: 0 measured,
# 1 failed, 77 cannot run here (a missing tool, or `tokengate gate
# --mode authz` not built: the other figures are printed first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

WORKERS=$(nproc 2>/dev/null || echo 2)
BENCH_USAGE=23,29
source "$here/lib.sh" "$@"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/gate_nginx.sh"

[[ -x $TG ]] || tg_skip "$TG not built (cmake --build $BUILD)"
tg_require_cmd openssl ss python3
nginx_require
cd "$TG_TMP"

# ---- certificates (gate_pki: the tokengate CA, a server CA and
# certificate, software leaves), the policy ----------------------------------
gate_pki >pki.log 2>&1 || tg_fail "the certificate set: $(cat pki.log)"
GATE_POLICY=$TG_TMP/policy.yaml
cat >"$GATE_POLICY" <<EOF2
routes:
  - name: bench
    paths: ["/v1/**"]
    allow:
      - identity: "spiffe://$TD/svc/indexer"
        key: hsm-operator
EOF2
load()
{
	"$LOAD" --connect "127.0.0.1:$1" --ca "$PKI/srvca.pem" --cert "$PKI/indexer.pem" \
		--key "$PKI/leaf.key" --path /v1/bench "${@:2}"
}

# ---- servers ------------------------------------------------------------------
# plain_nginx DIR PORT WORKERS SERVER-BLOCK: start an nginx with that
# server block; sets STARTED (its pid)
plain_nginx()
{
	nginx_conf "$1" "$3" "$4"
	bench_nginx_start "$1" "$2" "nginx ($1)"
}

# the upstream of all three
UP_PORT=$(tg_free_port_pair)
plain_nginx "$TG_TMP/up" "$UP_PORT" 1 "  access_log off;
  server { listen 127.0.0.1:$UP_PORT; location / { return 200 \"ok\"; } }"

# nginx alone: the example's TLS and proxy settings, its access log line
# (without the decision's fields), no auth_request
NG=$(tg_free_port_pair)
plain_nginx "$TG_TMP/ng" "$NG" "$WORKERS" "  log_format plain '\$remote_addr [\$time_local] \"\$request\" \$status nginx_verify=\"\$ssl_client_verify\"';
  upstream api { server 127.0.0.1:$UP_PORT; keepalive 32; }
  server {
    listen 127.0.0.1:$NG ssl;
    ssl_certificate $PKI/server.pem;
    ssl_certificate_key $PKI/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_client_certificate $PKI/ca/ca.pem;
    ssl_verify_client on;
    access_log $TG_TMP/ng/access.log plain;
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host \$host;
    }
  }"
NG_PID=$STARTED

# the gate alone
GP=$(tg_free_port_pair)
TG__LOGS+=("$TG_TMP/gate.log")
"${TG__PDEATH[@]}" "$TG" gate --listen "127.0.0.1:$GP" --cert "$PKI/server.pem" --key "$PKI/server.key" \
	--client-ca "$PKI/ca/ca.pem" --upstream "http://127.0.0.1:$UP_PORT" --policy "$GATE_POLICY" \
	--audit "$TG_TMP/gate.audit" --workers "$WORKERS" --audit-fsync batch </dev/null >"$TG_TMP/gate.log" 2>&1 &
GATE_PID=$!
tg_on_exit tg__kill_wait "$GATE_PID" 10
wait_listen "$GP" "$GATE_PID" "$TG_TMP/gate.log" "the gate"

# nginx + authz: examples/nginx-authz.conf as docs/nginx.md gives it
AUTHZ_OK=1
help=$("$TG" gate --help 2>&1) || true
[[ $help == *authz* ]] || AUTHZ_OK=
if [[ -n $AUTHZ_OK ]]; then
	AUTHZ_WORKERS=$WORKERS authz_start --audit-fsync batch || tg_fail "the authorization endpoint did not start"
	NGINX_WORKERS=$WORKERS nginx_start || tg_fail "nginx with examples/nginx-authz.conf did not start"
	# the same keep-alive settings as nginx alone
	sed -i 's|^http {|http {\n    keepalive_requests 10000000;\n    keepalive_timeout 300s;|' "$NGINX_DIR/nginx.conf"
	nginx_reload || tg_fail "nginx did not reload"
	# the yardstick: the same example configuration, its auth_request
	# answered by a stand-in that checks nothing (`return 200;` in a second
	# nginx on a unix socket) — only to measure what the subrequest itself
	# costs nginx; never a way to run tokengate
	NOOP_SOCK=$TG_TMP/noop.sock
	NOOP_TCP=$(tg_free_port_pair)
	plain_nginx "$TG_TMP/noop" "$NOOP_TCP" "$WORKERS" "  access_log off;
  server { listen unix:$NOOP_SOCK; listen 127.0.0.1:$NOOP_TCP; location / { return 200; } }"
	NOOP_PID=$STARTED
	NF=$(tg_free_port_pair)
	mkdir -p "$TG_TMP/noopfront/logs"
	noop_conf=$(NGINX_PORT=$NF AUTHZ_SOCK=$NOOP_SOCK NGINX_DIR=$TG_TMP/noopfront nginx__subst) ||
		tg_fail "examples/nginx-authz.conf for the no-op yardstick"
	plain_nginx "$TG_TMP/noopfront" "$NF" "$WORKERS" "$noop_conf"
	NF_PID=$STARTED
fi

# ---- measuring ------------------------------------------------------------------
# the server side of each front end: nginx's workers (not its master nor
# the upstream), plus the endpoint's process; the gate's process
pids_of()
{
	case $1 in
	nginx) pgrep -P "$NG_PID" | tr '\n' ' ' ;;
	nginx+authz) echo "$(pgrep -P "$NGINX_PID" | tr '\n' ' ') $AUTHZ_PID" ;;
	nginx+noop) echo "$(pgrep -P "$NF_PID" | tr '\n' ' ') $(endpoint_of nginx+noop)" ;;
	gate) echo "$GATE_PID" ;;
	esac
}
# endpoint_of NAME: the endpoint's processes of a front end with auth_request
endpoint_of()
{
	case $1 in
	nginx+authz) echo "$AUTHZ_PID" ;;
	nginx+noop) pgrep -P "$NOOP_PID" | tr '\n' ' ' ;;
	esac
}
# one NAME PORT: one keep-alive run; "NAME RATE CPU-US-PER-REQUEST" to
# results.txt, the JSON to runs.log
one()
{
	local out rate c0 c1 cpu pids e0=0 e1=0 ecpu eps
	pids=$(pids_of "$1")
	eps=$(endpoint_of "$1")
	# shellcheck disable=SC2086
	[[ -z $eps ]] || e0=$(cpu_of $eps)
	# shellcheck disable=SC2086
	c0=$(cpu_of $pids)
	out=$(load "$2" --mode keepalive --seconds "$SECONDS_RUN" --threads "$THREADS" --conns "$CONNS" \
		2>"$TG_TMP/load.err") || tg_fail "gate_load against $1 failed: $(cat "$TG_TMP/load.err") $out"
	# shellcheck disable=SC2086
	c1=$(cpu_of $pids)
	# shellcheck disable=SC2086
	[[ -z $eps ]] || e1=$(cpu_of $eps)
	read -r rate cpu ecpu < <(rate_cpu_us "$out" "$c0" "$c1" "$e0" "$e1")
	printf '%s %s %s %s\n' "$1" "$rate" "$cpu" "$ecpu" >>results.txt
	printf '%s cpu_ticks=%s %s\n' "$1" "$((c1 - c0))" "$out" >>runs.log
}

# sanity: each front end answers 200, and refuses what it must
bench_sane "$NG" nginx --mode keepalive
bench_sane "$GP" "the gate" --mode keepalive
bench_denied "$GP"
if [[ -n $AUTHZ_OK ]]; then
	bench_sane "$NGINX_PORT" "nginx + authz" --mode keepalive
	bench_denied "$NGINX_PORT"
	bench_sane "$NF" "nginx + the no-op endpoint" --mode keepalive
fi

: >results.txt
printf 'nginx + authz vs nginx (alone; with a no-op auth_request endpoint) vs gate: %d worker(s) each, %d load thread(s), %d keep-alive conn(s) per thread, %d run(s) of %ds; %s, %s\n' \
	"$WORKERS" "$THREADS" "$CONNS" "$RUNS" "$SECONDS_RUN" "$(nginx -v 2>&1)" "$(openssl version)"
fronts=(nginx gate)
[[ -z $AUTHZ_OK ]] || fronts=(nginx+authz nginx nginx+noop gate)
for ((r = 1; r <= RUNS; r++)); do
	# rotate who goes first, so drift in the machine's load is shared
	for ((k = 0; k < ${#fronts[@]}; k++)); do
		s=${fronts[(k + r - 1) % ${#fronts[@]}]}
		case $s in
		nginx) one nginx "$NG" ;;
		gate) one gate "$GP" ;;
		nginx+authz) one nginx+authz "$NGINX_PORT" ;;
		nginx+noop) one nginx+noop "$NF" ;;
		esac
	done
	echo "run $r of $RUNS done" >&2
done

PYTHONPATH=$here python3 - "$AUTHZ_OK" <<'EOF2' || tg_fail "a figure is missing (see above)"
import sys
import benchstat
runs = {}
for line in open("results.txt"):
    s, v, c, e = line.split()
    runs.setdefault(s, []).append(float(v))
    runs.setdefault(s + "-cpu", []).append(float(c))
    if s in ("nginx+authz", "nginx+noop"):
        runs.setdefault(s + "-endpoint-cpu", []).append(float(e))
        # nginx's own workers: the front end's CPU without its endpoint's
        runs.setdefault(s + "-nginx-cpu", []).append(float(c) - float(e))
def med(s):
    return benchstat.med(runs.get(s))
def spread(s):
    return benchstat.spread(runs.get(s))
def cell(s):
    return benchstat.cell(runs.get(s), "%12.1f", 20)
NAMES = {"nginx+noop": "nginx+noop (no-op auth_request)"}
FRONTS = ("nginx", "nginx+noop", "nginx+authz", "gate")
print("%-36s %s" % ("keep-alive requests/s", "median ±spread"))
for s in FRONTS:
    print("  %-34s %s" % (NAMES.get(s, s), cell(s)))
def ratio(a, b):
    if med(a) is None or not med(b):
        return "-"
    # the ratio's noise: the runs' spreads of both figures added
    return "%.3f (±%.1f%%)" % (med(a) / med(b), spread(a) + spread(b))
print("%-36s %s" % ("server CPU us/request", "median ±spread (lower = better)"))
for s in FRONTS:
    print("  %-34s %s" % (NAMES.get(s, s), cell(s + "-cpu")))
    if s in ("nginx+noop", "nginx+authz"):
        print("  %-34s %s" % ("  of which nginx's workers", cell(s + "-nginx-cpu")))
        print("  %-34s %s" % ("  of which the endpoint", cell(s + "-endpoint-cpu")))
print()
print("%-36s %s" % ("ratio", "requests/s        CPU-based (nginx CPU / theirs)"))
print("%-36s %-17s %s" % ("nginx+authz / nginx (goal >= 0.75)", ratio("nginx+authz", "nginx"),
                          ratio("nginx-cpu", "nginx+authz-cpu")))
print("%-36s %-17s %s" % ("nginx+noop / nginx (the bound)", ratio("nginx+noop", "nginx"),
                          ratio("nginx-cpu", "nginx+noop-cpu")))
print("%-36s %-17s %s" % ("  bound if the endpoint cost 0", "-", ratio("nginx-cpu", "nginx+noop-nginx-cpu")))
print("%-36s %-17s %s" % ("nginx+authz / nginx+noop", ratio("nginx+authz", "nginx+noop"),
                          ratio("nginx+noop-cpu", "nginx+authz-cpu")))
print("%-36s %-17s %s" % ("gate / nginx", ratio("gate", "nginx"), ratio("nginx-cpu", "gate-cpu")))
print("%-36s %-17s %s" % ("nginx+authz / gate", ratio("nginx+authz", "gate"), ratio("gate-cpu", "nginx+authz-cpu")))
want = ["nginx", "gate"] + (["nginx+authz", "nginx+noop"] if sys.argv[1] else [])
missing = [s for s in want if not (med(s) or 0) > 0]
benchstat.all_there(missing)
EOF2
echo "(spread = (max - min) / median over the runs: the machine's noise; a ratio's noise is the sum of"
echo " its two figures' spreads. CPU: user + system time of the server side over a run divided by its"
echo " requests — nginx's workers; nginx's workers plus the endpoint; the gate — steadier than the"
echo " rate on a shared machine; the CPU-based ratio is the rate ratio if CPU were the only limit."
echo " nginx+noop is a yardstick only: auth_request to a stand-in that answers 200 and checks nothing;"
echo " 'bound if the endpoint cost 0' = nginx alone's CPU over nginx's own workers' CPU with the subrequest)"
[[ -n $AUTHZ_OK ]] || tg_skip "'$TG gate --mode authz' is not built yet: nginx and the gate measured alone"
