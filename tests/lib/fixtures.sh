# shellcheck shell=bash
# tests/lib/fixtures.sh — test fixtures for tokengate's shell tests.
#
# Source it from a bash test (after `set -euo pipefail`):
#
#	source "$TG_FIXTURES/fixtures.sh"
#
# Sourcing creates ONE temporary directory for the test ($TG_TMP) and
# installs an EXIT trap that stops every process a fixture started and
# removes $TG_TMP. Do not install your own EXIT trap (it would replace
# ours): register extra cleanup with `tg_on_exit CMD...` instead.
#
# Fixtures (see tests/lib/README.md for the full list of names):
#	tg_softhsm_setup / tg_softhsm_token_add / tg_softhsm_key_add /
#	tg_softhsm_ca_trust /
#	tg_softhsm_default      throw-away SoftHSM2 tokens and keys
#	tg_pcscd_start / tg_pcscd_stop / tg_pcscd_use
#	                        private pcscd (own mount namespace) + vpcd
#	tg_sim_init / tg_sim_start / tg_sim_stop / tg_sim_kill9
#	                        tokengate-sim connected to that pcscd
#	tg_skip / tg_require_cmd / tg_fail / tg_log / tg_wait_until
#
# Every function returns non-zero (after printing a one-line reason on
# stderr) instead of exiting, except tg_skip and tg_fail, so callers may
# test them with `if`. Under `set -e` an unchecked failure ends the test.

if [[ -n ${TG__FIXTURES_LOADED:-} ]]; then
	return 0
fi
TG__FIXTURES_LOADED=1

# ---------------------------------------------------------------------
# Defaults for running a test by hand outside CTest.
# ---------------------------------------------------------------------

TG_FIXTURES=${TG_FIXTURES:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
TG_SOURCE_DIR=${TG_SOURCE_DIR:-$(cd "$TG_FIXTURES/../.." && pwd)}
TG_BUILD_DIR=${TG_BUILD_DIR:-$TG_SOURCE_DIR/build}
TG_BIN_DIR=${TG_BIN_DIR:-$TG_BUILD_DIR/bin}
TG_PCSCD=${TG_PCSCD:-/usr/sbin/pcscd}
TG_VPCD_DRIVER=${TG_VPCD_DRIVER:-/usr/lib/pcsc/drivers/serial/libifdvpcd.so}
if [[ -z ${TG_SOFTHSM2_MODULE:-} ]]; then
	for TG__f in /usr/lib/*/softhsm/libsofthsm2.so /usr/lib/softhsm/libsofthsm2.so; do
		if [[ -e $TG__f ]]; then
			TG_SOFTHSM2_MODULE=$TG__f
			break
		fi
	done
	unset TG__f
fi
TG_SOFTHSM2_MODULE=${TG_SOFTHSM2_MODULE:-libsofthsm2.so}
if [[ -z ${TG_OPENSC_MODULE:-} ]]; then
	for TG__f in /usr/lib/*/opensc-pkcs11.so /usr/lib/opensc-pkcs11.so; do
		if [[ -e $TG__f ]]; then
			TG_OPENSC_MODULE=$TG__f
			break
		fi
	done
	unset TG__f
fi
TG_OPENSC_MODULE=${TG_OPENSC_MODULE:-opensc-pkcs11.so}
export TG_FIXTURES TG_SOURCE_DIR TG_BUILD_DIR TG_BIN_DIR TG_PCSCD \
	TG_VPCD_DRIVER TG_SOFTHSM2_MODULE TG_OPENSC_MODULE

# Upper bound, in seconds, of every wait for a daemon or card to become
# ready (or to go away). Generous: the machine is small and shared. Waits
# end as soon as the condition holds, so this never slows a passing test.
TG_WAIT_SECS=${TG_WAIT_SECS:-60}
# Reader the simulator's card appears in (vpcd slot 0).
TG_READER="Virtual PCD 00 00"
export TG_WAIT_SECS TG_READER
# Tests run Python helpers from the source tree: never leave bytecode there.
export PYTHONDONTWRITEBYTECODE=1

# ---------------------------------------------------------------------
# Messages, skipping, waiting.
# ---------------------------------------------------------------------

# tg_log MSG...: one line on stderr, prefixed with the test's name.
tg_log()
{
	printf '%s: %s\n' "${TG__NAME:-test}" "$*" >&2
}

# tg_fail MSG...: print "FAIL: MSG" and exit 1 (the EXIT trap cleans up).
tg_fail()
{
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

# tg_skip REASON...: print "SKIP: REASON" on stdout and exit 77, which
# CTest reports as skipped (SKIP_RETURN_CODE 77).
tg_skip()
{
	printf 'SKIP: %s\n' "$*"
	exit 77
}

# tg_expect_exit WANT_RC WANT_TEXT CMD...: CMD must exit WANT_RC with
# WANT_TEXT (fixed string) on stderr, else the test fails; CMD's stdout and
# stderr stay in $TG_TMP/out and $TG_TMP/err, and the refusal is printed
# for the test log.
tg_expect_exit()
{
	local want_rc=$1 want=$2 rc=0
	shift 2
	"$@" >"$TG_TMP/out" 2>"$TG_TMP/err" || rc=$?
	[[ $rc -eq $want_rc ]] ||
		tg_fail "expected exit $want_rc, got $rc: $* ($(cat "$TG_TMP/err"))"
	grep -qF -- "$want" "$TG_TMP/err" ||
		tg_fail "expected '$want' in the error of: $*; got: $(cat "$TG_TMP/err")"
	echo "refused as expected: $(cat "$TG_TMP/err")"
}

# Debian package that provides a command, for skip messages.
tg__pkg_of()
{
	case $1 in
	softhsm2-util) echo softhsm2 ;;
	pkcs11-tool | opensc-tool | pkcs15-tool) echo opensc ;;
	p11tool | certtool) echo gnutls-bin ;;
	pcscd) echo pcscd ;;
	unshare | mount) echo util-linux/mount ;;
	ss) echo iproute2 ;;
	yubico-piv-tool) echo yubico-piv-tool ;;
	openssl) echo openssl ;;
	p11-kit) echo p11-kit ;;
	*) echo "the package providing $1" ;;
	esac
}

