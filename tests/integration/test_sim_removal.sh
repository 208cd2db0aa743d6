#!/usr/bin/env bash
# test_sim_removal.sh — card removal and insertion by signal, and pcscd
# restarts: after SIGUSR1 `opensc-tool -l` reports no card; after SIGUSR2
# the same keys sign again; when pcscd restarts the simulator reconnects by
# itself; SIGTERM ends it cleanly (exit 0).
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/sim_lib.sh"

tg_require_cmd yubico-piv-tool opensc-tool pkcs11-tool openssl python3
[[ -e $TG_OPENSC_MODULE ]] || tg_skip "OpenSC PKCS#11 module $TG_OPENSC_MODULE not found"
sim_up
T=$TG_TMP
gen_cert 9a ECCP256 --pin-policy=once
openssl x509 -in "$T/9a.cert.pem" -noout -pubkey >"$T/9a.certpub.pem"
head -c 1000 /dev/urandom >"$T/data"

sign_check()
{
	run_ok "sign ($1)" p11 --login --pin "$SIM_PIN" --sign --id 01 -m ECDSA-SHA256 \
		--signature-format openssl -i "$T/data" -o "$T/sig"
	run_ok "verify ($1)" openssl dgst -sha256 -verify "$T/9a.certpub.pem" -signature "$T/sig" \
		"$T/data"
}
sign_check "before removal"

# --- SIGUSR1: removed; SIGUSR2: inserted, same keys (three rounds) -------
for round in 1 2 3; do
	kill -USR1 "$TG_SIM_PID"
	tg_wait_until "$TG_WAIT_SECS" tg__not tg_reader_card_present ||
		tg_fail "round $round: card still present after SIGUSR1: $(opensc-tool -l 2>&1)"
	out=$(opensc-tool -l 2>&1)
	grep -Eq "^[0-9]+ +No .*$TG_READER\$" <<<"$out" ||
		tg_fail "round $round: opensc-tool -l after SIGUSR1: $out"
	echo "ok: round $round: SIGUSR1: opensc-tool -l reports no card"
	expect_fail "sign while removed" p11 --login --pin "$SIM_PIN" --sign --id 01 \
		-m ECDSA-SHA256 -i "$T/data" -o "$T/sig2"
	if ((round == 1)); then
		# Stays removed (no reconnect behind our back).
		sleep 1.5
		! tg_reader_card_present || tg_fail "card came back without SIGUSR2"
	fi
	tg__pid_alive "$TG_SIM_PID" || tg_fail "simulator died on SIGUSR1"
	kill -USR2 "$TG_SIM_PID"
	tg_wait_until "$TG_WAIT_SECS" tg_reader_card_present ||
		tg_fail "round $round: no card after SIGUSR2"
	sign_check "round $round, after SIGUSR2"
	echo "ok: round $round: SIGUSR2: the same key signs again"
done

# --- pcscd restarts on the same port: the simulator reconnects ----------
port=$TG_VPCD_PORT pid=$TG_SIM_PID
tg_pcscd_stop
tg__pid_alive "$pid" || tg_fail "simulator died when pcscd stopped"
TG_PORT_MIN=$port TG_PORT_MAX=$((port + 2)) tg_pcscd_start
[[ $TG_VPCD_PORT == "$port" ]] || tg_fail "pcscd restarted on port $TG_VPCD_PORT, not $port"
tg_wait_until "$TG_WAIT_SECS" tg_reader_card_present ||
	tg_fail "simulator did not reconnect to the restarted pcscd"
sign_check "after pcscd restart"
grep -q 'sim.vpcd.lost' "$TG_SIM_LOG" || tg_fail "simulator did not log the lost connection"
echo "ok: reconnected to a restarted pcscd"

# --- SIGTERM: clean exit ------------------------------------------------
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
((rc == 0)) || tg_fail "simulator exited with $rc on SIGTERM, want 0"
unset TG_SIM_PID
tg_wait_until "$TG_WAIT_SECS" tg__not tg_reader_card_present || tg_fail "card present after SIGTERM"
echo "ok: SIGTERM: exit 0, card gone"
echo PASS
