/*
 * domevents: libvirt's lifecycle events into the instances' states (see
 * domevents.h). libvirt's event loop thread only queues (on_event, under
 * d->lock: a uuid set, coalesced, bounded by DOMEVENTS_QUEUE_MAX, beyond
 * which one full re-read replaces the queue); the worker thread does every
 * libvirt call and store write. The worker owns d->store (its own
 * connection) and the event connection's reopening; d->lock guards the
 * queue and the flags below it in struct domevents, never a libvirt call
 * or a store write.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "domevents.h"
#include "log.h"
#include "store.h"
#include "util.h"

/* an instance whose claim is held: tried again after this long */
#define DOMEVENTS_CLAIM_RETRY_MS 20
/* a store or libvirt call that failed for now (-EAGAIN) */
#define DOMEVENTS_AGAIN_RETRY_MS 500

struct domevents_pending {
	char uuid[UUID_STR_LEN];
	int64_t not_before_ms; /* util_now_ms */
};

struct domevents {
	struct virt *virt;
	char *db_path;
	int (*claim)(void *arg, const char *uuid);
	void (*release)(void *arg, const char *uuid);
	void *claim_arg;
	int retry_ms;
	struct store *store; /* the worker's */
	pthread_t thread;
	bool started;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC; work queued, stop, idle */
	/* Guarded by lock: */
	struct domevents_pending *q;
	size_t n, cap;
	int64_t resync_at; /* read every instance again from then on
			      (util_now_ms); INT64_MAX: no */
	bool lost; /* the event connection is down: reopen */
	bool stop;
	bool busy; /* the worker handles what it took */
	bool first_done; /* the first open + re-read were tried */
	struct domevents_stats st;
};

/* The state an event says. See domevents.h. */
int
domevents_state_of(
    enum virt_lifecycle lc, bool crashed, enum instance_state *ret)
{
	if (crashed) {
		*ret = INSTANCE_CRASHED;
		return 0;
	}
	switch (lc) {
	case VIRT_LC_STARTED:
	case VIRT_LC_RESUMED:
		*ret = INSTANCE_RUNNING;
		return 0;
	case VIRT_LC_SUSPENDED:
	case VIRT_LC_PMSUSPENDED:
		*ret = INSTANCE_PAUSED;
		return 0;
	case VIRT_LC_STOPPED:
	case VIRT_LC_SHUTDOWN:
		*ret = INSTANCE_STOPPED;
		return 0;
	case VIRT_LC_CRASHED:
		*ret = INSTANCE_CRASHED;
		return 0;
	default:
		return -ENOENT;
	}
}

/* Queues uuid (lock held); returns true when the worker has work. */
static bool
enqueue_locked(struct domevents *d, const char *uuid, int64_t not_before)
{
	struct domevents_pending *grown;
	size_t i;

	for (i = 0; i < d->n; i++)
		if (STREQ(d->q[i].uuid, uuid)) {
			/* an event now beats a retry later */
			if (not_before < d->q[i].not_before_ms)
				d->q[i].not_before_ms = not_before;
			return true;
		}
	if (d->n >= DOMEVENTS_QUEUE_MAX) {
		d->resync_at = 0;
		return true;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;

		grown = realloc(d->q, cap * sizeof(*grown));
		if (grown == NULL) {
			d->resync_at = 0;
			return true;
		}
		d->q = grown;
		d->cap = cap;
	}
	memcpy(d->q[d->n].uuid, uuid, UUID_STR_LEN);
	d->q[d->n].not_before_ms = not_before;
	d->n++;
	return true;
}

/* libvirt's event loop thread (virt_event_fn): queue, never call libvirt,
 * never wait for more than d->lock. */
static void
on_event(void *arg, const struct virt_event *ev)
{
	struct domevents *d = arg;
	enum instance_state st;
	bool wake = false;

	pthread_mutex_lock(&d->lock);
	d->st.events++;
	switch (ev->kind) {
	case VIRT_EVENT_LOST:
		d->lost = true;
		wake = true;
		break;
	case VIRT_EVENT_LIFECYCLE:
		/* a domain hyperlet cannot own, or an event without a
		 * state (defined, undefined): nothing to write */
		if (ev->named &&
		    domevents_state_of(ev->lifecycle, ev->crashed, &st) == 0)
			wake = enqueue_locked(d, ev->uuid, 0);
		break;
	case VIRT_EVENT_REBOOT: /* the guest reset: it still runs */
	case VIRT_EVENT_DEVICE_REMOVED: /* virt woke the detach itself */
		break;
	}
	if (wake)
		pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/*
 * Writes what instance uuid's domain shows, under its claim. A domain
 * that is gone does not run: stopped. A row that is gone (or building or
 * deleting) is not this worker's. Returns 0, -EBUSY (claimed: try again),
 * -EAGAIN, or another negative errno (logged, dropped).
 */
static int
handle_one(struct domevents *d, const char *uuid, bool reconcile, struct err *e)
{
	enum instance_state st;
	bool changed = false;
	int rc;

	if (d->claim && (rc = d->claim(d->claim_arg, uuid)) < 0)
		return rc == -EBUSY ? -EBUSY : err_set(e, rc, "claim");
	rc = virt_observe(d->virt, uuid, &st, e);
	if (rc == -ENOENT) {
		err_clear(e);
		st = INSTANCE_STOPPED;
		rc = 0;
	}
	if (rc == 0) {
		/* the event the change writes says why (design.md) */
		store_set_cause(d->store,
		    reconcile ? STORE_CAUSE_RECONCILE : STORE_CAUSE_LIBVIRT);
		rc = store_instance_observe_state(
		    d->store, uuid, st, &changed, e);
		if (rc == -ENOENT) { /* no row: not hyperlet's */
			err_clear(e);
			rc = 0;
		}
	}
	if (d->release)
		d->release(d->claim_arg, uuid);
	if (rc == 0 && changed) {
		log_debug("instance %s: %s (%s)", uuid,
		    instance_state_to_string(st),
		    reconcile ? "reconcile" : "libvirt");
		pthread_mutex_lock(&d->lock);
		if (reconcile)
			d->st.reconciled++;
		else
			d->st.changed++;
		pthread_mutex_unlock(&d->lock);
	}
	return rc;
}

static int
domain_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct virt_domain *)elem)->uuid);
}

