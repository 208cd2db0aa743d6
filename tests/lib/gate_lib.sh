# shellcheck shell=bash
# tests/lib/gate_lib.sh — helpers for the tests of `tokengate gate`.
# Source it after fixtures.sh:
#
#	source "$TG_FIXTURES/fixtures.sh"
#	source "$TG_FIXTURES/gate_lib.sh"
#
#	gate_require                   skip/fail unless the tools and the gate exist
#	gate_pki                       the certificate set, once per test ($PKI)
#	gate_policy_default FILE       the routes most tests use
#	gate_policy_first FILE YAML    a route (YAML lines) put first in FILE's routes
#	gate_upstream_start NAME ARGS  tests/lib/gate_upstream.py in the background
#	gate_start [ARGS...]           `tokengate gate` with the flags, waits for ready
#	gate_ports                     a fresh GATE_PORT / GATE_ADMIN for the next start
#	gate_config_limits LIMITS      GATE_CONFIG: the flags' set-up and limits: {LIMITS}
#	gate_hsm_setup                 SoftHSM2 token, GATE_HSM=1 gate_pki, default
#	                               policy, upstream, gate started; API
#	gate_stop / gate_reload        SIGTERM (waits) / SIGHUP (waits for the reload)
#	gate_leaf / gate_revoke / gate_crl   more leaves, revocation, CRLs
#	gate_client ARGS...            tests/lib/gate_client.py ARGS (one process per
#	                               test, a coprocess started by gate_require)
#	gate_py LEAF ARGS...           gate_client as leaf $PKI/LEAF.pem against the gate
#	gate_curl ARGS... PATH         curl with the SoftHSM2 leaf, key through the
#	                               OpenSSL pkcs11 engine
#	gate_sclient ARGS...           openssl s_client, same key, same engine
#	gate_require_engine            skip unless OpenSSL's pkcs11 engine is there
#	gate_stunnel_start PORT        stunnel (client mode), same key, same engine,
#	                               towards 127.0.0.1:PORT; STUNNEL_PORT/_PID
#	gate_audit_mark / gate_audit_expect COND...   assertions on new audit records
#	gate_metric NAME_AND_LABELS    one value from /metrics
#
# Every gate, upstream and client process a helper starts is stopped at
# exit (tg_on_exit) or ends on its own.

TG=$TG_BIN_DIR/tokengate
GATE_UPSTREAM_PY=$TG_FIXTURES/gate_upstream.py
GATE_CLIENT_PY=$TG_FIXTURES/gate_client.py
TD=example.org

# The audit vocabulary the tests expect (one place to change it).
GATE_EV_TLS=tls-reject       # a refused handshake: reason
GATE_EV_REQ=request          # an HTTP decision: decision allow|deny|dry-run,
                             # request_id, route|null, method, path, status, reason
GATE_EV_RESP=response        # after the response: request_id, status, bytes
GATE_EV_UPERR=upstream-error # 502 / 504 after an allow: kind, status
GATE_EV_TCP=connect          # a tcp-mode decision: decision, route
GATE_EV_CLOSE=close          # a tcp-mode connection's end: bytes_in, bytes_out

# gate_require: the tools every gate test needs, and the gate itself.
gate_require()
{
	tg_require_cmd openssl jq python3 curl ss
	[[ -x $TG ]] || tg_skip "$TG is not built"
	# the interpreter itself, not a version manager's shim (pyenv's costs
	# seconds per start on a loaded machine, and the tests start many)
	GATE_PYTHON=${GATE_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
	export GATE_PYTHON
	# one client process for the whole test (gate_client)
	coproc GATECLI { exec "$GATE_PYTHON" "$GATE_CLIENT_PY" serve 2>>"$TG_TMP/gate_client.err"; }
	GATE_CLI_PID=$GATECLI_PID
	tg_on_exit gate__kill "$GATE_CLI_PID"
	# The gate is part of the tree: a build without it is a failure, not a skip.
	"$TG" gate --help >/dev/null 2>&1 ||
		tg_fail "'tokengate gate --help' failed: this build has no gate command"
}

# ---------------------------------------------------------------------
# Certificates.
# ---------------------------------------------------------------------

# gate_prov_hex LEVEL PIN TOUCH SERIAL: the DER (hex) of a key-provenance
# extension value (docs/provenance.md), built by openssl's ASN.1 generator.
# LEVEL 1 hsm-operator, 2 device-attested; PIN 1 never 2 once 3 always;
# TOUCH 1 never 2 always 3 cached.
gate_prov_hex()
{
	local f=$PKI/prov.$RANDOM.cnf
	{
		echo "asn1=SEQUENCE:prov"
		echo "[prov]"
		echo "version=INTEGER:1"
		echo "level=ENUMERATED:$1"
		echo "serial=UTF8:$4"
		echo "pin=ENUMERATED:$2"
		echo "touch=ENUMERATED:$3"
		if [[ $1 == 2 ]]; then
			echo "att=IMPLICIT:1,FORMAT:HEX,OCTETSTRING:$(printf 'attestation %s' "$4" | sha256sum | cut -c1-64)"
		fi
	} >"$f"
	openssl asn1parse -genconf "$f" -noout -out "$f.der" >/dev/null || return 1
	od -An -v -tx1 "$f.der" | tr -d ' \n' | tr a-f A-F
}

# gate__sign NAME CADIR EXTLINE...: $PKI/NAME.pem, the CSR of $PKI/leaf.key
# signed by CADIR/ca.key with the extension lines; START/END (openssl ca
# date form, YYYYMMDDHHMMSSZ) set the validity, else one day from now.
gate__sign()
{
	local name=$1 ca=$2 start=${START:-} end=${END:-}
	shift 2
	printf '%s\n' "[e]" "$@" >"$PKI/$name.ext"
	[[ -n $start ]] || start=$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)
	[[ -n $end ]] || end=$(date -u -d '+1 day' +%Y%m%d%H%M%SZ)
	gate__ca_cnf
	openssl ca -batch -config "$PKI/sign/ca.cnf" -keyfile "$ca/ca.key" -cert "$ca/ca.pem" \
		-in "$PKI/leaf.csr" -startdate "$start" -enddate "$end" -notext \
		-extfile "$PKI/$name.ext" -extensions e -out "$PKI/$name.pem" 2>"$PKI/$name.err" || {
		cat "$PKI/$name.err" >&2
		return 1
	}
}

