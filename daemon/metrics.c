/*
 * metrics: request counters and latency histograms kept in a small fixed
 * table under one mutex, formatted as Prometheus text (version 0.0.4).
 * Labels are route templates, never raw paths, so the series count is
 * bounded by the route table (a few dozen rows), whatever clients send.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm.h"
#include "metrics.h"

#define METRICS_ROWS 96
#define METRICS_ROUTES 32

/* Latency buckets in seconds (upper bounds), Prometheus' defaults. */
static const double buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS ELEMENTSOF(buckets)

struct metrics_row {
	const char *route; /* static */
	char method[8];
	int status;
	uint64_t count;
};

struct metrics_hist {
	const char *route; /* static */
	uint64_t bucket[N_BUCKETS]; /* non-cumulative counts */
	uint64_t count;
	double sum; /* seconds */
};

struct metrics {
	pthread_mutex_t lock; /* guards everything below */
	struct metrics_row rows[METRICS_ROWS];
	size_t n_rows;
	struct metrics_hist hist[METRICS_ROUTES];
	size_t n_hist;
};

/* A new zeroed metrics set, or NULL. */
struct metrics *
metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

/* Frees m (NULL is fine); returns NULL. */
struct metrics *
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return NULL;
	pthread_mutex_destroy(&m->lock);
	free(m);
	return NULL;
}

static struct metrics_row *
row_find(struct metrics *m, const char *route, const char *method, int status)
{
	size_t i;

	for (i = 0; i < m->n_rows; i++)
		if (STREQ(m->rows[i].route, route) &&
		    STREQ(m->rows[i].method, method) &&
		    m->rows[i].status == status)
			return &m->rows[i];
	if (m->n_rows == METRICS_ROWS)
		return NULL;
	m->rows[m->n_rows].route = route;
	(void)snprintf(
	    m->rows[m->n_rows].method, sizeof(m->rows[0].method), "%s", method);
	m->rows[m->n_rows].status = status;
	return &m->rows[m->n_rows++];
}

static struct metrics_hist *
hist_find(struct metrics *m, const char *route)
{
	size_t i;

	for (i = 0; i < m->n_hist; i++)
		if (STREQ(m->hist[i].route, route))
			return &m->hist[i];
	if (m->n_hist == METRICS_ROUTES)
		return NULL;
	m->hist[m->n_hist].route = route;
	return &m->hist[m->n_hist++];
}

/* Counts one request (see metrics.h). */
void
metrics_observe(struct metrics *m, const char *route, const char *method,
    int status, int64_t elapsed_us)
{
	static const char *const known[] = {
	    "GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS"};
	struct metrics_row *r;
	struct metrics_hist *h;
	double s = (double)elapsed_us / 1e6;
	size_t i;

	if (m == NULL)
		return;
	/* A method outside the list becomes OTHER: clients choose it. */
	for (i = 0; i < ELEMENTSOF(known); i++)
		if (STREQ(method, known[i]))
			break;
	if (i == ELEMENTSOF(known))
		method = "OTHER";
	pthread_mutex_lock(&m->lock);
	r = row_find(m, route, method, status);
	if (r == NULL)
		r = row_find(m, "other", method, status);
	if (r)
		r->count++;
	h = hist_find(m, route);
	if (h) {
		for (i = 0; i < N_BUCKETS; i++)
			if (s <= buckets[i]) {
				h->bucket[i]++;
				break;
			}
		h->count++;
		h->sum += s;
	}
	pthread_mutex_unlock(&m->lock);
}

