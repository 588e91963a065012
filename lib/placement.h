/*
 * placement: the protocol of OpenStack Placement as a compute node speaks
 * it (Nova's scheduler report client, nova/scheduler/client/report.py),
 * over lib/http. One resource provider per node (uuid = node uuid), its
 * VCPU/MEMORY_MB/DISK_GB inventories, and one allocation per instance
 * (consumer = instance uuid, consumer_type INSTANCE). Every request says
 * "OpenStack-API-Version: placement 1.39" (Debian 12's placement 8.0;
 * consumer_type needs 1.38). Generation conflicts (409
 * placement.concurrent_update) are re-read and retried here. Auth is a
 * static token or Keystone v3 password auth, the token fetched again on
 * 401 and before it expires.
 *
 * A struct placement is used by one thread at a time (the sync thread,
 * daemon/placement_sync.c); it keeps the provider's generation between
 * calls.
 *
 * Errors: -EIO (unreachable, timeout, 5xx: try again later), -EACCES
 * (401/403 after a new token), -EINVAL (Placement refused the request:
 * the message has its detail), -ENOMEM.
 */
#ifndef HYPERLET_PLACEMENT_H
#define HYPERLET_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "node.h"

#define PLACEMENT_MICROVERSION "1.39"

struct placement;

/* What [placement] says (cfg.h keys of the same names); strings are
 * copied by placement_new. token (the content of token_file) or the
 * Keystone set (auth_url, username, password, ...) must be given. */
struct placement_conf {
	const char *url; /* http(s)://host:port[/path], the endpoint */
	const char *token; /* static X-Auth-Token; NULL: Keystone */
	const char *auth_url; /* Keystone, with or without /v3 */
	const char *username;
	const char *password;
	const char *project_name;
	const char *user_domain_name;
	const char *project_domain_name;
	const char *project_id; /* allocations' project and user */
	const char *user_id;
	long timeout_ms;
};

/* One allocation found on the provider. */
struct placement_alloc {
	char consumer[37];
	int64_t usage[NODE_N_RC]; /* 0 for a class it does not use */
};

int placement_new(
    const struct placement_conf *c, struct placement **ret, struct err *e);
struct placement *placement_free(struct placement *p);

/* Calls fail with -ECANCELED soon after *flag becomes true
 * (http_set_abort). */
void placement_set_abort(struct placement *p, const _Atomic bool *flag);

/* The provider uuid, named name: read, created (POST) when missing.
 * -EINVAL when another provider holds the name. Returns 0. */
int placement_provider_ensure(
    struct placement *p, const char *uuid, const char *name, struct err *e);

/* PUT the provider's inventories (min_unit = step_size = 1, max_unit =
 * total; a class of total 0 is left out) with its generation, re-read on a
 * conflict. Skipped when they equal the last ones written. Returns 0. */
int placement_inventories_put(struct placement *p, const char *uuid,
    const struct node_inventory inv[NODE_N_RC], struct err *e);

/*
 * PUT /allocations/{consumer}: usage (classes of amount 0 left out) on
 * provider rp, for project_id/user_id, consumer_type INSTANCE. The first
 * try says consumer_generation null (a new consumer: one round trip at
 * create); on a generation conflict the consumer is read and the PUT
 * retried with its generation. Returns 0.
 */
int placement_allocation_put(struct placement *p, const char *rp,
    const char *consumer, const int64_t usage[NODE_N_RC], struct err *e);

/*
 * POST /allocations: the allocations of n new consumers (consumer_generation
 * null) in one request, as placement_allocation_put would write each: the
 * reconciler's way to catch up with many instances at once. All or
 * nothing: -EEXIST when one consumer already exists or a generation moved
 * (the caller then PUTs them one by one). Returns 0.
 */
int placement_allocations_post(struct placement *p, const char *rp,
    const char *const *consumers, const int64_t (*usage)[NODE_N_RC], size_t n,
    struct err *e);

/* DELETE /allocations/{consumer}; a consumer Placement does not know is
 * success. Returns 0. */
int placement_allocation_delete(
    struct placement *p, const char *consumer, struct err *e);

/* Every allocation held on provider rp (GET
 * /resource_providers/{rp}/allocations). *ret owned (free()); may be NULL
 * when *ret_n is 0. Returns 0. */
int placement_provider_allocations(struct placement *p, const char *rp,
    struct placement_alloc **ret, size_t *ret_n, struct err *e);

#endif
