#!/usr/bin/env bash
# bench/agent-vs-stunnel.sh — `tokengate agent` + `tokengate gate` measured
# with the same load tool (build/bench/gate_load --plain, clear-text HTTP to
# the client-side local port), in alternating runs, in one script:
#   1. the agent with its key on the simulated token (tokengate-sim behind a
#      private pcscd, through OpenSC) answering each private-key operation
#      after 0 ms and after 150 ms (--sign-latency-ms): requests/s and the
#      150/0 ratio; token operations per 1,000 requests, counted by the
#      token itself (`tokengate-sim status`);
#   2. the agent + gate beside stunnel (client mode, the same SoftHSM2 key
#      through its pkcs11 engine) + nginx (ssl_verify_client on,
#      proxy_pass): requests/s and the tokengate / (stunnel + nginx) ratio.
#   3. like for like: an agent in --mode tcp (a byte relay, as stunnel is)
#      with the same key + the gate, beside stunnel + nginx;
#   4. the CPU time per request of each hop (the agent or stunnel; the gate
#      or nginx with their workers), from /proc/PID/stat over each run.
# A last line measures the server side alone: gate_load as the mTLS client
# (same key) straight to the gate and to nginx, keep-alive.
# Two load patterns: keep-alive (--conns connections per load thread,
# requests back to back) and new connections (a new client TCP connection
# per request: what curl in a loop or a script does). Both chains end at
# the same upstream (an nginx answering `return 200 "ok"`).
# Prints medians, their spread over the runs (max-min as % of the median:
# the machine's noise) and the ratios. Asserts no timing.
#
#   bench/agent-vs-stunnel.sh [--seconds S] [--threads N] [--conns C]
#                             [--runs R] [--quick] [BUILD_DIR]
#
# Defaults: --seconds 5 per measurement, --threads 4 load threads, --conns 2
# keep-alive connections per thread, --runs 3; --quick = --seconds 2
# --runs 1 (the smoke test). BUILD_DIR defaults to ./build.
#
# The job, the same for both chains: a client whose certificate a tokengate
# CA issued for a key on a token (never readable), TLS 1.3 with the client
# certificate verified against that CA, the server certificate verified
# against its CA and name, every request proxied to the upstream. The gate
# also decides each request against its policy and writes its audit line;
# nginx only checks the certificate. The gate runs with
# 2 workers, nginx with as many worker processes.
#
# Needs root (a private pcscd), nginx, stunnel4, the pkcs11 engine
# (libengine-pkcs11-openssl), yubico-piv-tool, OpenSC, softhsm2. Exit codes:
# 0 measured, 1 failed, 77 cannot run here (a missing tool, or `tokengate
# agent` not built).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

CONNS=2
BENCH_USAGE=26,31
source "$here/lib.sh" "$@"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/agent_lib.sh"
source "$here/../tests/integration/sim_lib.sh"

gate_require
agent_require
agent_sim_require nginx stunnel4 pkcs11-tool ss
gate_require_engine
# the gate of tests/lib/gate_lib.sh runs 2 workers: nginx gets as many
WORKERS=2
NGINX=$(command -v nginx)
cd "$TG_TMP"

# ---- tokens, PKI ------------------------------------------------------------------------------
tg_softhsm_default
GATE_HSM=1 agent_sim_setup
API=spiffe://$TD/svc/api
agent_hsm_key
cat >policy.yaml <<EOF
routes:
  - name: bench
    paths: ["/v1/**"]
    allow:
      - identity: "$API"
        key: hsm-operator
      - identity: "$ERIN"
        key: device-attested
EOF

# ---- upstream and nginx -------------------------------------------------------------------------
bench_nginx_mtls "$WORKERS" "$PKI/server.pem" "$PKI/server.key" "$PKI/ca/ca.pem"

# ---- stunnel (client mode, pkcs11 engine, the SoftHSM2 key) -> nginx -----------------------------
STUNNEL_DEBUG=warning gate_stunnel_start "$NG" || tg_fail "stunnel in front of nginx did not start"
SP=$STUNNEL_PORT

