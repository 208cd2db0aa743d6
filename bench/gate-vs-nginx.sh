#!/usr/bin/env bash
# bench/gate-vs-nginx.sh — `tokengate gate` beside nginx configured for the
# same job, on the same machine, driven by the same load tool
# (build/bench/gate_load), in alternating runs:
#   - full mTLS handshakes per second (TLS 1.3, new connection, one GET);
#   - keep-alive requests per second, with --conns connections per load
#     thread and again with 4 times as many ("wide": 64 connections by
#     default, where more requests meet in one pass of a worker's loop);
#   - the gate's handshake rate with its server key on SoftHSM2 as a
#     fraction of the rate with the PEM key;
#   - resident memory per idle mTLS connection (RSS of the gate process vs
#     the sum of nginx's workers): --idle N connections held first, then
#     3 steps of N more, each step's growth divided by N.
# Prints medians, their spread over the runs (max-min as % of the median:
# the machine's noise) and the gate/nginx ratios. Asserts no timing.
#
#   bench/gate-vs-nginx.sh [--seconds S] [--threads N] [--workers N]
#                          [--runs R] [--conns C] [--idle N] [--quick]
#                          [--instructions] [--versus BIN] [BUILD_DIR]
#
# Defaults: --seconds 5 per run and server, --threads 4 load threads,
# --workers = online CPUs (the gate's --workers and nginx's
# worker_processes), --runs 3, --conns 4 keep-alive connections per load
# thread, --idle 500 connections per batch of the memory figure (a first
# batch, then 3 measured); --quick = --seconds 2 --runs 1 --idle 50 (the
# smoke test). BUILD_DIR defaults to ./build.
#
# --instructions measures only the user-space instructions each server
# runs per keep-alive request, under valgrind's callgrind (both with 1
# worker, one load thread with one connection, --seconds S of load after
# a warm-up): a count the machine's load does not move, for comparing
# builds on a shared machine where rates spread 10-40 %. It counts work,
# not time: system calls are not in it, and OpenSSL runs the code paths of
# the CPU valgrind emulates (no SHA or AVX-512 instructions: SHA-256 and
# AES cost more instructions there than on the host). Needs valgrind.
#
# --versus BIN sets this build's gate beside the gate of another tokengate
# executable BIN (a build of another commit, or a throw-away build), both
# started alike, for keep-alive requests only: --runs R rounds (take 8 or
# more), each one run of each in alternating order, and per round the
# ratios BIN/this of the rate and of the CPU per request; prints the
# rounds and the medians of the ratios. Pairing the runs of a round
# cancels most of the machine's drift, so a change of a few per cent
# shows where the medians of separate runs spread 10-40 %.
#
# The job, the same for both: clients whose certificate a tokengate CA issued
# for a SoftHSM2 key (`tokengate enroll` + `tokengate ca issue`), TLS 1.3
# only, client certificate required and verified against that CA, the same
# server certificate (P-256, signed by the CA), every request proxied over
# pooled keep-alive connections to the same upstream (an nginx answering
# `return 200 "ok"`), no access log. The gate also decides each request
# against its policy (one allow-all route for the client's identity) and
# writes its audit line (--audit-fsync batch): that is its job, nginx has
# none of it. The HSM-key run uses a second P-256 server key generated on a
# SoftHSM2 token (as a service's HSM key is; libtgp11 refuses imported keys
# by default) with a certificate of the same shape from the same CA.
#
# Informative only, not the goal: a third nginx, the same but writing one
# access_log line (combined format, no buffer=: a write(2) per request),
# measured for keep-alive requests beside the gate, which writes its audit
# line per request; printed apart, as gate/nginx+log.
#
# Needs nginx, openssl, pkcs11-tool, softhsm2, ss. Exit codes: 0 measured,
# 1 failed, 77 cannot run here (a missing tool, or `tokengate gate` not
# built: the nginx figures are printed first).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

WORKERS=$(nproc 2>/dev/null || echo 2)
IDLE=500
INSTRUCTIONS=0
VERSUS=
BENCH_USAGE=14,45
source "$here/lib.sh" "$@"
WIDE=$((CONNS * 4)) # keep-alive connections per load thread, the wide run

