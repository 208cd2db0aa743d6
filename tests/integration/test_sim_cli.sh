#!/usr/bin/env bash
# test_sim_cli.sh — tokengate-sim's command line without a reader: --help
# everywhere, exit codes (0 ok, 1 failed, 2 usage), init (refusal to
# overwrite, --force, the manufacturer CA it creates next to the state
# file, modes 0600), given manufacturer CA and mismatched pairs, and status
# as text and JSON.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/sim_lib.sh"

tg_require_cmd openssl python3
T=$TG_TMP

# expect_rc RC CMD...: CMD exits with RC; output in $T/out.
expect_rc()
{
	local want=$1 rc=0
	shift
	"$@" >"$T/out" 2>&1 || rc=$?
	((rc == want)) || tg_fail "exit $rc, want $want: $* -> $(cat "$T/out")"
}

# --- help and usage -------------------------------------------------------
expect_rc 0 "$SIM_BIN" --help
for c in init run status; do
	expect_rc 0 "$SIM_BIN" "$c" --help
	grep -q "usage: tokengate-sim $c" "$T/out" || tg_fail "$c --help: $(cat "$T/out")"
	expect_rc 2 "$SIM_BIN" "$c" --no-such-option
	grep -q -- "--help" "$T/out" || tg_fail "$c usage error does not point to --help"
	expect_rc 2 "$SIM_BIN" "$c"
	grep -q -- "--state" "$T/out" || tg_fail "$c without --state: $(cat "$T/out")"
done
expect_rc 2 "$SIM_BIN"
expect_rc 2 "$SIM_BIN" frobnicate
expect_rc 2 "$SIM_BIN" init --state "$T/x" --pin 123
expect_rc 2 "$SIM_BIN" init --state "$T/x" --serial 0
expect_rc 2 "$SIM_BIN" init --state "$T/x" --serial 12ab
expect_rc 2 "$SIM_BIN" init --state "$T/x" --mgm-key 0102
expect_rc 2 "$SIM_BIN" init --state "$T/x" --manufacturer-cert "$T/c.pem"
expect_rc 2 "$SIM_BIN" run --state "$T/x" --vpcd nonsense
expect_rc 2 "$SIM_BIN" run --state "$T/x" --touch sometimes
expect_rc 2 "$SIM_BIN" run --state "$T/x" --sign-latency-ms -5
# The option table every subcommand declares (tgcore's tg_cli): the
# message names the subcommand, the option and the way to --help.
sim_usage() { # WANT ARGS...: exit 2 and exactly the line WANT on stderr
	local want=$1
	shift
	expect_rc 2 "$SIM_BIN" "$@"
	[[ $(cat "$T/out") == "$want" ]] || tg_fail "$*: want '$want', got '$(cat "$T/out")'"
}
sim_usage "tokengate-sim init: unknown option '--bogus' (try 'tokengate-sim init --help')" \
	init --state "$T/x" --bogus
sim_usage "tokengate-sim init: option '--state' is given twice (try 'tokengate-sim init --help')" \
	init --state "$T/x" --state "$T/y"
sim_usage "tokengate-sim run: option '--log-json' takes no value (try 'tokengate-sim run --help')" \
	run --state "$T/x" --log-json=1
sim_usage "tokengate-sim status: option '--state' needs a value (try 'tokengate-sim status --help')" \
	status --state
sim_usage "tokengate-sim status: unexpected argument 'extra' (try 'tokengate-sim status --help')" \
	status --state "$T/x" extra
sim_usage "tokengate-sim status: --state FILE is required (try 'tokengate-sim status --help')" \
	status --json
[[ ! -e $T/x ]] || tg_fail "a usage error created $T/x"
echo "ok: --help and usage errors (exit 2)"

# --- init with its own manufacturer CA ------------------------------------
st=$T/a.state
expect_rc 0 "$SIM_BIN" init --state "$st" --serial 42
grep -q "$st.mfr-ca.pem" "$T/out" || tg_fail "init does not say where the CA is: $(cat "$T/out")"
[[ $(stat -c %a "$st") == 600 ]] || tg_fail "state mode $(stat -c %a "$st")"
[[ $(stat -c %a "$st.mfr-ca.key") == 600 ]] || tg_fail "CA key mode $(stat -c %a "$st.mfr-ca.key")"
openssl x509 -in "$st.mfr-ca.pem" -noout -text >"$T/ca.txt"
grep -q 'CA:TRUE' "$T/ca.txt" || tg_fail "manufacturer CA is not CA:TRUE"
grep -q 'Certificate Sign' "$T/ca.txt" || tg_fail "manufacturer CA lacks keyCertSign"
grep -q 'ASN1 OID: prime256v1' "$T/ca.txt" || tg_fail "manufacturer CA is not EC P-256"
openssl verify -check_ss_sig -CAfile "$st.mfr-ca.pem" "$st.mfr-ca.pem" >/dev/null ||
	tg_fail "manufacturer CA is not correctly self-signed"
openssl pkey -in "$st.mfr-ca.key" -noout || tg_fail "CA key unreadable"
echo "ok: init creates state (0600) and an EC P-256 manufacturer CA (key 0600)"

