#!/usr/bin/env bash
# tests/integration/test_doctor.sh — `tokengate doctor` against real
# components: no pcscd, a private pcscd with the vpcd readers, SoftHSM2
# tokens (one with a locked user PIN, one with wrong PINs entered), the JSON
# output, and the simulated PIV card when tokengate-sim is built.
#
# Sub-tests that cannot run here print "SKIP: <reason>" and the others
# still run; the test fails on the first wrong answer.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"

TOKENGATE=$TG_BIN_DIR/tokengate
[[ -x $TOKENGATE ]] || tg_fail "tokengate not built at $TOKENGATE; build the tree first"
tg_require_cmd python3

# Never look at the machine's own SoftHSM tokens: an empty throw-away store.
tg_softhsm_setup

OUT=
RC=0
# doctor ARGS...: runs `tokengate doctor ARGS...`; stdout in $OUT, status in $RC.
doctor()
{
	RC=0
	OUT=$("$TOKENGATE" doctor "$@" 2>"$TG_TMP/doctor.err") || RC=$?
	printf '%s\n' "$OUT" >"$TG_TMP/doctor.out"
}

show_and_fail()
{
	{
		echo "--- tokengate doctor output ---"
		printf '%s\n' "$OUT"
		echo "--- stderr ---"
		cat "$TG_TMP/doctor.err"
	} >&2
	tg_fail "$*"
}

expect_rc()
{
	((RC == $1)) || show_and_fail "$2: exit status $RC, expected $1"
}

# expect TEXT WHY: the output has TEXT (fixed string).
expect()
{
	grep -qF -- "$1" <<<"$OUT" || show_and_fail "$2: output lacks '$1'"
}

# expect_not TEXT WHY: the output does not have TEXT.
expect_not()
{
	if grep -qF -- "$1" <<<"$OUT"; then
		show_and_fail "$2: output has '$1'"
	fi
}

# json_check PYTHON-ASSERTIONS: runs them with `d` = the parsed $OUT.
json_check()
{
	printf '%s' "$OUT" >"$TG_TMP/doctor.json"
	if ! python3 - "$TG_TMP/doctor.json" "$1" 2>"$TG_TMP/json.err" <<'EOF'; then
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
assert set(d) == {"usb", "pcsc", "pkcs11", "problems"}, sorted(d)
assert isinstance(d["problems"], list)
for p in d["problems"]:
    assert set(p) == {"what", "fix"} and p["what"] and p["fix"], p
exec(sys.argv[2])
EOF
		cat "$TG_TMP/json.err" >&2
		show_and_fail "JSON check failed: $1"
	fi
}

# --- command line ---------------------------------------------------------
doctor --help
expect_rc 0 "--help"
expect "usage: tokengate doctor [--json] [--strict] [--help]" "--help"
expect "3 with --strict: the checks ran and found" "--help documents the --strict exit code"
expect "Exit codes:" "--help documents exit codes"
doctor --bogus
expect_rc 2 "unknown option"
grep -qxF "tokengate doctor: unknown option '--bogus' (try 'tokengate doctor --help')" \
	"$TG_TMP/doctor.err" || show_and_fail "unknown option: no one-line error naming it"
doctor --json --json
expect_rc 2 "a repeated option"
grep -qxF "tokengate doctor: option '--json' is given twice (try 'tokengate doctor --help')" \
	"$TG_TMP/doctor.err" || show_and_fail "repeated option: no one-line error naming it"
doctor --strict --bogus
expect_rc 2 "unknown option with --strict"

# Output that cannot be written is a failure (1) with a message, not a crash.
RC=0
"$TOKENGATE" doctor >/dev/full 2>"$TG_TMP/doctor.err" || RC=$?
expect_rc 1 "output to /dev/full"
grep -qF "cannot write the report to standard output" "$TG_TMP/doctor.err" ||
	show_and_fail "output to /dev/full: no one-line error"

