/*
 * watch.c — token presence watcher. A thread polls the key's slot
 * (C_GetSlotInfo, CKF_TOKEN_PRESENT, and the token's serial so another
 * token in the same reader is not taken for ours) at most every 250 ms.
 * Blocking C_WaitForSlotEvent is not used: it can only be interrupted by
 * C_Finalize, which would end every other user of the shared module, and
 * its events are shared by all callers of the module; polling costs one
 * cheap slot call per interval instead.
 */
#include "p11-int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WATCH_MAX_INTERVAL_MS 250
#define WATCH_QUEUE           16

struct tg_p11_watch {
	struct tg_p11_key *k;
	unsigned interval_ms;
	tg_p11_watch_fn cb;
	void *arg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int present;
	int pipefd[2];
	struct tg_p11_watch_event q[WATCH_QUEUE];
	size_t qhead, qlen;
	char serial[17];
};

static void emit(struct tg_p11_watch *w, enum tg_p11_event ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
emit(struct tg_p11_watch *w, enum tg_p11_event ev, const char *fmt, ...)
{
	va_list ap;
	struct tg_p11_watch_event e;
	char one = 'e';
	ssize_t wr;

	memset(&e, 0, sizeof(e));
	e.ev = ev;
	snprintf(e.token_label, sizeof(e.token_label), "%s", w->k->t->info.label);
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&w->mu);
	if (w->qlen == WATCH_QUEUE) { /* drop the oldest, keep the newest */
		w->qhead = (w->qhead + 1) % WATCH_QUEUE;
		w->qlen--;
	} else {
		wr = write(w->pipefd[1], &one, 1);
		(void)wr;
	}
	w->q[(w->qhead + w->qlen) % WATCH_QUEUE] = e;
	w->qlen++;
	pthread_mutex_unlock(&w->mu);
	if (w->cb != NULL)
		w->cb(w->arg, &e);
}

/*
 * 1 when our token is in the slot. While it was present, only the slot's
 * CKF_TOKEN_PRESENT is read; the token's serial (so another token in the
 * same reader is not taken for ours) is read only when a token appears:
 * OpenSC 0.23 can deadlock in C_GetTokenInfo when the card goes away
 * during the call (its card lock is left held), so we keep that call off
 * the removal path.
 */
static int
token_here(struct tg_p11_watch *w)
{
	struct tg_p11_token *t = w->k->t;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_ULONG n = 0;
	char serial[17];

	/* OpenSC refreshes reader and card state in C_GetSlotList; its
	 * C_GetSlotInfo may answer from a cache for up to a second */
	(void)t->m->f->C_GetSlotList(CK_FALSE, NULL, &n);
	if (t->m->f->C_GetSlotInfo(t->slot, &si) != CKR_OK || !(si.flags & CKF_TOKEN_PRESENT))
		return 0;
	if (w->present)
		return 1;
	if (t->m->f->C_GetTokenInfo(t->slot, &ti) != CKR_OK)
		return 0;
	tg_p11_padded_copy(serial, sizeof(serial), ti.serialNumber, sizeof(ti.serialNumber));
	return strcmp(serial, w->serial) == 0;
}

/* After insertion: fresh session, login when a PIN source allows it, and
 * the key found again (object handles may change across insertions). */
