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
	NAME=$name
	tg_on_exit kill "$PID"
	tg_wait_until 30 test -s "$name.port" || {
		cat "$name.err" >&2
		tg_fail "$name: the probe did not listen"
	}
	PORT=$(cat "$name.port")
	n=0
}
# stop [PID NAME]: ends the probe (default: the one started last), which
# must exit 0 (a sanitizer's report fails it)
stop() {
	local pid=${1:-$PID} name=${2:-$NAME} rc=0
	kill "$pid"
	wait "$pid" || rc=$?
	[[ $rc -eq 0 ]] || tg_fail "$name: the probe exited $rc: $(cat "$name.err")"
}
# sclient OUT PORT ARGS...: one openssl s_client connection with the
# hsm-operator leaf and its SoftHSM2 key unless ARGS give others
# (its exit code in $SC_RC)
sclient() {
	local out=$1 port=$2
	shift 2
	SC_RC=0
	timeout 60 openssl s_client -connect "127.0.0.1:$port" -CAfile srvca.pem -verify_return_error \
		-ign_eof "$@" </dev/null >"$out" 2>&1 || SC_RC=$?
}
# refused_client NAME: the last s_client failed (exit 1) and got no answer
refused_client() {
	[[ $SC_RC -eq 1 ]] || tg_fail "$1: s_client exited $SC_RC, want 1: $(cat "$1.out")"
	grep -q "hello" "$1.out" && tg_fail "$1: the client got an answer: $(cat "$1.out")"
	return 0
}
hsm=(-engine pkcs11 -keyform engine -key "$CKEY")
# nth_line LOG N: the Nth connection line of a probe log (waits for it)
nth_line() {
	tg_wait_until 30 bash -c "[[ \$(grep -cE '^(accepted|refused|abandoned)' '$1') -ge $2 ]]" ||
		tg_fail "$1: no line $2: $(cat "$1")"
	grep -E '^(accepted|refused|abandoned)' "$1" | sed -n "${2}p"
}

# next_line LOG: the next connection line of LOG into $line (counted in
# $n, which start resets)
n=0
next_line() {
	n=$((n + 1))
	line=$(nth_line "$1" "$n")
}

# ---- a good leaf: accepted with its identity ------------------------------
start pem --cert srv.pem --key srv.key --ca ca/ca.pem --crl crl.pem
sclient good.out "$PORT" -cert good.pem "${hsm[@]}"
next_line pem.log
[[ $line == "accepted identity=$ID level=hsm-operator pin=once touch=never resumed=0 version=TLSv1.3 async_pauses=0" ]] ||
	tg_fail "good leaf: $line ($(cat good.out))"
[[ $SC_RC -eq 0 ]] || tg_fail "good leaf: s_client exited $SC_RC"
grep -q "hello $ID resumed=0" good.out || tg_fail "good leaf: no answer: $(cat good.out)"
echo "ok: an hsm-operator leaf is accepted with its identity (TLS 1.3, PEM server key, no pauses)"

# ---- refusals: the handshake fails, with the reason -------------------------
sclient nocert.out "$PORT"
next_line pem.log
[[ $line == "refused: no client certificate: the gate requires a token-backed client certificate" ]] ||
	tg_fail "no certificate: $line"
refused_client nocert
grep -qi "alert certificate required\|alert" nocert.out || tg_fail "no certificate: no alert: $(cat nocert.out)"
echo "ok: no client certificate: $line"

# leaves made with openssl around a PEM key: the provenance extension of
# the good leaf copied in, signed by another CA or by itself
prov=$(openssl asn1parse -in good.pem | grep -A1 ':2.25.55409018484616740550661563879703842270.1' |
	sed -n 's/.*\[HEX DUMP\]://p')
[[ -n $prov ]] || tg_fail "no provenance extension found in good.pem"
ec leaf.key
openssl req -new -key leaf.key -subj /CN=api -out leaf.csr
printf '%s\n' "[e]" "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=clientAuth" \
	"subjectAltName=URI:$ID" "2.25.55409018484616740550661563879703842270.1=DER:$prov" >leaf.cnf