# ---- gate and agents ----------------------------------------------------------------------------
export GATE_POLICY=$TG_TMP/policy.yaml GATE_UPSTREAM=http://127.0.0.1:$UP
gate_start
agent_start --key "$AGENT_HSM_KEY" --cert "$PKI/hsm-api.pem"
AH_PORT=$AGENT_PORT AH_ADMIN=$AGENT_ADMIN AH_PID=$AGENT_PID
# the same key in tcp mode: a byte relay like stunnel (a TLS connection
# to the gate per client connection, resumed), the like-for-like line
agent_start --key "$AGENT_HSM_KEY" --cert "$PKI/hsm-api.pem" --mode tcp
AT_PORT=$AGENT_PORT AT_ADMIN=$AGENT_ADMIN AT_PID=$AGENT_PID
tcp_agent_ops()
{
	AGENT_ADMIN=$AT_ADMIN agent_metric tokengate_agent_token_operations_total
}
hsm_agent_ops()
{
	AGENT_ADMIN=$AH_ADMIN agent_metric tokengate_agent_token_operations_total
}
SIM_AGENT_PID='' SIM_LAT=''
# sim_agent LATENCY_MS: the simulator answering after LATENCY_MS, and an
# agent with its key (both restarted when the latency changes); AS_PORT
sim_agent()
{
	[[ $SIM_LAT == "$1" ]] && return 0
	if [[ -n $SIM_AGENT_PID ]]; then
		AGENT_PID=$SIM_AGENT_PID
		agent_stop
	fi
	tg_sim_stop
	tg_sim_start "$TG_SIM_STATE" --sign-latency-ms "$1"
	agent_start --key "$AGENT_SIM_KEY" --cert "$PKI/erin.pem"
	SIM_AGENT_PID=$AGENT_PID AS_PORT=$AGENT_PORT SIM_LAT=$1
	warm "sim$1" "$AS_PORT" sim_ops
}
# warm NAME PORT OPS-COMMAND: one second of keep-alive load on a fresh
# agent (its pool and first sessions), not counted in the rates; its token
# operations are appended to cold.txt
warm()
{
	local o0 o1
	o0=$($3)
	load "$2" --mode keepalive --seconds 1 --threads "$THREADS" --conns "$CONNS" >/dev/null 2>load.err ||
		tg_fail "warming up $1: $(cat load.err)"
	o1=$($3)
	printf '%s %s\n' "$1" "$(python3 -c 'import sys; print(int(float(sys.argv[2]) - float(sys.argv[1])))' "$o0" "$o1")" >>cold.txt
}

load() # PORT ARGS...
{
	"$LOAD" --connect "127.0.0.1:$1" --plain --path /v1/bench "${@:2}"
}
# tls_load PORT ARGS...: gate_load itself as the mTLS client (the SoftHSM2
# key through libtgp11), straight to the gate or nginx: the server side
# alone, without the client-side hop
tls_load()
{
	"$LOAD" --connect "127.0.0.1:$1" --ca "$PKI/srvca.pem" --cert "$PKI/hsm-api.pem" \
		--key "$AGENT_HSM_KEY" \
		--path /v1/bench "${@:2}"
}
# sanity: each chain answers, a denied path is an error gate_load reports
: >cold.txt
warm agent "$AH_PORT" hsm_agent_ops
warm agent-tcp "$AT_PORT" tcp_agent_ops
sim_agent 0
for p in "$AH_PORT" "$AT_PORT" "$AS_PORT" "$SP"; do
	load "$p" --mode handshake --threads 1 --seconds 0.3 >/dev/null 2>load.err ||
		tg_fail "a request through 127.0.0.1:$p failed: $(cat load.err)"
done
bench_denied "$AH_PORT"
tg_expect_exit 2 "gate_load: --plain speaks no TLS: drop --key, --ca and --cert" \
	"$LOAD" --connect "127.0.0.1:$AH_PORT" --plain --ca "$PKI/srvca.pem"

