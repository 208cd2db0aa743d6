#!/usr/bin/env bash
# test_gate_sim.sh — `tokengate gate` and a device-attested leaf of a real
# (simulated) token: `tokengate enroll` on tokengate-sim (slot 9a, PIN
# policy once, touch never) through a private pcscd, certified by a CA made
# with `tokengate ca init` that trusts the simulator's manufacturer; curl
# uses the key on the token through OpenSSL's pkcs11 engine (OpenSC's
# module via p11-kit's proxy). Asserted with the audit record each time:
# allowed on a `key: device-attested` route with the token's provenance
# (level, PIN and touch policy, serial) sent upstream; 403 on routes
# needing PIN policy always and touch policy always.
set -euo pipefail
source "$TG_FIXTURES/fixtures.sh"
source "$TG_FIXTURES/gate_lib.sh"
source "$TG_SOURCE_DIR/tests/integration/sim_lib.sh"
gate_require
tg_require_cmd yubico-piv-tool opensc-tool
compgen -G '/usr/lib/*/engines-3/pkcs11.so' >/dev/null ||
	tg_skip "OpenSSL's pkcs11 engine is missing; install libengine-pkcs11-openssl"
cd "$TG_TMP"
SERIAL=31415926
sim_up --serial "$SERIAL"
MGM=A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718
run_ok "set-mgm-key" ypt -k"$SIM_MGM" -a set-mgm-key -n "$MGM"
gate_pki
cp "$TG_TMP/card.state.mfr-ca.pem" "$PKI/ca/attestation-roots/sim-mfr.pem"
TOKENGATE_MGM_KEY=$MGM TOKENGATE_PIN=$SIM_PIN "$TG" enroll --reader "$TG_READER" --slot 9a \
	--id "spiffe://$TD/dev/erin" --algorithm ec-p256 --pin-policy once --touch-policy never \
	--ca-dir "$PKI/ca" --cert-out "$PKI/erin.pem" >enroll.out 2>enroll.err ||
	{ cat enroll.out enroll.err >&2; tg_fail "enroll 9a"; }
gate_policy_default "$TG_TMP/policy.yaml"
gate_upstream_start up
gate_start
# the key of slot 9a (PIV authentication, id 01) as OpenSC shows it
KEY="pkcs11:id=%01;type=private;pin-value=$SIM_PIN"
simcurl()
{
	local path=$1
	shift
	curl --engine pkcs11 --key-type ENG --key "$KEY" --cert "$PKI/erin.pem" --cacert "$PKI/srvca.pem" \
		--resolve "localhost:$GATE_PORT:127.0.0.1" --max-time 60 -sS "$@" "$(gate_url "$path")"
}
gate_audit_mark
code=$(simcurl /v1/models/llama -o body.json -w '%{http_code}') || tg_fail "curl with the simulator's key failed"
[[ $code == 200 ]] || tg_fail "device-attested leaf on route models: HTTP $code: $(cat body.json)"
want="level=device-attested; pin=once; touch=never; serial=$SERIAL"
got=$(jq -r '.headers[] | select(.[0] | ascii_downcase == "x-tokengate-key") | .[1]' body.json)
[[ $got == "$want" ]] || tg_fail "X-Tokengate-Key upstream: '$got', want '$want'"
gate_audit_expect event=$GATE_EV_REQ decision=allow route=models identity=spiffe://$TD/dev/erin \
	provenance.level=device-attested provenance.pin=once provenance.touch=never provenance.serial=$SERIAL
echo "ok: a device-attested leaf of the simulator is allowed; its provenance reaches the upstream"
for c in "/v1/pin/x pin-always route pin-always needs PIN policy always; the key has once" \
	"/v1/touch/x touch-always route touch-always needs touch policy always; the key has never"; do
	read -r path route reason <<<"$c"
	gate_audit_mark
	code=$(simcurl "$path" -o body.json -w '%{http_code}') || tg_fail "curl $path"
	[[ $code == 403 ]] || tg_fail "$path: HTTP $code, want 403: $(cat body.json)"
	[[ $(jq -r .reason body.json) == "$reason" ]] || tg_fail "$path: 403 reason: $(cat body.json)"
	gate_audit_expect event=$GATE_EV_REQ decision=deny route="$route" status=403 "reason~$reason" \
		provenance.level=device-attested
	echo "ok: $path -> 403 ($reason)"
done
gate_stop
"$TG" audit verify "$GATE_AUDIT" >verify.out 2>&1 || tg_fail "audit verify: $(cat verify.out)"
echo "ok: the simulator's device-attested leaf through the gate"
