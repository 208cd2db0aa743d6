#!/usr/bin/env bash
# test_p11_cli.sh — `tokengate token` on SoftHSM2 (list --json, keygen of
# the four algorithms, import-cert/export-cert with mismatch detection,
# sign-test, wrong PIN tried once), and TLS handshakes with a token key:
# as the CLIENT against `openssl s_server -Verify` (TLS 1.3 ECDSA, TLS 1.3
# RSA-PSS, TLS 1.2 RSA PKCS#1) and as the SERVER for `openssl s_client`.
set -euo pipefail
# shellcheck source=../lib/fixtures.sh
source "$TG_FIXTURES/fixtures.sh"

tg_require_cmd openssl jq ss
tg_softhsm_default
TG="$TG_BIN_DIR/tokengate"
PROBE="$TG_BUILD_DIR/tests/p11_tls_probe"
[[ -x $TG ]] || tg_fail "$TG not built"
[[ -x $PROBE ]] || tg_fail "$PROBE not built"
cd "$TG_TMP"
unset TOKENGATE_PIN

expect_rc() { # expect_rc RC CMD... : runs CMD, checks its exit status
	local want=$1 rc=0
	shift
	"$@" >out.txt 2>err.txt || rc=$?
	[[ $rc == "$want" ]] || {
		cat out.txt err.txt >&2
		tg_fail "exit $rc (want $want): $*"
	}
}

# ---- help and usage ----
expect_rc 0 "$TG" token --help
grep -q "sign-test" out.txt || tg_fail "token --help lacks sign-test"
for s in list keygen import-cert export-cert sign-test; do
	expect_rc 0 "$TG" token "$s" --help
	grep -q "usage: tokengate token $s" out.txt || tg_fail "$s --help"
done
expect_rc 2 "$TG" token bogus
expect_rc 2 "$TG" token keygen --key "pkcs11:token=tg-test;object=x"
expect_rc 2 "$TG" token keygen --key "pkcs11:token=tg-test;object=x" --algorithm ec-p521
grep -q "ec-p256, ec-p384, rsa-2048" err.txt || tg_fail "bad algorithm message"
expect_rc 2 "$TG" token sign-test --bogus

# ---- list --json ----
expect_rc 0 "$TG" token list --json --login --uri "pkcs11:token=tg-test?pin-value=1234"
python3 -m json.tool out.txt >/dev/null || tg_fail "list --json is not JSON"
jq -e '[.modules[].tokens[]] | length == 1' out.txt >/dev/null || tg_fail "list --json: one token expected"
jq -e '[.modules[].tokens[]][0].label == "tg-test" and [.modules[].tokens[]][0].manufacturer == "SoftHSM project"' \
	out.txt >/dev/null || tg_fail "list --json: token"
jq -e '[[.modules[].tokens[]][0].objects[] | select(.class == "private-key" and .label == "p256")][0]
       | .algorithm == "ec-p256" and .id == "01" and .trust.verdict == "ok"
         and .trust.sensitive and (.trust.extractable | not) and .trust.local' \
	out.txt >/dev/null || tg_fail "list --json: p256"
jq -e '[[.modules[].tokens[]][0].objects[] | select(.class == "private-key" and .label == "exportable")][0]
       | .trust.verdict == "exportable" and .trust.extractable' out.txt >/dev/null ||
	tg_fail "list --json: exportable key"
jq -e '[[.modules[].tokens[]][0].objects[] | select(.class == "private-key")] | length == 4' out.txt \
	>/dev/null || tg_fail "list --json: 4 private keys expected"
jq -e '[.modules[].name] | index("softhsm2") != null' out.txt >/dev/null ||
	tg_fail "list --json: module softhsm2 not listed"
expect_rc 0 "$TG" token list
grep -q "^module softhsm2 " out.txt || tg_fail "list: module softhsm2 missing"
grep -q "token 'tg-test'" out.txt || tg_fail "list: tg-test missing"

# ---- list --uri: module-name selects that module only; a URI that matches
# no module, token or object fails; object=/id=/type= filter; URIs ----
expect_rc 0 "$TG" token list --uri "pkcs11:?module-name=softhsm2"
grep -q "token 'tg-test'" out.txt || tg_fail "module-name=softhsm2: tg-test missing"
expect_rc 0 "$TG" token list --uri "pkcs11:?module-name=opensc-pkcs11"
! grep -q "tg-test" out.txt || tg_fail "module-name=opensc-pkcs11 lists SoftHSM2's token: $(cat out.txt)"
tg_expect_exit 1 "tokengate token list: no PKCS#11 module named 'nope' is registered with p11-kit (registered: " \
	"$TG" token list --uri "pkcs11:?module-name=nope"