/* Reads every instance's domain again (one virt_list) and handles, with
 * cause reconcile, each row whose state differs. Returns 0 or the first
 * error (the others are tried still). */
static int
resync(struct domevents *d, struct err *e)
{
	_cleanup_free_ struct store_instance_state *rows = NULL;
	_cleanup_free_ struct virt_domain *doms = NULL;
	size_t n_rows = 0, n_doms = 0, i;
	int rc, first = 0;

	if ((rc = store_instance_states(d->store, &rows, &n_rows, e)) < 0 ||
	    (rc = virt_list(d->virt, &doms, &n_doms, e)) < 0)
		return rc;
	pthread_mutex_lock(&d->lock);
	d->st.resyncs++;
	pthread_mutex_unlock(&d->lock);
	for (i = 0; i < n_rows; i++) {
		const struct virt_domain *dom;
		enum instance_state want;
		struct err e1 = {0};

		if (rows[i].state == INSTANCE_BUILDING ||
		    rows[i].state == INSTANCE_DELETING)
			continue;
		dom = n_doms ? bsearch(rows[i].uuid, doms, n_doms,
				   sizeof(*doms), domain_cmp)
			     : NULL;
		if (dom && !dom->named) /* not hyperlet's: never refreshed */
			continue;
		want = dom ? dom->observed : INSTANCE_STOPPED;
		if (want == rows[i].state)
			continue;
		rc = handle_one(d, rows[i].uuid, true, &e1);
		if (rc == -EBUSY || rc == -EAGAIN) {
			/* a change holds it (it writes the truth itself,
			 * and this makes sure), or try again later */
			pthread_mutex_lock(&d->lock);
			(void)enqueue_locked(d, rows[i].uuid,
			    util_now_ms() +
				(rc == -EBUSY ? DOMEVENTS_CLAIM_RETRY_MS
					      : DOMEVENTS_AGAIN_RETRY_MS));
			pthread_mutex_unlock(&d->lock);
		} else if (rc < 0 && first == 0) {
			first = rc;
			*e = e1;
		}
	}
	return first;
}

