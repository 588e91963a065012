/*
 * store: the SQLite file that holds hyperlet's state (instances, their
 * BDMs, images), its migrations and the online data migration that gives
 * version-1 BDM rows a uuid. The only file that includes <sqlite3.h>.
 * A struct store is one connection plus its prepared-statement cache and is
 * used by one thread at a time; concurrency comes from several connections
 * (WAL). Every SQL text is a static literal with ?N parameters, prepared
 * once per connection and cached by its address. Multi-row writes run in
 * BEGIN IMMEDIATE ... COMMIT with the rollback in the single exit path
 * (the tx cleanup). Errors never carry SQLite's own message (it names
 * tables and columns): store_err() maps result codes to errno and text.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdm_json.h"
#include "node.h"
#include "store.h"

#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_UUID_DRAWS 8

struct stmt_slot {
	const char *sql; /* the static literal: its address is the key */
	sqlite3_stmt *stmt;
};

struct store {
	sqlite3 *db;
	struct stmt_slot *cache;
	size_t n_cache;
	size_t cap_cache;
	bool wlock; /* holds store_write_lock (see wlock_take) */
	enum store_cause cause; /* what the events this connection writes
				   say caused them (store_set_cause) */
	bool ev_pending; /* the open transaction wrote an event row */
	bool ev_armed; /* the event triggers are made (events_arm) */
	bool sync_normal; /* the synchronous setting opened with */
	bool lazy_next; /* store_lazy_next: the next commit is not synced */
	bool lazy_on; /* synchronous=NORMAL for the write under way */
};

/* Called after every commit that wrote event rows (store_event_hook_set):
 * process-wide, as every connection's commits feed the one stream. */
static void (*store_event_hook)(void *arg);
static void *store_event_hook_arg;

/*
 * One writer at a time in this process. SQLite lets one connection write
 * at a time anyway; a connection that finds the write lock taken runs the
 * busy handler, which sleeps 1, 2, 5 ... 100 ms between tries, so under
 * concurrent creates most of a request's time went to sleeping long
 * after the lock was free again (p99 160 ms at 8 clients). Writers of
 * this process queue on this mutex instead and are woken the moment the
 * lock is released; the busy handler is left for other processes (the
 * db subcommands of hyperletd). Taken by tx_begin(immediate) until
 * COMMIT or ROLLBACK and around each write statement run outside a
 * transaction (store_step); never while waiting for anything else.
 */
static pthread_mutex_t store_write_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_once_t store_config_once = PTHREAD_ONCE_INIT;

/* Process-wide SQLite settings, before its first connection: no bulk
 * page-cache allocation per connection (SQLite's default allocates 20
 * pages up front in each one, ~70 KiB of every thread's connection
 * before it has read a page; the cache still grows to cache_size on
 * demand). Refused (SQLITE_MISUSE, ignored) if SQLite was already
 * initialised by someone else in the process. */
static void
store_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
}

/* A BDM that was read without a uuid: where it is and which row it is. */
struct missing_uuid {
	struct instance *inst;
	size_t index;
	int64_t row_id;
	int64_t instance_id;
};

struct missing_list {
	struct missing_uuid *v;
	size_t n;
	size_t cap;
};

static int store_err(struct store *s, int rc, struct err *e, const char *fmt,
    ...) _printf_(4, 5);
static int store_prepare(
    struct store *s, const char *sql, sqlite3_stmt **ret, struct err *e);
static int store_exec(struct store *s, const char *sql, struct err *e);
static int store_step(struct store *s, sqlite3_stmt *q);
static int store_user_version(struct store *s, int *ret, struct err *e);
static int tx_begin(struct store *s, bool immediate, struct err *e);
static int tx_commit(struct store *s, struct err *e);
static void events_committed(struct store *s);
static int events_arm(struct store *s, struct err *e);
static int bdm_volume_of(struct store *s, int64_t instance_id,
    const char *bdm_uuid, char ret_volume[], size_t size, char ret_state[16],
    struct err *e);
static void tx_rollbackp(struct store **p);
static void stmt_resetp(sqlite3_stmt **p);
static int check_uuid(const char *what, const char *u, struct err *e);
static int bdm_create_uuid(struct store *s, int64_t row_id, int64_t instance_id,
    char out[UUID_STR_LEN], struct err *e);
static int fill_missing(struct store *s, struct missing_list *m, struct err *e);
static int has_guest(struct store *s, struct err *e);
static int guest_insert_rows(
    struct store *s, int64_t id, const struct guest_data *g, struct err *e);
static int guest_load_all(struct store *s, struct instance **v,
    const int64_t *ids, size_t n, struct err *e);

/* --- errors ---------------------------------------------------------- */

/*
 * Maps a SQLite result code to a negative errno and records a message
 * "<context>: <what happened>" that names no table or column. Returns the
 * errno.
 */
static int
store_err(struct store *s, int rc, struct err *e, const char *fmt, ...)
{
	char ctx[160];
	va_list ap;
	int code;
	const char *what;

	(void)s;
	va_start(ap, fmt);
	(void)vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);

	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		switch (rc) {
		case SQLITE_CONSTRAINT_CHECK:
		case SQLITE_CONSTRAINT_NOTNULL:
			code = -EINVAL;
			what = "a value is not valid for the database";
			break;
		case SQLITE_CONSTRAINT_FOREIGNKEY:
			code = -ENOENT;
			what = "it refers to a record that does not exist";
			break;
		default:
			code = -EEXIST;
			what = "conflict with an existing record";
			break;
		}
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		code = -EAGAIN;
		what = "the database is busy, try again";
		break;
	case SQLITE_NOMEM:
		code = -ENOMEM;
		what = "out of memory";
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		code = -EIO;
		what = "the database file is corrupt";
		break;
	case SQLITE_FULL:
		code = -EIO;
		what = "the disk holding the database is full";
		break;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		code = -EIO;
		what = "the database file cannot be written";
		break;
	case SQLITE_IOERR:
		code = -EIO;
		what = "I/O error on the database file";
		break;
	default:
		code = -EIO;
		what = "database error";
		break;
	}
	return err_set(e, code, "%s: %s", ctx, what);
}

/* --- statements and transactions -------------------------------------- */

/*
 * Returns in *ret the connection's prepared statement for sql (a static
 * literal: cached by address, prepared on first use). The statement is
 * borrowed; callers hold it in a _cleanup_(stmt_resetp) variable so it is
 * reset and unbound however they leave.
 */
static int
store_prepare(
    struct store *s, const char *sql, sqlite3_stmt **ret, struct err *e)
{
	sqlite3_stmt *q = NULL;
	size_t i;
	int rc;