grep -qF "'softhsm2'" "$TG_TMP/err" || tg_fail "module-name=nope: registered modules not named"
tg_expect_exit 1 "tokengate token list: no token matches 'pkcs11:token=nosuch'" \
	"$TG" token list --uri "pkcs11:token=nosuch?pin-value=4321"
! grep -q 4321 "$TG_TMP/err" || tg_fail "the URI's PIN was shown"
tg_expect_exit 1 "a module or token could not be listed" \
	"$TG" token list --uri "pkcs11:?module-path=$TG_TMP/no-such-module.so"
grep -q "no-such-module.so" "$TG_TMP/out" || tg_fail "module load failure not shown: $(cat "$TG_TMP/out")"
expect_rc 0 "$TG" token list --json --login --uri "pkcs11:token=tg-test;object=p256?pin-value=1234"
jq -e '[.modules[].tokens[].objects[]] | length >= 2 and all(.label == "p256")' out.txt >/dev/null ||
	tg_fail "object=p256 filter: $(cat out.txt)"
expect_rc 0 "$TG" token list --json --login --uri "pkcs11:token=tg-test;id=%03;type=private?pin-value=1234"
jq -e '[.modules[].tokens[].objects[]] | length == 1 and .[0].label == "rsa2048" and .[0].class == "private-key"' \
	out.txt >/dev/null || tg_fail "id=%03;type=private filter: $(cat out.txt)"
kuri=$(jq -r '[.modules[].tokens[].objects[]][0].uri' out.txt)
turi=$(jq -r '[.modules[].tokens[]][0].uri' out.txt)
[[ $kuri == "pkcs11:"*"token=tg-test"*"id=%03"*"object=rsa2048"*"type=private" ]] || tg_fail "key URI: $kuri"
[[ $turi == "pkcs11:"*"manufacturer=SoftHSM%20project"*"token=tg-test" ]] || tg_fail "token URI: $turi"
expect_rc 0 "$TG" token sign-test --key "$kuri?pin-value=1234"
grep -q "verified with the public key: ok" out.txt || tg_fail "sign-test by the listed URI $kuri"
expect_rc 0 "$TG" token list --uri "pkcs11:token=tg-test"
grep -qF "uri: $turi" out.txt || tg_fail "text listing: token URI missing: $(cat out.txt)"
tg_expect_exit 1 "no object on the matching token(s) matches 'pkcs11:token=tg-test;object=nosuch'" \
	"$TG" token list --uri "pkcs11:token=tg-test;object=nosuch"

# ---- each subcommand takes only its own options; --json where taken ----
tg_expect_exit 2 "tokengate token list: unknown option '--key' (try 'tokengate token list --help')" \
	"$TG" token list --key "pkcs11:token=tg-test;object=p256" --out x.pem
[[ ! -e x.pem ]] || tg_fail "list --out wrote a file"
tg_expect_exit 2 "tokengate token export-cert: unknown option '--allow-exportable'" \
	"$TG" token export-cert --key "pkcs11:token=tg-test;object=p256" --allow-exportable
tg_expect_exit 2 "tokengate token keygen: unknown option '--pss'" \
	"$TG" token keygen --key "pkcs11:token=tg-test;object=x" --algorithm ec-p256 --pss
tg_expect_exit 2 "tokengate token keygen: option '--key' is given twice" \
	"$TG" token keygen --key "pkcs11:token=tg-test;object=x" --key y --algorithm ec-p256
tg_expect_exit 2 "tokengate token list: unknown option '--pin': a PIN is never taken on the command line (ps and shell history would show it): put pin-source=file:PATH or pin-source=env:NAME in the URI's query, set TOKENGATE_PIN, or answer the prompt on a terminal" \
	"$TG" token list --pin=1234
! grep -q 1234 "$TG_TMP/err" || tg_fail "--pin value echoed"
for s in list keygen import-cert export-cert sign-test csr; do
	expect_rc 0 "$TG" token "$s" --help
	grep -q "usage: tokengate token $s" out.txt || tg_fail "$s --help"
done