static void
deadline_ts(int64_t ms_from_now, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms_from_now / 1000;
	ts->tv_nsec += (long)(ms_from_now % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *
worker(void *arg)
{
	struct domevents *d = arg;
	struct domevents_pending *take = NULL;
	int64_t next_watch_ms = 0;
	bool opened = false;

	util_thread_name("hl-domevents");
	for (;;) {
		size_t n_take = 0, i, k;
		bool do_watch, do_resync;
		int64_t now = 0, wake_at;
		struct err e = {0};
		int rc;

		pthread_mutex_lock(&d->lock);
		for (;;) {
			struct timespec ts;

			if (d->stop)
				break;
			now = util_now_ms();
			wake_at = d->resync_at;
			if ((!opened || d->lost) && next_watch_ms < wake_at)
				wake_at = next_watch_ms;
			for (i = 0; i < d->n; i++)
				if (d->q[i].not_before_ms < wake_at)
					wake_at = d->q[i].not_before_ms;
			if (wake_at <= now)
				break;
			if (wake_at == INT64_MAX)
				pthread_cond_wait(&d->cond, &d->lock);
			else {
				deadline_ts(wake_at - now, &ts);
				(void)pthread_cond_timedwait(
				    &d->cond, &d->lock, &ts);
			}
		}
		if (d->stop) {
			pthread_mutex_unlock(&d->lock);
			break;
		}
		do_watch = (!opened || d->lost) && now >= next_watch_ms;
		do_resync = d->resync_at <= now;
		if (do_resync)
			d->resync_at = INT64_MAX;
		if (d->n > 0) {
			free(take);
			take = malloc(d->n * sizeof(*take));
		}
		for (i = k = 0; take && i < d->n; i++)
			if (d->q[i].not_before_ms <= now)
				take[n_take++] = d->q[i];
			else
				d->q[k++] = d->q[i];
		if (take)
			d->n = k;
		d->busy = true;
		pthread_mutex_unlock(&d->lock);

		if (do_watch) {
			pthread_mutex_lock(&d->lock);
			d->lost = false;
			pthread_mutex_unlock(&d->lock);
			rc = virt_watch(d->virt, on_event, d, &e);
			if (rc == 1) {
				/* missed meanwhile: read everything again */
				opened = true;
				do_resync = true;
			} else if (rc < 0) {
				log_debug("domevents: %s", e.msg);
				err_clear(&e);
				pthread_mutex_lock(&d->lock);
				d->lost = opened;
				pthread_mutex_unlock(&d->lock);
				next_watch_ms = util_now_ms() + d->retry_ms;
			}
		}
		if (do_resync && (rc = resync(d, &e)) < 0) {
			/* libvirt not back yet (or the database busy):
			 * again later; a loss meanwhile re-reads anyway */
			log_debug("domevents: re-read: %s", e.msg);
			err_clear(&e);
			pthread_mutex_lock(&d->lock);
			if (rc == -EAGAIN && d->resync_at == INT64_MAX)
				d->resync_at = util_now_ms() + d->retry_ms;
			pthread_mutex_unlock(&d->lock);
		}
		for (i = 0; i < n_take; i++) {
			rc = handle_one(d, take[i].uuid, false, &e);
			pthread_mutex_lock(&d->lock);
			if (rc != -EBUSY) /* a retry is not another event */
				d->st.handled++;
			if (rc == -EBUSY || rc == -EAGAIN)
				(void)enqueue_locked(d, take[i].uuid,
				    util_now_ms() +
					(rc == -EBUSY
						? DOMEVENTS_CLAIM_RETRY_MS
						: DOMEVENTS_AGAIN_RETRY_MS));
			pthread_mutex_unlock(&d->lock);
			if (rc < 0 && rc != -EBUSY)
				log_debug("domevents: instance %s: %s",
				    take[i].uuid, e.msg);
			err_clear(&e);
		}
		pthread_mutex_lock(&d->lock);
		d->busy = false;
		if (do_watch || opened)
			d->first_done = true;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
	}
	free(take);
	return NULL;
}

/* Starts the worker. See domevents.h. */
int
domevents_start(
    const struct domevents_opts *o, struct domevents **ret, struct err *e)
{
	_cleanup_(domevents_stopp) struct domevents *d = NULL;
	struct store_opts so = {.no_migrate = true};
	pthread_condattr_t ca;
	int rc;

	if (o == NULL || o->virt == NULL || o->db_path == NULL)
		return err_set(e, -EINVAL, "domevents: no virt or database");
	if ((o->claim == NULL) != (o->release == NULL))
		return err_set(e, -EINVAL, "domevents: claim without release");
	if (o->retry_ms < 0)
		return err_set(e, -EINVAL, "domevents: retry_ms < 0");
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	pthread_mutex_init(&d->lock, NULL);
	(void)pthread_condattr_init(&ca);
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	(void)pthread_condattr_destroy(&ca);
	d->virt = o->virt;
	d->claim = o->claim;
	d->release = o->release;
	d->claim_arg = o->claim_arg;
	d->retry_ms = o->retry_ms ? o->retry_ms : 1000;
	d->resync_at = INT64_MAX;
	if ((d->db_path = strdup(o->db_path)) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	if ((rc = store_open(d->db_path, &so, &d->store, e)) < 0)
		return rc;
	if ((rc = pthread_create(&d->thread, NULL, worker, d)) != 0)
		return err_set(e, -rc, "domevents: cannot start the worker");
	d->started = true;
	*ret = TAKE_PTR(d);
	return 0;
}

/* Stops the worker and frees d. See domevents.h. */
struct domevents *
domevents_stop(struct domevents *d)
{
	if (d == NULL)
		return NULL;
	if (d->started) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		(void)pthread_join(d->thread, NULL);
		/* no callback runs into d after this */
		virt_unwatch(d->virt);
	}
	d->store = store_close(d->store);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d->q);
	free(d->db_path);
	free(d);
	return NULL;
}

/* The counters. See domevents.h. */
void
domevents_stats(struct domevents *d, struct domevents_stats *ret)
{
	pthread_mutex_lock(&d->lock);
	*ret = d->st;
	pthread_mutex_unlock(&d->lock);
}

/* Waits for an idle worker. See domevents.h. */
bool
domevents_settle(struct domevents *d, int timeout_ms)
{
	struct timespec ts;
	bool idle;

	deadline_ts(timeout_ms, &ts);
	pthread_mutex_lock(&d->lock);
	while (!(idle = d->first_done && !d->busy && d->n == 0 &&
		d->resync_at == INT64_MAX))
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&d->lock);
	return idle;
}
