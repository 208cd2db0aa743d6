/*
 * metrics.c — the gate's counters (tg_gate_metrics.h): plain counters are
 * C11 atomics; the labelled ones live in small tables under one mutex;
 * rendered in Prometheus text format (exposition format 0.0.4).
 */
#include "tg_gate_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GM_LABELS_MAX 3
#define GM_VALUE_MAX  128  /* a label value is cut to this many bytes */
#define GM_ROWS_MAX   4096 /* rows per labelled table: memory stays bounded */
#define GM_NBUCKETS   12

/* Upper bounds of the latency histogram, seconds. */
static const double gm_bounds[GM_NBUCKETS] = {.001, .005, .01, .025, .05, .1,
                                              .25,  .5,   1,   2.5,  5,   10};
static const char *const gm_bound_text[GM_NBUCKETS] = {
    "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"};

struct gm_row {
	uint64_t hash; /* labels_hash of v */
	char v[GM_LABELS_MAX][GM_VALUE_MAX + 1];
	unsigned long long n;
};

/* One labelled counter: rows in the order they first appeared. */
struct gm_table {
	struct gm_row *rows;
	size_t n, cap;
	unsigned long long dropped; /* increments refused past GM_ROWS_MAX rows */
};

struct tg_gate_metrics {
	atomic_llong conns_open;
	atomic_ullong handshakes_ok, handshakes_failed, resumptions;
	atomic_ullong audit_failures;
	atomic_int audit_ok;
	atomic_ullong reloads_ok, reloads_failed;
	atomic_ullong authz_hits, authz_misses;
	atomic_ullong buckets[GM_NBUCKETS + 1]; /* not cumulative; the last is +Inf */
	atomic_ullong sum_ns, count;
	pthread_mutex_t mu; /* the tables */
	struct gm_table conns, refused, requests, upstream_errors;
};

int
tg_gate_metrics_new(struct tg_gate_metrics **out, struct tg_error *err)
{
	struct tg_gate_metrics *m;
	int r = 0;

	*out = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		r = tg_error_set(err, TG_ERR_ALLOC, "out of memory creating the metrics");
		goto out;
	}
	if (pthread_mutex_init(&m->mu, NULL) != 0) {
		free(m);
		r = tg_error_set(err, TG_ERR_ALLOC, "cannot create the metrics' mutex");
		goto out;
	}
	atomic_init(&m->audit_ok, 1);
	*out = m;
out:
	return r;
}

void
tg_gate_metrics_free(struct tg_gate_metrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->conns.rows);
	free(m->refused.rows);
	free(m->requests.rows);
	free(m->upstream_errors.rows);
	free(m);
}

/* FNV-1a over the label values (cut as stored), each ended by a NUL. */
static uint64_t
labels_hash(const char *const *v, size_t nv)
{
	uint64_t h = 14695981039346656037ull;
	const char *p;
	size_t j, k;

	for (j = 0; j < nv; j++) {
		p = v[j] != NULL ? v[j] : "";
		for (k = 0; k < GM_VALUE_MAX && p[k] != '\0'; k++)
			h = (h ^ (unsigned char)p[k]) * 1099511628211ull;
		h = (h ^ 0u) * 1099511628211ull;
	}
	return h;
}

/* 1 when row holds exactly the values v (NULL read as ""), each cut to GM_VALUE_MAX. */
static int
row_is(const struct gm_row *row, const char *const *v, size_t nv)
{
	size_t j;
	int same = 1;

	for (j = 0; same && j < nv; j++)
		same = strncmp(row->v[j], v[j] != NULL ? v[j] : "", GM_VALUE_MAX) == 0;
	return same;
}

/*
 * Adds 1 to the row of labels v[0..nv-1] (NULL read as ""), under m->mu;
 * a new row past GM_ROWS_MAX is not made (the increment is counted in
 * t->dropped), so the memory stays bounded whatever the labels.
 */
static void
table_inc(struct tg_gate_metrics *m, struct gm_table *t, const char *const *v, size_t nv)
{
	uint64_t h = labels_hash(v, nv);
	struct gm_row *rows, *row = NULL;
	size_t i, j;

	pthread_mutex_lock(&m->mu);
	for (i = 0; i < t->n && row == NULL; i++)
		if (t->rows[i].hash == h && row_is(&t->rows[i], v, nv))
			row = &t->rows[i];
	if (row == NULL && t->n == t->cap && t->cap < GM_ROWS_MAX) {
		rows = realloc(t->rows, (t->cap == 0 ? 8 : t->cap * 2) * sizeof(*rows));
		if (rows != NULL) {
			t->rows = rows;
			t->cap = t->cap == 0 ? 8 : t->cap * 2;
		}
	}
	if (row == NULL && t->n < t->cap) {
		row = &t->rows[t->n++];
		memset(row, 0, sizeof(*row));
		row->hash = h;
		for (j = 0; j < nv; j++)
			snprintf(row->v[j], sizeof(row->v[j]), "%.*s", GM_VALUE_MAX,
			         v[j] != NULL ? v[j] : "");
	}
	if (row != NULL)
		row->n++;
	else
		t->dropped++;
	pthread_mutex_unlock(&m->mu);
}

