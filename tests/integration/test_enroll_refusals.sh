#!/usr/bin/env bash
# test_enroll_refusals.sh — every refusal of `tokengate enroll` on the
# simulated PIV token, each with the message a user can act on: the factory
# default management key (refused, then accepted with
# --allow-default-mgm-key), no management key, a wrong management key, a
# wrong PIN (tries left shown, and the token's counter really went down),
# a reader that does not exist (the readers present are listed), an
# imported key (the token cannot attest it), the CA's PIN and touch
# policies (before and after GENERATE), a CA that does not trust the token's
# manufacturer, an identity outside the trust domain, an AES management key
# of the wrong length, a PIN counted down to blocked, a touch not given, and
# command-line errors (exit 2), and a token whose attestation is for another
# key than the one it generated (the simulator's attest-other-key fault).
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_SOURCE_DIR/tests/integration/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool openssl jq
TG=$TG_BIN_DIR/tokengate
[[ -x $TG ]] || tg_skip "$TG is not built"
T=$TG_TMP
cd "$T"
TD=example.org
MGM=0F0E0D0C0B0A09080706050403020100F0E0D0C0B0A09080

# refused WANT_EXIT WANT_TEXT CMD...: CMD exits WANT_EXIT and its stderr
# ($T/err) holds WANT_TEXT.
refused()
{
	tg_expect_exit "$@"
}

sim_up --serial 27182818
mkdir -p roots other-roots
cp "$T/card.state.mfr-ca.pem" roots/sim-mfr.pem
"$TG" ca init --dir ca --trust-domain "$TD" --attestation-roots "$T/roots" >/dev/null
unset TOKENGATE_MGM_KEY TOKENGATE_PIN
export TOKENGATE_PIN=$SIM_PIN
enroll()
{
	"$TG" enroll --reader "$TG_READER" --id "spiffe://$TD/dev/alice" --ca-dir ca "$@"
}

# command line
refused 2 "give --ca-dir DIR (local CA) or --out-dir DIR" enroll --slot 9a --out-dir x
refused 2 "--slot '9b': want 9a, 9c, 9d or 9e" enroll --slot 9b
refused 2 "--pin-policy 'sometimes'" enroll --slot 9a --pin-policy sometimes
# the option table (tgcore's tg_cli): a repeated option is not silently
# the last one, a PIN on the command line is pointed to the PIN sources
refused 2 "tokengate enroll: option '--slot' is given twice (try 'tokengate enroll --help')" \
	enroll --slot 9a --slot 9c
refused 2 "tokengate enroll: unknown option '--pin': a PIN is never taken on the command line" \
	enroll --slot 9a --pin 123456
refused 2 "tokengate enroll: option '--json' takes no value" enroll --slot 9a --json=yes
refused 2 "is not a spiffe:// URI" "$TG" enroll --reader "$TG_READER" --slot 9a --id https://x \
	--ca-dir ca

# reader not found: the readers present are listed
refused 1 "no reader matches 'No Such Reader'; readers present: 'Virtual PCD 00 00', 'Virtual PCD 00 01'" \
	"$TG" enroll --reader "No Such Reader" --slot 9a --id "spiffe://$TD/dev/alice" --ca-dir ca \
	--mgm-key "$MGM"
refused 1 "2 readers match 'Virtual'" \
	"$TG" enroll --reader "Virtual" --slot 9a --id "spiffe://$TD/dev/alice" --ca-dir ca \
	--mgm-key "$MGM"

# a reader without a card, and no pcscd at all
refused 1 "no token in the reader: insert it and try again" \
	"$TG" enroll --reader "PCD 00 01" --slot 9a --id "spiffe://$TD/dev/alice" --ca-dir ca \
	--mgm-key "$MGM"
PCSCLITE_CSOCK_NAME=$T/no-such-pcscd.comm refused 1 "pcscd is not running" \
	"$TG" enroll --reader "$TG_READER" --slot 9a --id "spiffe://$TD/dev/alice" --ca-dir ca \
	--mgm-key "$MGM"

