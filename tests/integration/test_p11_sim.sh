#!/usr/bin/env bash
# test_p11_sim.sh — libtgp11 and `tokengate token` on the simulated PIV card
# through OpenSC's PKCS#11 module (private pcscd + vpcd + tokengate-sim):
# URI selection (module-path and the p11-kit proxy), signing (ECDSA, RSA,
# RSA-PSS), a TLS 1.3 handshake with the card key, removal and insertion
# events with re-login, wrong PIN state and a locked PIN; the trust verdict
# from card evidence (OpenSC invents CKA_LOCAL & co.: "unknown" without the
# PIV metadata, "ok" for a generated key with it, "imported" refused by
# default for a key imported with yubico-piv-tool).
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool openssl jq ss
[[ -e $TG_OPENSC_MODULE ]] || tg_skip "OpenSC PKCS#11 module $TG_OPENSC_MODULE not found; install opensc-pkcs11"
TG="$TG_BIN_DIR/tokengate"
PROBE="$TG_BUILD_DIR/tests/p11_tls_probe"
WATCH="$TG_BUILD_DIR/tests/p11_watch_probe"
unset TOKENGATE_PIN
sim_up
T=$TG_TMP
cd "$T"
gen_cert 9a ECCP256 --pin-policy=once
gen_cert 9c ECCP384
gen_cert 9d RSA2048 --pin-policy=once
MOD="module-path=$TG_OPENSC_MODULE"

expect_rc() { # expect_rc RC CMD...
	local want=$1 rc=0
	shift
	"$@" >out.txt 2>err.txt || rc=$?
	[[ $rc == "$want" ]] || {
		cat out.txt err.txt >&2
		tg_fail "exit $rc (want $want): $*"
	}
}

# ---- list: the card's token, its keys and certificates ----
TOKENGATE_PIN=$SIM_PIN expect_rc 0 "$TG" token list --json --login --uri "pkcs11:?$MOD"
jq -e '[.modules[].tokens[]] | length == 1' out.txt >/dev/null || tg_fail "one card token expected: $(cat out.txt)"
label=$(jq -r '[.modules[].tokens[]][0].label' out.txt)
jq -e '[[.modules[].tokens[]][0].objects[] | select(.class=="private-key" and .id=="01")][0].algorithm == "ec-p256"' \
	out.txt >/dev/null || tg_fail "9a key (id 01) not listed as ec-p256: $(cat out.txt)"
jq -e '[[.modules[].tokens[]][0].objects[] | select(.class=="certificate" and .id=="01")] | length == 1' \
	out.txt >/dev/null || tg_fail "9a certificate not listed"
verdict=$(jq -r '[[.modules[].tokens[]][0].objects[] | select(.class=="private-key" and .id=="01")][0].trust.verdict' out.txt)
tg_log "card token '$label'; 9a key trust verdict: $verdict ($(jq -c '[[.modules[].tokens[]][0].objects[] | select(.class=="private-key" and .id=="01")][0].trust' out.txt))"
# OpenSC's attributes are no evidence: without the card's metadata (list
# reads none) a generated key's verdict is "unknown"
[[ $verdict == unknown ]] || tg_fail "9a key listed with verdict '$verdict' (want unknown: PKCS#15 emulated)"
jq -e '[[.modules[].tokens[]][0].objects[] | select(.class=="private-key" and .id=="01")][0].trust.emulated' \
	out.txt >/dev/null || tg_fail "9a key not shown as on an emulated token"
ALLOW=()
enc_label=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$label")

# ---- list never spends a PIN try it was not asked for: --login needs a URI
# that selects exactly one token, decided before any login (issue 10) ----
tg_softhsm_token_add tg-other
tries0=$(sim_json pin.tries_left)
TOKENGATE_PIN=000000 tg_expect_exit 2 "tokengate token list: --login needs --uri naming the one token to log in to (e.g. --uri 'pkcs11:token=LABEL'): a PIN is only tried on the token you select (try 'tokengate token list --help')" \
	"$TG" token list --login