TG=$TG_BIN_DIR/tokengate
[[ -x $TG ]] || tg_skip "$TG not built (cmake --build $BUILD)"
tg_require_cmd nginx openssl pkcs11-tool ss python3
NGINX=$(command -v nginx)
cd "$TG_TMP"

# ---- tokens, CA, certificates ---------------------------------------------
TD=bench.example
ID=spiffe://$TD/svc/load
tg_softhsm_setup
tg_softhsm_token_add client 1234
tg_softhsm_token_add server 1234
tg_softhsm_key_add client p256 load 01
tg_softhsm_key_add server p256 gate 02
export TOKENGATE_PIN=1234
CKEY="pkcs11:token=client;object=load;type=private?module-path=$TG_SOFTHSM2_MODULE"
SKEY="pkcs11:token=server;object=gate;type=private?module-path=$TG_SOFTHSM2_MODULE"
"$TG" ca init --dir ca --trust-domain "$TD" >ca.log 2>&1 || tg_fail "tokengate ca init: $(cat ca.log)"
tg_softhsm_ca_trust ca
"$TG" enroll --key "$CKEY" --id "$ID" --out-dir creq >>ca.log 2>&1 ||
	tg_fail "tokengate enroll: $(cat ca.log)"
"$TG" ca issue --dir ca --csr creq/csr.pem --id "$ID" --hsm-key "$CKEY" --out client.pem \
	>>ca.log 2>&1 || tg_fail "tokengate ca issue: $(cat ca.log)"
# server certificates: the same shape for the PEM key and the token key
printf '%s\n' "[e]" "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
	"extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >server.cnf
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
openssl req -new -key server.key -subj /CN=localhost -out server.csr
openssl x509 -req -in server.csr -CA ca/ca.pem -CAkey ca/ca.key -days 2 -set_serial 0x5e1 \
	-extfile server.cnf -extensions e -out server.pem 2>/dev/null
pkcs11-tool --module "$TG_SOFTHSM2_MODULE" --token-label server --read-object --type pubkey \
	--id 02 -o server-hsm.pub.der >/dev/null 2>&1 || tg_fail "cannot read the server token's public key"
openssl pkey -pubin -inform DER -in server-hsm.pub.der -out server-hsm.pub
openssl x509 -new -subj /CN=localhost -force_pubkey server-hsm.pub -CA ca/ca.pem -CAkey ca/ca.key \
	-days 2 -set_serial 0x5e2 -extfile server.cnf -extensions e -out server-hsm.pem 2>/dev/null ||
	tg_fail "cannot issue the certificate of the server token's key"
cat >policy.yaml <<EOF
routes:
  - name: bench
    paths: ["/v1/**"]
    allow:
      - identity: "$ID"
        key: hsm-operator
EOF
LOAD_ARGS=(--ca ca/ca.pem --cert client.pem --key "$CKEY" --path /v1/bench)
load()
{
	"$LOAD" --connect "127.0.0.1:$1" "${LOAD_ARGS[@]}" "${@:2}"
}

# ---- servers ------------------------------------------------------------
# port: a free port (the servers bind it a moment later)
port()
{
	tg_free_port_pair
}

bench_nginx_mtls "$WORKERS" "$TG_TMP/server.pem" "$TG_TMP/server.key" "$TG_TMP/ca/ca.pem" \
	"location /v1/missing { return 404; } "
# informative only: the same nginx writing one access log line per request
# (no buffer=: one write(2) each), as the gate writes its audit line
NGL_LOG=$TG_TMP/nglog/access.log
bench_nginx_front nglog "$WORKERS" "$TG_TMP/server.pem" "$TG_TMP/server.key" "$TG_TMP/ca/ca.pem" \
	"access_log $NGL_LOG combined;"
NGL=$FRONT_PORT NGL_PID=$STARTED