# gate_leaf NAME ID LEVEL PIN TOUCH [CADIR]: a software-key leaf
# $PKI/NAME.pem (key $PKI/leaf.key) for identity ID with a provenance
# extension (numbers as gate_prov_hex), signed by the CA (default $PKI/ca).
# The gate cannot tell it from an enrolled one: the CA signed it.
gate_leaf()
{
	local name=$1 id=$2 prov
	prov=$(gate_prov_hex "$3" "$4" "$5" "${GATE_TOKEN_SERIAL:-27182818}") || return 1
	gate__sign "$name" "${6:-$PKI/ca}" "basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" \
		"subjectAltName=URI:$id" "$GATE_PROV_OID=DER:$prov"
}
GATE_PROV_OID=2.25.55409018484616740550661563879703842270.1

# gate_pki: the certificate set of one test, in $PKI ($TG_TMP/pki):
#   ca/            the tokengate CA (`tokengate ca init`, SoftHSM2 trusted)
#   other/         another tokengate CA, not trusted by the gate
#   srvca.pem      the server CA (openssl), server.pem + server.key
#                  (localhost, 127.0.0.1) signed by it
#   leaf.key       the software key of every software leaf below
#   alice.pem      spiffe://TD/dev/alice, device-attested, pin once, touch never
#   bob.pem        spiffe://TD/dev/bob, device-attested, pin always, touch always
#   indexer.pem    spiffe://TD/svc/indexer, hsm-operator, pin once, touch never
# With GATE_HSM=1 (needs tg_softhsm_default first): hsm-api.pem, a real
# leaf of SoftHSM2 key p256 (`tokengate enroll` + `tokengate ca issue`),
# spiffe://TD/svc/api, hsm-operator; its key URI in $GATE_HSM_KEY.
# With GATE_BAD=1 the refused ones: selfsigned, otherca, expired, notyet,
# noprov, copied (alice's provenance under the other CA), wrongeku
# (serverAuth), caleaf (= ca/ca.pem with ca/ca.key), twouris, revoked
# (plus crl0.pem before and crl.pem after its revocation).
gate_pki()
{
	PKI=$TG_TMP/pki
	export PKI
	mkdir -p "$PKI"
	"$TG" ca init --dir "$PKI/ca" --trust-domain "$TD" >/dev/null || return 1
	"$TG" ca init --dir "$PKI/other" --trust-domain "$TD" >/dev/null || return 1
	# the server side: its own CA, unrelated to the client CA
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$PKI/srvca.key" -out "$PKI/srvca.pem" -subj /CN=gate-test-server-ca -days 2 \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		2>/dev/null || return 1
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$PKI/server.key" -out "$PKI/server.csr" -subj /CN=localhost 2>/dev/null || return 1
	printf '%s\n' "[e]" "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=serverAuth" \
		"subjectAltName=DNS:localhost,IP:127.0.0.1" >"$PKI/server.ext"
	openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/srvca.pem" -CAkey "$PKI/srvca.key" \
		-days 2 -set_serial 0x1001 -extfile "$PKI/server.ext" -extensions e \
		-out "$PKI/server.pem" 2>/dev/null || return 1
	chmod 600 "$PKI/server.key"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/leaf.key" 2>/dev/null || return 1
	openssl req -new -key "$PKI/leaf.key" -subj /CN=gate-test-leaf -out "$PKI/leaf.csr" || return 1
	gate_leaf alice "spiffe://$TD/dev/alice" 2 2 1 || return 1
	gate_leaf bob "spiffe://$TD/dev/bob" 2 3 2 || return 1
	gate_leaf indexer "spiffe://$TD/svc/indexer" 1 2 1 || return 1
	if [[ -n ${GATE_HSM:-} ]]; then
		gate__pki_hsm || return 1
	fi
	if [[ -n ${GATE_BAD:-} ]]; then
		gate__pki_bad || return 1
	fi
}

