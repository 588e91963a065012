/*
 * bench_store: the SQLite store alone, on a real file in a temporary
 * directory. Measures the transactions/s of store_instance_create with 1
 * instance + 5 BDMs (image root, ephemeral, swap, two volumes) with
 * synchronous=FULL and with NORMAL (median of the rounds), and the time
 * to list 10,000 such instances with their BDMs (store_instance_list: two
 * queries) and one page of 100. Instances are built the API's way (JSON ->
 * bdm_json_parse_create -> bdm_instance_prepare -> blockinfo_build); each
 * create gets fresh instance and BDM uuids. Prints "name value unit" lines.
 * Usage: bench_store [rounds (5)] [creates per round (200)] [list n (10000)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdm.h"
#include "bdm_json.h"
#include "benchutil.h"
#include "blockinfo.h"
#include "store.h"

static const char body[] =
    "{\"name\": \"bench\","
    " \"flavor\": {\"vcpus\": 2, \"memory_mb\": 2048, \"root_gb\": 10,"
    "  \"ephemeral_gb\": 20, \"swap\": 1024},"
    " \"imageRef\": \"5a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b\","
    " \"metadata\": {\"role\": \"bench\"},"
    " \"block_device_mapping_v2\": ["
    "  {\"boot_index\": 0, \"source_type\": \"image\","
    "   \"destination_type\": \"local\","
    "   \"uuid\": \"5a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b\"},"
    "  {\"boot_index\": -1, \"source_type\": \"blank\","
    "   \"destination_type\": \"local\", \"guest_format\": \"ext4\","
    "   \"volume_size\": 20},"
    "  {\"boot_index\": -1, \"source_type\": \"blank\","
    "   \"destination_type\": \"local\", \"guest_format\": \"swap\","
    "   \"volume_size\": 1024},"
    "  {\"boot_index\": -1, \"source_type\": \"volume\","
    "   \"destination_type\": \"volume\","
    "   \"uuid\": \"7d1e2f3a-4b5c-4d6e-9f0a-1b2c3d4e5f6a\","
    "   \"connection_info\": {\"driver_volume_type\": \"file\","
    "    \"data\": {\"device_path\": \"/var/lib/vol/a.img\"}}},"
    "  {\"boot_index\": -1, \"source_type\": \"volume\","
    "   \"destination_type\": \"volume\","
    "   \"uuid\": \"0b5e3d1c-9a8f-4e7d-8c6b-5a4f3e2d1c0b\","
    "   \"connection_info\": {\"driver_volume_type\": \"file\","
    "    \"data\": {\"device_path\": \"/var/lib/vol/b.img\"}}}"
    " ]}";

static void
die(const char *what, const struct err *e)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, e ? e->msg : "");
	exit(1);
}

static struct instance *
make_instance(void)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	struct err e = {0};

	if (bdm_json_parse_create(body, strlen(body), &inst, &e) < 0 ||
	    bdm_instance_prepare(inst, &lim, &e) < 0 ||
	    blockinfo_build(inst, &lim, &bi, &e) < 0)
		die("building the instance", &e);
	blockinfo_free(bi);
	if (inst->n_bdms != 5)
		die("expected 5 BDMs", NULL);
	return inst;
}

/* New identities for the next create (the rest stays as prepared). */
static void
renew(struct instance *inst)
{
	size_t i;

	util_uuid_generate(inst->uuid);
	for (i = 0; i < inst->n_bdms; i++)
		util_uuid_generate(inst->bdms[i].uuid);
}

/* CPU time of this process in ms: less sensitive than the wall clock to
 * other work on a shared machine. */
static double
cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static struct store *
open_at(const char *path, bool normal)
{
	struct store_opts o = {.sync_normal = normal};
	struct store *s = NULL;
	struct err e = {0};

	if (store_open(path, &o, &s, &e) < 0)
		die("opening the database", &e);
	return s;
}

/* Median creates/s over rounds of n creates each. */
static double
bench_create(const char *path, bool normal, int rounds, int n)
{
	struct store *s = open_at(path, normal);
	struct instance *inst = make_instance();
	double *tps = calloc((size_t)rounds, sizeof(*tps));
	struct err e = {0};
	double m;
	int r, i;

	for (r = 0; r < rounds; r++) {
		double t0 = bench_now_ms(), t;

		for (i = 0; i < n; i++) {
			renew(inst);
			if (store_instance_create(s, inst, NULL, &e) < 0)
				die("create", &e);
		}
		t = bench_now_ms() - t0;
		tps[r] = (double)n * 1e3 / t;
	}
	m = median(tps, (size_t)rounds);
	free(tps);
	instance_free(inst);
	store_close(s);
	return m;
}

int
main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	int n = argc > 2 ? atoi(argv[2]) : 200;
	int nlist = argc > 3 ? atoi(argv[3]) : 10000;
	char dir[] = "/tmp/bench_store.XXXXXX", path[256], cmd[300];
	struct instance *inst, **v = NULL;
	struct store *s;
	struct err e = {0};
	double *ms, *cpu;
	size_t got = 0;
	int i, r;

	if (rounds < 1 || n < 1 || nlist < 1 || mkdtemp(dir) == NULL)
		die("usage: bench_store [rounds] [creates] [list n]", NULL);

	(void)snprintf(path, sizeof(path), "%s/full.db", dir);
	printf("store_create_full %.0f tx/s\n",
	    bench_create(path, false, rounds, n));
	(void)snprintf(path, sizeof(path), "%s/normal.db", dir);
	printf("store_create_normal %.0f tx/s\n",
	    bench_create(path, true, rounds, n));
	fflush(stdout);

	/* list: nlist instances of 5 BDMs each */
	(void)snprintf(path, sizeof(path), "%s/list.db", dir);
	s = open_at(path, true);
	inst = make_instance();
	for (i = 0; i < nlist; i++) {
		renew(inst);
		if (store_instance_create(s, inst, NULL, &e) < 0)
			die("create", &e);
	}
	instance_free(inst);
	ms = calloc((size_t)rounds, sizeof(*ms));
	cpu = calloc((size_t)rounds, sizeof(*cpu));
	for (r = 0; r < rounds; r++) {
		double t0 = bench_now_ms(), c0 = cpu_ms();

		if (store_instance_list(s, NULL, 0, &v, &got, &e) < 0)
			die("list", &e);
		ms[r] = bench_now_ms() - t0;
		cpu[r] = cpu_ms() - c0;
		if (got != (size_t)nlist || v[got - 1]->n_bdms != 5)
			die("list returned the wrong rows", NULL);
		store_instance_list_free(v, got);
	}
	printf("store_list_%d %.1f ms\n", nlist, median(ms, (size_t)rounds));
	printf(
	    "store_list_%d_cpu %.1f ms\n", nlist, median(cpu, (size_t)rounds));
	free(cpu);
	for (r = 0; r < rounds; r++) {
		double t0 = bench_now_ms();

		if (store_instance_list(s, NULL, 100, &v, &got, &e) < 0)
			die("list", &e);
		ms[r] = bench_now_ms() - t0;
		store_instance_list_free(v, got);
	}
	printf("store_list_page_100 %.2f ms\n", median(ms, (size_t)rounds));
	free(ms);
	store_close(s);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return 0;
}