TOKENGATE_PIN=000000 tg_expect_exit 2 "--login needs a --uri that selects exactly one token, and 'pkcs11:' matches 2: " \
	"$TG" token list --login --uri "pkcs11:"
grep -qF "'$label'" "$TG_TMP/err" && grep -qF "'tg-other'" "$TG_TMP/err" || tg_fail "--login refusal does not name the matches: $(cat "$TG_TMP/err")"
TOKENGATE_PIN=000000 expect_rc 0 "$TG" token list
grep -qF "token '$label'" out.txt && grep -qF "token 'tg-other'" out.txt || tg_fail "list: $(cat out.txt)"
[[ $(sim_json pin.tries_left) == "$tries0" ]] ||
	tg_fail "token list spent PIN tries on the card: $tries0 -> $(sim_json pin.tries_left)"

# ---- list --uri: module-name selects one module, a URI matching no module,
# token or object fails, object=/id=/type= filter, every token and object
# has a pkcs11: URI that selects it ----
expect_rc 0 "$TG" token list --uri "pkcs11:?module-name=opensc-pkcs11"
grep -qF "token '$label'" out.txt || tg_fail "module-name=opensc-pkcs11: card missing: $(cat out.txt)"
! grep -q "tg-other\|SoftHSM" out.txt || tg_fail "module-name=opensc-pkcs11 lists SoftHSM2: $(cat out.txt)"
tg_expect_exit 1 "tokengate token list: no PKCS#11 module named 'nope' is registered with p11-kit (registered: " \
	"$TG" token list --uri "pkcs11:?module-name=nope"
tg_expect_exit 1 "tokengate token list: no token matches 'pkcs11:token=nosuch'; run 'tokengate token list' to see the tokens present" \
	"$TG" token list --uri "pkcs11:token=nosuch"
tg_expect_exit 1 "tokengate token list: no object on the matching token(s) matches 'pkcs11:object=nosuch'" \
	"$TG" token list --uri "pkcs11:object=nosuch?$MOD"
expect_rc 0 "$TG" token list --json --uri "pkcs11:id=%01;type=cert?$MOD"
jq -e '[.modules[].tokens[].objects[]] | length == 1 and .[0].class == "certificate" and .[0].id == "01"' out.txt >/dev/null ||
	tg_fail "object filter id=%01;type=cert: $(cat out.txt)"
turi=$(jq -r '[.modules[].tokens[]][0].uri' out.txt)
curi=$(jq -r '[.modules[].tokens[].objects[]][0].uri' out.txt)
[[ $turi == pkcs11:*token=$enc_label* && $curi == "$turi"*";type=cert" ]] || tg_fail "URIs: token $turi, cert $curi"
expect_rc 0 "$TG" token list --json --uri "$turi"
jq -e '[.modules[].tokens[]] | length == 1' out.txt >/dev/null || tg_fail "the listed token URI does not select one token"
expect_rc 0 "$TG" token list --uri "pkcs11:?$MOD"
grep -qF "uri: $curi" out.txt || tg_fail "text listing lacks the object URIs: $(cat out.txt)"
TOKENGATE_PIN=$SIM_PIN expect_rc 0 "$TG" token list --json --login --uri "pkcs11:type=private;id=%01?$MOD"
kuri=$(jq -r '[.modules[].tokens[].objects[]][0].uri' out.txt)
expect_rc 0 "$TG" token sign-test --key "$kuri?$MOD&pin-value=$SIM_PIN"
grep -q "verified with the public key: ok" out.txt || tg_fail "sign-test by the listed key URI $kuri"

# ---- each subcommand takes only its own options ----
tg_expect_exit 2 "tokengate token list: unknown option '--key' (try 'tokengate token list --help')" \
	"$TG" token list --key "pkcs11:id=%01" --out x.pem
[[ ! -e x.pem ]] || tg_fail "list --out wrote a file"
tg_expect_exit 2 "tokengate token sign-test: unknown option '--pin': a PIN is never taken on the command line" \
	"$TG" token sign-test --key "pkcs11:token=$enc_label;id=%01" --pin "$SIM_PIN"