gate__pki_hsm()
{
	[[ -n ${TG_SOFTHSM_TOKEN:-} ]] || {
		tg_log "gate_pki: GATE_HSM=1 needs tg_softhsm_default first"
		return 1
	}
	tg_softhsm_ca_trust "$PKI/ca" || return 1
	GATE_HSM_KEY="pkcs11:token=$TG_SOFTHSM_TOKEN;object=p256;type=private"
	export GATE_HSM_KEY
	TOKENGATE_PIN=$TG_SOFTHSM_PIN "$TG" enroll --key "$GATE_HSM_KEY?module-path=$TG_SOFTHSM2_MODULE" \
		--id "spiffe://$TD/svc/api" --out-dir "$PKI/req" >"$PKI/enroll.out" 2>&1 || {
		cat "$PKI/enroll.out" >&2
		return 1
	}
	TOKENGATE_PIN=$TG_SOFTHSM_PIN "$TG" ca issue --dir "$PKI/ca" --csr "$PKI/req/csr.pem" \
		--id "spiffe://$TD/svc/api" --hsm-key "$GATE_HSM_KEY?module-path=$TG_SOFTHSM2_MODULE" \
		--out "$PKI/hsm-api.pem" >"$PKI/issue.out" 2>&1 || {
		cat "$PKI/issue.out" >&2
		return 1
	}
}

gate__pki_bad()
{
	local prov
	prov=$(gate_prov_hex 2 2 1 27182818) || return 1
	local -a ok=("basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature"
		"extendedKeyUsage=clientAuth" "subjectAltName=URI:spiffe://$TD/dev/mallory")
	local p="$GATE_PROV_OID=DER:$prov"
	openssl req -x509 -key "$PKI/leaf.key" -subj /CN=gate-test-leaf -days 1 -out "$PKI/selfsigned.pem" \
		-addext "${ok[0]}" -addext "${ok[2]}" -addext "${ok[3]}" -addext "$p" 2>/dev/null || return 1
	gate__sign otherca "$PKI/other" "${ok[@]}" "$p" || return 1
	# copied: the provenance under a CA that is no tokengate CA (the server CA)
	mkdir -p "$PKI/srvca"
	cp "$PKI/srvca.pem" "$PKI/srvca/ca.pem"
	cp "$PKI/srvca.key" "$PKI/srvca/ca.key"
	gate__sign copied "$PKI/srvca" "${ok[@]}" "$p" || return 1
	gate__sign noprov "$PKI/ca" "${ok[@]}" || return 1
	gate__sign wrongeku "$PKI/ca" "${ok[0]}" "${ok[1]}" "extendedKeyUsage=serverAuth" "${ok[3]}" "$p" || return 1
	gate__sign twouris "$PKI/ca" "${ok[0]}" "${ok[1]}" "${ok[2]}" \
		"subjectAltName=URI:spiffe://$TD/dev/mallory,URI:spiffe://$TD/dev/alice" "$p" || return 1
	START=20200101000000Z END=20200102000000Z gate__sign expired "$PKI/ca" "${ok[@]}" "$p" || return 1
	START=$(date -u -d '+2 days' +%Y%m%d%H%M%SZ) END=$(date -u -d '+3 days' +%Y%m%d%H%M%SZ) \
		gate__sign notyet "$PKI/ca" "${ok[@]}" "$p" || return 1
	cp "$PKI/ca/ca.pem" "$PKI/caleaf.pem"
	# revoked: a good leaf of the CA, then revoked (openssl ca keeps the
	# CA's revocation database for the leaves made here; the CRL is signed
	# by the tokengate CA's key like one of `tokengate ca crl`)
	gate_leaf revoked "spiffe://$TD/dev/carol" 2 2 1 || return 1
	gate_crl "$PKI/crl0.pem" || return 1
	gate_revoke revoked "$PKI/crl.pem" || return 1
}

