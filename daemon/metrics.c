/*
 * metrics: request counters and latency histograms in a table whose size
 * is fixed when the API starts, under one mutex, formatted as Prometheus
 * text (version 0.0.4). A series is route label x method x status, each
 * from a closed set: the route templates (plus "unmatched" for a path no
 * route matches and "unauthenticated" for every request refused 401
 * before routing, as one series), eight methods (others are OTHER) and
 * the statuses the API answers (others by class, "5xx"). Whatever clients
 * send, the series count is bounded by construction and every request is
 * counted.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm.h"
#include "metrics.h"

/* Latency buckets in seconds (upper bounds), Prometheus' defaults. */
static const double buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS ELEMENTSOF(buckets)

/* The last one collects every other method: clients choose it. */
static const char *const methods[] = {
    "GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS", "OTHER"};
#define N_METHODS ELEMENTSOF(methods)

/* The statuses the API answers; any other is counted by its class. */
static const int statuses[] = {200, 201, 202, 204, 304, 400, 401, 403, 404, 405,
    409, 412, 413, 415, 421, 499, 500, 503};
#define N_CLASSES 5 /* 1xx..5xx, after statuses[] */
#define N_STATUSES (ELEMENTSOF(statuses) + N_CLASSES)

struct metrics_hist {
	uint64_t bucket[N_BUCKETS]; /* non-cumulative counts */
	uint64_t count;
	double sum; /* seconds */
};

struct metrics {
	pthread_mutex_t lock; /* guards count and hist */
	const char **labels; /* route templates, then "unmatched",
				"unauthenticated" (static strings) */
	size_t n_labels;
	/* [label][method][status] */
	uint64_t *count;
	struct metrics_hist *hist; /* [label] */
};

/* A new zeroed metrics set for these route templates, or NULL. */
struct metrics *
metrics_new(const char *const *routes, size_t n_routes)
{
	struct metrics *m = calloc(1, sizeof(*m));
	size_t i;

	if (m == NULL)
		return NULL;
	m->n_labels = n_routes + 2;
	m->labels = calloc(m->n_labels, sizeof(*m->labels));
	m->count =
	    calloc(m->n_labels * N_METHODS * N_STATUSES, sizeof(*m->count));
	m->hist = calloc(m->n_labels, sizeof(*m->hist));
	if (!m->labels || !m->count || !m->hist) {
		free(m->labels);
		free(m->count);
		free(m->hist);
		free(m);
		return NULL;
	}
	for (i = 0; i < n_routes; i++)
		m->labels[i] = routes[i];
	m->labels[n_routes] = METRICS_UNMATCHED;
	m->labels[n_routes + 1] = METRICS_UNAUTHENTICATED;
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
	free(m->labels);
	free(m->count);
	free(m->hist);
	free(m);
	return NULL;
}

static size_t
label_index(const struct metrics *m, const char *route)
{
	size_t i;

	for (i = 0; route && i < m->n_labels; i++)
		if (STREQ(m->labels[i], route))
			return i;
	return m->n_labels - 2; /* unmatched */
}

static size_t
method_index(const char *method)
{
	size_t i;

	for (i = 0; method && i < N_METHODS - 1; i++)
		if (STREQ(method, methods[i]))
			return i;
	return N_METHODS - 1;
}

static size_t
status_index(int status)
{
	size_t i;

	for (i = 0; i < ELEMENTSOF(statuses); i++)
		if (statuses[i] == status)
			return i;
	if (status < 100 || status > 599)
		status = 500;
	return ELEMENTSOF(statuses) + (size_t)(status / 100 - 1);
}

