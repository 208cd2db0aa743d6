# shellcheck shell=bash
# tests/lib/agent_lib.sh — helpers for the tests of `tokengate agent` in
# front of a real gate. Source after fixtures.sh and gate_lib.sh:
#
#	source "$TG_FIXTURES/fixtures.sh"
#	source "$TG_FIXTURES/gate_lib.sh"
#	source "$TG_FIXTURES/agent_lib.sh"
#
#	agent_require                  skip/fail unless the agent exists
#	agent_start ARGS...            `tokengate agent` towards the gate, waits
#	                               until it listens; AGENT_PID, AGENT_PORT,
#	                               AGENT_ADMIN, AGENT_LOG
#	agent_stop                     SIGTERM, waits; status in AGENT_RC
#	agent_metric NAME              one value from the agent's /metrics
#	agent_url PATH                 http://127.0.0.1:AGENT_PORT/PATH
#	agent_client ARGS...           tests/lib/agent_client.py --addr ... ARGS
#	agent_sim_enroll NAME ID       `tokengate enroll` on the simulator (slot
#	                               9a, device-attested, PIN once), leaf
#	                               $PKI/NAME.pem; AGENT_SIM_KEY: its URI
#	                               through OpenSC
#	sim_ops                        the simulator's private-key operations
#	agent_sim_require [CMD...]     skip unless the simulator's tools are there
#	agent_sim_setup [ARGS...]      sim_up ARGS, gate_pki, erin enrolled (ERIN)
#	agent_hsm_key                  AGENT_HSM_KEY: the SoftHSM2 leaf's key with
#	                               its PIN in a 0600 file
#
# The agent's command line (issue 12): tokengate agent --listen
# 127.0.0.1:PORT|unix:PATH --upstream https://HOST:PORT --key pkcs11:URI
# [--cert FILE] --ca FILE [--server-name NAME] [--mode http|tcp]
# [--admin ADDR:PORT]; /metrics names tokengate_agent_*.

AGENT_CLIENT_PY=$TG_FIXTURES/agent_client.py

# agent_require: the agent subcommand exists. A tree with host/agent/ and
# no working `tokengate agent --help` is a failure; a tree without the
# agent at all (a branch before it landed) skips.
agent_require()
{
	if ! "$TG" agent --help >"$TG_TMP/agent-help.out" 2>&1; then
		[[ -d $TG_SOURCE_DIR/host/agent ]] &&
			tg_fail "'tokengate agent --help' failed: $(head -c 400 "$TG_TMP/agent-help.out")"
		tg_skip "'tokengate agent' is not part of this tree yet"
	fi
}

# agent_start ARGS...: `tokengate agent` listening on 127.0.0.1:AGENT_PORT
# (a fresh port unless AGENT_LISTEN is set, e.g. unix:/path), admin on
# AGENT_PORT+1, towards https://127.0.0.1:$GATE_PORT (AGENT_UPSTREAM), the
# gate's server CA, server name localhost, plus ARGS (--key, --cert...).
# Waits (30 s) until the listener is there. AGENT_ENV (array) is put before
# the command (env VAR=...). Sets AGENT_PID, AGENT_LOG, AGENT_PORT,
# AGENT_ADMIN.
agent_start()
{
	local p listen
	p=$(tg_free_port_pair) || return 1
	AGENT_PORT=$p
	AGENT_ADMIN=127.0.0.1:$((p + 1))
	listen=${AGENT_LISTEN:-127.0.0.1:$p}
	AGENT_LOG=$TG_TMP/agent.$p.log
	TG__LOGS+=("$AGENT_LOG")
	AGENT_ARGS=(agent --listen "$listen" --upstream "${AGENT_UPSTREAM:-https://127.0.0.1:$GATE_PORT}"
		--ca "$PKI/srvca.pem" --server-name localhost --admin "$AGENT_ADMIN" "$@")
	"${TG__PDEATH[@]}" env ${AGENT_ENV+"${AGENT_ENV[@]}"} "$TG" "${AGENT_ARGS[@]}" \
		</dev/null >"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	tg_on_exit gate__kill "$AGENT_PID"
	export AGENT_PID AGENT_LOG AGENT_PORT AGENT_ADMIN
	if ! tg_wait_until 30 agent__ready "$AGENT_PID" "$listen"; then
		tg_log "the agent did not listen within 30 s: $TG ${AGENT_ARGS[*]}"
		tg__dump "$AGENT_LOG" agent
		return 1
	fi
}