# --- 1: no pcscd reachable -------------------------------------------------
export PCSCLITE_CSOCK_NAME=$TG_TMP/no-pcscd/pcscd.comm
doctor
expect_rc 0 "no pcscd"
expect "USB" "no pcscd: USB section"
if [[ ! -d /dev/bus/usb ]]; then
	expect "no devices visible (no /dev/bus/usb or empty)" "no USB bus: says so"
fi
expect "pcscd is not reachable" "no pcscd: PC/SC section"
expect "pcscd is not running (no socket at $PCSCLITE_CSOCK_NAME): start it with 'systemctl start pcscd.socket' (or 'pcscd -f')" \
	"no pcscd: problem line with its fix"
doctor --json
expect_rc 0 "no pcscd, --json"
json_check '
assert d["pcsc"]["reachable"] is False
assert d["pcsc"]["socket"] == "'"$PCSCLITE_CSOCK_NAME"'"
assert d["pcsc"]["readers"] == []
assert any("pcscd is not running" in p["what"] and "pcscd.socket" in p["fix"] for p in d["problems"])
assert d["usb"]["status"] in ("ok", "no-devices", "error")
if '"$([[ -d /dev/bus/usb ]] && echo 0 || echo 1)"':
    assert d["usb"]["status"] == "no-devices" and d["usb"]["devices"] == [], d["usb"]
'
# A socket that exists but where nobody answers is also "not running".
mkdir -p "$TG_TMP/dead"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' \
	"$TG_TMP/dead/pcscd.comm"
PCSCLITE_CSOCK_NAME=$TG_TMP/dead/pcscd.comm doctor
expect_rc 0 "dead pcscd socket"
expect "pcscd is not running: nothing answers on $TG_TMP/dead/pcscd.comm: restart it" \
	"dead pcscd socket: problem line"
# A socket that takes connections but never answers (a hung pcscd): doctor
# gives up on it instead of hanging, and OpenSC (under PKCS#11) then does
# not hang on it either.
mkdir -p "$TG_TMP/hung"
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(16)
print("ready", flush=True); time.sleep(600)' "$TG_TMP/hung/pcscd.comm" >"$TG_TMP/hung/log" 2>&1 &
hung_pid=$!
tg_on_exit kill "$hung_pid"
tg_wait_until 30 grep -q ready "$TG_TMP/hung/log" || tg_fail "hung-pcscd stand-in did not start"
PCSCLITE_CSOCK_NAME=$TG_TMP/hung/pcscd.comm doctor
expect_rc 0 "hung pcscd"
expect "pcscd does not answer on $TG_TMP/hung/pcscd.comm: restart it" "hung pcscd: problem line"
expect "PKCS#11 (modules registered with p11-kit)" "hung pcscd: the PKCS#11 probe still ran"
kill "$hung_pid" 2>/dev/null || true
echo "ok 1 - no pcscd: exit 0, says so, gives the fix"

# --- 3: SoftHSM2 token in the PKCS#11 section ------------------------------
# p11-kit must know SoftHSM2; Debian's softhsm2 package registers it. If it
# is not registered here, register it for this test only (user config).
if ! p11-kit list-modules 2>/dev/null | grep -q softhsm; then
	export HOME=$TG_TMP/home
	mkdir -p "$HOME/.config/pkcs11/modules"
	printf 'module: %s\n' "$TG_SOFTHSM2_MODULE" >"$HOME/.config/pkcs11/modules/softhsm2.module"
fi
tg_softhsm_token_add doctor-ok
doctor
expect_rc 0 "SoftHSM2"
expect "module 'softhsm2' ($TG_SOFTHSM2_MODULE)" "SoftHSM2: module listed with its path"
expect "token 'doctor-ok'" "SoftHSM2: token label"
expect "manufacturer 'SoftHSM project', model 'SoftHSM v2'" "SoftHSM2: token details"
expect_not "token 'doctor-ok' user PIN" "SoftHSM2: a healthy token has no PIN problem"
echo "ok 3 - SoftHSM2 module and token listed"

