/*
 * placement_sync: one thread, the only writer to Placement. See
 * placement_sync.h.
 *
 * Notes are instance uuids, deduplicated; the thread reads each one's row
 * from its own store connection when it gets to it and writes what the
 * row says now (an allocation as node_flavor_usage counts it, or none when
 * the row is gone), so the order of notes does not matter and a note can
 * be retried any number of times. A full reconciliation reads the
 * provider's allocations first and the instance rows second: a row is
 * committed before its note, so an allocation without a row is stale
 * (Placement is written by this thread only).
 *
 * The lock (ps->lock) guards the notes and the status, and is never held
 * across a Placement call or a database read.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cfg.h"
#include "log.h"
#include "node.h"
#include "placement.h"
#include "placement_sync.h"
#include "store.h"
#include "util.h"

#define NOTES_MAX 4096 /* beyond: a full reconciliation instead */
#define RETRY_MAX_MS 10000 /* notes that failed wait at most this */
#define PAGE 1000 /* instance rows read at a time */
/* consumers per POST /allocations: Placement 8.0 takes about 20 ms per
 * consumer here, so 100 stay well within 6 timeouts */
#define POST_BATCH 100

struct note {
	char uuid[UUID_STR_LEN];
};

struct placement_sync {
	struct placement *pl;
	struct node_cache *node;
	char *db_path;
	char *name; /* provider name */
	int64_t interval_ms;
	struct store *store; /* the thread's */
	char provider[UUID_STR_LEN]; /* the node uuid, "" until read */
	bool ready; /* provider ensured and inventories written once */

	pthread_t thread;
	bool started;
	_Atomic bool abort; /* stop: the call in progress gives up */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	/* guarded by lock: */
	bool stop;
	struct note *notes;
	size_t n_notes, cap_notes;
	bool overflow; /* notes were dropped: reconcile */
	size_t in_flight; /* notes taken by the thread, not done yet */
	struct placement_sync_status st;
	char url[256];
};

DEFINE_FREEP(struct instance, instance_free)

static int64_t
mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
placement_sync_new(const struct cfg *c, const char *db_path,
    struct node_cache *node, struct placement_sync **ret, struct err *e)
{
	struct placement_conf pc = {
	    .url = c->placement_url,
	    .token = c->placement_token,
	    .auth_url = c->placement_auth_url,
	    .username = c->placement_username,
	    .password = c->placement_password,
	    .project_name = c->placement_project_name,
	    .user_domain_name = c->placement_user_domain_name,
	    .project_domain_name = c->placement_project_domain_name,
	    .project_id = c->placement_project_id,
	    .user_id = c->placement_user_id,
	    .timeout_ms = (long)c->placement_timeout * 1000,
	};
	struct placement_sync *ps;
	pthread_condattr_t ca;
	int rc;

