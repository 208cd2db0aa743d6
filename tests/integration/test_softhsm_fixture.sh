#!/usr/bin/env bash
# The SoftHSM2 fixture: a throw-away SOFTHSM2_CONF with the default token
# layout, seen through pkcs11-tool (and p11tool when installed), keys with
# the promised attributes, a second token with its own PINs, the
# with-softhsm.sh wrapper, and nothing left behind afterwards — even when
# the test using it fails or is terminated.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"

tg_require_cmd pkcs11-tool softhsm2-util awk
tg_softhsm_default

M=$TG_SOFTHSM2_MODULE
[[ -f $SOFTHSM2_CONF ]] || tg_fail "SOFTHSM2_CONF '$SOFTHSM2_CONF' is not a file"
[[ $SOFTHSM2_CONF == "$TG_TMP"/* ]] || tg_fail "SOFTHSM2_CONF is outside the test's temp dir"
[[ $TG_SOFTHSM_DIR == "$TG_TMP"/* ]] || tg_fail "token dir is outside the test's temp dir"

# --- the token is listed -------------------------------------------------
slots=$(pkcs11-tool --module "$M" -L)
grep -Eq "token label +: $TG_SOFTHSM_TOKEN\$" <<<"$slots" ||
	tg_fail "token '$TG_SOFTHSM_TOKEN' not listed by pkcs11-tool -L: $slots"
echo "ok: pkcs11-tool -L lists token '$TG_SOFTHSM_TOKEN'"

# --- the keys and their attributes ---------------------------------------
objs=$(pkcs11-tool --module "$M" --token-label "$TG_SOFTHSM_TOKEN" \
	--login --pin "$TG_SOFTHSM_PIN" -O)

# Prints "label|class|type|access" per object of pkcs11-tool -O output.
parse_objects()
{
	awk '
	function flush() { if (cls != "") print label "|" cls "|" type "|" access }
	/^[A-Za-z ]+ Object;/ {
		flush()
		cls = $1; label = ""; access = ""
		type = $0; sub(/^[^;]*; */, "", type); sub(/ +$/, "", type)
		next
	}
	/^ +label:/  { l = $0; sub(/^ +label: +/, "", l); label = l }
	/^ +Access:/ { a = $0; sub(/^ +Access: +/, "", a); access = a }
	END { flush() }'
}

