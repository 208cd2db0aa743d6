#!/usr/bin/env bash
# test_audit.sh — `tokengate audit verify` on audit logs built here line by
# line with sha256sum (an implementation of the chain independent of
# tgaudit's): intact files pass; a modified field, a deleted line, two lines
# swapped, a line appended by hand, a truncated file and rotated files given
# in the wrong order each fail with exit 1 and the first broken line named
# as FILE:LINE on stderr; bad command lines exit 2.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"

tg_require_cmd sha256sum
TG=$TG_BIN_DIR/tokengate
[[ -x $TG ]] || tg_skip "$TG is not built"
cd "$TG_TMP"

GENESIS=0000000000000000000000000000000000000000000000000000000000000000
prev=$GENESIS

# add FILE N: appends record N to FILE, chained to the line before.
add()
{
	local line
	line=$(printf '{"identity":"spiffe://example.org/dev/alice","n":%d,"prev":"%s","route":"datasets-read","status":200}' "$2" "$prev")
	printf '%s\n' "$line" >>"$1"
	prev=$(printf '%s' "$line" | sha256sum | cut -c1-64)
}

# ok ARGS...: verify must exit 0.
ok()
{
	"$TG" audit verify "$@" >"$TG_TMP/out" 2>"$TG_TMP/err" ||
		tg_fail "audit verify $* failed: $(cat "$TG_TMP/err")"
}

for i in 1 2 3 4 5; do add a.log "$i"; done
chmod 600 a.log
ok a.log
grep -qF "intact: 5 lines in 1 files; the chain starts at the genesis; head $prev" out ||
	tg_fail "unexpected output: $(cat out)"
ok --genesis a.log

# a modified field: the next line's prev no longer matches
sed '2s/"status":200/"status":403/' a.log >mod.log
tg_expect_exit 1 "mod.log:3: prev does not match the SHA-256 of line 2" \
	"$TG" audit verify mod.log
# a deleted line
sed 3d a.log >del.log
tg_expect_exit 1 "del.log:3: prev does not match the SHA-256 of line 2" \
	"$TG" audit verify del.log
# two lines swapped
{ sed -n 1p a.log; sed -n 3p a.log; sed -n 2p a.log; sed -n '4,5p' a.log; } >swap.log
tg_expect_exit 1 "swap.log:2: prev does not match the SHA-256 of line 1" \
	"$TG" audit verify swap.log
# a line appended by hand: without prev, with a made-up prev
{ cat a.log; echo '{"n":6,"status":200}'; } >app.log
tg_expect_exit 1 "app.log:6: no \"prev\" field" "$TG" audit verify app.log
{ cat a.log; printf '{"n":6,"prev":"%s"}\n' "$GENESIS"; } >app2.log
tg_expect_exit 1 "app2.log:6: prev does not match the SHA-256 of line 5" \
	"$TG" audit verify app2.log
# not JSON
{ head -2 a.log; echo 'garbage'; tail -n +3 a.log; } >garbage.log
tg_expect_exit 1 "garbage.log:3: not a JSON object" "$TG" audit verify garbage.log
# a truncated file: the last line cut short
head -c $(($(stat -c %s a.log) - 20)) a.log >trunc.log
tg_expect_exit 1 "trunc.log:5: torn last line" "$TG" audit verify trunc.log

# rotation: the new file's first line continues the old file's chain
prev=$GENESIS
for i in 1 2 3; do add old.log "$i"; done
for i in 4 5; do add new.log "$i"; done
ok old.log new.log
grep -qF "intact: 5 lines in 2 files" out || tg_fail "unexpected output: $(cat out)"
# the new file alone starts after a line not given; --genesis refuses it
ok new.log
grep -qF "after a line not given" out || tg_fail "unexpected output: $(cat out)"
tg_expect_exit 1 "new.log:1: the first line does not start the chain" \
	"$TG" audit verify --genesis new.log
# in the wrong order
tg_expect_exit 1 "old.log:1: prev does not match the SHA-256 of the last line (2) of new.log" \
	"$TG" audit verify new.log old.log
# a line deleted at the end of the old file shows in the new one
sed 3d old.log >old2.log
tg_expect_exit 1 "new.log:1: prev does not match the SHA-256 of the last line (2) of old2.log" \
	"$TG" audit verify old2.log new.log

# --json: the same verdict, machine-readable
rc=0
"$TG" audit verify --json del.log >json.out 2>/dev/null || rc=$?
[[ $rc -eq 1 ]] || tg_fail "--json on a broken log: exit $rc"
grep -qF '"flaw": "prev-mismatch"' json.out || tg_fail "--json: $(cat json.out)"
grep -qF '"line": 3' json.out || tg_fail "--json: $(cat json.out)"
grep -qF '"intact": false' json.out || tg_fail "--json: $(cat json.out)"
"$TG" audit verify --json a.log >json.out || tg_fail "--json on an intact log failed"
grep -qF '"intact": true' json.out || tg_fail "--json: $(cat json.out)"
head=$(tail -n 1 a.log | tr -d '\n' | sha256sum | cut -c1-64)
grep -qF "\"head\": \"$head\"" json.out || tg_fail "--json head: $(cat json.out)"

# what cannot be read, and bad command lines
tg_expect_exit 1 "cannot open audit log 'missing.log'" "$TG" audit verify missing.log
tg_expect_exit 2 "name at least one audit log FILE" "$TG" audit verify
tg_expect_exit 2 "unknown option '--frobnicate'" "$TG" audit verify --frobnicate a.log
tg_expect_exit 2 "unknown command 'check'" "$TG" audit check a.log
"$TG" audit verify --help | grep -qF "usage: tokengate audit verify" ||
	tg_fail "audit verify --help"
"$TG" --help | grep -qF "audit" || tg_fail "tokengate --help does not list audit"
echo "PASS"