# gate__ca_cnf: the openssl ca configuration of $PKI/ca (database in $PKI/sign).
gate__ca_cnf()
{
	local d=$PKI/sign
	mkdir -p "$d"
	[[ -f $d/index.txt ]] || : >"$d/index.txt"
	[[ -f $d/serial ]] || openssl rand -hex 8 >"$d/serial"
	cat >"$d/ca.cnf" <<EOF
[ca]
default_ca=c
[c]
database=$d/index.txt
new_certs_dir=$d
serial=$d/serial
default_md=sha256
default_crl_days=2
policy=p
unique_subject=no
[p]
commonName=supplied
EOF
}

# gate_crl OUT: a CRL of $PKI/ca listing every leaf revoked so far.
gate_crl()
{
	gate__ca_cnf
	openssl ca -batch -config "$PKI/sign/ca.cnf" -keyfile "$PKI/ca/ca.key" -cert "$PKI/ca/ca.pem" \
		-gencrl -out "$1" 2>"$PKI/crl.err" || {
		cat "$PKI/crl.err" >&2
		return 1
	}
}

# gate_revoke NAME OUT: revokes leaf $PKI/NAME.pem (made by gate_leaf or
# gate__sign) and writes the new CRL to OUT.
gate_revoke()
{
	gate__ca_cnf
	openssl ca -batch -config "$PKI/sign/ca.cnf" -keyfile "$PKI/ca/ca.key" -cert "$PKI/ca/ca.pem" \
		-revoke "$PKI/$1.pem" 2>"$PKI/revoke.err" || {
		cat "$PKI/revoke.err" >&2
		return 1
	}
	gate_crl "$2"
}

# gate_key_of NAME: the private key file of leaf NAME.
gate_key_of()
{
	case $1 in
	caleaf) echo "$PKI/ca/ca.key" ;;
	*) echo "$PKI/leaf.key" ;;
	esac
}

# gate_policy_first FILE YAML: the route YAML ("  - name: ...\n    ..."
# lines) put first in FILE's routes, so that it decides before the others.
gate_policy_first()
{
	python3 - "$1" "$2" <<'EOF'
import sys
p, route = sys.argv[1], sys.argv[2]
s = open(p).read().replace("routes:\n", "routes:\n" + route, 1)
open(p, "w").write(s)
EOF
}

# gate_policy_default FILE: the routes of most tests (see the file).
# Identities: dev/alice (device-attested, pin once, touch never), dev/bob
# (device-attested, pin always, touch always), svc/indexer and svc/api
# (hsm-operator).
gate_policy_default()
{
	cat >"$1" <<EOF
routes:
  - name: echo
    paths: ["/echo", "/echo/**"]
    allow:
      - identity: "spiffe://$TD/dev/*"
      - identity: "spiffe://$TD/svc/indexer"
      - identity: "spiffe://$TD/svc/api"
  - name: datasets-read
    methods: [GET, HEAD]
    paths: ["/v1/datasets/**"]
    allow:
      - identity: "spiffe://$TD/dev/*"
        key: device-attested
        pin: once
      - identity: "spiffe://$TD/svc/indexer"
        key: hsm-operator
      - identity: "spiffe://$TD/svc/api"
        key: hsm-operator
  - name: models
    paths: ["/v1/models/**"]
    allow:
      - identity: "spiffe://$TD/dev/*"
        key: device-attested
      - identity: "spiffe://$TD/svc/indexer"
        key: device-attested
      - identity: "spiffe://$TD/svc/api"
        key: device-attested
  - name: pin-always
    paths: ["/v1/pin/**"]
    allow:
      - identity: "spiffe://$TD/dev/*"
        key: device-attested
        pin: always
  - name: touch-always
    paths: ["/v1/touch/**"]
    allow:
      - identity: "spiffe://$TD/dev/*"
        key: device-attested
        touch: always
  - name: admin
    paths: ["/admin/**"]
    allow:
      - identity: "spiffe://$TD/svc/root"
  - name: completions
    methods: [POST]
    paths: ["/v1/chat/completions"]
    inject_headers:
      Authorization: {from: "file:$PKI/llm-key", prefix: "Bearer "}
    allow:
      - identity: "spiffe://$TD/dev/*"
        key: device-attested
  - name: ws
    paths: ["/ws"]
    websocket: true
    allow:
      - identity: "spiffe://$TD/dev/*"
  - name: ws-plain
    paths: ["/ws-plain"]
    allow:
      - identity: "spiffe://$TD/dev/*"
  - name: stream
    paths: ["/sse", "/chunked", "/big", "/slow", "/status/**", "/count", "/close", "/abort"]
    allow:
      - identity: "spiffe://$TD/dev/*"
      - identity: "spiffe://$TD/svc/api"
EOF
	# the injected credential: only the gate reads it
	if [[ ! -f $PKI/llm-key ]]; then
		GATE_SECRET="sk-test-$(openssl rand -hex 16)"
		printf '%s\n' "$GATE_SECRET" >"$PKI/llm-key"
		chmod 600 "$PKI/llm-key"
	fi
	GATE_SECRET=$(head -n1 "$PKI/llm-key")
	export GATE_SECRET
}