# has_flag "a, b, c" b: exact member of a comma-separated list.
has_flag()
{
	local IFS=, f
	for f in $1; do
		f=${f# }
		[[ $f == "$2" ]] && return 0
	done
	return 1
}

parsed=$(parse_objects <<<"$objs")
check_key()
{
	local label=$1 pubtype=$2 exportable=$3 priv pub access
	priv=$(awk -F'|' -v l="$label" '$1 == l && $2 == "Private"' <<<"$parsed")
	pub=$(awk -F'|' -v l="$label" '$1 == l && $2 == "Public"' <<<"$parsed")
	[[ $(wc -l <<<"$priv") == 1 && -n $priv ]] ||
		tg_fail "expected one private key '$label', got: '$priv'"
	[[ -n $pub ]] || tg_fail "no public key '$label'"
	[[ $(cut -d'|' -f3 <<<"$pub") == *"$pubtype"* ]] ||
		tg_fail "public key '$label' is '$(cut -d'|' -f3 <<<"$pub")', expected '$pubtype'"
	access=$(cut -d'|' -f4 <<<"$priv")
	if [[ $exportable == yes ]]; then
		has_flag "$access" extractable ||
			tg_fail "key '$label' should be extractable, access: '$access'"
		! has_flag "$access" "never extractable" ||
			tg_fail "key '$label' is 'never extractable', access: '$access'"
	else
		has_flag "$access" sensitive ||
			tg_fail "key '$label' is not sensitive, access: '$access'"
		has_flag "$access" "never extractable" ||
			tg_fail "key '$label' is not 'never extractable', access: '$access'"
		! has_flag "$access" extractable ||
			tg_fail "key '$label' is extractable, access: '$access'"
	fi
	echo "ok: key '$label' ($pubtype) access '$access'"
}
check_key p256 "EC_POINT 256 bits" no
check_key p384 "EC_POINT 384 bits" no
check_key rsa2048 "RSA 2048 bits" no
check_key exportable "EC_POINT 256 bits" yes
nkeys=$(awk -F'|' '$2 == "Private"' <<<"$parsed" | wc -l)
((nkeys == 4)) || tg_fail "expected 4 private keys, found $nkeys"

# The IDs are the documented ones.
for pair in p256:01 p384:02 rsa2048:03 exportable:04; do
	label=${pair%:*} id=${pair#*:}
	out=$(pkcs11-tool --module "$M" --token-label "$TG_SOFTHSM_TOKEN" \
		--login --pin "$TG_SOFTHSM_PIN" -O --type privkey --id "$id")
	grep -Eq "label: +$label\$" <<<"$out" ||
		tg_fail "private key with id $id is not '$label': $out"
done
echo "ok: key ids 01..04"

# A second opinion on CKA_EXTRACTABLE from GnuTLS's p11tool, which prints
# the raw attribute names.
if command -v p11tool >/dev/null; then
	p11=$(p11tool --provider "$M" --login --set-pin="$TG_SOFTHSM_PIN" \
		--list-all-privkeys "$TG_SOFTHSM_URI" 2>&1)
	p11flags()
	{
		awk -v l="$1" '
			/^Object/ { lab = "" }
			/^\tLabel: / { lab = substr($0, 9) }
			/^\tFlags: / && lab == l { print }' <<<"$p11"
	}
	for label in p256 p384 rsa2048; do
		f=$(p11flags "$label")
		[[ $f == *"CKA_SENSITIVE"* && $f == *"CKA_NEVER_EXTRACTABLE"* &&
			$f != *"CKA_EXTRACTABLE"* ]] ||
			tg_fail "p11tool: key '$label' flags '$f'"
	done
	f=$(p11flags exportable)
	[[ $f == *"CKA_EXTRACTABLE"* ]] || tg_fail "p11tool: 'exportable' flags '$f'"
	echo "ok: p11tool agrees on CKA_EXTRACTABLE/CKA_SENSITIVE"
else
	echo "note: p11tool (gnutls-bin) not installed; second check skipped"
fi

# --- a second token with its own PINs --------------------------------------
tg_softhsm_token_add other 4321 8765
tg_softhsm_key_add other p256 k1 0a
pkcs11-tool --module "$M" -L | grep -Eq "token label +: other\$" ||
	tg_fail "second token 'other' not listed"
out=$(pkcs11-tool --module "$M" --token-label other --login --pin 4321 -O --type privkey)
grep -Eq "label: +k1\$" <<<"$out" || tg_fail "key k1 not on token 'other': $out"
if pkcs11-tool --module "$M" --token-label other --login --pin 1234 -O >/dev/null 2>&1; then
	tg_fail "token 'other' accepted the default PIN"
fi
echo "ok: second token 'other' with its own PIN"

# --- the wrapper -----------------------------------------------------------
# It sets up its own directory, shows the layout to CMD, passes CMD's
# status through and removes its directory.
out=$(bash "$TG_FIXTURES/with-softhsm.sh" bash -c '
	echo "conf=$SOFTHSM2_CONF"
	echo "dir=$TG_SOFTHSM_DIR"
	pkcs11-tool --module "$TG_SOFTHSM2_MODULE" -L | grep -Eq "token label +: $TG_SOFTHSM_TOKEN\$" || exit 9
	exit 3') && rc=0 || rc=$?
((rc == 3)) || tg_fail "with-softhsm.sh returned $rc, expected the command's 3: $out"
wdir=$(sed -n 's/^dir=//p' <<<"$out")
[[ -n $wdir && $wdir != "$TG_SOFTHSM_DIR" ]] ||
	tg_fail "with-softhsm.sh did not use a directory of its own: '$wdir'"
[[ ! -e $wdir ]] || tg_fail "with-softhsm.sh left its token dir '$wdir' behind"
echo "ok: with-softhsm.sh (status passed through, own dir removed)"

# --- cleanup, also after failure and termination ---------------------------
child()
{
	# $1: what the child does after setting up the default layout.
	bash -c 'set -euo pipefail
		source "$TG_FIXTURES/fixtures.sh"
		tg_softhsm_default
		echo "$TG_TMP $TG_SOFTHSM_DIR"
		'"$1"
}
for how in 'exit 0' 'false' 'kill -TERM $$; sleep 5'; do
	line=$(child "$how" 2>/dev/null) || true
	read -r ctmp cdir <<<"$line"
	[[ -n ${cdir:-} && $cdir == "$ctmp"/* ]] || tg_fail "child ($how) printed '$line'"
	[[ ! -e $cdir && ! -e $ctmp ]] || tg_fail "child ($how) left '$ctmp' behind"
	echo "ok: token dir removed after child '$how'"
done

echo "PASS"