	for (i = 0; i < s->n_cache; i++)
		if (s->cache[i].sql == sql) {
			*ret = s->cache[i].stmt;
			return 0;
		}
	if (s->n_cache == s->cap_cache) {
		size_t cap = s->cap_cache ? s->cap_cache * 2 : 32;
		struct stmt_slot *v = realloc(s->cache, cap * sizeof(*v));

		if (v == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		s->cache = v;
		s->cap_cache = cap;
	}
	rc = sqlite3_prepare_v3(
	    s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q, NULL);
	if (rc != SQLITE_OK)
		return store_err(s, rc, e, "preparing a database query");
	s->cache[s->n_cache++] = (struct stmt_slot){sql, q};
	*ret = q;
	return 0;
}

static void
stmt_resetp(sqlite3_stmt **p)
{
	if (*p == NULL)
		return;
	(void)sqlite3_reset(*p);
	(void)sqlite3_clear_bindings(*p);
}

/* Runs one parameterless cached statement to completion. */
static int
store_exec(struct store *s, const char *sql, struct err *e)
{
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	while ((rc = store_step(s, q)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		return store_err(s, rc, e, "database statement failed");
	return 0;
}

static void
wlock_take(struct store *s)
{
	if (s->wlock)
		return;
	(void)pthread_mutex_lock(&store_write_lock);
	s->wlock = true;
}

static void
wlock_drop(struct store *s)
{
	if (!s->wlock)
		return;
	s->wlock = false;
	(void)pthread_mutex_unlock(&store_write_lock);
}

/* Before a write (its transaction, or a write statement of its own)
 * under the write lock: with store_lazy_next set, synchronous=NORMAL
 * until lazy_end (SQLite refuses to change it inside a transaction). */
static void
lazy_begin(struct store *s)
{
	static const char sql[] = "PRAGMA synchronous = NORMAL";

	if (!s->lazy_next || s->sync_normal || !s->wlock ||
	    !sqlite3_get_autocommit(s->db))
		return;
	s->lazy_next = false;
	if (store_exec(s, sql, NULL) == 0)
		s->lazy_on = true;
}

/* After that write's commit or roll-back: synchronous=FULL again. */
static void
lazy_end(struct store *s)
{
	static const char sql[] = "PRAGMA synchronous = FULL";

	if (!s->lazy_on || !sqlite3_get_autocommit(s->db))
		return;
	s->lazy_on = false;
	(void)store_exec(s, sql, NULL);
}

/* sqlite3_step, with the process's write lock held around a write that
 * runs outside a transaction (its implicit transaction commits before
 * sqlite3_step returns SQLITE_DONE). Reads, and statements inside a
 * transaction, step as they are. */
static int
store_step(struct store *s, sqlite3_stmt *q)
{
	bool take = !s->wlock && !sqlite3_stmt_readonly(q) &&
	    sqlite3_get_autocommit(s->db);
	int rc;

	if (take) {
		wlock_take(s);
		lazy_begin(s);
	}
	rc = sqlite3_step(q);
	if (take) {
		/* a statement still returning rows (RETURNING) commits at
		 * its reset, then synced: the safe side */
		lazy_end(s);
		/* committed (or failed) before the lock is dropped, so the
		 * hook runs in commit order */
		if (rc == SQLITE_DONE)
			events_committed(s);
		s->ev_pending = false;
		wlock_drop(s);
	}
	return rc;
}

/* BEGIN IMMEDIATE takes the process's write lock first (released by
 * tx_commit or tx_rollbackp); a deferred BEGIN (a consistent read) does
 * not. */
static int
tx_begin(struct store *s, bool immediate, struct err *e)
{
	static const char sql_immediate[] = "BEGIN IMMEDIATE";
	static const char sql_deferred[] = "BEGIN";
	int rc;

	if (!immediate)
		return store_exec(s, sql_deferred, e);
	wlock_take(s);
	lazy_begin(s);
	if ((rc = store_exec(s, sql_immediate, e)) < 0) {
		lazy_end(s);
		wlock_drop(s);
	}
	return rc;
}

static int
tx_commit(struct store *s, struct err *e)
{
	static const char sql[] = "COMMIT";
	int rc = store_exec(s, sql, e);

	lazy_end(s);

	/* a failed COMMIT may leave the transaction open: tx_rollbackp
	 * ends it and drops the lock */
	if (sqlite3_get_autocommit(s->db)) {
		if (rc == 0)
			events_committed(s);
		s->ev_pending = false;
		wlock_drop(s);
	}
	return rc;
}

/* Cleanup for `_cleanup_(tx_rollbackp) struct store *tx = s` after a
 * successful tx_begin; set tx = NULL once committed. */
static void
tx_rollbackp(struct store **p)
{
	static const char sql[] = "ROLLBACK";

	if (*p == NULL)
		return;
	if (!sqlite3_get_autocommit((*p)->db))
		(void)store_exec(*p, sql, NULL);
	(*p)->ev_pending = false;
	lazy_end(*p);
	wlock_drop(*p);
}

static int
check_uuid(const char *what, const char *u, struct err *e)
{
	if (!util_uuid_is_canonical(u))
		return err_set(e, -EINVAL,
		    "%s '%.40s' is not a lower-case canonical UUID", what,
		    u ? u : "");
	return 0;
}

/* The next commit unsynced. See store.h. */
void
store_lazy_next(struct store *s, bool on)
{
	s->lazy_next = on && !s->sync_normal;
}

/* Copies a text column (NULL stays NULL). */
static int
col_strdup(sqlite3_stmt *q, int i, char **out, struct err *e)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	if (t == NULL) {
		if (sqlite3_column_type(q, i) != SQLITE_NULL)
			return err_set(e, -ENOMEM, "out of memory");
		*out = NULL;
		return 0;
	}
	*out = strdup((const char *)t);
	if (*out == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

static void
copy_col(char *dst, size_t size, sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	(void)snprintf(dst, size, "%s", t ? (const char *)t : "");
}

static void
bind_text_or_null(sqlite3_stmt *q, int i, const char *t)
{
	if (t)
		sqlite3_bind_text(q, i, t, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
}

static void
bind_int_or_null(sqlite3_stmt *q, int i, int64_t v, int64_t none)
{
	if (v == none)
		sqlite3_bind_null(q, i);
	else
		sqlite3_bind_int64(q, i, v);
}

/* --- migrations ------------------------------------------------------- */

/*
 * The schema's history. migrations[i] takes user_version i to i + 1 and
 * ends by setting user_version itself (PRAGMA takes no parameters, and SQL
 * is never built at run time). Never edit a released entry: add one.
 */
static const char migrate_v1[] =
    "CREATE TABLE instances ("
    " id INTEGER PRIMARY KEY,"
    " uuid TEXT NOT NULL UNIQUE"
    "  CHECK (length(uuid) = 36 AND uuid NOT GLOB '*[^0-9a-f-]*'),"
    " name TEXT NOT NULL,"
    " vcpus INTEGER NOT NULL,"
    " memory_mb INTEGER NOT NULL,"
    " root_gb INTEGER NOT NULL,"
    " ephemeral_gb INTEGER NOT NULL,"
    " swap_mb INTEGER NOT NULL,"
    " image_ref TEXT,"
    " hw_disk_bus TEXT,"
    " hw_cdrom_bus TEXT,"
    " hw_scsi_model TEXT,"
    " hw_machine_type TEXT,"
    " metadata TEXT NOT NULL DEFAULT '{}',"
    " config_drive INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('building', 'running', 'stopped', 'error', 'deleting')),"
    " request_digest TEXT,"
    " generation INTEGER NOT NULL DEFAULT 1,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE INDEX instances_image_ref ON instances (image_ref);"
    "CREATE TABLE block_device_mappings ("
    " id INTEGER PRIMARY KEY,"
    " instance_id INTEGER NOT NULL"
    "  REFERENCES instances (id) ON DELETE CASCADE,"
    " source_type TEXT NOT NULL,"
    " destination_type TEXT NOT NULL,"
    " guest_format TEXT,"
    " boot_index INTEGER,"
    " device_type TEXT,"
    " disk_bus TEXT,"
    " device_name TEXT,"
    " volume_size INTEGER,"
    " image_id TEXT,"
    " volume_id TEXT,"
    " snapshot_id TEXT,"
    " tag TEXT,"
    " delete_on_termination INTEGER NOT NULL DEFAULT 0,"
    " connection_info TEXT);"
    "CREATE INDEX block_device_mappings_instance"
    " ON block_device_mappings (instance_id, id);"
    "CREATE INDEX block_device_mappings_image"
    " ON block_device_mappings (image_id);"
    "CREATE TABLE images ("
    " id TEXT PRIMARY KEY"
    "  CHECK (length(id) = 36 AND id NOT GLOB '*[^0-9a-f-]*'),"
    " format TEXT NOT NULL,"
    " virtual_size INTEGER NOT NULL,"
    " file_size INTEGER NOT NULL,"
    " checksum TEXT,"
    " properties TEXT NOT NULL DEFAULT '{}',"
    " created_at INTEGER NOT NULL);"
    "PRAGMA user_version = 1;";

static const char migrate_v2[] =
    "ALTER TABLE block_device_mappings ADD COLUMN uuid TEXT"
    " CHECK (uuid IS NULL OR"
    "  (length(uuid) = 36 AND uuid NOT GLOB '*[^0-9a-f-]*'));"
    "CREATE UNIQUE INDEX block_device_mappings_uuid"
    " ON block_device_mappings (uuid);"
    "PRAGMA user_version = 2;";

/* SQLite cannot add NOT NULL to a column: rebuild the table (the
 * documented 12-step way; it is a child table only, so foreign keys stay
 * on and row ids are kept). */
static const char migrate_v3[] =
    "CREATE TABLE block_device_mappings_v3 ("
    " id INTEGER PRIMARY KEY,"
    " uuid TEXT NOT NULL"
    "  CHECK (length(uuid) = 36 AND uuid NOT GLOB '*[^0-9a-f-]*'),"
    " instance_id INTEGER NOT NULL"
    "  REFERENCES instances (id) ON DELETE CASCADE,"
    " source_type TEXT NOT NULL,"
    " destination_type TEXT NOT NULL,"
    " guest_format TEXT,"
    " boot_index INTEGER,"
    " device_type TEXT,"
    " disk_bus TEXT,"
    " device_name TEXT,"
    " volume_size INTEGER,"
    " image_id TEXT,"
    " volume_id TEXT,"
    " snapshot_id TEXT,"
    " tag TEXT,"
    " delete_on_termination INTEGER NOT NULL DEFAULT 0,"
    " connection_info TEXT);"
    "INSERT INTO block_device_mappings_v3 (id, uuid, instance_id,"
    " source_type, destination_type, guest_format, boot_index, device_type,"
    " disk_bus, device_name, volume_size, image_id, volume_id, snapshot_id,"
    " tag, delete_on_termination, connection_info)"
    " SELECT id, uuid, instance_id, source_type, destination_type,"
    " guest_format, boot_index, device_type, disk_bus, device_name,"
    " volume_size, image_id, volume_id, snapshot_id, tag,"
    " delete_on_termination, connection_info FROM block_device_mappings;"
    "DROP TABLE block_device_mappings;"
    "ALTER TABLE block_device_mappings_v3 RENAME TO block_device_mappings;"
    "CREATE INDEX block_device_mappings_instance"
    " ON block_device_mappings (instance_id, id);"
    "CREATE INDEX block_device_mappings_image"
    " ON block_device_mappings (image_id);"
    "CREATE UNIQUE INDEX block_device_mappings_uuid"
    " ON block_device_mappings (uuid);"
    "PRAGMA user_version = 3;";

/* Rolled-back builds ("tombstones"): the uuid of every build that
 * compute rolled back, so that a domain or disks libvirtd finishes making
 * after the rollback (a define the killed daemon sent just before the
 * kill) are removed later. first_checked_at is set by the first sweep
 * that looked; expiry counts from it. */
static const char migrate_v4[] =
    "CREATE TABLE rolled_back_builds ("
    " uuid TEXT PRIMARY KEY"
    "  CHECK (length(uuid) = 36 AND uuid NOT GLOB '*[^0-9a-f-]*'),"
    " rolled_back_at INTEGER NOT NULL,"
    " first_checked_at INTEGER) WITHOUT ROWID;"
    "PRAGMA user_version = 4;";

/* The desired state apart from the observed one, and the reason an
 * instance is in error. Existing rows want what they show: stopped rows
 * stay stopped, every other row (running, error, and building or deleting
 * ones reconciliation settles) is meant to run. The CHECK is not run
 * against the rows ADD COLUMN fills; the UPDATE below is checked. */
static const char migrate_v5[] =
    "ALTER TABLE instances ADD COLUMN desired_state TEXT NOT NULL"
    " DEFAULT 'running' CHECK (desired_state IN ('running', 'stopped'));"
    "UPDATE instances SET desired_state = 'stopped' WHERE state = 'stopped';"
    "ALTER TABLE instances ADD COLUMN fault TEXT;"
    "PRAGMA user_version = 5;";

/* Where a volume attach or detach stands: NULL (settled) for every
 * existing row, as before 6 a row was written only around a libvirt call
 * that either confirmed or left it for reconciliation to compare. The
 * partial index holds only unsettled rows: start-up asks per instance
 * whether it has one, and on a settled node every answer is an empty
 * probe. */
static const char migrate_v6[] =
    "ALTER TABLE block_device_mappings ADD COLUMN attach_state TEXT"
    " CHECK (attach_state IS NULL OR"
    "  attach_state IN ('attaching', 'detaching'));"
    "CREATE INDEX block_device_mappings_unsettled"
    " ON block_device_mappings (instance_id)"
    " WHERE attach_state IS NOT NULL;"
    "PRAGMA user_version = 6;";

/* The node's identity (issue 13): one row holding the uuid GET /v1/node
 * and a Placement resource provider name the node by, drawn once
 * (store_node_uuid). The version is STORE_NODE_VERSION (store.h), so a
 * renumbering at a merge is that one #define. */
#define STR_(x) #x
#define STR(x) STR_(x)
static const char migrate_node[] =
    "CREATE TABLE node ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " uuid TEXT NOT NULL"
    "  CHECK (length(uuid) = 36 AND uuid NOT GLOB '*[^0-9a-f-]*'),"
    " created_at INTEGER NOT NULL);"
    "PRAGMA user_version = " STR(STORE_NODE_VERSION) ";";

/* The event outbox (issue 12, design.md "Events"): one row per change,
 * written by the statement that makes it. AUTOINCREMENT so that an id is
 * never used twice, even after the oldest rows are pruned. Instance rows
 * get their events from triggers (event_triggers), so no write path can
 * forget one. Volume and interface events are written by
 * store_event_append_tx. Behind 3 as well: on 2 there are no events. */
static const char migrate_events[] =
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " type TEXT NOT NULL,"
    " instance_uuid TEXT NOT NULL,"
    " state TEXT,"
    " generation INTEGER,"
    " cause TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " volume_id TEXT,"
    " port_id TEXT);"
    "CREATE INDEX events_instance ON events (instance_uuid, id);"
    "PRAGMA user_version = " STR(STORE_EVENTS_VERSION) ";";

/* The triggers that write instance events, per connection (TEMP), made
 * by store_open once the schema has the events table: they call
 * hyperlet_event_cause(), which every hyperlet connection registers and
 * which also tells the connection that its transaction wrote an event
 * (the post-commit hook). As TEMP triggers they are not in the file, so
 * an operator's sqlite3 shell still works on it (and its writes make no
 * events). */
static const char event_triggers[] =
    "CREATE TEMP TRIGGER events_instance_created"
    " AFTER INSERT ON main.instances"
    " BEGIN INSERT INTO events (type, instance_uuid, state, generation,"
    "  cause, at) VALUES ('instance.created', NEW.uuid, NEW.state,"
    "  NEW.generation, hyperlet_event_cause(), NEW.updated_at); END;"
    "CREATE TEMP TRIGGER events_instance_updated"
    " AFTER UPDATE ON main.instances"
    " WHEN OLD.state IS NOT NEW.state"
    "  OR OLD.generation IS NOT NEW.generation"
    " BEGIN INSERT INTO events (type, instance_uuid, state, generation,"
    "  cause, at) VALUES ('instance.updated', NEW.uuid, NEW.state,"
    "  NEW.generation, hyperlet_event_cause(), NEW.updated_at); END;"
    "CREATE TEMP TRIGGER events_instance_deleted"
    " AFTER DELETE ON main.instances"
    " BEGIN INSERT INTO events (type, instance_uuid, state, generation,"
    "  cause, at) VALUES ('instance.deleted', OLD.uuid, OLD.state,"
    "  OLD.generation, hyperlet_event_cause(), hyperlet_now_ms());"
    " END;";

/* Guest data and NICs (issue 11). instance_guest: one row per instance
 * created from 9 on (older instances have none: no hostname, no keys);
 * keys a JSON array of {name, type, data} (SQLite's json functions write
 * and read it). nics: the instance's NICs in request order (position);
 * port_id and mac UNIQUE on the node, so two creates racing for one
 * cannot both commit; ips a JSON array of {address, gateway}, dns one of
 * strings, both canonical text from nic_json; attach_state as a BDM's
 * (enum nic_attach_state: NULL settled, as every NIC a create writes).
 * Both cascade with the instance. */
static const char migrate_guest[] =
    "CREATE TABLE instance_guest ("
    " instance_id INTEGER PRIMARY KEY"
    "  REFERENCES instances (id) ON DELETE CASCADE,"
    " hostname TEXT,"
    " user_data TEXT,"
    " keys TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(keys)));"
    "CREATE TABLE nics ("
    " id INTEGER PRIMARY KEY,"
    " instance_id INTEGER NOT NULL"
    "  REFERENCES instances (id) ON DELETE CASCADE,"
    " position INTEGER NOT NULL,"
    " port_id TEXT NOT NULL UNIQUE"
    "  CHECK (length(port_id) = 36 AND port_id NOT GLOB '*[^0-9a-f-]*'),"
    " mac TEXT NOT NULL UNIQUE"
    "  CHECK (length(mac) = 17 AND mac NOT GLOB '*[^0-9a-f:]*'),"
    " bridge TEXT,"
    " network TEXT,"
    " model TEXT NOT NULL"
    "  CHECK (model IN ('virtio', 'e1000', 'e1000e', 'rtl8139')),"
    " mtu INTEGER CHECK (mtu IS NULL OR mtu BETWEEN 68 AND 65535),"
    " tag TEXT,"
    " ips TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(ips)),"
    " dns TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(dns)),"
    " attach_state TEXT CHECK (attach_state IS NULL OR"
    "  attach_state IN ('attaching', 'detaching')),"
    " CHECK ((bridge IS NULL) <> (network IS NULL)),"
    " UNIQUE (instance_id, position));"
    "PRAGMA user_version = " STR(STORE_GUEST_VERSION) ";";

/*
 * States paused and crashed (libvirt's lifecycle events). The state CHECK
 * of version 1 is widened where it is written, in the table's stored
 * CREATE statement: SQLite documents editing sqlite_schema for changes
 * that leave the stored rows valid as they are (a wider CHECK is one).
 * The usual rebuild would need foreign keys off, which cannot change
 * inside the migration's transaction (a DROP of instances there would
 * cascade to every BDM), and would have to name every column, including
 * those other migrations add. The scratch table proves the edit took
 * (its CHECK fails the migration otherwise) and, being DDL, bumps the
 * schema cookie so that other connections re-read the schema.
 */
static const char migrate_states[] =
    "PRAGMA writable_schema = ON;"
    "UPDATE sqlite_schema SET sql = replace(sql,"
    " '''error'', ''deleting'')',"
    " '''error'', ''deleting'', ''paused'', ''crashed'')')"
    " WHERE type = 'table' AND name = 'instances';"
    "PRAGMA writable_schema = RESET;"
    "CREATE TABLE migrate_states_check (ok INTEGER NOT NULL CHECK (ok = 1));"
    "INSERT INTO migrate_states_check SELECT count(*) FROM sqlite_schema"
    " WHERE type = 'table' AND name = 'instances'"
    " AND sql LIKE '%''paused'', ''crashed'')%';"
    "DROP TABLE migrate_states_check;"
    "PRAGMA user_version = " STR(STORE_STATES_VERSION) ";";

/*
 * What the node's instances take, kept in one row (STORE_USAGE_VERSION):
 * a create's capacity claim read a sum over every instance row (with a
 * BDM probe per row), a cost that grew with the node. One instance row
 * counts as node_flavor_usage counts one instance: vcpus, memory_mb, and
 * ephemeral_gb + swap rounded up to GiB + root_gb unless its BDM of boot
 * index 0 is a volume. The triggers are in the file (not TEMP), so every
 * writer keeps the row, an operator's sqlite3 shell included:
 *  - an instance row inserted adds its share; a create inserts the row
 *    before its BDMs, so the share counts the root until a boot volume
 *    BDM arrives, which takes it off again;
 *  - an instance row deleted takes its share off BEFORE the delete, while
 *    its BDMs still say whether it boots from a volume (their cascade
 *    then finds no instance row and changes nothing);
 *  - a change of an instance's sizes, or of a BDM's boot index, type or
 *    instance, moves the difference (hyperlet makes none of these; they
 *    are covered so that the row cannot drift).
 * Which BDM decides is "some BDM of boot index 0 that is a volume": the
 * root's share comes off when the first such BDM appears and back when
 * the last one goes. IS, not =: a NULL boot index must make the test
 * false, not NULL (NOT NULL is NULL, and a WHEN of NULL does nothing).
 * The share's expression is spelt out in each trigger (clang-format
 * cannot lay out string macros with arguments).
 */
#define USAGE_SUM                                                            \
	"SELECT count(*), coalesce(sum(vcpus), 0),"                          \
	" coalesce(sum(memory_mb), 0),"                                      \
	" coalesce(sum(i.ephemeral_gb + (i.swap_mb + 1023) / 1024 +"         \
	"  CASE WHEN EXISTS (SELECT 1 FROM block_device_mappings b"          \
	"   WHERE b.instance_id = i.id AND b.boot_index IS 0"                \
	"   AND b.destination_type IS 'volume') THEN 0 ELSE i.root_gb END)," \
	"  0) FROM instances i"

static const char migrate_usage[] =
    "CREATE TABLE node_usage ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " instances INTEGER NOT NULL, vcpus INTEGER NOT NULL,"
    " memory_mb INTEGER NOT NULL, disk_gb INTEGER NOT NULL);"
    "INSERT INTO node_usage (id, instances, vcpus, memory_mb, disk_gb)"
    " SELECT 1, * FROM (" USAGE_SUM ");"
    "CREATE TRIGGER node_usage_instance_insert AFTER INSERT ON instances"
    " BEGIN UPDATE node_usage SET instances = instances + 1,"
    "  vcpus = vcpus + NEW.vcpus, memory_mb = memory_mb + NEW.memory_mb,"
    "  disk_gb = disk_gb + NEW.ephemeral_gb + (NEW.swap_mb + 1023) / 1024 +"
    "   CASE WHEN EXISTS (SELECT 1 FROM block_device_mappings b"
    "    WHERE b.instance_id = NEW.id AND b.boot_index IS 0"
    "    AND b.destination_type IS 'volume') THEN 0 ELSE NEW.root_gb END"
    "  WHERE id = 1; END;"
    "CREATE TRIGGER node_usage_instance_delete BEFORE DELETE ON instances"
    " BEGIN UPDATE node_usage SET instances = instances - 1,"
    "  vcpus = vcpus - OLD.vcpus, memory_mb = memory_mb - OLD.memory_mb,"
    "  disk_gb = disk_gb - OLD.ephemeral_gb - (OLD.swap_mb + 1023) / 1024 -"
    "   CASE WHEN EXISTS (SELECT 1 FROM block_device_mappings b"
    "    WHERE b.instance_id = OLD.id AND b.boot_index IS 0"
    "    AND b.destination_type IS 'volume') THEN 0 ELSE OLD.root_gb END"
    "  WHERE id = 1; END;"
    "CREATE TRIGGER node_usage_instance_resize AFTER UPDATE OF vcpus,"
    " memory_mb, root_gb, ephemeral_gb, swap_mb ON instances"
    " BEGIN UPDATE node_usage SET vcpus = vcpus - OLD.vcpus + NEW.vcpus,"
    "  memory_mb = memory_mb - OLD.memory_mb + NEW.memory_mb,"
    "  disk_gb = disk_gb - OLD.ephemeral_gb + NEW.ephemeral_gb"
    "   - (OLD.swap_mb + 1023) / 1024 + (NEW.swap_mb + 1023) / 1024 +"
    "   CASE WHEN EXISTS (SELECT 1 FROM block_device_mappings b"
    "    WHERE b.instance_id = NEW.id AND b.boot_index IS 0"
    "    AND b.destination_type IS 'volume') THEN 0"
    "   ELSE NEW.root_gb - OLD.root_gb END"
    "  WHERE id = 1; END;"
    "CREATE TRIGGER node_usage_bdm_insert AFTER INSERT ON"
    " block_device_mappings"
    " WHEN NEW.boot_index IS 0 AND NEW.destination_type IS 'volume'"
    " BEGIN UPDATE node_usage SET disk_gb = disk_gb -"
    "  coalesce((SELECT root_gb FROM instances WHERE id = NEW.instance_id),"
    "   0)"
    "  WHERE id = 1 AND (SELECT count(*) FROM block_device_mappings b"
    "   WHERE b.instance_id = NEW.instance_id AND b.boot_index IS 0"
    "   AND b.destination_type IS 'volume') = 1; END;"
    "CREATE TRIGGER node_usage_bdm_delete AFTER DELETE ON"
    " block_device_mappings"
    " WHEN OLD.boot_index IS 0 AND OLD.destination_type IS 'volume'"
    " BEGIN UPDATE node_usage SET disk_gb = disk_gb +"
    "  coalesce((SELECT root_gb FROM instances WHERE id = OLD.instance_id),"
    "   0)"
    "  WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM block_device_mappings b"
    "   WHERE b.instance_id = OLD.instance_id AND b.boot_index IS 0"
    "   AND b.destination_type IS 'volume'); END;"
    /* a delete of OLD then an insert of NEW; a row that stays a boot
     * volume of the same instance changes nothing */
    "CREATE TRIGGER node_usage_bdm_update AFTER UPDATE OF boot_index,"
    " destination_type, instance_id ON block_device_mappings"
    " WHEN NOT (OLD.boot_index IS 0 AND OLD.destination_type IS 'volume'"
    "  AND NEW.boot_index IS 0 AND NEW.destination_type IS 'volume'"
    "  AND OLD.instance_id = NEW.instance_id)"
    " BEGIN UPDATE node_usage SET disk_gb = disk_gb +"
    "  coalesce((SELECT root_gb FROM instances WHERE id = OLD.instance_id),"
    "   0)"
    "  WHERE id = 1 AND OLD.boot_index IS 0"
    "  AND OLD.destination_type IS 'volume'"
    "  AND NOT EXISTS (SELECT 1 FROM block_device_mappings b"
    "   WHERE b.instance_id = OLD.instance_id AND b.boot_index IS 0"
    "   AND b.destination_type IS 'volume');"
    "  UPDATE node_usage SET disk_gb = disk_gb -"
    "  coalesce((SELECT root_gb FROM instances WHERE id = NEW.instance_id),"
    "   0)"
    "  WHERE id = 1 AND NEW.boot_index IS 0"
    "  AND NEW.destination_type IS 'volume'"
    "  AND (SELECT count(*) FROM block_device_mappings b"
    "   WHERE b.instance_id = NEW.instance_id AND b.boot_index IS 0"
    "   AND b.destination_type IS 'volume') = 1; END;"
    "PRAGMA user_version = " STR(STORE_USAGE_VERSION) ";";

/* Version 3 waits until the online data migration has given every row a
 * uuid. Returns 1 when ready, 0 when not, or a negative errno. */
static int
ready_v3(struct store *s, struct err *e)
{
	int64_t n;
	int rc;

	if ((rc = store_online_migrate_pending(s, &n, e)) < 0)
		return rc;
	return n == 0;
}

static const struct migration {
	const char *sql;
	int (*ready)(struct store *s, struct err *e); /* NULL: always */
} migrations[] = {
    {migrate_v1, NULL}, {migrate_v2, NULL}, {migrate_v3, ready_v3},
    {migrate_v4, NULL}, {migrate_v5, NULL}, {migrate_v6, NULL},
    {migrate_node, NULL}, /* STORE_NODE_VERSION */
    {migrate_events, NULL}, /* STORE_EVENTS_VERSION */
    {migrate_guest, NULL}, /* STORE_GUEST_VERSION */
    {migrate_states, NULL}, /* STORE_STATES_VERSION */
    {migrate_usage, NULL}, /* STORE_USAGE_VERSION */
};

_Static_assert(ELEMENTSOF(migrations) == STORE_SCHEMA_VERSION,
    "one migration per schema version");

static int
store_user_version(struct store *s, int *ret, struct err *e)
{
	static const char sql[] = "PRAGMA user_version";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	if ((rc = store_step(s, q)) != SQLITE_ROW)
		return store_err(s, rc, e, "reading the schema version");
	*ret = sqlite3_column_int(q, 0);
	return 0;
}

static int
refuse_newer(int v, struct err *e)
{
	return err_set(e, -EIO,
	    "the database has schema version %d, newer than this hyperlet "
	    "understands (%d): refusing to use it; upgrade hyperlet or "
	    "restore a backup",
	    v, STORE_SCHEMA_VERSION);
}

/* Applies migration v -> v + 1 unless another process got there first.
 * Returns 1 if a step was made, 0 if nothing is left or the next step is
 * not ready yet, or a negative errno; *ret_v is the version reached. */
static int
migrate_step(struct store *s, int *ret_v, struct err *e)
{
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	char *errmsg = NULL;
	int rc, v;

	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	/* Read inside the write transaction: two processes opening at once
	 * apply each step once. */
	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	*ret_v = v;
	if (v > STORE_SCHEMA_VERSION || v < 0)
		return refuse_newer(v, e);
	if (v == STORE_SCHEMA_VERSION)
		return 0;
	if (migrations[v].ready) {
		if ((rc = migrations[v].ready(s, e)) < 0)
			return rc;
		if (rc == 0)
			return 0;
	}
	/* Migrations are static multi-statement literals: exec, not
	 * prepare. */
	rc = sqlite3_exec(s->db, migrations[v].sql, NULL, NULL, &errmsg);
	sqlite3_free(errmsg);
	if (rc != SQLITE_OK)
		return store_err(
		    s, rc, e, "migrating the database to version %d", v + 1);
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	*ret_v = v + 1;
	return 1;
}

/* Applies pending migrations. Returns the version reached, or a negative
 * errno (-EIO for a newer database). */
int
store_migrate(struct store *s, struct err *e)
{
	int rc, v = 0;

	do {
		if ((rc = migrate_step(s, &v, e)) < 0)
			return rc;
	} while (rc > 0);
	if ((rc = events_arm(s, e)) < 0)
		return rc;
	return v;
}

/* --- open / close ----------------------------------------------------- */

static const char *const cause_names[] = {
    [STORE_CAUSE_API] = "api",
    [STORE_CAUSE_LIBVIRT] = "libvirt",
    [STORE_CAUSE_RECONCILE] = "reconcile",
};

/* hyperlet_now_ms(): util_now_ms(), for the time of a delete event. */
static void
now_ms_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	sqlite3_result_int64(ctx, util_now_ms());
}

/* Makes this connection's event triggers once the schema has the events
 * table (nothing before). Returns 0 or a negative errno. */
static int
events_arm(struct store *s, struct err *e)
{
	char *errmsg = NULL;
	int rc, v;

	if (s->ev_armed)
		return 0;
	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	if (v < STORE_EVENTS_VERSION)
		return 0;
	rc = sqlite3_exec(s->db, event_triggers, NULL, NULL, &errmsg);
	sqlite3_free(errmsg);
	if (rc != SQLITE_OK)
		return store_err(s, rc, e, "preparing the event triggers");
	s->ev_armed = true;
	return 0;
}

/* hyperlet_event_cause(): the connection's cause, for the event triggers
 * (and a note that this transaction wrote an event). */
static void
event_cause_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct store *s = sqlite3_user_data(ctx);

	(void)argc;
	(void)argv;
	s->ev_pending = true;
	sqlite3_result_text(ctx, cause_names[s->cause], -1, SQLITE_STATIC);
}

/*
 * Switches the file to WAL. The switch needs an exclusive lock and SQLite
 * does not run the busy handler for it, so processes opening a new
 * database at once retry here, up to the busy timeout.
 */
static int
set_wal(struct store *s, int timeout_ms, struct err *e)
{
	static const char sql[] = "PRAGMA journal_mode = WAL";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc, waited = 0;
	const char *mode;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	while ((rc = sqlite3_step(q)) == SQLITE_BUSY && waited < timeout_ms) {
		sqlite3_reset(q);
		(void)sqlite3_sleep(10);
		waited += 10;
	}
	if (rc != SQLITE_ROW)
		return store_err(
		    s, rc, e, "switching the database to WAL mode");
	mode = (const char *)sqlite3_column_text(q, 0);
	/* ":memory:" databases have no WAL and need none. */
	if (mode == NULL ||
	    (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0))
		return err_set(e, -EIO,
		    "the database cannot use WAL mode (journal mode '%.20s')",
		    mode ? mode : "");
	return 0;
}

/* Opens path (creating it unless o->no_migrate), sets foreign_keys, WAL,
 * synchronous, busy_timeout, no mmap and a small page cache, and migrates
 * unless o->no_migrate. *ret owned (store_close). Returns 0, -EIO (newer
 * schema, unusable file), -ENOENT (no_migrate, no file), -EAGAIN,
 * -ENOMEM. */
int
store_open(const char *path, const struct store_opts *o, struct store **ret,
    struct err *e)
{
	static const char sql_fk[] = "PRAGMA foreign_keys = ON";
	static const char sql_full[] = "PRAGMA synchronous = FULL";
	static const char sql_normal[] = "PRAGMA synchronous = NORMAL";
	static const char sql_mmap[] = "PRAGMA mmap_size = 0";
	static const char sql_cache[] = "PRAGMA cache_size = -512";
	struct store_opts def = {0};
	struct store *s;
	int rc, v;

	if (o == NULL)
		o = &def;
	(void)pthread_once(&store_config_once, store_config);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	/* Only a migrating open creates the file: any other connection
	 * finding it gone (moved away, a wrong path) would make an empty
	 * database that later connections took for the real one. */
	rc = sqlite3_open_v2(path, &s->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
		(o->no_migrate ? 0 : SQLITE_OPEN_CREATE),
	    NULL);
	if (rc == SQLITE_CANTOPEN && o->no_migrate && access(path, F_OK) < 0) {
		rc = err_set(e, -ENOENT, "no database file '%.100s'", path);
		(void)store_close(s);
		return rc;
	}
	if (rc != SQLITE_OK) {
		rc = store_err(s, rc, e, "opening the database '%.100s'", path);
		(void)store_close(s);
		return rc;
	}
	(void)sqlite3_extended_result_codes(s->db, 1);
	(void)sqlite3_busy_timeout(s->db,
	    o->busy_timeout_ms > 0 ? o->busy_timeout_ms
				   : STORE_BUSY_TIMEOUT_MS);
	if ((rc = store_exec(s, sql_fk, e)) < 0)
		goto out;
	if (sqlite3_create_function_v2(s->db, "hyperlet_event_cause", 0,
		SQLITE_UTF8, s, event_cause_fn, NULL, NULL,
		NULL) != SQLITE_OK ||
	    sqlite3_create_function_v2(s->db, "hyperlet_now_ms", 0, SQLITE_UTF8,
		NULL, now_ms_fn, NULL, NULL, NULL) != SQLITE_OK) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	/* Refuse a newer database before anything (journal mode included)
	 * touches it. */
	if ((rc = store_user_version(s, &v, e)) < 0)
		goto out;
	if (v > STORE_SCHEMA_VERSION) {
		rc = refuse_newer(v, e);
		goto out;
	}
	if ((rc = set_wal(s,
		 o->busy_timeout_ms > 0 ? o->busy_timeout_ms
					: STORE_BUSY_TIMEOUT_MS,
		 e)) < 0)
		goto out;
	if ((rc = store_exec(s, o->sync_normal ? sql_normal : sql_full, e)) < 0)
		goto out;
	s->sync_normal = o->sync_normal;
	/* No mmap: each connection (one per request thread) mapped the file
	 * on its own, and every page a list walk touched counted in RSS once
	 * per mapping (10,000 instances are a 14 MB file: up to 14 MB per
	 * thread). pread() into a page cache of at most 512 KiB per
	 * connection instead; listing 10,000 instances costs the same CPU
	 * within noise (37.4 vs 36.6 ms), the kernel's page cache holds the
	 * file once. */
	if ((rc = store_exec(s, sql_mmap, e)) < 0 ||
	    (rc = store_exec(s, sql_cache, e)) < 0)
		goto out;
	if (!o->no_migrate && (rc = store_migrate(s, e)) < 0)
		goto out;
	if ((rc = events_arm(s, e)) < 0)
		goto out;
	*ret = s;
	return 0;
out:
	(void)store_close(s);
	return rc;
}

/* Finalizes the cached statements, closes the connection and frees s.
 * Accepts NULL; returns NULL. */
struct store *
store_close(struct store *s)
{
	size_t i;

	if (s == NULL)
		return NULL;
	for (i = 0; i < s->n_cache; i++)
		(void)sqlite3_finalize(s->cache[i].stmt);
	free(s->cache);
	(void)sqlite3_close(s->db);
	free(s);
	return NULL;
}

/* The database's PRAGMA user_version in *ret. Returns 0, -EAGAIN, -EIO. */
int
store_schema_version(struct store *s, int *ret, struct err *e)
{
	return store_user_version(s, ret, e);
}

/* --- loading instances and BDMs --------------------------------------- */

#define INSTANCE_COLS                                                      \
	"i.id, i.uuid, i.name, i.vcpus, i.memory_mb, i.root_gb,"           \
	" i.ephemeral_gb, i.swap_mb, i.image_ref, i.hw_disk_bus,"          \
	" i.hw_cdrom_bus, i.hw_scsi_model, i.hw_machine_type, i.metadata," \
	" i.config_drive, i.state, i.generation, i.created_at, i.updated_at"

/* Columns 19 and 20: the desired state and the fault of schema 5, or
 * NULLs on a database still at 2 (instance_from_row derives them). */
#define INSTANCE_COLS_V5 INSTANCE_COLS ", i.desired_state, i.fault"
#define INSTANCE_COLS_V2 INSTANCE_COLS ", NULL, NULL"

#define BDM_COLS                                                          \
	"b.id, b.instance_id, b.uuid, b.source_type, b.destination_type," \
	" b.guest_format, b.boot_index, b.device_type, b.disk_bus,"       \
	" b.device_name, b.volume_size, b.image_id, b.volume_id,"         \
	" b.snapshot_id, b.tag, b.delete_on_termination, b.connection_info"
/* column 17: attach_state (schema 6), NULL before */
#define BDM_COLS_V6 BDM_COLS ", b.attach_state"
#define BDM_COLS_V2 BDM_COLS ", NULL"

DEFINE_FREEP(struct instance, instance_free)

/* 1 if the schema has desired_state and fault (version 5), 0 if not yet
 * (the online migration holds the database at 2), or a negative errno. */
static int
has_desired(struct store *s, struct err *e)
{
	int rc, v;

	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	return v >= 5;
}

/* 1 if the schema has block_device_mappings.attach_state (version 6), 0
 * if not yet, or a negative errno. */
static int
has_attach_state(struct store *s, struct err *e)
{
	int rc, v;

	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	return v >= 6;
}

/* The desired state a row without the column (schema 2) stands for: what
 * migration 5 fills in. */
static enum instance_state
desired_of(enum instance_state observed)
{
	return observed == INSTANCE_STOPPED ? INSTANCE_STOPPED
					    : INSTANCE_RUNNING;
}

static int
bad_row(const char *what, const char *v, struct err *e)
{
	return err_set(e, -EIO, "the database holds an unknown %s '%.40s'",
	    what, v ? v : "");
}

/* Reads one INSTANCE_COLS row into a new instance; *ret_id = its row id. */
static int
instance_from_row(
    sqlite3_stmt *q, struct instance **ret, int64_t *ret_id, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	const char *t;
	int rc;

	inst = instance_new();
	if (inst == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	*ret_id = sqlite3_column_int64(q, 0);
	t = (const char *)sqlite3_column_text(q, 1);
	if (t == NULL || strlen(t) >= UUID_STR_LEN)
		return bad_row("instance uuid", t, e);
	memcpy(inst->uuid, t, strlen(t) + 1);
	if ((rc = col_strdup(q, 2, &inst->name, e)) < 0)
		return rc;
	inst->flavor.vcpus = sqlite3_column_int64(q, 3);
	inst->flavor.memory_mb = sqlite3_column_int64(q, 4);
	inst->flavor.root_gb = sqlite3_column_int64(q, 5);
	inst->flavor.ephemeral_gb = sqlite3_column_int64(q, 6);
	inst->flavor.swap = sqlite3_column_int64(q, 7);
	if ((rc = col_strdup(q, 8, &inst->image_ref, e)) < 0 ||
	    (rc = col_strdup(q, 9, &inst->props.hw_disk_bus, e)) < 0 ||
	    (rc = col_strdup(q, 10, &inst->props.hw_cdrom_bus, e)) < 0 ||
	    (rc = col_strdup(q, 11, &inst->props.hw_scsi_model, e)) < 0 ||
	    (rc = col_strdup(q, 12, &inst->props.hw_machine_type, e)) < 0)
		return rc;
	free(inst->metadata);
	if ((rc = col_strdup(q, 13, &inst->metadata, e)) < 0)
		return rc;
	inst->config_drive = sqlite3_column_int(q, 14) != 0;
	t = (const char *)sqlite3_column_text(q, 15);
	if (t == NULL || instance_state_from_string(t, &inst->state) < 0)
		return bad_row("instance state", t, e);
	inst->generation = sqlite3_column_int64(q, 16);
	inst->created_at = sqlite3_column_int64(q, 17);
	inst->updated_at = sqlite3_column_int64(q, 18);
	t = (const char *)sqlite3_column_text(q, 19);
	if (t == NULL)
		inst->desired_state = desired_of(inst->state);
	else if (instance_state_from_string(t, &inst->desired_state) < 0)
		return bad_row("desired state", t, e);
	if ((rc = col_strdup(q, 20, &inst->fault, e)) < 0)
		return rc;
	*ret = TAKE_PTR(inst);
	return 0;
}

/* Reads one BDM_COLS row and appends it to inst; records it in m if it has
 * no uuid yet. */
static int
bdm_from_row(sqlite3_stmt *q, struct instance *inst, struct missing_list *m,
    struct err *e)
{
	struct bdm *b;
	const char *t;
	int rc;

	if ((rc = instance_bdm_append(inst, &b, e)) < 0)
		return rc;
	t = (const char *)sqlite3_column_text(q, 2);
	if (t == NULL) {
		if (m->n == m->cap) {
			size_t cap = m->cap ? m->cap * 2 : 16;
			struct missing_uuid *v =
			    realloc(m->v, cap * sizeof(*v));

			if (v == NULL)
				return err_set(e, -ENOMEM, "out of memory");
			m->v = v;
			m->cap = cap;
		}
		m->v[m->n++] = (struct missing_uuid){inst, inst->n_bdms - 1,
		    sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1)};
		b->uuid[0] = '\0';
	} else if (strlen(t) >= UUID_STR_LEN)
		return bad_row("BDM uuid", t, e);
	else
		memcpy(b->uuid, t, strlen(t) + 1);
	t = (const char *)sqlite3_column_text(q, 3);
	if (t == NULL || bdm_source_from_string(t, &b->source_type) < 0)
		return bad_row("source_type", t, e);
	t = (const char *)sqlite3_column_text(q, 4);
	if (t == NULL || bdm_dest_from_string(t, &b->destination_type) < 0)
		return bad_row("destination_type", t, e);
	if ((rc = col_strdup(q, 5, &b->guest_format, e)) < 0)
		return rc;
	b->boot_index = sqlite3_column_type(q, 6) == SQLITE_NULL
	    ? BDM_BOOT_NONE
	    : sqlite3_column_int(q, 6);
	t = (const char *)sqlite3_column_text(q, 7);
	b->device_type = BDM_DEVICE_UNSET;
	if (t && bdm_device_type_from_string(t, &b->device_type) < 0)
		return bad_row("device_type", t, e);
	t = (const char *)sqlite3_column_text(q, 8);
	b->disk_bus = BDM_BUS_UNSET;
	if (t && bdm_bus_from_string(t, &b->disk_bus) < 0)
		return bad_row("disk_bus", t, e);
	if ((rc = col_strdup(q, 9, &b->device_name, e)) < 0)
		return rc;
	b->volume_size = sqlite3_column_type(q, 10) == SQLITE_NULL
	    ? BDM_SIZE_NONE
	    : sqlite3_column_int64(q, 10);
	if ((rc = col_strdup(q, 11, &b->image_id, e)) < 0 ||
	    (rc = col_strdup(q, 12, &b->volume_id, e)) < 0 ||
	    (rc = col_strdup(q, 13, &b->snapshot_id, e)) < 0 ||
	    (rc = col_strdup(q, 14, &b->tag, e)) < 0)
		return rc;
	b->delete_on_termination = sqlite3_column_int(q, 15) != 0;
	if ((rc = col_strdup(q, 16, &b->connection_info, e)) < 0)
		return rc;
	/* its source, read once here (a bad one stays NULL, for the model
	 * to refuse); only -ENOMEM fails the load */
	if (b->connection_info &&
	    (rc = bdm_json_conn_source(b->connection_info, "connection_info",
		 &b->conn_type, &b->conn_path, NULL)) == -ENOMEM)
		return err_set(e, rc, "out of memory");
	t = (const char *)sqlite3_column_text(q, 17);
	b->attach_state = BDM_ATTACH_SETTLED;
	if (t && bdm_attach_state_from_string(t, &b->attach_state) < 0)
		return bad_row("attach_state", t, e);
	return 0;
}

/* Gives every BDM in m a uuid (its own or the race winner's), after the
 * read transaction that found them has ended. */
static int
fill_missing(struct store *s, struct missing_list *m, struct err *e)
{
	size_t i;
	int rc;

	for (i = 0; i < m->n; i++) {
		struct missing_uuid *x = &m->v[i];

		rc = bdm_create_uuid(s, x->row_id, x->instance_id,
		    x->inst->bdms[x->index].uuid, e);
		/* -ENOENT: deleted since we read it; the caller's copy keeps
		 * "" and the next read will not see it. */
		if (rc < 0 && rc != -ENOENT)
			return rc;
	}
	return 0;
}

static void
missing_clear(struct missing_list *m)
{
	free(m->v);
	m->v = NULL;
	m->n = m->cap = 0;
}

/* The one instance row uuid: sql (?1 the uuid) prepared into *q, bound
 * and stepped onto its row. Returns 0 (*q on the row, reset by the
 * caller's cleanup), -ENOENT "no instance <uuid>", or the store's error
 * (-EAGAIN, -EIO). */
static int
instance_row(struct store *s, const char *sql, const char *uuid,
    sqlite3_stmt **q, struct err *e)
{
	int rc;

	if ((rc = store_prepare(s, sql, q, e)) < 0)
		return rc;
	sqlite3_bind_text(*q, 1, uuid, -1, SQLITE_STATIC);
	rc = store_step(s, *q);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return err_set(e, -ENOENT, "no instance %s", uuid);
	return store_err(s, rc, e, "reading instance %s", uuid);
}

/* Reads one instance and its BDMs in one read transaction. */
static int
instance_load(struct store *s, const char *uuid, struct instance **ret,
    struct missing_list *m, struct err *e)
{
	static const char sql_inst[] =
	    "SELECT " INSTANCE_COLS_V5 " FROM instances i WHERE i.uuid = ?1";
	static const char sql_inst_v2[] =
	    "SELECT " INSTANCE_COLS_V2 " FROM instances i WHERE i.uuid = ?1";
	static const char sql_bdms[] =
	    "SELECT " BDM_COLS_V6 " FROM block_device_mappings b"
	    " WHERE b.instance_id = ?1 ORDER BY b.id";
	static const char sql_bdms_v2[] =
	    "SELECT " BDM_COLS_V2 " FROM block_device_mappings b"
	    " WHERE b.instance_id = ?1 ORDER BY b.id";
	_cleanup_(instance_freep) struct instance *inst = NULL;
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *qi = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *qb = NULL;
	int64_t id;
	int rc, v5, v6;

	if ((rc = tx_begin(s, false, e)) < 0)
		return rc;
	tx = s;
	if ((v5 = has_desired(s, e)) < 0)
		return v5;
	if ((v6 = has_attach_state(s, e)) < 0)
		return v6;
	rc = instance_row(s, v5 ? sql_inst : sql_inst_v2, uuid, &qi, e);
	if (rc < 0 || (rc = instance_from_row(qi, &inst, &id, e)) < 0 ||
	    (rc = store_prepare(s, v6 ? sql_bdms : sql_bdms_v2, &qb, e)) < 0)
		return rc;
	sqlite3_bind_int64(qb, 1, id);
	while ((rc = store_step(s, qb)) == SQLITE_ROW)
		if ((rc = bdm_from_row(qb, inst, m, e)) < 0)
			return rc;
	if (rc != SQLITE_DONE)
		return store_err(s, rc, e, "reading the BDMs of %s", uuid);
	stmt_resetp(&qi);
	stmt_resetp(&qb);
	if ((rc = guest_load_all(s, &inst, &id, 1, e)) < 0)
		return rc;
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	*ret = TAKE_PTR(inst);
	return 0;
}

/* Loads instance uuid with its BDMs (owned, instance_free), filling
 * missing BDM uuids race-safely after the read. Returns 0, -EINVAL,
 * -ENOENT, -EAGAIN, -EIO. */
int
store_instance_get(
    struct store *s, const char *uuid, struct instance **ret, struct err *e)
{
	_cleanup_(instance_freep) struct instance *inst = NULL;
	struct missing_list m = {0};
	int rc;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	rc = instance_load(s, uuid, &inst, &m, e);
	if (rc >= 0)
		rc = fill_missing(s, &m, e);
	missing_clear(&m);
	if (rc < 0)
		return rc;
	*ret = TAKE_PTR(inst);
	return 0;
}

/* The request digest stored at create (*ret owned; NULL when none).
 * Returns 0, -EINVAL, -ENOENT, -EAGAIN, -EIO. */
int
store_instance_digest(
    struct store *s, const char *uuid, char **ret, struct err *e)
{
	static const char sql[] =
	    "SELECT request_digest FROM instances WHERE uuid = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	char *d;
	int rc;

	if ((rc = check_uuid("instance id", uuid, e)) < 0 ||
	    (rc = instance_row(s, sql, uuid, &q, e)) < 0 ||
	    (rc = col_strdup(q, 0, &d, e)) < 0)
		return rc;
	*ret = d;
	return 0;
}

/* Frees a list from store_instance_list. Accepts NULL. */
void
store_instance_list_free(struct instance **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		instance_free(v[i]);
	free(v);
}

struct inst_vec {
	struct instance **v;
	int64_t *ids;
	size_t n;
	size_t cap;
};

static void
inst_vec_clear(struct inst_vec *iv)
{
	store_instance_list_free(iv->v, iv->n);
	free(iv->ids);
	*iv = (struct inst_vec){0};
}

static int
inst_vec_push(
    struct inst_vec *iv, struct instance *inst, int64_t id, struct err *e)
{
	if (iv->n == iv->cap) {
		size_t cap = iv->cap ? iv->cap * 2 : 64;
		struct instance **v = realloc(iv->v, cap * sizeof(*v));
		int64_t *ids;

		if (v == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		iv->v = v;
		ids = realloc(iv->ids, cap * sizeof(*ids));
		if (ids == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		iv->ids = ids;
		iv->cap = cap;
	}
	iv->v[iv->n] = inst;
	iv->ids[iv->n++] = id;
	return 0;
}

/* The page (instances after row id `after`, at most limit, -1 = all) and
 * all their BDMs: two queries in one read transaction. */
static int
list_load(struct store *s, const char *marker, int64_t limit,
    struct inst_vec *iv, struct missing_list *m, struct err *e)
{
	static const char sql_marker[] =
	    "SELECT id FROM instances WHERE uuid = ?1";
	static const char sql_inst[] =
	    "SELECT " INSTANCE_COLS_V5 " FROM instances i WHERE i.id > ?1"
	    " ORDER BY i.id LIMIT ?2";
	static const char sql_inst_v2[] =
	    "SELECT " INSTANCE_COLS_V2 " FROM instances i WHERE i.id > ?1"
	    " ORDER BY i.id LIMIT ?2";
	static const char sql_bdms[] =
	    "SELECT " BDM_COLS_V6 " FROM block_device_mappings b"
	    " WHERE b.instance_id BETWEEN ?1 AND ?2"
	    " ORDER BY b.instance_id, b.id";
	static const char sql_bdms_v2[] =
	    "SELECT " BDM_COLS_V2 " FROM block_device_mappings b"
	    " WHERE b.instance_id BETWEEN ?1 AND ?2"
	    " ORDER BY b.instance_id, b.id";
	/* When the page holds every instance, walking the table in row id
	 * order is cheaper than the index plus a seek per row (a fifth of
	 * listing 10,000 instances); rows are then placed by binary search. */
	static const char sql_all_bdms[] =
	    "SELECT " BDM_COLS_V6 " FROM block_device_mappings b"
	    " ORDER BY b.id";
	static const char sql_all_bdms_v2[] =
	    "SELECT " BDM_COLS_V2 " FROM block_device_mappings b"
	    " ORDER BY b.id";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *qm = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *qi = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *qb = NULL;
	int64_t after = 0;
	size_t j;
	int rc, v5, v6;

	if ((rc = tx_begin(s, false, e)) < 0)
		return rc;
	tx = s;
	if ((v5 = has_desired(s, e)) < 0)
		return v5;
	if ((v6 = has_attach_state(s, e)) < 0)
		return v6;
	if ((rc = store_prepare(s, sql_marker, &qm, e)) < 0 ||
	    (rc = store_prepare(s, v5 ? sql_inst : sql_inst_v2, &qi, e)) < 0 ||
	    (rc = store_prepare(s, v6 ? sql_bdms : sql_bdms_v2, &qb, e)) < 0)
		return rc;
	if (marker) {
		sqlite3_bind_text(qm, 1, marker, -1, SQLITE_STATIC);
		rc = store_step(s, qm);
		if (rc == SQLITE_DONE)
			return err_set_field(e, -ENOENT, "marker",
			    "marker %s: no such instance", marker);
		if (rc != SQLITE_ROW)
			return store_err(s, rc, e, "listing instances");
		after = sqlite3_column_int64(qm, 0);
	}
	sqlite3_bind_int64(qi, 1, after);
	sqlite3_bind_int64(qi, 2, limit);
	while ((rc = store_step(s, qi)) == SQLITE_ROW) {
		struct instance *inst = NULL;
		int64_t id;

		if ((rc = instance_from_row(qi, &inst, &id, e)) < 0)
			return rc;
		if ((rc = inst_vec_push(iv, inst, id, e)) < 0) {
			instance_free(inst);
			return rc;
		}
	}
	if (rc != SQLITE_DONE)
		return store_err(s, rc, e, "listing instances");
	if (iv->n > 0 && marker == NULL &&
	    (limit < 0 || iv->n < (size_t)limit)) {
		stmt_resetp(&qb);
		if ((rc = store_prepare(
			 s, v6 ? sql_all_bdms : sql_all_bdms_v2, &qb, e)) < 0)
			return rc;
		while ((rc = store_step(s, qb)) == SQLITE_ROW) {
			int64_t iid = sqlite3_column_int64(qb, 1);
			size_t lo = 0, hi = iv->n;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (iv->ids[mid] < iid)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo == iv->n || iv->ids[lo] != iid)
				continue;
			if ((rc = bdm_from_row(qb, iv->v[lo], m, e)) < 0)
				return rc;
		}
		if (rc != SQLITE_DONE)
			return store_err(s, rc, e, "listing instances");
	} else if (iv->n > 0) {
		sqlite3_bind_int64(qb, 1, iv->ids[0]);
		sqlite3_bind_int64(qb, 2, iv->ids[iv->n - 1]);
		j = 0;
		/* Both sides are ordered by instance row id: merge. */
		while ((rc = store_step(s, qb)) == SQLITE_ROW) {
			int64_t iid = sqlite3_column_int64(qb, 1);

			while (j < iv->n && iv->ids[j] < iid)
				j++;
			if (j == iv->n)
				break;
			if (iv->ids[j] != iid)
				continue;
			if ((rc = bdm_from_row(qb, iv->v[j], m, e)) < 0)
				return rc;
		}
		if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			return store_err(s, rc, e, "listing instances");
	}
	stmt_resetp(&qm);
	stmt_resetp(&qi);
	stmt_resetp(&qb);
	if ((rc = guest_load_all(s, iv->v, iv->ids, iv->n, e)) < 0)
		return rc;
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	return 0;
}

/* A page of instances in creation order with their BDMs (*ret owned,
 * store_instance_list_free). Returns 0, -EINVAL, -ENOENT (unknown
 * marker), -EAGAIN, -EIO. */
int
store_instance_list(struct store *s, const char *marker, size_t limit,
    struct instance ***ret, size_t *ret_n, struct err *e)
{
	struct inst_vec iv = {0};
	struct missing_list m = {0};
	int rc;

	if (marker && (rc = check_uuid("marker", marker, e)) < 0)
		return rc;
	rc = list_load(s, marker,
	    limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit, &iv, &m, e);
	if (rc >= 0)
		rc = fill_missing(s, &m, e);
	missing_clear(&m);
	if (rc < 0) {
		inst_vec_clear(&iv);
		return rc;
	}
	free(iv.ids);
	*ret = iv.v;
	*ret_n = iv.n;
	return 0;
}

/* Every instance's uuid and state in creation order (see store.h). */
int
store_instance_states(struct store *s, struct store_instance_state **ret,
    size_t *ret_n, struct err *e)
{
	/* one statement; the EXISTS probes the partial index of unsettled
	 * rows, empty on a settled node */
	static const char sql[] =
	    "SELECT i.uuid, i.state, i.desired_state,"
	    " EXISTS (SELECT 1 FROM block_device_mappings b"
	    "  WHERE b.instance_id = i.id AND b.attach_state IS NOT NULL)"
	    " FROM instances i ORDER BY i.id";
	/* older schemas (2 while the online migration holds it, or a
	 * store opened without migrating) record no state: every instance
	 * is compared, as before schema 6 */
	static const char sql_v9[] =
	    "SELECT i.uuid, i.state, i.desired_state,"
	    " EXISTS (SELECT 1 FROM block_device_mappings b"
	    "  WHERE b.instance_id = i.id AND b.attach_state IS NOT NULL)"
	    " OR EXISTS (SELECT 1 FROM nics n"
	    "  WHERE n.instance_id = i.id AND n.attach_state IS NOT NULL)"
	    " FROM instances i ORDER BY i.id";
	static const char sql_v5[] = "SELECT uuid, state, desired_state, 1"
				     " FROM instances ORDER BY id";
	static const char sql_v2[] =
	    "SELECT uuid, state, NULL, 1 FROM instances ORDER BY id";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	_cleanup_free_ struct store_instance_state *v = NULL;
	size_t n = 0, cap = 0;
	int rc, v5, v6, v9;

	if ((v5 = has_desired(s, e)) < 0)
		return v5;
	if ((v6 = has_attach_state(s, e)) < 0)
		return v6;
	if ((v9 = has_guest(s, e)) < 0)
		return v9;
	if ((rc = store_prepare(s,
		 v9       ? sql_v9
		     : v6 ? sql
			  : (v5 ? sql_v5 : sql_v2),
		 &q, e)) < 0)
		return rc;
	while ((rc = store_step(s, q)) == SQLITE_ROW) {
		const char *u = (const char *)sqlite3_column_text(q, 0);
		const char *t = (const char *)sqlite3_column_text(q, 1);

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct store_instance_state *nv =
			    reallocarray(v, ncap, sizeof(*v));

			if (nv == NULL)
				return err_set(e, -ENOMEM, "out of memory");
			v = nv;
			cap = ncap;
		}
		if (u == NULL || strlen(u) != UUID_STR_LEN - 1)
			return bad_row("instance uuid", u, e);
		if (t == NULL || instance_state_from_string(t, &v[n].state) < 0)
			return bad_row("instance state", t, e);
		t = (const char *)sqlite3_column_text(q, 2);
		if (t == NULL)
			v[n].desired = desired_of(v[n].state);
		else if (instance_state_from_string(t, &v[n].desired) < 0)
			return bad_row("desired state", t, e);
		v[n].unsettled = sqlite3_column_int(q, 3) != 0;
		memcpy(v[n].uuid, u, UUID_STR_LEN);
		n++;
	}
	if (rc != SQLITE_DONE)
		return store_err(s, rc, e, "listing instance states");
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* --- writing instances and BDMs --------------------------------------- */

static const char *
enum_or_null(const char *(*fn)(int), int v)
{
	return v == 0 ? NULL : fn(v);
}

static const char *
source_str(int v)
{
	return bdm_source_to_string((enum bdm_source)v);
}

static const char *
dest_str(int v)
{
	return bdm_dest_to_string((enum bdm_dest)v);
}

static const char *
devtype_str(int v)
{
	return bdm_device_type_to_string((enum bdm_device_type)v);
}

static const char *
bus_str(int v)
{
	return bdm_bus_to_string((enum bdm_bus)v);
}

/* Checks what the schema cannot: ids in canonical form, enums set. */
static int
bdm_check(const struct bdm *b, const char *field, struct err *e)
{
	if (!util_uuid_is_canonical(b->uuid))
		return err_set_field(e, -EINVAL, field,
		    "%s: bdm_uuid '%.40s' is not a lower-case canonical UUID",
		    field, b->uuid);
	if (b->image_id && !util_uuid_is_canonical(b->image_id))
		return err_set_field(e, -EINVAL, field,
		    "%s: image_id '%.40s' is not a lower-case canonical UUID",
		    field, b->image_id);
	if (b->source_type == BDM_SOURCE_UNSET ||
	    b->destination_type == BDM_DEST_UNSET ||
	    enum_or_null(source_str, b->source_type) == NULL ||
	    enum_or_null(dest_str, b->destination_type) == NULL)
		return err_set_field(e, -EINVAL, field,
		    "%s: source_type and destination_type are required", field);
	return 0;
}

/* Inserts b under instance row instance_id (inside the caller's
 * transaction). */
static int
bdm_insert_row(
    struct store *s, int64_t instance_id, const struct bdm *b, struct err *e)
{
	static const char sql[] =
	    "INSERT INTO block_device_mappings (instance_id, uuid,"
	    " source_type, destination_type, guest_format, boot_index,"
	    " device_type, disk_bus, device_name, volume_size, image_id,"
	    " volume_id, snapshot_id, tag, delete_on_termination,"
	    " connection_info)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	    " ?14, ?15, ?16)";
	static const char sql_v6[] =
	    "INSERT INTO block_device_mappings (instance_id, uuid,"
	    " source_type, destination_type, guest_format, boot_index,"
	    " device_type, disk_bus, device_name, volume_size, image_id,"
	    " volume_id, snapshot_id, tag, delete_on_termination,"
	    " connection_info, attach_state)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	    " ?14, ?15, ?16, ?17)";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc, v6;

	if ((v6 = has_attach_state(s, e)) < 0)
		return v6;
	if ((rc = store_prepare(s, v6 ? sql_v6 : sql, &q, e)) < 0)
		return rc;
	if (v6)
		bind_text_or_null(
		    q, 17, bdm_attach_state_to_string(b->attach_state));
	sqlite3_bind_int64(q, 1, instance_id);
	sqlite3_bind_text(q, 2, b->uuid, -1, SQLITE_STATIC);
	bind_text_or_null(q, 3, enum_or_null(source_str, b->source_type));
	bind_text_or_null(q, 4, enum_or_null(dest_str, b->destination_type));
	bind_text_or_null(q, 5, b->guest_format);
	bind_int_or_null(q, 6,
	    b->boot_index < 0 ? BDM_BOOT_NONE : b->boot_index, BDM_BOOT_NONE);
	bind_text_or_null(q, 7, enum_or_null(devtype_str, b->device_type));
	bind_text_or_null(q, 8, enum_or_null(bus_str, b->disk_bus));
	bind_text_or_null(q, 9, b->device_name);
	bind_int_or_null(q, 10, b->volume_size, BDM_SIZE_NONE);
	bind_text_or_null(q, 11, b->image_id);
	bind_text_or_null(q, 12, b->volume_id);
	bind_text_or_null(q, 13, b->snapshot_id);
	bind_text_or_null(q, 14, b->tag);
	sqlite3_bind_int(q, 15, b->delete_on_termination ? 1 : 0);
	bind_text_or_null(q, 16, b->connection_info);
	rc = store_step(s, q);
	if (rc == SQLITE_CONSTRAINT_UNIQUE ||
	    rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return err_set(
		    e, -EEXIST, "bdm_uuid %s is already in use", b->uuid);
	if (rc != SQLITE_DONE)
		return store_err(s, rc, e, "storing BDM %s", b->uuid);
	return 0;
}

/* --- node: usage and capacity (issue 13) -------------------------------- */

/* Reads one usage row of sql (count, vcpus, memory_mb, disk_gb). */
static int
node_usage_read(struct store *s, const char *sql, int64_t usage[NODE_N_RC],
    int64_t *ret_n, struct err *e)
{
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	rc = store_step(s, q);
	if (rc != SQLITE_ROW)
		return store_err(s, rc, e, "reading the instances' usage");
	if (ret_n)
		*ret_n = sqlite3_column_int64(q, 0);
	usage[NODE_VCPU] = sqlite3_column_int64(q, 1);
	usage[NODE_MEMORY_MB] = sqlite3_column_int64(q, 2);
	usage[NODE_DISK_GB] = sqlite3_column_int64(q, 3);
	return 0;
}

static const char sql_usage_row[] =
    "SELECT instances, vcpus, memory_mb, disk_gb FROM node_usage"
    " WHERE id = 1";

/* What every instance row takes, as node_flavor_usage counts one
 * instance (resources_from_flavor): the node_usage row, or the sum over
 * the rows before it exists. */
static int
node_usage_sum(
    struct store *s, int64_t usage[NODE_N_RC], int64_t *ret_n, struct err *e)
{
	int rc, v;

	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	return node_usage_read(s,
	    v >= STORE_USAGE_VERSION ? sql_usage_row : USAGE_SUM, usage, ret_n,
	    e);
}

/* What the instance rows take. See store.h. */
int
store_node_usage(
    struct store *s, int64_t usage[NODE_N_RC], int64_t *ret_n, struct err *e)
{
	return node_usage_sum(s, usage, ret_n, e);
}

/* The row against the sum, mended. See store.h. */
int
store_node_usage_verify(struct store *s, int *ret_fixed, struct err *e)
{
	static const char sql_put[] =
	    "UPDATE node_usage SET instances = ?1, vcpus = ?2,"
	    " memory_mb = ?3, disk_gb = ?4 WHERE id = 1";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int64_t row[NODE_N_RC], sum[NODE_N_RC], row_n, sum_n;
	int rc, v;

	*ret_fixed = 0;
	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	if (v < STORE_USAGE_VERSION)
		return 0;
	if ((rc = node_usage_read(s, sql_usage_row, row, &row_n, e)) < 0 ||
	    (rc = node_usage_read(s, USAGE_SUM, sum, &sum_n, e)) < 0)
		return rc;
	if (row_n == sum_n && memcmp(row, sum, sizeof(row)) == 0)
		return 0;
	if ((rc = store_prepare(s, sql_put, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, sum_n);
	sqlite3_bind_int64(q, 2, sum[NODE_VCPU]);
	sqlite3_bind_int64(q, 3, sum[NODE_MEMORY_MB]);
	sqlite3_bind_int64(q, 4, sum[NODE_DISK_GB]);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "mending the node's usage");
	stmt_resetp(&q);
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	*ret_fixed = 1;
	return 0;
}

/* The node's uuid, drawn by the first caller. See store.h. */
int
store_node_uuid(struct store *s, char ret[UUID_STR_LEN], struct err *e)
{
	static const char sql_get[] = "SELECT uuid FROM node WHERE id = 1";
	static const char sql_put[] =
	    "INSERT OR IGNORE INTO node (id, uuid, created_at)"
	    " VALUES (1, ?1, ?2)";
	int rc, v;

	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	if (v < STORE_NODE_VERSION)
		return err_set(e, -ENOENT,
		    "the node has no uuid before schema version %d",
		    STORE_NODE_VERSION);
	for (int pass = 0; pass < 2; pass++) {
		_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
		char u[UUID_STR_LEN];

		if ((rc = store_prepare(s, sql_get, &q, e)) < 0)
			return rc;
		rc = store_step(s, q);
		if (rc == SQLITE_ROW) {
			const char *t = (const char *)sqlite3_column_text(q, 0);

			if (!t || !util_uuid_is_canonical(t))
				return bad_row("node uuid", t, e);
			memcpy(ret, t, UUID_STR_LEN);
			return 0;
		}
		if (rc != SQLITE_DONE)
			return store_err(s, rc, e, "reading the node uuid");
		stmt_resetp(&q);
		if (pass > 0)
			break;
		/* the first writer wins; everyone reads its uuid */
		util_uuid_generate(u);
		if ((rc = store_prepare(s, sql_put, &q, e)) < 0)
			return rc;
		sqlite3_bind_text(q, 1, u, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(q, 2, util_now_ms());
		rc = store_step(s, q);
		if (rc != SQLITE_DONE)
			return store_err(s, rc, e, "storing the node uuid");
	}
	return err_set(e, -EIO, "the node uuid vanished");
}

/* -ENOSPC naming the first class inst takes past its capacity, 0 when it
 * fits. Inside the create's write transaction, after inst's rows are
 * inserted (the sum includes them; the caller rolls back). */
static int
node_claim_check(struct store *s, const struct instance *inst,
    const struct node_limits *l, struct err *e)
{
	int64_t usage[NODE_N_RC], want[NODE_N_RC];
	int rc, rcl;

	if ((rc = node_usage_sum(s, usage, NULL, e)) < 0)
		return rc;
	node_flavor_usage(&inst->flavor, node_volume_backed(inst), want);
	for (int i = 0; i < NODE_N_RC; i++)
		usage[i] -= want[i]; /* what the others take */
	if ((rcl = node_first_short(l, usage, want)) < 0)
		return 0;
	return err_set_field(e, -ENOSPC, node_rc_name(rcl),
	    "insufficient %s on this node: the instance needs %" PRId64
	    ", %" PRId64 " of %" PRId64 " are taken",
	    node_rc_name(rcl), want[rcl], usage[rcl], l->capacity[rcl]);
}

static int instance_create_tx(struct store *s, const struct instance *inst,
    const char *request_digest, const struct node_limits *limits,
    struct err *e);

/* Writes inst (state building, generation 1) and all its BDMs in one
 * transaction. Returns 0, -EINVAL, -EEXIST, -EAGAIN, -EIO. */
int
store_instance_create(struct store *s, const struct instance *inst,
    const char *request_digest, struct err *e)
{
	return instance_create_tx(s, inst, request_digest, NULL, e);
}

/* store_instance_create with the capacity check. See store.h. */
int
store_instance_claim(struct store *s, const struct instance *inst,
    const char *request_digest, const struct node_limits *limits, struct err *e)
{
	return instance_create_tx(s, inst, request_digest, limits, e);
}

static int
instance_create_tx(struct store *s, const struct instance *inst,
    const char *request_digest, const struct node_limits *limits, struct err *e)
{
	static const char sql[] =
	    "INSERT INTO instances (uuid, name, vcpus, memory_mb, root_gb,"
	    " ephemeral_gb, swap_mb, image_ref, hw_disk_bus, hw_cdrom_bus,"
	    " hw_scsi_model, hw_machine_type, metadata, config_drive, state,"
	    " request_digest, generation, created_at, updated_at)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	    " ?14, 'building', ?15, 1, ?16, ?16)";
	/* the same with the desired state (schema 5) */
	static const char sql_v5[] =
	    "INSERT INTO instances (uuid, name, vcpus, memory_mb, root_gb,"
	    " ephemeral_gb, swap_mb, image_ref, hw_disk_bus, hw_cdrom_bus,"
	    " hw_scsi_model, hw_machine_type, metadata, config_drive, state,"
	    " request_digest, generation, created_at, updated_at,"
	    " desired_state)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	    " ?14, 'building', ?15, 1, ?16, ?16, ?17)";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	char field[64];
	int64_t id;
	size_t i;
	int rc, v5;

	if ((rc = check_uuid("instance id", inst->uuid, e)) < 0)
		return rc;
	if (inst->image_ref && !util_uuid_is_canonical(inst->image_ref))
		return err_set_field(e, -EINVAL, "imageRef",
		    "imageRef '%.40s' is not a lower-case canonical UUID",
		    inst->image_ref);
	for (i = 0; i < inst->n_bdms; i++) {
		(void)snprintf(
		    field, sizeof(field), "block_device_mapping_v2[%zu]", i);
		if ((rc = bdm_check(&inst->bdms[i], field, e)) < 0)
			return rc;
	}

	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((v5 = has_desired(s, e)) < 0)
		return v5;
	if ((rc = store_prepare(s, v5 ? sql_v5 : sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, inst->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(
	    q, 2, inst->name ? inst->name : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, inst->flavor.vcpus);
	sqlite3_bind_int64(q, 4, inst->flavor.memory_mb);
	sqlite3_bind_int64(q, 5, inst->flavor.root_gb);
	sqlite3_bind_int64(q, 6, inst->flavor.ephemeral_gb);
	sqlite3_bind_int64(q, 7, inst->flavor.swap);
	bind_text_or_null(q, 8, inst->image_ref);
	bind_text_or_null(q, 9, inst->props.hw_disk_bus);
	bind_text_or_null(q, 10, inst->props.hw_cdrom_bus);
	bind_text_or_null(q, 11, inst->props.hw_scsi_model);
	bind_text_or_null(q, 12, inst->props.hw_machine_type);
	sqlite3_bind_text(
	    q, 13, inst->metadata ? inst->metadata : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 14, inst->config_drive ? 1 : 0);
	bind_text_or_null(q, 15, request_digest);
	sqlite3_bind_int64(q, 16, util_now_ms());
	if (v5)
		sqlite3_bind_text(q, 17, inst->start ? "running" : "stopped",
		    -1, SQLITE_STATIC);
	rc = store_step(s, q);
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return err_set(
		    e, -EEXIST, "instance %s already exists", inst->uuid);
	if (rc != SQLITE_DONE)
		return store_err(s, rc, e, "storing instance %s", inst->uuid);
	id = sqlite3_last_insert_rowid(s->db);
	for (i = 0; i < inst->n_bdms; i++)
		if ((rc = bdm_insert_row(s, id, &inst->bdms[i], e)) < 0)
			return rc;
	stmt_resetp(&q);
	if ((rc = has_guest(s, e)) < 0 ||
	    (rc > 0 && (rc = guest_insert_rows(s, id, &inst->guest, e)) < 0))
		return rc;
	/* after the inserts, so a taken uuid is -EEXIST whatever the room */
	if (limits && (rc = node_claim_check(s, inst, limits, e)) < 0)
		return rc;
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	return 0;
}

/* Runs q, an UPDATE of one instance row whose ?1 is the uuid and ?3
 * updated_at (bound here): 0, -ENOENT when no row has that uuid, or the
 * store's error. */
static int
instance_update(
    struct store *s, sqlite3_stmt *q, const char *uuid, struct err *e)
{
	int rc;

	sqlite3_bind_int64(q, 3, util_now_ms());
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "updating instance %s", uuid);
	if (sqlite3_changes(s->db) == 0)
		return err_set(e, -ENOENT, "no instance %s", uuid);
	return 0;
}

/* Sets the state and bumps generation and updated_at. Returns 0,
 * -EINVAL, -ENOENT, -EAGAIN, -EIO. */
int
store_instance_set_state(
    struct store *s, const char *uuid, enum instance_state state, struct err *e)
{
	static const char sql[] =
	    "UPDATE instances SET state = ?2, generation = generation + 1,"
	    " updated_at = ?3 WHERE uuid = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	const char *st = instance_state_to_string(state);
	int rc;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if (st == NULL || (int)state < 0 || state >= STORE_N_STATES)
		return err_set(e, -EINVAL, "unknown instance state %d", state);
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, st, -1, SQLITE_STATIC);
	return instance_update(s, q, uuid, e);
}

/* Records the desired state (see store.h). */
int
store_instance_set_desired(struct store *s, const char *uuid,
    enum instance_state desired, struct err *e)
{
	static const char sql[] =
	    "UPDATE instances SET desired_state = ?2,"
	    " generation = generation + 1, updated_at = ?3 WHERE uuid = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc, v5;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if (desired != INSTANCE_RUNNING && desired != INSTANCE_STOPPED)
		return err_set(e, -EINVAL,
		    "a desired state is running or stopped, not %d", desired);
	if ((v5 = has_desired(s, e)) <= 0)
		return v5;
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(
	    q, 2, instance_state_to_string(desired), -1, SQLITE_STATIC);
	return instance_update(s, q, uuid, e);
}

/* State error with a fault (see store.h). */
int
store_instance_set_error(
    struct store *s, const char *uuid, const char *fault, struct err *e)
{
	static const char sql[] =
	    "UPDATE instances SET state = 'error', fault = ?2,"
	    " generation = generation + 1, updated_at = ?3 WHERE uuid = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc, v5;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if ((v5 = has_desired(s, e)) < 0)
		return v5;
	if (!v5)
		return store_instance_set_state(s, uuid, INSTANCE_ERROR, e);
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	if (fault)
		sqlite3_bind_text(
		    q, 2, fault, (int)strnlen(fault, 1024), SQLITE_STATIC);
	else
		sqlite3_bind_null(q, 2);
	return instance_update(s, q, uuid, e);
}

/* The row's state and generation now: what a libvirt event is compared
 * with, and, after a conditional UPDATE changed nothing, why. Returns 0,
 * -ENOENT (no row), -EAGAIN, -EIO. */
static int
instance_now(struct store *s, const char *uuid, enum instance_state *ret_st,
    int64_t *ret_gen, struct err *e)
{
	static const char sql[] =
	    "SELECT state, generation FROM instances WHERE uuid = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = instance_row(s, sql, uuid, &q, e)) < 0)
		return rc;
	if (instance_state_from_string(
		(const char *)sqlite3_column_text(q, 0), ret_st) < 0)
		return err_set(
		    e, -EIO, "instance %s has an unknown state", uuid);
	*ret_gen = sqlite3_column_int64(q, 1);
	return 0;
}

/* Sets the state libvirt shows (see store.h). */
int
store_instance_observe_state(struct store *s, const char *uuid,
    enum instance_state state, bool *ret_changed, struct err *e)
{
	static const char sql[] =
	    "UPDATE instances SET state = ?2, generation = generation + 1,"
	    " updated_at = ?3 WHERE uuid = ?1";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	const char *st = instance_state_to_string(state);
	enum instance_state now;
	int64_t gen;
	int rc;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if (st == NULL || (int)state < 0 || state >= STORE_N_STATES)
		return err_set(e, -EINVAL, "unknown instance state %d", state);
	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((rc = instance_now(s, uuid, &now, &gen, e)) < 0)
		return rc;
	if (now == state || now == INSTANCE_BUILDING ||
	    now == INSTANCE_DELETING) {
		if (ret_changed)
			*ret_changed = false;
		return 0; /* the transaction only read: rolled back */
	}
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, st, -1, SQLITE_STATIC);
	if ((rc = instance_update(s, q, uuid, e)) < 0)
		return rc;
	stmt_resetp(&q);
	/* the instance.updated event comes from the trigger, with the cause
	 * the caller set (store_set_cause: libvirt or reconcile) */
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	if (ret_changed)
		*ret_changed = true;
	return 0;
}

/* Sets the state from `from` to `to` (bumping generation and updated_at)
 * in one statement, only while the row is still in `from`. Returns 0,
 * -EINVAL, -ENOENT (no row), -EBUSY (the row is in another state: someone
 * changed it meanwhile), -EAGAIN, -EIO. */
int
store_instance_cas_state(struct store *s, const char *uuid,
    enum instance_state from, enum instance_state to, struct err *e)
{
	static const char sql[] =
	    "UPDATE instances SET state = ?2, generation = generation + 1,"
	    " updated_at = ?3 WHERE uuid = ?1 AND state = ?4";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	const char *st = instance_state_to_string(to);
	const char *fst = instance_state_to_string(from);
	enum instance_state now;
	int64_t gen;
	int rc;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if (st == NULL || (int)to < 0 || to >= STORE_N_STATES)
		return err_set(e, -EINVAL, "unknown instance state %d", to);
	if (fst == NULL || (int)from < 0 || from >= STORE_N_STATES)
		return err_set(e, -EINVAL, "unknown instance state %d", from);
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, st, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, util_now_ms());
	sqlite3_bind_text(q, 4, fst, -1, SQLITE_STATIC);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "updating instance %s", uuid);
	if (sqlite3_changes(s->db) > 0)
		return 0;
	/* Nothing changed: tell a missing row from one in another state. */
	stmt_resetp(&q);
	if ((rc = instance_now(s, uuid, &now, &gen, e)) < 0)
		return rc;
	return err_set(e, -EBUSY,
	    "instance %s is %s, no longer %s: another change came first", uuid,
	    instance_state_to_string(now), fst);
}

/* See store.h. */
int
store_instance_mark_deleting(
    struct store *s, const char *uuid, int64_t generation, struct err *e)
{
	static const char sql[] =
	    "UPDATE instances SET state = 'deleting',"
	    " generation = generation + 1, updated_at = ?2"
	    " WHERE uuid = ?1 AND state <> 'building'"
	    " AND (?3 = 0 OR generation = ?3)";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	enum instance_state now;
	int64_t gen;
	int rc;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, util_now_ms());
	sqlite3_bind_int64(q, 3, generation > 0 ? generation : 0);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "updating instance %s", uuid);
	if (sqlite3_changes(s->db) > 0)
		return 0;
	/* Nothing changed: say why. */
	stmt_resetp(&q);
	if ((rc = instance_now(s, uuid, &now, &gen, e)) < 0)
		return rc;
	if (now == INSTANCE_BUILDING)
		return err_set(e, -EBUSY,
		    "instance %s is building: delete it once its create "
		    "has answered",
		    uuid);
	return err_set(e, -EBUSY,
	    "instance %s changed (generation %lld, no longer %lld): another "
	    "change came first",
	    uuid, (long long)gen, (long long)generation);
}

