#!/usr/bin/env bash
# test_ca_store.sh — the CA's own files checked the way OpenSSH checks its
# files: `ca init` makes the directory 0700; every command that opens a CA
# refuses a directory, ca.pem, policy.yaml, ca.key(.uri) or attestation
# roots directory that others can write (the key: that others can access
# at all), that is not the user's, or that is a symbolic link, naming the
# path and the fix — and the printed fix makes it work again. Concurrent
# `ca revoke` and `ca crl` lose no serial and reuse no CRL number, and no
# temporary file is left behind.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"

tg_require_cmd openssl
TG=$TG_BIN_DIR/tokengate
[[ -x $TG ]] || tg_skip "$TG is not built"
cd "$TG_TMP"

mode() { stat -c %a "$1"; }

# wait_all WHAT PID...: every PID (started with &) must exit 0.
wait_all()
{
	local what=$1 p
	shift
	for p in "$@"; do
		wait "$p" || tg_fail "a concurrent $what failed: $(cat "$what"-*.out)"
	done
}

# refused WANT: both a command that needs the key (crl) and one that does
# not (revoke) must refuse the CA with WANT; crl must write nothing.
refused()
{
	rm -f crl.pem
	tg_expect_exit 1 "$1" "$TG" ca crl --dir ca --out crl.pem
	[[ ! -e crl.pem ]] || tg_fail "a CRL was written for a refused CA"
	tg_expect_exit 1 "$1" "$TG" ca revoke --dir ca --serial 01
}

# fix: runs the command the last refusal printed ("run 'CMD'"), then the CA
# must open again.
fix()
{
	local cmd
	cmd=$(grep -o "run '[^']*'" "$TG_TMP/err" | head -n1 | sed "s/^run '//; s/'\$//")
	[[ -n $cmd ]] || tg_fail "no fix printed in: $(cat "$TG_TMP/err")"
	echo "applying the printed fix: $cmd"
	bash -c "$cmd"
	"$TG" ca crl --dir ca --out crl.pem || tg_fail "still refused after '$cmd'"
}

# ---- ca init: the directory is 0700 ----------------------------------
umask 022
"$TG" ca init --dir ca --trust-domain example.org >/dev/null
[[ $(mode ca) == 700 ]] || tg_fail "new CA directory mode $(mode ca), want 700"
[[ $(mode ca/ca.key) == 600 ]] || tg_fail "ca.key mode $(mode ca/ca.key)"
mkdir open
chmod 777 open
"$TG" ca init --dir open --trust-domain example.org >/dev/null
[[ $(mode open) == 700 ]] || tg_fail "existing empty 0777 directory left at $(mode open)"
echo "ok: ca init creates the directory 0700 and makes an existing empty 0777 one 0700"
# a directory that already holds something is not silently re-moded
mkdir busy
chmod 777 busy
touch busy/notes
tg_expect_exit 1 "CA directory 'busy' is writable by group and others (mode 0777), so they could change what it holds; run 'chmod go-w busy'" \
	"$TG" ca init --dir busy --trust-domain example.org
[[ ! -e busy/ca.pem ]] || tg_fail "a CA was made in a refused directory"
mkdir real
ln -s real linked
tg_expect_exit 1 "CA directory 'linked' is a symbolic link, which tokengate does not follow for this file; put the directory itself there" \
	"$TG" ca init --dir linked --trust-domain example.org
[[ -z $(ls -A real) ]] || tg_fail "ca init wrote through a linked directory"

# ---- the CA directory ---------------------------------------------------
"$TG" ca crl --dir ca --out crl.pem
chmod 777 ca
refused "CA directory 'ca' is writable by group and others (mode 0777), so they could change what it holds; run 'chmod go-w ca'"
fix
chmod 770 ca
refused "CA directory 'ca' is writable by group (mode 0770), so they could change what it holds; run 'chmod go-w ca'"
fix

# ---- policy.yaml ------------------------------------------------------------
chmod 666 ca/policy.yaml
refused "CA policy 'ca/policy.yaml' is writable by group and others (mode 0666), so they could change what it holds; run 'chmod go-w ca/policy.yaml'"
fix
chmod 620 ca/policy.yaml
refused "CA policy 'ca/policy.yaml' is writable by group (mode 0620), so they could change what it holds; run 'chmod go-w ca/policy.yaml'"
fix
# a link is refused, not followed (whatever it points at)
mv ca/policy.yaml policy-real.yaml
ln -s "$TG_TMP/policy-real.yaml" ca/policy.yaml
refused "CA policy 'ca/policy.yaml' is a symbolic link, which tokengate does not follow for this file; put the file itself there"
rm ca/policy.yaml
mv policy-real.yaml ca/policy.yaml

# ---- attestation roots, the default one and one elsewhere ------------------
chmod 775 ca/attestation-roots
refused "attestation roots directory 'ca/attestation-roots' is writable by group (mode 0775), so they could change what it holds; run 'chmod go-w ca/attestation-roots'"
fix
mkdir roots2
chmod 775 roots2
# ca init already refuses a roots directory it would refuse on every open
tg_expect_exit 1 "attestation roots directory '$TG_TMP/roots2' is writable by group (mode 0775), so they could change what it holds; run 'chmod go-w $TG_TMP/roots2'" \
	"$TG" ca init --dir ca2 --trust-domain example.org --attestation-roots "$TG_TMP/roots2"
[[ ! -e ca2/ca.key ]] || tg_fail "ca init made a key before refusing the roots directory"
chmod go-w roots2
"$TG" ca init --dir ca2 --trust-domain example.org --attestation-roots "$TG_TMP/roots2" >/dev/null
chmod 757 roots2
tg_expect_exit 1 "attestation roots directory '$TG_TMP/roots2' is writable by others (mode 0757), so they could change what it holds; run 'chmod go-w $TG_TMP/roots2'" \
	"$TG" ca crl --dir ca2 --out crl2.pem