# tg_asan_build BIN: true when BIN was built with AddressSanitizer (a
# TG_SANITIZE build), whose memory figures mean something else: shadow
# memory, and a quarantine that keeps freed blocks on purpose.
tg_asan_build()
{
	# not piped into grep -q: under pipefail, grep leaving early makes
	# ldd die of SIGPIPE and the pipeline fail although it matched
	local libs syms
	libs=$(ldd "$1" 2>/dev/null || true)
	syms=$(nm -D "$1" 2>/dev/null || true)
	[[ $libs == *libasan* || $syms == *__asan_init* ]]
}

# tg_require_cmd CMD...: skip the test (exit 77) unless every CMD is an
# executable (a name on PATH or a path).
tg_require_cmd()
{
	local c
	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1; then
			tg_skip "required command '$c' not found; install $(tg__pkg_of "${c##*/}") (scripts/install-deps)"
		fi
	done
}

# tg__now_ms: monotonic-enough wall clock in milliseconds.
tg__now_ms()
{
	local t=${EPOCHREALTIME//[!0-9]/}
	echo $((t / 1000))
}

# tg_wait_until SECS CMD...: run CMD every 0.1 s until it succeeds
# (return 0) or SECS seconds have passed (return 1). CMD's output is
# discarded. CMD runs in a subshell: a CMD that exits (or that bash ends)
# counts as "not yet" instead of ending the test with its messages sent
# to /dev/null.
tg_wait_until()
{
	local secs=$1 end
	shift
	end=$(($(tg__now_ms) + secs * 1000))
	while :; do
		if ("$@") >/dev/null 2>&1; then
			return 0
		fi
		if (($(tg__now_ms) >= end)); then
			return 1
		fi
		sleep 0.1
	done
}

# tg__dump FILE [TITLE]: print the last 80 lines of a log file on stderr.
tg__dump()
{
	local f=$1 title=${2:-$1}
	{
		printf -- '----- %s (%s) -----\n' "$title" "$f"
		if [[ -s $f ]]; then
			tail -n 80 "$f"
		else
			echo '(empty)'
		fi
		printf -- '----- end of %s -----\n' "$title"
	} >&2
}

# tg__pid_alive PID: the process exists and is not a zombie.
# (Not st=$(<file): when the process ends between the test and the read,
# bash 5.2 under errexit ends the whole test shell on that failed
# redirection, even inside `if`; `read` just returns non-zero.)
tg__pid_alive()
{
	local st
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	st=${st##*) }
	[[ ${st%% *} != Z ]]
}

# tg__kill_wait PID SECS: SIGTERM, wait up to SECS for the process to
# end, then SIGKILL; reaps it when it is our child.
tg__kill_wait()
{
	local pid=$1 secs=$2
	if tg__pid_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! tg_wait_until "$secs" tg__not tg__pid_alive "$pid"; then
			tg_log "process $pid ignored SIGTERM for ${secs}s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			tg_wait_until "$secs" tg__not tg__pid_alive "$pid" || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

tg__not()
{
	! "$@"
}

# Daemons a fixture starts get SIGTERM from the kernel when the shell that
# started them dies, even by SIGKILL (when its EXIT trap cannot run): no
# orphaned pcscd or simulator keeps a port or a card.
declare -ga TG__PDEATH=()
if command -v setpriv >/dev/null 2>&1; then
	TG__PDEATH=(setpriv --pdeathsig TERM)
fi

# ---------------------------------------------------------------------
# The test's temporary directory and cleanup.
# ---------------------------------------------------------------------

TG__NAME=$(basename "${0:-test}")
TG__NAME=${TG__NAME%.sh}
TG__OWNER=$BASHPID
TG__CLEANED=
declare -ga TG__ON_EXIT=()
declare -ga TG__LOGS=()

TG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tg-${TG__NAME//[^A-Za-z0-9_-]/_}.XXXXXX") || {
	echo "FAIL: cannot create a temporary directory in ${TMPDIR:-/tmp}" >&2
	exit 1
}
export TG_TMP

# tg_on_exit CMD...: run CMD when the test exits, before the fixtures are
# torn down (last registered runs first).
tg_on_exit()
{
	TG__ON_EXIT+=("$(printf '%q ' "$@")")
}

# tg_cleanup: stop everything the fixtures started and remove $TG_TMP.
# Runs from the EXIT trap; safe to call more than once. Set TG_KEEP_TMP=1
# to keep $TG_TMP for inspection.
tg_cleanup()
{
	local i n
	[[ $BASHPID == "$TG__OWNER" ]] || return 0
	[[ -z $TG__CLEANED ]] || return 0
	TG__CLEANED=1
	for ((i = ${#TG__ON_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${TG__ON_EXIT[i]}" || true
	done
	tg__sim_stop_all
	for n in "${!TG__PCSCD_PID[@]}"; do
		tg__pcscd_stop_one "$n"
	done
	if [[ -n ${TG_TMP:-} && -d $TG_TMP ]]; then
		if [[ -n ${TG_KEEP_TMP:-} ]]; then
			tg_log "kept $TG_TMP (TG_KEEP_TMP set)"
		else
			rm -rf -- "$TG_TMP"
		fi
	fi
}

tg__on_exit_trap()
{
	local rc=$? f
	set +e
	trap - EXIT
	if [[ $BASHPID == "$TG__OWNER" ]]; then
		# A failed test shows the logs of the daemons it ran.
		if ((rc != 0 && rc != 77)); then
			for f in "${TG__LOGS[@]}"; do
				[[ -e $f ]] && tg__dump "$f"
			done
			echo "FAIL: $TG__NAME exited with status $rc" >&2
		fi
		tg_cleanup
	fi
	exit "$rc"
}

trap tg__on_exit_trap EXIT
# A command that ends the test through `set -e` says which one it was, so no
# failure is silent (functions inherit the trap: errtrace).
tg__on_err()
{
	echo "ERROR: ${2:-?}:${3:-?}: '$4' failed with status $1" >&2
}
set -o errtrace
trap 'tg__on_err $? "${BASH_SOURCE[0]##*/}" $LINENO "$BASH_COMMAND"' ERR
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------
# SoftHSM2.
# ---------------------------------------------------------------------

TG_SOFTHSM_TOKEN=tg-test
TG_SOFTHSM_PIN=1234
TG_SOFTHSM_SO_PIN=5678
TG__SOFTHSM_READY=
declare -gA TG__SOFTHSM_PINS=()

# tg_softhsm_setup: create a throw-away SoftHSM2 configuration and token
# directory under $TG_TMP/softhsm and export SOFTHSM2_CONF and
# TG_SOFTHSM_DIR (the token directory). Skips (77) when SoftHSM2 or
# pkcs11-tool is missing. Idempotent.
tg_softhsm_setup()
{
	local d=$TG_TMP/softhsm
	# Not the exported TG_SOFTHSM_DIR: a child test inherits that one
	# from a wrapper and must still get a directory of its own.
	if [[ -n $TG__SOFTHSM_READY ]]; then
		return 0
	fi
	tg_require_cmd softhsm2-util pkcs11-tool
	[[ -e $TG_SOFTHSM2_MODULE ]] ||
		tg_skip "SoftHSM2 module '$TG_SOFTHSM2_MODULE' not found; install softhsm2"
	mkdir -p "$d/tokens" || return 1
	cat >"$d/softhsm2.conf" <<EOF || return 1
# throw-away SoftHSM2 configuration of test $TG__NAME
directories.tokendir = $d/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
	SOFTHSM2_CONF=$d/softhsm2.conf
	TG_SOFTHSM_DIR=$d/tokens
	export SOFTHSM2_CONF TG_SOFTHSM_DIR
	TG__SOFTHSM_READY=1
}

# tg_softhsm_token_add LABEL [USER_PIN [SO_PIN]]: initialize a new token
# LABEL in a free slot (defaults: user PIN $TG_SOFTHSM_PIN=1234, SO PIN
# $TG_SOFTHSM_SO_PIN=5678). Calls tg_softhsm_setup first.
tg_softhsm_token_add()
{
	local label=${1:?tg_softhsm_token_add: LABEL missing}
	local pin=${2:-$TG_SOFTHSM_PIN} so_pin=${3:-$TG_SOFTHSM_SO_PIN}
	tg_softhsm_setup || return 1
	if ! softhsm2-util --init-token --free --label "$label" \
		--so-pin "$so_pin" --pin "$pin" \
		>>"$TG_TMP/softhsm/softhsm.log" 2>&1; then
		tg_log "softhsm2-util could not create token '$label'"
		tg__dump "$TG_TMP/softhsm/softhsm.log" softhsm2-util
		return 1
	fi
	TG__SOFTHSM_PINS[$label]=$pin
}

# tg_softhsm_key_add TOKEN TYPE LABEL ID [--exportable]: generate a key
# pair on token TOKEN with pkcs11-tool, logging in with the token's user
# PIN. TYPE is p256, p384 or rsa2048 (or any pkcs11-tool --key-type such
# as EC:secp256r1). ID is hex (e.g. 01). The private key is
# non-exportable (CKA_SENSITIVE=true, CKA_EXTRACTABLE=false) unless
# --exportable is given (CKA_EXTRACTABLE=true; SoftHSM2 still sets
# CKA_SENSITIVE=true, pkcs11-tool cannot clear it).
tg_softhsm_key_add()
{
	local token=${1:?tg_softhsm_key_add: TOKEN missing}
	local type=${2:?tg_softhsm_key_add: TYPE missing}
	local label=${3:?tg_softhsm_key_add: LABEL missing}
	local id=${4:?tg_softhsm_key_add: ID missing}
	local mode=${5:-} keytype flag pin
	case $type in
	p256) keytype=EC:prime256v1 ;;
	p384) keytype=EC:secp384r1 ;;
	rsa2048) keytype=rsa:2048 ;;
	*) keytype=$type ;;
	esac
	case $mode in
	'') flag=--sensitive ;;
	--exportable) flag=--extractable ;;
	*)
		tg_log "tg_softhsm_key_add: unknown option '$mode' (only --exportable)"
		return 2
		;;
	esac
	pin=${TG__SOFTHSM_PINS[$token]:-$TG_SOFTHSM_PIN}
	if ! pkcs11-tool --module "$TG_SOFTHSM2_MODULE" --token-label "$token" \
		--login --pin "$pin" --keypairgen --key-type "$keytype" \
		--label "$label" --id "$id" "$flag" \
		>>"$TG_TMP/softhsm/softhsm.log" 2>&1; then
		tg_log "pkcs11-tool could not generate $type key '$label' (id $id) on token '$token'"
		tg__dump "$TG_TMP/softhsm/softhsm.log" pkcs11-tool
		return 1
	fi
}