openssl x509 -req -in leaf.csr -CA other/ca.pem -CAkey other/ca.key -days 1 -set_serial 7 \
	-extfile leaf.cnf -extensions e -out otherca.pem 2>/dev/null
openssl x509 -req -in leaf.csr -signkey leaf.key -days 1 -extfile leaf.cnf -extensions e \
	-out selfsigned.pem 2>/dev/null
NOTCA="was not issued by a configured tokengate CA"
sclient otherca.out "$PORT" -cert otherca.pem -key leaf.key
next_line pem.log
[[ $line == "refused: client certificate /CN=api $NOTCA"* ]] || tg_fail "another CA: $line"
refused_client otherca
echo "ok: a leaf of another CA: $line"
sclient selfsigned.out "$PORT" -cert selfsigned.pem -key leaf.key
next_line pem.log
[[ $line == "refused: client certificate /CN=api $NOTCA"* ]] || tg_fail "self-signed: $line"
refused_client selfsigned
echo "ok: a self-signed leaf: $line"

# ---- curl, TLS 1.2 ---------------------------------------------------------
timeout 60 curl -sS --http0.9 --tlsv1.2 --tls-max 1.2 --cacert srvca.pem --cert good.pem \
	--engine pkcs11 --key-type ENG --key "$CKEY" "https://127.0.0.1:$PORT/" >curl.out 2>curl.err ||
	tg_fail "curl: $(cat curl.err)"
grep -q "hello $ID resumed=0" curl.out || tg_fail "curl: $(cat curl.out curl.err)"
next_line pem.log
[[ $line == "accepted identity=$ID "*" version=TLSv1.2 "* ]] || tg_fail "curl TLS 1.2: $line"
echo "ok: curl with the token key over TLS 1.2: $line"

# ---- resumption --------------------------------------------------------------
# resume NAME TLSFLAG: a session, then its resumption; both accepted with
# the same identity, the second resumed
resume() {
	local name=$1 flag=$2
	sclient "$name-1.out" "$PORT" "$flag" -cert good.pem "${hsm[@]}" -sess_out "$name.sess"
	next_line pem.log
	[[ $line == "accepted identity=$ID "*"resumed=0"* ]] || tg_fail "$name: first: $line"
	sclient "$name-2.out" "$PORT" "$flag" -cert good.pem "${hsm[@]}" -sess_in "$name.sess"
	next_line pem.log
	[[ $line == "accepted identity=$ID level=hsm-operator pin=once touch=never resumed=1 "* ]] ||
		tg_fail "$name: resumption: $line"
	[[ $SC_RC -eq 0 ]] || tg_fail "$name: s_client exited $SC_RC"
	grep -q "^Reused, " "$name-2.out" || tg_fail "$name: s_client did not resume: $(cat "$name-2.out")"
	grep -q "hello $ID resumed=1" "$name-2.out" || tg_fail "$name: no answer: $(cat "$name-2.out")"
	echo "ok: $name: resumed with the same identity: $line"
}
resume tls13 -tls1_3
resume tls12 -tls1_2
# the ticket's lifetime: the session's, at most 2 h
hint=$(openssl sess_id -in tls13.sess -noout -text | sed -n 's/.*lifetime hint: \([0-9]*\).*/\1/p')
[[ $hint == 7200 ]] || tg_fail "lifetime hint of a long-lived leaf: '$hint', want 7200"

# ---- a certificate revoked after its session began ---------------------------
sclient victim-1.out "$PORT" -cert victim.pem "${hsm[@]}" -sess_out victim.sess
next_line pem.log
[[ $line == "accepted identity=$ID "*"resumed=0"* ]] || tg_fail "victim: first: $line"
vserial=$(openssl x509 -in victim.pem -noout -serial | cut -d= -f2)
"$TG" ca revoke --dir ca --serial "$vserial"
"$TG" ca crl --dir ca --out crl.pem
sclient victim-2.out "$PORT" -cert victim.pem "${hsm[@]}" -sess_in victim.sess
next_line pem.log
[[ $line == "refused: client certificate "*"is revoked by the configured CRL"* ]] ||
	tg_fail "revoked after the session began: $line"