/* A growing string; sticky -ENOMEM. */
struct sbuf {
	char *s;
	size_t len, cap;
	int err;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) _printf_(2, 3);

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL,
		    b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if (b->s && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap ? b->cap * 2 : 4096;
		while (ncap < b->len + (size_t)n + 1)
			ncap *= 2;
		char *ns = realloc(b->s, ncap);
		if (ns == NULL) {
			b->err = -ENOMEM;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
}

/* Formats the exposition page (see metrics.h). */
int
metrics_format(struct metrics *m, const struct metrics_gauges *g, char **ret,
    size_t *ret_len)
{
	struct sbuf b = {0};
	size_t i, j;

	sb_printf(&b,
	    "# HELP hyperlet_http_requests_total HTTP requests answered, "
	    "by route template, method and status.\n"
	    "# TYPE hyperlet_http_requests_total counter\n");
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->n_rows; i++)
		sb_printf(&b,
		    "hyperlet_http_requests_total{route=\"%s\",method=\"%s\","
		    "status=\"%d\"} %llu\n",
		    m->rows[i].route, m->rows[i].method, m->rows[i].status,
		    (unsigned long long)m->rows[i].count);
	sb_printf(&b,
	    "# HELP hyperlet_http_request_duration_seconds Time from the "
	    "request's headers to its response, by route template.\n"
	    "# TYPE hyperlet_http_request_duration_seconds histogram\n");
	for (i = 0; i < m->n_hist; i++) {
		const struct metrics_hist *h = &m->hist[i];
		uint64_t cum = 0;

		for (j = 0; j < N_BUCKETS; j++) {
			cum += h->bucket[j];
			sb_printf(&b,
			    "hyperlet_http_request_duration_seconds_bucket{"
			    "route=\"%s\",le=\"%g\"} %llu\n",
			    h->route, buckets[j], (unsigned long long)cum);
		}
		sb_printf(&b,
		    "hyperlet_http_request_duration_seconds_bucket{route=\"%s\","
		    "le=\"+Inf\"} %llu\n"
		    "hyperlet_http_request_duration_seconds_sum{route=\"%s\"} "
		    "%.6f\n"
		    "hyperlet_http_request_duration_seconds_count{route=\"%s\"} "
		    "%llu\n",
		    h->route, (unsigned long long)h->count, h->route, h->sum,
		    h->route, (unsigned long long)h->count);
	}
	pthread_mutex_unlock(&m->lock);

	if (g->instances_by_state[0] >= 0) {
		sb_printf(&b,
		    "# HELP hyperlet_instances Instances in the database, by "
		    "state.\n# TYPE hyperlet_instances gauge\n");
		for (i = 0; i < ELEMENTSOF(g->instances_by_state); i++)
			sb_printf(&b, "hyperlet_instances{state=\"%s\"} %lld\n",
			    instance_state_to_string((enum instance_state)i),
			    (long long)g->instances_by_state[i]);
	}
	if (g->libvirt_up >= 0)
		sb_printf(&b,
		    "# HELP hyperlet_libvirt_up 1 if libvirt answered.\n"
		    "# TYPE hyperlet_libvirt_up gauge\n"
		    "hyperlet_libvirt_up %lld\n",
		    (long long)g->libvirt_up);
	if (g->libvirt_reconnects >= 0)
		sb_printf(&b,
		    "# HELP hyperlet_libvirt_reconnects_total Times the libvirt "
		    "connection was reopened after it dropped.\n"
		    "# TYPE hyperlet_libvirt_reconnects_total counter\n"
		    "hyperlet_libvirt_reconnects_total %lld\n",
		    (long long)g->libvirt_reconnects);
	if (g->reconcile_findings >= 0)
		sb_printf(&b,
		    "# HELP hyperlet_reconcile_findings_total Domains with "
		    "hyperlet metadata but no database row found by "
		    "reconciliation.\n"
		    "# TYPE hyperlet_reconcile_findings_total counter\n"
		    "hyperlet_reconcile_findings_total %lld\n",
		    (long long)g->reconcile_findings);
	if (g->inflight >= 0)
		sb_printf(&b,
		    "# HELP hyperlet_http_requests_in_flight Requests being "
		    "processed.\n"
		    "# TYPE hyperlet_http_requests_in_flight gauge\n"
		    "hyperlet_http_requests_in_flight %lld\n",
		    (long long)g->inflight);
	if (b.err) {
		free(b.s);
		return b.err;
	}
	*ret = b.s;
	*ret_len = b.len;
	return 0;
}
