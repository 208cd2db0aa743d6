# shellcheck shell=bash
# shellcheck disable=SC2034  # the settings it parses are the sourcing script's
# bench/lib.sh — what the bench scripts (gate-vs-nginx.sh, authz-vs-nginx.sh,
# agent-vs-stunnel.sh) share. Source it with the script's arguments, after
# `set -euo pipefail`, `here=...` and the defaults:
#
#	WORKERS=... IDLE=...   # only where the script takes them
#	CONNS=2                # where the default differs from 4
#	BENCH_USAGE=14,22      # the header lines --help prints
#	source "$here/lib.sh" "$@"
#
# It sets the defaults SECONDS_RUN=5, THREADS=4, RUNS=3 (CONNS=4 unless
# set), parses the options (--seconds S, --threads N, --runs R, --conns C; and
# --workers N / --idle N where the script set WORKERS / IDLE;
# --instructions where it set INSTRUCTIONS (to 1); --versus BIN where it
# set VERSUS (to the executable's absolute path); --quick =
# --seconds 2 --runs 1 and --idle 50; -h/--help; BUILD_DIR, default
# ./build), checks each is a whole number above 0 (exit 2 otherwise), sets
# BUILD, LOAD (build/bench/gate_load: skips when it is not built) and
# TG_BIN_DIR, TG_BUILD_DIR, TG_FIXTURES, and sources tests/lib/fixtures.sh.
# Then:
#
#	listening PORT                 something listens on 127.0.0.1:PORT
#	wait_listen PORT PID LOG NAME  waits until it does and PID lives; fails
#	                               (LOG shown) otherwise
#	nginx_conf DIR WORKERS BLOCK...  DIR/nginx.conf, non-root-friendly, the
#	                               http {} settings of every bench plus BLOCK
#	bench_nginx_start DIR PORT NAME  that nginx (not daemonized) as a job of
#	                               this shell; sets STARTED (its pid)
#	bench_nginx_mtls WORKERS CERT KEY CA [LOCATIONS]  the upstream nginx
#	                               and the mTLS nginx in front; UP, NG, NG_PID
#	bench_nginx_front NAME WORKERS CERT KEY CA LOG  one more such front
#	                               nginx, LOG its access_log; FRONT_PORT
#	bench_sane PORT WHAT ARGS...   a short run of the script's load()
#	                               through PORT (WHAT) must succeed
#	bench_denied PORT              a GET outside the policy: the gate's 403
#	cpu_of PID...                  user + system CPU time, clock ticks
#	rate_cpu_us JSON T0 T1...      a gate_load result's rate and CPU
#	                               microseconds per operation (ticks T0..T1)
#
# bench/benchstat.py holds the figures' arithmetic (medians, spreads,
# ratios) for the scripts' python parts.

BENCH_NAME=${0##*/}
SECONDS_RUN=5
THREADS=4
RUNS=3
CONNS=${CONNS:-4}
BUILD=
while (($#)); do
	case $1 in
	--seconds) SECONDS_RUN=$2 && shift ;;
	--threads) THREADS=$2 && shift ;;
	--runs) RUNS=$2 && shift ;;
	--conns) CONNS=$2 && shift ;;
	--workers | --idle)
		BENCH__V=${1#--}
		BENCH__V=${BENCH__V^^}
		[[ -v $BENCH__V ]] || {
			echo "$BENCH_NAME: unknown option '$1' (see --help)" >&2
			exit 2
		}
		printf -v "$BENCH__V" %s "$2" && shift
		;;
	--instructions)
		[[ -v INSTRUCTIONS ]] || {
			echo "$BENCH_NAME: unknown option '$1' (see --help)" >&2
			exit 2
		}
		INSTRUCTIONS=1
		;;
	--versus)
		[[ -v VERSUS ]] || {
			echo "$BENCH_NAME: unknown option '$1' (see --help)" >&2
			exit 2
		}
		[[ -n ${2:-} && -x ${2:-} ]] || {
			echo "$BENCH_NAME: --versus needs an executable tokengate, not '${2:-}'" >&2
			exit 2
		}
		VERSUS=$(cd "$(dirname "$2")" && pwd)/$(basename "$2") && shift
		;;
	--quick)
		SECONDS_RUN=2 RUNS=1
		[[ ! -v IDLE ]] || IDLE=50
		;;
	-h | --help) sed -n "${BENCH_USAGE}s/^# \{0,1\}//p" "$0" && exit 0 ;;
	-*) echo "$BENCH_NAME: unknown option '$1' (see --help)" >&2 && exit 2 ;;
	*) BUILD=$1 ;;
	esac
	shift
done
for BENCH__V in SECONDS_RUN THREADS WORKERS RUNS CONNS IDLE; do
	[[ -v $BENCH__V ]] || continue
	[[ ${!BENCH__V} =~ ^[1-9][0-9]*$ ]] || {
		echo "$BENCH_NAME: ${BENCH__V/SECONDS_RUN/SECONDS} '${!BENCH__V}' must be a whole number above 0" >&2
		exit 2
	}
done
unset BENCH__V
BUILD=$(cd "${BUILD:-$here/../build}" && pwd)
export TG_BIN_DIR=$BUILD/bin TG_BUILD_DIR=$BUILD
export TG_FIXTURES=${TG_FIXTURES:-$here/../tests/lib}
# the python parts import bench/benchstat.py: no __pycache__ in the tree
export PYTHONDONTWRITEBYTECODE=1
source "$TG_FIXTURES/fixtures.sh"
LOAD=$BUILD/bench/gate_load
[[ -x $LOAD ]] || tg_skip "$LOAD not built (cmake --build $BUILD --target gate_load)"