# tg_softhsm_default: the standard layout, token "tg-test" (user PIN 1234,
# SO PIN 5678) holding key pairs
#	p256 (id 01, EC P-256), p384 (id 02, EC P-384),
#	rsa2048 (id 03, RSA-2048)        non-exportable,
#	exportable (id 04, EC P-256)     CKA_EXTRACTABLE=true (negative tests).
# Exports SOFTHSM2_CONF, TG_SOFTHSM_DIR, TG_SOFTHSM_TOKEN, TG_SOFTHSM_PIN,
# TG_SOFTHSM_SO_PIN, TG_SOFTHSM_URI and TG_SOFTHSM_KEYS.
tg_softhsm_default()
{
	tg_softhsm_setup || return 1
	tg_softhsm_token_add "$TG_SOFTHSM_TOKEN" "$TG_SOFTHSM_PIN" \
		"$TG_SOFTHSM_SO_PIN" || return 1
	tg_softhsm_key_add "$TG_SOFTHSM_TOKEN" p256 p256 01 || return 1
	tg_softhsm_key_add "$TG_SOFTHSM_TOKEN" p384 p384 02 || return 1
	tg_softhsm_key_add "$TG_SOFTHSM_TOKEN" rsa2048 rsa2048 03 || return 1
	tg_softhsm_key_add "$TG_SOFTHSM_TOKEN" p256 exportable 04 \
		--exportable || return 1
	TG_SOFTHSM_URI="pkcs11:token=$TG_SOFTHSM_TOKEN"
	TG_SOFTHSM_KEYS="p256 p384 rsa2048 exportable"
	export TG_SOFTHSM_TOKEN TG_SOFTHSM_PIN TG_SOFTHSM_SO_PIN \
		TG_SOFTHSM_URI TG_SOFTHSM_KEYS
}