# ---- --login never tries a PIN on a token the URI does not select ----
tg_softhsm_token_add tg-two 2222 5678
tg_expect_exit 2 "--login needs a --uri that selects exactly one token, and 'pkcs11:manufacturer=SoftHSM%20project' matches 2: " \
	env TOKENGATE_PIN=0000 "$TG" token list --login --uri "pkcs11:manufacturer=SoftHSM%20project"
grep -qF "'tg-test' (serial " "$TG_TMP/err" && grep -qF "'tg-two' (serial " "$TG_TMP/err" &&
	grep -qF "add token= or serial= to it (no PIN was tried)" "$TG_TMP/err" ||
	tg_fail "--login refusal does not name the matches and the fix: $(cat "$TG_TMP/err")"
expect_rc 0 "$TG" token list --json --uri "pkcs11:token=tg-two"
jq -e '[.modules[].tokens[]][0] | (.pin_count_low or .pin_final_try or .pin_locked) | not' out.txt >/dev/null ||
	tg_fail "a PIN was tried on tg-two: $(cat out.txt)"

# ---- keygen of the four algorithms on a new token, sign-test ----
tg_softhsm_token_add tg-cli 1234 5678
for alg in ec-p256 ec-p384 rsa-2048 rsa-3072; do
	uri="pkcs11:token=tg-cli;object=k-$alg?pin-value=1234"
	expect_rc 0 "$TG" token keygen --key "$uri" --algorithm "$alg"
	grep -q "^trust: ok" out.txt || tg_fail "keygen $alg: trust not ok"
	sed -n '/BEGIN PUBLIC KEY/,/END PUBLIC KEY/p' out.txt >"pub-$alg.pem"
	openssl pkey -pubin -in "pub-$alg.pem" -noout || tg_fail "keygen $alg: no public key"
	expect_rc 0 "$TG" token sign-test --key "$uri"
	grep -q "verified with the public key: ok" out.txt || tg_fail "sign-test $alg"
	grep -q "never_extractable=true" out.txt || tg_fail "sign-test $alg: trust attrs"
	if [[ $alg == rsa-* ]]; then
		expect_rc 0 "$TG" token sign-test --pss --key "$uri"
		grep -q "RSA-PSS" out.txt || tg_fail "sign-test --pss $alg"
	fi
done
# keygen --json (it used to print text)
expect_rc 0 "$TG" token keygen --json --key "pkcs11:token=tg-cli;object=k-json?pin-value=1234" \
	--algorithm ec-p256
jq -e '.token == "tg-cli" and .algorithm == "ec-p256" and .trust.verdict == "ok" and (.uri | startswith("pkcs11:"))
       and (.public_key | startswith("-----BEGIN PUBLIC KEY-----"))' out.txt >/dev/null ||
	tg_fail "keygen --json: $(cat out.txt)"
expect_rc 0 "$TG" token sign-test --json --pss --key "pkcs11:token=tg-cli;object=k-rsa-2048?pin-value=1234"
jq -e '.signature.scheme == "RSA-PSS" and .signature.verified and .algorithm == "rsa-2048"' out.txt >/dev/null ||
	tg_fail "sign-test --json: $(cat out.txt)"
# --pss on an EC key is refused (it used to report RSA-PSS)
tg_expect_exit 2 "tokengate token sign-test: --pss is RSA-PSS, for RSA keys; key 'k-ec-p256' is ec-p256 and signs with ECDSA: drop --pss" \
	"$TG" token sign-test --pss --key "pkcs11:token=tg-cli;object=k-ec-p256?pin-value=1234"
expect_rc 0 "$TG" token sign-test --key "pkcs11:token=tg-cli;object=k-ec-p256?pin-value=1234"
grep -q "(ECDSA, SHA-256), verified with the public key: ok" out.txt || tg_fail "sign-test EC scheme: $(cat out.txt)"

# ---- token csr: a PKCS#10 request signed on the token, as enroll's ----
for alg in ec-p256 ec-p384 rsa-2048; do
	expect_rc 0 "$TG" token csr --key "pkcs11:token=tg-cli;object=k-$alg?pin-value=1234" \
		--id "spiffe://example.org/svc/api-$alg" --out "k-$alg.csr"
	openssl req -in "k-$alg.csr" -verify -noout 2>&1 | grep -q "verify OK\|self-signature ok" ||
		tg_fail "csr $alg does not verify: $(openssl req -in "k-$alg.csr" -verify -noout 2>&1)"
	openssl req -in "k-$alg.csr" -noout -text >csr.txt
	grep -q "URI:spiffe://example.org/svc/api-$alg" csr.txt || tg_fail "csr $alg: no URI SAN"
	grep -q "CN *= *spiffe://example.org/svc/api-$alg" csr.txt || tg_fail "csr $alg: subject"
	[[ $(openssl req -in "k-$alg.csr" -noout -pubkey) == "$(openssl pkey -pubin -in "pub-$alg.pem")" ]] ||
		tg_fail "csr $alg: not the token key"