# --- 5: locked and nearly locked user PINs ---------------------------------
# SoftHSM2 counts wrong PINs only as CKF_USER_PIN_COUNT_LOW (it never locks),
# so the locked state is written into the token's own store: the token flags
# record (CKA_OS_TOKENFLAGS, type 0x8000534B, kind 2 = unsigned long) of the
# file backend gets CKF_USER_PIN_LOCKED, exactly as a token that locked
# itself would report it through C_GetTokenInfo.
tg_softhsm_token_add doctor-locked
tg_softhsm_token_add doctor-wrong
if pkcs11-tool --module "$TG_SOFTHSM2_MODULE" --token-label doctor-wrong --login \
	--pin 0000 --list-objects >"$TG_TMP/wrongpin.log" 2>&1; then
	tg_fail "pkcs11-tool logged in with a wrong PIN"
fi
locked_ok=1
for obj in "$TG_SOFTHSM_DIR"/*/token.object; do
	grep -q doctor-locked "$obj" || continue
	python3 - "$obj" <<'EOF' || locked_ok=0
import struct, sys
CKF_USER_PIN_LOCKED = 0x40000
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(struct.pack(">QQ", 0x8000534B, 2))
if i < 0:
    sys.exit("no token flags record in " + p)
v = struct.unpack(">Q", b[i + 16:i + 24])[0]
b[i + 16:i + 24] = struct.pack(">Q", v | CKF_USER_PIN_LOCKED)
open(p, "wb").write(b)
EOF
done
doctor
expect_rc 0 "PIN states"
expect "token 'doctor-wrong' user PIN count is low (wrong PINs were entered): check which PIN" \
	"count low after a wrong PIN"
if ((locked_ok)); then
	expect "token 'doctor-locked' user PIN is locked: unblock it with the SO PIN (pkcs11-tool --module $TG_SOFTHSM2_MODULE --token-label 'doctor-locked' --login --login-type so --init-pin)" \
		"locked PIN: problem line with its fix"
	expect "pin-locked" "locked PIN: flag shown"
	echo "ok 5 - locked and low-count user PINs reported with their fixes"
else
	echo "SKIP: 5 (locked PIN) - this SoftHSM2 store has no token flags record to set; count-low part passed"
fi

# --- 4: JSON -----------------------------------------------------------
doctor --json
expect_rc 0 "--json"
json_check '
mods = {m["name"]: m for m in d["pkcs11"]["modules"]}
assert "softhsm2" in mods, sorted(mods)
toks = {s["token"]["label"]: s["token"] for s in mods["softhsm2"]["slots"] if s["token"]}
assert "doctor-ok" in toks, sorted(toks)
assert toks["doctor-ok"]["model"] == "SoftHSM v2"
assert "login-required" in toks["doctor-ok"]["flags"]
assert "pin-count-low" in toks["doctor-wrong"]["flags"]
if '"$locked_ok"':
    assert "pin-locked" in toks["doctor-locked"]["flags"]
    assert any(p["what"] == "token '"'doctor-locked'"' user PIN is locked" for p in d["problems"])
assert isinstance(d["usb"]["devices"], list)
'
echo "ok 4 - --json is one object with usb, pcsc, pkcs11, problems"

# --- 2: private pcscd with the vpcd readers --------------------------------
if ((EUID != 0)) || ! command -v unshare >/dev/null || [[ ! -x $TG_PCSCD ]] ||
	[[ ! -e $TG_VPCD_DRIVER ]]; then
	echo "SKIP: 2 and 6 - a private pcscd needs root, unshare, pcscd and the vpcd driver"
	exit 0
fi
unset PCSCLITE_CSOCK_NAME
tg_pcscd_start
doctor
expect_rc 0 "private pcscd"
expect "PC/SC (pcscd socket $PCSCLITE_CSOCK_NAME)" "private pcscd: socket shown"
expect "pcscd is running" "private pcscd: reachable"
expect "reader 'Virtual PCD 00 00': no card" "private pcscd: slot 0 listed"
expect "reader 'Virtual PCD 00 01': no card" "private pcscd: slot 1 listed"
expect "reader 'Virtual PCD 00 00' has no card: insert the token" "private pcscd: problem line"
expect_not "pcscd is not running" "private pcscd"
doctor --json
json_check '
p = d["pcsc"]
assert p["reachable"] is True and p["error"] is None
names = [r["name"] for r in p["readers"]]
assert "Virtual PCD 00 00" in names and "Virtual PCD 00 01" in names, names
assert all(r["card_present"] is False and r["atr"] is None for r in p["readers"])
'
echo "ok 2 - private pcscd: Virtual PCD readers listed, no card"

# --- 6: the simulated PIV card -----------------------------------------------
if [[ ! -x $TG_BIN_DIR/tokengate-sim ]]; then
	echo "SKIP: 6 - tokengate-sim is not built in $TG_BIN_DIR"
	exit 0
fi
if ! tg_sim_init "$TG_TMP/card.state" || ! tg_sim_start "$TG_TMP/card.state"; then
	echo "SKIP: 6 - tokengate-sim is built but its card did not come up (see the log above)"
	exit 0
fi
doctor
expect_rc 0 "simulated card"
expect "reader 'Virtual PCD 00 00': card present, ATR 3B" "simulated card: ATR shown"
expect "YubiKey-compatible PIV token" "simulated card: PIV hint"
expect_not "reader 'Virtual PCD 00 00' has no card" "simulated card"
if p11-kit list-modules 2>/dev/null | grep -q opensc; then
	expect_not "is not seen by any PKCS#11 module" "simulated card: OpenSC shows its token"
fi
doctor --json
json_check '
r = {r["name"]: r for r in d["pcsc"]["readers"]}["Virtual PCD 00 00"]
assert r["card_present"] is True
assert r["atr"].startswith("3B") and len(r["atr"]) % 2 == 0, r["atr"]
assert "YubiKey-compatible PIV token" in r["hint"], r["hint"]
'
echo "ok 6 - simulated card: ATR and PIV hint"

# --- 7: the simulated card's PIN blocked, then unblocked with the fix given --
tg_require_cmd yubico-piv-tool
for _ in 1 2 3; do
	if yubico-piv-tool -r "$TG_READER" -a verify-pin -P 000000 >>"$TG_TMP/piv.log" 2>&1; then
		tg_fail "yubico-piv-tool accepted a wrong PIN"
	fi
done
doctor
expect_rc 0 "blocked PIV PIN"
expect "user PIN is locked: unblock it with the PUK (yubico-piv-tool -a unblock-pin)" \
	"blocked PIV PIN: problem line with the PUK fix"
# The fix as given (plus the reader, since the default filter is "Yubikey").
yubico-piv-tool -r "$TG_READER" -a unblock-pin -P 12345678 -N 123456 >>"$TG_TMP/piv.log" 2>&1 ||
	{ cat "$TG_TMP/piv.log" >&2; tg_fail "unblock-pin with the default PUK failed"; }
doctor
expect_rc 0 "unblocked PIV PIN"
expect_not "unblock it with the PUK" "after unblock-pin"
echo "ok 7 - blocked PIV PIN reported; the fix given unblocks it"

# --- 8: default PIN, PUK and management key, without spending a PIN try -----
# pin_tries: the simulated card's PIN tries left, from its state file.
pin_tries()
{
	"$TG_BIN_DIR/tokengate-sim" status --state "$TG_SIM_STATE" |
		sed -n 's/^ *PIN tries left: *\([0-9]*\) of.*/\1/p'
}
# One wrong PIN first (3 -> 2): a doctor that tried the default PIN would
# either reset the counter (right PIN, back to 3) or lower it (wrong, 1).
if yubico-piv-tool -r "$TG_READER" -a verify-pin -P 000000 >>"$TG_TMP/piv.log" 2>&1; then
	tg_fail "yubico-piv-tool accepted a wrong PIN"