# tg_softhsm_ca_trust CADIR [SERIAL_GLOB]: list SoftHSM2 in the hsm_tokens
# of CADIR/policy.yaml as a test HSM (module $TG_SOFTHSM2_MODULE,
# manufacturer "SoftHSM project", model "SoftHSM v2", serial SERIAL_GLOB,
# default "*"), so the CA certifies SoftHSM2 keys as hsm-operator. Appends
# the key: call it once per CA, on a policy without hsm_tokens.
tg_softhsm_ca_trust()
{
	local dir=${1:?tg_softhsm_ca_trust: CADIR missing} serial=${2:-*}
	[[ -f $dir/policy.yaml ]] || {
		tg_log "tg_softhsm_ca_trust: no $dir/policy.yaml"
		return 1
	}
	cat >>"$dir/policy.yaml" <<EOF || return 1
hsm_tokens:
  - module: "$TG_SOFTHSM2_MODULE"
    manufacturer: "SoftHSM project"
    model: "SoftHSM v2"
    serial: "$serial"
EOF
}

# ---------------------------------------------------------------------
# Private pcscd with the vpcd reader.
# ---------------------------------------------------------------------

declare -gA TG__PCSCD_PID=() TG__PCSCD_PORT=() TG__PCSCD_DIR=()
# vpcd ports are picked from [TG_PORT_MIN, TG_PORT_MAX), below Linux's
# ephemeral range so outgoing connections do not take them.
TG_PORT_MIN=${TG_PORT_MIN:-20000}
TG_PORT_MAX=${TG_PORT_MAX:-32000}