# ---------------------------------------------------------------------
# Processes.
# ---------------------------------------------------------------------

# gate_upstream_start NAME ARGS...: gate_upstream.py ARGS (default
# --listen 127.0.0.1:0) in the background, log $TG_TMP/up-NAME.log,
# request log $TG_TMP/up-NAME.jsonl; waits for "ready". Sets UP_PORT (TCP),
# UP_PID, and UP_<NAME>_PORT / UP_<NAME>_PID.
gate_upstream_start()
{
	local name=$1 out=$TG_TMP/up-$1.out pid
	shift
	[[ $# -gt 0 ]] || set -- --listen 127.0.0.1:0
	"${TG__PDEATH[@]}" "$GATE_PYTHON" "$GATE_UPSTREAM_PY" "$@" --log "$TG_TMP/up-$name.jsonl" \
		</dev/null >"$out" 2>"$TG_TMP/up-$name.log" &
	pid=$!
	tg_on_exit gate__kill "$pid"
	TG__LOGS+=("$TG_TMP/up-$name.log")
	if ! tg_wait_until 60 grep -q '^ready' "$out"; then
		tg_log "upstream $name did not print ready within 60 s"
		cat "$TG_TMP/up-$name.log" >&2
		return 1
	fi
	UP_PID=$pid
	UP_PORT=$(sed -n 's/^ready port=//p' "$out")
	printf -v "UP_${name//-/_}_PID" %s "$pid"
	printf -v "UP_${name//-/_}_PORT" %s "$UP_PORT"
}

gate__kill()
{
	tg__kill_wait "$1" 10
}

# gate_ports: picks GATE_PORT (a free port) and GATE_ADMIN (GATE_PORT+1)
# for the next gate_start.
gate_ports()
{
	local port
	port=$(tg_free_port_pair) || return 1
	GATE_PORT=$port
	GATE_ADMIN=127.0.0.1:$((port + 1))
	export GATE_PORT GATE_ADMIN
}

# gate_start [ARGS...]: `tokengate gate` on 127.0.0.1:$GATE_PORT (from
# gate_ports, called here unless GATE_PORT is set) with the server
# certificate, the CA, the upstream $GATE_UPSTREAM (default
# http://127.0.0.1:$UP_PORT), the policy $GATE_POLICY, the audit log
# $GATE_AUDIT and the admin listener $GATE_ADMIN, plus ARGS; with
# GATE_CONFIG set, `tokengate gate --config $GATE_CONFIG ARGS` instead.
# GATE_WRAP (array) is put before the command (e.g. unshare). Waits until
# the log says "tokengate gate: ready" (or GATE_PORT is listened on by the
# gate). Sets GATE_PID, GATE_LOG; GATE_PORT is cleared for the next start
# only by gate_ports.
gate_start()
{
	[[ -n ${GATE_PORT:-} ]] || gate_ports || return 1
	GATE_AUDIT=${GATE_AUDIT:-$TG_TMP/audit.log}
	GATE_POLICY=${GATE_POLICY:-$TG_TMP/policy.yaml}
	GATE_LOG=$TG_TMP/gate.$GATE_PORT.log
	local -a args
	if [[ -n ${GATE_CONFIG:-} ]]; then
		args=(gate --config "$GATE_CONFIG")
	else
		args=(gate --listen "127.0.0.1:$GATE_PORT" --cert "$PKI/server.pem" --key "$PKI/server.key"
			--client-ca "$PKI/ca/ca.pem" --upstream "${GATE_UPSTREAM:-http://127.0.0.1:$UP_PORT}"
			--policy "$GATE_POLICY" --audit "$GATE_AUDIT" --admin "$GATE_ADMIN" --workers 2)
	fi
	# a gate started before on this port: its log (and its "ready") kept apart
	[[ ! -e $GATE_LOG ]] || mv -f "$GATE_LOG" "$GATE_LOG.prev"
	TG__LOGS+=("$GATE_LOG")
	"${TG__PDEATH[@]}" ${GATE_WRAP+"${GATE_WRAP[@]}"} "$TG" "${args[@]}" "$@" </dev/null >"$GATE_LOG" 2>&1 &
	GATE_PID=$!
	tg_on_exit gate__kill "$GATE_PID"
	export GATE_AUDIT GATE_LOG GATE_PID GATE_POLICY
	if ! tg_wait_until 30 gate__ready "$GATE_PID" "$GATE_PORT"; then
		tg_log "the gate did not become ready within 30 s: $TG ${args[*]} $*"
		tg__dump "$GATE_LOG" gate
		return 1
	fi
}

# gate_config_limits LIMITS: GATE_CONFIG ($TG_TMP/gate.yaml) for the next
# gate_start: what gate_start's flags give (one http listener "api" on
# 127.0.0.1:$GATE_PORT in front of the upstream, the server certificate,
# the CA, the policy, the audit log, the admin listener, 2 workers) and
# `limits: {LIMITS}`. Picks the ports (gate_ports) first.
gate_config_limits()
{
	gate_ports || return 1
	GATE_CONFIG=$TG_TMP/gate.yaml
	cat >"$GATE_CONFIG" <<EOF
listeners:
  - name: api
    listen: 127.0.0.1:$GATE_PORT
    upstream: ${GATE_UPSTREAM:-http://127.0.0.1:$UP_PORT}
tls:
  cert: $PKI/server.pem
  key: $PKI/server.key
  client_ca: [$PKI/ca/ca.pem]
policy: ${GATE_POLICY:-$TG_TMP/policy.yaml}
audit: {file: ${GATE_AUDIT:-$TG_TMP/audit.log}}
admin: $GATE_ADMIN
workers: 2
limits: {$1}
EOF
}

gate__ready()
{
	tg__pid_alive "$1" || return 2
	grep -q 'tokengate gate: ready' "$GATE_LOG" && return 0
	tg__port_owned "$2" "$1"
}

# gate_hsm_setup: what the tests of a client with the SoftHSM2 leaf start
# with: the SoftHSM2 token (tg_softhsm_default), the certificate set with
# that leaf (GATE_HSM=1 gate_pki), the default policy in
# $TG_TMP/policy.yaml, the upstream "up" and the gate. API: the leaf's
# identity.
gate_hsm_setup()
{
	tg_softhsm_default || return 1
	GATE_HSM=1 gate_pki || return 1
	gate_policy_default "$TG_TMP/policy.yaml" || return 1
	gate_upstream_start up || return 1
	gate_start || return 1
	API=spiffe://$TD/svc/api
}

# gate__term PID WHAT: SIGTERM to PID (a child of this shell); waits until
# it has exited (SIGKILL after 20 s). Its status in GATE__TERM_RC.
gate__term()
{
	GATE__TERM_RC=0
	kill -TERM "$1" 2>/dev/null || true
	if ! tg_wait_until 20 tg__not tg__pid_alive "$1"; then
		tg_log "$2 ignored SIGTERM for 20 s"
		kill -KILL "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || GATE__TERM_RC=$?
}

# gate_stop: SIGTERM to the gate; waits until it has exited. Its status in
# GATE_RC.
gate_stop()
{
	gate__term "$GATE_PID" "the gate"
	GATE_RC=$GATE__TERM_RC
}

# gate_metric 'NAME{LABELS}': the value of one sample on /metrics (the
# line whose name and labels start with the argument), or "" when absent.
gate_metric()
{
	curl -sS --max-time 5 "http://$GATE_ADMIN/metrics" 2>/dev/null |
		awk -v k="$1" 'index($0, k) == 1 { print $NF; exit }'
}

# gate_reload: SIGHUP, then wait (up to 20 s) for the gate's log line of
# that reload; prints "ok" ("tokengate gate: reload (SIGHUP):
# configuration N in use") or "refused" ("... refused, the previous
# configuration stays in use: WHY").
gate_reload()
{
	local n0 i line
	n0=$(grep -c 'tokengate gate: reload (SIGHUP)' "$GATE_LOG" || true)
	kill -HUP "$GATE_PID"
	for ((i = 0; i < 200; i++)); do
		line=$(grep 'tokengate gate: reload (SIGHUP)' "$GATE_LOG" | sed -n "$((n0 + 1))p" || true)
		if [[ -n $line ]]; then
			if [[ $line == *refused* ]]; then
				echo refused
			else
				echo ok
			fi
			return 0
		fi
		sleep 0.1
	done
	tg_log "gate_reload: no 'tokengate gate: reload (SIGHUP)' line in the gate's log within 20 s of SIGHUP"
	return 1
}

# ---------------------------------------------------------------------
# Clients.
# ---------------------------------------------------------------------

# gate_client ARGS...: tests/lib/gate_client.py ARGS, run by the test's
# client process (started by gate_require) — or as a process of its own
# with GATE_CLIENT_DIRECT=1, which a call running in the background (&)
# must set. Output and exit status as gate_client.py's.
gate_client()
{
	local line a IFS
	# bash closes a coprocess's descriptors in ( ) subshells and pipelines:
	# there, and when asked, the client runs as a process of its own
	if [[ -n ${GATE_CLIENT_DIRECT:-} || -z ${GATE_CLI_PID:-} || ! -e /proc/$BASHPID/fd/${GATECLI[1]:-x} ]]; then
		"$GATE_PYTHON" "$GATE_CLIENT_PY" "$@"
		return
	fi
	for a in "$@"; do
		[[ $a != *$'\n'* && $a != *$'\x1f'* ]] || tg_fail "gate_client: an argument with a newline or \\x1f: use GATE_CLIENT_DIRECT=1"
	done
	IFS=$'\x1f'
	printf '%s\n' "$*" >&"${GATECLI[1]}"
	while IFS= read -r line <&"${GATECLI[0]}"; do
		if [[ $line == '@@end '* ]]; then
			return "${line#@@end }"
		fi
		printf '%s\n' "$line"
	done
	tg_fail "the gate client process ended: $(tail -n 20 "$TG_TMP/gate_client.err")"
}

# gate_py NAME ARGS...: gate_client as leaf NAME ($PKI/NAME.pem and its
# key) against the gate on $GATE_PORT; ARGS as gate_client.py's command
# line after the connection options.
gate_py()
{
	local name=$1
	shift
	gate_client --addr "127.0.0.1:$GATE_PORT" --ca "$PKI/srvca.pem" \
		--cert "$PKI/$name.pem" --key "$(gate_key_of "$name")" "$@"
}

# gate_url PATH: the gate's URL for PATH (https://localhost:PORT/PATH).
gate_url()
{
	echo "https://localhost:$GATE_PORT$1"
}

# gate_curl ARGS...: curl through the gate as the SoftHSM2 leaf: the key
# stays on the token, used through OpenSSL's pkcs11 engine (libp11's
# engine_pkcs11, which loads p11-kit's proxy and so sees SoftHSM2). The
# last argument, when it starts with '/', is a path on the gate (more URLs
# with gate_url), e.g. gate_curl -sS -o out.json /echo.
gate_curl()
{
	local -a a=("$@")
	local last=$((${#a[@]} - 1))
	[[ ${a[last]} != /* ]] || a[last]=$(gate_url "${a[last]}")
	curl --engine pkcs11 --key-type ENG --key "$GATE_HSM_KEY;pin-value=$TG_SOFTHSM_PIN" \
		--cert "$PKI/hsm-api.pem" --cacert "$PKI/srvca.pem" \
		--resolve "localhost:$GATE_PORT:127.0.0.1" --max-time 30 "${a[@]}"
}

# gate_sclient ARGS...: openssl s_client as the SoftHSM2 leaf (pkcs11
# engine, -keyform engine) connected to the gate; ARGS are added (e.g.
# -quiet, -sess_out F, -sess_in F).
gate_sclient()
{
	timeout "${GATE_SCLIENT_TIMEOUT:-20}" openssl s_client -engine pkcs11 -keyform engine \
		-key "$GATE_HSM_KEY;pin-value=$TG_SOFTHSM_PIN" -cert "$PKI/hsm-api.pem" \
		-CAfile "$PKI/srvca.pem" -verify_return_error -connect "127.0.0.1:$GATE_PORT" \
		-servername localhost "$@"
}

# gate_require_engine: skip unless OpenSSL's pkcs11 engine is installed
# (gate_curl, gate_sclient and gate_stunnel_start need it).
gate_require_engine()
{
	compgen -G '/usr/lib/*/engines-3/pkcs11.so' >/dev/null ||
		tg_skip "OpenSSL's pkcs11 engine is missing; install libengine-pkcs11-openssl"
}

# gate_stunnel_start PORT: stunnel4 in client mode with OpenSSL's pkcs11
# engine and the SoftHSM2 leaf (GATE_HSM=1 gate_pki), taking clear text on
# 127.0.0.1:STUNNEL_PORT (a fresh port) to TLS towards 127.0.0.1:PORT (the
# server certificate verified against $PKI/srvca.pem, name localhost). Its
# log: $TG_TMP/stunnel.log, level STUNNEL_DEBUG (default info). Waits (30 s)
# until it listens. Sets STUNNEL_PORT, STUNNEL_PID.
gate_stunnel_start()
{
	local port
	port=$(tg_free_port_pair) || return 1
	STUNNEL_PORT=$port
	cat >"$TG_TMP/stunnel.conf" <<EOF
foreground = yes
pid =
output = $TG_TMP/stunnel.log
debug = ${STUNNEL_DEBUG:-info}
engine = pkcs11
engineCtrl = MODULE_PATH:$TG_SOFTHSM2_MODULE
engineCtrl = PIN:$TG_SOFTHSM_PIN
[tls]
engineId = pkcs11
client = yes
accept = 127.0.0.1:$STUNNEL_PORT
connect = 127.0.0.1:$1
sni = localhost
cert = $PKI/hsm-api.pem
key = $GATE_HSM_KEY
CAfile = $PKI/srvca.pem
verifyChain = yes
checkHost = localhost
EOF
	TG__LOGS+=("$TG_TMP/stunnel.log")
	"${TG__PDEATH[@]}" stunnel4 "$TG_TMP/stunnel.conf" </dev/null >"$TG_TMP/stunnel.out" 2>&1 &
	STUNNEL_PID=$!
	tg_on_exit gate__kill "$STUNNEL_PID"
	export STUNNEL_PORT STUNNEL_PID
	if ! tg_wait_until 30 tg__port_owned "$STUNNEL_PORT" "$STUNNEL_PID"; then
		tg_log "stunnel did not listen on $STUNNEL_PORT: $(cat "$TG_TMP/stunnel.out" "$TG_TMP/stunnel.log" 2>/dev/null | tail -n 30)"
		return 1
	fi
}

# ---------------------------------------------------------------------
# Audit records.
# ---------------------------------------------------------------------

# gate_audit_mark: remember how many lines the audit log has; the next
# gate_audit_expect looks only at lines written after it.
gate_audit_mark()
{
	GATE_AUDIT_MARK=0
	[[ -f $GATE_AUDIT ]] && GATE_AUDIT_MARK=$(wc -l <"$GATE_AUDIT")
	GATE_AUDIT_MARK=${GATE_AUDIT_MARK// /}
}

# gate__audit_new: the records after the mark, one per line.
gate__audit_new()
{
	tail -n "+$((GATE_AUDIT_MARK + 1))" "$GATE_AUDIT" 2>/dev/null
}

# gate__cond COND: splits KEY=VALUE (equals, as text; VALUE null: absent
# or null), KEY!=VALUE (differs) or KEY~TEXT (contains TEXT) into
# GC_KEY (a jq path such as provenance.level), GC_OP (= != ~), GC_VAL: the
# operator is the first '=', '!=' or '~' in COND.
gate__cond()
{
	local c=$1 k=${1%%[=!~]*}
	GC_KEY=$k
	c=${c#"$k"}
	case $c in
	'!='*) GC_OP='!=' GC_VAL=${c#!=} ;;
	'='*) GC_OP='=' GC_VAL=${c#=} ;;
	'~'*) GC_OP='~' GC_VAL=${c#\~} ;;
	*) tg_fail "bad audit condition '$1' (KEY=VALUE, KEY!=VALUE or KEY~TEXT)" ;;
	esac
}

# gate__audit_filter COND...: a jq boolean for the conditions ($vN args).
gate__audit_filter()
{
	local c f="true" i=0 t='(if . == null then "null" else tostring end)'
	for c in "$@"; do
		i=$((i + 1))
		gate__cond "$c"
		case $GC_OP in
		'=') f+=" and ((.${GC_KEY} | $t) == \$v$i)" ;;
		'!=') f+=" and ((.${GC_KEY} | $t) != \$v$i)" ;;
		'~') f+=" and ((.${GC_KEY} // \"\" | tostring) | contains(\$v$i))" ;;
		esac
	done
	echo "$f"
}

gate__audit_jq_args()
{
	local c i=0
	for c in "$@"; do
		i=$((i + 1))
		gate__cond "$c"
		printf '%s\0%s\0%s\0' --arg "v$i" "$GC_VAL"
	done
}

# (no pipe into grep -q: with many records grep leaves early and jq dies of
# SIGPIPE, which pipefail would report as "no match")
gate__audit_match()
{
	local f recs
	local -a args
	f=$(gate__audit_filter "$@")
	mapfile -d '' args < <(gate__audit_jq_args "$@")
	recs=$(gate__audit_new)
	jq -n -e "${args[@]}" "any(inputs; $f)" <<<"$recs" >/dev/null 2>&1
}

# gate_audit_expect COND...: a record written since gate_audit_mark meets
# every COND (see gate__audit_filter); waits up to 10 s for it, else fails
# the test showing the new records. E.g.
#	gate_audit_expect event=request decision=deny route=admin status=403 'reason~touch'
gate_audit_expect()
{
	if ! tg_wait_until 10 gate__audit_match "$@"; then
		tg_log "no new audit record with: $*"
		tg_log "records since the mark:"
		gate__audit_new >&2 || true
		tg_fail "audit record missing: $*"
	fi
}

# gate_audit_none COND...: no record since the mark meets every COND.
gate_audit_none()
{
	if gate__audit_match "$@"; then
		gate__audit_new >&2 || true
		tg_fail "unexpected audit record with: $*"
	fi
}

# gate_audit_last: the last record (JSON) of the audit log.
gate_audit_last()
{
	tail -n 1 "$GATE_AUDIT"
}

# gate_audit_count COND...: how many records since the mark meet COND.
gate_audit_count()
{
	local f
	local -a args
	f=$(gate__audit_filter "$@")
	mapfile -d '' args < <(gate__audit_jq_args "$@")
	gate__audit_new | jq -c "${args[@]}" "select($f)" | wc -l
}
