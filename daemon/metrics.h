/*
 * metrics: the API's own counters for GET /metrics: requests by route,
 * method and status, and a request latency histogram by route. Safe to
 * update from every request thread (one mutex). The gauges that come from
 * elsewhere (instances by state, libvirt reconnects, reconciliation
 * findings) are read when the page is formatted.
 */
#ifndef HYPERLET_METRICS_H
#define HYPERLET_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics;

/* A new, zeroed set of counters (owned: metrics_free), or NULL (OOM). */
struct metrics *metrics_new(void);
/* Frees m; accepts NULL; returns NULL. */
struct metrics *metrics_free(struct metrics *m);

/* Counts one finished request. route is a static string (the route
 * template, "/v1/instances/{uuid}", or "unmatched"); method is copied if
 * new. Never fails: a request that does not fit the table is counted
 * under route "other". */
void metrics_observe(struct metrics *m, const char *route, const char *method,
    int status, int64_t elapsed_us);

/* Gauges gathered when the page is formatted; a negative value means
 * "unknown" and is left out of the page. */
struct metrics_gauges {
	int64_t instances_by_state[5]; /* indexed by enum instance_state */
	int64_t libvirt_reconnects;
	int64_t reconcile_findings;
	int64_t libvirt_up; /* 1 or 0 */
	int64_t inflight;
};

/* Formats the Prometheus text exposition (version 0.0.4) of m and g into
 * *ret (owned, NUL-terminated). Returns 0 or -ENOMEM. */
int metrics_format(struct metrics *m, const struct metrics_gauges *g,
    char **ret, size_t *ret_len);

#endif
