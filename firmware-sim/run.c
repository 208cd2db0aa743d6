/*
 * run.c — `tokengate-sim run`: plugs the token into pcscd's vpcd reader.
 *
 * One libevent loop serves the vpcd connection (vpcd.c), the signals
 * (SIGUSR1 remove, SIGUSR2 insert, SIGTERM/SIGINT stop) and the timers
 * (reconnect backoff, simulated signing latency). The token core runs
 * inside the loop's read callback; its persist callback writes the state
 * file atomically before the response leaves (statefile.c), and its touch
 * callback may block in sigtimedwait for SIGHUP (touch.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cmd.h"
#include "statefile.h"
#include "tg_buf.h"
#include "tg_log.h"
#include "tg_tok.h"
#include "touch.h"
#include "vpcd.h"

#define LATENCY_MAX_MS       60000
#define TOUCH_TIMEOUT_MAX_MS 600000
#define HOST_MAX             256

struct run_opts {
	const char *state;
	const char *vpcd;
	uint32_t latency_ms;
	uint32_t touch_timeout_ms;
	enum tg_sim_touch_mode touch;
	enum tg_log_level level;
	int json;
	unsigned faults; /* TG_TOK_FAULT_* of --fault */
};

struct run_ctx {
	const struct run_opts *o;
	struct tg_tok *tok;
	struct tg_sim_touch touch;
	struct tg_sim_vpcd *vpcd;
	struct event_base *base;
	uint64_t apdus;
};

static void
usage(FILE *f)
{
	fprintf(f,
	        "usage: tokengate-sim run --state FILE [--vpcd HOST:PORT] [--sign-latency-ms N]\n"
	        "                         [--touch auto|deny|signal] [--touch-timeout-ms N]\n"
	        "                         [--log-level LEVEL] [--log-json] [--fault NAME]\n\n"
	        "Plugs the token in FILE into pcscd's vpcd reader: connects to the vpcd driver\n"
	        "(which listens), answers power, reset, ATR and APDUs, and reconnects whenever\n"
	        "pcscd goes away or restarts. Every persistent change (keys, PIN counters,\n"
	        "certificates) is written to FILE atomically before the answer leaves.\n\n"
	        "options:\n"
	        "  --state FILE          state file written by 'tokengate-sim init'\n"
	        "  --vpcd HOST:PORT      the vpcd driver's address (default %s)\n"
	        "  --sign-latency-ms N   hold each private-key operation's answer N ms (0-%u;\n"
	        "                        real tokens take 50-200 ms; default 0)\n"
	        "  --touch MODE          how touch is answered for keys with a touch policy:\n"
	        "                        auto (always touched, default), deny (never: 6982),\n"
	        "                        signal (a SIGHUP within the timeout is the touch)\n"
	        "  --touch-timeout-ms N  how long --touch signal waits (default 15000)\n"
	        "  --log-level LEVEL     error, warn, info (default) or debug; logs go to stderr\n"
	        "  --log-json            log as JSON lines\n"
	        "  --fault NAME          misbehave on purpose, to test that hosts refuse it:\n"
	        "                        attest-other-key (ATTEST certifies a fresh key, not\n"
	        "                        the slot's); never for a token in real use\n"
	        "  -h, --help            this help\n\n"
	        "signals: SIGUSR1 removes the card (disconnects and stays out), SIGUSR2 inserts\n"
	        "it again, SIGHUP is the touch with --touch signal, SIGTERM/SIGINT stop.\n"
	        "Exit codes: 0 stopped by a signal, 1 failed, 2 bad command line.\n",
	        TG_SIM_VPCD_DEFAULT, LATENCY_MAX_MS);
}