done
grep -q "ecdsa-with-SHA384" <(openssl req -in k-ec-p384.csr -noout -text) || tg_fail "csr p384: digest"
expect_rc 0 "$TG" token csr --key "pkcs11:token=tg-cli;object=k-ec-p256?pin-value=1234" --id spiffe://example.org/dev/bob
openssl req -verify -noout <out.txt 2>/dev/null || tg_fail "csr to stdout does not verify"
tg_expect_exit 2 "tokengate token csr: --key URI and --id IDENTITY are required" \
	"$TG" token csr --key "pkcs11:token=tg-cli;object=k-ec-p256"
tg_expect_exit 1 "CKA_EXTRACTABLE is true" \
	"$TG" token csr --key "pkcs11:token=tg-test;object=exportable?pin-value=1234" --id spiffe://example.org/dev/x

expect_rc 1 "$TG" token keygen --key "pkcs11:token=tg-cli;object=k-ec-p256?pin-value=1234" \
	--algorithm ec-p256
grep -q "already has a private key" err.txt || tg_fail "duplicate keygen message"

# exportable key: refused with the reason, accepted with the override
expect_rc 1 "$TG" token sign-test --key "pkcs11:token=tg-test;object=exportable?pin-value=1234"
grep -q "CKA_EXTRACTABLE is true" err.txt || tg_fail "exportable refusal reason"
expect_rc 0 "$TG" token sign-test --allow-exportable \
	--key "pkcs11:token=tg-test;object=exportable?pin-value=1234"
grep -q "^trust: exportable" out.txt || tg_fail "override: verdict not shown"

# ---- a public-key object planted with pkcs11-tool (no PIN needed on
# SoftHSM2) is never taken as the key's public key ----
grep -q -- "--allow-imported" <("$TG" token sign-test --help) || tg_fail "sign-test --help lacks --allow-imported"
grep -q -- "--allow-imported" <("$TG" token import-cert --help) || tg_fail "import-cert --help lacks --allow-imported"
P11T=(pkcs11-tool --module "$TG_SOFTHSM2_MODULE" --token-label tg-cli)
expect_rc 0 "$TG" token keygen --key "pkcs11:token=tg-cli;object=victim;id=%77?pin-value=1234" \
	--algorithm ec-p256
sed -n '/BEGIN PUBLIC KEY/,/END PUBLIC KEY/p' out.txt >victim.pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out evil.key 2>/dev/null
openssl pkey -in evil.key -pubout -outform DER -out evil.pub.der
"${P11T[@]}" --delete-object --type pubkey --id 77 >p11t.log 2>&1 || tg_fail "delete public object: $(cat p11t.log)"
"${P11T[@]}" --write-object evil.pub.der --type pubkey --id 77 --label victim >p11t.log 2>&1 ||
	tg_fail "plant public key: $(cat p11t.log)"
expect_rc 1 "$TG" token sign-test --key "pkcs11:token=tg-cli;object=victim?pin-value=1234"
grep -q "none of the 1 public-key object(s) or certificate(s) with its id 77 verifies a signature made by the key (one may have been planted)" err.txt ||
	tg_fail "planted public key not refused: $(cat err.txt)"
tg_log "planted public key: $(cat err.txt)"
# the fix the message names: a certificate of the planted key is refused
# (proven by a signature through the key's handle), the key's own is stored
# and the key is usable again
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout vca.key -subj /CN=vca \
	-days 1 -out vca.pem 2>/dev/null
openssl req -new -key vca.key -subj /CN=victim -out victim.csr 2>/dev/null
openssl pkey -in evil.key -pubout -out evil.pub.pem
openssl x509 -req -in victim.csr -force_pubkey evil.pub.pem -CA vca.pem -CAkey vca.key -days 1 \
	-set_serial 1 -out evil.crt 2>/dev/null
openssl x509 -req -in victim.csr -force_pubkey victim.pub.pem -CA vca.pem -CAkey vca.key -days 1 \
	-set_serial 2 -out victim.crt 2>/dev/null
