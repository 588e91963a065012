/*
 * bench_startfloor: the floor `make bench` compares hyperletd's start-up
 * (exec to READY) with. It does only what a start-up reconciliation
 * cannot avoid: open the libvirt URI (for a test:///node.xml URI that is
 * where the test driver parses the node file, inside the process), list
 * every domain with its state in one call, open the hyperlet database
 * (WAL) and read every instance's uuid and state, and match the two by
 * uuid. No HTTP server, no configuration, no per-instance work. run.sh
 * times it from exec to exit; it prints its own phases and its RSS at the
 * end, after malloc_trim (the memory floor: libvirt's client and SQLite,
 * with both lists held).
 * Usage: bench_startfloor LABEL URI DB
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"

#define UUID_LEN 37

struct row {
	char uuid[UUID_LEN];
	int state;
};

static int
row_cmp(const void *a, const void *b)
{
	return strcmp(
	    ((const struct row *)a)->uuid, ((const struct row *)b)->uuid);
}

static void
quiet(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

/* VmRSS of this process in KiB, or -1. */
static long
rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Every instance's uuid and state (libvirt's numbering), sorted by uuid
 * (SQLite sorts with the UNIQUE index). Returns the count, -1 on error. */
static long
read_instances(const char *path, struct row **ret)
{
	static const char sql[] =
	    "SELECT uuid, state FROM instances ORDER BY uuid";
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	struct row *v = NULL, *grown;
	size_t n = 0, cap = 0;
	int rc;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
		SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_startfloor: %s: %s\n", path,
		    sqlite3_errmsg(db));
		sqlite3_close(db);
		return -1;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *u = (const char *)sqlite3_column_text(q, 0);
		const char *st = (const char *)sqlite3_column_text(q, 1);

		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			if ((grown = realloc(v, cap * sizeof(*v))) == NULL)
				break;
			v = grown;
		}
		snprintf(v[n].uuid, UUID_LEN, "%s", u ? u : "");
		v[n].state = st && strcmp(st, "running") == 0
		    ? VIR_DOMAIN_RUNNING
		    : VIR_DOMAIN_SHUTOFF;
		n++;
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	if (rc != SQLITE_DONE) {
		free(v);
		fprintf(stderr, "bench_startfloor: reading %s failed\n", path);
		return -1;
	}
	*ret = v;
	return (long)n;
}

int
main(int argc, char **argv)
{
	virDomainStatsRecordPtr *recs = NULL;
	struct row *rows = NULL, key;
	virConnectPtr c;
	double t0, t1, t2, t3;
	long nrows;
	int nd, i, matched = 0, differ = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: bench_startfloor LABEL URI DB\n");
		return 2;
	}
	virSetErrorFunc(NULL, quiet);
	t0 = bench_now_ms();
	if ((c = virConnectOpen(argv[2])) == NULL) {
		fprintf(stderr, "bench_startfloor: %s: %s\n", argv[2],
		    virGetLastErrorMessage());
		return 1;
	}
	t1 = bench_now_ms();
	nd = virConnectGetAllDomainStats(c, VIR_DOMAIN_STATS_STATE, &recs, 0);
	if (nd < 0) {
		fprintf(stderr, "bench_startfloor: list: %s\n",
		    virGetLastErrorMessage());
		return 1;
	}
	t2 = bench_now_ms();
	if ((nrows = read_instances(argv[3], &rows)) < 0)
		return 1;
	t3 = bench_now_ms();
	for (i = 0; i < nd; i++) {
		const struct row *r;
		int st = VIR_DOMAIN_NOSTATE;

		if (virDomainGetUUIDString(recs[i]->dom, key.uuid) < 0)
			continue;
		r = bsearch(&key, rows, (size_t)nrows, sizeof(*rows), row_cmp);
		if (r == NULL)
			continue;
		matched++;
		(void)virTypedParamsGetInt(
		    recs[i]->params, recs[i]->nparams, "state.state", &st);
		differ += st != r->state;
	}
	printf("%s_connect %.1f ms\n", argv[1], t1 - t0);
	printf("%s_list %.1f ms\n", argv[1], t2 - t1);
	printf("%s_db %.1f ms\n", argv[1], t3 - t2);
	/* what glibc keeps of freed memory is not a floor (hyperletd trims
	 * before READY): for test:///node.xml, the node file's parsed tree */
	(void)malloc_trim(0);
	printf("%s_rss %ld KiB\n", argv[1], rss_kib());
	fprintf(stderr,
	    "bench_startfloor: %d domains, %ld rows, %d matched, %d in "
	    "another state\n",
	    nd, nrows, matched, differ);
	virDomainStatsRecordListFree(recs);
	free(rows);
	virConnectClose(c);
	return 0;
}