grep -q "crl: reloaded" pem.log || tg_fail "the CRL was not reloaded: $(cat pem.log)"
grep -q "^Reused, " victim-2.out && tg_fail "revoked: s_client resumed"
refused_client victim-2
echo "ok: a certificate revoked after its session began is refused on resumption: $line"
# the good leaf's session still resumes under the new CRL
sclient tls13-3.out "$PORT" -tls1_3 -cert good.pem "${hsm[@]}" -sess_in tls13.sess
next_line pem.log
[[ $line == "accepted identity=$ID "*"resumed=1"* ]] || tg_fail "good after the CRL: $line"
stop

# ---- no session outlives its certificate -------------------------------------
"$TG" ca issue --dir ca --csr req/csr.pem --id "$ID" --hsm-key "$KEY" --validity 1h --out short.pem >/dev/null
start short --cert srv.pem --key srv.key --ca ca/ca.pem
before=$(date +%s)
sclient short.out "$PORT" -tls1_3 -cert short.pem "${hsm[@]}" -sess_out short.sess
after=$(date +%s)
next_line short.log
[[ $line == "accepted identity=$ID "* ]] || tg_fail "1 h leaf: $line"
hint=$(openssl sess_id -in short.sess -noout -text | sed -n 's/.*lifetime hint: \([0-9]*\).*/\1/p')
na=$(date -u -d "$(openssl x509 -in short.pem -noout -enddate | cut -d= -f2)" +%s)
# the ticket was made between before and after: na - after .. na - before
left=$((na - before))
((hint >= na - after - 1 && hint <= left)) ||
	tg_fail "ticket lifetime of a leaf with $((na - after))..${left}s left: '$hint'"
echo "ok: the ticket of a leaf with ${left}s left lives ${hint}s"
# a reload without a ticket key file keeps resumption (the process's key)
kill -HUP "$PID"
tg_wait_until 20 grep -q "reload: ok" short.log || tg_fail "reload: $(cat short.log)"
sclient short-2.out "$PORT" -tls1_3 -cert short.pem "${hsm[@]}" -sess_in short.sess
next_line short.log
[[ $line == "accepted identity=$ID "*"resumed=1"* ]] || tg_fail "resumption across a reload: $line"
echo "ok: a reload without a ticket key file keeps resumption"
stop

# ---- ticket key files -----------------------------------------------------------
key() { openssl rand -base64 80 | tr -d '\n'; }
K1=$(key)
K2=$(key)
(umask 077 && printf '# gate ticket keys\n%s\n' "$K1" >tk)
start a --cert srv.pem --key srv.key --ca ca/ca.pem --tickets tk
PA=$PID A=$PORT
start b --cert srv.pem --key srv.key --ca ca/ca.pem --tickets tk
PB=$PID B=$PORT
# na NAME PORT ARGS: one good-leaf connection; $line its log line
conn() {
	local log=$1 port=$2
	shift 2
	sclient "$log-c.out" "$port" -cert good.pem "${hsm[@]}" "$@"
	n=$(grep -cE '^(accepted|refused)' "$log.log" || true)
	line=$(grep -E '^(accepted|refused)' "$log.log" | tail -n 1)
}
conn a "$A" -sess_out s1
[[ $line == *"resumed=0"* ]] || tg_fail "a: $line"
conn b "$B" -sess_in s1
[[ $line == "accepted identity=$ID "*"resumed=1"* ]] || tg_fail "b did not resume a's session: $line"
echo "ok: two servers with one ticket key file resume each other's sessions"
# rotation: the new key second (decrypts), then first (encrypts), then
# the old one dropped; every step resumes the session made before it
hup() {
	kill -HUP "$PA" "$PB"
	tg_wait_until 20 bash -c "[[ \$(grep -c 'reload: ok' a.log) -ge $1 && \$(grep -c 'reload: ok' b.log) -ge $1 ]]" ||
		tg_fail "reload $1: $(cat a.log b.log)"
}
(umask 077 && printf '%s\n%s\n' "$K1" "$K2" >tk)
hup 1
conn b "$B" -sess_in s1 -sess_out s2
[[ $line == *"resumed=1"* ]] || tg_fail "rotation, new key second: $line"
(umask 077 && printf '%s\n%s\n' "$K2" "$K1" >tk)
hup 2
conn a "$A" -sess_in s2 -sess_out s3
[[ $line == *"resumed=1"* ]] || tg_fail "rotation, new key first: $line"
(umask 077 && printf '%s\n' "$K2" >tk)
hup 3
conn b "$B" -sess_in s3
[[ $line == *"resumed=1"* ]] || tg_fail "rotation, old key dropped: a session renewed under the new key: $line"
conn a "$A" -sess_in s1
[[ $line == "accepted identity=$ID "*"resumed=0"* ]] || tg_fail "old key dropped: its session must not resume: $line"
echo "ok: rotating the ticket key keeps resumption; a ticket of a dropped key gets a full handshake"
# a bad new file keeps the old keys
(umask 077 && printf '%s\nnot-a-key!\n' "$K2" >tk)
kill -HUP "$PA"
tg_wait_until 20 grep -q "reload: tk line 2: character 4 is not base64" a.log ||
	tg_fail "bad file on reload: $(cat a.log)"
