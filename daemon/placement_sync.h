/*
 * placement_sync: the thread that keeps OpenStack Placement in step with
 * the node (design.md "Node and Placement"), the part of Nova's resource
 * tracker and report client hyperlet needs. Request threads only note
 * which instance changed (placement_sync_note: a mutex, a copy, a
 * signal; no network); the thread writes or removes that instance's
 * allocation just after the answer, and reconciles everything at start-up
 * and every sync_interval. Placement being away never fails a request:
 * the notes wait, /v1/node and /metrics show the lag.
 */
#ifndef HYPERLET_PLACEMENT_SYNC_H
#define HYPERLET_PLACEMENT_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct cfg;
struct node_cache;
struct placement_sync;

/* What /v1/node's "placement" object and /metrics show. */
struct placement_sync_status {
	bool enabled;
	bool ok; /* the last attempt succeeded and nothing waits */
	char provider[37]; /* "" until known */
	int64_t last_sync_ms; /* last time all was in step; 0: never */
	int64_t pending; /* changes not written yet */
	int64_t errors; /* failed attempts since start-up */
	int64_t reconciles; /* full reconciliations done */
	int64_t last_reconcile_ms; /* how long the last one took */
	char last_error[256]; /* "" after a success */
};

/* Prepares the sync for c's [placement] (its own store connection on
 * db_path and its own HTTP client); node gives the inventories and the
 * host name. *ret is NULL (and 0 returned) when no url is set. */
int placement_sync_new(const struct cfg *c, const char *db_path,
    struct node_cache *node, struct placement_sync **ret, struct err *e);

/* Starts the thread; its first act is a full reconciliation. */
int placement_sync_start(struct placement_sync *ps, struct err *e);

/* Stops the thread (at most one call's timeout) and frees ps; accepts
 * NULL; returns NULL. */
struct placement_sync *placement_sync_stop(struct placement_sync *ps);

/* Instance uuid was created or deleted (its row written or removed): its
 * allocation is written or removed soon. Never blocks on the network.
 * ps may be NULL (no Placement). */
void placement_sync_note(struct placement_sync *ps, const char *uuid);

/* A consistent copy of the state; ps NULL: disabled. */
void placement_sync_status(
    struct placement_sync *ps, struct placement_sync_status *ret);

#endif
