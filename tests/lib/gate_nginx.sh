# shellcheck shell=bash
# tests/lib/gate_nginx.sh — nginx in front of tokengate's authorization
# endpoint, for the tests. Source after gate_lib.sh:
#
#	nginx_require            skip unless nginx with auth_request is installed
#	authz_start [ARGS...]    `tokengate gate --mode authz` on
#	                         unix:$AUTHZ_SOCK (the client CA, the policy
#	                         $GATE_POLICY, audit $AUTHZ_AUDIT, admin
#	                         $AUTHZ_ADMIN, AUTHZ_WORKERS default 2) plus ARGS; waits for ready.
#	                         Sets AUTHZ_PID, AUTHZ_LOG
#	nginx_start              nginx (NGINX_WORKERS, default 2) running examples/nginx-authz.conf
#	                         exactly, only its @...@ placeholders (ports and
#	                         paths) substituted, inside a minimal main
#	                         configuration (what /etc/nginx/nginx.conf is on
#	                         a host), on 127.0.0.1:$NGINX_PORT in front of
#	                         the upstream on $UP_PORT. Sets NGINX_PID,
#	                         NGINX_DIR, NGINX_ACCESS (its access log)
#	nginx_reload             `nginx -s reload` with the test's prefix;
#	                         waits until the old workers are gone
#
# Both are stopped at exit (tg_on_exit).

NGINX_EXAMPLE=${NGINX_EXAMPLE:-$TG_FIXTURES/../../examples/nginx-authz.conf}

nginx_require()
{
	tg_require_cmd nginx
	NGINX=$(command -v nginx)
	"$NGINX" -V 2>&1 | grep -q -- --with-http_auth_request_module ||
		tg_skip "this nginx has no auth_request module (install nginx-light or nginx)"
	[[ -r $NGINX_EXAMPLE ]] || tg_fail "the example configuration $NGINX_EXAMPLE is missing"
}

authz_start()
{
	local port
	AUTHZ_SOCK=${AUTHZ_SOCK:-$TG_TMP/authz.sock}
	AUTHZ_AUDIT=${AUTHZ_AUDIT:-$TG_TMP/authz-audit.log}
	AUTHZ_LOG=$TG_TMP/authz.log
	port=$(tg_free_port_pair) || return 1
	AUTHZ_ADMIN=127.0.0.1:$port
	TG__LOGS+=("$AUTHZ_LOG")
	"${TG__PDEATH[@]}" "$TG" gate --mode authz --listen "unix:$AUTHZ_SOCK" --listen-group "$(id -gn)" \
		--client-ca "$PKI/ca/ca.pem" --policy "${GATE_POLICY:-$TG_TMP/policy.yaml}" \
		--audit "$AUTHZ_AUDIT" --admin "$AUTHZ_ADMIN" --workers "${AUTHZ_WORKERS:-2}" "$@" </dev/null >"$AUTHZ_LOG" 2>&1 &
	AUTHZ_PID=$!
	tg_on_exit gate__kill "$AUTHZ_PID"
	export AUTHZ_AUDIT AUTHZ_LOG AUTHZ_PID AUTHZ_SOCK
	if ! tg_wait_until 30 authz__ready; then
		tg_log "the authorization endpoint did not become ready within 30 s"
		tg__dump "$AUTHZ_LOG" authz
		return 1
	fi
}

authz__ready()
{
	tg__pid_alive "$AUTHZ_PID" || return 2
	grep -q 'tokengate gate: ready' "$AUTHZ_LOG" && [[ -S $AUTHZ_SOCK ]]
}

# nginx__subst: the example with its placeholders filled in, on stdout;
# fails when one is left
nginx__subst()
{
	local out
	out=$(sed -e "s|@LISTEN@|127.0.0.1:$NGINX_PORT|g" \
		-e "s|@SERVER_CERT@|$PKI/server.pem|g" -e "s|@SERVER_KEY@|$PKI/server.key|g" \
		-e "s|@CLIENT_CA@|$PKI/ca/ca.pem|g" -e "s|@AUTHZ@|unix:$AUTHZ_SOCK|g" \
		-e "s|@API@|127.0.0.1:$UP_PORT|g" -e "s|@LOG_DIR@|$NGINX_DIR/logs|g" "$NGINX_EXAMPLE") || return 1
	if grep -v '^ *#' <<<"$out" | grep -q '@[A-Z_]*@'; then
		tg_log "a placeholder of $NGINX_EXAMPLE is not substituted: $(grep -v '^ *#' <<<"$out" | grep -o '@[A-Z_]*@' | sort -u | tr '\n' ' ')"
		return 1
	fi
	printf '%s\n' "$out"
}

nginx_start()
{
	local port
	NGINX_DIR=$TG_TMP/nginx
	mkdir -p "$NGINX_DIR/logs" "$NGINX_DIR/tmp"
	port=$(tg_free_port_pair) || return 1
	NGINX_PORT=$port
	NGINX_ACCESS=$NGINX_DIR/logs/tokengate-access.log
	nginx__subst >"$NGINX_DIR/tokengate.conf" || return 1
	# the host's part (Debian's /etc/nginx/nginx.conf includes conf.d/*.conf
	# in http {}); a root test runs the workers as root, to reach $TG_TMP
	{
		[[ $(id -u) != 0 ]] || echo "user $(id -un) $(id -gn);"
		cat <<EOC
daemon off;
master_process on;
worker_processes ${NGINX_WORKERS:-2};
worker_rlimit_nofile 20000;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/logs/error.log info;
events { worker_connections 4096; }
http {
    default_type application/octet-stream;
    client_body_temp_path $NGINX_DIR/tmp/body;
    proxy_temp_path $NGINX_DIR/tmp/proxy;
    fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
    uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
    scgi_temp_path $NGINX_DIR/tmp/scgi;
    include $NGINX_DIR/tokengate.conf;
}
EOC
	} >"$NGINX_DIR/nginx.conf"
	TG__LOGS+=("$NGINX_DIR/logs/error.log")
	"$NGINX" -t -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/logs/error.log" \
		>"$NGINX_DIR/t.out" 2>&1 || {
		cat "$NGINX_DIR/t.out" >&2
		tg_log "nginx -t refused the configuration (above)"
		return 1
	}
	"${TG__PDEATH[@]}" "$NGINX" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/logs/error.log" \
		</dev/null >"$NGINX_DIR/out.log" 2>&1 &
	NGINX_PID=$!
	tg_on_exit tg__kill_wait "$NGINX_PID" 10
	export NGINX_PORT NGINX_DIR NGINX_PID NGINX_ACCESS
	if ! tg_wait_until 30 tg__port_owned "$NGINX_PORT" "$NGINX_PID"; then
		tg__dump "$NGINX_DIR/logs/error.log" nginx
		tg_log "nginx did not listen on 127.0.0.1:$NGINX_PORT within 30 s"
		return 1
	fi
}

nginx__workers()
{
	pgrep -P "$NGINX_PID" | sort | tr '\n' ' '
}

nginx__old_gone()
{
	local p
	for p in $1; do
		[[ ! -e /proc/$p ]] || [[ $(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ') != "$NGINX_PID" ]] || return 1
	done
}

nginx_reload()
{
	local old
	old=$(nginx__workers)
	"$NGINX" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/logs/error.log" -s reload ||
		return 1
	tg_wait_until 30 nginx__old_gone "$old" || {
		tg_log "nginx's old workers ($old) still run 30 s after the reload"
		return 1
	}
}
