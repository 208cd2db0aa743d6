# shellcheck shell=bash
# tests/integration/sim_lib.sh — helpers shared by the simulator's
# integration and interop tests (tests/integration/test_sim_*.sh,
# tests/interop/test_sim_*.sh). Source after tests/lib/fixtures.sh.
#
# Factory defaults of a fresh token, as on a new YubiKey (docs/simulator.md).
SIM_PIN=123456
SIM_PUK=12345678
SIM_MGM=010203040506070801020304050607080102030405060708
SIM_BIN=$TG_BIN_DIR/tokengate-sim

[[ -x $SIM_BIN ]] || tg_skip "tokengate-sim not built in $TG_BIN_DIR; build the tree first"

# OpenSC keeps a file cache under $HOME/.cache: give each test its own so
# tokens of other tests (or of the user) never leak in.
export HOME=$TG_TMP/home
mkdir -p "$HOME"

# sim_up [INIT_ARGS... [-- RUN_ARGS...]]: private pcscd, a new token in
# $TG_TMP/card.state, and the simulator serving it (log level info).
sim_up()
{
	local init=() run=()
	while (($# > 0)) && [[ $1 != -- ]]; do
		init+=("$1")
		shift
	done
	(($# > 0)) && shift
	run=("$@")
	tg_pcscd_start
	tg_sim_init "$TG_TMP/card.state" "${init[@]}"
	tg_sim_start "$TG_TMP/card.state" --log-level info "${run[@]}"
}

# ypt ARGS...: yubico-piv-tool on the simulator's reader.
ypt()
{
	yubico-piv-tool -r "$TG_READER" "$@"
}

# p11 ARGS...: pkcs11-tool through OpenSC's PKCS#11 module.
p11()
{
	pkcs11-tool --module "$TG_OPENSC_MODULE" "$@"
}

# expect_fail WHAT CMD...: CMD must fail; its output goes to $TG_TMP/last.out.
expect_fail()
{
	local what=$1
	shift
	if "$@" >"$TG_TMP/last.out" 2>&1; then
		cat "$TG_TMP/last.out" >&2
		tg_fail "$what: succeeded but should have failed: $*"
	fi
}

# run_ok WHAT CMD...: CMD must succeed; its output goes to $TG_TMP/last.out
# and is shown when it fails.
run_ok()
{
	local what=$1
	shift
	if ! "$@" >"$TG_TMP/last.out" 2>&1; then
		cat "$TG_TMP/last.out" >&2
		tg_fail "$what: failed: $*"
	fi
}

# tls_server_cert: a throw-away self-signed localhost server certificate
# (srv.pem, srv.key in the current directory) for an openssl s_server whose
# pid the test keeps in s_server_pid; stop_server ends that server, and runs
# at exit too.
s_server_pid=""
stop_server()
{
	if [[ -n $s_server_pid ]]; then
		kill "$s_server_pid" 2>/dev/null || true
		wait "$s_server_pid" 2>/dev/null || true
		s_server_pid=""
	fi
}
tls_server_cert()
{
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=localhost -keyout srv.key -out srv.pem 2>/dev/null
	tg_on_exit stop_server
}

# sim_json FIELD.PATH: a value from 'tokengate-sim status --json' of the
# current state file, e.g. sim_json pin.tries_left.
sim_json()
{
	"$SIM_BIN" status --state "$TG_SIM_STATE" --json |
		python3 -c 'import json,sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1"
}

# sim_slot SLOT FIELD: FIELD of slot SLOT in 'tokengate-sim status --json'
# ("" when the slot is not listed).
sim_slot()
{
	"$SIM_BIN" status --state "$TG_SIM_STATE" --json |
		python3 -c 'import json,sys
for s in json.load(sys.stdin)["slots"]:
    if s["slot"] == sys.argv[1]:
        print(s.get(sys.argv[2]) or "")' "$1" "$2"
}

# apdu HEX...: send APDUs (after SELECT of the PIV application) with
# opensc-tool; prints the SW of the last one as 4 hex digits.
apdu()
{
	local args=(-r "$TG_READER" -s 00A4040005A000000308) a out
	for a in "$@"; do
		args+=(-s "$a")
	done
	out=$(opensc-tool "${args[@]}" 2>&1) || {
		echo "$out" >&2
		return 1
	}
	local sw
	sw=$(sed -n 's/.*SW1=0x\([0-9A-Fa-f]*\), SW2=0x\([0-9A-Fa-f]*\).*/\1 \2/p' <<<"$out" |
		tail -n 1)
	[[ -n $sw ]] || {
		echo "$out" >&2
		return 1
	}
	# shellcheck disable=SC2086
	set -- $sw
	printf '%02X%02X\n' "$((16#$1))" "$((16#$2))"
}

# gen_cert SLOT ALG [POLICY ARGS...]: generate a key in SLOT on the token and
# import a certificate for it. The certificate is issued by a throw-away
# test CA (openssl, -force_pubkey) rather than self-signed on the token:
# Debian 12's yubico-piv-tool 2.2.0 cannot self-sign with OpenSSL 3
# (Yubico/yubico-piv-tool#388; it fails before sending any APDU). Leaves
# $TG_TMP/SLOT.pub.pem and $TG_TMP/SLOT.cert.pem.
gen_cert()
{
	local slot=$1 alg=$2
	shift 2
	run_ok "generate $alg in $slot" ypt -k"$SIM_MGM" -a generate -s "$slot" -A "$alg" "$@" \
		-o "$TG_TMP/$slot.pub.pem"
	issue_cert "$slot"
	run_ok "import certificate $slot" ypt -k"$SIM_MGM" -a import-certificate -s "$slot" \
		-i "$TG_TMP/$slot.cert.pem"
}

# issue_cert SLOT: $TG_TMP/SLOT.cert.pem for the key in $TG_TMP/SLOT.pub.pem,
# issued by the test CA ($TG_TMP/test-ca.pem, made on first use).
issue_cert()
{
	local slot=$1 d=$TG_TMP
	if [[ ! -e $d/test-ca.pem ]]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
			-subj "/CN=tg-test CA" -keyout "$d/test-ca.key" -out "$d/test-ca.pem" \
			>/dev/null 2>&1 || tg_fail "openssl could not make the test CA"
		# OpenSC takes a PIV key's usages from its certificate: allow
		# signing in every slot (9d would otherwise be decrypt-only).
		printf 'basicConstraints=CA:FALSE\nkeyUsage=%s\n' \
			digitalSignature,nonRepudiation,keyEncipherment,keyAgreement >"$d/test-ca.ext"
	fi
	# The request only carries the subject; its key is replaced.
	run_ok "request for $slot" openssl req -new -key "$d/test-ca.key" -subj "/CN=tg-test $slot" \
		-out "$d/$slot.csr"
	run_ok "issue certificate for $slot" openssl x509 -req -in "$d/$slot.csr" \
		-force_pubkey "$d/$slot.pub.pem" -CA "$d/test-ca.pem" -CAkey "$d/test-ca.key" \
		-extfile "$d/test-ca.ext" -days 30 -set_serial "$RANDOM" -out "$d/$slot.cert.pem"
}

# token_signs SLOT [PIN]: yubico-piv-tool has the token sign (after
# verify-pin) and verifies the signature with the key of
# $TG_TMP/SLOT.cert.pem (action test-signature).
token_signs()
{
	local slot=$1 pin=${2:-$SIM_PIN}
	run_ok "test-signature $slot" ypt -a verify-pin -P "$pin" -a test-signature -s "$slot" \
		-i "$TG_TMP/$slot.cert.pem"
	grep -q 'Successful .* verification' "$TG_TMP/last.out" ||
		tg_fail "test-signature $slot: $(cat "$TG_TMP/last.out")"
}

# same_pubkey A.pem B.pem: both hold the same public key (PEM key or cert).
pubkey_of()
{
	if grep -q 'BEGIN CERTIFICATE' "$1"; then
		openssl x509 -in "$1" -noout -pubkey
	else
		openssl pkey -pubin -in "$1"
	fi
}
same_pubkey()
{
	[[ "$(pubkey_of "$1")" == "$(pubkey_of "$2")" ]]
}
