#!/usr/bin/env bash
# test_sim_run_standin.sh — `tokengate-sim run` against a stand-in for
# pcscd's vpcd driver (a Python listener speaking the vpcd frames), so the
# run loop is tested without pcscd: ATR, power and reset control bytes,
# APDUs answered by the token, a wrong PIN persisted, a persist failure
# answered 6581 and logged, SIGHUP ignored, SIGUSR1 removing and SIGUSR2
# inserting the card, a second run refused by the state lock, management
# key authentication, GENERATE, a signature held back by --sign-latency-ms,
# status showing an unparsable and a missing certificate, SIGTERM stopping
# it (exit 0); and run's option errors with their messages.
set -euo pipefail
source "${TG_FIXTURES:-$(dirname "$0")/../lib}/fixtures.sh"
source "$(dirname "$0")/sim_lib.sh"

tg_require_cmd python3 openssl
T=$TG_TMP

expect_rc()
{
	local want=$1 rc=0
	shift
	"$@" >"$T/out" 2>&1 || rc=$?
	((rc == want)) || tg_fail "exit $rc, want $want: $* -> $(cat "$T/out")"
}

# --- option errors --------------------------------------------------------
run_usage() { # WANT ARGS...
	local want=$1
	shift
	expect_rc 2 "$SIM_BIN" run --state "$T/none.state" "$@"
	[[ $(cat "$T/out") == "tokengate-sim run: $want (try 'tokengate-sim run --help')" ]] ||
		tg_fail "run $*: got '$(cat "$T/out")'"
}
run_usage "--touch-timeout-ms '0' is not a number from 1 to 600000" --touch-timeout-ms 0
run_usage "--log-level 'loud' is not one of error, warn, info, debug" --log-level loud
run_usage "--fault 'lie' is not a known fault: attest-other-key" --fault lie
run_usage "--touch 'often' is not a touch mode; use auto, deny or signal" --touch often
echo "ok: run's option errors (exit 2)"

# --- the run loop against a stand-in vpcd ----------------------------------
mkdir "$T/s"
st=$T/s/card.state
expect_rc 0 "$SIM_BIN" init --state "$st"
SIM_BIN=$SIM_BIN SIM_MGM=$SIM_MGM STATE=$st DIR=$T python3 - <<'PY' || tg_fail "stand-in vpcd run failed (log: $(tail -20 "$T/sim.log"))"
import json, os, signal, socket, struct, subprocess, sys, time

sim, st, d = os.environ["SIM_BIN"], os.environ["STATE"], os.environ["DIR"]
mgm = os.environ["SIM_MGM"]
log_path = os.path.join(d, "sim.log")