stop "$PA" a
stop "$PB" b

# ---- bad ticket key files: refused with file and line ----------------------------
chk() { "$P" --check --cert srv.pem --key srv.key --ca ca/ca.pem --tickets "$@"; }
(umask 077 && printf '# keys\n\n%s\nAAAA\n' "$K1" >bad1)
tg_expect_exit 2 "bad1 line 4: the key is 3 bytes, a key is 80 bytes" chk bad1
(umask 077 && printf '%s\n%s\n' "$K1" "$K1" >bad2)
tg_expect_exit 2 "bad2 line 2: the key has the name (first 16 bytes) of the key on line 1" chk bad2
(umask 077 && printf '# nothing\n' >bad3)
tg_expect_exit 2 "bad3 holds no session-ticket key" chk bad3
printf '%s\n' "$K1" >open
chmod 644 open
tg_expect_exit 2 "chmod 600" chk open
tg_expect_exit 2 "missing" chk missing
echo "ok: bad ticket key files are refused with file and line"

# ---- the server key on SoftHSM2: signatures off the loop ---------------------
P11="pkcs11:token=$TG_SOFTHSM_TOKEN;type=private?module-path=$TG_SOFTHSM2_MODULE&pin-source=env:TOKENGATE_PIN"
for k in p384 rsa2048; do
	openssl req -new -engine pkcs11 -keyform engine \
		-key "pkcs11:token=$TG_SOFTHSM_TOKEN;object=$k;type=private;pin-value=$TG_SOFTHSM_PIN" \
		-subj /CN=127.0.0.1 -out "srv-$k.csr" 2>/dev/null
	srvcert "srv-$k.pem" "srv-$k.csr"
done
"$P" --check --cert srv-p384.pem --key "${P11/type=/object=p384;type=}" --ca ca/ca.pem >chk.out ||
	tg_fail "pkcs11 key: $(cat "$TG_TMP/chk.out")"
grep -qx "ok async=1" chk.out || tg_fail "pkcs11 key: not async: $(cat chk.out)"
grep -qx "ok async=0" <("$P" --check --cert srv.pem --key srv.key --ca ca/ca.pem) ||
	tg_fail "PEM key: async"