chmod go-w roots2
"$TG" ca crl --dir ca2 --out crl2.pem

# ---- the CA key: owner only -------------------------------------------------
chmod 660 ca/ca.key
refused "CA key 'ca/ca.key' is readable and writable by others (mode 0660); run 'chmod 600 ca/ca.key'"
fix
chmod 644 ca/ca.key
refused "CA key 'ca/ca.key' is readable by others (mode 0644); run 'chmod 600 ca/ca.key'"
fix
chmod 602 ca/ca.key
refused "CA key 'ca/ca.key' is writable by others (mode 0602); run 'chmod 600 ca/ca.key'"
fix
mv ca/ca.key key-real
ln -s "$TG_TMP/key-real" ca/ca.key
refused "CA key 'ca/ca.key' is a symbolic link"
rm ca/ca.key
mv key-real ca/ca.key
# ca.key.uri (an HSM key) is checked before any module is loaded
printf 'pkcs11:token=nope' >ca/ca.key.uri
chmod 666 ca/ca.key.uri
refused "CA key URI file 'ca/ca.key.uri' is writable by group and others (mode 0666), so they could change what it holds; run 'chmod go-w ca/ca.key.uri'"
rm ca/ca.key.uri
# ca.pem: whoever could swap the CA certificate could hand out a false one
chmod 646 ca/ca.pem
refused "CA certificate 'ca/ca.pem' is writable by others (mode 0646)"
fix

# ---- owner ----------------------------------------------------------------
if [[ $(id -u) == 0 ]]; then
	for p in ca ca/policy.yaml ca/ca.key ca/attestation-roots; do
		chown 65534 "$p"
		refused "'$p' is owned by uid 65534, not by uid 0 that runs this command; whoever owns it controls it: run 'chown 0 $p'"
		fix
	done
	mkdir nobody
	chown 65534 nobody
	tg_expect_exit 1 "CA directory 'nobody' is owned by uid 65534" \
		"$TG" ca init --dir nobody --trust-domain example.org
	[[ $(mode nobody) == 755 ]] || tg_fail "ca init changed the mode of a foreign directory"
else
	tg_log "not root: owner checks not exercised (they need chown to another user)"
fi

# ---- revoked.txt is parsed strictly -------------------------------------------
printf '0A 1700000000\n0b 1700000001 extra\n' >ca/revoked.txt
tg_expect_exit 1 "ca/revoked.txt line 2: the reason after the time must be one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn; each line must be 'SERIALHEX UNIXTIME [REASON]'" \
	"$TG" ca crl --dir ca --out crl.pem
printf '0A 1700000000\n0b 1x\n' >ca/revoked.txt
tg_expect_exit 1 "ca/revoked.txt line 2: the revocation time must be decimal Unix seconds; each line must be 'SERIALHEX UNIXTIME [REASON]'" \
	"$TG" ca crl --dir ca --out crl.pem
chmod 666 ca/revoked.txt
tg_expect_exit 1 "revocation list 'ca/revoked.txt' is writable by group and others (mode 0666)" \
	"$TG" ca crl --dir ca --out crl.pem
rm ca/revoked.txt

# ---- concurrent revocations and CRLs -----------------------------------------
# Each revoke reads, extends and rewrites revoked.txt: without the lock,
# concurrent runs lose each other's serials. The issued/ records stand in
# for certificates (revoke only needs the CA to have issued the serial).
N=16
serials=()
for i in $(seq 1 $N); do
	s=$(printf '%02X' $((i + 16)))
	serials+=("$s")
	: >"ca/issued/$s.pem"
done
pids=()
for s in "${serials[@]}"; do
	"$TG" ca revoke --dir ca --serial "$s" >"revoke-$s.out" 2>&1 &
	pids+=($!)
done
wait_all revoke "${pids[@]}"
[[ $(wc -l <ca/revoked.txt) -eq $N ]] || tg_fail "revoked.txt has $(wc -l <ca/revoked.txt) lines, want $N: $(cat ca/revoked.txt)"
for s in "${serials[@]}"; do
	grep -q "^$s " ca/revoked.txt || tg_fail "serial $s lost by a concurrent revoke"
done
echo "ok: $N concurrent revokes, all $N serials in revoked.txt"

crlnum() { echo $(($(openssl crl -in "$1" -noout -crlnumber | cut -d= -f2))); } # prints 0x..
first=$(crlnum crl.pem)
pids=()
for i in $(seq 1 8); do
	"$TG" ca crl --dir ca --out "crl-$i.pem" >"crl-$i.out" 2>&1 &
	pids+=($!)
done
wait_all crl "${pids[@]}"
nums=$(for i in $(seq 1 8); do
	crlnum "crl-$i.pem"
done | sort -n)
# consecutive from the last: the CRLs refused above used no number
want=$(seq $((first + 1)) $((first + 8)))
[[ $nums == "$want" ]] || tg_fail "concurrent CRL numbers $(echo $nums), want $(echo $want)"
for i in $(seq 1 8); do
	[[ $(openssl crl -in "crl-$i.pem" -noout -text | grep -c "Serial Number:") -eq $N ]] ||
		tg_fail "crl-$i.pem does not list the $N revoked serials"
done
echo "ok: 8 concurrent CRLs got the distinct numbers $(echo $nums)"

# ---- no temporary file left by the atomic writer --------------------------------
left=$(find ca open ca2 -name '.*' -o -name '*.tmp*')
[[ -z $left ]] || tg_fail "temporary files left behind: $left"
echo "ok: no temporary files left"