# gate_start NAME KEY CERT: the gate with that server key (GATE_BIN set:
# that tokengate's); sets STARTED (its pid) and STARTED_PORT
GATE_OK=1
"$TG" gate --help >/dev/null 2>&1 || GATE_OK=
gate_start()
{
	local name=$1 p log=$TG_TMP/$1.log
	p=$(port)
	TG__LOGS+=("$log")
	"${TG__PDEATH[@]}" "${GATE_BIN:-$TG}" gate --listen "127.0.0.1:$p" --cert "$3" --key "$2" \
		--client-ca ca/ca.pem --upstream "http://127.0.0.1:$UP" --policy policy.yaml \
		--audit "$TG_TMP/$name.audit" --workers "$WORKERS" --audit-fsync batch \
		</dev/null >"$log" 2>&1 &
	STARTED=$!
	STARTED_PORT=$p
	tg_on_exit tg__kill_wait "$STARTED" 10
	wait_listen "$p" "$STARTED" "$log" "tokengate gate ($name)"
}
if [[ -n $GATE_OK ]]; then
	gate_start gate server.key server.pem
	GP=$STARTED_PORT GATE_PID=$STARTED
	gate_start gate-hsm "$SKEY" server-hsm.pem
	GH=$STARTED_PORT GATEH_PID=$STARTED
fi