agent__ready()
{
	tg__pid_alive "$1" || return 2
	if [[ $2 == unix:* ]]; then
		[[ -S ${2#unix:} ]]
	else
		tg__port_owned "${2##*:}" "$1"
	fi
}

# agent_start_fails WANT_TEXT ARGS...: the agent started with ARGS (as
# agent_start) must exit non-zero within 30 s without listening, with
# WANT_TEXT (fixed string) in its output; prints the refusal.
agent_start_fails()
{
	local want=$1 p rc=0 log=$TG_TMP/agent-refused.log
	shift
	p=$(tg_free_port_pair) || return 1
	timeout 30 "$TG" agent --listen "127.0.0.1:$p" --upstream "https://127.0.0.1:$GATE_PORT" \
		--ca "$PKI/srvca.pem" --server-name localhost "$@" </dev/null >"$log" 2>&1 || rc=$?
	((rc != 0 && rc != 124)) || tg_fail "the agent did not refuse to start (exit $rc): $(cat "$log")"
	grep -qF -- "$want" "$log" || tg_fail "agent refusal without '$want': $(cat "$log")"
	echo "refused as expected (exit $rc): $(cat "$log")"
}

# agent_stop: SIGTERM; waits until the agent has exited. Status in AGENT_RC.
agent_stop()
{
	gate__term "$AGENT_PID" "the agent"
	AGENT_RC=$GATE__TERM_RC
}

# agent_metric 'NAME{LABELS}': the value of one sample on the agent's
# /metrics (the line starting with the argument), "" when absent.
agent_metric()
{
	curl -sS --max-time 5 "http://$AGENT_ADMIN/metrics" 2>/dev/null |
		awk -v k="$1" 'index($0, k) == 1 && (substr($0, length(k) + 1, 1) ~ /[ {]/) { print $NF; exit }'
}

# agent_metric_is NAME VALUE: the sample equals VALUE (numerically).
agent_metric_is()
{
	local v
	v=$(agent_metric "$1")
	[[ -n $v ]] && python3 -c 'import sys; sys.exit(float(sys.argv[1]) != float(sys.argv[2]))' "$v" "$2"
}

agent_url()
{
	echo "http://127.0.0.1:$AGENT_PORT$1"
}

# agent_client ARGS...: tests/lib/agent_client.py against the agent's TCP
# listener (AGENT_UNIX set: its unix socket).
agent_client()
{
	if [[ -n ${AGENT_UNIX:-} ]]; then
		"$GATE_PYTHON" "$AGENT_CLIENT_PY" --unix "$AGENT_UNIX" "$@"
	else
		"$GATE_PYTHON" "$AGENT_CLIENT_PY" --addr "127.0.0.1:$AGENT_PORT" "$@"
	fi
}

# agent_conns_to_gate: the number of established TCP connections of the
# agent's process to the gate's port.
agent_conns_to_gate()
{
	ss -Htnp state established "dport = :$GATE_PORT" 2>/dev/null | grep -c "pid=$AGENT_PID," || true
}

# agent_hsm_pki: the SoftHSM2 token (tg_softhsm_default), the certificate
# set with a SoftHSM2 leaf (GATE_HSM=1 gate_pki) and agent_hsm_key; fails
# the test when the PKI cannot be made.
agent_hsm_pki()
{
	tg_softhsm_default
	GATE_HSM=1 gate_pki || tg_fail "the PKI could not be made"
	agent_hsm_key
}

# agent_hsm_key: AGENT_HSM_KEY, the URI of the SoftHSM2 leaf's key
# (GATE_HSM=1 gate_pki) through SoftHSM2's module, with the PIN in a 0600
# file (AGENT_HSM_PIN_FILE), the agent's non-interactive PIN source;
# AGENT_HSM_QUERY: the URI's query (module and PIN source).
agent_hsm_key()
{
	AGENT_HSM_PIN_FILE=$TG_TMP/hsm.pin
	printf '%s\n' "$TG_SOFTHSM_PIN" >"$AGENT_HSM_PIN_FILE"
	chmod 600 "$AGENT_HSM_PIN_FILE"
	AGENT_HSM_QUERY="module-path=$TG_SOFTHSM2_MODULE&pin-source=file:$AGENT_HSM_PIN_FILE"
	AGENT_HSM_KEY="$GATE_HSM_KEY?$AGENT_HSM_QUERY"
	export AGENT_HSM_KEY AGENT_HSM_PIN_FILE AGENT_HSM_QUERY
}

# ---------------------------------------------------------------------
# The simulator as the agent's token.
# ---------------------------------------------------------------------

# agent_sim_require [CMD...]: skip unless the tools of the simulator tests
# (yubico-piv-tool, opensc-tool, CMD...) and OpenSC's PKCS#11 module are
# installed. The test sources tests/integration/sim_lib.sh itself.
agent_sim_require()
{
	tg_require_cmd yubico-piv-tool opensc-tool "$@"
	[[ -e $TG_OPENSC_MODULE ]] || tg_skip "OpenSC PKCS#11 module $TG_OPENSC_MODULE not found; install opensc-pkcs11"
}

# agent_sim_setup [SIM_UP_ARGS...]: the simulator (sim_up ARGS), the
# certificate set (gate_pki; GATE_HSM=1 as it takes it) and erin's key
# enrolled on the token (agent_sim_enroll erin $ERIN: AGENT_SIM_KEY, its
# leaf $PKI/erin.pem); TOKENGATE_PIN unset, the agent reading its PIN
# file. Sets ERIN.
agent_sim_setup()
{
	sim_up "$@" || return 1
	gate_pki || return 1
	ERIN=spiffe://$TD/dev/erin
	agent_sim_enroll erin "$ERIN"
	unset TOKENGATE_PIN
}

# agent_sim_enroll NAME ID: `tokengate enroll` on the running simulator
# (slot 9a, EC P-256, PIN policy once, touch never) for identity ID,
# certified by $PKI/ca (which then trusts the simulator's manufacturer CA:
# device-attested); the leaf in $PKI/NAME.pem. AGENT_SIM_KEY: the key's URI
# through OpenSC's module; AGENT_PIN_FILE: a 0600 file with the PIN (the
# agent's non-interactive PIN source, read again at each login).
agent_sim_enroll()
{
	local name=$1 id=$2 mgm=A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718
	run_ok "set-mgm-key" ypt -k"$SIM_MGM" -a set-mgm-key -n "$mgm"
	cp "$TG_SIM_STATE.mfr-ca.pem" "$PKI/ca/attestation-roots/sim-mfr.pem"
	TOKENGATE_MGM_KEY=$mgm TOKENGATE_PIN=$SIM_PIN "$TG" enroll --reader "$TG_READER" --slot 9a \
		--id "$id" --algorithm ec-p256 --pin-policy once --touch-policy never \
		--ca-dir "$PKI/ca" --cert-out "$PKI/$name.pem" >"$TG_TMP/enroll.out" 2>"$TG_TMP/enroll.err" ||
		{
			cat "$TG_TMP/enroll.out" "$TG_TMP/enroll.err" >&2
			tg_fail "tokengate enroll on the simulator (slot 9a)"
		}
	AGENT_PIN_FILE=$TG_TMP/sim.pin
	printf '%s\n' "$SIM_PIN" >"$AGENT_PIN_FILE"
	chmod 600 "$AGENT_PIN_FILE"
	AGENT_SIM_KEY="pkcs11:id=%01;type=private?module-path=$TG_OPENSC_MODULE&pin-source=file:$AGENT_PIN_FILE"
	export AGENT_SIM_KEY AGENT_PIN_FILE
}

# sim_ops: the simulator's count of private-key operations (its state file,
# `tokengate-sim status --json`, field private_key_operations).
sim_ops()
{
	"$TG_BIN_DIR/tokengate-sim" status --state "$TG_SIM_STATE" --json | jq -r .private_key_operations
}
