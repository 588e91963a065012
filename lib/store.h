/*
 * store: hyperlet's state in one SQLite file (instances, their block device
 * mappings, uploaded images), its schema migrations and the online data
 * migration that gives version-1 BDM rows their uuid. The only module that
 * includes <sqlite3.h>.
 *
 * A struct store is ONE connection with its prepared-statement cache: use
 * it from one thread at a time. Threads that work at once each open their
 * own (WAL: readers never wait for the writer; writes are serialised by
 * SQLite, and a write that still finds the database locked after the busy
 * timeout fails with -EAGAIN, which is worth retrying).
 *
 * Every function returns 0 (or a count) on success and a negative errno
 * on failure, with a message in e that is fit for an API client (no SQL):
 *   -EINVAL  an argument is malformed (e.g. not a canonical lower-case UUID)
 *   -ENOENT  no such instance / BDM / image / marker
 *   -EEXIST  a uniqueness constraint (uuid taken) -> 409
 *   -EBUSY   the image is in use -> 409
 *   -EAGAIN  the database is locked by another writer: try again -> 503
 *   -EIO     corruption, full disk, I/O error, newer schema
 *   -ENOMEM
 * Out-parameters are written only on success.
 */
#ifndef HYPERLET_STORE_H
#define HYPERLET_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdm.h"
#include "err.h"
#include "node.h"
#include "util.h"

/*
 * Schema history (PRAGMA user_version):
 *   1  instances, block_device_mappings (no uuid), images
 *   2  block_device_mappings.uuid (nullable) + its UNIQUE index; rows from
 *      version 1 get theirs from store_online_migrate()
 *   3  block_device_mappings.uuid NOT NULL. Applied only once no row lacks a
 *      uuid: until then store_migrate() stops at 2 (not an error; the code
 *      works the same on 2 and 3) and store_online_migrate() applies it as
 *      soon as its last batch is done.
 *   4  rolled_back_builds (tombstones, see store_instance_roll_back).
 *      Behind 3, so a database still at 2 has no tombstones: the
 *      tombstone functions then do nothing (the rest works the same).
 *   5  instances.desired_state ('running' | 'stopped': what the API last
 *      asked for, apart from state, which follows libvirt; filled from
 *      state, 'stopped' for stopped rows and 'running' for the others)
 *      and instances.fault (why reconciliation put the instance in
 *      error; NULL when none). Behind 3 as well: on 2 the desired state
 *      reads as running unless the row is stopped, and setting it or a
 *      fault writes only the state.
 *   6  block_device_mappings.attach_state (NULL: settled; 'attaching',
 *      'detaching': a volume attach / detach libvirt has not confirmed,
 *      see enum bdm_attach_state) and a partial index on the unsettled
 *      rows. Behind 3 as well: on 2 every BDM reads as settled, setting a
 *      state writes nothing, and store_instance_states flags every
 *      instance (reconciliation then compares all, as before 6).
 *   STORE_NODE_VERSION (7)  node: one row, the node's uuid
 *      (store_node_uuid). Behind 3 as well: on 2 the node has no uuid
 *      yet (-ENOENT). Its number is this one #define (a merge after
 *      another branch's migration renumbers it here only).
 *   STORE_EVENTS_VERSION (8)  events: the change outbox (design.md
 *      "Events"), filled by triggers on instances and by
 *      store_event_append_tx. Behind 3 as well: on 2 nothing is recorded.
 *   STORE_GUEST_VERSION (9)  instance_guest (hostname, user_data, keys as
 *      JSON) and nics (port_id and mac UNIQUE on the node, request order
 *      in position; attach_state as a BDM's, see enum nic_attach_state).
 *      Behind 3 as well: on 2 guest data is neither
 *      written nor read (instances have no NICs until migrated).
 */
#define STORE_NODE_VERSION 7
#define STORE_EVENTS_VERSION 8
#define STORE_GUEST_VERSION 9
/*   STORE_STATES_VERSION (10)  instances.state may also be 'paused' and
 *      'crashed' (libvirt's lifecycle events, domevents.h): the CHECK is
 *      widened in place, no row moves. Behind 3 as well: on 2 writing
 *      either state fails the old CHECK (-EIO). */
