#!/usr/bin/env bash
# bench/sim-sign.sh — ECDSA P-256 signatures per second through
# OpenSC's PKCS#11 module -> private pcscd -> vpcd -> tokengate-sim, and
# through SoftHSM2, measured side by side in the same run, RUNS times.
# Two ways each: COUNT signatures in one PKCS#11 session (bench_sim_sign_p11,
# one C_Login, C_SignInit + C_Sign per signature) and INVOCATIONS separate
# `pkcs11-tool --sign` processes (start-up and card detection included).
# Prints the figures and the ratio; asserts nothing.
#
#   bench/sim-sign.sh [BUILD_DIR] [COUNT] [RUNS] [INVOCATIONS] [LATENCY_MS]
#
# Defaults: build, 200, 3, 20, 0 (LATENCY_MS is tokengate-sim's
# --sign-latency-ms; 0 measures the simulator itself). Needs root (private
# pcscd) and the Debian packages pcscd, vsmartcard-vpcd, opensc, softhsm2,
# yubico-piv-tool. Exit codes: 0 measured, 1 failed, 77 cannot run here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$here/../build}" && pwd)
COUNT=${2:-200}
RUNS=${3:-3}
INVOCATIONS=${4:-20}
LATENCY=${5:-0}
export TG_BIN_DIR=$BUILD/bin
BENCH=$BUILD/bench/bench_sim_sign_p11
source "$here/../tests/lib/fixtures.sh"
source "$here/../tests/integration/sim_lib.sh"
[[ -x $BENCH ]] || tg_skip "$BENCH not built (cmake --build $BUILD --target bench_sim_sign_p11)"
tg_require_cmd pkcs11-tool yubico-piv-tool openssl

tg_softhsm_setup
tg_softhsm_token_add bench 1234
tg_softhsm_key_add bench p256 p256 01
sim_up -- --sign-latency-ms "$LATENCY" --log-level warn
gen_cert 9a ECCP256 --pin-policy=once --touch-policy=never
head -c 64 /dev/urandom >"$TG_TMP/data"

# rate LINE: the per_second figure of a bench_sim_sign_p11 line.
rate()
{
	sed -n 's/.*per_second=\([0-9.]*\).*/\1/p' <<<"$1"
}

# tool_rate MODULE LABEL PIN: pkcs11-tool --sign invocations per second.
tool_rate()
{
	local module=$1 pin=$3 t0 t1 i sel=()
	[[ $2 != - ]] && sel=(--token-label "$2")
	t0=$(tg__now_ms)
	for ((i = 0; i < INVOCATIONS; i++)); do
		pkcs11-tool --module "$module" "${sel[@]}" --login --pin "$pin" --sign --id 01 \
			-m ECDSA -i <(openssl dgst -sha256 -binary "$TG_TMP/data") \
			-o "$TG_TMP/sig" >/dev/null 2>&1 || tg_fail "pkcs11-tool --sign through $module failed"
	done
	t1=$(tg__now_ms)
	python3 -c "print('%.1f' % ($INVOCATIONS * 1000 / max(1, $t1 - $t0)))"
}

printf 'ECDSA P-256, %d signatures per session run, %d pkcs11-tool runs, sim latency %s ms\n' \
	"$COUNT" "$INVOCATIONS" "$LATENCY"
printf '%-4s %14s %14s %8s   %14s %14s %8s\n' run sim/s softhsm/s ratio \
	"sim-tool/s" "hsm-tool/s" ratio
for ((r = 1; r <= RUNS; r++)); do
	s=$("$BENCH" "$TG_OPENSC_MODULE" - "$SIM_PIN" 01 "$COUNT") ||
		tg_fail "bench through OpenSC/tokengate-sim failed"
	h=$("$BENCH" "$TG_SOFTHSM2_MODULE" bench 1234 01 "$COUNT") ||
		tg_fail "bench through SoftHSM2 failed"
	st=$(tool_rate "$TG_OPENSC_MODULE" - "$SIM_PIN")
	ht=$(tool_rate "$TG_SOFTHSM2_MODULE" bench 1234)
	python3 -c "
s, h, st, ht = $(rate "$s"), $(rate "$h"), $st, $ht
print('%-4d %14.1f %14.1f %8.4f   %14.1f %14.1f %8.4f' % ($r, s, h, s / h, st, ht, st / ht))"
done
echo "(ratio = simulator / SoftHSM2; the simulator persists its operation counter with fsync on every signature)"
