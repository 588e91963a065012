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
#include <stdbool.h>
#include <stdint.h>

#include "events.h"

struct metrics;

/* The route labels besides the templates: a path no route matches, and
 * every request refused 401 before routing (one series, method "any"). */
#define METRICS_UNMATCHED "unmatched"
#define METRICS_UNAUTHENTICATED "unauthenticated"

/* A new, zeroed set of counters for these route templates (static strings,
 * borrowed) plus the two labels above (owned: metrics_free), or NULL
 * (OOM). */
struct metrics *metrics_new(const char *const *routes, size_t n_routes);
/* Frees m; accepts NULL; returns NULL. */
struct metrics *metrics_free(struct metrics *m);

/* Counts one finished request. route is one of the labels (a route
 * template, METRICS_UNMATCHED, METRICS_UNAUTHENTICATED; anything else
 * counts as unmatched); a method outside the eight known ones counts as
 * OTHER, a status outside the known ones by its class. Never fails. */
void metrics_observe(struct metrics *m, const char *route, const char *method,
    int status, int64_t elapsed_us);

/* Gauges gathered when the page is formatted; a negative value means
 * "unknown" and is left out of the page. */
struct metrics_gauges {
	int64_t instances_by_state[7]; /* indexed by enum instance_state
					 (STORE_N_STATES) */
	int64_t libvirt_reconnects;
	int64_t reconcile_findings;
	int64_t libvirt_up; /* 1 or 0 */
	int64_t inflight;
	int64_t domevents_handled; /* libvirt events handled */
	/* Placement (placement_sync.h), left out when not enabled */
	bool placement_enabled;
	int64_t placement_pending;
	int64_t placement_behind; /* 1 or 0 */
	int64_t placement_errors;
	int64_t placement_last_sync_ms; /* 0: never */
	int64_t placement_reconcile_ms;
	/* the event stream (events.h), left out when NULL */
	const struct events_stats *events;
};

/* Formats the Prometheus text exposition (version 0.0.4) of m and g into
 * *ret (owned, NUL-terminated). Returns 0 or -ENOMEM. */
int metrics_format(struct metrics *m, const struct metrics_gauges *g,
    char **ret, size_t *ret_len);

#endif