# async KEY CERT NAME ARGS...: a handshake with the server key on the
# token; the probe must see at least one WANT_ASYNC pause
async() {
	local k=$1 cert=$2 name=$3
	shift 3
	start "$name" --cert "$cert" --key "${P11/type=/object=$k;type=}" --ca ca/ca.pem
	sclient "$name.out" "$PORT" -cert good.pem "${hsm[@]}" "$@"
	next_line "$name.log"
	[[ $line =~ ^accepted\ identity=$ID\ .*async_pauses=([0-9]+)$ ]] ||
		tg_fail "$name: $line ($(cat "$name.out" "$name.err"))"
	((BASH_REMATCH[1] >= 1)) || tg_fail "$name: no WANT_ASYNC pause: $line"
	[[ $SC_RC -eq 0 ]] || tg_fail "$name: s_client exited $SC_RC"
	grep -q "hello $ID" "$name.out" || tg_fail "$name: no answer: $(cat "$name.out")"
	echo "ok: $name: $line"
	stop
}
async p384 srv-p384.pem ec-tls13 -tls1_3
async p384 srv-p384.pem ec-tls12 -tls1_2
async rsa2048 srv-rsa2048.pem rsa-pss-tls13 -tls1_3
async rsa2048 srv-rsa2048.pem rsa-pkcs1-tls12 -tls1_2 -sigalgs RSA+SHA256:ECDSA+SHA256
grep -q "Peer signature type: RSA$" rsa-pkcs1-tls12.out || tg_fail "not PKCS#1 v1.5: $(cat rsa-pkcs1-tls12.out)"
grep -q "Peer signature type: RSA-PSS" rsa-pss-tls13.out || tg_fail "not RSA-PSS: $(cat rsa-pss-tls13.out)"
# the certificate from the token too
openssl x509 -in srv-p384.pem -outform DER -out srv-p384.der
pkcs11-tool --module "$TG_SOFTHSM2_MODULE" --token-label "$TG_SOFTHSM_TOKEN" --login --pin "$TG_SOFTHSM_PIN" \
	--write-object srv-p384.der --type cert --id 02 --label p384 >/dev/null 2>&1
async p384 "${P11/type=private/type=cert}" token-cert -tls1_3
grep -q "CN = 127.0.0.1" token-cert.out || tg_fail "token certificate not served"
# connections dropped while their signature is pending (a handshake
# timeout): the signing thread finishes on memory of its own (a use after
# free would stop an ASan build here), the server goes on. OpenSSL keeps a
# paused job whose SSL is freed, so LeakSanitizer is off for this probe.
ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 start abandon --cert srv-p384.pem \
	--key "${P11/type=/object=p384;type=}" --ca ca/ca.pem --abandon 2
for i in 1 2; do
	sclient "abandon-$i.out" "$PORT" -cert good.pem "${hsm[@]}"
	next_line abandon.log
	[[ $line == "abandoned: SSL freed while its signature was pending" ]] || tg_fail "abandon $i: $line"
	refused_client "abandon-$i"
done
sleep 1
sclient abandon-3.out "$PORT" -cert good.pem "${hsm[@]}"
next_line abandon.log
[[ $line == "accepted identity=$ID "*"async_pauses=1" ]] || tg_fail "after two dropped handshakes: $line"
stop
echo "ok: handshakes dropped while the token signs leave the server serving"
# curl against the token key
start curl --cert srv-p384.pem --key "${P11/type=/object=p384;type=}" --ca ca/ca.pem
timeout 60 curl -sS --http0.9 --cacert srvca.pem --cert good.pem --engine pkcs11 --key-type ENG \
	--key "$CKEY" "https://127.0.0.1:$PORT/" >curl2.out 2>curl2.err || tg_fail "curl: $(cat curl2.err)"
next_line curl.log
[[ $line == *"async_pauses="[1-9]* ]] || tg_fail "curl: $line"
echo "ok: curl against the token key: $line"
stop
# a wrong certificate for the token key
tg_expect_exit 2 "is not the key of server certificate" \
	"$P" --check --cert srv.pem --key "${P11/type=/object=p384;type=}" --ca ca/ca.pem
tg_expect_exit 2 "server key 'srv.key' is not the key of server certificate 'srv-p384.pem'" \
	"$P" --check --cert srv-p384.pem --key srv.key --ca ca/ca.pem
# an exportable key is refused as a service key
tg_expect_exit 2 "exportable" \
	"$P" --check --cert srv.pem --key "${P11/type=/object=exportable;type=}" --ca ca/ca.pem
echo "ok: the server key on SoftHSM2 signs off the loop (WANT_ASYNC); PEM keys never pause"