/* Counts one request (see metrics.h). */
void
metrics_observe(struct metrics *m, const char *route, const char *method,
    int status, int64_t elapsed_us)
{
	double s = (double)elapsed_us / 1e6;
	size_t l, i;
	struct metrics_hist *h;

	if (m == NULL)
		return;
	l = label_index(m, route);
	/* one series: nothing an unauthenticated client sends is a label */
	if (STREQ(m->labels[l], METRICS_UNAUTHENTICATED)) {
		method = "OTHER";
		status = 401;
	}
	pthread_mutex_lock(&m->lock);
	m->count[(l * N_METHODS + method_index(method)) * N_STATUSES +
	    status_index(status)]++;
	h = &m->hist[l];
	for (i = 0; i < N_BUCKETS; i++)
		if (s <= buckets[i]) {
			h->bucket[i]++;
			break;
		}
	h->count++;
	h->sum += s;
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
	size_t i, j, k;

	sb_printf(&b,
	    "# HELP hyperlet_http_requests_total HTTP requests answered, "
	    "by route template, method and status (unauthenticated ones as "
	    "one series).\n"
	    "# TYPE hyperlet_http_requests_total counter\n");
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->n_labels; i++)
		for (j = 0; j < N_METHODS; j++)
			for (k = 0; k < N_STATUSES; k++) {
				uint64_t n =
				    m->count[(i * N_METHODS + j) * N_STATUSES +
					k];
				char st[8];

				if (n == 0)
					continue;
				if (k < ELEMENTSOF(statuses))
					(void)snprintf(
					    st, sizeof(st), "%d", statuses[k]);
				else
					(void)snprintf(st, sizeof(st), "%dxx",
					    (int)(k - ELEMENTSOF(statuses)) +
						1);
				sb_printf(&b,
				    "hyperlet_http_requests_total{route=\"%s\","
				    "method=\"%s\",status=\"%s\"} %llu\n",
				    m->labels[i],
				    STREQ(m->labels[i], METRICS_UNAUTHENTICATED)
					? "any"
					: methods[j],
				    st, (unsigned long long)n);
			}
	sb_printf(&b,
	    "# HELP hyperlet_http_request_duration_seconds Time from the "
	    "request's headers to its response, by route template.\n"
	    "# TYPE hyperlet_http_request_duration_seconds histogram\n");
	for (i = 0; i < m->n_labels; i++) {
		const struct metrics_hist *h = &m->hist[i];
		const char *route = m->labels[i];
		uint64_t cum = 0;

		if (h->count == 0)
			continue;
		for (j = 0; j < N_BUCKETS; j++) {
			cum += h->bucket[j];
			sb_printf(&b,
			    "hyperlet_http_request_duration_seconds_bucket{"
			    "route=\"%s\",le=\"%g\"} %llu\n",
			    route, buckets[j], (unsigned long long)cum);
		}
		sb_printf(&b,
		    "hyperlet_http_request_duration_seconds_bucket{route=\"%s\","
		    "le=\"+Inf\"} %llu\n"
		    "hyperlet_http_request_duration_seconds_sum{route=\"%s\"} "
		    "%.6f\n"
		    "hyperlet_http_request_duration_seconds_count{route=\"%s\"} "
		    "%llu\n",
		    route, (unsigned long long)h->count, route, h->sum, route,
		    (unsigned long long)h->count);
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
	if (g->domevents_handled >= 0)
		sb_printf(&b,
		    "# HELP hyperlet_libvirt_events_handled_total Instances "
		    "looked at for a libvirt lifecycle event.\n"
		    "# TYPE hyperlet_libvirt_events_handled_total counter\n"
		    "hyperlet_libvirt_events_handled_total %lld\n",
		    (long long)g->domevents_handled);
	if (g->events) {
		const struct events_stats *es = g->events;
		uint64_t cum = 0;

		sb_printf(&b,
		    "# HELP hyperlet_event_stream_readers Open GET /v1/events "
		    "streams, and those the hub writes to directly.\n"
		    "# TYPE hyperlet_event_stream_readers gauge\n"
		    "hyperlet_event_stream_readers %llu\n"
		    "hyperlet_event_stream_readers{mode=\"direct\"} %llu\n"
		    "# HELP hyperlet_event_stream_dropped_total Readers "
		    "dropped: a whole ring behind, or their socket failed.\n"
		    "# TYPE hyperlet_event_stream_dropped_total counter\n"
		    "hyperlet_event_stream_dropped_total %llu\n"
		    "# HELP hyperlet_event_delivery_seconds From the commit "
		    "of an event to its bytes handed to a reader's "
		    "connection, per reader (events committed while no "
		    "reader was connected are not timed).\n"
		    "# TYPE hyperlet_event_delivery_seconds histogram\n",
		    (unsigned long long)es->readers,
		    (unsigned long long)es->direct,
		    (unsigned long long)es->dropped);
		for (i = 0; i < EVENTS_LATENCY_BUCKETS; i++) {
			cum += es->latency[i];
			sb_printf(&b,
			    "hyperlet_event_delivery_seconds_bucket{le=\"%g\"} "
			    "%llu\n",
			    (double)events_latency_le_us[i] / 1e6,
			    (unsigned long long)cum);
		}
		cum += es->latency[EVENTS_LATENCY_BUCKETS];
		sb_printf(&b,
		    "hyperlet_event_delivery_seconds_bucket{le=\"+Inf\"} "
		    "%llu\n"
		    "hyperlet_event_delivery_seconds_sum %.6f\n"
		    "hyperlet_event_delivery_seconds_count %llu\n",
		    (unsigned long long)cum, es->latency_sum_s,
		    (unsigned long long)cum);
	}
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
	if (g->placement_enabled)
		sb_printf(&b,
		    "# HELP hyperlet_placement_pending Creates and deletes not "
		    "yet written to Placement.\n"
		    "# TYPE hyperlet_placement_pending gauge\n"
		    "hyperlet_placement_pending %lld\n"
		    "# HELP hyperlet_placement_behind 1 when Placement is not "
		    "known to be in step.\n"
		    "# TYPE hyperlet_placement_behind gauge\n"
		    "hyperlet_placement_behind %lld\n"
		    "# HELP hyperlet_placement_errors_total Failed attempts "
		    "to write to Placement.\n"
		    "# TYPE hyperlet_placement_errors_total counter\n"
		    "hyperlet_placement_errors_total %lld\n"
		    "# HELP hyperlet_placement_last_sync_timestamp_seconds "
		    "When Placement was last known in step.\n"
		    "# TYPE hyperlet_placement_last_sync_timestamp_seconds "
		    "gauge\n"
		    "hyperlet_placement_last_sync_timestamp_seconds %.3f\n"
		    "# HELP hyperlet_placement_reconcile_seconds How long the "
		    "last full reconciliation took.\n"
		    "# TYPE hyperlet_placement_reconcile_seconds gauge\n"
		    "hyperlet_placement_reconcile_seconds %.3f\n",
		    (long long)g->placement_pending,
		    (long long)g->placement_behind,
		    (long long)g->placement_errors,
		    (double)g->placement_last_sync_ms / 1000.0,
		    (double)g->placement_reconcile_ms / 1000.0);
	if (b.err) {
		free(b.s);
		return b.err;
	}
	*ret = b.s;
	*ret_len = b.len;
	return 0;
}