fi
[[ $(pin_tries) == 2 ]] || tg_fail "PIN tries after one wrong PIN: '$(pin_tries)', expected 2"
doctor
expect_rc 0 "default PIN and key, no --strict"
expect "the PIV token in reader '$TG_READER' still has the default PIN (123456): change it: yubico-piv-tool -r '$TG_READER' -a change-pin (it asks for the current and the new PIN)" \
	"default PIN: problem line with its fix"
expect "the PIV token in reader '$TG_READER' still has the default PUK (12345678): change it: yubico-piv-tool -r '$TG_READER' -a change-puk" \
	"default PUK: problem line with its fix"
expect "the PIV token in reader '$TG_READER' still has the default management key (010203...0708): set a new one and keep it safe (enrollment needs it): yubico-piv-tool -r '$TG_READER' -a set-mgm-key" \
	"default management key: problem line with its fix"
expect "PIV: default PIN yes, default PUK yes, default management key yes" "PIV line of the reader"
[[ $(pin_tries) == 2 ]] || tg_fail "doctor changed the PIN retry counter: '$(pin_tries)' tries left, expected 2"
doctor --strict
expect_rc 3 "--strict with problems"
expect "still has the default PIN (123456)" "--strict still prints the report"
doctor --json --strict
expect_rc 3 "--json --strict with problems"
json_check '
r = {r["name"]: r for r in d["pcsc"]["readers"]}["'"$TG_READER"'"]
assert r["piv"] == {"pin_default": True, "puk_default": True, "management_key_default": True}, r["piv"]
assert any("still has the default PIN" in p["what"] for p in d["problems"])
'
[[ $(pin_tries) == 2 ]] || tg_fail "doctor --strict changed the PIN retry counter: '$(pin_tries)' left"
echo "ok 8 - default PIN, PUK and management key reported without a PIN try; --strict exits 3"