# tg_port_free PORT...: no TCP socket listens on any PORT.
tg_port_free()
{
	local p out
	for p in "$@"; do
		out=$(ss -Hltn "sport = :$p") || return 1
		[[ -z $out ]] || return 1
	done
}

# tg__port_owned PORT PID: PORT is listened on by process PID.
tg__port_owned()
{
	local out
	out=$(ss -Hltnp "sport = :$1" 2>/dev/null) || return 1
	[[ $out == *"pid=$2,"* ]]
}

# tg__port_foreign PORT PID: PORT is listened on by another process.
tg__port_foreign()
{
	local out
	out=$(ss -Hltnp "sport = :$1" 2>/dev/null) || return 1
	[[ -n $out && $out != *"pid=$2,"* ]]
}

# tg_free_port_pair: print a random PORT with PORT and PORT+1 both free.
tg_free_port_pair()
{
	local i p
	for ((i = 0; i < 50; i++)); do
		p=$((TG_PORT_MIN + (RANDOM * 32768 + RANDOM) % (TG_PORT_MAX - TG_PORT_MIN - 1)))
		if tg_port_free "$p" "$((p + 1))"; then
			echo "$p"
			return 0
		fi
	done
	tg_log "no free TCP port pair found in [$TG_PORT_MIN, $TG_PORT_MAX)"
	return 1
}

tg__pcscd_ready()
{
	local pid=$1 d=$2 port=$3
	[[ -S $d/run/pcscd.comm ]] &&
		tg__port_owned "$port" "$pid" &&
		tg__port_owned "$((port + 1))" "$pid"
}

# tg__log_since FILE OFFSET PATTERN: PATTERN occurs in FILE after byte
# OFFSET (the part written by the current attempt).
tg__log_since()
{
	local out
	out=$(tail -c "+$(($2 + 1))" "$1" 2>/dev/null) || return 1
	[[ $out == *"$3"* ]]
}

# Outcome of one pcscd start attempt: 0 ready, 1 failed, 3 port taken.
tg__pcscd_wait()
{
	local pid=$1 d=$2 port=$3 off=$4 end
	end=$(($(tg__now_ms) + TG_WAIT_SECS * 1000))
	while :; do
		if tg__pcscd_ready "$pid" "$d" "$port"; then
			return 0
		fi
		# vpcd could not bind (a port was taken between our check and
		# its bind): pcscd runs on without the reader.
		if tg__log_since "$d/pcscd.log" "$off" "Could not initialize connection to virtual ICC"; then
			return 3
		fi
		if ! tg__pid_alive "$pid"; then
			# vpcd cannot bind a port somebody took since we looked.
			if tg__port_foreign "$port" "$pid" ||
				tg__port_foreign "$((port + 1))" "$pid"; then
				return 3
			fi
			return 1
		fi
		if [[ -S $d/run/pcscd.comm ]] &&
			{ tg__port_foreign "$port" "$pid" ||
				tg__port_foreign "$((port + 1))" "$pid"; }; then
			return 3
		fi
		if (($(tg__now_ms) >= end)); then
			return 1
		fi
		sleep 0.1
	done
}

