/*
 * domevents: the instance's state follows libvirt's. libvirt's lifecycle
 * events (virt_watch: a guest that powered itself off, a QEMU that died,
 * an operator's virsh destroy/suspend/resume) are queued by libvirt's event
 * loop thread and handled by one worker thread here, which writes the
 * state the domain shows (store_instance_observe_state: the generation,
 * and so the ETag, changes). After a lost and regained libvirt connection
 * (and once at start, for what happened since start-up reconciliation),
 * every instance's state is read again; differences found are written
 * with cause reconcile.
 *
 * Races with hyperlet's own changes: an instance is handled only under its
 * claim (the API's per-instance lock, o->claim); while a change holds it
 * the event waits. Under the claim the domain's state is read again
 * (virt_observe) rather than taken from the event, so an event that was
 * queued before a change finished never undoes it. Domains hyperlet does
 * not own (not named instance-<uuid>, or no row) are ignored; building
 * and deleting rows are left to the create and delete that own them.
 */
#ifndef HYPERLET_DOMEVENTS_H
#define HYPERLET_DOMEVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "macro.h"
#include "virt.h"

/* Pending instances kept at most; beyond, one full re-read instead. */
#define DOMEVENTS_QUEUE_MAX 4096

struct domevents;

struct domevents_opts {
	struct virt *virt; /* borrowed; outlives the domevents */
	const char *db_path; /* the worker's own store connection */
	/* The per-instance claim: 0 (claimed: no other change runs on the
	 * instance until release) or -EBUSY (a change holds it: tried again
	 * later). NULL: no claims (tests, or a caller with no API). */
	int (*claim)(void *arg, const char *uuid);
	void (*release)(void *arg, const char *uuid);
	void *claim_arg;
	/* gap between attempts to reopen the event connection; 0: 1000 */
	int retry_ms;
};

/* The instance state an event says (the mapping the worker's re-read
 * agrees with): started and resumed running, suspended and pmsuspended
 * paused, stopped and shutdown stopped, stopped with detail crashed (and
 * event crashed) crashed. Returns 0 and *ret, or -ENOENT for events that
 * say no state (defined, undefined, other). */
int domevents_state_of(
    enum virt_lifecycle lc, bool crashed, enum instance_state *ret);

/* Opens the store connection, registers for the events (virt_watch; a
 * libvirt that is down now is retried every retry_ms) and starts the
 * worker. Returns 0 and *ret (owned, domevents_stop), -EINVAL, -ENOMEM,
 * -EIO (store). */
int domevents_start(
    const struct domevents_opts *o, struct domevents **ret, struct err *e);

/* Stops the worker (an instance being handled finishes first), closes the
 * event connection and frees d. Accepts NULL; returns NULL. */
struct domevents *domevents_stop(struct domevents *d);
DEFINE_FREEP(struct domevents, domevents_stop)

/* Counters, for /metrics and the tests. */
struct domevents_stats {
	uint64_t events; /* events received from libvirt */
	uint64_t handled; /* instances looked at for an event */
	uint64_t changed; /* state writes (cause libvirt) */
	uint64_t resyncs; /* full re-reads (start, reconnect, overflow) */
	uint64_t reconciled; /* state writes by a re-read (cause reconcile) */
};
void domevents_stats(struct domevents *d, struct domevents_stats *ret);

/* Waits up to timeout_ms until the worker has nothing queued and has
 * finished the first re-read. true if so. For tests. */
bool domevents_settle(struct domevents *d, int timeout_ms);

#endif