/* Deletes the instance row; its BDMs cascade. Returns 0, -EINVAL,
 * -ENOENT, -EAGAIN, -EIO. */
int
store_instance_delete(struct store *s, const char *uuid, struct err *e)
{
	static const char sql[] = "DELETE FROM instances WHERE uuid = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	/* One statement: the cascade to the BDMs is part of it. */
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "deleting instance %s", uuid);
	if (sqlite3_changes(s->db) == 0)
		return err_set(e, -ENOENT, "no instance %s", uuid);
	return 0;
}

/* Bumps generation and updated_at of instance row id (inside a tx). */
static int
instance_touch(struct store *s, int64_t id, struct err *e)
{
	static const char sql[] =
	    "UPDATE instances SET generation = generation + 1,"
	    " updated_at = ?2 WHERE id = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, util_now_ms());
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "updating an instance");
	return 0;
}

/* The row id of instance uuid. */
static int
instance_row_id(struct store *s, const char *uuid, int64_t *ret, struct err *e)
{
	static const char sql[] = "SELECT id FROM instances WHERE uuid = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = instance_row(s, sql, uuid, &q, e)) < 0)
		return rc;
	*ret = sqlite3_column_int64(q, 0);
	return 0;
}

/* The volume id of a volume BDM ("" for other BDMs) and its
 * attach_state ("" when settled); 0 or -ENOENT when no such BDM. */