# the factory default management key: refused (given or not), with the fix
refused 1 "no management key: give --mgm-key HEX or set TOKENGATE_MGM_KEY" enroll --slot 9a
refused 1 "still has the factory default management key" enroll --slot 9a --mgm-key "$SIM_MGM"
grep -qF "yubico-piv-tool -r '$TG_READER' -a set-mgm-key" "$T/err" ||
	tg_fail "the default-key message does not say how to change it: $(cat "$T/err")"
[[ -z $(sim_slot 9a origin) ]] || tg_fail "a refused enroll generated a key in 9a"
# ... and accepted when explicitly allowed (with a warning)
enroll --slot 9e --allow-default-mgm-key --cert-out default.pem >out 2>err ||
	{ cat out err >&2; tg_fail "--allow-default-mgm-key"; }
grep -q "factory default management key" err || tg_fail "no warning: $(cat err)"
"$TG" ca show --cert default.pem | jq -e '.provenance.level == "device-attested"' >/dev/null ||
	tg_fail "--allow-default-mgm-key: no device-attested certificate"
! grep -q "Touch the token" err || tg_fail "a touch asked for with touch policy never: $(cat err)"
echo "ok: --allow-default-mgm-key enrolls 9e, with a warning"

# an occupied slot is refused, naming what is there and both ways out;
# the slot keeps its key and certificate
refused 1 "slot 9e of the token in '$TG_READER' is not empty: it holds an ec-p256 key generated on the token and a certificate for 'CN=alice'" \
	enroll --slot 9e --allow-default-mgm-key
grep -qF -- "--force" "$T/err" && grep -qF -- "--existing-key" "$T/err" ||
	tg_fail "the occupied-slot message does not give both ways out: $(cat "$T/err")"
ypt -a read-certificate -s 9e -o 9e-kept.pem >/dev/null 2>&1 &&
	cmp <(openssl x509 -in 9e-kept.pem -outform DER) <(openssl x509 -in default.pem -outform DER) ||
	tg_fail "a refused enroll changed the certificate of slot 9e"
# ... and --force replaces them
enroll --slot 9e --allow-default-mgm-key --force --cert-out forced.pem >out 2>err ||
	{ cat out err >&2; tg_fail "enroll --force"; }
ypt -a read-certificate -s 9e -o 9e-forced.pem >/dev/null 2>&1 &&
	cmp <(openssl x509 -in 9e-forced.pem -outform DER) <(openssl x509 -in forced.pem -outform DER) ||
	tg_fail "enroll --force did not store the new certificate in 9e"
echo "ok: an occupied slot is refused (slot, content, --force, --existing-key); --force replaces it"

# --install-cert on an empty slot: one message, no flag the user never gave
refused 1 "slot 9d of the token in '$TG_READER' holds no key, so there is nothing to install default.pem for" \
	"$TG" enroll --reader "$TG_READER" --slot 9d --install-cert default.pem --allow-default-mgm-key
[[ $(grep -o "holds no key" "$T/err" | wc -l) == 1 ]] || tg_fail "advice doubled: $(cat "$T/err")"
! grep -qF -- "--existing-key" "$T/err" || tg_fail "names --existing-key: $(cat "$T/err")"

# --out-dir with --allow-default-mgm-key: the printed commands work as
# printed (the install command keeps --allow-default-mgm-key)
"$TG" enroll --reader "$TG_READER" --slot 9c --id "spiffe://$TD/dev/offline" \
	--allow-default-mgm-key --out-dir offline >offline.out 2>offline.err ||
	{ cat offline.out offline.err >&2; tg_fail "enroll --out-dir"; }
issue=$(grep -m1 '^  tokengate ca issue' offline.out | sed 's/^ *//; s/CA_DIR/ca/; s/^tokengate/"$TG"/')
eval "$issue" >/dev/null || tg_fail "the printed ca issue command failed: $issue"
install=$(grep -m1 '^  tokengate enroll' offline.out | sed 's/^ *//; s/^tokengate/"$TG"/')
grep -qF -- "--allow-default-mgm-key" <<<"$install" || tg_fail "install command: $install"
eval "$install" >/dev/null 2>install.err || { cat install.err >&2; tg_fail "the printed install command failed: $install"; }
echo "ok: --out-dir prints commands that work when pasted (--allow-default-mgm-key kept)"

