/*
 * bench_model: what the model costs per create request, without HTTP,
 * SQLite or libvirt: parse (bdm_json_parse_create) + Nova's rules and
 * defaults (bdm_instance_prepare) + block_device_info and the disk mapping
 * (blockinfo_build) + the domain XML (domxml_format_domain), for the 5-disk
 * instance of design.md (image root, ephemeral, swap, two file volumes).
 * ROUNDS rounds of CALLS calls; prints the median microseconds per call as
 * "model_us <value> us", and the same for the first stages alone
 * (model_parse_us, model_prepare_us = parse + prepare, model_noxml_us =
 * parse + prepare + blockinfo). Wall-clock figures; the *_cpu_us lines are
 * the same in process CPU time, steadier on a shared machine.
 * Usage: bench_model [request.json [calls [rounds [stage]]]]; "-" for
 * request.json is the built-in body. With stage (1 parse, 2 prepare,
 * 3 blockinfo, 4 XML) only that line is measured, without the warm-up:
 * for counting instructions per call under callgrind, e.g.
 * valgrind --tool=callgrind bench_model - 2000 1 4.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "domxml.h"

#include "benchutil.h"

#define CALLS 10000
#define ROUNDS 5

/* How far one call goes. */
enum stage {
	STAGE_PARSE = 1,
	STAGE_PREPARE,
	STAGE_BLOCKINFO,
	STAGE_XML,
};

/* The create body of tests/bench/run.sh: no bdm_uuid, so the uuids are
 * drawn as in production. */
static const char five_disks[] =
    "{\"name\": \"bench\", \"start\": false,"
    " \"flavor\": {\"vcpus\": 1, \"memory_mb\": 256, \"root_gb\": 1,"
    " \"ephemeral_gb\": 1, \"swap\": 64},"
    " \"imageRef\": \"6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f\","
    " \"block_device_mapping_v2\": ["
    "  {\"boot_index\": 0, \"source_type\": \"image\","
    "   \"destination_type\": \"local\","
    "   \"uuid\": \"6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f\"},"
    "  {\"boot_index\": -1, \"source_type\": \"blank\","
    "   \"destination_type\": \"local\", \"volume_size\": 1},"
    "  {\"boot_index\": -1, \"source_type\": \"blank\","
    "   \"destination_type\": \"local\", \"guest_format\": \"swap\","
    "   \"volume_size\": 64},"
    "  {\"boot_index\": -1, \"source_type\": \"volume\","
    "   \"destination_type\": \"volume\","
    "   \"uuid\": \"0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11\","
    "   \"connection_info\": {\"driver_volume_type\": \"file\","
    "   \"data\": {\"device_path\": \"/srv/volumes/vol1\"}}},"
    "  {\"boot_index\": -1, \"source_type\": \"volume\","
    "   \"destination_type\": \"volume\","
    "   \"uuid\": \"5e2b8f10-3c4d-4e6f-8a9b-0c1d2e3f4a5b\","
    "   \"connection_info\": {\"driver_volume_type\": \"file\","
    "   \"data\": {\"device_path\": \"/srv/volumes/vol2\"}}}"
    " ]}";

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One request through the model up to stage. Returns 0, or a negative
 * errno with e set. */
static int
one_call(const char *body, size_t len, enum stage stage, size_t *ret_bytes,
    struct err *e)
{
	static const struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	char dir[128];
	char *xml = NULL;
	int r;

	r = bdm_json_parse_create(body, len, &inst, e);
	if (r == 0 && stage >= STAGE_PREPARE)
		r = bdm_instance_prepare(inst, &lim, e);
	if (r == 0 && stage >= STAGE_BLOCKINFO)
		r = blockinfo_build(inst, &lim, &bi, e);
	if (r == 0 && stage >= STAGE_XML) {
		struct domxml_opts o = {.virt_type = "kvm",
		    .instance_dir = dir,
		    .base_image_path = "/var/lib/hyperlet/images/base"};

		(void)snprintf(dir, sizeof(dir),
		    "/var/lib/hyperlet/instances/%s", inst->uuid);
		r = domxml_format_domain(inst, bi, &o, &xml, e);
		if (r == 0)
			*ret_bytes = strlen(xml);
		free(xml);
	}
	blockinfo_free(bi);
	instance_free(inst);
	return r;
}