expect_rc 1 "$TG" token import-cert --key "pkcs11:token=tg-cli;object=victim?pin-value=1234" --cert evil.crt
grep -q "key 'victim' on token 'tg-cli' signed a random challenge, but the signature does not verify with the public key given: it is not this key's" err.txt ||
	tg_fail "certificate of the planted key not refused: $(cat err.txt)"
expect_rc 0 "$TG" token import-cert --key "pkcs11:token=tg-cli;object=victim?pin-value=1234" --cert victim.crt
expect_rc 0 "$TG" token sign-test --key "pkcs11:token=tg-cli;object=victim?pin-value=1234"
grep -q "verified with the public key: ok" out.txt || tg_fail "victim after its certificate was stored: $(cat out.txt err.txt)"

# ---- a 70-byte CKA_ID is kept whole: keygen, sign-test by it, and the
# listing shows its first 64 bytes and its length ----
longid=$(python3 -c 'print("".join("%%%02X" % (0x30 + i) for i in range(70)))')
expect_rc 0 "$TG" token keygen --key "pkcs11:token=tg-cli;object=longid;id=$longid?pin-value=1234" \
	--algorithm ec-p256
grep -q "uri: .*id=$longid;" out.txt || tg_fail "keygen with a 70-byte id: canonical URI: $(cat out.txt)"
expect_rc 0 "$TG" token sign-test --key "pkcs11:token=tg-cli;id=$longid?pin-value=1234"
grep -q "^trust: ok" out.txt || tg_fail "sign-test by a 70-byte id: $(cat out.txt)"
expect_rc 0 "$TG" token list --json --login --uri "pkcs11:token=tg-cli?pin-value=1234"
want=$(python3 -c 'print("".join("%02x" % (0x30 + i) for i in range(64)) + "...(70 bytes)")')
jq -e --arg w "$want" '[[.modules[].tokens[]][0].objects[] | select(.class == "private-key" and .label == "longid")][0].id == $w' \
	out.txt >/dev/null || tg_fail "list: 70-byte id not shown as 64 bytes + length: $(cat out.txt)"

# ---- a key imported with pkcs11-tool --write-object: refused by default,
# accepted with --allow-imported ----
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out imp.key 2>/dev/null
openssl pkey -in imp.key -outform DER -out imp.der
openssl pkey -in imp.key -pubout -outform DER -out imp.pub.der
"${P11T[@]}" --login --pin 1234 --write-object imp.der --type privkey --id 78 --label imported \
	--sensitive --usage-sign >p11t.log 2>&1 || tg_fail "import private key: $(cat p11t.log)"
"${P11T[@]}" --login --pin 1234 --write-object imp.pub.der --type pubkey --id 78 --label imported \
	>p11t.log 2>&1 || tg_fail "import public key: $(cat p11t.log)"
expect_rc 1 "$TG" token sign-test --key "pkcs11:token=tg-cli;object=imported?pin-value=1234"
grep -Eq "key 'imported' on token 'tg-cli' is refused \((imported|once-exportable)\): .*CKA_LOCAL is false: it was imported.*; generate the key on the token \(tokengate token keygen\) or accept it explicitly \(--allow-imported, TG_P11_KEY_ALLOW_IMPORTED\)" err.txt ||
	tg_fail "imported key not refused: $(cat err.txt)"
tg_log "imported key: $(cat err.txt)"
expect_rc 0 "$TG" token sign-test --allow-imported --key "pkcs11:token=tg-cli;object=imported?pin-value=1234"
grep -Eq "^trust: (imported|once-exportable)" out.txt || tg_fail "--allow-imported: $(cat out.txt)"
grep -q "verified with the public key: ok" out.txt || tg_fail "--allow-imported: not signed"

# missing token: lists the tokens present
expect_rc 1 "$TG" token sign-test --key "pkcs11:token=alice;object=api?pin-value=1234"
grep -q "token 'alice' not found; tokens present: .*'tg-test' (SoftHSM project" err.txt ||
	tg_fail "missing token message"

# ---- wrong PIN: exactly one C_Login, seen through OpenSC's pkcs11-spy ----
spy=""
for d in /usr/lib/x86_64-linux-gnu/pkcs11 /usr/lib/aarch64-linux-gnu/pkcs11 /usr/lib/pkcs11; do
	[[ -e $d/pkcs11-spy.so ]] && spy=$d/pkcs11-spy.so