run_ok "set-mgm-key" ypt -k"$SIM_MGM" -a set-mgm-key -n "$MGM"
export TOKENGATE_MGM_KEY=$MGM

# a wrong management key
refused 1 "is not this token's management key" \
	enroll --slot 9a --mgm-key 00112233445566778899AABBCCDDEEFF0011223344556677
refused 1 "is not a management key: want 32, 48 or 64 hex digits" enroll --slot 9a --mgm-key 0102zz

# a wrong PIN: tries left shown; the token's counter went down
tries=$(sim_json pin.tries_left)
TOKENGATE_PIN=654321 refused 1 "wrong PIN for the token in '$TG_READER': $((tries - 1)) tries left" \
	enroll --slot 9a
[[ $(sim_json pin.tries_left) == $((tries - 1)) ]] || tg_fail "PIN counter $(sim_json pin.tries_left)"
TOKENGATE_PIN=12345 refused 1 "a PIV PIN has 6 to 8 characters" enroll --slot 9a
[[ -z $(sim_slot 9a origin) ]] || tg_fail "a wrong PIN still cost slot 9a a new key"
run_ok "reset PIN counter" ypt -a verify-pin -P "$SIM_PIN"

# an imported key cannot be enrolled: the token refuses to attest it
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out imp.key 2>/dev/null
run_ok "import-key 9c" ypt -k"$MGM" -a import-key -s 9c -i imp.key
refused 1 "cannot be attested (6A80): it was imported, not generated on the token" \
	enroll --slot 9c --existing-key
# an empty slot with --existing-key
refused 1 "9d" enroll --slot 9d --existing-key

# the CA's policy: PIN policy never is not allowed (default: once, always).
# Asked for a new key, enroll refuses before touching the token ...
refused 1 "the CA in ca does not allow PIN policy 'never' (pin_policies in its policy.yaml)" \
	enroll --slot 9a --pin-policy never
[[ -z $(sim_slot 9a origin) ]] || tg_fail "a policy refusal cost slot 9a a key"
# ... and for a key already on the token (generated by yubico-piv-tool with
# PIN policy never) the CA itself refuses, with its reason
run_ok "generate 9d, PIN never" ypt -k"$MGM" -a generate -s 9d -A ECCP256 --pin-policy=never \
	-o 9d.pub.pem
refused 1 "the CA in ca refused the request: the key's PIN policy 'never' is not allowed" \
	enroll --slot 9d --existing-key
# a CA whose policy allows only PIN policy always refuses once
"$TG" ca init --dir strict --trust-domain "$TD" --attestation-roots "$T/roots" >/dev/null
sed -i 's/^pin_policies:.*/pin_policies: [always]/' strict/policy.yaml
sed -i 's/^touch_policies:.*/touch_policies: [always]/' strict/policy.yaml
refused 1 "does not allow PIN policy 'once'" \
	"$TG" enroll --reader "$TG_READER" --slot 9a --id "spiffe://$TD/dev/alice" --ca-dir strict
refused 1 "does not allow touch policy 'never'" \
	"$TG" enroll --reader "$TG_READER" --slot 9a --id "spiffe://$TD/dev/alice" --ca-dir strict \
	--pin-policy always
# a CA that does not trust this token's manufacturer
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=Other Vendor Root" -keyout other.key -out other-roots/other.pem \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
"$TG" ca init --dir untrusting --trust-domain "$TD" --attestation-roots "$T/other-roots" >/dev/null
refused 1 "does not chain to a trusted root" \
	"$TG" enroll --reader "$TG_READER" --slot 9a --id "spiffe://$TD/dev/alice" --ca-dir untrusting
# an identity outside the CA's trust domain
# (checked before the token is touched: the slot keeps its key)
before=$(sim_slot 9e origin)
refused 1 "is not in the trust domain '$TD' of this CA" \
	"$TG" enroll --reader "$TG_READER" --slot 9e --id "spiffe://other.org/dev/alice" --ca-dir ca
ypt -a read-certificate -s 9e -o 9e-after.pem >/dev/null 2>&1 &&
	cmp <(openssl x509 -in 9e-after.pem -outform DER) <(openssl x509 -in forced.pem -outform DER) ||
	tg_fail "a refused identity changed slot 9e ($before)"