/* Returns -1 to go on, else the exit code (help printed: 0; usage: 2). */
/* Returns -1 to go on, else the exit code (0 after --help, 2 on bad usage). */
static int
parse_opts(int argc, char **argv, struct run_opts *o)
{
	enum { O_STATE = 256, O_VPCD, O_LAT, O_TOUCH, O_TTO, O_LEVEL, O_JSON, O_FAULT };
	static const struct option longopts[] = {
	    {"state", required_argument, NULL, O_STATE},
	    {"vpcd", required_argument, NULL, O_VPCD},
	    {"sign-latency-ms", required_argument, NULL, O_LAT},
	    {"touch", required_argument, NULL, O_TOUCH},
	    {"touch-timeout-ms", required_argument, NULL, O_TTO},
	    {"log-level", required_argument, NULL, O_LEVEL},
	    {"log-json", no_argument, NULL, O_JSON},
	    {"fault", required_argument, NULL, O_FAULT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct tg_error err;
	int c, rc = -1;

	tg_error_clear(&err);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_STATE:
			o->state = optarg;
			break;
		case O_VPCD:
			o->vpcd = optarg;
			break;
		case O_LAT:
			if (tg_sim_cmd_parse_u32(optarg, 0, LATENCY_MAX_MS, &o->latency_ms) != 0) {
				rc = tg_sim_cmd_usage_error(
				    "run", "--sign-latency-ms '%s' is not a number from 0 to %u",
				    optarg, LATENCY_MAX_MS);
				goto out;
			}
			break;
		case O_TOUCH:
			if (tg_sim_touch_mode_parse(optarg, &o->touch, &err) != 0) {
				rc = tg_sim_cmd_usage_error("run", "%s", tg_error_msg(&err, 0));
				goto out;
			}
			break;
		case O_TTO:
			if (tg_sim_cmd_parse_u32(optarg, 1, TOUCH_TIMEOUT_MAX_MS,
			                         &o->touch_timeout_ms) != 0) {
				rc = tg_sim_cmd_usage_error(
				    "run", "--touch-timeout-ms '%s' is not a number from 1 to %u",
				    optarg, TOUCH_TIMEOUT_MAX_MS);
				goto out;
			}
			break;
		case O_LEVEL:
			if (tg_log_level_parse(optarg, &o->level) != 0) {
				rc = tg_sim_cmd_usage_error(
				    "run",
				    "--log-level '%s' is not one of error, warn, info, debug",
				    optarg);
				goto out;
			}
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_FAULT:
			if (strcmp(optarg, "attest-other-key") != 0) {
				rc = tg_sim_cmd_usage_error(
				    "run", "--fault '%s' is not a known fault: attest-other-key",
				    optarg);
				goto out;
			}
			o->faults |= TG_TOK_FAULT_ATTEST_OTHER_KEY;
			break;
		case 'h':
			usage(stdout);
			rc = TG_SIM_EXIT_OK;
			goto out;
		default:
			rc = tg_sim_cmd_usage_error("run", "unknown or incomplete option '%s'",
			                            argv[optind - 1]);
			goto out;
		}
	}
	if ((rc = tg_sim_cmd_args_check("run", argc, argv, o->state)) != 0)
		goto out;
	rc = -1; /* go on */
out:
	return rc;
}

/* ---- the token core's host callbacks ---- */

static int
persist_cb(void *arg, const uint8_t *blob, size_t len)
{
	struct run_ctx *c = arg;
	struct tg_error err;
	int r;

	tg_error_clear(&err);
	if ((r = tg_sim_state_write(c->o->state, blob, len, 1, &err)) != 0)
		tg_log_error("sim.state", "%s; the card answers 6581 until this is fixed",
		             tg_error_msg(&err, r));
	return r;
}

static int
touch_cb(void *arg, uint8_t slot)
{
	struct run_ctx *c = arg;

	return tg_sim_touch_ask(&c->touch, slot);
}

static uint64_t
now_ms_cb(void *arg)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the card behind vpcd ---- */

static uint64_t
key_ops(const struct tg_tok *tok)
{
	struct tg_tok_info info;

	tg_tok_info_get(tok, &info);
	return info.private_key_operations;
}

