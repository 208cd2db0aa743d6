#!/usr/bin/env bash
# test_gate_audit.sh — the gate's audit trail:
#   every decision is one record, chained; `tokengate audit verify`
#   passes on the gate's own log and catches tampering (a field edited, a
#   line deleted) with the first broken line;
#   rotation: the log moved away and SIGHUP — the chain continues into the
#   new file (verify FILE.1 FILE passes);
#   "response" records reach the file while the gate runs (they are kept
#   and written with the next record or when the worker is idle); after
#   SIGKILL the chain verifies and every request that reached the upstream
#   has its "request" record, also when the gate is killed under concurrent
#   load (request records written together per worker loop pass);
#   the log cannot be written (its filesystem full): requests are refused
#   with 503 (fail closed), /readyz says 503, tokengate_audit_ok is 0 and
#   tokengate_audit_failures_total counts, the gate's log says why, nothing
#   reaches the upstream; once space is back the gate serves again and the
#   chain is intact.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
gate_require
tg_require_cmd unshare mount
((EUID == 0)) || tg_skip "a private tmpfs for the audit log needs root (unshare -m, mount)"
cd "$TG_TMP"
gate_pki
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
UPLOG=$TG_TMP/up-up.jsonl

# ---- the gate's log verifies; tampering is caught; rotation ---------------------------------
gate_start --audit-fsync always
gate_py alice req /echo /admin/x /v1/models/m >/dev/null
gate_py indexer req /v1/models/m >/dev/null
gate_client --addr "127.0.0.1:$GATE_PORT" --ca "$PKI/srvca.pem" req /echo >/dev/null 2>&1 || true
tg_wait_until 10 grep -q "\"event\":\"$GATE_EV_TLS\"" "$GATE_AUDIT" || tg_fail "no TLS rejection record"
"$TG" audit verify "$GATE_AUDIT" >out 2>err || tg_fail "audit verify of the gate's log: $(cat err)"
n=$(wc -l <"$GATE_AUDIT")
((n >= 6)) || tg_fail "only $n records for 4 requests and a rejection"
# every line carries time and the previous line's hash
jq -e -s 'all(.[]; has("time") and has("prev") and has("event"))' "$GATE_AUDIT" >/dev/null ||
	tg_fail "a record without time/prev/event: $(cat "$GATE_AUDIT")"
# edit the decision of the deny (line of /admin/x) into an allow
ln=$(grep -n '"path":"/admin/x"' "$GATE_AUDIT" | head -n1 | cut -d: -f1)
[[ -n $ln ]] || tg_fail "no record for /admin/x: $(cat "$GATE_AUDIT")"
sed "${ln}s/\"decision\":\"deny\"/\"decision\":\"allow\"/" "$GATE_AUDIT" >tampered.log
! cmp -s tampered.log "$GATE_AUDIT" || tg_fail "the deny record has no \"decision\":\"deny\" to edit: $(sed -n "${ln}p" "$GATE_AUDIT")"
tg_expect_exit 1 "tampered.log:$((ln + 1)): prev does not match the SHA-256 of line $ln" "$TG" audit verify tampered.log
sed "${ln}d" "$GATE_AUDIT" >deleted.log
tg_expect_exit 1 "deleted.log:$ln: prev does not match the SHA-256 of line $((ln - 1))" "$TG" audit verify deleted.log
echo "ok: the gate's audit log verifies; an edited and a deleted record are caught at line $((ln + 1)) / $ln"
mv "$GATE_AUDIT" "$GATE_AUDIT.1"
[[ $(gate_reload) == ok ]] || tg_fail "reload for rotation: $(tail -3 "$GATE_LOG")"
gate_py alice req /echo >/dev/null
tg_wait_until 10 test -s "$GATE_AUDIT" || tg_fail "no new audit file after rotation"
"$TG" audit verify "$GATE_AUDIT.1" "$GATE_AUDIT" >out 2>err || tg_fail "the chain does not continue into the new file: $(cat err)"
echo "ok: rotation on SIGHUP continues the chain into the new file"

# ---- "response" records reach the file while the gate runs; SIGKILL ---------------------------
# loses no "request" record of a request that reached the upstream
resp() { grep -c '"event":"response"' "$GATE_AUDIT" || true; }
r0=$(resp)
gate_py alice req -n /echo /echo /echo >/dev/null
tg_wait_until 5 sh -c "[ \$(grep -c '\"event\":\"response\"' '$GATE_AUDIT') -ge $((r0 + 3)) ]" ||
	tg_fail "the response records of 3 finished requests are not in the log while the gate runs: $(tail -4 "$GATE_AUDIT")"
kill -KILL "$GATE_PID"
gate_stop
"$TG" audit verify "$GATE_AUDIT.1" "$GATE_AUDIT" >out 2>err || tg_fail "the chain after SIGKILL: $(cat err)"
allowed=$(cat "$GATE_AUDIT.1" "$GATE_AUDIT" | jq -s '[.[] | select(.event == "request" and .decision == "allow")] | length')
((allowed >= $(wc -l <"$UPLOG"))) ||
	tg_fail "$(wc -l <"$UPLOG") requests reached the upstream, only $allowed allow records survived SIGKILL"
echo "ok: response records are written while the gate runs; after SIGKILL the chain verifies and every forwarded request has its record"