static double
cpu_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The medians over rounds of the mean wall and CPU microseconds per
 * call. */
static int
measure(const char *body, enum stage stage, long calls, int rounds,
    double *ret_us, double *ret_cpu_us, size_t *ret_bytes)
{
	double wall[64], cpu[64];
	size_t len = strlen(body);
	struct err e = {0};

	for (int k = 0; k < rounds; k++) {
		double t0 = bench_now_ms(), c0 = cpu_ms();

		for (long i = 0; i < calls; i++)
			if (one_call(body, len, stage, ret_bytes, &e) < 0) {
				fprintf(stderr, "bench_model: %s (%s)\n", e.msg,
				    e.field);
				return -1;
			}
		wall[k] = (bench_now_ms() - t0) * 1000.0 / (double)calls;
		cpu[k] = (cpu_ms() - c0) * 1000.0 / (double)calls;
	}
	qsort(wall, (size_t)rounds, sizeof(double), cmp_double);
	qsort(cpu, (size_t)rounds, sizeof(double), cmp_double);
	*ret_us = wall[rounds / 2];
	*ret_cpu_us = cpu[rounds / 2];
	return 0;
}

int
main(int argc, char **argv)
{
	static const char *const names[] = {[STAGE_PARSE] = "model_parse_us",
	    [STAGE_PREPARE] = "model_prepare_us",
	    [STAGE_BLOCKINFO] = "model_noxml_us",
	    [STAGE_XML] = "model_us"};
	static const char *const cpu_names[] = {
	    [STAGE_PARSE] = "model_parse_cpu_us",
	    [STAGE_PREPARE] = "model_prepare_cpu_us",
	    [STAGE_BLOCKINFO] = "model_noxml_cpu_us",
	    [STAGE_XML] = "model_cpu_us"};
	double cpu[STAGE_XML + 1] = {0};
	bool builtin = argc < 2 || strcmp(argv[1], "-") == 0;
	char *file = builtin ? NULL : bench_read_file(argv[1]);
	const char *body = file ? file : five_disks;
	long calls = argc > 2 ? atol(argv[2]) : CALLS;
	int rounds = argc > 3 ? atoi(argv[3]) : ROUNDS;
	int only = argc > 4 ? atoi(argv[4]) : 0;
	double us, cpu_us;
	size_t bytes = 0;

	if ((!builtin && file == NULL) || calls < 1 || rounds < 1 ||
	    rounds > 64 || only < 0 || only > STAGE_XML) {
		fprintf(stderr,
		    "usage: bench_model [request.json|- [calls "
		    "[rounds<=64 [stage 1-4]]]]\n");
		return 2;
	}
	/* warm up caches and the allocator */
	if (only == 0 &&
	    measure(body, STAGE_XML, calls / 10 + 1, 1, &us, &cpu_us, &bytes) <
		0) {
		free(file);
		return 1;
	}
	for (int st = STAGE_PARSE; st <= STAGE_XML; st++) {
		if (only != 0 && st != only)
			continue;
		if (measure(body, (enum stage)st, calls, rounds, &us, &cpu_us,
			&bytes) < 0) {
			free(file);
			return 1;
		}
		printf("%s %.2f us\n", names[st], us);
		cpu[st] = cpu_us;
	}
	for (int st = STAGE_PARSE; st <= STAGE_XML; st++)
		if (only == 0 || st == only)
			printf("%s %.2f us\n", cpu_names[st], cpu[st]);
	printf("model_xml_bytes %zu B\n", bytes);
	free(file);
	return 0;
}