void
tg_gate_metrics_conn_open(struct tg_gate_metrics *m, const char *listener)
{
	atomic_fetch_add(&m->conns_open, 1);
	table_inc(m, &m->conns, &listener, 1);
}

void
tg_gate_metrics_conn_close(struct tg_gate_metrics *m)
{
	atomic_fetch_sub(&m->conns_open, 1);
}

void
tg_gate_metrics_conn_refused(struct tg_gate_metrics *m, const char *reason)
{
	table_inc(m, &m->refused, &reason, 1);
}

void
tg_gate_metrics_handshake(struct tg_gate_metrics *m, int ok, int resumed)
{
	atomic_fetch_add(ok ? &m->handshakes_ok : &m->handshakes_failed, 1);
	if (ok && resumed)
		atomic_fetch_add(&m->resumptions, 1);
}

void
tg_gate_metrics_request(struct tg_gate_metrics *m, const char *listener, const char *route,
                        const char *decision, double seconds)
{
	const char *v[3] = {listener, route, decision};
	size_t b;

	table_inc(m, &m->requests, v, 3);
	if (!(seconds >= 0)) /* also NaN */
		seconds = 0;
	for (b = 0; b < GM_NBUCKETS && seconds > gm_bounds[b]; b++)
		;
	atomic_fetch_add(&m->buckets[b], 1);
	atomic_fetch_add(&m->sum_ns, seconds > 1e9 ? (unsigned long long)1e18
	                                           : (unsigned long long)(seconds * 1e9 + 0.5));
	atomic_fetch_add(&m->count, 1);
}

void
tg_gate_metrics_upstream_error(struct tg_gate_metrics *m, const char *upstream, const char *kind)
{
	const char *v[2] = {upstream, kind};

	table_inc(m, &m->upstream_errors, v, 2);
}

void
tg_gate_metrics_audit(struct tg_gate_metrics *m, int ok)
{
	if (!ok)
		atomic_fetch_add(&m->audit_failures, 1);
	atomic_store(&m->audit_ok, ok ? 1 : 0);
}

void
tg_gate_metrics_reload(struct tg_gate_metrics *m, int ok)
{
	atomic_fetch_add(ok ? &m->reloads_ok : &m->reloads_failed, 1);
}

void
tg_gate_metrics_authz_cache(struct tg_gate_metrics *m, int hit)
{
	atomic_fetch_add(hit ? &m->authz_hits : &m->authz_misses, 1);
}

/* ------------------------------------------------------------------ */
/* Rendering                                                           */
/* ------------------------------------------------------------------ */

/* Appends v as a label value: '\\', '"' and newline escaped (format 0.0.4). */
static int
put_escaped(struct evbuffer *out, const char *v)
{
	size_t n;
	int r = 0;

	while (r == 0 && *v != '\0') {
		n = strcspn(v, "\\\"\n");
		if (n > 0)
			r = evbuffer_add(out, v, n);
		v += n;
		if (r == 0 && *v != '\0') {
			r = evbuffer_add(out, *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : "\\n", 2);
			v++;
		}
	}
	return r;
}

static int
put_head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	return evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0
	           ? -1
	           : 0;
}

/* One sample: NAME{k1="v1",...} VALUE */
static int
put_sample(struct evbuffer *out, const char *name, const char *const *keys, const char *const *vals,
           size_t n, unsigned long long value)
{
	size_t i;
	int r = evbuffer_add_printf(out, "%s", name) < 0 ? -1 : 0;

	for (i = 0; r == 0 && i < n; i++) {
		r = evbuffer_add_printf(out, "%s%s=\"", i == 0 ? "{" : ",", keys[i]) < 0 ? -1 : 0;
		if (r == 0)
			r = put_escaped(out, vals[i]);
		if (r == 0)
			r = evbuffer_add(out, "\"", 1);
	}
	if (r == 0 && n > 0)
		r = evbuffer_add(out, "}", 1);
	if (r == 0)
		r = evbuffer_add_printf(out, " %llu\n", value) < 0 ? -1 : 0;
	return r;
}

static int
put_plain(struct evbuffer *out, const char *name, const char *type, const char *help,
          unsigned long long value)
{
	int r = put_head(out, name, type, help);

	return r == 0 ? put_sample(out, name, NULL, NULL, 0, value) : r;
}