grep -qF "pin-source=file:PATH or pin-source=env:NAME in the URI's query, set TOKENGATE_PIN, or answer the prompt" "$TG_TMP/err" ||
	tg_fail "--pin advice: $(cat "$TG_TMP/err")"
! grep -qF "$SIM_PIN" "$TG_TMP/err" || tg_fail "the --pin value was echoed"

# ---- sign-test --pss on an EC key is refused (it used to report RSA-PSS) ----
tg_expect_exit 2 "tokengate token sign-test: --pss is RSA-PSS, for RSA keys; key 'PIV AUTH key' is ec-p256 and signs with ECDSA: drop --pss" \
	"$TG" token sign-test --pss --key "pkcs11:token=$enc_label;id=%01?$MOD&pin-value=$SIM_PIN"
expect_rc 0 "$TG" token sign-test --json --key "pkcs11:token=$enc_label;id=%01?$MOD&pin-value=$SIM_PIN"
jq -e '.signature.scheme == "ECDSA" and .signature.verified and .trust.verdict == "ok"' out.txt >/dev/null ||
	tg_fail "sign-test --json: $(cat out.txt)"

# ---- token csr: a request signed on the card, checked by openssl ----
expect_rc 0 "$TG" token csr --key "pkcs11:token=$enc_label;id=%01?$MOD&pin-value=$SIM_PIN" \
	--id spiffe://example.org/dev/alice --out card.csr
openssl req -in card.csr -verify -noout 2>&1 | grep -q "verify OK\|self-signature ok" || tg_fail "card CSR does not verify"
openssl req -in card.csr -noout -text | grep -q "URI:spiffe://example.org/dev/alice" || tg_fail "card CSR: no URI SAN"
[[ $(openssl req -in card.csr -noout -pubkey) == "$(openssl pkey -pubin -in 9a.pub.pem)" ]] ||
	tg_fail "card CSR: not the 9a key"

# ---- URI selection and signing, by module-path and through the proxy ----
for q in "$MOD&pin-value=$SIM_PIN" "pin-value=$SIM_PIN"; do
	expect_rc 0 "$TG" token sign-test "${ALLOW[@]}" --key "pkcs11:token=$enc_label;id=%01?$q"
	grep -q "verified with the public key: ok" out.txt || tg_fail "sign-test 9a ($q)"
	expect_rc 0 "$TG" token sign-test "${ALLOW[@]}" --key "pkcs11:token=$enc_label;id=%03?$q"
	expect_rc 0 "$TG" token sign-test "${ALLOW[@]}" --pss --key "pkcs11:token=$enc_label;id=%03?$q"
	grep -q "RSA-PSS" out.txt || tg_fail "sign-test --pss 9d ($q)"
done
# 9c (digital signature) has CKA_ALWAYS_AUTHENTICATE: context-specific login
TOKENGATE_PIN=$SIM_PIN expect_rc 0 "$TG" token list --json --login --uri "pkcs11:?$MOD"
jq -e '[[.modules[].tokens[]][0].objects[] | select(.class=="private-key" and .id=="02")][0].trust.always_authenticate' \
	out.txt >/dev/null || tg_fail "9c key not shown with CKA_ALWAYS_AUTHENTICATE: $(cat out.txt)"
# the PIN is read again before each signature: a pin-value serves the key
# lookup only (login, proof of the key) and is not kept, so the signature
# after it is refused, naming the sources that are read each time
expect_rc 1 "$TG" token sign-test "${ALLOW[@]}" --key "pkcs11:token=$enc_label;id=%02?$MOD&pin-value=$SIM_PIN"
grep -q "(CKA_ALWAYS_AUTHENTICATE) needs the PIN again, and a pin-value given in the URI serves only the lookup it came with; give the PIN with pin-source=file:PATH (or env:NAME) or TOKENGATE_PIN" err.txt ||
	tg_fail "9c with a pin-value: $(cat out.txt err.txt)"