# ---- SIGKILL under concurrent load: the "request" records of allowed ----------------------
# requests are kept and written together by each worker (one write(2) for
# the requests decided in one pass of its loop), and a request goes upstream
# only after that write: every request id the upstream saw has its allow
# record in the log that survives
gate_ports
GATE_AUDIT=$TG_TMP/load-audit.log
gate_start
u0=$(wc -l <"$UPLOG")
pids=()
for i in 1 2 3 4 5 6; do
	gate_py alice req -n $(printf '/echo/%s ' $(seq 60)) >"load$i.out" 2>&1 &
	pids+=($!)
done
tg_wait_until 20 sh -c "[ \$(wc -l <'$UPLOG') -ge $((u0 + 60)) ]" ||
	tg_fail "the concurrent clients got nowhere: $(tail -3 load1.out)"
kill -KILL "$GATE_PID"
gate_stop
for p in "${pids[@]}"; do wait "$p" || true; done
"$TG" audit verify "$GATE_AUDIT" >out 2>err || tg_fail "the chain after SIGKILL under load: $(cat err)"
tail -n +"$((u0 + 1))" "$UPLOG" |
	jq -r '.headers[] | select(.[0] | ascii_downcase == "x-tokengate-request-id") | .[1]' | sort -u >up.ids
jq -r 'select(.event == "request" and .decision == "allow") | .request_id' "$GATE_AUDIT" | sort -u >rec.ids
nup=$(wc -l <up.ids)
((nup >= 60)) || tg_fail "only $nup request ids seen upstream"
missing=$(comm -23 up.ids rec.ids | head -3)
[[ -z $missing ]] || tg_fail "forwarded without a surviving \"request\" record (SIGKILL under load): $missing"
echo "ok: SIGKILL with 6 clients in flight: all $nup requests the upstream saw have their allow record; the chain verifies"

# ---- fail closed when the log cannot be written ---------------------------------------------------
# The gate runs in its own mount namespace with a 256 KiB tmpfs for the
# audit log; the test reaches that filesystem through /proc/PID/root.
mkdir -p "$TG_TMP/afs"
GATE_AUDIT=$TG_TMP/afs/audit.log
# shellcheck disable=SC2016
GATE_WRAP=(unshare -m sh -c 'mount -t tmpfs -o size=256k,mode=0700 tmpfs "$1" && shift && exec "$@"' sh "$TG_TMP/afs")
gate_ports
gate_start --audit-fsync always
unset GATE_WRAP
FS=/proc/$GATE_PID/root$TG_TMP/afs
[[ -f $FS/audit.log ]] || tg_fail "the audit log is not on the private tmpfs"
out=$(gate_py alice req /echo)
[[ $(jq -r .status <<<"$out") == 200 ]] || tg_fail "before the disk fills: $out"
# fill the filesystem
dd if=/dev/zero of="$FS/fill" bs=4k 2>/dev/null || true
n0=$(wc -l <"$UPLOG")
# the records of a request may still fit in the log's last page; within a
# few requests the gate must refuse, and go on refusing
gate_py alice req -n /echo /echo /echo /echo /echo /echo /echo /echo /echo /echo /echo /echo >fc.out || true
statuses=$(jq -r '.status // .error' fc.out | tr '\n' ' ')
[[ $statuses == *503* ]] || tg_fail "the audit log is full but requests are served: $statuses"
# A 200 between 503s is allowed only if its record fit in the last bytes
# (the writev of kept response records + the next record is longer than one
# record alone); what must hold: every forwarded request has its record
# (below), and once the space is gone the gate goes on refusing.
[[ $statuses =~ (503\ ){3}$ ]] || tg_fail "want the gate to go on refusing once the log is full: $statuses"
grep -m1 '"status": 503' fc.out | jq -r .body | grep -qF "audit log" || tg_fail "the 503 does not say why: $(grep -m1 503 fc.out)"
served=$(grep -c '"status": 200' fc.out || true)
[[ $(($(wc -l <"$UPLOG") - n0)) == "$served" ]] || tg_fail "a request was forwarded without its audit record ($served served, $(($(wc -l <"$UPLOG") - n0)) upstream)"
curl -sS -o body -w '%{http_code}' "http://$GATE_ADMIN/readyz" >code
[[ $(cat code) == 503 ]] || tg_fail "/readyz with a full audit log: $(cat code) $(cat body)"
curl -sS "http://$GATE_ADMIN/metrics" >metrics.txt
grep -q '^tokengate_audit_ok 0' metrics.txt || tg_fail "tokengate_audit_ok is not 0: $(grep audit metrics.txt)"
grep -q '^tokengate_audit_failures_total [1-9]' metrics.txt || tg_fail "no audit failure counted: $(grep audit metrics.txt)"
grep -qi 'audit' <(tail -n 20 "$GATE_LOG") || tg_fail "the gate's log does not say the audit log failed"
echo "ok: a full audit filesystem: requests refused with 503 ($statuses), /readyz 503, metrics, log"
# space again: the gate resumes
rm -f "$FS/fill"
out=$(gate_py alice req -n /echo /echo)
[[ $(jq -r '.status // .error' <<<"$out" | tail -n1) == 200 ]] || tg_fail "after space came back: $out"
tg_wait_until 10 sh -c "curl -sS -o /dev/null -w '%{http_code}' http://$GATE_ADMIN/readyz | grep -qx 200" ||
	tg_fail "/readyz does not recover"
grep -q '^tokengate_audit_ok 1' <(curl -sS "http://$GATE_ADMIN/metrics") || tg_fail "tokengate_audit_ok does not recover"
cp "$FS/audit.log" copy.log
"$TG" audit verify copy.log >out 2>err || tg_fail "the chain after the failure: $(cat err)"
gate_stop
echo "ok: the gate resumes when the audit log can be written again; the chain is intact"