	*ret = NULL;
	if (c->placement_url == NULL)
		return 0;
	if ((ps = calloc(1, sizeof(*ps))) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	if ((rc = placement_new(&pc, &ps->pl, e)) < 0) {
		free(ps);
		return rc;
	}
	placement_set_abort(ps->pl, &ps->abort);
	ps->node = node;
	ps->interval_ms = (int64_t)c->placement_sync_interval * 1000;
	ps->db_path = strdup(db_path);
	ps->name =
	    strdup(c->placement_provider_name ? c->placement_provider_name
					      : node_cache_hostname(node));
	if (!ps->db_path || !ps->name) {
		placement_free(ps->pl);
		free(ps->db_path);
		free(ps->name);
		free(ps);
		return err_set(e, -ENOMEM, "out of memory");
	}
	(void)snprintf(ps->url, sizeof(ps->url), "%s", c->placement_url);
	(void)pthread_mutex_init(&ps->lock, NULL);
	(void)pthread_condattr_init(&ca);
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	(void)pthread_cond_init(&ps->cond, &ca);
	(void)pthread_condattr_destroy(&ca);
	ps->st.enabled = true;
	*ret = ps;
	return 0;
}

void
placement_sync_note(struct placement_sync *ps, const char *uuid)
{
	if (ps == NULL)
		return;
	(void)pthread_mutex_lock(&ps->lock);
	for (size_t i = 0; i < ps->n_notes; i++)
		if (STREQ(ps->notes[i].uuid, uuid))
			goto out;
	if (ps->n_notes >= NOTES_MAX)
		ps->overflow = true;
	else {
		if (ps->n_notes == ps->cap_notes) {
			size_t cap = ps->cap_notes ? ps->cap_notes * 2 : 64;
			struct note *v = realloc(ps->notes, cap * sizeof(*v));

			if (v == NULL) {
				ps->overflow = true;
				goto out;
			}
			ps->notes = v;
			ps->cap_notes = cap;
		}
		(void)snprintf(
		    ps->notes[ps->n_notes].uuid, UUID_STR_LEN, "%s", uuid);
		ps->n_notes++;
	}
	(void)pthread_cond_signal(&ps->cond);
out:
	(void)pthread_mutex_unlock(&ps->lock);
}

void
placement_sync_status(
    struct placement_sync *ps, struct placement_sync_status *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (ps == NULL)
		return;
	(void)pthread_mutex_lock(&ps->lock);
	*ret = ps->st;
	ret->pending =
	    (int64_t)(ps->n_notes + ps->in_flight) + (ps->overflow ? 1 : 0);
	ret->ok = ret->ok && ret->pending == 0;
	(void)pthread_mutex_unlock(&ps->lock);
}

/* The status after an attempt: the error, or a success. */
static void
sync_record(struct placement_sync *ps, int rc, const struct err *e)
{
	(void)pthread_mutex_lock(&ps->lock);
	if (rc < 0) {
		ps->st.ok = false;
		ps->st.errors++;
		(void)snprintf(
		    ps->st.last_error, sizeof(ps->st.last_error), "%s", e->msg);
	} else {
		ps->st.ok = true;
		ps->st.last_error[0] = '\0';
		if (ps->n_notes == 0 && !ps->overflow)
			ps->st.last_sync_ms = util_now_ms();
	}
	(void)pthread_mutex_unlock(&ps->lock);
}

/* The provider and its inventories, once (and at each reconcile). */
static int
sync_provider(struct placement_sync *ps, struct err *e)
{
	struct node_inventory inv[NODE_N_RC];
	int rc;

	if (ps->provider[0] == '\0') {
		if ((rc = store_node_uuid(ps->store, ps->provider, e)) < 0) {
			ps->provider[0] = '\0';
			return rc;
		}
		(void)pthread_mutex_lock(&ps->lock);
		memcpy(ps->st.provider, ps->provider, UUID_STR_LEN);
		(void)pthread_mutex_unlock(&ps->lock);
	}
	if ((rc = placement_provider_ensure(
		 ps->pl, ps->provider, ps->name, e)) < 0)
		return rc;
	if (node_cache_inventory(ps->node, inv) &&
	    (rc = placement_inventories_put(ps->pl, ps->provider, inv, e)) < 0)
		return rc;
	ps->ready = true;
	return 0;
}

/* Writes what each noted instance's row says now; *ret_done of them. */
static int
sync_notes(struct placement_sync *ps, const struct note *v, size_t n,
    size_t *ret_done, struct err *e)
{
	int rc = 0;

	*ret_done = 0;
	if (!ps->ready && (rc = sync_provider(ps, e)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		_cleanup_(instance_freep) struct instance *inst = NULL;
		int64_t usage[NODE_N_RC];

		rc = store_instance_get(ps->store, v[i].uuid, &inst, e);
		if (rc == -ENOENT) {
			err_clear(e);
			rc = placement_allocation_delete(ps->pl, v[i].uuid, e);
		} else if (rc == 0) {
			node_flavor_usage(
			    &inst->flavor, node_volume_backed(inst), usage);
			rc = placement_allocation_put(
			    ps->pl, ps->provider, v[i].uuid, usage, e);
		}
		if (rc < 0)
			return rc;
		*ret_done = i + 1;
	}
	return 0;
}

static int
alloc_cmp(const void *a, const void *b)
{
	return strcmp(((const struct placement_alloc *)a)->consumer,
	    ((const struct placement_alloc *)b)->consumer);
}

/* Writes the allocations of the missing consumers: in batches, one by
 * one for a batch Placement refuses. */
static int
sync_post(struct placement_sync *ps, const char **uuids,
    int64_t (*usage)[NODE_N_RC], size_t n, struct err *e)
{
	int rc;

	if (n == 0)
		return 0;
	rc = placement_allocations_post(ps->pl, ps->provider,
	    (const char *const *)uuids, (const int64_t(*)[NODE_N_RC])usage, n,
	    e);
	if (rc != -EEXIST)
		return rc;
	err_clear(e);
	for (size_t i = 0; i < n; i++)
		if ((rc = placement_allocation_put(
			 ps->pl, ps->provider, uuids[i], usage[i], e)) < 0)
			return rc;
	return 0;
}

/*
 * The full reconciliation: provider and inventories, then every
 * allocation of the provider against every instance row: missing ones
 * written, different ones rewritten, those without a row removed.
 */
static int
sync_reconcile(struct placement_sync *ps, struct err *e)
{
	_cleanup_free_ struct placement_alloc *al = NULL;
	_cleanup_free_ bool *seen = NULL;
	_cleanup_free_ const char **batch = NULL;
	_cleanup_free_ int64_t(*busage)[NODE_N_RC] = NULL;
	char marker[UUID_STR_LEN] = "";
	size_t n_al = 0, nb = 0, written = 0, removed = 0;
	struct instance **page = NULL;
	size_t n_page = 0;
	int64_t t0 = mono_ms();
	int rc;

	if ((rc = sync_provider(ps, e)) < 0 ||
	    (rc = placement_provider_allocations(
		 ps->pl, ps->provider, &al, &n_al, e)) < 0)
		return rc;
	if (n_al)
		qsort(al, n_al, sizeof(*al), alloc_cmp);
	if ((seen = calloc(n_al + 1, sizeof(*seen))) == NULL ||
	    (batch = calloc(POST_BATCH, sizeof(*batch))) == NULL ||
	    (busage = calloc(POST_BATCH, sizeof(*busage))) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	do {
		rc = store_instance_list(ps->store, marker[0] ? marker : NULL,
		    PAGE, &page, &n_page, e);
		if (rc == -ENOENT) /* the marker's row went: start over */
			return err_set(e, -EAGAIN,
			    "instances changed under the reconciliation");
		if (rc < 0)
			return rc;
		for (size_t i = 0; i < n_page && rc == 0; i++) {
			struct instance *inst = page[i];
			struct placement_alloc key, *a;
			int64_t usage[NODE_N_RC];

			node_flavor_usage(
			    &inst->flavor, node_volume_backed(inst), usage);
			memcpy(key.consumer, inst->uuid, UUID_STR_LEN);
			a = n_al
			    ? bsearch(&key, al, n_al, sizeof(*al), alloc_cmp)
			    : NULL;
			if (a)
				seen[a - al] = true;
			if (a && memcmp(a->usage, usage, sizeof(usage)) == 0)
				continue;
			written++;
			if (a) { /* changed: its own PUT (a generation) */
				rc = placement_allocation_put(
				    ps->pl, ps->provider, inst->uuid, usage, e);
				continue;
			}
			batch[nb] = strdup(inst->uuid);
			memcpy(busage[nb], usage, sizeof(usage));
			if (batch[nb] == NULL)
				rc = err_set(e, -ENOMEM, "out of memory");
			else if (++nb == POST_BATCH) {
				rc = sync_post(ps, batch, busage, nb, e);
				while (nb > 0)
					free((char *)batch[--nb]);
			}
		}
		if (n_page)
			memcpy(marker, page[n_page - 1]->uuid, UUID_STR_LEN);
		store_instance_list_free(page, n_page);
		page = NULL;
	} while (rc == 0 && n_page == PAGE);
	if (rc == 0)
		rc = sync_post(ps, batch, busage, nb, e);
	while (nb > 0)
		free((char *)batch[--nb]);
	for (size_t i = 0; i < n_al && rc == 0; i++)
		if (!seen[i]) {
			removed++;
			rc = placement_allocation_delete(
			    ps->pl, al[i].consumer, e);
		}
	if (rc < 0)
		return rc;
	if (written || removed)
		log_info("placement: reconciled provider %s: %zu allocations "
			 "written, %zu removed, %zu in step (%" PRId64 " ms)",
		    ps->provider, written, removed, n_al - removed,
		    mono_ms() - t0);
	(void)pthread_mutex_lock(&ps->lock);
	ps->st.reconciles++;
	ps->st.last_reconcile_ms = mono_ms() - t0;
	(void)pthread_mutex_unlock(&ps->lock);
	return 0;
}

/* Puts the notes not done back in front of the new ones. */
static void
notes_put_back(struct placement_sync *ps, struct note *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool dup = false;

		for (size_t j = 0; j < ps->n_notes && !dup; j++)
			dup = STREQ(ps->notes[j].uuid, v[i].uuid);
		if (dup)
			continue;
		if (ps->n_notes >= NOTES_MAX) {
			ps->overflow = true;
			continue;
		}
		if (ps->n_notes == ps->cap_notes) {
			size_t cap = ps->cap_notes ? ps->cap_notes * 2 : 64;
			struct note *nv = realloc(ps->notes, cap * sizeof(*nv));

			if (nv == NULL) {
				ps->overflow = true;
				continue;
			}
			ps->notes = nv;
			ps->cap_notes = cap;
		}
		ps->notes[ps->n_notes++] = v[i];
	}
}

static void *
sync_run(void *arg)
{
	struct placement_sync *ps = arg;
	int64_t next_full = 0, retry_at = 0;
	int64_t backoff =
	    ps->interval_ms < RETRY_MAX_MS ? ps->interval_ms : RETRY_MAX_MS;

	util_thread_name("hl-placement");
	(void)pthread_mutex_lock(&ps->lock);
	while (!ps->stop) {
		int64_t now = mono_ms();
		bool full =
		    now >= next_full || (ps->overflow && now >= retry_at);
		bool drain = ps->n_notes > 0 && now >= retry_at;
		struct note *v;
		size_t n, done = 0;
		struct err e = {0};
		int rc;

		if (!full && !drain) {
			int64_t until = next_full;
			struct timespec ts;

			if ((ps->n_notes > 0 || ps->overflow) &&
			    retry_at < until)
				until = retry_at;
			ts.tv_sec = (time_t)(until / 1000);
			ts.tv_nsec = (long)(until % 1000) * 1000000;
			(void)pthread_cond_timedwait(&ps->cond, &ps->lock, &ts);
			continue;
		}
		v = ps->notes;
		n = ps->n_notes;
		ps->notes = NULL;
		ps->n_notes = ps->cap_notes = 0;
		ps->in_flight = n;
		if (full)
			ps->overflow = false;
		(void)pthread_mutex_unlock(&ps->lock);

		if (full) {
			rc = sync_reconcile(ps, &e);
			done = rc == 0 ? n : 0;
		} else
			rc = sync_notes(ps, v, n, &done, &e);
		if (rc < 0)
			ps->ready = false; /* ensure the provider again */

		(void)pthread_mutex_lock(&ps->lock);
		ps->in_flight = 0;
		if (rc < 0) {
			notes_put_back(ps, v + done, n - done);
			if (full)
				ps->overflow = ps->overflow || n > done;
		}
		(void)pthread_mutex_unlock(&ps->lock);
		free(v);
		if (rc < 0)
			log_warn("placement: %s (%s)", e.msg,
			    full ? "reconciliation" : "allocations");
		sync_record(ps, rc, &e);
		now = mono_ms();
		if (full) /* a failed one is tried again soon */
			next_full = now + (rc < 0 ? backoff : ps->interval_ms);
		retry_at = rc < 0 ? now + backoff : 0;
		(void)pthread_mutex_lock(&ps->lock);
	}
	(void)pthread_mutex_unlock(&ps->lock);
	return NULL;
}

int
placement_sync_start(struct placement_sync *ps, struct err *e)
{
	struct store_opts so = {.no_migrate = true};
	int rc;

	if ((rc = store_open(ps->db_path, &so, &ps->store, e)) < 0)
		return rc;
	if ((rc = pthread_create(&ps->thread, NULL, sync_run, ps)) != 0) {
		ps->store = store_close(ps->store);
		return err_set(e, -rc, "cannot start the Placement sync: %s",
		    strerror(rc));
	}
	ps->started = true;
	log_info("placement: keeping %s in step every %" PRId64
		 " s (provider name %s)",
	    ps->url, ps->interval_ms / 1000, ps->name);
	return 0;
}

struct placement_sync *
placement_sync_stop(struct placement_sync *ps)
{
	if (ps == NULL)
		return NULL;
	if (ps->started) {
		atomic_store(&ps->abort, true);
		(void)pthread_mutex_lock(&ps->lock);
		ps->stop = true;
		(void)pthread_cond_signal(&ps->cond);
		(void)pthread_mutex_unlock(&ps->lock);
		(void)pthread_join(ps->thread, NULL);
	}
	ps->store = store_close(ps->store);
	placement_free(ps->pl);
	(void)pthread_mutex_destroy(&ps->lock);
	(void)pthread_cond_destroy(&ps->cond);
	free(ps->notes);
	free(ps->db_path);
	free(ps->name);
	free(ps);
	return NULL;
}