# ---- measuring ----------------------------------------------------------
# one SERVER PORT PIDS-COMMAND MODE ARGS...: one gate_load run; appends
# "SERVER MODE RATE CPU-US-PER-OP" to results.txt (the server's CPU time
# over the run divided by the operations) and the JSON to runs.log
one()
{
	local name=$1 p=$2 cmd=$3 mode=$4 label=${ONE_LABEL:-$4} out rate c0 c1 cpu
	shift 4
	# shellcheck disable=SC2046
	c0=$(cpu_of $($cmd))
	out=$(load "$p" --mode "$mode" --seconds "$SECONDS_RUN" "$@" 2>"$TG_TMP/load.err") ||
		tg_fail "gate_load --mode $mode against $name failed: $(cat "$TG_TMP/load.err") $out"
	# shellcheck disable=SC2046
	c1=$(cpu_of $($cmd))
	read -r rate cpu < <(rate_cpu_us "$out" "$c0" "$c1")
	printf '%s %s %s %s\n' "$name" "$label" "$rate" "$cpu" >>results.txt
	printf '%s %s cpu_ticks=%s %s\n' "$name" "$label" "$((c1 - c0))" "$out" >>runs.log
}
# rss_of PID...: summed VmRSS in KiB
rss_of()
{
	local p s=0 v
	for p in "$@"; do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")
		s=$((s + v))
	done
	echo "$s"
}
nginx_workers()
{
	pgrep -P "${1:-$NG_PID}" | tr '\n' ' '
}
# idle_batch NAME PORT N: N more idle connections to PORT, held by a
# gate_load of their own (its pid appended to IDLE_PIDS) once each has made
# one request
IDLE_PIDS=()
idle_batch()
{
	local name=$1 p=$2 n=$3 lp out=$TG_TMP/idle-$1-${#IDLE_PIDS[@]}.out
	# not through load(): the signal must reach gate_load, not a subshell
	"$LOAD" --connect "127.0.0.1:$p" "${LOAD_ARGS[@]}" --mode idle --conns "$n" \
		--threads "$THREADS" --seconds 0 >"$out" 2>"$TG_TMP/idle.err" &
	lp=$!
	IDLE_PIDS+=("$lp")
	tg_wait_until "$TG_WAIT_SECS" grep -q '^held ' "$out" ||
		tg_fail "gate_load --mode idle against $name: $(cat "$TG_TMP/idle.err") $(cat "$out")"
}
# rss_settled PIDS-COMMAND: rss_of once two readings 0.5 s apart agree
# (within 1 %, at most 5 s): the servers have finished with the batch
rss_settled()
{
	local a b i
	# shellcheck disable=SC2046
	a=$(rss_of $($1))
	for ((i = 0; i < 10; i++)); do
		sleep 0.5
		# shellcheck disable=SC2046
		b=$(rss_of $($1))
		((b - a <= a / 100 && a - b <= a / 100)) && break
		a=$b
	done
	echo "$b"
}
# idle_rss NAME PORT PIDS-COMMAND: KiB per idle connection, one figure per
# step. A first batch of IDLE connections fills the memory the runs before
# freed (without it the first connections cost next to nothing: what a
# server freed stays resident), then IDLE_STEPS batches of IDLE more: each
# step's RSS growth divided by IDLE. Prints the steps' figures.
IDLE_STEPS=3
idle_rss()
{
	local name=$1 p=$2 cmd=$3 prev now k figs=() lp
	IDLE_PIDS=()
	idle_batch "$name" "$p" "$IDLE"
	prev=$(rss_settled "$cmd")
	for ((k = 1; k <= IDLE_STEPS; k++)); do
		idle_batch "$name" "$p" "$IDLE"
		now=$(rss_settled "$cmd")
		printf '%s idle step %d: rss %s -> %s KiB, +%d conns\n' "$name" "$k" "$prev" "$now" \
			"$IDLE" >>runs.log
		figs+=("$(python3 -c "print('%.2f' % (($now - $prev) / $IDLE))")")
		prev=$now
	done
	for lp in "${IDLE_PIDS[@]}"; do
		kill -TERM "$lp"
		wait "$lp" || tg_fail "gate_load --mode idle against $name: $(cat "$TG_TMP/idle.err")"
	done
	echo "${figs[*]}"
}

# sanity: requests through each succeed, and a refused one is an error
# gate_load reports (a run with errors is never taken as a figure)
bench_sane "$NG" nginx --mode handshake
bench_sane "$NGL" "nginx with an access log" --mode keepalive
[[ -s $NGL_LOG ]] || tg_fail "nginx with an access log wrote no line to $NGL_LOG"
tg_expect_exit 1 "GET /v1/missing answered 'HTTP/1.1 404 Not Found' (want 200)" \
	load "$NG" --mode keepalive --threads 1 --seconds 0.2 --path /v1/missing
# a server the --ca does not vouch for fails every handshake; bad usage is 2
tg_expect_exit 1 "TLS handshake with 127.0.0.1:$NG failed" \
	"$LOAD" --connect "127.0.0.1:$NG" --ca client.pem --cert client.pem --key "$CKEY" --seconds 0.2
tg_expect_exit 2 "gate_load: --mode 'fast': use handshake, keepalive or idle" load "$NG" --mode fast
if [[ -n $GATE_OK ]]; then
	bench_sane "$GP" "the gate" --mode handshake
	bench_sane "$GH" "the gate with the token key" --mode handshake
	# outside the policy's /v1/**: the gate's 403
	bench_denied "$GP"
fi

# ---- --instructions: user-space instructions per request (callgrind) -----
# cg_measure NAME PORT PID OUT: a warm-up, the counters of the callgrind
# process PID zeroed, SECONDS_RUN of keep-alive load (1 thread, 1
# connection), the counters dumped to OUT.1; prints "INSTRUCTIONS REQUESTS"
cg_measure()
{
	local name=$1 p=$2 pid=$3 out=$4 res ops
	load "$p" --mode keepalive --threads 1 --conns 1 --seconds 2 >/dev/null 2>"$TG_TMP/load.err" ||
		tg_fail "the warm-up against $name under callgrind failed: $(cat "$TG_TMP/load.err")"
	callgrind_control -z "$pid" >/dev/null 2>&1 || tg_fail "callgrind_control -z $name (pid $pid) failed"
	res=$(load "$p" --mode keepalive --threads 1 --conns 1 --seconds "$SECONDS_RUN" \
		2>"$TG_TMP/load.err") || tg_fail "gate_load against $name under callgrind failed: $(cat "$TG_TMP/load.err")"
	callgrind_control -d "$pid" >/dev/null 2>&1 || tg_fail "callgrind_control -d $name (pid $pid) failed"
	tg_wait_until "$TG_WAIT_SECS" grep -q '^totals:' "$out.1" ||
		tg_fail "callgrind wrote no counters to $out.1 for $name"
	ops=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["ops"])' "$res")
	((ops > 0)) || tg_fail "no request through $name under callgrind: $res"
	echo "$(awk '/^totals:/ {print $2; exit}' "$out.1") $ops"
}
# cg_start NAME PORT COMMAND...: COMMAND under callgrind (its output in
# $TG_TMP/cg-NAME.out), listening on PORT; sets STARTED
cg_start()
{
	local name=$1 p=$2 log=$TG_TMP/cg-$1.log
	shift 2
	TG__LOGS+=("$log")
	"${TG__PDEATH[@]}" valgrind --tool=callgrind --callgrind-out-file="$TG_TMP/cg-$name.out" \
		"$@" </dev/null >"$log" 2>&1 &
	STARTED=$!
	tg_on_exit tg__kill_wait "$STARTED" 30
	wait_listen "$p" "$STARTED" "$log" "$name under callgrind"
}
if ((INSTRUCTIONS)); then
	tg_require_cmd valgrind callgrind_control
	[[ -n $GATE_OK ]] || tg_skip "$TG gate not built: nothing to compare nginx with"
	p=$(port)
	# the front nginx's configuration, as one process with one worker on p
	sed -e 's/^master_process on;/master_process off;/' \
		-e 's/^worker_processes [0-9]*;/worker_processes 1;/' \
		-e "s/listen 127.0.0.1:$NG ssl/listen 127.0.0.1:$p ssl/" \
		-e "s|^pid .*|pid $TG_TMP/cg-nginx.pid;|" "$TG_TMP/ng/nginx.conf" >cg-nginx.conf
	grep -q "listen 127.0.0.1:$p ssl" cg-nginx.conf || tg_fail "cannot make cg-nginx.conf from ng/nginx.conf"
	cg_start nginx "$p" "$NGINX" -c "$TG_TMP/cg-nginx.conf" -p "$TG_TMP/ng"
	read -r ng_ir ng_ops < <(cg_measure nginx "$p" "$STARTED" "$TG_TMP/cg-nginx.out")
	p=$(port)
	cg_start gate "$p" "$TG" gate --listen "127.0.0.1:$p" --cert server.pem --key server.key \
		--client-ca ca/ca.pem --upstream "http://127.0.0.1:$UP" --policy policy.yaml \
		--audit "$TG_TMP/cg-gate.audit" --workers 1 --audit-fsync batch
	read -r g_ir g_ops < <(cg_measure gate "$p" "$STARTED" "$TG_TMP/cg-gate.out")
	printf 'user-space instructions per keep-alive request (callgrind, 1 worker each, 1 connection, %ds)\n' \
		"$SECONDS_RUN"
	python3 - "$ng_ir" "$ng_ops" "$g_ir" "$g_ops" <<'PY'