done
if [[ -n $spy ]]; then
	# OpenSC's pkcs11-spy never closes its log file and is dlclosed before
	# LeakSanitizer runs, so its leak cannot be suppressed by frame name:
	# leak checking is off for this one run of a debugging module.
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
		PKCS11SPY="$TG_SOFTHSM2_MODULE" PKCS11SPY_OUTPUT="$TG_TMP/spy.log" \
		expect_rc 1 "$TG" token sign-test \
		--key "pkcs11:token=tg-cli;object=k-ec-p256?module-path=$spy&pin-value=0000"
	grep -q "wrong PIN for token 'tg-cli'" err.txt || tg_fail "wrong PIN message"
	n=$(grep -c "C_Login" "$TG_TMP/spy.log" || true)
	[[ $n == 1 ]] || tg_fail "wrong PIN: $n C_Login calls (want exactly 1)"
else
	tg_log "pkcs11-spy.so not found (opensc): C_Login count not checked"
	expect_rc 1 "$TG" token sign-test --key "pkcs11:token=tg-cli;object=k-ec-p256?pin-value=0000"
fi
grep -q "few tries left" err.txt || tg_fail "wrong PIN: token state not reported"
# no PIN and no terminal: the fix is named
expect_rc 1 "$TG" token sign-test --key "pkcs11:token=tg-cli;object=k-ec-p256" </dev/null
grep -q "TOKENGATE_PIN" err.txt || tg_fail "no-PIN message"
# a PIN file is refused like an SSH private key unless only its owner can
# read or write it; the message names the file, its mode and the fix
echo 1234 >pin.txt
PINKEY="pkcs11:token=tg-cli;object=k-ec-p256?pin-source=file:$TG_TMP/pin.txt"
chmod 644 pin.txt
tg_expect_exit 1 "PIN file '$TG_TMP/pin.txt' is readable by others (mode 0644); run 'chmod 600 $TG_TMP/pin.txt'" \
	"$TG" token sign-test --key "$PINKEY"
chmod 620 pin.txt
tg_expect_exit 1 "PIN file '$TG_TMP/pin.txt' is writable by others (mode 0620); run 'chmod 600 $TG_TMP/pin.txt'" \
	"$TG" token sign-test --key "$PINKEY"
# a link is followed and the file it leads to is what is checked
ln -s pin.txt pin-link.txt
tg_expect_exit 1 "PIN file '$TG_TMP/pin-link.txt' is writable by others (mode 0620)" \
	"$TG" token sign-test --key "pkcs11:token=tg-cli;object=k-ec-p256?pin-source=$TG_TMP/pin-link.txt"
if [[ $(id -u) == 0 ]]; then
	chmod 600 pin.txt
	chown 65534 pin.txt
	tg_expect_exit 1 "PIN file '$TG_TMP/pin.txt' is owned by uid 65534, not by uid 0 that runs this command; whoever owns it controls it: run 'chown 0 $TG_TMP/pin.txt'" \
		"$TG" token sign-test --key "$PINKEY"
	chown 0 pin.txt
else
	tg_log "not root: the PIN file owner check is not exercised (needs chown)"
fi
chmod 600 pin.txt # the printed fix
expect_rc 0 "$TG" token sign-test --key "$PINKEY"
expect_rc 0 "$TG" token sign-test --key "pkcs11:token=tg-cli;object=k-ec-p256?pin-source=$TG_TMP/pin-link.txt"
TOKENGATE_PIN=1234 expect_rc 0 "$TG" token sign-test --key "pkcs11:token=tg-cli;object=k-ec-p256"

# ---- no PIN source but a terminal: the PIN is asked for, without echo ----
# pty_run.py gives the command a pseudo-terminal and types the answer after
# the prompt; out.txt is what the terminal showed.
PTY=("$TG_FIXTURES/pty_run.py" --timeout 30 --secret)
KEY="pkcs11:token=tg-cli;object=k-ec-p256"
prompted() { # prompted RC ANSWER: one prompt for tg-cli, answered with ANSWER
	expect_rc "$1" "${PTY[@]}" --answer "PIN for token 'tg-cli': " "$2" -- \
		"$TG" token sign-test --key "$KEY"
	n=$(grep -c "^PIN for token" out.txt || true)
	[[ $n == 1 ]] || { cat out.txt >&2; tg_fail "prompt shown $n times (want 1)"; }
}
prompted 1 0000
grep -q "wrong PIN for token 'tg-cli' (from prompt" out.txt || tg_fail "prompt: wrong PIN message"
prompted 1 ""
grep -q "no PIN entered for token 'tg-cli'" out.txt || tg_fail "prompt: empty PIN message"
prompted 1 "$(printf '%0300d' 7)"
grep -q "longer than 256 characters" out.txt || tg_fail "prompt: long PIN message"
prompted 1 $'\x03'
grep -q "PIN entry for token 'tg-cli' was interrupted" out.txt || tg_fail "prompt: Ctrl-C message"
prompted 0 1234
grep -q "verified with the public key: ok" out.txt || tg_fail "prompt: signature"
! grep -q 1234 out.txt || { cat out.txt >&2; tg_fail "prompt: the PIN was echoed"; }
echo "ok: PIN prompt on a terminal (no echo; wrong, empty, too long, Ctrl-C)"