# a second token with an AES-256 management key (algorithm from GET
# METADATA 9B): a key of the wrong length is named, the right one works;
# then its PIN is blocked by wrong PINs and enroll says how to unblock it
AES=00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF
tg_sim_stop
tg_sim_init "$T/card2.state" --serial 16180339 --mgm-key "$AES" \
	--manufacturer-cert "$T/card.state.mfr-ca.pem" --manufacturer-key "$T/card.state.mfr-ca.key"
tg_sim_start "$T/card2.state"
refused 1 "the token's management key is AES (32 bytes) but the key given has 24 bytes" \
	enroll --slot 9a --mgm-key "$MGM"
enroll --slot 9a --mgm-key "$AES" --cert-out aes.pem >out 2>err ||
	{ cat out err >&2; tg_fail "enroll with an AES-256 management key"; }
"$TG" ca show --cert aes.pem | jq -e '.provenance.token_serial == "16180339"' >/dev/null ||
	tg_fail "AES token: $("$TG" ca show --cert aes.pem)"
echo "ok: AES-256 management key (from GET METADATA) enrolls 9a of token 16180339"
TOKENGATE_PIN=999999 refused 1 "2 tries left" enroll --slot 9c --mgm-key "$AES"
TOKENGATE_PIN=999999 refused 1 "1 try left" enroll --slot 9c --mgm-key "$AES"
TOKENGATE_PIN=999999 refused 1 "no tries left, the PIN is now blocked (63C0); unblock it with the PUK" \
	enroll --slot 9c --mgm-key "$AES"
refused 1 "is blocked (6983); unblock it with the PUK: yubico-piv-tool -r '$TG_READER' -a unblock-pin" \
	enroll --slot 9c --mgm-key "$AES"

# touch policy always and nobody touches the token (the simulator denies):
# the signature of the request is refused, and enroll says why
tg_sim_stop
tg_sim_start "$T/card.state" --touch deny
refused 1 "refused to sign with slot 9a (6982): the PIN was not verified or the token was not touched in time" \
	enroll --slot 9a --mgm-key "$MGM" --touch-policy always --force --cert-out resumed.pem
# the touch was asked for before the signature
grep -q "Touch the token now" "$T/err" || tg_fail "no touch prompt: $(cat "$T/err")"
# the failure says what the slot holds now and how to resume, with a
# command that works when pasted
grep -qF "slot 9a of the token in '$TG_READER' now holds a new ec-p256 key generated on the token and no certificate" \
	"$T/err" || tg_fail "no slot state after the failure: $(cat "$T/err")"
resume=$(grep -m1 '^  tokengate enroll' "$T/err" | sed 's/^ *//; s/^tokengate/"$TG"/')
grep -qF -- "--existing-key" <<<"$resume" || tg_fail "resume command: $resume"
tg_sim_stop
tg_sim_start "$T/card.state"
eval "$resume" >resume.out 2>resume.err || { cat resume.out resume.err >&2; tg_fail "resume: $resume"; }
"$TG" ca show --cert resumed.pem | jq -e '.provenance.touch_policy == "always"' >/dev/null ||
	tg_fail "resumed certificate: $("$TG" ca show --cert resumed.pem)"
echo "ok: a failed enroll names the slot's state; the printed --existing-key command resumes it"

# a lying token: ATTEST certifies another key than the one GENERATE made
# (the simulator's attest-other-key fault). The attestation itself is
# genuine (signed by the F9), so only the comparison with the generated key
# catches it: enroll refuses before any request is signed or sent to the CA
tg_sim_stop
tg_sim_start "$T/card.state" --fault attest-other-key
grep -q "sim.fault" "$TG_SIM_LOG" || tg_fail "the simulator did not log its fault"
issued_before=$(find ca/issued -name '*.pem' | wc -l)
refused 1 "the token in '$TG_READER' attested a key other than the one in slot 9c; do not trust this token" \
	enroll --slot 9c --mgm-key "$MGM" --force
[[ $(find ca/issued -name '*.pem' | wc -l) == "$issued_before" ]] ||
	tg_fail "a certificate was issued for a key the token lied about"
echo "PASS: tokengate enroll refusals"