/* A labelled counter's rows; a copy of the table is taken under the mutex. */
static int
put_table(struct tg_gate_metrics *m, struct evbuffer *out, const struct gm_table *t,
          const char *name, const char *help, const char *const *keys, size_t nkeys)
{
	struct gm_row *rows = NULL;
	const char *vals[GM_LABELS_MAX];
	size_t i, j, n;
	int r = put_head(out, name, "counter", help);

	pthread_mutex_lock(&m->mu);
	n = t->n;
	if (n > 0 && (rows = malloc(n * sizeof(*rows))) != NULL)
		memcpy(rows, t->rows, n * sizeof(*rows));
	pthread_mutex_unlock(&m->mu);
	if (n > 0 && rows == NULL)
		r = -1;
	for (i = 0; r == 0 && i < n; i++) {
		for (j = 0; j < nkeys; j++)
			vals[j] = rows[i].v[j];
		r = put_sample(out, name, keys, vals, nkeys, rows[i].n);
	}
	free(rows);
	return r;
}

static int
put_pair(struct evbuffer *out, const char *name, const char *help, const char *key, const char *v1,
         unsigned long long n1, const char *v2, unsigned long long n2)
{
	int r = put_head(out, name, "counter", help);

	if (r == 0)
		r = put_sample(out, name, &key, &v1, 1, n1);
	if (r == 0)
		r = put_sample(out, name, &key, &v2, 1, n2);
	return r;
}

static int
put_histogram(struct tg_gate_metrics *m, struct evbuffer *out)
{
	static const char name[] = "tokengate_request_duration_seconds";
	static const char *const le = "le";
	unsigned long long cum = 0, count, sum_ns;
	const char *v;
	size_t b;
	int r = put_head(out, name, "histogram",
	                 "Time from a request's first byte to its decision and forwarding, "
	                 "seconds.");

	for (b = 0; r == 0 && b <= GM_NBUCKETS; b++) {
		cum += atomic_load(&m->buckets[b]);
		v = b < GM_NBUCKETS ? gm_bound_text[b] : "+Inf";
		r = put_sample(out, "tokengate_request_duration_seconds_bucket", &le, &v, 1, cum);
	}
	/* _count equals the +Inf bucket even while workers add to the counters */
	count = cum;
	sum_ns = atomic_load(&m->sum_ns);
	if (r == 0)
		r = evbuffer_add_printf(out, "%s_sum %llu.%09llu\n%s_count %llu\n", name,
		                        sum_ns / 1000000000ull, sum_ns % 1000000000ull, name,
		                        count) < 0
		        ? -1
		        : 0;
	return r;
}

int
tg_gate_metrics_render(struct tg_gate_metrics *m, struct evbuffer *out)
{
	static const char *const k_listener[] = {"listener"};
	static const char *const k_reason[] = {"reason"};
	static const char *const k_request[] = {"listener", "route", "decision"};
	static const char *const k_upstream[] = {"upstream", "kind"};
	long long open = atomic_load(&m->conns_open);
	int r;

	r = put_plain(out, "tokengate_connections_open", "gauge", "Client connections open now.",
	              open > 0 ? (unsigned long long)open : 0);
	if (r == 0)
		r = put_table(m, out, &m->conns, "tokengate_connections_total",
		              "Client connections accepted, by listener.", k_listener, 1);
	if (r == 0)
		r = put_table(m, out, &m->refused, "tokengate_connections_refused_total",
		              "Client connections refused before the handshake, by reason.",
		              k_reason, 1);
	if (r == 0)
		r = put_pair(out, "tokengate_handshakes_total", "TLS handshakes, by result.",
		             "result", "ok", atomic_load(&m->handshakes_ok), "failed",
		             atomic_load(&m->handshakes_failed));
	if (r == 0)
		r = put_plain(out, "tokengate_resumptions_total", "counter",
		              "TLS handshakes that resumed a session.",
		              atomic_load(&m->resumptions));
	if (r == 0)
		r = put_table(m, out, &m->requests, "tokengate_requests_total",
		              "Decisions, by listener, route (empty: no route matched) and "
		              "decision (allow, deny, dry-run).",
		              k_request, 3);
	if (r == 0)
		r = put_table(m, out, &m->upstream_errors, "tokengate_upstream_errors_total",
		              "Upstream failures, by upstream and kind (refused, broken, timeout).",
		              k_upstream, 2);
	if (r == 0)
		r = put_plain(out, "tokengate_audit_failures_total", "counter",
		              "Audit records that could not be written (requests refused).",
		              atomic_load(&m->audit_failures));
	if (r == 0)
		r = put_plain(out, "tokengate_audit_ok", "gauge",
		              "1 while the audit log can be written, 0 while the gate fails "
		              "closed.",
		              (unsigned long long)atomic_load(&m->audit_ok));
	if (r == 0)
		r = put_histogram(m, out);
	if (r == 0)
		r = put_pair(out, "tokengate_reloads_total", "Configuration reloads, by result.",
		             "result", "ok", atomic_load(&m->reloads_ok), "failed",
		             atomic_load(&m->reloads_failed));
	if (r == 0)
		r = put_pair(out, "tokengate_authz_cache_total",
		             "authz mode: client certificates found verified in the cache (hit) "
		             "or verified (miss).",
		             "result", "hit", atomic_load(&m->authz_hits), "miss",
		             atomic_load(&m->authz_misses));
	return r == 0 ? 0 : TG_ERR_ALLOC;
}
