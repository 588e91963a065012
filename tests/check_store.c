/*
 * check_store: the SQLite store against real database files in a
 * temporary directory. Instances come from JSON through the library's own
 * path (bdm_json_parse_create -> bdm_instance_prepare -> blockinfo_build).
 * The migration tests build a version-1 database from version 1's DDL,
 * copied here verbatim as history (never edit it), fill it with rows and
 * let the store migrate it. The test itself uses sqlite3 directly only to
 * build old or damaged databases and to look behind the store's back.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "store.h"
#include "testutil.h"

/* Version 1 of the schema as released: the history the project descends
 * from (block_device_mappings has no uuid). */
static const char v1_ddl[] =
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

/* What taking a database back before STORE_USAGE_VERSION removes. */
#define DROP_USAGE                                           \
	"DROP TRIGGER IF EXISTS node_usage_instance_insert;" \
	"DROP TRIGGER IF EXISTS node_usage_instance_delete;" \
	"DROP TRIGGER IF EXISTS node_usage_instance_resize;" \
	"DROP TRIGGER IF EXISTS node_usage_bdm_insert;"      \
	"DROP TRIGGER IF EXISTS node_usage_bdm_delete;"      \
	"DROP TRIGGER IF EXISTS node_usage_bdm_update;"      \
	"DROP TABLE IF EXISTS node_usage;"

#define IMAGE_ID "5a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
#define VOLUME_ID "7d1e2f3a-4b5c-4d6e-9f0a-1b2c3d4e5f6a"

static char *tmpdir;
static char dbpath[4096];

static void
setup(void)
{
	tmpdir = testutil_mkdtemp("check_store");
	ck_assert_ptr_nonnull(tmpdir);
	(void)snprintf(dbpath, sizeof(dbpath), "%s/hyperlet.db", tmpdir);
}

static void
teardown(void)
{
	testutil_rm_rf(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
}

/* A create request with an image root, the flavor's ephemeral and swap,
 * and an attached volume: four BDMs after prepare. */
static const char create_body[] =
    "{\"name\": \"web-1\","
    " \"flavor\": {\"vcpus\": 2, \"memory_mb\": 2048, \"root_gb\": 10,"
    "  \"ephemeral_gb\": 20, \"swap\": 1024},"
    " \"imageRef\": \"" IMAGE_ID "\","
    " \"metadata\": {\"role\": \"web\"},"
    " \"block_device_mapping_v2\": ["
    "  {\"boot_index\": 0, \"source_type\": \"image\","
    "   \"destination_type\": \"local\", \"uuid\": \"" IMAGE_ID "\"},"
    "  {\"boot_index\": -1, \"source_type\": \"blank\","
    "   \"destination_type\": \"local\", \"guest_format\": \"ext4\","
    "   \"volume_size\": 20, \"tag\": \"data\"},"
    "  {\"boot_index\": -1, \"source_type\": \"blank\","
    "   \"destination_type\": \"local\", \"guest_format\": \"swap\","
    "   \"volume_size\": 1024},"
    "  {\"boot_index\": -1, \"source_type\": \"volume\","
    "   \"destination_type\": \"volume\", \"uuid\": \"" VOLUME_ID "\","
    "   \"connection_info\": {\"driver_volume_type\": \"file\","
    "    \"data\": {\"device_path\": \"/var/lib/vol/a.img\"}}}"
    " ]}";

/* An instance built the way the API builds it. */
static struct instance *
make_instance(const char *body)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	struct err e = {0};

	ck_assert_msg(bdm_json_parse_create(body, strlen(body), &inst, &e) == 0,
	    "parse: %s", e.msg);
	ck_assert_msg(
	    bdm_instance_prepare(inst, &lim, &e) == 0, "prepare: %s", e.msg);
	ck_assert_msg(
	    blockinfo_build(inst, &lim, &bi, &e) == 0, "blockinfo: %s", e.msg);
	blockinfo_free(bi);
	return inst;
}

static struct store *
open_store(void)
{
	struct store *s = NULL;
	struct err e = {0};

	ck_assert_msg(store_open(dbpath, NULL, &s, &e) == 0, "%s", e.msg);
	return s;
}

/* A raw connection for building old databases and looking behind the
 * store's back. */
static sqlite3 *
raw_open(void)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void
raw_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK,
	    "%s: %s", sql, msg ? msg : "");
}

static int64_t
raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *q = NULL;
	int64_t v;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return v;
}

static void
assert_bdm_equal(const struct bdm *a, const struct bdm *b)
{
#define SEQ(x, y) ck_assert_str_eq((x) ? (x) : "(null)", (y) ? (y) : "(null)")
	ck_assert_str_eq(a->uuid, b->uuid);
	ck_assert_int_eq(a->source_type, b->source_type);
	ck_assert_int_eq(a->destination_type, b->destination_type);
	SEQ(a->guest_format, b->guest_format);
	ck_assert_int_eq(a->boot_index, b->boot_index);
	ck_assert_int_eq(a->device_type, b->device_type);
	ck_assert_int_eq(a->disk_bus, b->disk_bus);
	SEQ(a->device_name, b->device_name);
	ck_assert_int_eq(a->volume_size, b->volume_size);
	SEQ(a->image_id, b->image_id);
	SEQ(a->volume_id, b->volume_id);
	SEQ(a->snapshot_id, b->snapshot_id);
	SEQ(a->tag, b->tag);
	ck_assert_int_eq(a->delete_on_termination, b->delete_on_termination);
	SEQ(a->connection_info, b->connection_info);
}

static void
assert_instance_equal(const struct instance *a, const struct instance *b)
{
	size_t i;

	ck_assert_str_eq(a->uuid, b->uuid);
	SEQ(a->name, b->name);
	ck_assert_int_eq(a->flavor.vcpus, b->flavor.vcpus);
	ck_assert_int_eq(a->flavor.memory_mb, b->flavor.memory_mb);
	ck_assert_int_eq(a->flavor.root_gb, b->flavor.root_gb);
	ck_assert_int_eq(a->flavor.ephemeral_gb, b->flavor.ephemeral_gb);
	ck_assert_int_eq(a->flavor.swap, b->flavor.swap);
	SEQ(a->image_ref, b->image_ref);
	SEQ(a->props.hw_disk_bus, b->props.hw_disk_bus);
	SEQ(a->props.hw_cdrom_bus, b->props.hw_cdrom_bus);
	SEQ(a->props.hw_scsi_model, b->props.hw_scsi_model);
	SEQ(a->props.hw_machine_type, b->props.hw_machine_type);
	SEQ(a->metadata, b->metadata);
	ck_assert_int_eq(a->config_drive, b->config_drive);
	ck_assert_uint_eq(a->n_bdms, b->n_bdms);
	for (i = 0; i < a->n_bdms; i++)
		assert_bdm_equal(&a->bdms[i], &b->bdms[i]);
#undef SEQ
}

/* ---- open and migrations --------------------------------------------- */

START_TEST(test_store_open_creates_the_current_schema_in_wal_mode)
{
	struct store *s = open_store();
	struct err e = {0};
	sqlite3 *db;
	int v = -1;

	ck_assert_int_eq(store_schema_version(s, &v, &e), 0);
	ck_assert_int_eq(v, STORE_SCHEMA_VERSION);
	ck_assert_int_eq(store_integrity_check(s, &e), 0);
	s = store_close(s);
	db = raw_open();
	ck_assert_int_eq(
	    raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	{
		sqlite3_stmt *q = NULL;

		sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		ck_assert_str_eq(
		    (const char *)sqlite3_column_text(q, 0), "wal");
		sqlite3_finalize(q);
	}
	sqlite3_close(db);
	/* Opening again changes nothing. */
	s = open_store();
	ck_assert_int_eq(store_migrate(s, &e), STORE_SCHEMA_VERSION);
	store_close(s);
}
END_TEST

/* Only the migrating open creates the file: a thread's connection opened
 * after the database was moved away (check_http's 503) must not leave an
 * empty database where the real one was. */
START_TEST(test_store_open_without_migrating_never_creates_the_file)
{
	struct store *s = NULL;
	struct err e = {0};

	ck_assert_int_eq(store_open(dbpath,
			     &(struct store_opts){.no_migrate = true}, &s, &e),
	    -ENOENT);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(e.msg, dbpath), "%s", e.msg);
	ck_assert_int_eq(access(dbpath, F_OK), -1);
	/* made by a migrating open, it is opened as any other */
	s = open_store();
	s = store_close(s);
	err_clear(&e);
	ck_assert_int_eq(store_open(dbpath,
			     &(struct store_opts){.no_migrate = true}, &s, &e),
	    0);
	store_close(s);
}
END_TEST

START_TEST(test_store_open_refuses_a_database_from_a_future_version)
{
	struct store *s = NULL;
	struct err e = {0};
	sqlite3 *db;
	int rc;

	db = raw_open();
	raw_exec(db, "CREATE TABLE future (x); PRAGMA user_version = 99;");
	sqlite3_close(db);

	rc = store_open(dbpath, NULL, &s, &e);
	ck_assert_int_eq(rc, -EIO);
	ck_assert_ptr_null(s);
	ck_assert_msg(
	    strstr(e.msg, "newer") && strstr(e.msg, "99"), "%s", e.msg);

	/* Refused, never "repaired": version, tables and journal mode as
	 * they were. */
	db = raw_open();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), 99);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM sqlite_schema"), 1);
	{
		sqlite3_stmt *q = NULL;

		sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		ck_assert_str_eq(
		    (const char *)sqlite3_column_text(q, 0), "delete");
		sqlite3_finalize(q);
	}
	sqlite3_close(db);

	/* no_migrate refuses it as well. */
	err_clear(&e);
	ck_assert_int_eq(store_open(dbpath,
			     &(struct store_opts){.no_migrate = true}, &s, &e),
	    -EIO);
}
END_TEST

/* Builds a version-1 database holding n_inst instances with bdms_each
 * BDMs each (no uuids: version 1 had none). */
