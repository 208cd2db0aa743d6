#!/usr/bin/env bash
# test_sim_cli_errors.sh — tokengate-sim's refusals that test_sim_cli.sh
# leaves out, each with its exit code and exact message: state files of
# another version, damaged (checksum) and well-checksummed but malformed;
# init's management-key and PUK usage errors; a lone manufacturer CA file
# beside the state; a state path that is a directory.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/sim_lib.sh"

tg_require_cmd python3
T=$TG_TMP

# expect_rc RC CMD...: CMD exits with RC; output in $T/out.
expect_rc()
{
	local want=$1 rc=0
	shift
	"$@" >"$T/out" 2>&1 || rc=$?
	((rc == want)) || tg_fail "exit $rc, want $want: $* -> $(cat "$T/out")"
}

# expect_msg TEXT: $T/out holds TEXT (fixed string).
expect_msg()
{
	grep -qF -- "$1" "$T/out" || tg_fail "want '$1' in: $(cat "$T/out")"
}

# reseal FILE OFFSET BYTE: sets one byte (OFFSET < 0: cut the body to
# -OFFSET bytes) and writes a fresh SHA-256 trailer, so only the edit is
# wrong.
reseal()
{
	python3 - "$@" <<'PY'
import hashlib, sys
path, off, byte = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 16)
b = bytearray(open(path, 'rb').read()[:-32])
if off >= 0:
    b[off] = byte
else:
    b = b[:6 - off]
open(path, 'wb').write(bytes(b) + hashlib.sha256(b).digest())
PY
}

# --- damaged state files -------------------------------------------------
st=$T/a.state
expect_rc 0 "$SIM_BIN" init --state "$st"
cp "$st" "$T/v2.state"
reseal "$T/v2.state" 5 02
expect_rc 1 "$SIM_BIN" status --state "$T/v2.state"
expect_msg "state file $T/v2.state was written by another version of tokengate-sim; use that version or create a new token with 'tokengate-sim init'"
cp "$st" "$T/sum.state"
printf '\x00' | dd of="$T/sum.state" bs=1 seek=$(($(stat -c %s "$st") - 1)) conv=notrunc 2>/dev/null
cmp -s "$st" "$T/sum.state" && printf '\x01' | dd of="$T/sum.state" bs=1 \
	seek=$(($(stat -c %s "$st") - 1)) conv=notrunc 2>/dev/null
expect_rc 1 "$SIM_BIN" status --state "$T/sum.state"
expect_msg "state file $T/sum.state is damaged (checksum mismatch); restore it from a backup or create a new token with 'tokengate-sim init --force'"
cp "$st" "$T/cut.state"
reseal "$T/cut.state" -40 00
expect_rc 1 "$SIM_BIN" status --state "$T/cut.state"
expect_msg "$T/cut.state is not a tokengate-sim state file ("
expect_msg "); pass the file written by 'tokengate-sim init'"
# run refuses them the same way, before touching any reader
expect_rc 1 "$SIM_BIN" run --state "$T/v2.state" --vpcd 127.0.0.1:1
expect_msg "written by another version of tokengate-sim"
echo "ok: state files of another version, damaged and malformed refused (exit 1)"

# --- status cannot write its output ----------------------------------------
if [[ -w /dev/full ]]; then
	rc=0
	"$SIM_BIN" status --state "$st" >/dev/full 2>"$T/out" || rc=$?
	((rc == 1)) || tg_fail "status to /dev/full: exit $rc, want 1: $(cat "$T/out")"
	expect_msg "tokengate-sim status: input/output error"
	echo "ok: status whose output cannot be written fails (exit 1)"
fi

# --- init usage errors ----------------------------------------------------
init_usage() { # WANT ARGS...: exit 2 and exactly the line WANT
	local want=$1
	shift
	expect_rc 2 "$SIM_BIN" init --state "$T/u.state" "$@"
	[[ $(cat "$T/out") == "tokengate-sim init: $want (try 'tokengate-sim init --help')" ]] ||
		tg_fail "init $*: got '$(cat "$T/out")'"
	[[ ! -e $T/u.state ]] || tg_fail "a usage error created $T/u.state"
}
init_usage "--puk must have 6 to 8 characters" --puk 12345
init_usage "--puk must have 6 to 8 characters" --puk 123456789
init_usage "--mgm-key-alg needs --mgm-key" --mgm-key-alg aes128
init_usage "--mgm-key must be 32, 48 or 64 hexadecimal digits" --mgm-key 00112233zz
init_usage "--mgm-key-alg 'rsa2048' is not one of 3des, aes128, aes192, aes256" \
	--mgm-key 00112233445566778899aabbccddeeff --mgm-key-alg rsa2048
init_usage "--mgm-key has 16 bytes but aes256 keys have 32" \
	--mgm-key 00112233445566778899aabbccddeeff --mgm-key-alg aes256
init_usage "--mgm-key has 20 bytes but 3des keys have 24" \
	--mgm-key 00112233445566778899aabbccddeeff00112233
# 48 digits named AES-192: accepted as such
expect_rc 0 "$SIM_BIN" init --state "$T/aes192.state" \
	--mgm-key 00112233445566778899aabbccddeeff0011223344556677 --mgm-key-alg aes192
TG_SIM_STATE=$T/aes192.state
[[ $(sim_json management_key.algorithm) == AES192 ]] ||
	tg_fail "--mgm-key-alg aes192 gave $(sim_json management_key.algorithm)"
echo "ok: init's management key and PUK usage errors (exit 2), AES-192 by name"

# --- manufacturer CA and state path --------------------------------------
cp "$st.mfr-ca.pem" "$T/lone.state.mfr-ca.pem"
expect_rc 1 "$SIM_BIN" init --state "$T/lone.state"
expect_msg "found $T/lone.state.mfr-ca.pem but not $T/lone.state.mfr-ca.key; remove the lone file or pass --manufacturer-cert/--manufacturer-key"
[[ ! -e $T/lone.state ]] || tg_fail "a lone CA file still gave a state file"
mkdir "$T/dir.state"
expect_rc 1 "$SIM_BIN" init --state "$T/dir.state" --force
expect_msg "cannot write '$T/dir.state': cannot rename the temporary file over it"
[[ -d $T/dir.state ]] || tg_fail "the directory at the state path was replaced"
[[ -z $(find "$T" -maxdepth 1 -name '.dir.state.*') ]] || tg_fail "temporary file left behind"
echo "ok: a lone CA file and a directory at the state path refused (exit 1)"
echo PASS