import sys
ng_ir, ng_ops, g_ir, g_ops = (int(x) for x in sys.argv[1:])
print("%-28s %14s %14s %10s" % ("", "nginx", "gate", "gate/nginx"))
print("%-28s %14d %14d" % ("requests", ng_ops, g_ops))
print("%-28s %14.0f %14.0f %10.3f" % ("instructions per request", ng_ir / ng_ops, g_ir / g_ops,
                                      (g_ir / g_ops) / (ng_ir / ng_ops)))
PY
	echo "(callgrind's counts of the measured run; its files: $TG_TMP/cg-nginx.out.1, cg-gate.out.1 — kept only with TG_KEEP_TMP=1)"
	exit 0
fi

# ---- --versus: this build's gate beside another tokengate's ---------------
if [[ -n $VERSUS ]]; then
	[[ -n $GATE_OK ]] || tg_skip "$TG gate not built: nothing to set beside $VERSUS"
	"$VERSUS" gate --help >/dev/null 2>&1 || tg_fail "$VERSUS has no working 'gate' command"
	GATE_BIN=$VERSUS gate_start versus server.key server.pem
	VP=$STARTED_PORT VERSUS_PID=$STARTED
	bench_sane "$VP" "the gate of $VERSUS" --mode keepalive
	: >results.txt
	printf 'this gate (%s) vs %s: %d worker(s) each, %d load thread(s), %d keep-alive conn(s) per thread, %d round(s) of %ds\n' \
		"$TG" "$VERSUS" "$WORKERS" "$THREADS" "$CONNS" "$RUNS" "$SECONDS_RUN"
	for ((r = 1; r <= RUNS; r++)); do
		if ((r % 2)); then order=(this versus); else order=(versus this); fi
		for s in "${order[@]}"; do
			if [[ $s == this ]]; then p=$GP pids="echo $GATE_PID"; else p=$VP pids="echo $VERSUS_PID"; fi
			ONE_LABEL=round$r one "$s" "$p" "$pids" keepalive --threads "$THREADS" --conns "$CONNS"
		done
	done
	PYTHONPATH=$here python3 - <<'PY' || tg_fail "a figure is missing (see above)"
import statistics
import sys
rows = {}
for line in open("results.txt"):
    s, rnd, rate, cpu = line.split()
    rows.setdefault(rnd, {})[s] = (float(rate), float(cpu))
rate_r, cpu_r = [], []
print("%-8s %12s %12s %10s %10s %8s %8s" % ("round", "this req/s", "other req/s", "this us", "other us",
                                            "rate o/t", "cpu o/t"))