static void
build_v1(int n_inst, int bdms_each)
{
	sqlite3 *db = raw_open();
	sqlite3_stmt *qi = NULL, *qb = NULL;
	char uuid[UUID_STR_LEN];
	int i, j;

	raw_exec(db, v1_ddl);
	raw_exec(db, "BEGIN");
	ck_assert_int_eq(
	    sqlite3_prepare_v2(db,
		"INSERT INTO instances (uuid, name, vcpus, memory_mb, root_gb,"
		" ephemeral_gb, swap_mb, image_ref, metadata, state,"
		" created_at, updated_at)"
		" VALUES (?1, ?2, 1, 512, 1, 0, 0, ?3, '{}', 'running', ?4, ?4)",
		-1, &qi, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(
	    sqlite3_prepare_v2(db,
		"INSERT INTO block_device_mappings (instance_id, source_type,"
		" destination_type, boot_index, device_type, disk_bus,"
		" device_name, volume_size, image_id, volume_id,"
		" delete_on_termination, connection_info)"
		" VALUES (?1, ?2, ?3, ?4, 'disk', 'virtio', ?5, ?6, ?7, ?8,"
		" ?9, ?10)",
		-1, &qb, NULL),
	    SQLITE_OK);
	for (i = 0; i < n_inst; i++) {
		char name[32], dev[32];
		int64_t id;

		util_uuid_generate(uuid);
		(void)snprintf(name, sizeof(name), "old-%d", i);
		sqlite3_bind_text(qi, 1, uuid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(qi, 2, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(qi, 3, IMAGE_ID, -1, SQLITE_STATIC);
		sqlite3_bind_int64(qi, 4, 1000 + i);
		ck_assert_int_eq(sqlite3_step(qi), SQLITE_DONE);
		sqlite3_reset(qi);
		id = sqlite3_last_insert_rowid(db);
		for (j = 0; j < bdms_each; j++) {
			char vol[UUID_STR_LEN];

			(void)snprintf(dev, sizeof(dev), "/dev/vd%c", 'a' + j);
			sqlite3_bind_int64(qb, 1, id);
			if (j == 0) {
				sqlite3_bind_text(
				    qb, 2, "image", -1, SQLITE_STATIC);
				sqlite3_bind_text(
				    qb, 3, "local", -1, SQLITE_STATIC);
				sqlite3_bind_int(qb, 4, 0);
				sqlite3_bind_text(
				    qb, 7, IMAGE_ID, -1, SQLITE_STATIC);
				sqlite3_bind_int(qb, 9, 1);
			} else {
				util_uuid_generate(vol);
				sqlite3_bind_text(
				    qb, 2, "volume", -1, SQLITE_STATIC);
				sqlite3_bind_text(
				    qb, 3, "volume", -1, SQLITE_STATIC);
				sqlite3_bind_null(qb, 4);
				sqlite3_bind_int(qb, 6, 1);
				sqlite3_bind_text(
				    qb, 8, vol, -1, SQLITE_TRANSIENT);
				sqlite3_bind_int(qb, 9, 0);
				sqlite3_bind_text(qb, 10,
				    "{\"driver_volume_type\": \"file\"}", -1,
				    SQLITE_STATIC);
			}
			sqlite3_bind_text(qb, 5, dev, -1, SQLITE_TRANSIENT);
			ck_assert_int_eq(sqlite3_step(qb), SQLITE_DONE);
			sqlite3_reset(qb);
			sqlite3_clear_bindings(qb);
		}
	}
	sqlite3_finalize(qi);
	sqlite3_finalize(qb);
	raw_exec(db, "COMMIT");
	sqlite3_close(db);
}

START_TEST(test_store_migrates_a_version_1_database_and_keeps_its_rows)
{
	struct store *s;
	struct instance **v = NULL;
	size_t n = 0, i, j;
	struct err e = {0};
	int64_t pending = -1;
	int ver = 0;
	sqlite3 *db;

	build_v1(3, 3);
	s = open_store();
	/* Rows lack uuids: the schema stops at 2 until they have them. */
	ck_assert_int_eq(store_schema_version(s, &ver, &e), 0);
	ck_assert_int_eq(ver, 2);
	ck_assert_int_eq(store_online_migrate_pending(s, &pending, &e), 0);
	ck_assert_int_eq(pending, 9);

	ck_assert_msg(
	    store_instance_list(s, NULL, 0, &v, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 3);
	for (i = 0; i < n; i++) {
		char name[32];

		(void)snprintf(name, sizeof(name), "old-%zu", i);
		ck_assert_str_eq(v[i]->name, name);
		ck_assert_int_eq(v[i]->state, INSTANCE_RUNNING);
		ck_assert_uint_eq(v[i]->n_bdms, 3);
		ck_assert_int_eq(v[i]->bdms[0].boot_index, 0);
		ck_assert_int_eq(v[i]->bdms[0].source_type, BDM_SOURCE_IMAGE);
		ck_assert_str_eq(v[i]->bdms[2].device_name, "/dev/vdc");
		ck_assert_int_eq(v[i]->bdms[1].boot_index, BDM_BOOT_NONE);
		/* Loaded without a uuid: given one on load. */
		for (j = 0; j < 3; j++)
			ck_assert(util_uuid_is_canonical(v[i]->bdms[j].uuid));
	}
	store_instance_list_free(v, n);

	/* Every row got its uuid on load, so the next online migration
	 * finds nothing and the gated version 3 applies. */
	ck_assert_int_eq(store_online_migrate_pending(s, &pending, &e), 0);
	ck_assert_int_eq(pending, 0);
	{
		int found = -1, done = -1;

		ck_assert_int_eq(
		    store_online_migrate(s, 50, &found, &done, &e), 0);
		ck_assert_int_eq(found, 0);
		ck_assert_int_eq(done, 0);
	}
	ck_assert_int_eq(store_schema_version(s, &ver, &e), 0);
	ck_assert_int_eq(ver, STORE_SCHEMA_VERSION);
	ck_assert_int_eq(store_integrity_check(s, &e), 0);
	store_close(s);

	db = raw_open();
	/* Version 3: the column is NOT NULL now. */
	ck_assert_int_ne(
	    sqlite3_exec(db, "UPDATE block_device_mappings SET uuid = NULL",
		NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(
	    raw_int(
		db, "SELECT count(DISTINCT uuid) FROM block_device_mappings"),
	    9);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_store_online_migration_fills_rows_in_batches_of_max_count)
{
	struct store *s;
	struct err e = {0};
	int found, done, ver;
	int64_t pending;

	build_v1(5, 5);
	s = open_store();
	ck_assert_int_eq(store_online_migrate(s, 10, &found, &done, &e), 0);
	ck_assert_int_eq(found, 10);
	ck_assert_int_eq(done, 10);
	ck_assert_int_eq(store_online_migrate_pending(s, &pending, &e), 0);
	ck_assert_int_eq(pending, 15);
	ck_assert_int_eq(store_online_migrate(s, 10, &found, &done, &e), 0);
	ck_assert_int_eq(found, 10);
	ck_assert_int_eq(done, 10);
	ck_assert_int_eq(store_schema_version(s, &ver, &e), 0);
	ck_assert_int_eq(ver, 2);
	ck_assert_int_eq(store_online_migrate(s, 10, &found, &done, &e), 0);
	ck_assert_int_eq(found, 5);
	ck_assert_int_eq(done, 5);
	/* The last batch emptied the backlog: the schema moved on. */
	ck_assert_int_eq(store_schema_version(s, &ver, &e), 0);
	ck_assert_int_eq(ver, STORE_SCHEMA_VERSION);
	/* Idempotent. */
	ck_assert_int_eq(store_online_migrate(s, 10, &found, &done, &e), 0);
	ck_assert_int_eq(found, 0);
	ck_assert_int_eq(done, 0);
	ck_assert_int_eq(
	    store_online_migrate(s, 0, &found, &done, &e), -EINVAL);
	store_close(s);
}
END_TEST

START_TEST(test_store_get_gives_a_version_1_bdm_one_uuid_that_sticks)
{
	struct store *s;
	struct instance **v = NULL, *a = NULL, *b = NULL;
	struct err e = {0};
	char uuid[UUID_STR_LEN];
	size_t n;
	int64_t pending;

	build_v1(2, 2);
	s = open_store();
	/* Learn the uuid through a store that reads... */
	{
		sqlite3 *db = raw_open();
		sqlite3_stmt *q = NULL;

		sqlite3_prepare_v2(db,
		    "SELECT uuid FROM instances WHERE id = 2", -1, &q, NULL);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		memcpy(uuid, sqlite3_column_text(q, 0), UUID_STR_LEN);
		sqlite3_finalize(q);
		sqlite3_close(db);
	}
	ck_assert_int_eq(store_instance_get(s, uuid, &a, &e), 0);
	ck_assert_int_eq(store_instance_get(s, uuid, &b, &e), 0);
	ck_assert_uint_eq(a->n_bdms, 2);
	ck_assert(util_uuid_is_canonical(a->bdms[0].uuid));
	ck_assert_str_eq(a->bdms[0].uuid, b->bdms[0].uuid);
	ck_assert_str_eq(a->bdms[1].uuid, b->bdms[1].uuid);
	ck_assert_str_ne(a->bdms[0].uuid, a->bdms[1].uuid);
	/* Only that instance's rows were filled. */
	ck_assert_int_eq(store_online_migrate_pending(s, &pending, &e), 0);
	ck_assert_int_eq(pending, 2);
	ck_assert_int_eq(store_instance_list(s, NULL, 0, &v, &n, &e), 0);
	ck_assert_str_eq(v[1]->bdms[0].uuid, a->bdms[0].uuid);
	store_instance_list_free(v, n);
	instance_free(a);
	instance_free(b);
	store_close(s);
}
END_TEST

/* ---- races ----------------------------------------------------------- */

#define RACE_THREADS 4

struct racer {
	int id;
	pthread_barrier_t *bar;
	int rc;
	char msg[256];
	/* what this racer saw: instance index -> bdm uuids (listers) */
	char (*seen)[UUID_STR_LEN];
	size_t n_seen;
};

static void *
race_main(void *arg)
{
	struct racer *r = arg;
	struct store *s = NULL;
	struct err e = {0};
	int found = 1, done;

	r->rc = store_open(
	    dbpath, &(struct store_opts){.no_migrate = true}, &s, &e);
	pthread_barrier_wait(r->bar);
	if (r->rc < 0)
		goto out;
	if (r->id % 2 == 0) {
		/* a migrator: small batches, so that both sides interleave */
		while (found > 0 && r->rc == 0)
			r->rc = store_online_migrate(s, 7, &found, &done, &e);
	} else {
		/* a reader: loads fill missing uuids the same race-safe way */
		struct instance **v = NULL;
		size_t n = 0, i, j, k = 0;

		r->rc = store_instance_list(s, NULL, 0, &v, &n, &e);
		for (i = 0; r->rc == 0 && i < n; i++)
			for (j = 0; j < v[i]->n_bdms && k < r->n_seen; j++)
				memcpy(r->seen[k++], v[i]->bdms[j].uuid,
				    UUID_STR_LEN);
		store_instance_list_free(v, n);
	}
out:
	(void)snprintf(r->msg, sizeof(r->msg), "%s", e.msg);
	store_close(s);
	return NULL;
}

/* Every BDM row has exactly one uuid, all distinct, and what each reader
 * was handed is what the database kept. */
static void
assert_all_rows_have_one_uuid(size_t n_rows, struct racer *r, size_t n_r)
{
	sqlite3 *db = raw_open();
	sqlite3_stmt *q = NULL;
	size_t k = 0, i;

	ck_assert_int_eq(raw_int(db,
			     "SELECT count(*) FROM"
			     " block_device_mappings WHERE uuid IS NULL"),
	    0);
	ck_assert_int_eq(raw_int(db,
			     "SELECT count(DISTINCT uuid) FROM"
			     " block_device_mappings"),
	    n_rows);
	sqlite3_prepare_v2(db,
	    "SELECT uuid FROM block_device_mappings ORDER BY instance_id, id",
	    -1, &q, NULL);
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *u = (const char *)sqlite3_column_text(q, 0);

		for (i = 0; i < n_r; i++)
			if (r[i].seen && k < r[i].n_seen)
				ck_assert_str_eq(r[i].seen[k], u);
		k++;
	}
	ck_assert_uint_eq(k, n_rows);
	sqlite3_finalize(q);
	sqlite3_close(db);
}

START_TEST(test_store_threads_racing_over_the_same_rows_give_each_one_uuid)
{
	enum { N_INST = 60, N_BDM = 5, N_ROWS = N_INST * N_BDM };
	struct racer r[RACE_THREADS];
	pthread_t t[RACE_THREADS];
	pthread_barrier_t bar;
	struct store *s;
	struct err e = {0};
	int i, ver;

	build_v1(N_INST, N_BDM);
	s = open_store(); /* to version 2 */
	pthread_barrier_init(&bar, NULL, RACE_THREADS);
	for (i = 0; i < RACE_THREADS; i++) {
		r[i] = (struct racer){.id = i, .bar = &bar};
		if (i % 2) {
			r[i].seen = calloc(N_ROWS, UUID_STR_LEN);
			r[i].n_seen = N_ROWS;
		}
		pthread_create(&t[i], NULL, race_main, &r[i]);
	}
	for (i = 0; i < RACE_THREADS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(
		    r[i].rc == 0, "racer %d: %d %s", i, r[i].rc, r[i].msg);
	}
	assert_all_rows_have_one_uuid(N_ROWS, r, RACE_THREADS);
	ck_assert_int_eq(store_schema_version(s, &ver, &e), 0);
	ck_assert_int_eq(ver, STORE_SCHEMA_VERSION);
	for (i = 0; i < RACE_THREADS; i++)
		free(r[i].seen);
	pthread_barrier_destroy(&bar);
	store_close(s);
}
END_TEST

START_TEST(test_store_processes_racing_over_the_same_rows_give_each_one_uuid)
{
	enum { N_INST = 50, N_BDM = 4, N_PROC = 3 };
	pid_t pid[N_PROC];
	int i, status;

	build_v1(N_INST, N_BDM);
	for (i = 0; i < N_PROC; i++) {
		pid[i] = fork();
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0) {
			struct store *s = NULL;
			struct err e = {0};
			int found = 1, done, rc;

			/* Each child opens (and migrates the schema) at once:
			 * the DDL steps must apply once, too. */
			rc = store_open(dbpath, NULL, &s, &e);
			while (rc == 0 && found > 0)
				rc = store_online_migrate(
				    s, 5, &found, &done, &e);
			if (rc < 0)
				fprintf(stderr, "child %d: %s\n", i, e.msg);
			store_close(s);
			_exit(rc == 0 ? 0 : 1);
		}
	}
	for (i = 0; i < N_PROC; i++) {
		ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
		ck_assert(WIFEXITED(status));
		ck_assert_int_eq(WEXITSTATUS(status), 0);
	}
	assert_all_rows_have_one_uuid(N_INST * N_BDM, NULL, 0);
	{
		sqlite3 *db = raw_open();

		ck_assert_int_eq(
		    raw_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
		sqlite3_close(db);
	}
}
END_TEST

/* ---- instances ------------------------------------------------------- */

START_TEST(test_store_create_then_get_returns_every_field_and_bdm)
{
	struct store *s = open_store();
	struct instance *inst = make_instance(create_body), *got = NULL;
	struct err e = {0};
	char *digest = NULL;
	int64_t before = util_now_ms();

	ck_assert_uint_eq(inst->n_bdms, 4);
	ck_assert_msg(
	    store_instance_create(s, inst, "sha256:abc", &e) == 0, "%s", e.msg);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	assert_instance_equal(inst, got);
	ck_assert_int_eq(got->state, INSTANCE_BUILDING);
	ck_assert_int_eq(got->generation, 1);
	ck_assert_int_ge(got->created_at, before - 1000);
	ck_assert_int_eq(got->created_at, got->updated_at);
	/* The mapping filled the names before create, and they are kept. */
	ck_assert_ptr_nonnull(got->bdms[0].device_name);
	ck_assert_int_ne(got->bdms[0].disk_bus, BDM_BUS_UNSET);
	ck_assert_int_eq(store_instance_digest(s, inst->uuid, &digest, &e), 0);
	ck_assert_str_eq(digest, "sha256:abc");
	free(digest);
	instance_free(got);
	instance_free(inst);
	store_close(s);
}
END_TEST

/* store_lazy_next: the lazy commit (not synced) is a commit like any
 * other for every connection and across a close (only the fsync is
 * skipped); a refused write consumes nothing the next one would inherit,
 * and the writes after it go on as before. */
START_TEST(test_store_a_lazy_commit_is_seen_by_others_and_kept)
{
	struct store *s = open_store(), *s2;
	struct instance *a = make_instance(create_body), *got = NULL;
	struct err e = {0};

	store_lazy_next(s, true);
	ck_assert_msg(store_instance_create(s, a, NULL, &e) == 0, "%s", e.msg);
	store_lazy_next(s, false);
	s2 = open_store();
	ck_assert_int_eq(store_instance_get(s2, a->uuid, &got, &e), 0);
	ck_assert_int_eq(got->state, INSTANCE_BUILDING);
	instance_free(got);
	/* refused (the row exists), then a synced change on the same
	 * connection */
	store_lazy_next(s, true);
	ck_assert_int_eq(store_instance_create(s, a, NULL, &e), -EEXIST);
	store_lazy_next(s, false);
	ck_assert_int_eq(store_instance_cas_state(s, a->uuid, INSTANCE_BUILDING,
			     INSTANCE_STOPPED, &e),
	    0);
	store_close(s);
	store_close(s2);
	s = open_store();
	ck_assert_int_eq(store_instance_get(s, a->uuid, &got, &e), 0);
	ck_assert_int_eq(got->state, INSTANCE_STOPPED);
	instance_free(got);
	instance_free(a);
	store_close(s);
}
END_TEST

/* A delete's first step: from any state but building, in one statement,
 * only from the generation asked for; a refusal changes nothing. */
START_TEST(test_store_mark_deleting_refuses_building_and_a_moved_generation)
{
	struct store *s = open_store();
	struct instance *a = make_instance(create_body), *got = NULL;
	struct err e = {0};
	int64_t gen;

	ck_assert_int_eq(
	    store_instance_mark_deleting(s, a->uuid, 0, &e), -ENOENT);
	err_clear(&e);
	ck_assert_int_eq(store_instance_create(s, a, NULL, &e), 0);
	ck_assert_int_eq(
	    store_instance_mark_deleting(s, a->uuid, 0, &e), -EBUSY);
	ck_assert_ptr_nonnull(strstr(e.msg, "building"));
	err_clear(&e);
	ck_assert_int_eq(store_instance_cas_state(s, a->uuid, INSTANCE_BUILDING,
			     INSTANCE_STOPPED, &e),
	    0);
	ck_assert_int_eq(store_instance_get(s, a->uuid, &got, &e), 0);
	gen = got->generation;
	instance_free(got);
	ck_assert_int_eq(
	    store_instance_mark_deleting(s, a->uuid, gen + 1, &e), -EBUSY);
	err_clear(&e);
	ck_assert_int_eq(store_instance_get(s, a->uuid, &got, &e), 0);
	ck_assert_int_eq(got->state, INSTANCE_STOPPED);
	ck_assert_int_eq(got->generation, gen);
	instance_free(got);
	ck_assert_int_eq(store_instance_mark_deleting(s, a->uuid, gen, &e), 0);
	ck_assert_int_eq(store_instance_get(s, a->uuid, &got, &e), 0);
	ck_assert_int_eq(got->state, INSTANCE_DELETING);
	ck_assert_int_eq(got->generation, gen + 1);
	instance_free(got);
	/* deleting again (a retried delete) goes on, any generation */
	ck_assert_int_eq(store_instance_mark_deleting(s, a->uuid, 0, &e), 0);
	ck_assert_int_eq(store_instance_delete(s, a->uuid, &e), 0);
	instance_free(a);
	store_close(s);
}
END_TEST

START_TEST(test_store_create_is_all_or_nothing_when_a_bdm_uuid_is_taken)
{
	struct store *s = open_store();
	struct instance *a = make_instance(create_body);
	struct instance *b = make_instance(create_body), *got = NULL;
	struct err e = {0};
	sqlite3 *db;

	ck_assert_int_eq(store_instance_create(s, a, NULL, &e), 0);
	/* b's last BDM reuses a uuid of a's. */
	memcpy(b->bdms[3].uuid, a->bdms[1].uuid, UUID_STR_LEN);
	ck_assert_int_eq(store_instance_create(s, b, NULL, &e), -EEXIST);
	ck_assert_msg(strstr(e.msg, a->bdms[1].uuid), "%s", e.msg);
	err_clear(&e);
	ck_assert_int_eq(store_instance_get(s, b->uuid, &got, &e), -ENOENT);
	db = raw_open();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM instances"), 1);
	ck_assert_int_eq(
	    raw_int(db, "SELECT count(*) FROM block_device_mappings"), 4);
	sqlite3_close(db);
	/* The same instance twice is a conflict too. */
	err_clear(&e);
	ck_assert_int_eq(store_instance_create(s, a, NULL, &e), -EEXIST);
	ck_assert_msg(strstr(e.msg, "already exists"), "%s", e.msg);
	instance_free(a);
	instance_free(b);
	store_close(s);
}
END_TEST

START_TEST(test_store_refuses_ids_that_are_not_canonical_lower_case)
{
	struct store *s = open_store();
	struct instance *inst = make_instance(create_body), *got = NULL;
	struct err e = {0};
	char upper[UUID_STR_LEN];
	size_t i;

	memcpy(upper, inst->uuid, UUID_STR_LEN);
	for (i = 0; upper[i]; i++)
		if (upper[i] >= 'a' && upper[i] <= 'f')
			upper[i] = (char)(upper[i] - 'a' + 'A');
	ck_assert_int_eq(store_instance_get(s, upper, &got, &e), -EINVAL);
	err_clear(&e);
	ck_assert_int_eq(store_instance_delete(s, "x", &e), -EINVAL);
	err_clear(&e);
	memcpy(inst->uuid, upper, UUID_STR_LEN);
	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), -EINVAL);
	instance_free(inst);
	store_close(s);
}
END_TEST

START_TEST(test_store_set_state_bumps_generation_and_updated_at)
{
	struct store *s = open_store();
	struct instance *inst = make_instance(create_body), *got = NULL;
	struct err e = {0};
	char missing[UUID_STR_LEN];

	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	usleep(2000);
	ck_assert_int_eq(
	    store_instance_set_state(s, inst->uuid, INSTANCE_RUNNING, &e), 0);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_int_eq(got->state, INSTANCE_RUNNING);
	ck_assert_int_eq(got->generation, 2);
	ck_assert_int_gt(got->updated_at, got->created_at);
	instance_free(got);
	util_uuid_generate(missing);
	ck_assert_int_eq(
	    store_instance_set_state(s, missing, INSTANCE_RUNNING, &e),
	    -ENOENT);
	instance_free(inst);
	store_close(s);
}
END_TEST

START_TEST(test_store_observe_state_writes_only_a_change_of_a_settled_row)
{
	struct store *s = open_store();
	struct instance *inst = make_instance(create_body), *got = NULL;
	struct err e = {0};
	char missing[UUID_STR_LEN];
	bool changed = true;

	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	/* building belongs to the create: nothing written */
	ck_assert_int_eq(store_instance_observe_state(
			     s, inst->uuid, INSTANCE_RUNNING, &changed, &e),
	    0);
	ck_assert(!changed);
	ck_assert_int_eq(
	    store_instance_set_state(s, inst->uuid, INSTANCE_RUNNING, &e), 0);
	ck_assert_int_eq(store_instance_observe_state(
			     s, inst->uuid, INSTANCE_PAUSED, &changed, &e),
	    0);
	ck_assert(changed);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_int_eq(got->state, INSTANCE_PAUSED);
	ck_assert_int_eq(got->generation, 3);
	got = instance_free(got);
	/* the same state again: no write, the generation (ETag) stays */
	ck_assert_int_eq(store_instance_observe_state(
			     s, inst->uuid, INSTANCE_PAUSED, &changed, &e),
	    0);
	ck_assert(!changed);
	ck_assert_int_eq(store_instance_observe_state(
			     s, inst->uuid, INSTANCE_CRASHED, &changed, &e),
	    0);
	ck_assert(changed);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_int_eq(got->state, INSTANCE_CRASHED);
	ck_assert_int_eq(got->generation, 4);
	got = instance_free(got);
	/* deleting belongs to the delete */
	ck_assert_int_eq(
	    store_instance_set_state(s, inst->uuid, INSTANCE_DELETING, &e), 0);
	ck_assert_int_eq(store_instance_observe_state(
			     s, inst->uuid, INSTANCE_STOPPED, &changed, &e),
	    0);
	ck_assert(!changed);
	util_uuid_generate(missing);
	ck_assert_int_eq(store_instance_observe_state(
			     s, missing, INSTANCE_STOPPED, &changed, &e),
	    -ENOENT);
	instance_free(inst);
	store_close(s);
}
END_TEST

START_TEST(test_store_version_10_admits_paused_and_crashed_and_keeps_rows)
{
	struct store *s = open_store();
	struct instance *inst = make_instance(create_body);
	struct err e = {0};
	sqlite3 *db;
	int ver = 0;

	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	store_close(s);
	/* back to version 7: the CHECK as version 1 wrote it, and 8's,
	 * 9's and 11's tables taken away */
	db = raw_open();
	raw_exec(db,
	    DROP_USAGE "DROP TABLE nics;"
		       "DROP TABLE instance_guest;"
		       "DROP TABLE events;"
		       "PRAGMA writable_schema = ON;"
		       "UPDATE sqlite_schema SET sql = replace(sql,"
		       " ', ''paused'', ''crashed'')', ')')"
		       " WHERE type = 'table' AND name = 'instances';"
		       "PRAGMA writable_schema = RESET;"
		       "PRAGMA user_version = 7;");
	ck_assert_int_ne(
	    sqlite3_exec(
		db, "UPDATE instances SET state = 'paused'", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	s = open_store();
	ck_assert_int_eq(store_schema_version(s, &ver, &e), 0);
	ck_assert_int_eq(ver, STORE_SCHEMA_VERSION);
	ck_assert_int_eq(store_integrity_check(s, &e), 0);
	store_close(s);
	db = raw_open();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM instances"), 1);
	ck_assert_int_eq(
	    raw_int(db, "SELECT count(*) FROM block_device_mappings"),
	    (int64_t)inst->n_bdms);
	ck_assert_int_eq(raw_int(db,
			     "SELECT count(*) FROM sqlite_schema"
			     " WHERE name = 'migrate_states_check'"),
	    0);
	raw_exec(db, "UPDATE instances SET state = 'paused'");
	raw_exec(db, "UPDATE instances SET state = 'crashed'");
	ck_assert_int_ne(
	    sqlite3_exec(db, "UPDATE instances SET state = 'sleeping'", NULL,
		NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(
	    raw_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
	sqlite3_close(db);
	instance_free(inst);
}
END_TEST

START_TEST(test_store_delete_takes_the_bdms_with_the_instance)
{
	struct store *s = open_store();
	struct instance *inst = make_instance(create_body), *got = NULL;
	struct err e = {0};
	sqlite3 *db;

	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	ck_assert_int_eq(store_instance_delete(s, inst->uuid, &e), 0);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), -ENOENT);
	err_clear(&e);
	ck_assert_int_eq(store_instance_delete(s, inst->uuid, &e), -ENOENT);
	db = raw_open();
	ck_assert_int_eq(
	    raw_int(db, "SELECT count(*) FROM block_device_mappings"), 0);
	sqlite3_close(db);
	/* The BDM uuids are free again. */
	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	instance_free(inst);
	store_close(s);
}
END_TEST

START_TEST(test_store_counts_instances_by_state)
{
	struct store *s = open_store();
	struct instance *a = make_instance(create_body);
	struct instance *b = make_instance(create_body);
	int64_t c[STORE_N_STATES];
	struct err e = {0};

	ck_assert_int_eq(store_instance_create(s, a, NULL, &e), 0);
	ck_assert_int_eq(store_instance_create(s, b, NULL, &e), 0);
	ck_assert_int_eq(
	    store_instance_set_state(s, b->uuid, INSTANCE_STOPPED, &e), 0);
	ck_assert_int_eq(store_count_by_state(s, c, &e), 0);
	ck_assert_int_eq(c[INSTANCE_BUILDING], 1);
	ck_assert_int_eq(c[INSTANCE_STOPPED], 1);
	ck_assert_int_eq(c[INSTANCE_RUNNING], 0);
	instance_free(a);
	instance_free(b);
	store_close(s);
}
END_TEST

START_TEST(test_store_instance_states_lists_uuid_and_state_in_order)
{
	struct store *s = open_store();
	struct instance *a = make_instance(create_body);
	struct instance *b = make_instance(create_body);
	struct store_instance_state *v = NULL;
	struct err e = {0};
	size_t n = 99;

	ck_assert_int_eq(store_instance_states(s, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 0);
	free(v);
	ck_assert_int_eq(store_instance_create(s, a, NULL, &e), 0);
	ck_assert_int_eq(store_instance_create(s, b, NULL, &e), 0);
	ck_assert_int_eq(
	    store_instance_set_state(s, a->uuid, INSTANCE_RUNNING, &e), 0);
	ck_assert_int_eq(store_instance_states(s, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].uuid, a->uuid);
	ck_assert_int_eq(v[0].state, INSTANCE_RUNNING);
	ck_assert_str_eq(v[1].uuid, b->uuid);
	ck_assert_int_eq(v[1].state, INSTANCE_BUILDING);
	free(v);
	instance_free(a);
	instance_free(b);
	store_close(s);
}
END_TEST

START_TEST(test_store_version_5_keeps_what_each_row_wants_apart_from_its_state)
{
	struct store *s;
	struct store_instance_state *st = NULL;
	struct instance *got = NULL;
	struct err e = {0};
	char u[3][UUID_STR_LEN];
	size_t n = 0, i;
	int ver = 0;
	sqlite3 *db;

	/* Rows of an older version in three states; BDMs without uuids
	 * hold the schema at 2 (before 3 and every later version). */
	build_v1(3, 2);
	db = raw_open();
	raw_exec(db,
	    "UPDATE instances SET state = 'stopped' WHERE id = 2;"
	    "UPDATE instances SET state = 'error' WHERE id = 3;");
	for (i = 0; i < 3; i++) {
		sqlite3_stmt *q = NULL;

		ck_assert_int_eq(sqlite3_prepare_v2(db,
				     "SELECT uuid FROM instances WHERE id = ?1",
				     -1, &q, NULL),
		    SQLITE_OK);
		sqlite3_bind_int64(q, 1, (int64_t)i + 1);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		memcpy(u[i], sqlite3_column_text(q, 0), UUID_STR_LEN);
		sqlite3_finalize(q);
	}
	sqlite3_close(db);

	s = open_store();
	ck_assert_int_eq(store_schema_version(s, &ver, &e), 0);
	ck_assert_int_eq(ver, 2);
	/* At 2 the desired state is what the row shows; recording one or
	 * a fault writes only what the schema has. */
	ck_assert_int_eq(store_instance_states(s, &st, &n, &e), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(st[0].desired, INSTANCE_RUNNING);
	ck_assert_int_eq(st[1].desired, INSTANCE_STOPPED);
	ck_assert_int_eq(st[2].desired, INSTANCE_RUNNING);
	free(st);
	ck_assert_int_eq(
	    store_instance_set_desired(s, u[0], INSTANCE_STOPPED, &e), 0);
	ck_assert_int_eq(store_instance_set_error(s, u[2], "lost", &e), 0);
	ck_assert_int_eq(store_instance_get(s, u[2], &got, &e), 0);
	ck_assert_int_eq(got->state, INSTANCE_ERROR);
	ck_assert_ptr_null(got->fault);
	got = instance_free(got);

	/* Every BDM gets its uuid: the schema goes on to the newest, and the new
	 * column is filled from each row's state. */
	{
		int found = -1, done = -1;

		do
			ck_assert_int_eq(
			    store_online_migrate(s, 50, &found, &done, &e), 0);
		while (found > 0);
	}
	ck_assert_int_eq(store_schema_version(s, &ver, &e), 0);
	ck_assert_int_eq(ver, STORE_SCHEMA_VERSION);
	ck_assert_int_eq(store_integrity_check(s, &e), 0);
	ck_assert_int_eq(store_instance_states(s, &st, &n, &e), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(st[0].state, INSTANCE_RUNNING);
	ck_assert_int_eq(st[0].desired, INSTANCE_RUNNING);
	ck_assert_int_eq(st[1].desired, INSTANCE_STOPPED);
	ck_assert_int_eq(st[2].state, INSTANCE_ERROR);
	ck_assert_int_eq(st[2].desired, INSTANCE_RUNNING);
	free(st);

	/* From now on desired and observed part: a row stays wanted
	 * running while libvirt's stopped is recorded, and a fault is
	 * kept with the error. */
	ck_assert_int_eq(
	    store_instance_set_state(s, u[0], INSTANCE_STOPPED, &e), 0);
	ck_assert_int_eq(store_instance_get(s, u[0], &got, &e), 0);
	ck_assert_int_eq(got->state, INSTANCE_STOPPED);
	ck_assert_int_eq(got->desired_state, INSTANCE_RUNNING);
	ck_assert_ptr_null(got->fault);
	got = instance_free(got);
	ck_assert_int_eq(
	    store_instance_set_desired(s, u[1], INSTANCE_RUNNING, &e), 0);
	ck_assert_int_eq(
	    store_instance_set_desired(s, u[1], INSTANCE_ERROR, &e), -EINVAL);
	ck_assert_int_eq(
	    store_instance_set_error(s, u[1], "the root disk is missing", &e),
	    0);
	ck_assert_int_eq(store_instance_get(s, u[1], &got, &e), 0);
	ck_assert_int_eq(got->state, INSTANCE_ERROR);
	ck_assert_int_eq(got->desired_state, INSTANCE_RUNNING);
	ck_assert_str_eq(got->fault, "the root disk is missing");
	got = instance_free(got);
	store_close(s);

	/* Only running and stopped are desired states. */
	db = raw_open();
	ck_assert_int_ne(
	    sqlite3_exec(db, "UPDATE instances SET desired_state = 'error'",
		NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_store_create_records_whether_the_instance_should_run)
{
	struct store *s = open_store();
	struct instance *a = make_instance(create_body);
	struct instance *b = make_instance(create_body);
	struct instance *got = NULL;
	struct err e = {0};

	b->start = false;
	ck_assert_int_eq(store_instance_create(s, a, NULL, &e), 0);
	ck_assert_int_eq(store_instance_create(s, b, NULL, &e), 0);
	ck_assert_int_eq(store_instance_get(s, a->uuid, &got, &e), 0);
	ck_assert_int_eq(got->desired_state, INSTANCE_RUNNING);
	got = instance_free(got);
	ck_assert_int_eq(store_instance_get(s, b->uuid, &got, &e), 0);
	ck_assert_int_eq(got->desired_state, INSTANCE_STOPPED);
	got = instance_free(got);
	instance_free(a);
	instance_free(b);
	store_close(s);
}
END_TEST

/* ---- tombstones (rolled-back builds) --------------------------------- */

START_TEST(test_store_roll_back_deletes_the_row_and_leaves_a_tombstone)
{
	struct store *s = open_store();
	struct instance *a = make_instance(create_body);
	struct instance *b = make_instance(create_body);
	struct instance *got = NULL;
	char(*t)[UUID_STR_LEN] = NULL;
	size_t n = 9;
	int st = -1, x = -1;
	struct err e = {0};

	ck_assert_int_eq(store_instance_create(s, a, NULL, &e), 0);
	ck_assert_int_eq(store_instance_create(s, b, NULL, &e), 0);
	ck_assert_int_eq(store_instance_roll_back(s, a->uuid, &e), 0);
	/* idempotent: the row is gone already */
	ck_assert_int_eq(store_instance_roll_back(s, a->uuid, &e), 0);
	ck_assert_int_eq(store_instance_get(s, a->uuid, &got, &e), -ENOENT);
	err_clear(&e);
	ck_assert_int_eq(store_tombstone_state(s, a->uuid, &st, &e), 0);
	ck_assert_int_eq(st, 1);
	/* a failed create whose row is deleting */
	ck_assert_int_eq(
	    store_instance_set_state(s, b->uuid, INSTANCE_DELETING, &e), 0);
	ck_assert_int_eq(store_tombstone_add(s, b->uuid, &e), 0);
	ck_assert_int_eq(store_tombstone_state(s, b->uuid, &st, &e), 0);
	ck_assert_int_eq(st, 2);
	ck_assert_int_eq(store_tombstone_list(s, &t, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	free(t);

	/* first sweep marks them checked; expiry counts from then */
	ck_assert_int_eq(store_tombstone_sweep_done(s, 1000, 0, &x, &e), 0);
	ck_assert_int_eq(x, 0);
	ck_assert_int_eq(store_tombstone_sweep_done(s, 5000, 999, &x, &e), 0);
	ck_assert_int_eq(x, 0);
	ck_assert_int_eq(store_tombstone_sweep_done(s, 5000, 1001, &x, &e), 0);
	ck_assert_int_eq(x, 2);
	ck_assert_int_eq(store_tombstone_list(s, &t, &n, &e), 0);
	ck_assert_uint_eq(n, 0);
	free(t);
	ck_assert_int_eq(store_tombstone_state(s, a->uuid, &st, &e), 0);
	ck_assert_int_eq(st, 0);

	/* an explicit delete */
	ck_assert_int_eq(store_tombstone_add(s, a->uuid, &e), 0);
	ck_assert_int_eq(store_tombstone_delete(s, a->uuid, &e), 0);
	ck_assert_int_eq(store_tombstone_state(s, a->uuid, &st, &e), 0);
	ck_assert_int_eq(st, 0);
	instance_free(a);
	instance_free(b);
	store_close(s);
}
END_TEST

/* ---- list ------------------------------------------------------------ */

START_TEST(test_store_list_pages_in_creation_order_after_the_marker)
{
	struct store *s = open_store();
	struct instance *in[5], **v = NULL;
	struct err e = {0};
	char missing[UUID_STR_LEN];
	size_t n, i;

	for (i = 0; i < 5; i++) {
		in[i] = make_instance(create_body);
		ck_assert_int_eq(store_instance_create(s, in[i], NULL, &e), 0);
	}
	ck_assert_int_eq(store_instance_list(s, NULL, 2, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	assert_instance_equal(in[0], v[0]);
	assert_instance_equal(in[1], v[1]);
	store_instance_list_free(v, n);
	ck_assert_int_eq(store_instance_list(s, in[1]->uuid, 2, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	assert_instance_equal(in[2], v[0]);
	assert_instance_equal(in[3], v[1]);
	store_instance_list_free(v, n);
	ck_assert_int_eq(store_instance_list(s, in[3]->uuid, 2, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	assert_instance_equal(in[4], v[0]);
	store_instance_list_free(v, n);
	ck_assert_int_eq(store_instance_list(s, in[4]->uuid, 2, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 0);
	store_instance_list_free(v, n);
	/* limit 0: everything */
	ck_assert_int_eq(store_instance_list(s, NULL, 0, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 5);
	store_instance_list_free(v, n);
	util_uuid_generate(missing);
	ck_assert_int_eq(
	    store_instance_list(s, missing, 2, &v, &n, &e), -ENOENT);
	ck_assert_str_eq(e.field, "marker");
	for (i = 0; i < 5; i++)
		instance_free(in[i]);
	store_close(s);
}
END_TEST

/* ---- BDMs ------------------------------------------------------------ */

#define VOLUME2_ID "0b5e3d1c-9a8f-4e7d-8c6b-5a4f3e2d1c0b"
static const char attach_body[] =
    "{\"volume_id\": \"" VOLUME2_ID "\","
    " \"connection_info\": {\"driver_volume_type\": \"file\","
    "  \"data\": {\"device_path\": \"/var/lib/vol/b.img\"}}}";

START_TEST(test_store_bdm_insert_and_delete_bump_the_generation)
{
	struct store *s = open_store();
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = make_instance(create_body), *got = NULL;
	struct bdm b = {0};
	struct err e = {0};
	char missing[UUID_STR_LEN];

	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	ck_assert_msg(bdm_json_parse_attach(
			  attach_body, strlen(attach_body), &b, &e) == 0,
	    "%s", e.msg);
	ck_assert_msg(bdm_prepare_attach(inst, &b, &lim, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    blockinfo_pick_attach(inst, &b, &lim, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(store_bdm_insert(s, inst->uuid, &b, &e), 0);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_uint_eq(got->n_bdms, 5);
	assert_bdm_equal(&b, &got->bdms[4]);
	ck_assert_int_eq(got->generation, 2);
	instance_free(got);

	ck_assert_int_eq(store_bdm_insert(s, inst->uuid, &b, &e), -EEXIST);
	err_clear(&e);
	util_uuid_generate(missing);
	ck_assert_int_eq(store_bdm_insert(s, missing, &b, &e), -ENOENT);
	err_clear(&e);

	ck_assert_int_eq(store_bdm_delete(s, inst->uuid, b.uuid, &e), 0);
	ck_assert_int_eq(store_bdm_delete(s, inst->uuid, b.uuid, &e), -ENOENT);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_uint_eq(got->n_bdms, 4);
	ck_assert_int_eq(got->generation, 3);
	instance_free(got);
	bdm_clear(&b);
	instance_free(inst);
	store_close(s);
}
END_TEST

static int hook_calls;

static void
count_hook(void *arg)
{
	(void)arg;
	hook_calls++;
}

/* Schema 8: every change writes its event in its own transaction, in id
 * order, with the connection's cause; a rolled-back transaction leaves
 * none (and wakes nobody); pruning keeps the newest and never reuses an
 * id. */
/* A NIC's attach_state round-trips, and its events say what libvirt
 * confirmed: interface.attached only when an attaching row is settled,
 * interface.detached only for a NIC that was attached (an attaching row
 * rolled back leaves no event). */
START_TEST(test_store_nic_attach_state_and_its_events)
{
	struct store *s = open_store();
	struct instance *inst = make_instance(create_body);
	struct instance *got = NULL;
	struct store_event *v = NULL;
	struct nic n = {.model = NIC_MODEL_VIRTIO, .bridge = (char *)"br-ex"};
	static const char pa[] = "0b0b0b0b-0000-4000-8000-000000000001";
	static const char pb[] = "0b0b0b0b-0000-4000-8000-000000000002";
	struct err e = {0};
	size_t cnt = 0, i;
	const char *types[4];
	const char *ports[4];

	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	memcpy(n.port_id, pa, sizeof(n.port_id));
	memcpy(n.mac, "fa:16:3e:00:00:51", NIC_MAC_LEN);
	n.attach_state = NIC_ATTACH_ATTACHING;
	ck_assert_msg(
	    store_nic_insert(s, inst->uuid, &n, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_uint_eq(got->guest.n_nics, 1);
	ck_assert_int_eq(got->guest.nics[0].attach_state, NIC_ATTACH_ATTACHING);
	instance_free(got);
	ck_assert_int_eq(store_nic_set_attach_state(
			     s, inst->uuid, pa, NIC_ATTACH_SETTLED, &e),
	    0);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_int_eq(got->guest.nics[0].attach_state, NIC_ATTACH_SETTLED);
	instance_free(got);

	memcpy(n.port_id, pb, sizeof(n.port_id));
	memcpy(n.mac, "fa:16:3e:00:00:52", NIC_MAC_LEN);
	ck_assert_int_eq(store_nic_insert(s, inst->uuid, &n, &e), 0);
	ck_assert_int_eq(store_nic_delete(s, inst->uuid, pb, &e), 0);

	ck_assert_int_eq(store_nic_set_attach_state(
			     s, inst->uuid, pa, NIC_ATTACH_DETACHING, &e),
	    0);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_int_eq(got->guest.nics[0].attach_state, NIC_ATTACH_DETACHING);
	instance_free(got);
	ck_assert_int_eq(store_nic_delete(s, inst->uuid, pa, &e), 0);
	ck_assert_int_eq(store_nic_set_attach_state(
			     s, inst->uuid, pa, NIC_ATTACH_SETTLED, &e),
	    -ENOENT);
	err_clear(&e);

	ck_assert_int_eq(
	    store_events_list(s, 0, 100, inst->uuid, &v, &cnt, &e), 0);
	i = 0;
	for (size_t k = 0; k < cnt; k++)
		if (strncmp(v[k].type, "interface.", 10) == 0) {
			ck_assert_uint_lt(i, 4);
			types[i] = v[k].type;
			ports[i++] = v[k].port_id;
		}
	ck_assert_uint_eq(i, 2);
	ck_assert_str_eq(types[0], "interface.attached");
	ck_assert_str_eq(ports[0], pa);
	ck_assert_str_eq(types[1], "interface.detached");
	ck_assert_str_eq(ports[1], pa);
	free(v);
	instance_free(inst);
	store_close(s);
}
END_TEST

START_TEST(test_store_events_follow_every_change_in_the_same_transaction)
{
	struct store *s = open_store();
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = make_instance(create_body);
	struct store_event *v = NULL;
	struct bdm b = {0};
	struct err e = {0};
	int64_t oldest, newest;
	size_t n = 0, i;
	int del = 0;
	static const char *const want[] = {"instance.created",
	    "instance.updated", "instance.updated", "instance.updated",
	    "volume.attached", "instance.updated", "instance.updated",
	    "instance.updated", "volume.detached", "interface.attached",
	    "instance.deleted"};

	hook_calls = 0;
	store_event_hook_set(count_hook, NULL);
	ck_assert_int_eq(store_events_bounds(s, &oldest, &newest, &e), 0);
	ck_assert_int_eq(oldest, 1);
	ck_assert_int_eq(newest, 0);
	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	ck_assert_int_eq(hook_calls, 1);
	ck_assert_int_eq(store_instance_cas_state(s, inst->uuid,
			     INSTANCE_BUILDING, INSTANCE_RUNNING, &e),
	    0);
	/* a failed compare-and-set changes nothing: no event */
	ck_assert_int_eq(store_instance_cas_state(s, inst->uuid,
			     INSTANCE_BUILDING, INSTANCE_RUNNING, &e),
	    -EBUSY);
	err_clear(&e);
	ck_assert_int_eq(hook_calls, 2);
	ck_assert_msg(bdm_json_parse_attach(
			  attach_body, strlen(attach_body), &b, &e) == 0,
	    "%s", e.msg);
	ck_assert_msg(bdm_prepare_attach(inst, &b, &lim, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    blockinfo_pick_attach(inst, &b, &lim, &e) == 0, "%s", e.msg);
	b.attach_state = BDM_ATTACH_ATTACHING;
	store_set_cause(s, STORE_CAUSE_LIBVIRT);
	ck_assert_int_eq(store_bdm_insert(s, inst->uuid, &b, &e), 0);
	ck_assert_int_eq(store_bdm_set_attach_state(
			     s, inst->uuid, b.uuid, BDM_ATTACH_SETTLED, &e),
	    0);
	store_set_cause(s, STORE_CAUSE_RECONCILE);
	ck_assert_int_eq(store_bdm_set_attach_state(
			     s, inst->uuid, b.uuid, BDM_ATTACH_DETACHING, &e),
	    0);
	store_set_cause(s, STORE_CAUSE_API);
	ck_assert_int_eq(
	    store_instance_set_desired(s, inst->uuid, INSTANCE_STOPPED, &e), 0);
	ck_assert_int_eq(store_bdm_delete(s, inst->uuid, b.uuid, &e), 0);
	ck_assert_int_eq(
	    store_event_append_tx(s, "interface.attached", inst->uuid,
		&(struct store_event_ref){.port_id = "p-1"}, &e),
	    0);
	ck_assert_int_eq(store_instance_delete(s, inst->uuid, &e), 0);

	ck_assert_int_eq(
	    store_events_list(s, 0, 100, inst->uuid, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 11);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(v[i].id, (int64_t)i + 1);
		ck_assert_str_eq(v[i].type, want[i]);
		ck_assert_str_eq(v[i].instance, inst->uuid);
		ck_assert_int_gt(v[i].at_ms, 0);
	}
	ck_assert_str_eq(v[0].state, "building");
	ck_assert_int_eq(v[0].generation, 1);
	ck_assert_str_eq(v[0].cause, "api");
	ck_assert_str_eq(v[1].state, "running");
	ck_assert_int_eq(v[1].generation, 2);
	ck_assert_str_eq(v[2].cause, "libvirt");
	ck_assert_str_eq(v[4].volume_id, VOLUME2_ID);
	ck_assert_str_eq(v[4].cause, "libvirt");
	ck_assert_str_eq(v[5].cause, "reconcile");
	ck_assert_str_eq(v[6].cause, "api");
	ck_assert_str_eq(v[8].volume_id, VOLUME2_ID);
	ck_assert_str_eq(v[9].port_id, "p-1");
	ck_assert_str_eq(v[10].state, "running");
	free(v);
	v = NULL;
	ck_assert_int_eq(hook_calls, 9);

	/* an uncommitted change leaves no event: a create refused halfway
	 * (its uuid taken) */
	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), -EEXIST);
	err_clear(&e);
	ck_assert_int_eq(store_events_bounds(s, &oldest, &newest, &e), 0);
	ck_assert_int_eq(newest, 12);
	ck_assert_int_eq(hook_calls, 10);

	ck_assert_int_eq(store_events_prune(s, 5, 3, &del, &e), 0);
	ck_assert_int_eq(del, 3);
	ck_assert_int_eq(store_events_prune(s, 5, 1000, &del, &e), 0);
	ck_assert_int_eq(del, 4);
	ck_assert_int_eq(store_events_bounds(s, &oldest, &newest, &e), 0);
	ck_assert_int_eq(oldest, 8);
	ck_assert_int_eq(newest, 12);
	ck_assert_int_eq(store_events_prune(s, 1, 1000, &del, &e), 0);
	ck_assert_int_eq(store_instance_delete(s, inst->uuid, &e), 0);
	ck_assert_int_eq(store_events_list(s, 0, 10, NULL, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(v[1].id, 13);
	free(v);
	store_event_hook_set(NULL, NULL);
	bdm_clear(&b);
	instance_free(inst);
	store_close(s);
}
END_TEST

/* Schema 6: where a volume's attach or detach stands, per BDM; a
 * database from version 5 gets the column (NULL: settled) on open, and
 * store_instance_states tells in the same query which instances have an
 * unsettled BDM. */
START_TEST(test_store_version_6_records_where_an_attach_or_detach_stands)
{
	struct store *s = open_store();
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = make_instance(create_body), *got = NULL;
	struct instance *other = make_instance(create_body);
	struct store_instance_state *v = NULL;
	struct bdm b = {0};
	struct err e = {0};
	size_t n = 0, i;
	int ver = 0;
	sqlite3 *db;

	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	ck_assert_int_eq(store_instance_create(s, other, NULL, &e), 0);
	ck_assert_msg(bdm_json_parse_attach(
			  attach_body, strlen(attach_body), &b, &e) == 0,
	    "%s", e.msg);
	ck_assert_msg(bdm_prepare_attach(inst, &b, &lim, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    blockinfo_pick_attach(inst, &b, &lim, &e) == 0, "%s", e.msg);
	b.attach_state = BDM_ATTACH_ATTACHING;
	ck_assert_int_eq(store_bdm_insert(s, inst->uuid, &b, &e), 0);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_uint_eq(got->n_bdms, 5);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(got->bdms[i].attach_state, BDM_ATTACH_SETTLED);
	ck_assert_int_eq(got->bdms[4].attach_state, BDM_ATTACH_ATTACHING);
	got = instance_free(got);
	ck_assert_int_eq(store_instance_states(s, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(v[0].unsettled);
	ck_assert(!v[1].unsettled);
	free(v);

	/* detaching shows and bumps the generation; settled clears */
	ck_assert_int_eq(store_bdm_set_attach_state(
			     s, inst->uuid, b.uuid, BDM_ATTACH_DETACHING, &e),
	    0);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_int_eq(got->bdms[4].attach_state, BDM_ATTACH_DETACHING);
	ck_assert_int_eq(got->generation, 3);
	got = instance_free(got);
	ck_assert_int_eq(store_bdm_set_attach_state(
			     s, inst->uuid, b.uuid, BDM_ATTACH_SETTLED, &e),
	    0);
	ck_assert_int_eq(store_instance_states(s, &v, &n, &e), 0);
	ck_assert(!v[0].unsettled);
	free(v);
	ck_assert_int_eq(store_bdm_set_attach_state(
			     s, other->uuid, b.uuid, BDM_ATTACH_DETACHING, &e),
	    -ENOENT);
	err_clear(&e);
	ck_assert_int_eq(store_bdm_set_attach_state(
			     s, inst->uuid, b.uuid, BDM_ATTACH_ATTACHING, &e),
	    0);
	store_close(s);

	/* The same rows at version 5 (the column and index as 6 adds
	 * them, and 7's node table, 8's events and 9's guest tables, taken
	 * away): opened without migrating, every instance is flagged
	 * (nothing tells which are settled) ... */
	db = raw_open();
	raw_exec(db,
	    DROP_USAGE
	    "DROP TABLE IF EXISTS nics;"
	    "DROP TABLE IF EXISTS instance_guest;"
	    "DROP TABLE IF EXISTS node;"
	    "DROP TABLE IF EXISTS events;"
	    "DROP INDEX block_device_mappings_unsettled;"
	    "ALTER TABLE block_device_mappings DROP COLUMN attach_state;"
	    "PRAGMA user_version = 5;");
	sqlite3_close(db);
	ck_assert_int_eq(store_open(dbpath,
			     &(struct store_opts){.no_migrate = true}, &s, &e),
	    0);
	ck_assert_int_eq(store_instance_states(s, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(v[0].unsettled && v[1].unsettled);
	ck_assert_int_eq(v[0].desired, INSTANCE_RUNNING);
	free(v);
	ck_assert_int_eq(store_instance_get(s, inst->uuid, &got, &e), 0);
	ck_assert_int_eq(got->bdms[4].attach_state, BDM_ATTACH_SETTLED);
	got = instance_free(got);
	store_close(s);

	/* ... and migrated past 6 every existing row is settled */
	s = open_store();
	ck_assert_int_eq(store_schema_version(s, &ver, &e), 0);
	ck_assert_int_eq(ver, STORE_SCHEMA_VERSION);
	ck_assert_int_eq(store_integrity_check(s, &e), 0);
	ck_assert_int_eq(store_instance_states(s, &v, &n, &e), 0);
	ck_assert(!v[0].unsettled && !v[1].unsettled);
	free(v);
	store_close(s);
	db = raw_open();
	ck_assert_int_eq(raw_int(db,
			     "SELECT count(*) FROM block_device_mappings"
			     " WHERE attach_state IS NOT NULL"),
	    0);
	ck_assert_int_ne(sqlite3_exec(db,
			     "UPDATE block_device_mappings"
			     " SET attach_state = 'attached'",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	bdm_clear(&b);
	instance_free(inst);
	instance_free(other);
}
END_TEST

/* ---- images ---------------------------------------------------------- */

START_TEST(test_store_image_cannot_be_deleted_while_an_instance_uses_it)
{
	struct store *s = open_store();
	struct instance *inst = make_instance(create_body);
	struct store_image img = {.id = IMAGE_ID,
	    .format = (char *)"qcow2",
	    .virtual_size = 1 << 30,
	    .file_size = 12345,
	    .checksum = (char *)"sha256:00",
	    .properties = (char *)"{\"hw_disk_bus\": \"scsi\"}"};
	struct store_image *got = NULL, **v = NULL;
	struct err e = {0};
	size_t n;

	ck_assert_int_eq(store_image_put(s, &img, &e), 0);
	ck_assert_int_eq(store_image_put(s, &img, &e), -EEXIST);
	err_clear(&e);
	ck_assert_int_eq(store_image_get(s, IMAGE_ID, &got, &e), 0);
	ck_assert_str_eq(got->format, "qcow2");
	ck_assert_int_eq(got->virtual_size, 1 << 30);
	ck_assert_int_eq(got->file_size, 12345);
	ck_assert_str_eq(got->properties, img.properties);
	ck_assert_int_gt(got->created_at, 0);
	store_image_free(got);
	ck_assert_int_eq(store_image_list(s, &v, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	store_image_list_free(v, n);

	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	ck_assert_int_eq(store_image_delete(s, IMAGE_ID, &e), -EBUSY);
	err_clear(&e);
	ck_assert_int_eq(store_instance_delete(s, inst->uuid, &e), 0);
	ck_assert_int_eq(store_image_delete(s, IMAGE_ID, &e), 0);
	ck_assert_int_eq(store_image_delete(s, IMAGE_ID, &e), -ENOENT);
	err_clear(&e);
	ck_assert_int_eq(store_image_get(s, IMAGE_ID, &got, &e), -ENOENT);
	instance_free(inst);
	store_close(s);
}
END_TEST

/* ---- errors ---------------------------------------------------------- */

START_TEST(test_store_busy_writer_is_a_retryable_error_and_readers_go_on)
{
	struct store *s = NULL;
	struct instance *a = make_instance(create_body);
	struct instance *b = make_instance(create_body), *got = NULL;
	struct err e = {0};
	sqlite3 *db;

	ck_assert_int_eq(
	    store_open(
		dbpath, &(struct store_opts){.busy_timeout_ms = 50}, &s, &e),
	    0);
	ck_assert_int_eq(store_instance_create(s, a, NULL, &e), 0);
	db = raw_open();
	raw_exec(db, "BEGIN IMMEDIATE");
	/* Readers never wait for the writer... */
	ck_assert_int_eq(store_instance_get(s, a->uuid, &got, &e), 0);
	instance_free(got);
	/* ...and a writer that cannot get the lock hears "try again". */
	ck_assert_int_eq(store_instance_create(s, b, NULL, &e), -EAGAIN);
	ck_assert_msg(strstr(e.msg, "try again"), "%s", e.msg);
	raw_exec(db, "ROLLBACK");
	sqlite3_close(db);
	err_clear(&e);
	ck_assert_int_eq(store_instance_create(s, b, NULL, &e), 0);
	instance_free(a);
	instance_free(b);
	store_close(s);
}
END_TEST

START_TEST(test_store_corrupt_file_is_an_io_error_that_names_no_sql)
{
	struct store *s = open_store();
	struct instance *inst = make_instance(create_body);
	struct err e = {0};
	FILE *f;
	char junk[4096];
	int rc;

	ck_assert_int_eq(store_instance_create(s, inst, NULL, &e), 0);
	store_close(s);
	/* Checkpointed on close (last connection): scribble on the pages
	 * after the header. */
	memset(junk, 0x5a, sizeof(junk));
	f = fopen(dbpath, "r+b");
	ck_assert_ptr_nonnull(f);
	fseek(f, 4096, SEEK_SET);
	fwrite(junk, 1, sizeof(junk), f);
	fwrite(junk, 1, sizeof(junk), f);
	fclose(f);
	s = NULL;
	rc = store_open(dbpath, NULL, &s, &e);
	if (rc == 0) {
		struct instance *got = NULL;

		rc = store_integrity_check(s, &e);
		if (rc == 0)
			rc = store_instance_get(s, inst->uuid, &got, &e);
		instance_free(got);
		store_close(s);
	}
	ck_assert_int_eq(rc, -EIO);
	ck_assert_msg(!strstr(e.msg, "SELECT") && !strstr(e.msg, "instances") &&
		!strstr(e.msg, "block_device"),
	    "%s", e.msg);
	instance_free(inst);
}
END_TEST

/* ---- node: usage, capacity claims, uuid (issue 13) ------------------- */

/* Booted from a volume: the root disk is no local disk, so it takes no
 * DISK_GB (resources_from_flavor), only the swap's 1 GiB (1 MiB rounded
 * up). */
static const char bfv_body[] =
    "{\"name\": \"bfv\","
    " \"flavor\": {\"vcpus\": 1, \"memory_mb\": 512, \"root_gb\": 40,"
    "  \"ephemeral_gb\": 0, \"swap\": 1},"
    " \"block_device_mapping_v2\": ["
    "  {\"boot_index\": 0, \"source_type\": \"volume\","
    "   \"destination_type\": \"volume\", \"uuid\": \"" VOLUME_ID "\","
    "   \"connection_info\": {\"driver_volume_type\": \"file\","
    "    \"data\": {\"device_path\": \"/var/lib/vol/a.img\"}}}"
    " ]}";

/* A copy of create_body's instance under a new uuid and new BDM uuids. */
static struct instance *
make_fresh(const char *body)
{
	struct instance *inst = make_instance(body);

	util_uuid_generate(inst->uuid);
	for (size_t i = 0; i < inst->n_bdms; i++)
		util_uuid_generate(inst->bdms[i].uuid);
	return inst;
}

/* lib/node.c's arithmetic, Placement's and Nova's rules (pure). */
START_TEST(test_node_inventory_and_capacity_follow_placement)
{
	struct node_totals t = {16, 3072, 100LL * 1024 * 1024 * 1024 + 5};
	struct node_conf c = {4.0, 1.5, 0.9, 1, 512, 1025};
	struct node_inventory inv[NODE_N_RC];
	struct node_limits l;
	struct flavor f = {2, 100, 10, 5, 1};
	int64_t want[NODE_N_RC], used[NODE_N_RC] = {0, 3840, 0};

	node_inventories(&t, &c, inv);
	ck_assert_int_eq(inv[NODE_VCPU].total, 16);
	ck_assert_int_eq(inv[NODE_VCPU].reserved, 1);
	ck_assert_int_eq(inv[NODE_DISK_GB].total, 100); /* whole GiB, down */
	ck_assert_int_eq(inv[NODE_DISK_GB].reserved, 2); /* 1025 MiB, up */
	node_limits_from(inv, &l);
	ck_assert_int_eq(l.capacity[NODE_VCPU], 60);
	ck_assert_int_eq(l.capacity[NODE_MEMORY_MB], 3840);
	ck_assert_int_eq(l.capacity[NODE_DISK_GB], 88); /* floor(98 * 0.9) */
	/* reserved beyond the total: no room, never negative */
	inv[NODE_VCPU].reserved = 20;
	ck_assert_int_eq(node_capacity(&inv[NODE_VCPU]), 0);
	node_flavor_usage(&f, false, want);
	ck_assert_int_eq(want[NODE_DISK_GB], 10 + 5 + 1);
	node_flavor_usage(&f, true, want);
	ck_assert_int_eq(want[NODE_DISK_GB], 5 + 1);
	/* memory is full; a class the instance does not want is not checked */
	ck_assert_int_eq(node_first_short(&l, used, want), NODE_MEMORY_MB);
	want[NODE_MEMORY_MB] = 0;
	ck_assert_int_eq(node_first_short(&l, used, want), -1);
	ck_assert_str_eq(node_rc_name(NODE_DISK_GB), "DISK_GB");
}
END_TEST

START_TEST(test_store_node_usage_counts_as_resources_from_flavor)
{
	struct store *s = open_store();
	struct instance *a = make_fresh(create_body), *b = make_fresh(bfv_body);
	struct err e = {0};
	int64_t u[NODE_N_RC], n = -1;

	ck_assert_int_eq(store_node_usage(s, u, &n, &e), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(u[NODE_VCPU] + u[NODE_MEMORY_MB] + u[NODE_DISK_GB], 0);
	ck_assert_msg(store_instance_create(s, a, NULL, &e) == 0, "%s", e.msg);
	ck_assert_msg(store_instance_create(s, b, NULL, &e) == 0, "%s", e.msg);
	/* whatever the state: an error or stopped instance still counts */
	ck_assert_int_eq(
	    store_instance_set_state(s, a->uuid, INSTANCE_ERROR, &e), 0);
	ck_assert_int_eq(store_node_usage(s, u, &n, &e), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(u[NODE_VCPU], 2 + 1);
	ck_assert_int_eq(u[NODE_MEMORY_MB], 2048 + 512);
	/* a: 10 root + 20 ephemeral + 1024 MiB swap; b: no root, 1 MiB swap */
	ck_assert_int_eq(u[NODE_DISK_GB], 10 + 20 + 1 + 1);
	instance_free(a);
	instance_free(b);
	store_close(s);
}
END_TEST

/* The row the triggers keep against the sum over the rows (verify says
 * whether they differ) after writes through the store and through plain
 * SQL, a row set wrong by hand, and a migration of existing rows. */
static void
usage_agrees_at(struct store *s, int line)
{
	struct err e = {0};
	int fixed = -1;

	ck_assert_msg(store_node_usage_verify(s, &fixed, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    fixed == 0, "line %d: the row differs from the sum", line);
}
#define usage_agrees(s) usage_agrees_at(s, __LINE__)

START_TEST(test_store_node_usage_row_follows_every_write_and_migrates)
{
	struct store *s = open_store();
	struct instance *a = make_fresh(create_body), *b = make_fresh(bfv_body);
	struct err e = {0};
	int64_t u[NODE_N_RC], n = -1;
	int fixed = -1, ver = 0;
	char sql[256];
	sqlite3 *db;

	usage_agrees(s);
	ck_assert_msg(store_instance_create(s, a, NULL, &e) == 0, "%s", e.msg);
	usage_agrees(s);
	ck_assert_msg(store_instance_create(s, b, NULL, &e) == 0, "%s", e.msg);
	usage_agrees(s);
	ck_assert_int_eq(store_node_usage(s, u, &n, &e), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(u[NODE_DISK_GB], 10 + 20 + 1 + 1);

	/* what hyperlet never writes, an operator's SQL might */
	db = raw_open();
	(void)snprintf(sql, sizeof(sql),
	    "UPDATE instances SET vcpus = vcpus + 3, root_gb = root_gb + 5,"
	    " swap_mb = 3000 WHERE uuid IN ('%s', '%s')",
	    a->uuid, b->uuid);
	raw_exec(db, sql);
	usage_agrees(s);
	/* b's boot volume no longer boots, then does again, then goes */
	raw_exec(db,
	    "UPDATE block_device_mappings SET boot_index = NULL"
	    " WHERE boot_index = 0 AND destination_type = 'volume'");
	usage_agrees(s);
	(void)snprintf(sql, sizeof(sql),
	    "UPDATE block_device_mappings SET boot_index = 0"
	    " WHERE instance_id = (SELECT id FROM instances WHERE uuid = '%s')",
	    b->uuid);
	raw_exec(db, sql);
	usage_agrees(s);
	ck_assert_int_eq(store_node_usage(s, u, NULL, &e), 0);
	/* a: 15 root + 20 + 3 swap; b: no root, 3 swap */
	ck_assert_int_eq(u[NODE_DISK_GB], 15 + 20 + 3 + 3);
	ck_assert_int_eq(u[NODE_VCPU], 2 + 3 + 1 + 3);
	raw_exec(db,
	    "DELETE FROM block_device_mappings"
	    " WHERE boot_index = 0 AND destination_type = 'volume'");
	usage_agrees(s);
	sqlite3_close(db);

	/* deletes, through the store (the BDMs go by cascade) */
	ck_assert_int_eq(store_instance_delete(s, b->uuid, &e), 0);
	usage_agrees(s);
	ck_assert_int_eq(store_instance_delete(s, a->uuid, &e), 0);
	usage_agrees(s);
	ck_assert_int_eq(store_node_usage(s, u, &n, &e), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(u[NODE_VCPU] + u[NODE_MEMORY_MB] + u[NODE_DISK_GB], 0);

	/* a row set wrong by hand is mended once */
	ck_assert_msg(store_instance_create(s, a, NULL, &e) == 0, "%s", e.msg);
	db = raw_open();
	raw_exec(db, "UPDATE node_usage SET vcpus = 999, instances = 7");
	sqlite3_close(db);
	ck_assert_int_eq(store_node_usage_verify(s, &fixed, &e), 0);
	ck_assert_int_eq(fixed, 1);
	usage_agrees(s);
	ck_assert_int_eq(store_node_usage(s, u, &n, &e), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(u[NODE_VCPU], 2);
	store_close(s);

	/* existing rows at version 10 are summed by the migration */
	db = raw_open();
	raw_exec(db, DROP_USAGE "PRAGMA user_version = 10;");
	sqlite3_close(db);
	s = open_store();
	ck_assert_int_eq(store_schema_version(s, &ver, &e), 0);
	ck_assert_int_eq(ver, STORE_SCHEMA_VERSION);
	usage_agrees(s);
	ck_assert_msg(store_instance_create(s, b, NULL, &e) == 0, "%s", e.msg);
	usage_agrees(s);
	ck_assert_int_eq(store_node_usage(s, u, &n, &e), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(u[NODE_DISK_GB], 10 + 20 + 1 + 1);
	ck_assert_int_eq(store_integrity_check(s, &e), 0);
	instance_free(a);
	instance_free(b);
	store_close(s);
}
END_TEST

START_TEST(test_store_claim_refuses_what_does_not_fit_and_writes_nothing)
{
	struct store *s = open_store();
	struct instance *a = make_fresh(create_body),
			*b = make_fresh(create_body);
	struct instance *c = make_fresh(create_body), *got = NULL;
	/* room for two of create_body's 2 VCPU / 2048 MB, any disk */
	struct node_limits l = {{6, 4096, -1}};
	struct err e = {0};
	int64_t u[NODE_N_RC];

	ck_assert_msg(
	    store_instance_claim(s, a, NULL, &l, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    store_instance_claim(s, b, NULL, &l, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(store_instance_claim(s, c, NULL, &l, &e), -ENOSPC);
	ck_assert_str_eq(e.field, "MEMORY_MB");
	ck_assert_msg(strstr(e.msg, "MEMORY_MB"), "%s", e.msg);
	err_clear(&e);
	ck_assert_int_eq(store_instance_get(s, c->uuid, &got, &e), -ENOENT);
	err_clear(&e);
	ck_assert_int_eq(store_node_usage(s, u, NULL, &e), 0);
	ck_assert_int_eq(u[NODE_MEMORY_MB], 4096);
	/* VCPU is checked first: 4 + 2 > 5 */
	l.capacity[NODE_MEMORY_MB] = -1;
	l.capacity[NODE_VCPU] = 5;
	ck_assert_int_eq(store_instance_claim(s, c, NULL, &l, &e), -ENOSPC);
	ck_assert_str_eq(e.field, "VCPU");
	err_clear(&e);
	/* a delete frees the room */
	ck_assert_int_eq(store_instance_delete(s, a->uuid, &e), 0);
	ck_assert_msg(
	    store_instance_claim(s, c, NULL, &l, &e) == 0, "%s", e.msg);
	/* no limits: no check */
	ck_assert_msg(store_instance_create(s, a, NULL, &e) == 0, "%s", e.msg);
	instance_free(a);
	instance_free(b);
	instance_free(c);
	store_close(s);
}
END_TEST

#define CLAIM_RACERS 8

struct claimer {
	pthread_barrier_t *bar;
	struct instance *inst;
	const struct node_limits *l;
	int rc;
	char msg[256];
};

static void *
claim_main(void *arg)
{
	struct claimer *r = arg;
	struct store *s = NULL;
	struct err e = {0};

	r->rc = store_open(
	    dbpath, &(struct store_opts){.no_migrate = true}, &s, &e);
	pthread_barrier_wait(r->bar);
	if (r->rc == 0)
		r->rc = store_instance_claim(s, r->inst, NULL, r->l, &e);
	(void)snprintf(r->msg, sizeof(r->msg), "%s", e.msg);
	store_close(s);
	return NULL;
}

/* Eight creates, each on its own connection, race for room for one more
 * instance: exactly one wins, the others are -ENOSPC, one row is added. */
START_TEST(test_store_claims_racing_for_the_last_room_let_exactly_one_win)
{
	struct store *s = open_store();
	struct instance *first = make_fresh(create_body);
	struct node_limits l = {{-1, 2 * 2048, -1}};
	struct claimer r[CLAIM_RACERS];
	pthread_t t[CLAIM_RACERS];
	pthread_barrier_t bar;
	struct err e = {0};
	int64_t u[NODE_N_RC], n = 0;
	int i, won = 0;

	ck_assert_int_eq(store_instance_claim(s, first, NULL, &l, &e), 0);
	pthread_barrier_init(&bar, NULL, CLAIM_RACERS);
	for (i = 0; i < CLAIM_RACERS; i++) {
		r[i] = (struct claimer){
		    .bar = &bar, .inst = make_fresh(create_body), .l = &l};
		pthread_create(&t[i], NULL, claim_main, &r[i]);
	}
	for (i = 0; i < CLAIM_RACERS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(r[i].rc == 0 || r[i].rc == -ENOSPC,
		    "racer %d: %d %s", i, r[i].rc, r[i].msg);
		won += r[i].rc == 0;
		instance_free(r[i].inst);
	}
	ck_assert_int_eq(won, 1);
	ck_assert_int_eq(store_node_usage(s, u, &n, &e), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(u[NODE_MEMORY_MB], 2 * 2048);
	pthread_barrier_destroy(&bar);
	instance_free(first);
	store_close(s);
}
END_TEST

START_TEST(test_store_node_uuid_is_drawn_once_and_kept)
{
	struct store *s = open_store(), *s2;
	char a[UUID_STR_LEN], b[UUID_STR_LEN];
	struct err e = {0};

	ck_assert_msg(store_node_uuid(s, a, &e) == 0, "%s", e.msg);
	ck_assert(util_uuid_is_canonical(a));
	store_close(s);
	s2 = open_store();
	ck_assert_int_eq(store_node_uuid(s2, b, &e), 0);
	ck_assert_str_eq(a, b);
	store_close(s2);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("store");
	TCase *tc;

	tc = tcase_create("store_open");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
	    tc, test_store_open_creates_the_current_schema_in_wal_mode);
	tcase_add_test(
	    tc, test_store_open_refuses_a_database_from_a_future_version);
	tcase_add_test(
	    tc, test_store_open_without_migrating_never_creates_the_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("store_migrate");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
	    tc, test_store_migrates_a_version_1_database_and_keeps_its_rows);
	tcase_add_test(tc,
	    test_store_version_5_keeps_what_each_row_wants_apart_from_its_state);
	suite_add_tcase(s, tc);

	tc = tcase_create("store_node");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_node_inventory_and_capacity_follow_placement);
	tcase_add_test(
	    tc, test_store_node_usage_counts_as_resources_from_flavor);
	tcase_add_test(
	    tc, test_store_node_usage_row_follows_every_write_and_migrates);
	tcase_add_test(
	    tc, test_store_claim_refuses_what_does_not_fit_and_writes_nothing);
	tcase_add_test(
	    tc, test_store_claims_racing_for_the_last_room_let_exactly_one_win);
	tcase_add_test(tc, test_store_node_uuid_is_drawn_once_and_kept);
	suite_add_tcase(s, tc);

	tc = tcase_create("store_online_migrate");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
	    tc, test_store_online_migration_fills_rows_in_batches_of_max_count);
	tcase_add_test(
	    tc, test_store_get_gives_a_version_1_bdm_one_uuid_that_sticks);
	tcase_add_test(tc,
	    test_store_threads_racing_over_the_same_rows_give_each_one_uuid);
	tcase_add_test(tc,
	    test_store_processes_racing_over_the_same_rows_give_each_one_uuid);
	suite_add_tcase(s, tc);

	tc = tcase_create("store_instance");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
	    tc, test_store_create_then_get_returns_every_field_and_bdm);
	tcase_add_test(
	    tc, test_store_create_is_all_or_nothing_when_a_bdm_uuid_is_taken);
	tcase_add_test(tc,
	    test_store_mark_deleting_refuses_building_and_a_moved_generation);
	tcase_add_test(
	    tc, test_store_refuses_ids_that_are_not_canonical_lower_case);
	tcase_add_test(
	    tc, test_store_set_state_bumps_generation_and_updated_at);
	tcase_add_test(tc, test_store_delete_takes_the_bdms_with_the_instance);
	tcase_add_test(
	    tc, test_store_observe_state_writes_only_a_change_of_a_settled_row);
	tcase_add_test(
	    tc, test_store_version_10_admits_paused_and_crashed_and_keeps_rows);
	tcase_add_test(tc, test_store_a_lazy_commit_is_seen_by_others_and_kept);
	tcase_add_test(tc, test_store_counts_instances_by_state);
	tcase_add_test(
	    tc, test_store_instance_states_lists_uuid_and_state_in_order);
	tcase_add_test(
	    tc, test_store_create_records_whether_the_instance_should_run);
	tcase_add_test(
	    tc, test_store_version_6_records_where_an_attach_or_detach_stands);
	tcase_add_test(
	    tc, test_store_events_follow_every_change_in_the_same_transaction);
	tcase_add_test(tc, test_store_nic_attach_state_and_its_events);
	suite_add_tcase(s, tc);

	tc = tcase_create("store_tombstone");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
	    tc, test_store_roll_back_deletes_the_row_and_leaves_a_tombstone);
	suite_add_tcase(s, tc);

	tc = tcase_create("store_instance_list");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
	    tc, test_store_list_pages_in_creation_order_after_the_marker);
	suite_add_tcase(s, tc);

	tc = tcase_create("store_bdm");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
	    tc, test_store_bdm_insert_and_delete_bump_the_generation);
	suite_add_tcase(s, tc);

	tc = tcase_create("store_image");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
	    tc, test_store_image_cannot_be_deleted_while_an_instance_uses_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("store_errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
	    tc, test_store_busy_writer_is_a_retryable_error_and_readers_go_on);
	tcase_add_test(
	    tc, test_store_corrupt_file_is_an_io_error_that_names_no_sql);
	suite_add_tcase(s, tc);

	return testutil_run(s);
}