TOKENGATE_PIN=$SIM_PIN expect_rc 0 "$TG" token sign-test "${ALLOW[@]}" --key "pkcs11:token=$enc_label;id=%02?$MOD"
grep -q "verified with the public key: ok" out.txt || tg_fail "sign-test 9c (always authenticate)"
# the sign-tests above were accepted on the card's evidence (GET METADATA)
expect_rc 0 "$TG" token sign-test --key "pkcs11:token=$enc_label;id=%01?$MOD&pin-value=$SIM_PIN"
grep -q "trust: ok: generated on the card (PIV metadata of slot 9A)" out.txt ||
	tg_fail "9a not accepted on PIV metadata: $(cat out.txt err.txt)"

# ---- a key imported with yubico-piv-tool: OpenSC calls it CKA_LOCAL, the
# card's metadata says imported; refused unless --allow-imported ----
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out imp.key 2>/dev/null
openssl pkey -in imp.key -pubout -out "$T/9e.pub.pem"
run_ok "import-key 9e" ypt -k"$SIM_MGM" -a import-key -s 9e -i imp.key
issue_cert 9e
run_ok "import certificate 9e" ypt -k"$SIM_MGM" -a import-certificate -s 9e -i "$T/9e.cert.pem"
expect_rc 1 "$TG" token sign-test --key "pkcs11:token=$enc_label;id=%04?$MOD&pin-value=$SIM_PIN"
grep -q "is refused (imported): the card says the key was imported, not generated on it (PIV metadata of slot 9E): a copy may exist elsewhere; .*--allow-imported" err.txt ||
	tg_fail "imported 9e key not refused: $(cat out.txt err.txt)"
tg_log "imported key: $(cat err.txt)"
expect_rc 0 "$TG" token sign-test --allow-imported --key "pkcs11:token=$enc_label;id=%04?$MOD&pin-value=$SIM_PIN"
grep -q "trust: imported" out.txt || tg_fail "9e with --allow-imported: $(cat out.txt)"

expect_rc 1 "$TG" token sign-test --key "pkcs11:token=nosuchcard;id=%01?$MOD&pin-value=$SIM_PIN"
grep -q "tokens present: '$label'" err.txt || tg_fail "missing token message: $(cat err.txt)"
expect_rc 0 "$TG" token export-cert "${ALLOW[@]}" --key "pkcs11:token=$enc_label;id=%01?$MOD&pin-value=$SIM_PIN"
cmp <(openssl x509 -in 9a.cert.pem -outform DER) <(openssl x509 -outform DER <out.txt) ||
	tg_fail "export-cert of 9a differs from the imported certificate"