for rnd in sorted(rows, key=lambda k: int(k[5:])):
    if set(rows[rnd]) != {"this", "versus"}:
        sys.exit("round %s lacks a figure" % rnd)
    (tr, tc), (vr, vc) = rows[rnd]["this"], rows[rnd]["versus"]
    rate_r.append(vr / tr)
    cpu_r.append(vc / tc)
    print("%-8s %12.1f %12.1f %10.1f %10.1f %8.3f %8.3f" % (rnd, tr, vr, tc, vc, vr / tr, vc / tc))
print("median of the rounds' ratios (other/this): requests/s %.3f, CPU us/request %.3f"
      % (statistics.median(rate_r), statistics.median(cpu_r)))
print("(CPU: user + system time of each gate's process over its run divided by its requests;"
      " lower is better)")
PY
	exit 0
fi

: >results.txt
printf 'gate vs nginx: %d worker(s) each, %d load thread(s), %d keep-alive conn(s) per thread (wide: %d), %d run(s) of %ds, %d idle conns; %s, %s\n' \
	"$WORKERS" "$THREADS" "$CONNS" "$WIDE" "$RUNS" "$SECONDS_RUN" "$IDLE" "$(nginx -v 2>&1)" "$(openssl version)"
for ((r = 1; r <= RUNS; r++)); do
	# alternate who goes first, so drift in the machine's load is shared
	if [[ -z $GATE_OK ]]; then
		order=(nginx nginx-log)
	elif ((r % 2)); then
		order=(nginx gate nginx-log)
	else
		order=(nginx-log gate nginx)
	fi
	for s in "${order[@]}"; do
		if [[ $s == nginx-log ]]; then
			one nginx-log "$NGL" "nginx_workers $NGL_PID" keepalive --threads "$THREADS" \
				--conns "$CONNS"
			continue
		fi
		if [[ $s == nginx ]]; then
			p=$NG pids=nginx_workers
		else
			p=$GP pids="echo $GATE_PID"
		fi
		one "$s" "$p" "$pids" handshake --threads "$THREADS"
		one "$s" "$p" "$pids" keepalive --threads "$THREADS" --conns "$CONNS"
		ONE_LABEL=keepalive-wide one "$s" "$p" "$pids" keepalive --threads "$THREADS" \
			--conns "$WIDE"
	done
	if [[ -n $GATE_OK ]]; then
		if ((r % 2)); then
			one gate-hsm "$GH" "echo $GATEH_PID" handshake --threads "$THREADS"
			one gate-pem "$GP" "echo $GATE_PID" handshake --threads "$THREADS"
		else
			one gate-pem "$GP" "echo $GATE_PID" handshake --threads "$THREADS"
			one gate-hsm "$GH" "echo $GATEH_PID" handshake --threads "$THREADS"
		fi
	fi
	echo "run $r of $RUNS done" >&2
done
NG_RSS=$(idle_rss nginx "$NG" nginx_workers)
GATE_RSS=-
if [[ -n $GATE_OK ]]; then
	GATE_RSS=$(idle_rss gate "$GP" "echo $GATE_PID")
fi

PYTHONPATH=$here python3 - "$NG_RSS" "$GATE_RSS" "$GATE_OK" "$((THREADS * WIDE))" <<'EOF' || tg_fail "a figure is missing (see above)"
import sys
import benchstat
from benchstat import ratio
runs = {}
for line in open("results.txt"):
    s, m, v, c = line.split()
    runs.setdefault((s, m), []).append(float(v))
    runs.setdefault((s, m + "-cpu"), []).append(float(c))
def med(s, m):
    return benchstat.med(runs.get((s, m)))
def cell(s, m):
    return benchstat.cell(runs.get((s, m)))
print("%-40s %22s %22s %8s" % ("", "nginx (median ±spread)", "gate (median ±spread)", "gate/nginx"))
print("%-40s %s %s %s" % ("full mTLS handshakes/s", cell("nginx", "handshake"), cell("gate", "handshake"),
                          ratio(med("gate", "handshake"), med("nginx", "handshake"))))
print("%-40s %s %s %s" % ("keep-alive requests/s", cell("nginx", "keepalive"), cell("gate", "keepalive"),
                          ratio(med("gate", "keepalive"), med("nginx", "keepalive"))))
