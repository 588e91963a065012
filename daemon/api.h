/*
 * api: the HTTP/JSON API v1 (design.md) served by libmicrohttpd with its
 * own thread pool. The only interface main() needs: start serving, ask for
 * the bound port, and stop (draining in-flight requests).
 */
#ifndef HYPERLET_API_H
#define HYPERLET_API_H

#include <stdbool.h>

#include "err.h"
#include "hyperlet.h"

struct api;

/*
 * Starts serving on cfg's listen address and port (port 0: the kernel
 * picks one, see api_port) with cfg's thread count, auth token file, TLS
 * certificate/key, limits and timeouts. Returns immediately: requests run
 * on MHD's own threads. h (and everything it points to) must stay valid
 * until api_stop() returns. Call with SIGTERM/SIGINT/SIGHUP already blocked
 * so the pool threads inherit the mask. On success *ret is owned by the
 * caller (api_stop). Returns 0, -EINVAL (bad address, unreadable or empty
 * token file, unreadable TLS files), -EADDRINUSE or another -errno when the
 * socket cannot be bound, -ENOMEM.
 */
int api_start(struct hyperlet *h, struct api **ret, struct err *e);

/*
 * SIGHUP: loads the TLS certificate and key files again; connections made
 * after it get the new pair. Without TLS (or a NULL a) it does nothing.
 * Returns 0, or an error of tls_new() (tls.h) with the old pair kept.
 */
int api_tls_reload(struct api *a, struct err *e);
/* True while the job queue makes no progress: its oldest job has waited
 * longer than job_stall_timeout and no job finished in that time. main()
 * then withholds the watchdog ping and /v1/health answers 503. */
bool api_jobs_stalled(struct api *a);

/* The per-instance claim the API takes around every change, for a change
 * made outside a request (lib/domevents.c; arg is the struct api): 0
 * (claimed: release it with api_release_uuid), -EBUSY (a change is in
 * progress), -ENOMEM. Never waits. */
int api_claim_uuid(void *arg, const char *uuid);
void api_release_uuid(void *arg, const char *uuid);

/* The TCP port actually bound (useful with listen port 0). */
int api_port(const struct api *a);

/*
 * Graceful stop for SIGTERM: stops accepting connections at once, lets
 * requests already being processed finish for up to drain_seconds (0: do
 * not wait), then shuts MHD down and frees a. Accepts NULL.
 */
void api_stop(struct api *a, int drain_seconds);

/* Start-up, before api_start: removes interrupted uploads and image files
 * without a row from the images directory (api_images.c). Returns the
 * number removed or -EIO. */
struct store;
int api_images_clean(const char *images_dir, struct store *s);

/* --- the node facts (api_node.c, issue 13) --------------------------- */

struct cfg;
struct node_limits;
struct virt;

/* The cache of what libvirt says about the host, for GET /v1/node and the
 * capacity claims; [node] and instances_path are copied from c. Returns
 * 0 or -ENOMEM. */
int node_cache_new(const struct cfg *c, struct node_cache **ret, struct err *e);
struct node_cache *node_cache_free(struct node_cache *n);

/* Asks libvirt (virt_node_facts) and keeps the answer: main at start-up,
 * the sweeper at each sweep, never an HTTP thread. Returns 0 or
 * virt_node_facts' error (the cache keeps its last facts). */
int node_cache_refresh(struct node_cache *n, struct virt *v, struct err *e);

/* -EINVAL ("file:line: ..." when the key came from the file) when a
 * [node] reserved amount is beyond the node's total (Placement refuses
 * such an inventory); 0 when all fit or libvirt has not answered. */
int node_cache_check(
    const struct node_cache *n, const struct cfg *c, struct err *e);

/* compute_opts.node_limits (arg: the struct node_cache): the capacity of
 * each class from the cached facts, [node] and the size of instances_path's
 * file system; false until libvirt has answered once. */
bool node_cache_limits(void *arg, struct node_limits *ret);

/* The inventory of the moment (node_inventories of the cached facts, [node]
 * and the size of instances_path); false until libvirt has answered. For
 * the Placement sync (placement_sync.c). */
struct node_inventory;
bool node_cache_inventory(
    const struct node_cache *n, struct node_inventory *ret);

/* The host name read at start-up (borrowed, immutable). */
const char *node_cache_hostname(const struct node_cache *n);

#endif