#define STORE_STATES_VERSION 10
/*   STORE_USAGE_VERSION (11)  node_usage: one row, what every instance
 *      row takes (store_node_usage), kept by triggers on instances and
 *      block_device_mappings in the transaction of each write, so that a
 *      create's capacity claim reads one row instead of summing every
 *      instance. Filled from the rows at migration. Behind 3 as well: on
 *      2 the usage is summed from the rows as before. */
#define STORE_USAGE_VERSION 11
#define STORE_SCHEMA_VERSION STORE_USAGE_VERSION

struct store;

struct store_opts {
	bool sync_normal; /* synchronous=NORMAL instead of FULL (benchmark) */
	int busy_timeout_ms; /* 0: default 5000 */
	bool no_migrate; /* don't create/migrate (extra per-thread
			    connections, `db version`); a newer schema is
			    still refused */
};

/*
 * Opens the database at path (creating it, unless o->no_migrate: then a
 * missing file is -ENOENT), sets WAL, synchronous, busy_timeout and
 * foreign_keys=ON, and applies every pending
 * migration (each in its own BEGIN IMMEDIATE transaction; safe if two
 * processes open at once) unless o->no_migrate. o may be NULL (defaults).
 * A database whose user_version is newer than STORE_SCHEMA_VERSION is
 * refused with -EIO and a message saying so; it is never modified.
 * On success *ret is owned by the caller (store_close).
 */
int store_open(const char *path, const struct store_opts *o, struct store **ret,
    struct err *e);

/* Finalizes the cached statements and closes the connection. Accepts NULL;
 * returns NULL. */
struct store *store_close(struct store *s);

/* The database's PRAGMA user_version. */
int store_schema_version(struct store *s, int *ret, struct err *e);

/* Applies the pending migrations (what `hyperletd db sync` does). Returns
 * the schema version reached (>= 0): STORE_SCHEMA_VERSION, or 2 while
 * version-1 BDM rows still lack a uuid. -EIO for a newer database. */
int store_migrate(struct store *s, struct err *e);

/*
 * Online data migration (`hyperletd db online-migrate [--max-count N]`):
 * one batch. Gives a uuid to at most max_count (> 0) BDM rows that have
 * none, each in its own short write, race-safely: the UPDATE applies only
 * where the row still has no uuid; a writer that loses the race reads the
 * winner's uuid instead (Nova's BlockDeviceMapping._create_uuid).
 * *ret_found = rows considered in this batch, *ret_done = rows that now
 * have a uuid (0, 0 means nothing is left). Idempotent. When nothing is left
 * the gated migration to version 3 is applied. Loop until found == 0 for
 * "all". Either ret may be NULL.
 */
int store_online_migrate(struct store *s, int max_count, int *ret_found,
    int *ret_done, struct err *e);

/* How many BDM rows still lack a uuid. */
int store_online_migrate_pending(struct store *s, int64_t *ret, struct err *e);

/*
 * Writes a prepared instance (bdm_instance_prepare + blockinfo_build, so
 * every BDM has its uuid, device_name and disk_bus) with state building,
 * generation 1, created_at = updated_at = now, and all its BDMs, in one
 * transaction: all or nothing. request_digest (may be NULL) is kept for
 * idempotent PUT (store_instance_digest). inst is not modified.
 * Returns 0, -EINVAL (malformed uuid), -EEXIST (the instance uuid or a BDM
 * uuid is taken), -EAGAIN, -EIO.
 */
int store_instance_create(struct store *s, const struct instance *inst,
    const char *request_digest, struct err *e);

/*
 * store_instance_create, refused with -ENOSPC when the instance does not
 * fit (limits NULL: no check, same as store_instance_create): the usage
 * of every instance row (store_node_usage) plus what inst takes
 * (node_flavor_usage) must stay within limits->capacity of each class.
 * The sum is taken inside the transaction that inserts the row, under
 * the write lock, so two creates racing for the last room cannot both
 * win. The -ENOSPC error's field names the class ("MEMORY_MB", ...).
 */
