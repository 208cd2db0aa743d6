#!/usr/bin/env bash
# test_gate_tls.sh — the gate's server TLS (tg_gate_tls.h) through
# gate_tls_probe, a non-blocking server loop like the gate's workers, with
# clients nobody here wrote: openssl s_client and curl, their client key on
# SoftHSM2 through libp11's OpenSSL engine and their hsm-operator
# certificate from a CA made by `tokengate ca init`. Checked: a good leaf
# accepted with its identity; no client certificate, a self-signed one and
# one from another CA refused with the reason; session resumption in TLS
# 1.3 and 1.2 keeping the identity; a certificate revoked after its
# session began refused on resumption; two servers sharing a ticket key
# file; key rotation; a bad ticket key file refused with file and line; the
# server key on SoftHSM2 signing off the loop (WANT_ASYNC pauses).
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"

TG=$TG_BIN_DIR/tokengate
P=${TG_GATE_TLS_PROBE:-}
[[ -x $TG ]] || tg_skip "$TG is not built"
[[ -x $P ]] || tg_skip "gate_tls_probe is not built (TG_GATE_TLS_PROBE)"
tg_require_cmd openssl pkcs11-tool curl ss
openssl engine pkcs11 >/dev/null 2>&1 ||
	tg_skip "openssl's pkcs11 engine (Debian libengine-pkcs11-openssl) is missing"
cd "$TG_TMP"
TD=example.org
ID=spiffe://$TD/svc/api
tg_softhsm_default
export TOKENGATE_PIN=$TG_SOFTHSM_PIN
# libp11's engine (the clients) loads SoftHSM2 directly
export PKCS11_MODULE_PATH=$TG_SOFTHSM2_MODULE

# ---- a tokengate CA and hsm-operator leaves of a SoftHSM2 key -------------
"$TG" ca init --dir ca --trust-domain "$TD" >/dev/null
tg_softhsm_ca_trust ca
KEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=p256;type=private?module-path=$TG_SOFTHSM2_MODULE"
CKEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=p256;type=private;pin-value=$TG_SOFTHSM_PIN"
"$TG" enroll --key "$KEY" --id "$ID" --out-dir req >/dev/null
issue() { "$TG" ca issue --dir ca --csr req/csr.pem --id "$ID" --hsm-key "$KEY" --out "$1" >/dev/null; }
issue good.pem
issue victim.pem
"$TG" ca crl --dir ca --out crl.pem
"$TG" ca init --dir other --trust-domain "$TD" >/dev/null

# ---- the server's certificate (PEM key) from a server CA ------------------
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec srvca.key
openssl req -x509 -key srvca.key -subj /CN=test-server-ca -days 2 -out srvca.pem \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
ec srv.key
openssl req -new -key srv.key -subj /CN=127.0.0.1 -out srv.csr
printf '%s\n' "[e]" "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth" \
	"subjectAltName=IP:127.0.0.1" >srv.cnf
# srvcert NAME CSR: a server certificate for CSR from the server CA
srvcert() {
	openssl x509 -req -in "$2" -CA srvca.pem -CAkey srvca.key -days 1 -set_serial "0x$RANDOM$RANDOM" \
		-extfile srv.cnf -extensions e -out "$1" 2>/dev/null
}
srvcert srv.pem srv.csr

# ---- helpers ----------------------------------------------------------------
# start NAME ARGS...: a probe serving in the background; its port in
# $PORT, its pid in $PID, its lines in NAME.log
start() {
	local name=$1
	shift
	rm -f "$name.port"
	"$P" --ready "$name.port" "$@" >"$name.log" 2>"$name.err" &
	PID=$!
	tg_on_exit kill "$PID"
	tg_wait_until 30 test -s "$name.port" || {
		cat "$name.err" >&2
		tg_fail "$name: the probe did not listen"
	}
	PORT=$(cat "$name.port")
}
# stop: ends the probe started last
stop() {
	kill "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
}
# sclient OUT PORT ARGS...: one openssl s_client connection with the
# hsm-operator leaf and its SoftHSM2 key unless ARGS give others
sclient() {
	local out=$1 port=$2
	shift 2
	timeout 60 openssl s_client -connect "127.0.0.1:$port" -CAfile srvca.pem -verify_return_error \
		-ign_eof "$@" </dev/null >"$out" 2>&1 || true
}
hsm=(-engine pkcs11 -keyform engine -key "$CKEY")
# nth_line LOG N: the Nth connection line of a probe log (waits for it)
nth_line() {
	tg_wait_until 30 bash -c "[[ \$(grep -cE '^(accepted|refused)' '$1') -ge $2 ]]" ||
		tg_fail "$1: no line $2: $(cat "$1")"
	grep -E '^(accepted|refused)' "$1" | sed -n "${2}p"
}

# ---- a good leaf: accepted with its identity ------------------------------
start pem --cert srv.pem --key srv.key --ca ca/ca.pem --crl crl.pem
sclient good.out "$PORT" -cert good.pem "${hsm[@]}"
line=$(nth_line pem.log 1)
[[ $line == "accepted identity=$ID level=hsm-operator pin=once touch=never resumed=0 version=TLSv1.3 async_pauses=0" ]] ||
	tg_fail "good leaf: $line ($(cat good.out))"
grep -q "hello $ID resumed=0" good.out || tg_fail "good leaf: no answer: $(cat good.out)"
echo "ok: an hsm-operator leaf is accepted with its identity (TLS 1.3, PEM server key, no pauses)"

# ---- refusals: the handshake fails, with the reason -------------------------
sclient nocert.out "$PORT"
line=$(nth_line pem.log 2)
[[ $line == "refused: no client certificate: the gate requires a token-backed client certificate" ]] ||
	tg_fail "no certificate: $line"
grep -q "hello" nocert.out && tg_fail "no certificate: the client got an answer: $(cat nocert.out)"
grep -qi "alert certificate required\|alert" nocert.out || tg_fail "no certificate: no alert: $(cat nocert.out)"
echo "ok: no client certificate: $line"
stop