# tree PID...: the processes and their children (nginx's and the gate's workers)
tree()
{
	local p
	for p in "$@"; do
		echo "$p"
		pgrep -P "$p" || true
	done
}
# one NAME PORT MODE [OPS-COMMAND]: one gate_load run; appends "NAME MODE
# RATE OPS-PER-1000 CLIENT-HOP-US SERVER-HOP-US" to results.txt
# (OPS-COMMAND prints a counter of token operations; "-" without it; the
# CPU microseconds per request of the client-side hop, CPU_C (pids: the
# agent or stunnel), and of the server side, CPU_S (the gate or nginx with
# their workers); "-" when not set) and the JSON to runs.log
one()
{
	local name=$1 p=$2 mode=$3 opscmd=${4:-} out o0='' o1='' per=- cc=- cs=- c0=0 c1=0 s0=0 s1=0
	local -a extra=() pc=() ps=()
	[[ $mode == keepalive ]] && extra=(--conns "$CONNS")
	[[ -z ${CPU_C:-} ]] || mapfile -t pc < <(tree $CPU_C)
	[[ -z ${CPU_S:-} ]] || mapfile -t ps < <(tree $CPU_S)
	[[ -n $opscmd ]] && o0=$($opscmd)
	((${#pc[@]})) && c0=$(cpu_of "${pc[@]}")
	((${#ps[@]})) && s0=$(cpu_of "${ps[@]}")
	out=$(${LOADER:-load} "$p" --mode "$mode" --seconds "$SECONDS_RUN" --threads "$THREADS" "${extra[@]}" 2>load.err) ||
		tg_fail "gate_load --mode $mode through $name failed: $(cat load.err) $out"
	((${#pc[@]})) && c1=$(cpu_of "${pc[@]}")
	((${#ps[@]})) && s1=$(cpu_of "${ps[@]}")
	if [[ -n $opscmd ]]; then
		o1=$($opscmd)
		per=$(python3 -c 'import json,sys; print("%.3f" % ((float(sys.argv[2]) - float(sys.argv[1])) * 1000 / max(1, json.loads(sys.argv[3])["ops"])))' "$o0" "$o1" "$out")
	fi
	((${#pc[@]})) && read -r _ cc < <(rate_cpu_us "$out" "$c0" "$c1")
	((${#ps[@]})) && read -r _ cs < <(rate_cpu_us "$out" "$s0" "$s1")
	printf '%s %s %s %s %s %s\n' "$name" "$mode" "$(jq -r .per_sec <<<"$out")" "$per" "$cc" "$cs" >>results.txt
	printf '%s %s ops=%s..%s %s\n' "$name" "$mode" "$o0" "$o1" "$out" >>runs.log
}
: >results.txt
printf 'agent + gate vs stunnel + nginx: %d load thread(s), %d keep-alive conn(s) per thread, %d run(s) of %ds, gate/nginx workers %d; %s, %s, %s\n' \
	"$THREADS" "$CONNS" "$RUNS" "$SECONDS_RUN" "$WORKERS" "$(nginx -v 2>&1)" "$(stunnel4 -version 2>&1 | grep -m1 -o 'stunnel [0-9.]*' || echo stunnel)" "$(openssl version)"
for ((r = 1; r <= RUNS; r++)); do
	# alternate who goes first, so drift in the machine's load is shared
	if ((r % 2)); then lats=(0 150) order=(stunnel agent); else lats=(150 0) order=(agent stunnel); fi
	for l in "${lats[@]}"; do
		sim_agent "$l"
		one "sim$l" "$AS_PORT" keepalive sim_ops
		one "sim$l" "$AS_PORT" handshake sim_ops
	done
	for s in "${order[@]}"; do
		if [[ $s == agent ]]; then
			CPU_C=$AH_PID CPU_S=$GATE_PID one agent "$AH_PORT" keepalive hsm_agent_ops
			CPU_C=$AH_PID CPU_S=$GATE_PID one agent "$AH_PORT" handshake hsm_agent_ops
			CPU_C=$AT_PID CPU_S=$GATE_PID one agent-tcp "$AT_PORT" keepalive tcp_agent_ops
			CPU_C=$AT_PID CPU_S=$GATE_PID one agent-tcp "$AT_PORT" handshake tcp_agent_ops
		else
			CPU_C=$STUNNEL_PID CPU_S=$NG_PID one stunnel "$SP" keepalive
			CPU_C=$STUNNEL_PID CPU_S=$NG_PID one stunnel "$SP" handshake
		fi
	done
	CPU_S=$GATE_PID LOADER=tls_load one gate-direct "$GATE_PORT" keepalive
	CPU_S=$NG_PID LOADER=tls_load one nginx-direct "$NG" keepalive
	echo "run $r of $RUNS done" >&2
done

PYTHONPATH=$here python3 - <<'EOF' || tg_fail "a figure is missing (see above)"
import benchstat
from benchstat import ratio
runs, ops, cpuc, cpus = {}, {}, {}, {}
for line in open("results.txt"):
    s, m, v, o, cc, cs = line.split()
    runs.setdefault((s, m), []).append(float(v))
    for t, x in ((ops, o), (cpuc, cc), (cpus, cs)):
        if x != "-":
            t.setdefault((s, m), []).append(float(x))
def med(t, s, m):
    return benchstat.med(t.get((s, m)))
def cell(t, s, m, f="%13.1f"):
    return benchstat.cell(t.get((s, m)), f)
names = {"keepalive": "keep-alive requests/s", "handshake": "new-connection requests/s"}
def rates(a, b):
    """per load pattern: the rates of a and b and the ratio b / a"""
    for m in ("keepalive", "handshake"):
        print("%-44s %s %s %s" % (names[m], cell(runs, a, m), cell(runs, b, m),
                                  ratio(med(runs, b, m), med(runs, a, m))))
print("%-44s %22s %22s %8s" % ("agent + gate, key on the simulator", "token at 0 ms", "token at 150 ms", "150/0"))
rates("sim0", "sim150")
for m in ("keepalive", "handshake"):
    print("%-44s %s %s" % ("token operations / 1,000 req (" + ("keep-alive" if m == "keepalive" else "new conns") + ")",
                           cell(ops, "sim0", m, "%13.3f"), cell(ops, "sim150", m, "%13.3f")))
print()
print("%-44s %22s %22s %8s" % ("SoftHSM2 key, same upstream", "stunnel + nginx", "agent + gate", "tg/(s+n)"))
rates("stunnel", "agent")
for m in ("keepalive", "handshake"):
    print("%-44s %22s %s" % ("agent token operations / 1,000 req (" + ("keep-alive" if m == "keepalive" else "new conns") + ")",
                             "-", cell(ops, "agent", m, "%13.3f")))
print()
print("%-44s %22s %22s %8s" % ("like for like: agent --mode tcp (byte relay)", "stunnel + nginx", "agent tcp + gate", "tg/(s+n)"))
rates("stunnel", "agent-tcp")
print()
print("%-44s %22s %22s %22s" % ("CPU us per request, by hop", "stunnel + nginx", "agent + gate", "agent tcp + gate"))
for m in ("keepalive", "handshake"):
    k = "keep-alive" if m == "keepalive" else "new conns"
    print("%-44s %s %s %s" % ("client hop (stunnel / agent), " + k, cell(cpuc, "stunnel", m), cell(cpuc, "agent", m), cell(cpuc, "agent-tcp", m)))
    print("%-44s %s %s %s" % ("server hop (nginx / gate), " + k, cell(cpus, "stunnel", m), cell(cpus, "agent", m), cell(cpus, "agent-tcp", m)))
print("%-44s %s %22s %s" % ("server alone (mTLS straight), keep-alive", cell(cpus, "nginx-direct", "keepalive"), "", cell(cpus, "gate-direct", "keepalive")))
print()
print("%-44s %22s %22s %8s" % ("mTLS straight to the server (no client hop)", "nginx", "gate", "gate/ngx"))
print("%-44s %s %s %s" % (names["keepalive"], cell(runs, "nginx-direct", "keepalive"), cell(runs, "gate-direct", "keepalive"),
                          ratio(med(runs, "gate-direct", "keepalive"), med(runs, "nginx-direct", "keepalive"))))
missing = ["%s %s" % (s, m) for s in ("sim0", "sim150", "agent", "agent-tcp", "stunnel") for m in ("keepalive", "handshake")
           if not (med(runs, s, m) or 0) > 0]
missing += ["%s keepalive" % s for s in ("gate-direct", "nginx-direct") if not (med(runs, s, "keepalive") or 0) > 0]
missing += ["token operations of %s %s" % (s, m) for s in ("sim0", "sim150", "agent") for m in ("keepalive", "handshake")
            if med(ops, s, m) is None]
benchstat.all_there(missing)
EOF
echo
echo "cold start: token operations in the first second of keep-alive load on a freshly started agent" \
	"($((THREADS * CONNS)) client connections): $(awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' cold.txt)"
echo "(spread = (max - min) / median over the runs: the machine's noise. Token operations: the simulator's own"
echo " private-key operation counter (tokengate-sim status), or the agent's tokengate_agent_token_operations_total"
echo " for the SoftHSM2 key, over a run divided by its requests. New connections: one client TCP connection per"
echo " request to the agent's or stunnel's local port)"
