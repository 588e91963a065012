/*
 * bench_floor: the floor `make bench` compares hyperlet's create with. It
 * does only what one create cannot avoid: one SQLite transaction writing
 * the instance row and its 5 BDM rows (WAL, synchronous=FULL, one
 * connection per thread, as hyperletd) and virDomainDefineXMLFlags(...,
 * VALIDATE) of the same domain XML hyperlet produces, on the same URI,
 * with CONC threads. Then it deletes them the same way (undefine + one
 * DELETE). No HTTP, no JSON, no validation, no storage volumes.
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "benchutil.h"

/* lib/store.c's schema at version 3 (instances, block_device_mappings
 * and their indexes), so that each row costs what it costs there. */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS instances ("
    " id INTEGER PRIMARY KEY,"
    " uuid TEXT NOT NULL UNIQUE"
    "  CHECK (length(uuid) = 36 AND uuid NOT GLOB '*[^0-9a-f-]*'),"
    " name TEXT NOT NULL, vcpus INTEGER NOT NULL,"
    " memory_mb INTEGER NOT NULL, root_gb INTEGER NOT NULL,"
    " ephemeral_gb INTEGER NOT NULL, swap_mb INTEGER NOT NULL,"
    " image_ref TEXT, hw_disk_bus TEXT, hw_cdrom_bus TEXT,"
    " hw_scsi_model TEXT, hw_machine_type TEXT,"
    " metadata TEXT NOT NULL DEFAULT '{}',"
    " config_drive INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('building', 'running', 'stopped', 'error', 'deleting')),"
    " request_digest TEXT, generation INTEGER NOT NULL DEFAULT 1,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS instances_image_ref ON instances (image_ref);"
    "CREATE TABLE IF NOT EXISTS block_device_mappings ("
    " id INTEGER PRIMARY KEY,"
    " uuid TEXT NOT NULL"
    "  CHECK (length(uuid) = 36 AND uuid NOT GLOB '*[^0-9a-f-]*'),"
    " instance_id INTEGER NOT NULL"
    "  REFERENCES instances (id) ON DELETE CASCADE,"
    " source_type TEXT NOT NULL, destination_type TEXT NOT NULL,"
    " guest_format TEXT, boot_index INTEGER, device_type TEXT,"
    " disk_bus TEXT, device_name TEXT, volume_size INTEGER, image_id TEXT,"
    " volume_id TEXT, snapshot_id TEXT, tag TEXT,"
    " delete_on_termination INTEGER NOT NULL DEFAULT 0,"
    " connection_info TEXT);"
    "CREATE INDEX IF NOT EXISTS block_device_mappings_instance"
    " ON block_device_mappings (instance_id, id);"
    "CREATE INDEX IF NOT EXISTS block_device_mappings_image"
    " ON block_device_mappings (image_id);"
    "CREATE UNIQUE INDEX IF NOT EXISTS block_device_mappings_uuid"
    " ON block_device_mappings (uuid);";

static const char *db_path, *uri, *tmpl, *tmpl_uuid;
static virConnectPtr conn;
static size_t n_total;
static atomic_size_t next_i;
static atomic_size_t errors;
static double *lat;
static char (*uuids)[37];
static bool deleting;
/* One writer at a time, taken before BEGIN: SQLite serialises writers
 * anyway, and waiting on a mutex costs nothing where busy_timeout's
 * sleep-and-retry (1, 2, 5 ... 100 ms) would make the floor slower than
 * it has to be under contention. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static void
quiet(void *u, virErrorPtr err)
{
	(void)u;
	(void)err;
}

static int
exec_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		fprintf(stderr, "bench_floor: %s\n", msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static sqlite3 *
db_open(void)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(db_path, &db) != SQLITE_OK)
		return NULL;
	sqlite3_busy_timeout(db, 5000);
	if (exec_sql(db,
		"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		" PRAGMA foreign_keys=ON;") < 0) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/* The template with every occurrence of its uuid replaced by u. */
static char *
xml_for(const char *u)
{
	size_t n = strlen(tmpl), k = strlen(tmpl_uuid);
	char *out = malloc(n + 1), *o = out;
	const char *p = tmpl;

	while (*p) {
		if (strncmp(p, tmpl_uuid, k) == 0) {
			memcpy(o, u, 36);
			o += 36;
			p += k;
		} else
			*o++ = *p++;
	}
	*o = '\0';
	return out;
}

static int
create_one(sqlite3 *db, sqlite3_stmt *qi, sqlite3_stmt *qb, const char *u)
{
	char *xml;
	virDomainPtr dom;
	sqlite3_int64 id;

	pthread_mutex_lock(&write_lock);
	if (exec_sql(db, "BEGIN IMMEDIATE") < 0) {
		pthread_mutex_unlock(&write_lock);
		return -1;
	}
	sqlite3_reset(qi);
	sqlite3_bind_text(qi, 1, u, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(qi) != SQLITE_DONE)
		goto fail;
	id = sqlite3_last_insert_rowid(db);
	for (int i = 0; i < 5; i++) {
		char bu[37];
		uuid_t b;
		static const char *const src[] = {
		    "image", "blank", "blank", "volume", "volume"};
		static const char *const dst[] = {
		    "local", "local", "local", "volume", "volume"};

		uuid_generate_random(b);
		uuid_unparse_lower(b, bu);
		sqlite3_reset(qb);
		sqlite3_bind_text(qb, 1, bu, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(qb, 2, id);
		sqlite3_bind_text(qb, 3, src[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(qb, 4, dst[i], -1, SQLITE_STATIC);
		sqlite3_bind_int(qb, 5, i == 0 ? 0 : -1);
		if (sqlite3_step(qb) != SQLITE_DONE)
			goto fail;
	}
	if (exec_sql(db, "COMMIT") < 0)
		goto fail;
	pthread_mutex_unlock(&write_lock);
	xml = xml_for(u);
	dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	free(xml);
	if (dom == NULL) {
		virErrorPtr err = virGetLastError();

		fprintf(stderr, "bench_floor: define: %s\n",
		    err && err->message ? err->message : "?");
		return -1;
	}
	virDomainFree(dom);
	return 0;
fail:
	fprintf(stderr, "bench_floor: %s\n", sqlite3_errmsg(db));
	(void)exec_sql(db, "ROLLBACK");
	pthread_mutex_unlock(&write_lock);
	return -1;
}

static int
delete_one(sqlite3_stmt *qd, const char *u)
{
	virDomainPtr dom = virDomainLookupByUUIDString(conn, u);
	int rc;

	if (dom == NULL)
		return -1;
	if (virDomainUndefineFlags(dom, 0) < 0) {
		virDomainFree(dom);
		return -1;
	}
	virDomainFree(dom);
	sqlite3_reset(qd);
	sqlite3_bind_text(qd, 1, u, -1, SQLITE_TRANSIENT);
	pthread_mutex_lock(&write_lock);
	rc = sqlite3_step(qd) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(qd);
	pthread_mutex_unlock(&write_lock);
	return rc;
}

static void *
worker(void *arg)
{
	static const char ins_i[] =
	    "INSERT INTO instances (uuid, name, state, vcpus, memory_mb,"
	    " root_gb, ephemeral_gb, swap_mb, image_ref, metadata,"
	    " config_drive, generation, created_at, updated_at) VALUES (?1,"
	    " 'bench', 'building', 1, 256, 1, 1, 64, '6f1b4a52-6c9b-4f55-8d8f-"
	    "9a1c2b3d4e5f', '{}', 0, 1, 0, 0)";
	static const char ins_b[] =
	    "INSERT INTO block_device_mappings (uuid, instance_id,"
	    " source_type, destination_type, boot_index, device_type, disk_bus,"
	    " device_name, volume_size, delete_on_termination) VALUES (?1, ?2,"
	    " ?3, ?4, ?5, 'disk', 'virtio', '/dev/vdb', 1, 1)";
	static const char del[] = "DELETE FROM instances WHERE uuid = ?1";
	sqlite3 *db = db_open();
	sqlite3_stmt *qi = NULL, *qb = NULL, *qd = NULL;
	size_t i;

	(void)arg;
	if (db == NULL || sqlite3_prepare_v2(db, ins_i, -1, &qi, NULL) ||
	    sqlite3_prepare_v2(db, ins_b, -1, &qb, NULL) ||
	    sqlite3_prepare_v2(db, del, -1, &qd, NULL)) {
		fprintf(stderr, "bench_floor: cannot open %s\n", db_path);
		exit(1);
	}
	while ((i = atomic_fetch_add(&next_i, 1)) < n_total) {
		double t0 = bench_now_ms();
		int rc;

		if (!deleting) {
			uuid_t u;

			uuid_generate_random(u);
			uuid_unparse_lower(u, uuids[i]);
			rc = create_one(db, qi, qb, uuids[i]);
		} else
			rc = delete_one(qd, uuids[i]);
		if (rc < 0)
			atomic_fetch_add(&errors, 1);
		lat[i] = bench_now_ms() - t0;
	}
	sqlite3_finalize(qi);
	sqlite3_finalize(qb);
	sqlite3_finalize(qd);
	sqlite3_close(db);
	return NULL;
}

static double
tv_ms(const struct timeval *tv)
{
	return (double)tv->tv_sec * 1e3 + (double)tv->tv_usec / 1e3;
}

static double
run(int conc)
{
	pthread_t *t = calloc((size_t)conc, sizeof(*t));
	double t0 = bench_now_ms();

	atomic_store(&next_i, 0);
	atomic_store(&errors, 0);
	for (int i = 0; i < conc; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < conc; i++)
		pthread_join(t[i], NULL);
	free(t);
	return bench_now_ms() - t0;
}

int
main(int argc, char **argv)
{
	char name[128], *u0, *u1;
	struct rusage ru0, ru1;
	sqlite3 *db;
	int conc;
	double wall;

	if (argc != 7) {
		fprintf(stderr,
		    "usage: bench_floor DB URI DOMAIN_XML N CONC "
		    "NAME\n");
		return 2;
	}
	db_path = argv[1];
	uri = argv[2];
	tmpl = bench_read_file(argv[3]);
	n_total = strtoul(argv[4], NULL, 10);
	conc = atoi(argv[5]);
	if (tmpl == NULL || (u0 = strstr(tmpl, "<uuid>")) == NULL ||
	    (u1 = strstr(u0, "</uuid>")) == NULL || u1 - u0 != 6 + 36 ||
	    n_total == 0 || conc < 1) {
		fprintf(stderr, "bench_floor: bad arguments or XML\n");
		return 2;
	}
	tmpl_uuid = strndup(u0 + 6, 36);
	virSetErrorFunc(NULL, quiet);
	if ((conn = virConnectOpen(uri)) == NULL) {
		fprintf(stderr, "bench_floor: cannot open %s\n", uri);
		return 1;
	}
	if ((db = db_open()) == NULL || exec_sql(db, schema) < 0)
		return 1;
	sqlite3_close(db);
	lat = calloc(n_total, sizeof(double));
	uuids = calloc(n_total, sizeof(*uuids));

	getrusage(RUSAGE_SELF, &ru0);
	wall = run(conc);
	snprintf(name, sizeof(name), "floor_create_%s", argv[6]);
	bench_report_latencies(name, lat, n_total, wall, errors);
	/* What N domains cost the process that holds them (test:///default
	 * keeps them in this process, as it does in hyperletd's). */
	{
		FILE *f = fopen("/proc/self/status", "r");
		char line[256];

		while (f && fgets(line, sizeof(line), f))
			if (strncmp(line, "VmRSS:", 6) == 0)
				printf("floor_rss_created_%s %ld KiB\n",
				    argv[6], strtol(line + 6, NULL, 10));
		if (f)
			fclose(f);
	}
	deleting = true;
	wall = run(conc);
	getrusage(RUSAGE_SELF, &ru1);
	snprintf(name, sizeof(name), "floor_delete_%s", argv[6]);
	bench_report_latencies(name, lat, n_total, wall, errors);
	/* CPU time (user + system, all threads) per create and its delete:
	 * on a machine shared with other work it moves far less than req/s
	 * does. run.sh measures hyperletd's the same way. */
	printf("floor_create_%s_cpu %.3f ms\n", argv[6],
	    (tv_ms(&ru1.ru_utime) + tv_ms(&ru1.ru_stime) -
		tv_ms(&ru0.ru_utime) - tv_ms(&ru0.ru_stime)) /
		(double)n_total);
	virConnectClose(conn);
	return 0;
}