int store_instance_claim(struct store *s, const struct instance *inst,
    const char *request_digest, const struct node_limits *limits,
    struct err *e);

/* What every instance row takes (resources_from_flavor, whatever the
 * state) in usage[], and the number of rows in *ret_n (may be NULL): the
 * node_usage row, or on a schema before STORE_USAGE_VERSION the sum over
 * the rows. store_count_by_state has them by state. */
int store_node_usage(
    struct store *s, int64_t usage[NODE_N_RC], int64_t *ret_n, struct err *e);

/* Sums usage over every instance row, as store_node_usage did before
 * STORE_USAGE_VERSION, and when the node_usage row disagrees, writes the
 * sum into it (*ret_fixed = 1, else 0). Start-up calls it: the triggers
 * keep the row exact under any write through SQL, this catches what
 * nothing should do (a trigger dropped by hand). Returns 0, -EAGAIN,
 * -EIO; on a schema before STORE_USAGE_VERSION does nothing. */
int store_node_usage_verify(struct store *s, int *ret_fixed, struct err *e);

/* The node's uuid, drawn and stored by the first call (race-safe: the
 * first writer wins and every caller reads its uuid). Returns 0, -ENOENT
 * (schema older than STORE_NODE_VERSION), -EAGAIN, -EIO. */
int store_node_uuid(struct store *s, char ret[UUID_STR_LEN], struct err *e);

/*
 * Loads one instance with its BDMs (ordered by insertion, i.e. by row id).
 * A BDM that has no uuid (a version-1 row not yet migrated) gets one here,
 * race-safely as in store_online_migrate. *ret is owned (instance_free).
 * Returns 0, -EINVAL, -ENOENT, -EAGAIN, -EIO.
 */
int store_instance_get(
    struct store *s, const char *uuid, struct instance **ret, struct err *e);

/* The request digest stored at create (*ret owned, NULL if none was
 * given). Returns 0, -EINVAL, -ENOENT. */
int store_instance_digest(
    struct store *s, const char *uuid, char **ret, struct err *e);

/*
 * Lists instances in creation order with their BDMs, after marker (the
 * last uuid of the previous page; NULL for the first page), at most limit
 * (0: no limit) of them. Two queries whatever the page size. Missing BDM
 * uuids are filled as in store_instance_get. *ret (may be NULL when
 * *ret_n is 0) is owned: store_instance_list_free. Returns 0, -EINVAL,
 * -ENOENT (unknown marker), -EAGAIN, -EIO.
 */
int store_instance_list(struct store *s, const char *marker, size_t limit,
    struct instance ***ret, size_t *ret_n, struct err *e);
void store_instance_list_free(struct instance **v, size_t n);

/* An instance's uuid and state, as store_instance_states lists them. */
struct store_instance_state {
	char uuid[UUID_STR_LEN];
	enum instance_state state; /* observed (libvirt's, as last seen) */
	enum instance_state desired; /* INSTANCE_RUNNING or _STOPPED */
	/* a BDM or (schema 9) a NIC of it is not settled (attach_state
	 * set; every instance on a schema older than 6): reconciliation
	 * compares its disks and NICs */
	bool unsettled;
};

/*
 * Every instance's uuid and state in creation order, and whether one of
 * its BDMs is unsettled, nothing else: one query, no BDMs loaded
 * (reconciliation compares these with libvirt and loads
 * an instance whole only when it has work to do). *ret (owned, free();
 * may be NULL when *ret_n is 0). Returns 0, -EAGAIN, -EIO, -ENOMEM.
 */
int store_instance_states(struct store *s, struct store_instance_state **ret,
    size_t *ret_n, struct err *e);

/* Sets the state, bumps generation and updated_at. Returns 0, -EINVAL,
 * -ENOENT, -EAGAIN, -EIO. */
int store_instance_set_state(struct store *s, const char *uuid,
    enum instance_state state, struct err *e);

