# test_gate_verify_sim.sh — the gate's client-certificate verifier accepts
# a device-attested leaf: `tokengate enroll` on the simulator (slot 9a,
# PIN policy always, touch cached) with a CA made by `tokengate ca init`,
# and reports its identity and provenance; the same leaf is refused by a
# gate trusting only another CA. The rest of the matrix is in
# test_gate_verify.sh.
# Sourced by test_gate_verify.sh sim (TG, P, TD set, in $TG_TMP).
source "$TG_SOURCE_DIR/tests/integration/sim_lib.sh"
tg_require_cmd yubico-piv-tool opensc-tool openssl
SERIAL=27182818
sim_up --serial "$SERIAL"
MGM=A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718
run_ok "set-mgm-key" ypt -k"$SIM_MGM" -a set-mgm-key -n "$MGM"
"$TG" ca init --dir ca --trust-domain "$TD" >/dev/null
cp "$TG_TMP/card.state.mfr-ca.pem" ca/attestation-roots/sim-mfr.pem
sed -i 's/^pin_policies:.*/pin_policies: [once, always]/; s/^touch_policies:.*/touch_policies: [never, always, cached]/' ca/policy.yaml
TOKENGATE_MGM_KEY=$MGM TOKENGATE_PIN=$SIM_PIN "$TG" enroll --reader "$TG_READER" --slot 9a \
	--id "spiffe://$TD/dev/alice" --algorithm ec-p256 --pin-policy always \
	--touch-policy cached --ca-dir ca --cert-out alice.pem >enroll.out 2>enroll.err ||
	{ cat enroll.out enroll.err >&2; tg_fail "enroll 9a"; }
"$P" --ca ca/ca.pem alice.pem >out.txt 2>err || tg_fail "device-attested leaf refused: $(cat err)"
cat out.txt
grep -q "^ok identity=spiffe://$TD/dev/alice level=device-attested pin=always touch=cached serial=$SERIAL " out.txt ||
	tg_fail "device-attested leaf: $(cat out.txt)"
"$TG" ca init --dir other --trust-domain "$TD" >/dev/null
tg_expect_exit 1 "was not issued by a configured tokengate CA" "$P" --ca other/ca.pem alice.pem
echo "ok: a device-attested leaf is accepted with its provenance"
