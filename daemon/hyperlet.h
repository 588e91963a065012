/*
 * struct hyperlet: the state the daemon's parts share, passed explicitly
 * (no globals). main() fills it before api_start() and keeps it alive until
 * api_stop() has returned. Each member says who writes it and which lock,
 * if any, guards it; request threads only read it except where noted.
 */
#ifndef HYPERLET_HYPERLET_H
#define HYPERLET_HYPERLET_H

#include <stdint.h>

struct cfg;
struct compute;
struct virt;
struct metrics;
struct node_cache;
struct events;
struct domevents;
struct placement_sync;

struct hyperlet {
	/* The loaded configuration. Set by main, immutable while the API
	 * runs: read by every request thread without a lock. */
	const struct cfg *cfg;

	/* The shared libvirt connection (owned by main). libvirt's
	 * connection is thread-safe and virt.c serialises its own
	 * reconnects, so request threads call it concurrently, no lock here.
	 */
	struct virt *virt;

	/* The orchestration (lib/compute.h): configuration only, shared by
	 * every request thread without a lock (each call takes the thread's
	 * own store connection; the API serialises changes to one instance).
	 * Created by main with compute_new() for start-up reconciliation and
	 * freed after api_stop(). If main leaves it NULL, api_start() makes
	 * one from cfg and virt (and api_stop() frees that one). */
	struct compute *compute;

	/* Path of the SQLite file (owned by main, immutable). The store is
	 * NOT shared: each request thread opens its own connection to this
	 * file on first use and keeps it for its life (api.c, pthread key);
	 * main migrates the schema before api_start(). */
	const char *db_path;

	/* Directory of uploaded base images (owned by main, immutable;
	 * created by main). Uploads are written to a temporary file in it and
	 * renamed to <image id> once complete. */
	const char *images_dir;

	/* Domains found by reconciliation that carry hyperlet metadata but
	 * have no database row. Written by main (start-up reconcile) before
	 * or while the API runs; read by GET /metrics. Atomic, no lock. */
	_Atomic int64_t reconcile_findings;

	/* Request counters and latency histogram. Created by api_start() and
	 * freed by api_stop() (NULL outside); guarded by its own mutex inside
	 * api.c. main does not touch it. */
	struct metrics *metrics;

	/* What libvirt says about the host (api_node.c), for GET /v1/node
	 * and the capacity claims. Created and filled by main before
	 * api_start, refreshed by main's sweeper; its own mutex inside.
	 * NULL: /v1/node answers 503 and creates are not checked. */
	struct node_cache *node;

	/* The event stream's hub (lib/events.h): created by main after the
	 * migration and before api_start, freed after api_stop; its own
	 * mutex inside. NULL: /v1/events answers 503. */
	struct events *events;
	/* libvirt's lifecycle events into the states (lib/domevents.h).
	 * Started by main after api_start (it takes the API's claims) and
	 * stopped before api_stop; read by GET /metrics (its counters have
	 * their own lock). NULL outside, and while it is not running. */
	struct domevents *_Atomic domevents;
	/* OpenStack Placement kept in step (placement_sync.c): request
	 * threads note each create and delete in it (no network on their
	 * path). Created and started by main before api_start, stopped after
	 * api_stop; its own mutex inside. NULL: no [placement] url. */
	struct placement_sync *placement;
};

#endif