static void
relogin(struct tg_p11_watch *w)
{
	struct tg_p11_key *k = w->k;
	struct tg_p11_token *t = k->t;
	struct tg_p11_uri *u = NULL;
	struct tg_error err;
	CK_OBJECT_HANDLE *hs = NULL;
	CK_SESSION_HANDLE s;
	size_t n = 0;
	int r;

	tg_error_clear(&err);
	tg_p11_lock(t->p);
	t->sess = CK_INVALID_HANDLE; /* the old one died with the removal */
	EVP_PKEY_free(k->evp);
	k->evp = NULL;
	(void)tg_p11_module_rebuild(t->m);
	tg_p11_unlock(t->p);
	if ((r = tg_p11_uri_parse(t->uri, &u, &err)) != 0)
		goto out;
	if (t->info.login_required && !tg_p11_pin_noninteractive(u)) {
		r = tg_error_set(&err, TG_ERR_NO_PIN,
		                 "no non-interactive PIN source: log in again by "
		                 "restarting, or add pin-source= to the key URI");
		goto out;
	}
	if ((r = tg_p11_token_login(t, u, 0, &err)) != 0)
		goto out;
	tg_p11_lock(t->p);
	if ((r = tg_p11_token_session(t, &s, &err)) == 0 &&
	    (r = tg_p11_objects_find(t, s, CKO_PRIVATE_KEY, NULL, k->id, k->id_len, &hs, &n,
	                             &err)) == 0) {
		if (n >= 1)
			k->h = hs[0];
		else
			r = tg_error_set(&err, TG_ERR_KEY_NOT_FOUND,
			                 "key '%s' is no longer on the token", k->label);
	}
	tg_p11_unlock(t->p);
out:
	free(hs);
	tg_p11_uri_free(u);
	if (r == 0)
		emit(w, TG_P11_EV_INSERTED, "token '%s' inserted%s", t->info.label,
		     t->info.login_required ? "; logged in again" : "");
	else
		emit(w, TG_P11_EV_RELOGIN_FAILED, "token '%s' inserted, login failed: %s",
		     t->info.label, tg_error_msg(&err, r));
}

static void *
watch_main(void *arg)
{
	struct tg_p11_watch *w = arg;
	struct timespec ts;
	int here, stop = 0;

	while (!stop) {
		here = token_here(w);
		if (w->present && !here) {
			w->present = 0;
			emit(w, TG_P11_EV_REMOVED, "token '%s' removed", w->k->t->info.label);
		} else if (!w->present && here) {
			w->present = 1;
			relogin(w);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)w->interval_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&w->mu);
		if (!w->stop)
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		stop = w->stop;
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

int
tg_p11_watch_start(struct tg_p11_key *k, unsigned interval_ms, tg_p11_watch_fn cb, void *arg,
                   struct tg_p11_watch **out, struct tg_error *err)
{
	struct tg_p11_watch *w = NULL;
	int r = TG_ERR_ALLOC, inited = 0;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		tg_error_set(err, r, "out of memory starting a token watcher");
		goto out;
	}
	w->pipefd[0] = w->pipefd[1] = -1;
	w->k = k;
	w->cb = cb;
	w->arg = arg;
	w->interval_ms = interval_ms == 0 || interval_ms > WATCH_MAX_INTERVAL_MS
	                     ? WATCH_MAX_INTERVAL_MS
	                     : interval_ms;
	snprintf(w->serial, sizeof(w->serial), "%s", k->t->info.serial);
	w->present = token_here(w);
	if (pipe2(w->pipefd, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    pthread_mutex_init(&w->mu, NULL) != 0) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "cannot create the watcher: %s",
		                 strerror(errno));
		goto out;
	}
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		r = tg_error_set(err, TG_ERR_INTERNAL, "cannot create the watcher");
		goto out;
	}
	inited = 1;
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		r = tg_error_set(err, TG_ERR_INTERNAL, "cannot start the watcher thread");
		goto out;
	}
	*out = w;
	w = NULL;
	r = 0;
out:
	if (w != NULL) {
		if (inited) {
			pthread_cond_destroy(&w->cv);
			pthread_mutex_destroy(&w->mu);
		}
		if (w->pipefd[0] >= 0)
			close(w->pipefd[0]);
		if (w->pipefd[1] >= 0)
			close(w->pipefd[1]);
		free(w);
	}
	return r;
}

int
tg_p11_watch_fd(const struct tg_p11_watch *w)
{
	return w->pipefd[0];
}

int
tg_p11_watch_next(struct tg_p11_watch *w, struct tg_p11_watch_event *ev)
{
	char one;
	ssize_t rd;
	int got = 0;

	pthread_mutex_lock(&w->mu);
	if (w->qlen > 0) {
		*ev = w->q[w->qhead];
		w->qhead = (w->qhead + 1) % WATCH_QUEUE;
		w->qlen--;
		rd = read(w->pipefd[0], &one, 1);
		(void)rd;
		got = 1;
	}
	pthread_mutex_unlock(&w->mu);
	return got;
}

int
tg_p11_watch_present(const struct tg_p11_watch *w)
{
	return w->present;
}

void
tg_p11_watch_stop(struct tg_p11_watch *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	close(w->pipefd[0]);
	close(w->pipefd[1]);
	free(w);
}