/* Records the state the API asked for (INSTANCE_RUNNING or
 * INSTANCE_STOPPED; start-up reconciliation starts an instance whose
 * desired state is running), bumps generation and updated_at. A database
 * still at schema 2 has no such column: nothing is written. Returns 0,
 * -EINVAL, -ENOENT, -EAGAIN, -EIO. */
int store_instance_set_desired(struct store *s, const char *uuid,
    enum instance_state desired, struct err *e);

/* Puts the instance in state error with fault (a one-line reason, shown
 * to clients; at most 1024 bytes are kept), bumps generation and
 * updated_at. On schema 2 only the state is written. Returns 0, -EINVAL,
 * -ENOENT, -EAGAIN, -EIO. */
int store_instance_set_error(
    struct store *s, const char *uuid, const char *fault, struct err *e);
/* What libvirt shows of an instance (a lifecycle event, or a re-read
 * after a lost connection), in one transaction: the state becomes `state`
 * and generation and updated_at are bumped when the row is in another
 * state, unless it is building or deleting (a create or delete owns
 * those; nothing is written). *ret_changed (may be NULL) says whether it
 * was written. The caller holds the instance's claim and has set the
 * cause (store_set_cause). Returns 0, -EINVAL, -ENOENT (no such
 * instance), -EAGAIN, -EIO. */
int store_instance_observe_state(struct store *s, const char *uuid,
    enum instance_state state, bool *ret_changed, struct err *e);

/* Compare and set: the state becomes `to` (generation and updated_at
 * bumped) only if it is `from`, in one statement, so a change never
 * overwrites another that came first. Returns 0, -EINVAL, -ENOENT (no
 * such instance), -EBUSY (the instance is in another state; e says which),
 * -EAGAIN, -EIO. */
int store_instance_cas_state(struct store *s, const char *uuid,
    enum instance_state from, enum instance_state to, struct err *e);

/*
 * A delete's first step, one statement: the instance's state to deleting
 * from any state but building (whose create may still define its domain),
 * its generation bumped; generation > 0: only if the row still has that
 * generation (the one an If-Match was checked against). No read before
 * it: the row is read only to explain a refusal. Returns 0, -EINVAL,
 * -ENOENT (no such instance), -EBUSY (building, or its generation moved
 * on; e says which), -EAGAIN, -EIO.
 */
int store_instance_mark_deleting(
    struct store *s, const char *uuid, int64_t generation, struct err *e);

/* Deletes the instance; its BDMs go with it (ON DELETE CASCADE). Returns
 * 0, -EINVAL, -ENOENT, -EAGAIN, -EIO. */
int store_instance_delete(struct store *s, const char *uuid, struct err *e);

/*
 * on: the next commit of this connection (a transaction's, or a write
 * statement's own) is lazy: synchronous=NORMAL, so it is not synced. It
 * is durable against a crash of the process (kill -9) at once, and
 * against a crash of the machine once any later synced commit syncs the
 * WAL, which holds it. Only for a commit that no answer rests on and that
 * a synced commit follows before the answer: a create's building row
 * (its final state is synced), a delete's state deleting (its row's
 * delete is synced). off: cancels it if no commit came (call it after the
 * call that was meant to commit, whatever it returned).
 */
void store_lazy_next(struct store *s, bool on);

/*
 * Tombstones: the uuids of builds compute rolled back (or failed creates
 * it could not finish undoing), kept so later sweeps remove whatever
 * libvirtd finishes making for them afterwards. On a database below
 * schema version 4 (online migration pending) they are not kept: writes
 * are skipped, lists are empty.
 */

/* In one transaction: deletes the instance row (if any; BDMs cascade) and
 * records uuid as a tombstone (rolled_back_at = now, not yet checked).
 * Idempotent. Returns 0, -EINVAL, -EAGAIN, -EIO. */
int store_instance_roll_back(struct store *s, const char *uuid, struct err *e);

/* Records uuid as a tombstone and leaves its row alone (a failed create
 * whose row is set to deleting). Returns 0, -EINVAL, -EAGAIN, -EIO. */