# ---- certificates: a test CA issues a leaf for each token key ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
	-out ca.pem -subj /CN=tg-test-ca -days 2 2>/dev/null
cat >leaf.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=clientAuth,serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
serial=10
for alg in ec-p256 ec-p384 rsa-2048 rsa-3072; do
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dummy.key \
		-subj "/CN=token-$alg" -out "req-$alg.csr" 2>/dev/null
	openssl x509 -req -in "req-$alg.csr" -CA ca.pem -CAkey ca.key -force_pubkey "pub-$alg.pem" \
		-set_serial $((serial++)) -days 2 -extfile leaf.ext -out "leaf-$alg.pem" 2>/dev/null
	uri="pkcs11:token=tg-cli;object=k-$alg?pin-value=1234"
	# a certificate of another key is refused
	other=ec-p384
	[[ $alg == ec-p384 ]] && other=ec-p256
	if [[ -e "leaf-$other.pem" ]]; then
		expect_rc 1 "$TG" token import-cert --key "$uri" --cert "leaf-$other.pem"
		grep -q "is not the public key" err.txt || tg_fail "import mismatch message"
	fi
	expect_rc 1 "$TG" token export-cert --key "$uri"
	grep -q "import-cert" err.txt || tg_fail "export-cert without certificate: message"
	expect_rc 0 "$TG" token import-cert --key "$uri" --cert "leaf-$alg.pem"
	expect_rc 0 "$TG" token export-cert --key "$uri" --out "got-$alg.pem"
	cmp <(openssl x509 -in "leaf-$alg.pem" -outform DER) \
		<(openssl x509 -in "got-$alg.pem" -outform DER) || tg_fail "export-cert $alg differs"
	# stored with the key's CKA_ID
	keyid=$("$TG" token list --json --login --uri "pkcs11:token=tg-cli?pin-value=1234" |
		jq -r --arg l "k-$alg" '[[.modules[].tokens[]][0].objects[] | select(.class=="private-key" and .label==$l)][0].id')
	certid=$("$TG" token list --json --uri "pkcs11:token=tg-cli" |
		jq -r --arg l "k-$alg" '[[.modules[].tokens[]][0].objects[] | select(.class=="certificate" and .label==$l)][0].id')
	[[ -n $keyid && $keyid == "$certid" ]] || tg_fail "certificate id $certid != key id $keyid"
done
# replacing needs --replace: a different certificate for the same key
openssl x509 -req -in req-ec-p256.csr -CA ca.pem -CAkey ca.key -force_pubkey pub-ec-p256.pem \
	-set_serial 99 -days 2 -extfile leaf.ext -out leaf2.pem 2>/dev/null
expect_rc 1 "$TG" token import-cert --key "pkcs11:token=tg-cli;object=k-ec-p256?pin-value=1234" --cert leaf2.pem
grep -q -- "--replace" err.txt || tg_fail "replace hint"
expect_rc 0 "$TG" token import-cert --json --replace --key "pkcs11:token=tg-cli;object=k-ec-p256?pin-value=1234" --cert leaf2.pem
jq -e '.token == "tg-cli" and .key == "k-ec-p256" and (.uri | startswith("pkcs11:"))' out.txt >/dev/null ||
	tg_fail "import-cert --json: $(cat out.txt)"
expect_rc 0 "$TG" token export-cert --key "pkcs11:token=tg-cli;object=k-ec-p256?pin-value=1234"
cmp <(openssl x509 -in leaf2.pem -outform DER) <(openssl x509 -outform DER <out.txt) ||
	tg_fail "replaced certificate not exported"