static int
card_apdu(void *arg, const uint8_t *cmd, size_t cmdlen, uint8_t *rsp, size_t rspcap, size_t *rsplen,
          uint32_t *delay_ms)
{
	struct run_ctx *c = arg;
	struct tg_buf rd;
	uint8_t cla = 0, ins = 0, p1 = 0, p2 = 0;
	uint16_t sw = 0;
	uint64_t before;
	int r;

	before = key_ops(c->tok);
	if ((r = tg_tok_apdu(c->tok, cmd, cmdlen, rsp, rspcap, rsplen)) != 0) {
		tg_log_error("sim.apdu", "token core failed: %s", tg_strerror(r));
		goto out;
	}
	c->apdus++;
	if (key_ops(c->tok) != before)
		*delay_ms = c->o->latency_ms;
	if (tg_log_enabled(TG_LOG_DEBUG)) {
		/* Header and status word only: the data may hold a PIN. */
		tg_buf_reader(&rd, cmd, cmdlen);
		(void)tg_buf_get_u8(&rd, &cla);
		(void)tg_buf_get_u8(&rd, &ins);
		(void)tg_buf_get_u8(&rd, &p1);
		(void)tg_buf_get_u8(&rd, &p2);
		if (*rsplen >= 2) {
			tg_buf_reader(&rd, rsp, *rsplen);
			(void)tg_buf_skip(&rd, *rsplen - 2);
			(void)tg_buf_get_u16(&rd, &sw);
		}
		tg_log_debug("sim.apdu", "%02x %02x %02x %02x (%zu bytes) -> %04x (%zu bytes)", cla,
		             ins, p1, p2, cmdlen, sw, *rsplen);
	}
out:
	return r;
}

static void
card_reset(void *arg)
{
	struct run_ctx *c = arg;

	tg_tok_reset(c->tok);
}

static void
card_power_off(void *arg)
{
	struct run_ctx *c = arg;

	tg_tok_power_off(c->tok);
}

static const uint8_t *
card_atr(void *arg, size_t *len)
{
	return tg_tok_atr(len);
}

/* ---- signals ---- */

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct run_ctx *c = arg;

	tg_log_info("sim.stop", "signal %d: stopping", (int)sig);
	event_base_loopexit(c->base, NULL);
}

static void
on_remove(evutil_socket_t sig, short what, void *arg)
{
	struct run_ctx *c = arg;

	tg_log_info("sim.remove", "SIGUSR1: card removed (send SIGUSR2 to insert it again)");
	tg_sim_vpcd_remove(c->vpcd);
}

static void
on_insert(evutil_socket_t sig, short what, void *arg)
{
	struct run_ctx *c = arg;

	tg_log_info("sim.insert", "SIGUSR2: card inserted");
	tg_sim_vpcd_insert(c->vpcd);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	tg_log_info("sim.touch", "SIGHUP ignored: touch is answered by --touch %s",
	            tg_sim_touch_mode_name(((struct run_ctx *)arg)->touch.mode));
}

#define NSIG_EVENTS 5

