/*
 * bench_floord: the fair floor `make bench` compares hyperlet's create and
 * delete with: a minimal daemon doing only the work one create or delete
 * of the bench's 5-BDM instance cannot avoid, through the same libvirt,
 * driven by the same bench_loadgen over HTTP.
 *
 * POST /v1/instances: libmicrohttpd (the same epoll thread pool of 8 as
 * hyperletd) reads the body, json-c parses it; one SQLite transaction
 * (WAL, synchronous=FULL: the answer promises the instance) writes the
 * instance row and its 5 BDM rows; the instance directory is made with its
 * three local disks as hyperlet makes them, the cheapest way there is (in
 * process, lib/qcow2.c: the root as a qcow2 overlay of ROOT_GB on the base
 * image, a blank qcow2 ephemeral of 1 GiB and swap of 64 MiB); the domain
 * XML hyperlet formats for that body (with the new uuid) is defined
 * without runtime validation (hyperlet's default, [libvirt] validate_xml).
 * 201 with a Location.
 * DELETE /v1/instances/UUID: look the domain up, undefine it, remove the
 * instance directory's files and the directory, one SQLite transaction
 * deleting the row (its BDMs by cascade). 204.
 *
 * No validation of the request, no ownership checks, no state machine, no
 * crash safety: everything hyperlet adds is measured against this.
 *
 * With "safe" (an eighth argument), the same plus the least work the
 * brief's guarantees need, done the cheapest way: an agent never touches
 * a domain it does not own (create: the uuid is looked up before the
 * define, 409 if libvirt has it; delete: virDomainGetMetadata reads
 * hyperlet's element before the undefine, 409 if it is not this
 * instance's), a kill -9 at any step leaves nothing behind (the row is
 * written before the disks and the domain exist, state building, not
 * synced, and moved to stopped by a synced commit once they do; a delete
 * marks it deleting, not synced, before the undefine and deletes it by a
 * synced commit after), and every change writes its event row (issue
 * 12's outbox, hyperlet's events table) in its own transaction. What
 * hyperlet does beyond that is its own cost.
 *
 * Usage: bench_floord PORT DB URI DOMAIN_XML INSTANCES_DIR BASE_IMAGE
 * BASE_FORMAT [safe]; prints "ready" on stdout once listening; SIGTERM
 * ends it.
 */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "benchutil.h"
#include "domxml.h"
#include "qcow2.h"

#define GIB (UINT64_C(1) << 30)
#define MIB (UINT64_C(1) << 20)