int store_tombstone_add(struct store *s, const char *uuid, struct err *e);

/* Tombstones whose instance row is gone or in state deleting, i.e. what a
 * sweep has to look at: *ret (owned, free()) of *ret_n uuids. Returns 0,
 * -EAGAIN, -EIO, -ENOMEM. */
int store_tombstone_list(
    struct store *s, char (**ret)[UUID_STR_LEN], size_t *ret_n, struct err *e);

/* *ret = 1 if uuid is a tombstone with no instance row, 2 if with a row
 * in state deleting, else 0. Returns 0, -EINVAL, -EAGAIN, -EIO. */
int store_tombstone_state(
    struct store *s, const char *uuid, int *ret, struct err *e);

/* Deletes the tombstone of uuid (absent is fine). Returns 0, -EINVAL,
 * -EAGAIN, -EIO. */
int store_tombstone_delete(struct store *s, const char *uuid, struct err *e);

/* Ends a sweep: first_checked_at = now_ms where unset, then deletes the
 * tombstones first checked before expire_before_ms; *ret_expired (may be
 * NULL) counts them. Returns 0, -EAGAIN, -EIO. */
int store_tombstone_sweep_done(struct store *s, int64_t now_ms,
    int64_t expire_before_ms, int *ret_expired, struct err *e);

/*
 * Adds one BDM (an attached volume, prepared by bdm_prepare_attach and
 * blockinfo_pick_attach) to an instance and bumps its generation and
 * updated_at, in one transaction. Returns 0, -EINVAL, -ENOENT (no such
 * instance), -EEXIST (bdm uuid taken), -EAGAIN, -EIO.
 */
int store_bdm_insert(struct store *s, const char *instance_uuid,
    const struct bdm *b, struct err *e);

/* Removes one BDM of an instance and bumps the instance's generation.
 * Returns 0, -EINVAL, -ENOENT (no such BDM on that instance), -EAGAIN,
 * -EIO. */
int store_bdm_delete(struct store *s, const char *instance_uuid,
    const char *bdm_uuid, struct err *e);

/* NICs attached after the create (store.c has the contracts). Each bumps
 * the instance's generation in the same transaction. */
int store_nic_insert(struct store *s, const char *instance_uuid,
    const struct nic *n, struct err *e);
int store_nic_delete(struct store *s, const char *instance_uuid,
    const char *port_id, struct err *e);
int store_nic_set_attach_state(struct store *s, const char *instance_uuid,
    const char *port_id, enum nic_attach_state st, struct err *e);

/* Sets the attach_state of one BDM of an instance and bumps the
 * instance's generation (the state shows in its JSON). A database still
 * at schema 2 has no such column: nothing is written, 0. Returns 0,
 * -EINVAL, -ENOENT (no such BDM on that instance), -EAGAIN, -EIO. */
int store_bdm_set_attach_state(struct store *s, const char *instance_uuid,
    const char *bdm_uuid, enum bdm_attach_state st, struct err *e);

/* Number of instances in each state, indexed by enum instance_state
 * (INSTANCE_BUILDING .. INSTANCE_CRASHED). */
#define STORE_N_STATES 7
int store_count_by_state(
    struct store *s, int64_t counts[STORE_N_STATES], struct err *e);

/* An uploaded base image. Owns its char * members. */
struct store_image {
	char id[UUID_STR_LEN];
	char *format; /* "raw" or "qcow2" */
	int64_t virtual_size; /* bytes */
	int64_t file_size; /* bytes */
	char *checksum; /* e.g. "sha256:<hex>", or NULL */
	char *properties; /* JSON object text ("{}" when none) */
	int64_t created_at; /* ms since the epoch (set by store_image_put) */
};

struct store_image *store_image_free(struct store_image *img);
void store_image_list_free(struct store_image **v, size_t n);

/* Records an image (created_at = now). Returns 0, -EINVAL, -EEXIST (id
 * taken), -EAGAIN, -EIO. */
int store_image_put(
    struct store *s, const struct store_image *img, struct err *e);