int
tg_sim_cmd_run(int argc, char **argv)
{
	struct run_opts o;
	struct run_ctx c;
	struct tg_tok_host host;
	struct tg_sim_vpcd_card card;
	struct tg_tok_info info;
	struct tg_error err;
	struct event *sigev[NSIG_EVENTS] = {NULL};
	char vhost[HOST_MAX];
	uint16_t vport = 0;
	int lockfd = -1, i, r, rc;

	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	tg_error_clear(&err);
	o.vpcd = TG_SIM_VPCD_DEFAULT;
	o.touch = TG_SIM_TOUCH_AUTO;
	o.level = TG_LOG_INFO;
	if ((rc = parse_opts(argc, argv, &o)) >= 0)
		goto out;
	if (tg_sim_vpcd_addr_parse(o.vpcd, vhost, sizeof(vhost), &vport, &err) != 0) {
		rc = tg_sim_cmd_usage_error("run", "%s", tg_error_msg(&err, TG_ERR_USAGE));
		goto out;
	}
	rc = TG_SIM_EXIT_FAIL;
	tg_log_init(o.level, o.json, NULL);
	c.o = &o;
	/* Before libevent or anything else: the SIGHUP mask must be set first. */
	if (tg_sim_touch_init(&c.touch, o.touch, o.touch_timeout_ms) != 0) {
		rc = tg_sim_cmd_fail("run", TG_ERR_INTERNAL, NULL);
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((lockfd = tg_sim_state_lock(o.state, &err)) < 0) {
		rc = tg_sim_cmd_fail("run", TG_ERR_IO, &err);
		goto out;
	}
	memset(&host, 0, sizeof(host));
	host.persist = persist_cb;
	host.touch = touch_cb;
	host.now_ms = now_ms_cb;
	host.ctx = &c;
	if ((r = tg_sim_cmd_load_token(o.state, &host, &c.tok, &err)) != 0) {
		rc = tg_sim_cmd_fail("run", r, &err);
		goto out;
	}
	if ((c.base = event_base_new()) == NULL) {
		rc = tg_sim_cmd_fail("run", TG_ERR_ALLOC, NULL);
		goto out;
	}
	card.apdu = card_apdu;
	card.reset = card_reset;
	card.power_off = card_power_off;
	card.atr = card_atr;
	card.ctx = &c;
	if ((r = tg_sim_vpcd_new(c.base, vhost, vport, &card, &c.vpcd, &err)) != 0) {
		rc = tg_sim_cmd_fail("run", r, &err);
		goto out;
	}
	sigev[0] = evsignal_new(c.base, SIGTERM, on_stop, &c);
	sigev[1] = evsignal_new(c.base, SIGINT, on_stop, &c);
	sigev[2] = evsignal_new(c.base, SIGUSR1, on_remove, &c);
	sigev[3] = evsignal_new(c.base, SIGUSR2, on_insert, &c);
	if (o.touch != TG_SIM_TOUCH_SIGNAL)
		sigev[4] = evsignal_new(c.base, SIGHUP, on_hup, &c);
	for (i = 0; i < NSIG_EVENTS; i++) {
		if (i == 4 && o.touch == TG_SIM_TOUCH_SIGNAL)
			continue;
		if (sigev[i] == NULL || evsignal_add(sigev[i], NULL) != 0) {
			rc = tg_sim_cmd_fail("run", TG_ERR_INTERNAL, NULL);
			goto out;
		}
	}
	tg_tok_faults_set(c.tok, o.faults);
	if (o.faults & TG_TOK_FAULT_ATTEST_OTHER_KEY)
		tg_log_warn("sim.fault", "attest-other-key: ATTEST certifies a fresh key, not the "
		                         "slot's (a lying token, for tests)");
	tg_tok_info_get(c.tok, &info);
	tg_log_info("sim.start",
	            "serving token serial %u from %s on vpcd %s:%u (pid %ld, touch %s, "
	            "sign latency %u ms)",
	            info.serial, o.state, vhost, vport, (long)getpid(),
	            tg_sim_touch_mode_name(o.touch), o.latency_ms);
	tg_sim_vpcd_insert(c.vpcd);
	if (event_base_dispatch(c.base) < 0) {
		rc = tg_sim_cmd_fail("run", TG_ERR_INTERNAL, NULL);
		goto out;
	}
	tg_log_info("sim.stop", "stopped after %llu APDUs", (unsigned long long)c.apdus);
	rc = TG_SIM_EXIT_OK;
out:
	for (i = 0; i < NSIG_EVENTS; i++)
		if (sigev[i] != NULL)
			event_free(sigev[i]);
	tg_sim_vpcd_free(c.vpcd);
	if (c.base != NULL)
		event_base_free(c.base);
	tg_tok_free(c.tok);
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}