/* lib/store.c's instances and block_device_mappings tables with their
 * indexes, so that each row costs what it costs there. */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS instances ("
    " id INTEGER PRIMARY KEY,"
    " uuid TEXT NOT NULL UNIQUE"
    "  CHECK (length(uuid) = 36 AND uuid NOT GLOB '*[^0-9a-f-]*'),"
    " name TEXT NOT NULL, vcpus INTEGER NOT NULL,"
    " memory_mb INTEGER NOT NULL, root_gb INTEGER NOT NULL,"
    " ephemeral_gb INTEGER NOT NULL, swap_mb INTEGER NOT NULL,"
    " image_ref TEXT, metadata TEXT NOT NULL DEFAULT '{}',"
    " state TEXT NOT NULL, created_at INTEGER NOT NULL);"
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
    " volume_id TEXT, connection_info TEXT,"
    " delete_on_termination INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS block_device_mappings_instance"
    " ON block_device_mappings (instance_id, id);"
    "CREATE UNIQUE INDEX IF NOT EXISTS block_device_mappings_uuid"
    " ON block_device_mappings (uuid);"
    /* lib/store.c's events table, for "safe" */
    "CREATE TABLE IF NOT EXISTS events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL,"
    " instance_uuid TEXT NOT NULL, state TEXT, generation INTEGER,"
    " cause TEXT NOT NULL, at INTEGER NOT NULL, volume_id TEXT,"
    " port_id TEXT);"
    "CREATE INDEX IF NOT EXISTS events_instance"
    " ON events (instance_uuid, id);";

static const char *db_path, *uri, *tmpl, *tmpl_uuid, *inst_dir, *base,
    *base_fmt;
/* SQLite serialises writers; a mutex is cheaper than busy_timeout's
 * sleep-and-retry (hyperlet's store does the same). */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t tkey;
static bool safe; /* see the header */

struct tstate { /* one per MHD thread, as hyperletd's store and virt */
	sqlite3 *db;
	sqlite3_stmt *qi, *qb, *qd;
	sqlite3_stmt *qs, *qe; /* safe: state change, event row */
	virConnectPtr c;
};

struct body {
	char *buf;
	size_t len;
};

static void
quiet(void *u, virErrorPtr err)
{
	(void)u;
	(void)err;
}

static void
tstate_free(void *p)
{
	struct tstate *t = p;

	sqlite3_finalize(t->qi);
	sqlite3_finalize(t->qb);
	sqlite3_finalize(t->qd);
	sqlite3_finalize(t->qs);
	sqlite3_finalize(t->qe);
	sqlite3_close(t->db);
	if (t->c)
		virConnectClose(t->c);
	free(t);
}

static struct tstate *
tstate_get(void)
{
	static const char ins_i[] =
	    "INSERT INTO instances (uuid, name, state, vcpus, memory_mb,"
	    " root_gb, ephemeral_gb, swap_mb, image_ref, metadata,"
	    " created_at) VALUES (?1, ?2, ?3, 1, 256, 1, 1, 64,"
	    " '6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f', '{}', 0)";
	static const char ins_b[] =
	    "INSERT INTO block_device_mappings (uuid, instance_id,"
	    " source_type, destination_type, boot_index, device_type, disk_bus,"
	    " device_name, volume_size, delete_on_termination) VALUES (?1, ?2,"
	    " ?3, ?4, ?5, 'disk', 'virtio', '/dev/vdb', 1, 1)";
	static const char del[] = "DELETE FROM instances WHERE uuid = ?1";
	static const char set_state[] =
	    "UPDATE instances SET state = ?2 WHERE uuid = ?1";
	static const char ins_e[] =
	    "INSERT INTO events (type, instance_uuid, state, generation,"
	    " cause, at) VALUES (?1, ?2, ?3, 1, 'api', 0)";
	struct tstate *t = pthread_getspecific(tkey);

	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (sqlite3_open(db_path, &t->db) != SQLITE_OK ||
	    sqlite3_exec(t->db,
		"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		" PRAGMA foreign_keys=ON;",
		NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(t->db, ins_i, -1, &t->qi, NULL) ||
	    sqlite3_prepare_v2(t->db, ins_b, -1, &t->qb, NULL) ||
	    sqlite3_prepare_v2(t->db, del, -1, &t->qd, NULL) ||
	    sqlite3_prepare_v2(t->db, set_state, -1, &t->qs, NULL) ||
	    sqlite3_prepare_v2(t->db, ins_e, -1, &t->qe, NULL) ||
	    (t->c = virConnectOpen(uri)) == NULL) {
		fprintf(stderr, "bench_floord: cannot open %s or %s\n", db_path,
		    uri);
		exit(1);
	}
	sqlite3_busy_timeout(t->db, 5000);
	pthread_setspecific(tkey, t);
	return t;
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

/* safe: the event row of a change, inside its transaction */
static int
event(struct tstate *t, const char *type, const char *u, const char *state)
{
	sqlite3_reset(t->qe);
	sqlite3_bind_text(t->qe, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(t->qe, 2, u, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(t->qe, 3, state, -1, SQLITE_STATIC);
	return sqlite3_step(t->qe) == SQLITE_DONE ? 0 : -1;
}

/* synchronous=NORMAL (on) or FULL (off) for the next commit; SQLite
 * refuses the change inside a transaction */
static void
lazy(struct tstate *t, bool on)
{
	(void)sqlite3_exec(t->db,
	    on ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL", NULL,
	    NULL, NULL);
}

/* safe: one transaction moving row u to state (or deleting it, state
 * NULL) with its event row; synced unless lazy. */
static int
store_change(struct tstate *t, const char *u, const char *state, bool sync)
{
	sqlite3_stmt *q = state ? t->qs : t->qd;
	int rc = -1;

	pthread_mutex_lock(&write_lock);
	if (!sync)
		lazy(t, true);
	if (sqlite3_exec(t->db, "BEGIN IMMEDIATE", NULL, NULL, NULL))
		goto out;
	sqlite3_reset(q);
	sqlite3_bind_text(q, 1, u, -1, SQLITE_TRANSIENT);
	if (state)
		sqlite3_bind_text(q, 2, state, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE || sqlite3_changes(t->db) != 1 ||
	    event(t, state ? "instance.updated" : "instance.deleted", u,
		state ? state : "deleting") < 0) {
		(void)sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	if (sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		rc = 0;
out:
	sqlite3_reset(q);
	if (!sync)
		lazy(t, false);
	pthread_mutex_unlock(&write_lock);
	return rc;
}

static int
store_create(struct tstate *t, const char *u, const char *name)
{
	sqlite3_int64 id;
	int rc = -1;

	pthread_mutex_lock(&write_lock);
	if (safe)
		lazy(t, true);
	if (sqlite3_exec(t->db, "BEGIN IMMEDIATE", NULL, NULL, NULL))
		goto out;
	sqlite3_reset(t->qi);
	sqlite3_bind_text(t->qi, 1, u, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(t->qi, 2, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(
	    t->qi, 3, safe ? "building" : "stopped", -1, SQLITE_STATIC);
	if (sqlite3_step(t->qi) != SQLITE_DONE)
		goto rollback;
	id = sqlite3_last_insert_rowid(t->db);
	for (int i = 0; i < 5; i++) {
		static const char *const src[] = {
		    "image", "blank", "blank", "volume", "volume"};
		static const char *const dst[] = {
		    "local", "local", "local", "volume", "volume"};
		char bu[37];
		uuid_t b;

		uuid_generate_random(b);
		uuid_unparse_lower(b, bu);
		sqlite3_reset(t->qb);
		sqlite3_bind_text(t->qb, 1, bu, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(t->qb, 2, id);
		sqlite3_bind_text(t->qb, 3, src[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(t->qb, 4, dst[i], -1, SQLITE_STATIC);
		sqlite3_bind_int(t->qb, 5, i == 0 ? 0 : -1);
		if (sqlite3_step(t->qb) != SQLITE_DONE)
			goto rollback;
	}
	if (safe && event(t, "instance.created", u, "building") < 0)
		goto rollback;
	if (sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
		rc = 0;
		goto out;
	}
rollback:
	fprintf(stderr, "bench_floord: %s\n", sqlite3_errmsg(t->db));
	(void)sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
out:
	if (safe)
		lazy(t, false);
	pthread_mutex_unlock(&write_lock);
	return rc;
}

static int
make_disks(const char *u)
{
	char dir[4096], p[4200];
	struct err e = {0};

	snprintf(dir, sizeof(dir), "%s/%s", inst_dir, u);
	if (mkdir(dir, 0755) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/disk", dir);
	if (qcow2_create(p, GIB, base, base_fmt, &e) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/disk.eph0", dir);
	if (qcow2_create(p, GIB, NULL, NULL, &e) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/disk.swap", dir);
	return qcow2_create(p, 64 * MIB, NULL, NULL, &e);
}

static int
remove_dir(const char *u)
{
	char dir[4096], p[4400];
	DIR *d;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s/%s", inst_dir, u);
	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		(void)unlink(p);
	}
	closedir(d);
	return rmdir(dir);
}

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned status, const char *body,
    const char *location)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (location)
		MHD_add_response_header(r, "Location", location);
	if (*body)
		MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
do_create(struct MHD_Connection *conn, struct body *b)
{
	struct tstate *t = tstate_get();
	struct json_object *o = json_tokener_parse(b->buf ? b->buf : "");
	struct json_object *name;
	char u[37], loc[64], *xml, out[128];
	virDomainPtr d;
	uuid_t id;

	if (o == NULL || !json_object_object_get_ex(o, "name", &name)) {
		json_object_put(o);
		return reply(conn, 400, "{}", NULL);
	}
	uuid_generate_random(id);
	uuid_unparse_lower(id, u);
	/* safe: a domain of this uuid is not ours to redefine */
	if (safe && (d = virDomainLookupByUUIDString(t->c, u)) != NULL) {
		virDomainFree(d);
		json_object_put(o);
		return reply(conn, 409, "{}", NULL);
	}
	if (store_create(t, u, json_object_get_string(name)) < 0 ||
	    make_disks(u) < 0) {
		json_object_put(o);
		return reply(conn, 500, "{}", NULL);
	}
	json_object_put(o);
	xml = xml_for(u);
	d = virDomainDefineXMLFlags(t->c, xml, 0);
	free(xml);
	if (d == NULL) {
		virErrorPtr err = virGetLastError();

		fprintf(stderr, "bench_floord: define: %s\n",
		    err && err->message ? err->message : "?");
		return reply(conn, 500, "{}", NULL);
	}
	virDomainFree(d);
	if (safe && store_change(t, u, "stopped", true) < 0)
		return reply(conn, 500, "{}", NULL);
	snprintf(loc, sizeof(loc), "/v1/instances/%s", u);
	snprintf(out, sizeof(out), "{\"uuid\": \"%s\"}", u);
	return reply(conn, 201, out, loc);
}

static enum MHD_Result
do_delete(struct MHD_Connection *conn, const char *u)
{
	struct tstate *t = tstate_get();
	virDomainPtr d;
	int rc;

	if (safe && store_change(t, u, "deleting", false) < 0)
		return reply(conn, 404, "{}", NULL);
	if ((d = virDomainLookupByUUIDString(t->c, u)) == NULL)
		return reply(conn, 404, "{}", NULL);
	if (safe) { /* hyperlet's element naming this instance */
		char *md = virDomainGetMetadata(
		    d, VIR_DOMAIN_METADATA_ELEMENT, DOMXML_NS, 0);
		bool own = md && strstr(md, u) != NULL;

		free(md);
		if (!own) {
			virDomainFree(d);
			return reply(conn, 409, "{}", NULL);
		}
	}
	rc = virDomainUndefineFlags(d, 0);
	virDomainFree(d);
	if (rc < 0 || remove_dir(u) < 0)
		return reply(conn, 500, "{}", NULL);
	if (safe)
		return store_change(t, u, NULL, true) < 0
		    ? reply(conn, 500, "{}", NULL)
		    : reply(conn, 204, "", NULL);
	pthread_mutex_lock(&write_lock);
	sqlite3_reset(t->qd);
	sqlite3_bind_text(t->qd, 1, u, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(t->qd) == SQLITE_DONE ? 0 : -1;
	sqlite3_reset(t->qd);
	pthread_mutex_unlock(&write_lock);
	return rc < 0 ? reply(conn, 500, "{}", NULL)
		      : reply(conn, 204, "", NULL);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *data, size_t *size,
    void **ctx)
{
	struct body *b = *ctx;
	enum MHD_Result r;

	(void)cls;
	(void)version;
	if (b == NULL) {
		*ctx = calloc(1, sizeof(*b));
		return MHD_YES;
	}
	if (*size) {
		char *nb = realloc(b->buf, b->len + *size + 1);

		if (nb == NULL)
			return MHD_NO;
		memcpy(nb + b->len, data, *size);
		b->buf = nb;
		b->len += *size;
		b->buf[b->len] = '\0';
		*size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/instances") == 0)
		r = do_create(conn, b);
	else if (strcmp(method, "DELETE") == 0 &&
	    strncmp(url, "/v1/instances/", 14) == 0 && strlen(url + 14) == 36)
		r = do_delete(conn, url + 14);
	else
		r = reply(conn, 404, "{}", NULL);
	return r;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
    enum MHD_RequestTerminationCode toe)
{
	struct body *b = *ctx;

	(void)cls;
	(void)conn;
	(void)toe;
	if (b) {
		free(b->buf);
		free(b);
		*ctx = NULL;
	}
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *mhd;
	sigset_t ss;
	char *u0, *u1;
	sqlite3 *db = NULL;
	int sig;

	if (argc != 8 && !(argc == 9 && strcmp(argv[8], "safe") == 0)) {
		fprintf(stderr,
		    "usage: bench_floord PORT DB URI DOMAIN_XML "
		    "INSTANCES_DIR BASE_IMAGE BASE_FORMAT [safe]\n");
		return 2;
	}
	safe = argc == 9;
	db_path = argv[2];
	uri = argv[3];
	tmpl = bench_read_file(argv[4]);
	inst_dir = argv[5];
	base = argv[6];
	base_fmt = argv[7];
	if (tmpl == NULL || (u0 = strstr(tmpl, "<uuid>")) == NULL ||
	    (u1 = strstr(u0, "</uuid>")) == NULL || u1 - u0 != 6 + 36) {
		fprintf(stderr, "bench_floord: bad domain XML\n");
		return 2;
	}
	tmpl_uuid = strndup(u0 + 6, 36);
	virSetErrorFunc(NULL, quiet);
	if (sqlite3_open(db_path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL) ||
	    sqlite3_exec(db, schema, NULL, NULL, NULL)) {
		fprintf(stderr, "bench_floord: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_close(db);
	pthread_key_create(&tkey, tstate_free);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	{
		/* test:///default lives while a connection of the process
		 * is open: one held for the daemon's life */
		virConnectPtr keep = virConnectOpen(uri);

		if (keep == NULL) {
			fprintf(stderr, "bench_floord: cannot open %s\n", uri);
			return 1;
		}
		mhd = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD |
			MHD_USE_ITC | MHD_USE_ERROR_LOG,
		    (uint16_t)atoi(argv[1]), NULL, NULL, on_request, NULL,
		    MHD_OPTION_THREAD_POOL_SIZE, 8, MHD_OPTION_CONNECTION_LIMIT,
		    1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		    MHD_OPTION_END);
		if (mhd == NULL) {
			fprintf(stderr, "bench_floord: cannot listen\n");
			return 1;
		}
		printf("ready\n");
		fflush(stdout);
		sigwait(&ss, &sig);
		MHD_stop_daemon(mhd);
		virConnectClose(keep);
	}
	return 0;
}