print("%-40s %s %s %s" % ("keep-alive requests/s, %s conns" % sys.argv[4], cell("nginx", "keepalive-wide"),
                          cell("gate", "keepalive-wide"),
                          ratio(med("gate", "keepalive-wide"), med("nginx", "keepalive-wide"))))
print("%-40s %s %s %s" % ("server CPU us/handshake (lower=better)", cell("nginx", "handshake-cpu"),
                          cell("gate", "handshake-cpu"),
                          ratio(med("gate", "handshake-cpu"), med("nginx", "handshake-cpu"))))
print("%-40s %s %s %s" % ("server CPU us/request (lower=better)", cell("nginx", "keepalive-cpu"),
                          cell("gate", "keepalive-cpu"),
                          ratio(med("gate", "keepalive-cpu"), med("nginx", "keepalive-cpu"))))
print("%-40s %s %s %s" % ("  the same, %s conns" % sys.argv[4], cell("nginx", "keepalive-wide-cpu"),
                          cell("gate", "keepalive-wide-cpu"),
                          ratio(med("gate", "keepalive-wide-cpu"), med("nginx", "keepalive-wide-cpu"))))
# idle RSS: one figure per step (idle_rss)
ng, gt = sys.argv[1], sys.argv[2]
ngv = [float(x) for x in ng.split()] if ng != "-" else []
gtv = [float(x) for x in gt.split()] if gt != "-" else []
print("%-40s %s %s %s" % ("RSS per idle mTLS conn (KiB)", benchstat.cell(ngv, "%13.2f"),
                          benchstat.cell(gtv, "%13.2f"), ratio(benchstat.med(gtv), benchstat.med(ngv))))
print()
print("%-40s %22s %22s %8s" % ("gate server key", "PEM file", "SoftHSM2 token", "hsm/pem"))
print("%-40s %s %s %s" % ("full mTLS handshakes/s", cell("gate-pem", "handshake"), cell("gate-hsm", "handshake"),
                          ratio(med("gate-hsm", "handshake"), med("gate-pem", "handshake"))))
print("%-40s %s %s %s" % ("server CPU us/handshake", cell("gate-pem", "handshake-cpu"),
                          cell("gate-hsm", "handshake-cpu"),
                          ratio(med("gate-hsm", "handshake-cpu"), med("gate-pem", "handshake-cpu"))))
print()
print("informative, not the goal: nginx writing an access_log line per request (buffer off), as the gate")
print("writes its audit line; the headline above is against nginx with access_log off")
print("%-40s %22s %22s %8s" % ("", "nginx+log (med ±spr)", "gate (median ±spread)", "gate/n+log"))
print("%-40s %s %s %s" % ("keep-alive requests/s", cell("nginx-log", "keepalive"), cell("gate", "keepalive"),
                          ratio(med("gate", "keepalive"), med("nginx-log", "keepalive"))))
print("%-40s %s %s %s" % ("server CPU us/request (lower=better)", cell("nginx-log", "keepalive-cpu"),
                          cell("gate", "keepalive-cpu"),
                          ratio(med("gate", "keepalive-cpu"), med("nginx-log", "keepalive-cpu"))))
# every figure must be there (a positive rate from each server and mode)
servers = ["nginx", "nginx-log"] + (["gate", "gate-pem", "gate-hsm"] if sys.argv[3] else [])
missing = ["%s %s" % (sv, m) for sv in servers for m in ("handshake", "keepalive", "keepalive-wide")
           if not (sv in ("gate-pem", "gate-hsm") and m.startswith("keepalive"))
           and not (sv == "nginx-log" and m == "keepalive-wide")
           and not (sv == "nginx-log" and m == "handshake")
           and not (med(sv, m) or 0) > 0]
missing += [n for n, v in (("nginx idle RSS", ngv), ("gate idle RSS", gtv if sys.argv[3] else [0]))
            if not v]
benchstat.all_there(missing)
EOF
echo "(spread = (max - min) / median over the runs: the machine's noise. CPU: user + system time of the"
echo " server (the gate's process, nginx's workers) over a run divided by its operations. RSS: growth per"
echo " idle connection over $IDLE_STEPS steps of $IDLE connections each, after a first $IDLE (median ±spread"
echo " of the steps); nginx = its workers summed)"
[[ -n $GATE_OK ]] || tg_skip "'$TG gate' is not built yet: nginx measured alone"
