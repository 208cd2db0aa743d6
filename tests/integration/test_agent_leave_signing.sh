#!/usr/bin/env bash
# test_agent_leave_signing.sh — clients that leave while their upstream
# connection's TLS handshake waits for the token's signature. The
# simulated card answers every private-key operation after 600 ms
# (tokengate-sim --sign-latency-ms 600), so the handshake is paused in its
# ASYNC signing job (tlskey/asynckey.c) when the client leaves 250 ms after
# connecting. OpenSSL cannot free a paused job: the agent lets the
# handshake go on without its client (done, it joins the pool), and at its
# end (SIGTERM) waits for the signature before freeing the connection.
#   - tcp mode (a new upstream connection per client; the gate's ticket
#     key rotated before each, so each is a full handshake signed on the
#     token): 4 clients in a row leave mid-signature; each abandoned
#     handshake still completes (the token signed, handshakes_total{ok}
#     grows), and the agent goes on serving;
#   - a SIGTERM while a signature is pending: the agent exits 0;
#   - the agent's log has no sanitizer report (a TG_SANITIZE build: before
#     the fix the paused job was left behind by SSL_free, a leak, and used
#     freed memory at exit).
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_FIXTURES/agent_lib.sh"
source "$TG_SOURCE_DIR/tests/integration/sim_lib.sh"
gate_require
agent_require
agent_sim_require
cd "$TG_TMP"
LAT=600
LEAVE_MS=250
agent_sim_setup -- --sign-latency-ms "$LAT"
gate_upstream_start up
new_ticket_key()
{
	openssl rand -base64 80 | tr -d '\n' >"$1"
	echo >>"$1"
	chmod 600 "$1"
}
# rotate: a new session-ticket key at the gate; no ticket the agent holds
# is good any more: the next connection is a full handshake, signed on
# the token
rotate()
{
	new_ticket_key tcp.tickets
	[[ $(gate_reload) == ok ]] || tg_fail "the gate refused the new ticket key"
}
# leave [HOLD_S]: a client connects to the agent, sends nothing, and
# closes after LEAVE_MS ms (or HOLD_S seconds)
leave()
{
	"$GATE_PYTHON" - "$AGENT_PORT" "${1:-0.$LEAVE_MS}" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
time.sleep(float(sys.argv[2]))
s.close()
EOF
}
hs_ok()
{
	agent_metric 'tokengate_agent_handshakes_total{result="ok"}'
}
hs_ok_above()
{
	local v
	v=$(hs_ok)
	[[ -n $v ]] && ((v > $1))
}
no_sanitizer_report()
{
	! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:|AddressSanitizer' "$AGENT_LOG" ||
		tg_fail "a sanitizer found a fault in the agent (above)"
}

cat >tcp.yaml <<YAML
routes:
  - name: tunnel
    paths: ["/"]
    allow:
      - identity: "spiffe://$TD/dev/*"
        key: device-attested
YAML
new_ticket_key tcp.tickets
export GATE_AUDIT=$TG_TMP/audit-tcp.log GATE_POLICY=$TG_TMP/tcp.yaml GATE_UPSTREAM=tcp://127.0.0.1:$UP_PORT
gate_start --mode tcp --tickets "$TG_TMP/tcp.tickets"
agent_start --key "$AGENT_SIM_KEY" --cert "$PKI/erin.pem" --mode tcp
agent_client requests --path /echo --n 1 --expect 200 >warm.json || tg_fail "tcp mode: $(cat warm.json)"

# ---- clients that leave while the token signs -------------------------------
for i in 1 2 3 4; do
	rotate
	s0=$(sim_ops)
	ok0=$(hs_ok)
	t0=$(tg__now_ms)
	leave
	# the handshake the client left goes on: the token's signature comes
	# after LAT ms, then the handshake completes (and is pooled)
	tg_wait_until 15 hs_ok_above "$ok0" ||
		tg_fail "client $i left during the token's signature: its handshake never completed (handshakes ok: $ok0 -> $(hs_ok)); agent log: $(tail -20 "$AGENT_LOG")"
	t1=$(tg__now_ms)
	s1=$(sim_ops)
	((s1 > s0)) || tg_fail "client $i: no token operation; the test did not make the handshake wait for the token"
	((t1 - t0 >= LAT)) || tg_fail "client $i: the handshake completed after $((t1 - t0)) ms, before the token's ${LAT} ms: the client did not leave during the signature"
	tg__pid_alive "$AGENT_PID" || tg_fail "the agent died after client $i left: $(tail -40 "$AGENT_LOG")"
	echo "ok: client $i left ${LEAVE_MS} ms into the handshake; it completed after $((t1 - t0)) ms (token: $((s1 - s0)) operation(s))"
done
agent_client requests --path /echo --n 1 --expect 200 >after.json || tg_fail "the agent after the clients left: $(cat after.json)"
echo "ok: the agent goes on serving"
no_sanitizer_report

# ---- SIGTERM while a signature is pending -----------------------------------
rotate
leave 3 &
lpid=$!
sleep "0.$LEAVE_MS"
s0=$(sim_ops)
t0=$(tg__now_ms)
agent_stop
t1=$(tg__now_ms)
wait "$lpid" || true
((AGENT_RC == 0)) || tg_fail "the agent exited $AGENT_RC on SIGTERM during a signature: $(tail -40 "$AGENT_LOG")"
no_sanitizer_report
echo "ok: SIGTERM during a signature: the agent waited for it and exited 0 after $((t1 - t0)) ms"
gate_stop
echo PASS
