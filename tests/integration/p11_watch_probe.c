/*
 * p11_watch_probe.c — prints a token's presence events (libtgp11's
 * watcher) for the simulator test, and proves the key signs again after
 * each insertion.
 *
 *   p11_watch_probe URI MAX_SECONDS EVENTS
 *
 * Finds the key (non-interactive PIN from the URI), signs once, starts the
 * watcher, then for every event prints one line ("event removed ...",
 * "event inserted ...", "event relogin-failed ...", "event replaced ...")
 * and after "inserted" signs with a fresh EVP_PKEY ("signed after
 * insertion"); after "replaced" signing must fail ("no signature after
 * replacement: ..."; a signature is a failure). Exits 0 after
 * EVENTS events, 1 on timeout or failure. Waits with poll() on the
 * watcher's fd, as an event loop would.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tg_p11.h"

#define MSG "watch probe"

static int
sign_once(struct tg_p11_key *k, struct tg_error *err)
{
	uint8_t *sig = NULL;
	size_t sl = 0;
	int r = tg_p11_key_sign_test(k, 0, (const uint8_t *)MSG, strlen(MSG), &sig, &sl, err);

	free(sig);
	return r;
}

int
main(int argc, char **argv)
{
	struct tg_p11 *p = NULL;
	struct tg_p11_key *k = NULL;
	struct tg_p11_watch *w = NULL;
	struct tg_p11_watch_event ev;
	struct tg_error err;
	struct pollfd pfd;
	time_t end;
	int want, seen = 0, rc = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: p11_watch_probe URI MAX_SECONDS EVENTS\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	end = time(NULL) + strtol(argv[2], NULL, 10);
	want = (int)strtol(argv[3], NULL, 10);
	tg_error_clear(&err);
	if (tg_p11_new(&p, &err) != 0 ||
	    tg_p11_key_find(p, argv[1], TG_P11_KEY_ALLOW_EXPORTABLE | TG_P11_KEY_ALLOW_IMPORTED, &k,
	                    &err) != 0 ||
	    sign_once(k, &err) != 0 || tg_p11_watch_start(k, 100, NULL, NULL, &w, &err) != 0) {
		fprintf(stderr, "watch probe: %s\n", err.msg);
		goto out;
	}
	printf("watching present=%d\n", tg_p11_watch_present(w));
	pfd.fd = tg_p11_watch_fd(w);
	pfd.events = POLLIN;
	while (seen < want && time(NULL) < end) {
		if (poll(&pfd, 1, 500) <= 0)
			continue;
		while (tg_p11_watch_next(w, &ev)) {
			seen++;
			printf("event %s: %s\n",
			       ev.ev == TG_P11_EV_REMOVED    ? "removed"
			       : ev.ev == TG_P11_EV_INSERTED ? "inserted"
			       : ev.ev == TG_P11_EV_REPLACED ? "replaced"
			                                     : "relogin-failed",
			       ev.msg);
			if (ev.ev == TG_P11_EV_REPLACED) {
				tg_error_clear(&err);
				if (sign_once(k, &err) == 0) {
					printf("signed after replacement\n");
					goto out;
				}
				printf("no signature after replacement: %s\n", err.msg);
			}
			if (ev.ev == TG_P11_EV_INSERTED) {
				tg_error_clear(&err);
				if (sign_once(k, &err) != 0) {
					printf("sign after insertion failed: %s\n", err.msg);
					goto out;
				}
				printf("signed after insertion\n");
			}
		}
	}
	rc = seen == want ? 0 : 1;
	if (rc != 0)
		printf("timeout: %d of %d events\n", seen, want);
out:
	tg_p11_watch_stop(w);
	tg_p11_key_free(k);
	tg_p11_free(p);
	return rc;
}