# ---- TLS: token key as the CLIENT key against openssl s_server ----
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
	-subj /CN=localhost -out srv.csr 2>/dev/null
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -set_serial 50 -days 2 \
	-extfile leaf.ext -out srv.pem 2>/dev/null

s_server_pid=""
stop_server() {
	if [[ -n $s_server_pid ]]; then
		kill "$s_server_pid" 2>/dev/null || true
		wait "$s_server_pid" 2>/dev/null || true
		s_server_pid=""
	fi
}
tg_on_exit stop_server

client_case() { # client_case NAME ALG TLSVER WANT_SIG S_SERVER_ARGS...
	local name=$1 alg=$2 ver=$3 want=$4 port
	shift 4
	port=$(tg_free_port_pair)
	openssl s_server -accept "127.0.0.1:$port" -cert srv.pem -key srv.key -CAfile ca.pem \
		-Verify 2 -verify_return_error -www -naccept 1 "$@" >"s_server-$name.log" 2>&1 &
	s_server_pid=$!
	tg_wait_until 20 bash -c "ss -ltn | grep -q '127.0.0.1:$port '" ||
		tg_fail "$name: s_server did not listen"
	if ! "$PROBE" client "pkcs11:token=tg-cli;object=k-$alg?pin-value=1234" 127.0.0.1 "$port" \
		ca.pem "$ver" >"probe-$name.out" 2>&1; then
		cat "probe-$name.out" "s_server-$name.log" >&2
		tg_fail "$name: handshake failed"
	fi
	grep -q "ok version=TLSv$ver local_sig=$want" "probe-$name.out" || {
		cat "probe-$name.out" >&2
		tg_fail "$name: want TLSv$ver $want"
	}
	wait "$s_server_pid" 2>/dev/null || true
	s_server_pid=""
	grep -q "CN = token-$alg\|CN=token-$alg" "s_server-$name.log" ||
		tg_log "$name: s_server log does not show the client subject"
	tg_log "$name: $(cat "probe-$name.out")"
}
client_case tls13-ecdsa ec-p256 1.3 ECDSA -tls1_3
client_case tls13-ecdsa384 ec-p384 1.3 ECDSA -tls1_3
client_case tls13-rsapss rsa-2048 1.3 RSA-PSS -tls1_3 -client_sigalgs rsa_pss_rsae_sha256
client_case tls13-rsapss3072 rsa-3072 1.3 RSA-PSS -tls1_3 -client_sigalgs rsa_pss_rsae_sha384
client_case tls12-rsapkcs1 rsa-2048 1.2 RSA-PKCS1 -tls1_2 -client_sigalgs RSA+SHA256
client_case tls12-ecdsa ec-p256 1.2 ECDSA -tls1_2

# ---- TLS: token key as the SERVER key for openssl s_client ----
server_case() { # server_case NAME ALG TLSVER WANT_PEER_SIG S_CLIENT_ARGS...
	local name=$1 alg=$2 ver=$3 want=$4 port pid rc=0
	shift 4
	port=$(tg_free_port_pair)
	rm -f ready
	"$PROBE" server "pkcs11:token=tg-cli;object=k-$alg?pin-value=1234" "$port" ca.pem "$ver" \
		"$TG_TMP/ready" >"probe-$name.out" 2>&1 &
	pid=$!
	tg_on_exit bash -c "kill $pid 2>/dev/null || true"
	tg_wait_until 20 test -e "$TG_TMP/ready" || tg_fail "$name: probe server not ready"
	echo "hello" | timeout 30 openssl s_client -connect "127.0.0.1:$port" -CAfile ca.pem \
		-verify_return_error -brief "$@" >"s_client-$name.log" 2>&1 || rc=$?
	wait "$pid" || rc=$?
	if [[ $rc != 0 ]] || ! grep -q "Verification: OK" "s_client-$name.log" ||
		! grep -q "^Signature type: $want$" "s_client-$name.log" ||
		! grep -q "ok version=TLSv$ver" "probe-$name.out"; then
		cat "s_client-$name.log" "probe-$name.out" >&2
		tg_fail "$name: server handshake"
	fi
	tg_log "$name: $(cat "probe-$name.out")"
}
server_case srv-tls13-ecdsa ec-p256 1.3 ECDSA -tls1_3
server_case srv-tls13-rsapss rsa-2048 1.3 RSA-PSS -tls1_3
server_case srv-tls12-rsapkcs1 rsa-3072 1.2 RSA -tls1_2 -sigalgs RSA+SHA256

echo "PASS: token CLI and TLS with token keys"