static int
bdm_volume_of(struct store *s, int64_t instance_id, const char *bdm_uuid,
    char ret_volume[], size_t size, char ret_state[16], struct err *e)
{
	static const char sql[] =
	    "SELECT CASE WHEN destination_type = 'volume' THEN volume_id END,"
	    " attach_state FROM block_device_mappings"
	    " WHERE instance_id = ?1 AND uuid = ?2";
	static const char sql_v2[] =
	    "SELECT CASE WHEN destination_type = 'volume' THEN volume_id END,"
	    " NULL FROM block_device_mappings"
	    " WHERE instance_id = ?1 AND uuid = ?2";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc, v6;

	if ((v6 = has_attach_state(s, e)) < 0)
		return v6;
	if ((rc = store_prepare(s, v6 ? sql : sql_v2, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, instance_id);
	sqlite3_bind_text(q, 2, bdm_uuid, -1, SQLITE_STATIC);
	rc = store_step(s, q);
	if (rc == SQLITE_DONE)
		return err_set(e, -ENOENT, "no BDM %s", bdm_uuid);
	if (rc != SQLITE_ROW)
		return store_err(s, rc, e, "reading BDM %s", bdm_uuid);
	copy_col(ret_volume, size, q, 0);
	copy_col(ret_state, 16, q, 1);
	return 0;
}

/* Adds BDM b to an instance and bumps its generation, in one
 * transaction. Returns 0, -EINVAL, -ENOENT, -EEXIST, -EAGAIN, -EIO. */
int
store_bdm_insert(struct store *s, const char *instance_uuid,
    const struct bdm *b, struct err *e)
{
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	int64_t id;
	int rc;

	if ((rc = check_uuid("instance id", instance_uuid, e)) < 0 ||
	    (rc = bdm_check(b, "bdm", e)) < 0)
		return rc;
	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((rc = instance_row_id(s, instance_uuid, &id, e)) < 0 ||
	    (rc = bdm_insert_row(s, id, b, e)) < 0 ||
	    (rc = instance_touch(s, id, e)) < 0 || (rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	return 0;
}

/* Removes BDM bdm_uuid of an instance and bumps its generation.
 * Returns 0, -EINVAL, -ENOENT, -EAGAIN, -EIO. */
int
store_bdm_delete(struct store *s, const char *instance_uuid,
    const char *bdm_uuid, struct err *e)
{
	static const char sql[] = "DELETE FROM block_device_mappings"
				  " WHERE instance_id = ?1 AND uuid = ?2";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	char vol[UUID_STR_LEN + 64], ast[16];
	int64_t id;
	int rc;

	if ((rc = check_uuid("instance id", instance_uuid, e)) < 0 ||
	    (rc = check_uuid("bdm_uuid", bdm_uuid, e)) < 0)
		return rc;
	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((rc = instance_row_id(s, instance_uuid, &id, e)) < 0 ||
	    (rc = bdm_volume_of(s, id, bdm_uuid, vol, sizeof(vol), ast, e)) <
		0 ||
	    (rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_text(q, 2, bdm_uuid, -1, SQLITE_STATIC);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "deleting BDM %s", bdm_uuid);
	if (sqlite3_changes(s->db) == 0)
		return err_set(e, -ENOENT, "instance %s has no BDM %s",
		    instance_uuid, bdm_uuid);
	if ((rc = instance_touch(s, id, e)) < 0)
		return rc;
	/* a volume whose attach was confirmed is detached (an attach
	 * rolled back before libvirt confirmed it was never attached) */
	if (vol[0] && !STREQ(ast, "attaching") &&
	    (rc = store_event_append_tx(s, "volume.detached", instance_uuid,
		 &(struct store_event_ref){.volume_id = vol}, e)) < 0)
		return rc;
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	return 0;
}

/* See store.h. */
int
store_bdm_set_attach_state(struct store *s, const char *instance_uuid,
    const char *bdm_uuid, enum bdm_attach_state st, struct err *e)
{
	static const char sql[] = "UPDATE block_device_mappings"
				  " SET attach_state = ?3"
				  " WHERE instance_id = ?1 AND uuid = ?2";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	char vol[UUID_STR_LEN + 64], ast[16];
	int64_t id;
	int rc, v6;

	if ((rc = check_uuid("instance id", instance_uuid, e)) < 0 ||
	    (rc = check_uuid("bdm_uuid", bdm_uuid, e)) < 0)
		return rc;
	if (st != BDM_ATTACH_SETTLED && bdm_attach_state_to_string(st) == NULL)
		return err_set(e, -EINVAL, "unknown attach_state %d", (int)st);
	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((v6 = has_attach_state(s, e)) < 0)
		return v6;
	if (v6 == 0) /* schema 2: nothing to record it in (tx rolls back) */
		return 0;
	if ((rc = instance_row_id(s, instance_uuid, &id, e)) < 0 ||
	    (rc = bdm_volume_of(s, id, bdm_uuid, vol, sizeof(vol), ast, e)) <
		0 ||
	    (rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_text(q, 2, bdm_uuid, -1, SQLITE_STATIC);
	bind_text_or_null(q, 3, bdm_attach_state_to_string(st));
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "updating BDM %s", bdm_uuid);
	if (sqlite3_changes(s->db) == 0)
		return err_set(e, -ENOENT, "instance %s has no BDM %s",
		    instance_uuid, bdm_uuid);
	if ((rc = instance_touch(s, id, e)) < 0)
		return rc;
	/* attached once libvirt confirmed it: attaching -> settled */
	if (vol[0] && STREQ(ast, "attaching") && st == BDM_ATTACH_SETTLED &&
	    (rc = store_event_append_tx(s, "volume.attached", instance_uuid,
		 &(struct store_event_ref){.volume_id = vol}, e)) < 0)
		return rc;
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	return 0;
}

/* Instances per state into counts[] (indexed by enum instance_state).
 * Returns 0, -EAGAIN, -EIO. */
int
store_count_by_state(
    struct store *s, int64_t counts[STORE_N_STATES], struct err *e)
{
	static const char sql[] =
	    "SELECT state, count(*) FROM instances GROUP BY state";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int64_t c[STORE_N_STATES] = {0};
	enum instance_state st;
	int rc;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	while ((rc = store_step(s, q)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(q, 0);

		if (t == NULL || instance_state_from_string(t, &st) < 0 ||
		    (int)st < 0 || st >= STORE_N_STATES)
			return bad_row("instance state", t, e);
		c[st] = sqlite3_column_int64(q, 1);
	}
	if (rc != SQLITE_DONE)
		return store_err(s, rc, e, "counting instances");
	memcpy(counts, c, sizeof(c));
	return 0;
}

/* --- BDM uuids: the online data migration ----------------------------- */

/*
 * Gives BDM row row_id a uuid, as Nova's _create_uuid: the UPDATE applies
 * only where the row still has none; if it did not apply, another writer
 * won and its uuid is read back into out. A drawn uuid whose first 20
 * characters (the guest-visible serial on most buses) collide with
 * another disk of the same instance is drawn again. Runs in its own
 * autocommit statement, never inside a read transaction (which would see a
 * stale snapshot). Returns 0, -ENOENT if the row is gone, -EAGAIN, -EIO.
 */
static int
bdm_create_uuid(struct store *s, int64_t row_id, int64_t instance_id,
    char out[UUID_STR_LEN], struct err *e)
{
	static const char sql_clash[] =
	    "SELECT EXISTS (SELECT 1 FROM block_device_mappings"
	    " WHERE instance_id = ?1 AND id != ?2"
	    " AND (substr(uuid, 1, 20) = substr(?3, 1, 20)"
	    "  OR substr(volume_id, 1, 20) = substr(?3, 1, 20)))";
	static const char sql_set[] =
	    "UPDATE block_device_mappings SET uuid = ?2"
	    " WHERE id = ?1 AND uuid IS NULL";
	static const char sql_get[] =
	    "SELECT uuid FROM block_device_mappings WHERE id = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *qc = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *qs = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *qg = NULL;
	char u[UUID_STR_LEN];
	const char *t;
	int rc, draw;

	if ((rc = store_prepare(s, sql_clash, &qc, e)) < 0 ||
	    (rc = store_prepare(s, sql_set, &qs, e)) < 0 ||
	    (rc = store_prepare(s, sql_get, &qg, e)) < 0)
		return rc;
	for (draw = 0; draw < STORE_UUID_DRAWS; draw++) {
		util_uuid_generate(u);
		sqlite3_reset(qc);
		sqlite3_bind_int64(qc, 1, instance_id);
		sqlite3_bind_int64(qc, 2, row_id);
		sqlite3_bind_text(qc, 3, u, -1, SQLITE_STATIC);
		if ((rc = store_step(s, qc)) != SQLITE_ROW)
			return store_err(s, rc, e, "giving a BDM its uuid");
		if (sqlite3_column_int(qc, 0))
			continue;
		sqlite3_reset(qc);
		sqlite3_reset(qs);
		sqlite3_bind_int64(qs, 1, row_id);
		sqlite3_bind_text(qs, 2, u, -1, SQLITE_STATIC);
		rc = store_step(s, qs);
		if (rc == SQLITE_CONSTRAINT_UNIQUE)
			continue; /* drew a uuid already in use */
		if (rc != SQLITE_DONE)
			return store_err(s, rc, e, "giving a BDM its uuid");
		if (sqlite3_changes(s->db) == 1) {
			memcpy(out, u, UUID_STR_LEN);
			return 0;
		}
		/* Lost the race (or the row is gone): read the winner's. */
		sqlite3_bind_int64(qg, 1, row_id);
		rc = store_step(s, qg);
		if (rc == SQLITE_DONE)
			return err_set(e, -ENOENT, "the BDM was deleted");
		if (rc != SQLITE_ROW)
			return store_err(s, rc, e, "giving a BDM its uuid");
		t = (const char *)sqlite3_column_text(qg, 0);
		if (t == NULL || !util_uuid_is_canonical(t))
			return bad_row("BDM uuid", t, e);
		memcpy(out, t, UUID_STR_LEN);
		return 0;
	}
	return err_set(e, -EIO, "could not draw a free uuid for a BDM");
}

/* How many BDM rows lack a uuid (all of them before version 2).
 * Returns 0, -EAGAIN, -EIO. */
int
store_online_migrate_pending(struct store *s, int64_t *ret, struct err *e)
{
	static const char sql[] =
	    "SELECT count(*) FROM block_device_mappings WHERE uuid IS NULL";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc, v;

	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	if (v < 2) { /* no uuid column yet: every row lacks one */
		static const char sql_all[] =
		    "SELECT count(*) FROM block_device_mappings";

		if (v < 1) {
			*ret = 0;
			return 0;
		}
		if ((rc = store_prepare(s, sql_all, &q, e)) < 0)
			return rc;
	} else if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	if ((rc = store_step(s, q)) != SQLITE_ROW)
		return store_err(s, rc, e, "counting BDMs without a uuid");
	*ret = sqlite3_column_int64(q, 0);
	return 0;
}

/* One batch of the online data migration: at most max_count rows get a
 * uuid, each in its own short write. Returns 0, -EINVAL, -EAGAIN, -EIO. */
int
store_online_migrate(struct store *s, int max_count, int *ret_found,
    int *ret_done, struct err *e)
{
	static const char sql[] = "SELECT id, instance_id FROM"
				  " block_device_mappings WHERE uuid IS NULL"
				  " ORDER BY id LIMIT ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	_cleanup_free_ int64_t *rows = NULL;
	char u[UUID_STR_LEN];
	int rc, v, found = 0, done = 0, i;

	if (max_count <= 0)
		return err_set_field(e, -EINVAL, "max_count",
		    "max_count must be a positive integer");
	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	if (v < 2)
		return err_set(e, -EIO,
		    "the database schema is at version %d: run 'hyperletd db "
		    "sync' before the online migration",
		    v);
	rows = calloc((size_t)max_count, 2 * sizeof(*rows));
	if (rows == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_int(q, 1, max_count);
	while ((rc = store_step(s, q)) == SQLITE_ROW && found < max_count) {
		rows[2 * found] = sqlite3_column_int64(q, 0);
		rows[2 * found + 1] = sqlite3_column_int64(q, 1);
		found++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_err(s, rc, e, "finding BDMs without a uuid");
	stmt_resetp(&q);
	/* One short write per row, as Nova: a batch never holds the write
	 * lock for long, and a lost race costs nothing. */
	for (i = 0; i < found; i++) {
		rc = bdm_create_uuid(s, rows[2 * i], rows[2 * i + 1], u, e);
		if (rc == -ENOENT)
			continue;
		if (rc < 0)
			return rc;
		done++;
	}
	if (found < max_count && (rc = store_migrate(s, e)) < 0)
		return rc;
	if (ret_found)
		*ret_found = found;
	if (ret_done)
		*ret_done = done;
	return 0;
}

/* --- images ----------------------------------------------------------- */

/* Frees an image and its strings. Accepts NULL; returns NULL. */
struct store_image *
store_image_free(struct store_image *img)
{
	if (img == NULL)
		return NULL;
	free(img->format);
	free(img->checksum);
	free(img->properties);
	free(img);
	return NULL;
}

/* Frees a list from store_image_list. Accepts NULL. */
void
store_image_list_free(struct store_image **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		store_image_free(v[i]);
	free(v);
}

DEFINE_FREEP(struct store_image, store_image_free)

/* Records an image (created_at = now). Returns 0, -EINVAL, -EEXIST,
 * -EAGAIN, -EIO. */
int
store_image_put(struct store *s, const struct store_image *img, struct err *e)
{
	static const char sql[] =
	    "INSERT INTO images (id, format, virtual_size, file_size, checksum,"
	    " properties, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = check_uuid("image id", img->id, e)) < 0)
		return rc;
	if (img->format == NULL)
		return err_set_field(
		    e, -EINVAL, "format", "format is required");
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, img->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, img->format, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, img->virtual_size);
	sqlite3_bind_int64(q, 4, img->file_size);
	bind_text_or_null(q, 5, img->checksum);
	sqlite3_bind_text(
	    q, 6, img->properties ? img->properties : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, util_now_ms());
	rc = store_step(s, q);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
	    rc == SQLITE_CONSTRAINT_UNIQUE)
		return err_set(e, -EEXIST, "image %s already exists", img->id);
	if (rc != SQLITE_DONE)
		return store_err(s, rc, e, "storing image %s", img->id);
	return 0;
}

static int
image_from_row(sqlite3_stmt *q, struct store_image **ret, struct err *e)
{
	_cleanup_(store_image_freep) struct store_image *img = NULL;
	const char *t;
	int rc;

	img = calloc(1, sizeof(*img));
	if (img == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	t = (const char *)sqlite3_column_text(q, 0);
	if (t == NULL || strlen(t) >= UUID_STR_LEN)
		return bad_row("image id", t, e);
	memcpy(img->id, t, strlen(t) + 1);
	if ((rc = col_strdup(q, 1, &img->format, e)) < 0)
		return rc;
	img->virtual_size = sqlite3_column_int64(q, 2);
	img->file_size = sqlite3_column_int64(q, 3);
	if ((rc = col_strdup(q, 4, &img->checksum, e)) < 0 ||
	    (rc = col_strdup(q, 5, &img->properties, e)) < 0)
		return rc;
	img->created_at = sqlite3_column_int64(q, 6);
	*ret = TAKE_PTR(img);
	return 0;
}

#define IMAGE_COLS                                                   \
	"id, format, virtual_size, file_size, checksum, properties," \
	" created_at"

/* Image id (*ret owned, store_image_free). Returns 0, -EINVAL, -ENOENT,
 * -EAGAIN, -EIO. */
int
store_image_get(
    struct store *s, const char *id, struct store_image **ret, struct err *e)
{
	static const char sql[] =
	    "SELECT " IMAGE_COLS " FROM images WHERE id = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = check_uuid("image id", id, e)) < 0)
		return rc;
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	rc = store_step(s, q);
	if (rc == SQLITE_DONE)
		return err_set(e, -ENOENT, "no image %s", id);
	if (rc != SQLITE_ROW)
		return store_err(s, rc, e, "reading image %s", id);
	return image_from_row(q, ret, e);
}

/* Every image, oldest first (*ret owned, store_image_list_free).
 * Returns 0, -ENOMEM, -EAGAIN, -EIO. */
int
store_image_list(
    struct store *s, struct store_image ***ret, size_t *ret_n, struct err *e)
{
	static const char sql[] =
	    "SELECT " IMAGE_COLS " FROM images ORDER BY created_at, rowid";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	struct store_image **v = NULL, *img;
	size_t n = 0, cap = 0;
	int rc;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	while ((rc = store_step(s, q)) == SQLITE_ROW) {
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct store_image **nv = realloc(v, c * sizeof(*nv));

			if (nv == NULL) {
				store_image_list_free(v, n);
				return err_set(e, -ENOMEM, "out of memory");
			}
			v = nv;
			cap = c;
		}
		if ((rc = image_from_row(q, &img, e)) < 0) {
			store_image_list_free(v, n);
			return rc;
		}
		v[n++] = img;
	}
	if (rc != SQLITE_DONE) {
		store_image_list_free(v, n);
		return store_err(s, rc, e, "listing images");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Deletes image id unless an instance or BDM uses it, check and delete
 * in one transaction. Returns 0, -EINVAL, -ENOENT, -EBUSY, -EAGAIN, -EIO. */
int
store_image_delete(struct store *s, const char *id, struct err *e)
{
	static const char sql_used[] =
	    "SELECT EXISTS (SELECT 1 FROM instances WHERE image_ref = ?1)"
	    " OR EXISTS (SELECT 1 FROM block_device_mappings"
	    "  WHERE image_id = ?1)";
	static const char sql_del[] = "DELETE FROM images WHERE id = ?1";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *qu = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *qd = NULL;
	int rc;

	if ((rc = check_uuid("image id", id, e)) < 0)
		return rc;
	/* Check and delete in one write transaction, so that no create
	 * slips in between. */
	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((rc = store_prepare(s, sql_used, &qu, e)) < 0 ||
	    (rc = store_prepare(s, sql_del, &qd, e)) < 0)
		return rc;
	sqlite3_bind_text(qu, 1, id, -1, SQLITE_STATIC);
	if ((rc = store_step(s, qu)) != SQLITE_ROW)
		return store_err(s, rc, e, "deleting image %s", id);
	if (sqlite3_column_int(qu, 0))
		return err_set(
		    e, -EBUSY, "image %s is in use by an instance", id);
	sqlite3_bind_text(qd, 1, id, -1, SQLITE_STATIC);
	if ((rc = store_step(s, qd)) != SQLITE_DONE)
		return store_err(s, rc, e, "deleting image %s", id);
	if (sqlite3_changes(s->db) == 0)
		return err_set(e, -ENOENT, "no image %s", id);
	stmt_resetp(&qu);
	stmt_resetp(&qd);
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	return 0;
}

/* --- health ----------------------------------------------------------- */

/* PRAGMA integrity_check and foreign_key_check. Returns 0, or -EIO when
 * the database is damaged. */
int
store_integrity_check(struct store *s, struct err *e)
{
	static const char sql_ic[] = "PRAGMA integrity_check";
	static const char sql_fk[] = "PRAGMA foreign_key_check";
	_cleanup_(stmt_resetp) sqlite3_stmt *qi = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *qf = NULL;
	const char *t;
	int rc;

	if ((rc = store_prepare(s, sql_ic, &qi, e)) < 0 ||
	    (rc = store_prepare(s, sql_fk, &qf, e)) < 0)
		return rc;
	if ((rc = store_step(s, qi)) != SQLITE_ROW)
		return store_err(s, rc, e, "checking the database");
	t = (const char *)sqlite3_column_text(qi, 0);
	if (t == NULL || strcmp(t, "ok") != 0)
		return err_set(
		    e, -EIO, "the database failed its integrity check");
	rc = store_step(s, qf);
	if (rc == SQLITE_ROW)
		return err_set(
		    e, -EIO, "the database holds rows whose parent is missing");
	if (rc != SQLITE_DONE)
		return store_err(s, rc, e, "checking the database");
	return 0;
}

/* --- tombstones (rolled-back builds) ---------------------------------- */

/* 1 if the schema has rolled_back_builds (version 4), 0 if not yet (the
 * online migration holds the database at 2), or a negative errno. */
static int
has_tombstones(struct store *s, struct err *e)
{
	int rc, v;

	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	return v >= 4;
}

static int
tombstone_insert(struct store *s, const char *uuid, struct err *e)
{
	static const char sql[] =
	    "INSERT OR REPLACE INTO rolled_back_builds (uuid, rolled_back_at,"
	    " first_checked_at) VALUES (?1, ?2, NULL)";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, util_now_ms());
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(
		    s, rc, e, "recording rolled-back build %s", uuid);
	return 0;
}

/* Row delete + tombstone in one transaction. Returns 0, -EINVAL, -EAGAIN,
 * -EIO. */
int
store_instance_roll_back(struct store *s, const char *uuid, struct err *e)
{
	static const char sql[] = "DELETE FROM instances WHERE uuid = ?1";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc, has;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((has = has_tombstones(s, e)) < 0)
		return has;
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "deleting instance %s", uuid);
	stmt_resetp(&q);
	if (has && (rc = tombstone_insert(s, uuid, e)) < 0)
		return rc;
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	return 0;
}

/* Records a tombstone only. Returns 0, -EINVAL, -EAGAIN, -EIO. */
int
store_tombstone_add(struct store *s, const char *uuid, struct err *e)
{
	int rc;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if ((rc = has_tombstones(s, e)) <= 0)
		return rc;
	return tombstone_insert(s, uuid, e);
}

/* Tombstones without a row or with a deleting one. Returns 0, -EAGAIN,
 * -EIO, -ENOMEM. */
int
store_tombstone_list(
    struct store *s, char (**ret)[UUID_STR_LEN], size_t *ret_n, struct err *e)
{
	static const char sql[] =
	    "SELECT t.uuid FROM rolled_back_builds t"
	    " LEFT JOIN instances i ON i.uuid = t.uuid"
	    " WHERE i.id IS NULL OR i.state = 'deleting' ORDER BY t.uuid";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	char(*v)[UUID_STR_LEN] = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if ((rc = has_tombstones(s, e)) < 0)
		return rc;
	if (rc == 0) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	while ((rc = store_step(s, q)) == SQLITE_ROW) {
		const char *u = (const char *)sqlite3_column_text(q, 0);

		if (u == NULL || strlen(u) != UUID_STR_LEN - 1)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char(*nv)[UUID_STR_LEN] = realloc(v, nc * sizeof(*v));

			if (nv == NULL) {
				free(v);
				return err_set(e, -ENOMEM, "out of memory");
			}
			v = nv;
			cap = nc;
		}
		memcpy(v[n++], u, UUID_STR_LEN);
	}
	if (rc != SQLITE_DONE) {
		free(v);
		return store_err(s, rc, e, "listing rolled-back builds");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* 0 none, 1 tombstone without row, 2 tombstone with a deleting row (3:
 * tombstone with a live row, reported as 0). Returns 0, -EINVAL, -EAGAIN,
 * -EIO. */
int
store_tombstone_state(
    struct store *s, const char *uuid, int *ret, struct err *e)
{
	static const char sql[] =
	    "SELECT i.state FROM rolled_back_builds t"
	    " LEFT JOIN instances i ON i.uuid = t.uuid WHERE t.uuid = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	const char *st;
	int rc;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if ((rc = has_tombstones(s, e)) < 0)
		return rc;
	*ret = 0;
	if (rc == 0)
		return 0;
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	rc = store_step(s, q);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_err(
		    s, rc, e, "reading rolled-back build %s", uuid);
	st = (const char *)sqlite3_column_text(q, 0);
	if (st == NULL)
		*ret = 1;
	else if (strcmp(st, "deleting") == 0)
		*ret = 2;
	return 0;
}

/* Deletes one tombstone. Returns 0, -EINVAL, -EAGAIN, -EIO. */
int
store_tombstone_delete(struct store *s, const char *uuid, struct err *e)
{
	static const char sql[] =
	    "DELETE FROM rolled_back_builds WHERE uuid = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = check_uuid("instance id", uuid, e)) < 0)
		return rc;
	if ((rc = has_tombstones(s, e)) <= 0)
		return rc;
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, uuid, -1, SQLITE_STATIC);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(
		    s, rc, e, "deleting rolled-back build %s", uuid);
	return 0;
}

/* Marks unchecked tombstones checked and expires old ones. Returns 0,
 * -EAGAIN, -EIO. */
int
store_tombstone_sweep_done(struct store *s, int64_t now_ms,
    int64_t expire_before_ms, int *ret_expired, struct err *e)
{
	static const char sql_mark[] =
	    "UPDATE rolled_back_builds SET first_checked_at = ?1"
	    " WHERE first_checked_at IS NULL";
	static const char sql_expire[] =
	    "DELETE FROM rolled_back_builds WHERE first_checked_at < ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *x = NULL;
	int rc;

	if (ret_expired)
		*ret_expired = 0;
	if ((rc = has_tombstones(s, e)) <= 0)
		return rc;
	if ((rc = store_prepare(s, sql_mark, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, now_ms);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "marking rolled-back builds");
	if ((rc = store_prepare(s, sql_expire, &x, e)) < 0)
		return rc;
	sqlite3_bind_int64(x, 1, expire_before_ms);
	if ((rc = store_step(s, x)) != SQLITE_DONE)
		return store_err(s, rc, e, "expiring rolled-back builds");
	if (ret_expired)
		*ret_expired = sqlite3_changes(s->db);
	return 0;
}

/* --- guest data and NICs (schema 9) ------------------------------------ */

/* 1 if the schema has instance_guest and nics (STORE_GUEST_VERSION), 0
 * if not yet (held at 2 by the online migration), or a negative errno.
 * Before it, guest data is neither written nor read. */
static int
has_guest(struct store *s, struct err *e)
{
	int rc, v;

	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	return v >= STORE_GUEST_VERSION;
}

/* nics.attach_state text of st; NULL for settled. */
static const char *
nic_state_name(enum nic_attach_state st)
{
	return st == NIC_ATTACH_ATTACHING ? "attaching"
	    : st == NIC_ATTACH_DETACHING  ? "detaching"
					  : NULL;
}

/* st from nics.attach_state text t (NULL: settled); -1 if unknown. */
static int
nic_state_parse(const char *t, enum nic_attach_state *st)
{
	if (t == NULL)
		*st = NIC_ATTACH_SETTLED;
	else if (STREQ(t, "attaching"))
		*st = NIC_ATTACH_ATTACHING;
	else if (STREQ(t, "detaching"))
		*st = NIC_ATTACH_DETACHING;
	else
		return -1;
	return 0;
}

/* The attach_state of NIC port_id of instance row id into *st, inside
 * the caller's transaction. Returns 0, -ENOENT (field port_id), -EIO. */
static int
nic_state_get(struct store *s, int64_t id, const char *instance_uuid,
    const char *port_id, enum nic_attach_state *st, struct err *e)
{
	static const char sql[] = "SELECT attach_state FROM nics"
				  " WHERE instance_id = ?1 AND port_id = ?2";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	const char *t;
	int rc;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_text(q, 2, port_id, -1, SQLITE_STATIC);
	rc = store_step(s, q);
	if (rc == SQLITE_DONE)
		return err_set_field(e, -ENOENT, "port_id",
		    "instance %s has no interface %s", instance_uuid, port_id);
	if (rc != SQLITE_ROW)
		return store_err(s, rc, e, "reading NIC %s", port_id);
	t = (const char *)sqlite3_column_text(q, 0);
	if (nic_state_parse(t, st) < 0)
		return bad_row("NIC attach_state", t, e);
	return 0;
}

/* -EEXIST naming field (prefix + ".port_id" / ".mac") when port_id or mac
 * of n is on any NIC of the node. Inside the writing transaction (the
 * write lock is held), so the answer holds until the commit; the UNIQUE
 * constraints stay the last word. */
static int
nic_taken(
    struct store *s, const struct nic *n, const char *prefix, struct err *e)
{
	static const char sql[] = "SELECT port_id = ?1, mac = ?2 FROM nics"
				  " WHERE port_id = ?1 OR mac = ?2 LIMIT 1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	char field[96];
	int rc;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, n->port_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, n->mac, -1, SQLITE_STATIC);
	rc = store_step(s, q);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_err(s, rc, e, "reading NICs");
	if (sqlite3_column_int(q, 0)) {
		(void)snprintf(field, sizeof(field), "%s%sport_id", prefix,
		    prefix[0] ? "." : "");
		return err_set_field(e, -EEXIST, field,
		    "field '%s': port %s is already used on this node", field,
		    n->port_id);
	}
	(void)snprintf(
	    field, sizeof(field), "%s%smac", prefix, prefix[0] ? "." : "");
	return err_set_field(e, -EEXIST, field,
	    "field '%s': MAC %s is already used on this node", field, n->mac);
}

/* Writes NIC n of instance row id at position pos (ips and dns as JSON
 * arrays built by SQLite's json functions: no JSON library here). */
static int
nic_insert_row(struct store *s, int64_t id, int64_t pos, const struct nic *n,
    const char *prefix, struct err *e)
{
	static const char sql[] =
	    "INSERT INTO nics (instance_id, position, port_id, mac, bridge,"
	    " network, model, mtu, tag, attach_state)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	static const char sql_ip[] =
	    "UPDATE nics SET ips = json_insert(ips, '$[#]',"
	    " json_object('address', ?2, 'gateway', ?3)) WHERE id = ?1";
	static const char sql_dns[] =
	    "UPDATE nics SET dns = json_insert(dns, '$[#]', ?2) WHERE id = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int64_t nid;
	int rc;

	if (!util_uuid_is_canonical(n->port_id) || strlen(n->mac) != 17)
		return err_set_field(e, -EINVAL, prefix[0] ? prefix : "port_id",
		    "a NIC without its port_id or MAC");
	if ((rc = nic_taken(s, n, prefix, e)) < 0)
		return rc;
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, pos);
	sqlite3_bind_text(q, 3, n->port_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, n->mac, -1, SQLITE_STATIC);
	bind_text_or_null(q, 5, n->bridge);
	bind_text_or_null(q, 6, n->network);
	sqlite3_bind_text(
	    q, 7, nic_model_to_string(n->model), -1, SQLITE_STATIC);
	bind_int_or_null(q, 8, n->mtu, 0);
	bind_text_or_null(q, 9, n->tag);
	bind_text_or_null(q, 10, nic_state_name(n->attach_state));
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "storing NIC %s", n->port_id);
	nid = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; i < n->n_ips + n->n_dns; i++) {
		_cleanup_(stmt_resetp) sqlite3_stmt *u = NULL;
		bool ip = i < n->n_ips;

		if ((rc = store_prepare(s, ip ? sql_ip : sql_dns, &u, e)) < 0)
			return rc;
		sqlite3_bind_int64(u, 1, nid);
		if (ip) {
			sqlite3_bind_text(
			    u, 2, n->ips[i].address, -1, SQLITE_STATIC);
			bind_text_or_null(u, 3, n->ips[i].gateway);
		} else
			sqlite3_bind_text(
			    u, 2, n->dns[i - n->n_ips], -1, SQLITE_STATIC);
		if ((rc = store_step(s, u)) != SQLITE_DONE)
			return store_err(
			    s, rc, e, "storing NIC %s", n->port_id);
	}
	return 0;
}

/* Writes the guest data and NICs of instance row id (inside the
 * create's transaction). */
static int
guest_insert_rows(
    struct store *s, int64_t id, const struct guest_data *g, struct err *e)
{
	static const char sql[] =
	    "INSERT INTO instance_guest (instance_id, hostname, user_data)"
	    " VALUES (?1, ?2, ?3)";
	static const char sql_key[] =
	    "UPDATE instance_guest SET keys = json_insert(keys, '$[#]',"
	    " json_object('name', ?2, 'type', ?3, 'data', ?4))"
	    " WHERE instance_id = ?1";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, id);
	bind_text_or_null(q, 2, g->hostname);
	bind_text_or_null(q, 3, g->user_data);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "storing guest data");
	for (size_t i = 0; i < g->n_keys; i++) {
		_cleanup_(stmt_resetp) sqlite3_stmt *k = NULL;

		if ((rc = store_prepare(s, sql_key, &k, e)) < 0)
			return rc;
		sqlite3_bind_int64(k, 1, id);
		sqlite3_bind_text(k, 2, g->keys[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(k, 3, g->keys[i].type, -1, SQLITE_STATIC);
		sqlite3_bind_text(k, 4, g->keys[i].data, -1, SQLITE_STATIC);
		if ((rc = store_step(s, k)) != SQLITE_DONE)
			return store_err(s, rc, e, "storing guest keys");
	}
	for (size_t i = 0; i < g->n_nics; i++) {
		char prefix[32];

		(void)snprintf(prefix, sizeof(prefix), "networks[%zu]", i);
		if ((rc = nic_insert_row(
			 s, id, (int64_t)i, &g->nics[i], prefix, e)) < 0)
			return rc;
	}
	return 0;
}

/* Grows the array *v of n elements of size bytes by one zeroed element
 * (guest_load_all's lists are short: one realloc each). */
static int
grow(void **v, size_t n, size_t size, struct err *e)
{
	void *p = realloc(*v, (n + 1) * size);

	if (p == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	memset((char *)p + n * size, 0, size);
	*v = p;
	return 0;
}

/* The index of row id in ids[0..n) (ascending), or -1. */
static ssize_t
id_index(const int64_t *ids, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && ids[lo] == id ? (ssize_t)lo : -1;
}

/* The addresses (ips) or DNS servers (dns) of NIC row nid into n. */
static int
nic_load_lists(
    struct store *s, int64_t nid, struct nic *n, bool ips, struct err *e)
{
	static const char sql_ip[] =
	    "SELECT json_extract(j.value, '$.address'),"
	    " json_extract(j.value, '$.gateway')"
	    " FROM nics n, json_each(n.ips) j WHERE n.id = ?1 ORDER BY j.key";
	static const char sql_dns[] =
	    "SELECT j.value FROM nics n, json_each(n.dns) j"
	    " WHERE n.id = ?1 ORDER BY j.key";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = store_prepare(s, ips ? sql_ip : sql_dns, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, nid);
	while ((rc = store_step(s, q)) == SQLITE_ROW) {
		if (ips) {
			struct nic_ip *ip;

			if ((rc = grow((void **)&n->ips, n->n_ips, sizeof(*ip),
				 e)) < 0)
				return rc;
			ip = &n->ips[n->n_ips++];
			if ((rc = col_strdup(q, 0, &ip->address, e)) < 0 ||
			    (rc = col_strdup(q, 1, &ip->gateway, e)) < 0)
				return rc;
		} else {
			if ((rc = grow((void **)&n->dns, n->n_dns,
				 sizeof(*n->dns), e)) < 0)
				return rc;
			if ((rc = col_strdup(q, 0, &n->dns[n->n_dns++], e)) < 0)
				return rc;
		}
	}
	if (rc != SQLITE_DONE)
		return store_err(s, rc, e, "reading NIC %s", n->port_id);
	return 0;
}

/* One nics row (columns of guest_load_all's sql_n) onto the end of g. */
static int
nic_from_row(
    struct store *s, sqlite3_stmt *q, struct guest_data *g, struct err *e)
{
	int64_t nid = sqlite3_column_int64(q, 1);
	const char *t;
	struct nic *n;
	int rc;

	if ((rc = grow((void **)&g->nics, g->n_nics, sizeof(*n), e)) < 0)
		return rc;
	n = &g->nics[g->n_nics++];
	t = (const char *)sqlite3_column_text(q, 2);
	if (t == NULL || util_uuid_normalize(t, n->port_id) < 0)
		return bad_row("NIC port_id", t, e);
	t = (const char *)sqlite3_column_text(q, 3);
	if (t == NULL || strlen(t) != NIC_MAC_LEN - 1)
		return bad_row("NIC mac", t, e);
	memcpy(n->mac, t, NIC_MAC_LEN);
	t = (const char *)sqlite3_column_text(q, 6);
	if (nic_model_from_string(t, &n->model) < 0)
		return bad_row("NIC model", t, e);
	n->mtu = sqlite3_column_int(q, 7);
	if ((rc = col_strdup(q, 4, &n->bridge, e)) < 0 ||
	    (rc = col_strdup(q, 5, &n->network, e)) < 0 ||
	    (rc = col_strdup(q, 8, &n->tag, e)) < 0)
		return rc;
	t = (const char *)sqlite3_column_text(q, 11);
	if (nic_state_parse(t, &n->attach_state) < 0)
		return bad_row("NIC attach_state", t, e);
	(void)snprintf(
	    n->target_dev, NIC_TARGET_DEV_LEN, "tap%.11s", n->port_id);
	/* most NICs have no static address: no query then */
	if (sqlite3_column_int(q, 9) &&
	    (rc = nic_load_lists(s, nid, n, true, e)) < 0)
		return rc;
	if (sqlite3_column_int(q, 10) &&
	    (rc = nic_load_lists(s, nid, n, false, e)) < 0)
		return rc;
	return 0;
}

/*
 * Loads the guest data and NICs of the instances v[0..n) whose row ids
 * are ids[0..n), ascending and every id between the first and the last
 * among them (a page of the list, or one instance), inside the caller's
 * read transaction: three range queries whatever n is (the keys one
 * only over rows that have keys), plus one per NIC with addresses.
 */
static int
guest_load_all(struct store *s, struct instance **v, const int64_t *ids,
    size_t n, struct err *e)
{
	static const char sql_g[] =
	    "SELECT instance_id, hostname, user_data FROM instance_guest"
	    " WHERE instance_id BETWEEN ?1 AND ?2";
	static const char sql_k[] =
	    "SELECT g.instance_id, json_extract(k.value, '$.name'),"
	    " json_extract(k.value, '$.type'), json_extract(k.value, '$.data')"
	    " FROM instance_guest g, json_each(g.keys) k"
	    " WHERE g.instance_id BETWEEN ?1 AND ?2 AND g.keys <> '[]'"
	    " ORDER BY g.instance_id, k.key";
	static const char sql_n[] =
	    "SELECT instance_id, id, port_id, mac, bridge, network, model, mtu,"
	    " tag, ips <> '[]', dns <> '[]', attach_state FROM nics"
	    " WHERE instance_id BETWEEN ?1 AND ?2"
	    " ORDER BY instance_id, position";
	int rc;

	if (n == 0 || (rc = has_guest(s, e)) <= 0)
		return n == 0 ? 0 : rc;
	for (int pass = 0; pass < 3; pass++) {
		_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
		const char *sql = pass == 0 ? sql_g : pass == 1 ? sql_k : sql_n;

		if ((rc = store_prepare(s, sql, &q, e)) < 0)
			return rc;
		sqlite3_bind_int64(q, 1, ids[0]);
		sqlite3_bind_int64(q, 2, ids[n - 1]);
		while ((rc = store_step(s, q)) == SQLITE_ROW) {
			ssize_t i =
			    id_index(ids, n, sqlite3_column_int64(q, 0));
			struct guest_data *g;
			struct guest_key *k;

			if (i < 0)
				continue;
			g = &v[i]->guest;
			if (pass == 0) {
				if ((rc = col_strdup(q, 1, &g->hostname, e)) <
					0 ||
				    (rc = col_strdup(q, 2, &g->user_data, e)) <
					0)
					return rc;
			} else if (pass == 2) {
				if ((rc = nic_from_row(s, q, g, e)) < 0)
					return rc;
			} else {
				if ((rc = grow((void **)&g->keys, g->n_keys,
					 sizeof(*k), e)) < 0)
					return rc;
				k = &g->keys[g->n_keys++];
				if ((rc = col_strdup(q, 1, &k->name, e)) < 0 ||
				    (rc = col_strdup(q, 2, &k->type, e)) < 0 ||
				    (rc = col_strdup(q, 3, &k->data, e)) < 0)
					return rc;
			}
		}
		if (rc != SQLITE_DONE)
			return store_err(s, rc, e, "reading guest data");
	}
	return 0;
}

/* Adds NIC n (port_id, mac and target_dev filled; its attach_state as
 * given) to the end of an instance's NICs and bumps its generation, in
 * one transaction. Writes no event (see store_nic_set_attach_state). Returns
 * 0, -EINVAL, -ENOENT, -EEXIST (port_id or mac used on the node, field
 * "port_id" / "mac"), -EAGAIN, -EIO. */
int
store_nic_insert(struct store *s, const char *instance_uuid,
    const struct nic *n, struct err *e)
{
	static const char sql_pos[] =
	    "SELECT coalesce(max(position) + 1, 0) FROM nics"
	    " WHERE instance_id = ?1";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int64_t id, pos;
	int rc;

	if ((rc = check_uuid("instance id", instance_uuid, e)) < 0)
		return rc;
	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((rc = has_guest(s, e)) <= 0)
		return rc < 0
		    ? rc
		    : err_set(e, -EAGAIN, "the database is not migrated yet");
	if ((rc = instance_row_id(s, instance_uuid, &id, e)) < 0 ||
	    (rc = store_prepare(s, sql_pos, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, id);
	if ((rc = store_step(s, q)) != SQLITE_ROW)
		return store_err(s, rc, e, "reading NICs");
	pos = sqlite3_column_int64(q, 0);
	stmt_resetp(&q);
	/* no interface.attached here: compute writes the row attaching,
	 * and the event comes with store_nic_set_attach_state's settle,
	 * once libvirt confirmed (as volume.attached) */
	if ((rc = nic_insert_row(s, id, pos, n, "", e)) < 0 ||
	    (rc = instance_touch(s, id, e)) < 0)
		return rc;
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	return 0;
}

/* Removes NIC port_id of an instance and bumps its generation. Returns
 * 0, -EINVAL, -ENOENT (no such instance, or no such NIC on it), -EAGAIN,
 * -EIO. */
int
store_nic_delete(struct store *s, const char *instance_uuid,
    const char *port_id, struct err *e)
{
	static const char sql[] =
	    "DELETE FROM nics WHERE instance_id = ?1 AND port_id = ?2";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	enum nic_attach_state st;
	int64_t id;
	int rc;

	if ((rc = check_uuid("instance id", instance_uuid, e)) < 0 ||
	    (rc = check_uuid("port_id", port_id, e)) < 0)
		return rc;
	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((rc = has_guest(s, e)) <= 0)
		return rc < 0 ? rc
			      : err_set(e, -ENOENT, "no interface %s", port_id);
	if ((rc = instance_row_id(s, instance_uuid, &id, e)) < 0 ||
	    (rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	if ((rc = nic_state_get(s, id, instance_uuid, port_id, &st, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_text(q, 2, port_id, -1, SQLITE_STATIC);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "deleting NIC %s", port_id);
	if (sqlite3_changes(s->db) == 0)
		return err_set_field(e, -ENOENT, "port_id",
		    "instance %s has no interface %s", instance_uuid, port_id);
	/* an attach that never completed had no interface.attached: its
	 * row goes without interface.detached either */
	if ((rc = instance_touch(s, id, e)) < 0 ||
	    (st != NIC_ATTACH_ATTACHING &&
		(rc = store_event_append_tx(s, "interface.detached",
		     instance_uuid,
		     &(struct store_event_ref){.port_id = port_id}, e)) < 0))
		return rc;
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	return 0;
}

/* Sets the attach_state of NIC port_id of an instance and bumps its
 * generation; settling an attaching NIC writes interface.attached in the
 * same transaction (the attach is confirmed only then). Returns 0,
 * -EINVAL, -ENOENT (no such instance or NIC), -EAGAIN, -EIO. */
int
store_nic_set_attach_state(struct store *s, const char *instance_uuid,
    const char *port_id, enum nic_attach_state st, struct err *e)
{
	static const char sql[] = "UPDATE nics SET attach_state = ?3"
				  " WHERE instance_id = ?1 AND port_id = ?2";
	_cleanup_(tx_rollbackp) struct store *tx = NULL;
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	enum nic_attach_state was;
	int64_t id;
	int rc;

	if ((rc = check_uuid("instance id", instance_uuid, e)) < 0 ||
	    (rc = check_uuid("port_id", port_id, e)) < 0)
		return rc;
	if (st != NIC_ATTACH_SETTLED && nic_state_name(st) == NULL)
		return err_set(e, -EINVAL, "unknown attach_state %d", (int)st);
	if ((rc = tx_begin(s, true, e)) < 0)
		return rc;
	tx = s;
	if ((rc = has_guest(s, e)) <= 0)
		return rc < 0 ? rc
			      : err_set(e, -ENOENT, "no interface %s", port_id);
	if ((rc = instance_row_id(s, instance_uuid, &id, e)) < 0 ||
	    (rc = nic_state_get(s, id, instance_uuid, port_id, &was, e)) < 0 ||
	    (rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_text(q, 2, port_id, -1, SQLITE_STATIC);
	bind_text_or_null(q, 3, nic_state_name(st));
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "updating NIC %s", port_id);
	if ((rc = instance_touch(s, id, e)) < 0 ||
	    (st == NIC_ATTACH_SETTLED && was == NIC_ATTACH_ATTACHING &&
		(rc = store_event_append_tx(s, "interface.attached",
		     instance_uuid,
		     &(struct store_event_ref){.port_id = port_id}, e)) < 0))
		return rc;
	if ((rc = tx_commit(s, e)) < 0)
		return rc;
	tx = NULL;
	return 0;
}

/* --- events (design.md "Events") ----------------------------------------- */

/* Sets the process's post-commit hook (see store.h). */
void
store_event_hook_set(void (*fn)(void *arg), void *arg)
{
	(void)pthread_mutex_lock(&store_write_lock);
	store_event_hook = fn;
	store_event_hook_arg = arg;
	(void)pthread_mutex_unlock(&store_write_lock);
}

/* After a commit (the process's write lock still held, so hooks run in
 * commit order, which is id order): tells the hook when the transaction
 * wrote events. */
static void
events_committed(struct store *s)
{
	if (s->ev_pending && store_event_hook)
		store_event_hook(store_event_hook_arg);
	s->ev_pending = false;
}

/* See store.h. */
void
store_set_cause(struct store *s, enum store_cause cause)
{
	if ((int)cause < 0 || cause >= ELEMENTSOF(cause_names))
		cause = STORE_CAUSE_API;
	s->cause = cause;
}

/* 1 if the schema has the events table, 0 if not (still at 2), or a
 * negative errno. */
static int
has_events(struct store *s, struct err *e)
{
	int rc, v;

	if ((rc = store_user_version(s, &v, e)) < 0)
		return rc;
	return v >= STORE_EVENTS_VERSION;
}

/* See store.h. */
int
store_event_append_tx(struct store *s, const char *type,
    const char *instance_uuid, const struct store_event_ref *ref, struct err *e)
{
	/* the instance's state and generation as this transaction leaves
	 * them (NULL when the row is gone) */
	static const char sql[] =
	    "INSERT INTO events (type, instance_uuid, state, generation,"
	    " cause, at, volume_id, port_id)"
	    " SELECT ?1, ?2, i.state, i.generation, hyperlet_event_cause(),"
	    " ?3, ?4, ?5 FROM (SELECT 1) LEFT JOIN instances i"
	    " ON i.uuid = ?2";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc, has;

	if (type == NULL || type[0] == '\0' || strlen(type) > 40)
		return err_set(e, -EINVAL, "an event needs a type");
	if ((rc = check_uuid("instance id", instance_uuid, e)) < 0)
		return rc;
	if ((has = has_events(s, e)) <= 0)
		return has;
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_text(q, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, instance_uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, util_now_ms());
	bind_text_or_null(q, 4, ref ? ref->volume_id : NULL);
	bind_text_or_null(q, 5, ref ? ref->port_id : NULL);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "recording an event");
	return 0;
}

/* See store.h. */
int
store_events_list(struct store *s, int64_t after, size_t limit,
    const char *instance_uuid, struct store_event **ret, size_t *ret_n,
    struct err *e)
{
	static const char sql[] =
	    "SELECT id, type, instance_uuid, state, generation, cause, at,"
	    " volume_id, port_id FROM events WHERE id > ?1"
	    " ORDER BY id LIMIT ?2";
	static const char sql_inst[] =
	    "SELECT id, type, instance_uuid, state, generation, cause, at,"
	    " volume_id, port_id FROM events"
	    " WHERE instance_uuid = ?3 AND id > ?1 ORDER BY id LIMIT ?2";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	_cleanup_free_ struct store_event *v = NULL;
	size_t n = 0, cap = 0;
	int rc, has;

	if (instance_uuid &&
	    (rc = check_uuid("instance", instance_uuid, e)) < 0)
		return rc;
	if (limit == 0 || limit > 100000)
		return err_set(e, -EINVAL, "limit out of range");
	if ((has = has_events(s, e)) < 0)
		return has;
	if (has) {
		if ((rc = store_prepare(
			 s, instance_uuid ? sql_inst : sql, &q, e)) < 0)
			return rc;
		sqlite3_bind_int64(q, 1, after);
		sqlite3_bind_int64(q, 2, (int64_t)limit);
		if (instance_uuid)
			sqlite3_bind_text(
			    q, 3, instance_uuid, -1, SQLITE_STATIC);
		while ((rc = store_step(s, q)) == SQLITE_ROW && n < limit) {
			struct store_event *ev;

			/* grown as rows come: the hub asks for a batch of
			 * 256 and mostly gets one or two */
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 8;
				struct store_event *nv =
				    realloc(v, nc * sizeof(*v));

				if (nv == NULL)
					return err_set(
					    e, -ENOMEM, "out of memory");
				v = nv;
				cap = nc;
			}
			ev = &v[n++];
			memset(ev, 0, sizeof(*ev));

			ev->id = sqlite3_column_int64(q, 0);
			copy_col(ev->type, sizeof(ev->type), q, 1);
			copy_col(ev->instance, sizeof(ev->instance), q, 2);
			copy_col(ev->state, sizeof(ev->state), q, 3);
			ev->generation = sqlite3_column_int64(q, 4);
			copy_col(ev->cause, sizeof(ev->cause), q, 5);
			ev->at_ms = sqlite3_column_int64(q, 6);
			copy_col(ev->volume_id, sizeof(ev->volume_id), q, 7);
			copy_col(ev->port_id, sizeof(ev->port_id), q, 8);
		}
		if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			return store_err(s, rc, e, "reading events");
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* See store.h. */
int
store_events_bounds(
    struct store *s, int64_t *ret_oldest, int64_t *ret_newest, struct err *e)
{
	static const char sql[] =
	    "SELECT (SELECT min(id) FROM events),"
	    " (SELECT seq FROM sqlite_sequence WHERE name = 'events')";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int64_t newest;
	int rc, has;

	if ((has = has_events(s, e)) < 0)
		return has;
	if (!has) {
		*ret_oldest = 1;
		*ret_newest = 0;
		return 0;
	}
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	if ((rc = store_step(s, q)) != SQLITE_ROW)
		return store_err(s, rc, e, "reading events");
	newest = sqlite3_column_int64(q, 1); /* NULL (no event yet): 0 */
	*ret_oldest = sqlite3_column_type(q, 0) == SQLITE_NULL
	    ? newest + 1
	    : sqlite3_column_int64(q, 0);
	*ret_newest = newest;
	return 0;
}

/* See store.h. */
int
store_events_prune(struct store *s, int64_t keep, int max_rows,
    int *ret_deleted, struct err *e)
{
	static const char sql[] =
	    "DELETE FROM events WHERE id IN (SELECT id FROM events"
	    " WHERE id <= (SELECT seq FROM sqlite_sequence"
	    "  WHERE name = 'events') - ?1 ORDER BY id LIMIT ?2)";
	_cleanup_(stmt_resetp) sqlite3_stmt *q = NULL;
	int rc, has;

	if (keep < 1 || max_rows < 1)
		return err_set(e, -EINVAL, "retention out of range");
	if ((has = has_events(s, e)) <= 0) {
		if (has == 0 && ret_deleted)
			*ret_deleted = 0;
		return has;
	}
	if ((rc = store_prepare(s, sql, &q, e)) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, keep);
	sqlite3_bind_int(q, 2, max_rows);
	if ((rc = store_step(s, q)) != SQLITE_DONE)
		return store_err(s, rc, e, "pruning events");
	if (ret_deleted)
		*ret_deleted = sqlite3_changes(s->db);
	return 0;
}