def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def log_has(s, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        with open(log_path) as f:
            if s in f.read():
                return True
        time.sleep(0.05)
    return False

def send(c, payload):
    c.sendall(struct.pack(">H", len(payload)) + payload)

def recv_exact(c, n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        if not chunk:
            return None
        b += chunk
    return b

def recv_frame(c):
    h = recv_exact(c, 2)
    if h is None:
        return None
    return recv_exact(c, struct.unpack(">H", h)[0])

def apdu(c, hexs):
    send(c, bytes.fromhex(hexs))
    r = recv_frame(c)
    if r is None or len(r) < 2:
        fail("no response to " + hexs)
    return r

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(2)
srv.settimeout(10)
port = srv.getsockname()[1]
logf = open(log_path, "w")
p = subprocess.Popen([sim, "run", "--state", st, "--vpcd", "127.0.0.1:%d" % port,
                      "--log-level", "debug", "--log-json", "--sign-latency-ms", "200",
                      "--fault", "attest-other-key", "--touch-timeout-ms", "500"],
                     stdout=logf, stderr=logf)
try:
    c, _ = srv.accept()
    c.settimeout(10)
    if not log_has("attest-other-key"):
        fail("the fault is not logged")
    send(c, b"\x04")
    atr = recv_frame(c)
    if not atr or atr[0] != 0x3B:
        fail("ATR %r" % atr)
    send(c, b"\x01")
    send(c, b"\x02")
    r = apdu(c, "00A4040005A000000308")
    if r[-2:] != b"\x90\x00" or r[0] != 0x61:
        fail("SELECT: %s" % r.hex())
    r = apdu(c, "00FD0000")
    if len(r) != 5 or r[-2:] != b"\x90\x00":
        fail("GET VERSION: %s" % r.hex())
    # a wrong PIN: 63C2, and the decrement is persisted
    r = apdu(c, "0020008008303030303030FFFF")
    if r != b"\x63\xC2":
        fail("wrong PIN: %s" % r.hex())
    if not log_has("00 20 00 80 (13 bytes) -> 63c2 (2 bytes)"):
        fail("the APDU is not in the debug log")
    out = subprocess.run([sim, "status", "--state", st, "--json"], capture_output=True, text=True)
    if out.returncode != 0 or json.loads(out.stdout)["pin"]["tries_left"] != 2:
        fail("persisted PIN tries: %s %s" % (out.stdout, out.stderr))
    # a second run on the same state is refused by the lock
    out = subprocess.run([sim, "run", "--state", st, "--vpcd", "127.0.0.1:1"],
                         capture_output=True, text=True)
    if out.returncode != 1 or "a 'tokengate-sim run' is using %s" % st not in out.stderr:
        fail("second run: %d %s" % (out.returncode, out.stderr))
    # the state cannot be written: 6581, logged
    os.rename(os.path.join(d, "s"), os.path.join(d, "s-moved"))
    r = apdu(c, "0020008008303030303030FFFF")
    os.rename(os.path.join(d, "s-moved"), os.path.join(d, "s"))
    if r != b"\x65\x81":
        fail("persist failure: %s" % r.hex())
    if not log_has("the card answers 6581 until this is fixed"):
        fail("the persist failure is not logged")
    send(c, b"\x00")
    # SIGHUP: ignored (touch is not by signal)
    p.send_signal(signal.SIGHUP)
    if not log_has("SIGHUP ignored: touch is answered by --touch auto"):
        fail("SIGHUP not logged")
    # SIGUSR1: removed (the connection closes); SIGUSR2: inserted again
    p.send_signal(signal.SIGUSR1)
    if recv_frame(c) is not None:
        fail("the connection stayed after SIGUSR1")
    c.close()
    if not log_has("SIGUSR1: card removed"):
        fail("removal not logged")
    p.send_signal(signal.SIGUSR2)
    c, _ = srv.accept()
    c.settimeout(10)
    send(c, b"\x04")
    if recv_frame(c) != atr:
        fail("ATR after insertion")
    if not log_has("SIGUSR2: card inserted"):
        fail("insertion not logged")
    # management key (external authentication, 3DES by openssl), two keys
    if apdu(c, "00A4040005A000000308")[-2:] != b"\x90\x00":
        fail("SELECT after insertion")
    r = apdu(c, "0087039B047C028100")
    if len(r) != 14 or r[:4] != bytes.fromhex("7C0A8108") or r[-2:] != b"\x90\x00":
        fail("challenge: %s" % r.hex())
    enc = subprocess.run(["openssl", "enc", "-des-ede3", "-nopad", "-K", mgm],
                         input=r[4:12], capture_output=True).stdout
    if len(enc) != 8:
        fail("openssl des-ede3 gave %r" % enc)
    if apdu(c, "0087039B0C7C0A8208" + enc.hex()) != b"\x90\x00":
        fail("management key authentication")
    # 9A with the cached touch policy: the signature asks the touch (auto)
    for slot, tpl in (("9A", "08AC06800111AB0103"), ("9C", "05AC03800111")):
        r = apdu(c, "004700%s%s" % (slot, tpl))
        if r[:2] != b"\x7F\x49" or r[-2:] != b"\x90\x00":
            fail("GENERATE %s: %s" % (slot, r.hex()))
    # a signature is held back by --sign-latency-ms
    if apdu(c, "0020008008313233343536FFFF") != b"\x90\x00":
        fail("VERIFY")
    t0 = time.time()
    r = apdu(c, "0087119A267C2482008120" + "11" * 32)
    if r[-2:] != b"\x90\x00" or r[0] != 0x7C:
        fail("GENERAL AUTHENTICATE: %s" % r.hex())
    if time.time() - t0 < 0.2:
        fail("the signature was not delayed by the sign latency")
    if not log_has("slot 9a touch given (mode auto)"):
        fail("the touch is not logged")
    # 9A's certificate object holds bytes that are no certificate
    if apdu(c, "00DB3FFF125C035FC105530B700430020102710100FE00") != b"\x90\x00":
        fail("PUT DATA")
    # 9E: a certificate object but no key
    if apdu(c, "00DB3FFF125C035FC101530B700430020102710100FE00") != b"\x90\x00":
        fail("PUT DATA 9E")
    out = subprocess.run([sim, "status", "--state", st], capture_output=True, text=True)
    lines = out.stdout.splitlines()
    s9a = [l for l in lines if l.strip().startswith("9a")]
    s9c = [l for l in lines if l.strip().startswith("9c")]
    if out.returncode != 0 or len(s9a) != 1 or len(s9c) != 1:
        fail("status: %s %s" % (out.stdout, out.stderr))
    if "cert: (unparsable certificate)" not in s9a[0] or "generated" not in s9a[0]:
        fail("slot 9a: %s" % s9a[0])
    if not s9c[0].endswith("no certificate"):
        fail("slot 9c: %s" % s9c[0])
    s9e = [l for l in lines if l.strip().startswith("9e")]
    if len(s9e) != 1 or " - " not in s9e[0] or "(unparsable certificate)" not in s9e[0]:
        fail("slot 9e: %s" % s9e)
    out = subprocess.run([sim, "status", "--state", st, "--json"], capture_output=True, text=True)
    js = json.loads(out.stdout)
    if js["private_key_operations"] != 1:
        fail("status --json: %s" % out.stdout)
    e9 = [x for x in js["slots"] if x["slot"] == "9e"]
    if len(e9) != 1 or e9[0]["algorithm"] is not None:
        fail("status --json slot 9e: %s" % e9)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=10)
    if rc != 0:
        fail("exit %d after SIGTERM" % rc)
    if not log_has("signal 15: stopping") or not log_has("stopped after 13 APDUs"):
        fail("stop not logged")
finally:
    if p.poll() is None:
        p.kill()
        p.wait()
print("ok: run loop against the stand-in vpcd")
PY
# every log line is one JSON object (--log-json)
python3 -c 'import json,sys
for l in open(sys.argv[1]):
    json.loads(l)' "$T/sim.log" || tg_fail "--log-json wrote a line that is not JSON"
echo PASS