# Refuses to overwrite; --force does, reusing the CA beside it.
sum=$(sha256sum <"$st")
expect_rc 1 "$SIM_BIN" init --state "$st"
grep -q -- '--force' "$T/out" || tg_fail "refusal does not name --force: $(cat "$T/out")"
[[ $(sha256sum <"$st") == "$sum" ]] || tg_fail "refused init changed the state file"
ca=$(sha256sum <"$st.mfr-ca.pem")
expect_rc 0 "$SIM_BIN" init --state "$st" --force --serial 43
grep -q 'using existing manufacturer CA' "$T/out" || tg_fail "--force: $(cat "$T/out")"
[[ $(sha256sum <"$st.mfr-ca.pem") == "$ca" ]] || tg_fail "--force replaced the CA"
[[ $(sha256sum <"$st") != "$sum" ]] || tg_fail "--force did not rewrite the state"
echo "ok: init refuses to overwrite (exit 1), --force rewrites and reuses the CA"

# A state file in a directory that does not exist: the directory is named
# with the fix, not a lock file.
expect_rc 1 "$SIM_BIN" init --state "$T/no-such-dir/card.state"
grep -qF "the state file's directory $T/no-such-dir does not exist: create it with 'mkdir -p $T/no-such-dir' or pass --state with a path in an existing directory" \
	"$T/out" || tg_fail "init into a missing directory: $(cat "$T/out")"
grep -q 'lock' "$T/out" && tg_fail "init into a missing directory blames a lock file: $(cat "$T/out")"
touch "$T/plainfile"
expect_rc 1 "$SIM_BIN" init --state "$T/plainfile/card.state"
grep -qF "the state file's directory $T/plainfile is not a directory" "$T/out" ||
	tg_fail "init under a file: $(cat "$T/out")"
[[ ! -e $T/no-such-dir ]] || tg_fail "init created the missing directory"
echo "ok: init into a missing directory names it and the fix (exit 1)"

# --- status ---------------------------------------------------------------
expect_rc 0 "$SIM_BIN" status --state "$st"
for want in 'serial: *43' 'firmware: *5\.' 'PIN tries left: *3 of 3' 'PUK tries left: *3 of 3' \
	'private-key operations: *0' 'f9 '; do
	grep -Eq "$want" "$T/out" || tg_fail "status lacks /$want/: $(cat "$T/out")"
done
TG_SIM_STATE=$st
[[ $(sim_json serial) == 43 && $(sim_json private_key_operations) == 0 &&
	$(sim_json pin.tries_left) == 3 && $(sim_json puk.tries_left) == 3 ]] ||
	tg_fail "status --json: $("$SIM_BIN" status --state "$st" --json)"
[[ $(sim_slot f9 certificate_subject) == *CN=* ]] ||
	tg_fail "status --json: F9 certificate subject '$(sim_slot f9 certificate_subject)'"
echo "ok: status text and JSON"

# --- init with a given manufacturer CA ------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 10 -subj "/CN=Given Vendor CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
	-keyout "$T/v.key" -out "$T/v.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.key" 2>/dev/null
chmod 600 "$T/v.key" "$T/other.key"
expect_rc 1 "$SIM_BIN" init --state "$T/b.state" --manufacturer-cert "$T/v.pem" \
	--manufacturer-key "$T/other.key"
grep -q 'does not belong' "$T/out" || tg_fail "mismatched pair: $(cat "$T/out")"
[[ ! -e $T/b.state ]] || tg_fail "mismatched pair created a state file"
expect_rc 1 "$SIM_BIN" init --state "$T/b.state" --manufacturer-cert "$T/nope.pem" \
	--manufacturer-key "$T/v.key"
grep -q "$T/nope.pem" "$T/out" || tg_fail "missing cert not named: $(cat "$T/out")"
expect_rc 0 "$SIM_BIN" init --state "$T/b.state" --manufacturer-cert "$T/v.pem" \
	--manufacturer-key "$T/v.key" --pin 87654321 --puk 11223344 \
	--mgm-key 00112233445566778899aabbccddeeff
[[ ! -e $T/b.state.mfr-ca.pem ]] || tg_fail "a CA was created although one was given"
TG_SIM_STATE=$T/b.state
[[ $(sim_json pin.default) == False || $(sim_json pin.default) == false ]] ||
	tg_fail "given PIN reported as default"
[[ $(sim_json management_key.algorithm) == AES128 ]] ||
	tg_fail "32-hex-digit management key is $(sim_json management_key.algorithm), want AES128"
echo "ok: init with a given (RSA) manufacturer CA, PIN, PUK and AES-128 management key"

# --- bad state files ------------------------------------------------------
expect_rc 1 "$SIM_BIN" status --state "$T/missing.state"
grep -q "tokengate-sim init --state $T/missing.state" "$T/out" ||
	tg_fail "missing state: $(cat "$T/out")"
head -c 100 /dev/urandom >"$T/junk.state"
expect_rc 1 "$SIM_BIN" status --state "$T/junk.state"
grep -q "$T/junk.state" "$T/out" || tg_fail "junk state: $(cat "$T/out")"
expect_rc 1 "$SIM_BIN" run --state "$T/junk.state" --vpcd 127.0.0.1:1
echo "ok: missing and junk state files refused (exit 1) with the file named"
echo PASS