listening()
{
	[[ -n $(ss -Hltn "sport = :$1") ]]
}

# wait_listen PORT PID LOG NAME
wait_listen()
{
	tg_wait_until "$TG_WAIT_SECS" listening "$1" && tg__pid_alive "$2" && return 0
	tg__dump "$3" "$4"
	tg_fail "$4 (pid $2) does not listen on 127.0.0.1:$1"
}

BENCH_USER_LINE=
[[ $(id -u) != 0 ]] || BENCH_USER_LINE="user $(id -un) $(id -gn);"
# nginx_conf DIR WORKERS SERVER-BLOCK...: a non-root-friendly nginx.conf
nginx_conf()
{
	local d=$1 w=$2
	shift 2
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<EOF
$BENCH_USER_LINE
daemon off;
master_process on;
worker_processes $w;
worker_rlimit_nofile 20000;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 8192; }
http {
  default_type text/plain;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
$*
}
EOF
}

# bench_nginx_start DIR PORT NAME: start it (not daemonized) as a background
# job of this shell; sets STARTED (its pid). Not in $(...): the job must be
# ours, for the cleanup and for --pdeathsig.
bench_nginx_start()
{
	local d=$1
	NGINX=${NGINX:-$(command -v nginx)}
	TG__LOGS+=("$d/error.log")
	"${TG__PDEATH[@]}" "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" </dev/null \
		>"$d/out.log" 2>&1 &
	STARTED=$!
	tg_on_exit tg__kill_wait "$STARTED" 10
	wait_listen "$2" "$STARTED" "$d/error.log" "$3"
}

# bench_nginx_mtls WORKERS CERT KEY CA [LOCATIONS]: the two nginx of the
# benches: the upstream (one worker, 127.0.0.1:$UP, `return 200 "ok"`,
# plus the LOCATIONS) and in front of it the mTLS server (WORKERS
# workers, 127.0.0.1:$NG, TLS 1.3, server certificate CERT with key KEY,
# client certificate required and verified against CA, every request
# proxied over pooled keep-alive connections to the upstream, no access
# log). Sets UP, NG, NG_PID.
bench_nginx_mtls()
{
	UP=$(tg_free_port_pair)
	nginx_conf "$TG_TMP/up" 1 "  access_log off;
  server { listen 127.0.0.1:$UP; location / { return 200 \"ok\"; } ${5:-}}"
	bench_nginx_start "$TG_TMP/up" "$UP" "upstream nginx"
	bench_nginx_front ng "$1" "$2" "$3" "$4" "access_log off;"
	NG=$FRONT_PORT
	NG_PID=$STARTED
}

# bench_nginx_front NAME WORKERS CERT KEY CA LOG: another mTLS nginx in
# front of $UP as bench_nginx_mtls makes it, in $TG_TMP/NAME, with LOG
# its access_log setting (e.g. "access_log $TG_TMP/x.log;"). Sets
# FRONT_PORT and STARTED (its pid).
bench_nginx_front()
{
	FRONT_PORT=$(tg_free_port_pair)
	nginx_conf "$TG_TMP/$1" "$2" "  $6
  upstream up { server 127.0.0.1:$UP; keepalive 32; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$FRONT_PORT ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate $3;
    ssl_certificate_key $4;
    ssl_client_certificate $5;
    ssl_verify_client on;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }"
	local what="nginx ($1)"
	[[ $1 != ng ]] || what=nginx
	bench_nginx_start "$TG_TMP/$1" "$FRONT_PORT" "$what"
}

# bench_sane PORT WHAT ARGS...: the script's load() through PORT for 0.2 s
# with one thread (and ARGS: --mode, ...) must succeed; else fail naming
# WHAT ("nginx", "the gate", ...)
bench_sane()
{
	load "$1" --threads 1 --seconds 0.2 "${@:3}" >/dev/null 2>load.err ||
		tg_fail "a request through $2 failed: $(cat load.err)"
}

# bench_denied PORT: a GET outside the policy's routes through PORT is
# answered by the gate's 403, which gate_load reports as an error
bench_denied()
{
	tg_expect_exit 1 "GET /nope answered 'HTTP/1.1 403" \
		load "$1" --mode keepalive --threads 1 --seconds 0.2 --path /nope
}

BENCH_CLK_TCK=$(getconf CLK_TCK)
# cpu_of PID...: user + system CPU time of the processes (all threads), in
# clock ticks (fields 14 and 15 of /proc/PID/stat, counted after the
# command name, which may hold spaces)
cpu_of()
{
	local p s=0 st f
	for p in "$@"; do
		read -r st <"/proc/$p/stat"
		read -ra f <<<"${st##*) }"
		s=$((s + f[11] + f[12]))
	done
	echo "$s"
}

# rate_cpu_us JSON T0 T1 [T0 T1]...: gate_load's JSON result's rate
# (per_sec), then for each pair of cpu_of readings the CPU time between them
# in microseconds per operation ("%.1f"), on one line
rate_cpu_us()
{
	python3 -c '
import json, sys
j, t = json.loads(sys.argv[2]), sys.argv[3:]
us = [(int(b) - int(a)) * 1e6 / int(sys.argv[1]) / max(1, j["ops"]) for a, b in zip(t[::2], t[1::2])]
print(j["per_sec"], *["%.1f" % u for u in us])
' "$BENCH_CLK_TCK" "$@"
}