/* *ret owned (store_image_free). Returns 0, -EINVAL, -ENOENT. */
int store_image_get(
    struct store *s, const char *id, struct store_image **ret, struct err *e);
/* All images, oldest first; *ret owned (store_image_list_free). */
int store_image_list(
    struct store *s, struct store_image ***ret, size_t *ret_n, struct err *e);
/* Deletes an image record unless an instance's imageRef or a BDM's
 * image_id names it (-EBUSY). Returns 0, -EINVAL, -ENOENT, -EBUSY, -EAGAIN,
 * -EIO. */
int store_image_delete(struct store *s, const char *id, struct err *e);

/* PRAGMA integrity_check + foreign_key_check (health, `db sync`). Returns
 * 0, or -EIO if the database is damaged. */
int store_integrity_check(struct store *s, struct err *e);

/* --- events (design.md "Events") ----------------------------------------
 * Every change to an instance row writes an event row in the same
 * transaction (triggers: instance.created, instance.updated on any state
 * or generation change, instance.deleted); other kinds (volume.*,
 * interface.*) are written with store_event_append_tx by the store
 * function that makes the change. Ids increase strictly and are never
 * reused. */

/* What caused a change, as the events the connection writes say. */
enum store_cause {
	STORE_CAUSE_API = 0, /* the default */
	STORE_CAUSE_LIBVIRT,
	STORE_CAUSE_RECONCILE,
};

/* Sets the cause of the events this connection writes from now on
 * (until the next call). Connections start with STORE_CAUSE_API. */
void store_set_cause(struct store *s, enum store_cause cause);

/* What an event is about besides its instance; members may be NULL. */
struct store_event_ref {
	const char *volume_id;
	const char *port_id;
};

/*
 * Appends an event of type (e.g. "volume.attached", "interface.detached")
 * for instance_uuid with the connection's cause, the instance's state and
 * generation as the transaction leaves them (none when its row is gone)
 * and ref's detail (may be NULL). Call it inside the store transaction
 * that makes the change (outside one, it is its own transaction). On a
 * schema older than STORE_EVENTS_VERSION nothing is written. Returns 0,
 * -EINVAL, -EAGAIN, -EIO.
 */
int store_event_append_tx(struct store *s, const char *type,
    const char *instance_uuid, const struct store_event_ref *ref,
    struct err *e);

/* One event row, flat (no allocation per row). */
struct store_event {
	int64_t id;
	char type[48];
	char instance[UUID_STR_LEN];
	char state[16]; /* "" when unknown */
	int64_t generation;
	char cause[16];
	int64_t at_ms; /* ms since the epoch */
	char volume_id[UUID_STR_LEN + 27]; /* "" when none */
	char port_id[UUID_STR_LEN + 27]; /* "" when none */
};

/* The events after id `after` in id order, at most limit (1..100000), of
 * instance_uuid only unless NULL. *ret (owned, free(); may be NULL when
 * *ret_n is 0). Returns 0, -EINVAL, -EAGAIN, -EIO, -ENOMEM. */
int store_events_list(struct store *s, int64_t after, size_t limit,
    const char *instance_uuid, struct store_event **ret, size_t *ret_n,
    struct err *e);

/* The oldest id kept (newest + 1 when none is) and the newest id ever
 * given (0: none yet). Returns 0, -EAGAIN, -EIO. */
int store_events_bounds(
    struct store *s, int64_t *ret_oldest, int64_t *ret_newest, struct err *e);

/* Deletes at most max_rows of the oldest events, keeping the newest
 * `keep` ids; *ret_deleted (may be NULL) counts them. Returns 0, -EINVAL,
 * -EAGAIN, -EIO. */
int store_events_prune(struct store *s, int64_t keep, int max_rows,
    int *ret_deleted, struct err *e);

/* fn(arg) is called after each commit that wrote events, by the thread
 * that committed, with the database's write lock of this process held
 * (so calls come in id order): it must be quick and must not use a
 * store. One hook per process; fn NULL removes it. */
void store_event_hook_set(void (*fn)(void *arg), void *arg);

#endif