# ---- TLS 1.3 with the card key as the client key ----
if ((${#ALLOW[@]} == 0)); then
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
		-subj /CN=localhost -out srv.csr 2>/dev/null
	openssl x509 -req -in srv.csr -CA test-ca.pem -CAkey test-ca.key -set_serial 77 -days 2 \
		-out srv.pem 2>/dev/null
	port=$(tg_free_port_pair)
	openssl s_server -accept "127.0.0.1:$port" -cert srv.pem -key srv.key -CAfile test-ca.pem \
		-Verify 2 -verify_return_error -www -naccept 1 -tls1_3 >s_server.log 2>&1 &
	spid=$!
	tg_on_exit bash -c "kill $spid 2>/dev/null || true"
	tg_wait_until 20 bash -c "ss -ltn | grep -q '127.0.0.1:$port '" || tg_fail "s_server did not listen"
	# the probe reads no card evidence: it accepts the unknown verdict
	TG_PROBE_ALLOW_IMPORTED=1 "$PROBE" client "pkcs11:token=$enc_label;id=%01?$MOD&pin-value=$SIM_PIN" 127.0.0.1 "$port" \
		test-ca.pem 1.3 >probe.out 2>&1 || {
		cat probe.out s_server.log >&2
		tg_fail "TLS 1.3 with the card key failed"
	}
	grep -q "local_sig=ECDSA" probe.out || tg_fail "TLS: $(cat probe.out)"
	tg_log "TLS with the card key: $(cat probe.out)"
else
	tg_log "SKIPPED PART: TLS with the card key (OpenSC does not show the key as non-exportable)"
fi

# ---- removal and insertion events, re-login, signing again ----
# the watcher logs in again after each insertion: a pin-value serves the
# key lookup only, so its PIN comes from a source read each time
TOKENGATE_PIN=$SIM_PIN "$WATCH" "pkcs11:token=$enc_label;id=%01?$MOD" 60 4 >watch.out 2>&1 &
wpid=$!
tg_on_exit bash -c "kill $wpid 2>/dev/null || true"
tg_wait_until 30 grep -q "^watching present=1" watch.out || {
	cat watch.out >&2
	tg_fail "watch probe did not start"
}
for round in 1 2; do
	kill -USR1 "$TG_SIM_PID"
	tg_wait_until 20 bash -c "[[ \$(grep -c '^event removed' watch.out) -ge $round ]]" || {
		cat watch.out >&2
		tg_fail "no removal event (round $round)"
	}
	kill -USR2 "$TG_SIM_PID"
	tg_wait_until 30 bash -c "[[ \$(grep -c '^signed after insertion' watch.out) -ge $round ]]" || {
		cat watch.out >&2
		tg_fail "no insertion event / no signature after insertion (round $round)"
	}
done
wait "$wpid" || {
	cat watch.out >&2
	tg_fail "watch probe failed"
}
grep -q "logged in again" watch.out || tg_fail "no re-login reported: $(cat watch.out)"
tg_log "watch: $(tr '\n' '|' <watch.out)"

# ---- a key-management (9D) key that may not sign: the refusal names the
# slot's purpose (a YubiKey's 9D certificate allows key encipherment only) ----
printf 'basicConstraints=CA:FALSE\nkeyUsage=keyEncipherment,keyAgreement\n' >km.ext
openssl req -new -key test-ca.key -subj "/CN=tg-test 9d km" -out 9d-km.csr 2>/dev/null
openssl x509 -req -in 9d-km.csr -force_pubkey 9d.pub.pem -CA test-ca.pem -CAkey test-ca.key \
	-extfile km.ext -days 3 -set_serial 99 -out 9d-km.pem 2>/dev/null
run_ok "import the key-management certificate 9d" ypt -k"$SIM_MGM" -a import-certificate -s 9d -i 9d-km.pem
tg_expect_exit 1 "is in PIV slot 9D, the key-management slot: it is for decryption and key agreement, not for signing" \
	"$TG" token sign-test --key "pkcs11:token=$enc_label;id=%03?$MOD&pin-value=$SIM_PIN"
grep -qF "use a key in slot 9A (authentication) or 9C (digital signature)" "$TG_TMP/err" || tg_fail "9D: no fix named"

# ---- wrong PIN reports the state; three wrong PINs lock it ----
expect_rc 1 "$TG" token sign-test "${ALLOW[@]}" --key "pkcs11:token=$enc_label;id=%01?$MOD&pin-value=000000"
grep -q "wrong PIN for token" err.txt || tg_fail "wrong PIN message: $(cat err.txt)"
tg_log "wrong PIN 1: $(cat err.txt)"
tries=$(sim_json pin.tries_left 2>/dev/null || echo "?")
tg_log "simulator PIN tries left after one wrong PIN: $tries"
[[ $tries == "?" || $tries == 2 ]] || tg_fail "one wrong PIN cost $((3 - tries)) tries (want 1)"
expect_rc 1 "$TG" token sign-test "${ALLOW[@]}" --key "pkcs11:token=$enc_label;id=%01?$MOD&pin-value=000000"
tg_log "wrong PIN 2: $(cat err.txt)"
grep -q "final try" err.txt || tg_log "note: OpenSC did not report CKF_USER_PIN_FINAL_TRY"
expect_rc 1 "$TG" token sign-test "${ALLOW[@]}" --key "pkcs11:token=$enc_label;id=%01?$MOD&pin-value=000000"
tg_log "wrong PIN 3: $(cat err.txt)"
expect_rc 1 "$TG" token sign-test "${ALLOW[@]}" --key "pkcs11:token=$enc_label;id=%01?$MOD&pin-value=$SIM_PIN"
grep -q "locked" err.txt || tg_fail "locked PIN not reported: $(cat err.txt)"
tg_log "locked: $(cat err.txt)"
echo "PASS: libtgp11 on the simulated card through OpenSC"