# tg_pcscd_start [NAME]: start a private pcscd (instance NAME, default
# "default") in its own mount namespace, with a reader.conf.d holding only
# a vpcd reader on a free port pair, and wait until its socket exists and
# vpcd listens. Exports PCSCLITE_CSOCK_NAME (the private socket),
# TG_VPCD_PORT (slot 0; slot 1 is TG_VPCD_PORT+1), TG_READER, and
# TG_PCSCD_LOG. Several instances may run at once; tg_pcscd_use NAME
# switches the exported variables between them. The system's pcscd and
# /run/pcscd/pcscd.comm are never touched. Needs root (mount namespace);
# skips (77) when pcscd, the vpcd driver, unshare or ss are missing.
# Call it in the test's own shell (not inside $(...)), so the EXIT trap
# can stop the daemon.
tg_pcscd_start()
{
	local name=${1:-default} d port pid attempt rc off
	if [[ -n ${TG__PCSCD_PID[$name]:-} ]]; then
		tg_log "tg_pcscd_start: instance '$name' already running"
		return 1
	fi
	tg_require_cmd "$TG_PCSCD" unshare mount ss
	[[ -e $TG_VPCD_DRIVER ]] ||
		tg_skip "vpcd driver '$TG_VPCD_DRIVER' not found; install vsmartcard-vpcd"
	((EUID == 0)) ||
		tg_skip "a private pcscd needs root (unshare -m, mount --bind); run as root"
	d=$TG_TMP/pcscd-${name//[^A-Za-z0-9_-]/_}
	if ((${#d} > 90)); then
		tg_log "socket path under '$d' is too long for a unix socket; set TMPDIR to a shorter directory"
		return 1
	fi
	mkdir -p "$d/run" "$d/conf.d" || return 1
	# The bind mount needs its target; a fresh machine may not have it.
	# Creating the empty directory does not disturb a system pcscd.
	mkdir -p /run/pcscd || return 1
	TG__LOGS+=("$d/pcscd.log")
	for ((attempt = 1; attempt <= 10; attempt++)); do
		port=$(tg_free_port_pair) || return 1
		cat >"$d/conf.d/vpcd" <<EOF || return 1
FRIENDLYNAME "Virtual PCD"
DEVICENAME /dev/null:$(printf '0x%04X' "$port")
LIBPATH $TG_VPCD_DRIVER
CHANNELID $(printf '0x%04X' "$port")
EOF
		rm -f "$d/run/pcscd.comm" "$d/run/pcscd.pid"
		off=$(stat -c %s "$d/pcscd.log" 2>/dev/null) || off=0
		printf -- '--- %s: pcscd attempt %d, vpcd port %d ---\n' \
			"$(date -u +%T)" "$attempt" "$port" >>"$d/pcscd.log"
		# unshare, setpriv and sh all exec, so $! is pcscd itself. -m makes
		# mounts private to the new namespace (unshare's default
		# propagation), so the bind is invisible to everyone else.
		# shellcheck disable=SC2016
		unshare -m "${TG__PDEATH[@]}" sh -c 'mount --bind "$1" /run/pcscd && exec "$2" -f -c "$3" ${4:+-d}' \
			sh "$d/run" "$TG_PCSCD" "$d/conf.d" "${TG_PCSCD_DEBUG:-}" \
			</dev/null >>"$d/pcscd.log" 2>&1 &
		pid=$!
		TG__PCSCD_PID[$name]=$pid
		TG__PCSCD_PORT[$name]=$port
		TG__PCSCD_DIR[$name]=$d
		rc=0
		tg__pcscd_wait "$pid" "$d" "$port" "$off" || rc=$?
		if ((rc == 0)); then
			tg_pcscd_use "$name"
			return 0
		fi
		tg__pcscd_stop_one "$name"
		if ((rc != 3)); then
			if grep -q 'Operation not permitted\|permission denied' "$d/pcscd.log"; then
				tg__dump "$d/pcscd.log" "pcscd $name"
				tg_skip "cannot create a mount namespace here (unshare -m / mount --bind not permitted)"
			fi
			tg_log "private pcscd '$name' (vpcd port $port) not ready within ${TG_WAIT_SECS}s: no socket at $d/run/pcscd.comm or vpcd not listening on ports $port/$((port + 1))"
			tg__dump "$d/pcscd.log" "pcscd $name"
			return 1
		fi
		tg_log "vpcd port $port taken by another process meanwhile; retrying"
	done
	tg_log "private pcscd '$name': gave up after $((attempt - 1)) port collisions"
	tg__dump "$d/pcscd.log" "pcscd $name"
	return 1
}

# tg_pcscd_use NAME: export PCSCLITE_CSOCK_NAME, TG_VPCD_PORT and
# TG_PCSCD_LOG of running instance NAME.
tg_pcscd_use()
{
	local name=${1:-default}
	if [[ -z ${TG__PCSCD_PID[$name]:-} ]]; then
		tg_log "tg_pcscd_use: no running pcscd instance '$name'"
		return 1
	fi
	PCSCLITE_CSOCK_NAME=${TG__PCSCD_DIR[$name]}/run/pcscd.comm
	TG_VPCD_PORT=${TG__PCSCD_PORT[$name]}
	TG_PCSCD_LOG=${TG__PCSCD_DIR[$name]}/pcscd.log
	TG_PCSCD_PID=${TG__PCSCD_PID[$name]}
	export PCSCLITE_CSOCK_NAME TG_VPCD_PORT TG_PCSCD_LOG TG_PCSCD_PID TG_READER
}

tg__pcscd_stop_one()
{
	local name=$1 pid=${TG__PCSCD_PID[$1]:-}
	[[ -n $pid ]] || return 0
	# pcscd is the only process of its mount namespace: when it ends,
	# the namespace and its bind mount go away with it.
	tg__kill_wait "$pid" 10
	if [[ ${PCSCLITE_CSOCK_NAME:-} == "${TG__PCSCD_DIR[$name]}/run/pcscd.comm" ]]; then
		unset PCSCLITE_CSOCK_NAME TG_VPCD_PORT TG_PCSCD_LOG TG_PCSCD_PID
	fi
	unset "TG__PCSCD_PID[$name]" "TG__PCSCD_PORT[$name]"
}

# tg_pcscd_stop [NAME]: stop private pcscd instance NAME (default
# "default") and wait until it has exited (SIGTERM, then SIGKILL after
# 10 s). Stopping an instance that is not running is not an error.
tg_pcscd_stop()
{
	tg__pcscd_stop_one "${1:-default}"
}

# tg_reader_card_present [READER]: opensc-tool -l (on
# $PCSCLITE_CSOCK_NAME) lists READER (default $TG_READER) with a card.
# shellcheck disable=SC2120 # READER is optional
tg_reader_card_present()
{
	local reader=${1:-$TG_READER}
	opensc-tool -l 2>/dev/null | awk -v r="$reader" '
		{ line = $0; sub(/[ \t]+$/, "", line) }
		substr(line, length(line) - length(r) + 1) == r && $2 == "Yes" { found = 1 }
		END { exit !found }'
}

# tg_reader_listed [READER]: opensc-tool -l lists READER (card or not).
# shellcheck disable=SC2120 # READER is optional
tg_reader_listed()
{
	local reader=${1:-$TG_READER}
	opensc-tool -l 2>/dev/null | awk -v r="$reader" '
		{ line = $0; sub(/[ \t]+$/, "", line) }
		substr(line, length(line) - length(r) + 1) == r { found = 1 }
		END { exit !found }'
}

# ---------------------------------------------------------------------
# tokengate-sim, connected to the current private pcscd.
# ---------------------------------------------------------------------

TG__SIM_N=0
declare -ga TG__SIM_PIDS=()

tg__sim_bin()
{
	local b=$TG_BIN_DIR/tokengate-sim
	if [[ ! -x $b ]]; then
		tg_log "simulator '$b' not built; build the tree first (cmake --build <build dir>)"
		return 1
	fi
	echo "$b"
}

# tg_sim_init STATEFILE [ARGS...]: create a new simulated token:
# tokengate-sim init --state STATEFILE ARGS... (its output goes to
# $TG_TMP/sim-init.log, shown on failure). Exports TG_SIM_STATE.
tg_sim_init()
{
	local state=${1:?tg_sim_init: STATEFILE missing} bin log=$TG_TMP/sim-init.log
	shift
	bin=$(tg__sim_bin) || return 1
	printf -- '--- tokengate-sim init --state %s %s\n' "$state" "$*" >>"$log"
	if ! "$bin" init --state "$state" "$@" >>"$log" 2>&1; then
		tg_log "tokengate-sim init --state $state failed"
		tg__dump "$log" "tokengate-sim init"
		return 1
	fi
	TG_SIM_STATE=$state
	export TG_SIM_STATE
}

# tg_sim_start STATEFILE [ARGS...]: run
# tokengate-sim run --state STATEFILE --vpcd 127.0.0.1:$TG_VPCD_PORT ARGS...
# in the background (needs tg_pcscd_start first) and wait until
# opensc-tool -l shows a card in "$TG_READER". Exports TG_SIM_PID,
# TG_SIM_LOG, TG_SIM_STATE. Only one simulator runs per pcscd instance.
tg_sim_start()
{
	local state=${1:?tg_sim_start: STATEFILE missing} bin pid log st end
	shift
	if [[ -z ${TG_VPCD_PORT:-} || -z ${PCSCLITE_CSOCK_NAME:-} ]]; then
		tg_log "tg_sim_start: no private pcscd; call tg_pcscd_start first"
		return 1
	fi
	if [[ -n ${TG_SIM_PID:-} ]] && tg__pid_alive "$TG_SIM_PID"; then
		tg_log "tg_sim_start: simulator $TG_SIM_PID still running; tg_sim_stop it first"
		return 1
	fi
	tg_require_cmd opensc-tool
	bin=$(tg__sim_bin) || return 1
	# A card still shown from a previous simulator would look ready.
	if ! tg_wait_until "$TG_WAIT_SECS" tg__not tg_reader_card_present "$TG_READER"; then
		tg_log "tg_sim_start: '$TG_READER' still shows a card from before; is another simulator connected to port $TG_VPCD_PORT?"
		return 1
	fi
	TG__SIM_N=$((TG__SIM_N + 1))
	log=$TG_TMP/sim.$TG__SIM_N.log
	TG__LOGS+=("$log")
	"${TG__PDEATH[@]}" "$bin" run --state "$state" --vpcd "127.0.0.1:$TG_VPCD_PORT" "$@" \
		</dev/null >"$log" 2>&1 &
	pid=$!
	TG__SIM_PIDS+=("$pid")
	TG_SIM_PID=$pid
	TG_SIM_LOG=$log
	TG_SIM_STATE=$state
	export TG_SIM_PID TG_SIM_LOG TG_SIM_STATE TG_READER
	end=$(($(tg__now_ms) + TG_WAIT_SECS * 1000))
	while ! tg_reader_card_present "$TG_READER"; do
		if ! tg__pid_alive "$pid"; then
			st=0
			wait "$pid" 2>/dev/null || st=$?
			tg_log "tokengate-sim exited (status $st) before its card appeared in '$TG_READER'"
			tg__dump "$log" tokengate-sim
			tg__dump "$TG_PCSCD_LOG" pcscd
			return 1
		fi
		if (($(tg__now_ms) >= end)); then
			tg_log "no card in '$TG_READER' within ${TG_WAIT_SECS}s of starting tokengate-sim (pid $pid, vpcd port $TG_VPCD_PORT)"
			tg__dump "$log" tokengate-sim
			tg__dump "$TG_PCSCD_LOG" pcscd
			return 1
		fi
		sleep 0.1
	done
}

tg__sim_gone()
{
	if [[ -n ${PCSCLITE_CSOCK_NAME:-} ]] && command -v opensc-tool >/dev/null; then
		if ! tg_wait_until "$TG_WAIT_SECS" tg__not tg_reader_card_present "$TG_READER"; then
			tg_log "'$TG_READER' still shows a card ${TG_WAIT_SECS}s after the simulator ended"
			return 1
		fi
	fi
}

# tg_sim_stop: stop the simulator (SIGTERM, SIGKILL after 10 s), then wait
# until pcscd no longer shows its card.
tg_sim_stop()
{
	local pid=${TG_SIM_PID:-}
	[[ -n $pid ]] || return 0
	tg__kill_wait "$pid" 10
	unset TG_SIM_PID
	tg__sim_gone
}

# tg_sim_kill9: kill the simulator with SIGKILL (no chance to save or
# clean up, as a crash or power loss), then wait until pcscd no longer
# shows its card.
tg_sim_kill9()
{
	local pid=${TG_SIM_PID:-}
	[[ -n $pid ]] || return 0
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset TG_SIM_PID
	tg__sim_gone
}

tg__sim_stop_all()
{
	local pid
	for pid in "${TG__SIM_PIDS[@]}"; do
		tg__kill_wait "$pid" 10
	done
	TG__SIM_PIDS=()
	unset TG_SIM_PID
}