# Changed with yubico-piv-tool: no more warnings about them.
yubico-piv-tool -r "$TG_READER" -a change-pin -P 123456 -N 24681357 >>"$TG_TMP/piv.log" 2>&1 ||
	{ cat "$TG_TMP/piv.log" >&2; tg_fail "change-pin failed"; }
yubico-piv-tool -r "$TG_READER" -a change-puk -P 12345678 -N 86427531 >>"$TG_TMP/piv.log" 2>&1 ||
	{ cat "$TG_TMP/piv.log" >&2; tg_fail "change-puk failed"; }
yubico-piv-tool -r "$TG_READER" -a set-mgm-key \
	-n 0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071 >>"$TG_TMP/piv.log" 2>&1 ||
	{ cat "$TG_TMP/piv.log" >&2; tg_fail "set-mgm-key failed"; }
doctor
expect_rc 0 "changed PIN and key"
expect_not "still has the default" "after changing PIN, PUK and management key"
expect "PIV: default PIN no, default PUK no, default management key no" "PIV line after the change"
# --strict is 0 when nothing is wrong: drop the SoftHSM tokens with PIN
# problems from section 5 first.
for t in doctor-locked doctor-wrong; do
	softhsm2-util --delete-token --token "$t" >>"$TG_TMP/softhsm.log" 2>&1 ||
		tg_fail "cannot delete SoftHSM token $t"
done
doctor --strict
if ((RC == 0)); then
	expect "No problems found." "--strict without problems"
	echo "ok 9 - changed PIN, PUK and key: no warnings; --strict exits 0 without problems"
else
	expect_rc 3 "--strict"
	grep -q '^  - ' <<<"$OUT" || show_and_fail "--strict exit 3 without a problem listed"
	echo "ok 9 - changed PIN, PUK and key: no warnings (--strict 0 not checked: this machine has other problems)"
fi
