/*
 * bench_bdm: what the request model costs per create. Times, over many
 * rounds, bdm_json_parse_create, bdm_instance_prepare and
 * bdm_json_format_instance (to text) of a 5-BDM request (image root,
 * ephemeral, swap, two volumes) and of the flavor-only request, in thread
 * CPU time, and prints "name value unit" lines. Not a test: nothing here
 * passes or fails.
 * Usage: bench_bdm [rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdm.h"
#include "bdm_json.h"
#include "jfield.h"

static const char five_bdms[] =
    "{\"name\":\"web-1\",\"flavor\":{\"vcpus\":2,\"memory_mb\":2048,"
    "\"root_gb\":10,\"ephemeral_gb\":20,\"swap\":1024},"
    "\"imageRef\":\"11111111-2222-4333-8444-555555555555\","
    "\"metadata\":{\"role\":\"web\"},\"block_device_mapping_v2\":["
    "{\"boot_index\":0,\"source_type\":\"image\",\"destination_type\":"
    "\"local\",\"uuid\":\"11111111-2222-4333-8444-555555555555\"},"
    "{\"boot_index\":-1,\"source_type\":\"blank\",\"destination_type\":"
    "\"local\",\"guest_format\":\"ext4\",\"volume_size\":20},"
    "{\"boot_index\":-1,\"source_type\":\"blank\",\"destination_type\":"
    "\"local\",\"guest_format\":\"swap\",\"volume_size\":1024},"
    "{\"boot_index\":-1,\"source_type\":\"volume\",\"destination_type\":"
    "\"volume\",\"uuid\":\"0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11\","
    "\"connection_info\":{\"driver_volume_type\":\"file\",\"data\":"
    "{\"device_path\":\"/srv/volumes/vol1\"}}},"
    "{\"boot_index\":-1,\"source_type\":\"volume\",\"destination_type\":"
    "\"volume\",\"uuid\":\"7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\","
    "\"connection_info\":{\"driver_volume_type\":\"block\",\"data\":"
    "{\"device_path\":\"/dev/sdx\"}}}]}";

static const char flavor_only[] =
    "{\"name\":\"web-1\",\"flavor\":{\"vcpus\":2,\"memory_mb\":2048,"
    "\"root_gb\":10,\"ephemeral_gb\":20,\"swap\":1024},"
    "\"imageRef\":\"11111111-2222-4333-8444-555555555555\"}";

#define BATCH 1000

/* CPU time of this thread in microseconds: the machine is shared, so
 * wall time would also count the time others' processes ran. */
static double
cpu_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Each phase runs over a batch of BATCH requests, so the clock is read
 * twice per batch, not per request. */
static void
run(const char *name, const char *body, long rounds)
{
	static struct instance *inst[BATCH];
	double t_parse = 0, t_prep = 0, t_fmt = 0, t_free = 0, t0;
	size_t len = strlen(body), out = 0;
	long done = 0;

	while (done < rounds) {
		struct err e = {0};

		t0 = cpu_us();
		for (int i = 0; i < BATCH; i++)
			if (bdm_json_parse_create(body, len, &inst[i], &e) <
			    0) {
				fprintf(stderr, "%s: parse: %s\n", name, e.msg);
				exit(1);
			}
		t_parse += cpu_us() - t0;
		t0 = cpu_us();
		for (int i = 0; i < BATCH; i++)
			if (bdm_instance_prepare(inst[i], NULL, &e) < 0) {
				fprintf(
				    stderr, "%s: prepare: %s\n", name, e.msg);
				exit(1);
			}
		t_prep += cpu_us() - t0;
		t0 = cpu_us();
		for (int i = 0; i < BATCH; i++) {
			struct json_object *o =
			    bdm_json_format_instance(inst[i], NULL);

			out += strlen(json_object_to_json_string_ext(
			    o, JSON_C_TO_STRING_PLAIN));
			json_object_put(o);
		}
		t_fmt += cpu_us() - t0;
		t0 = cpu_us();
		for (int i = 0; i < BATCH; i++)
			inst[i] = instance_free(inst[i]);
		t_free += cpu_us() - t0;
		done += BATCH;
	}
	printf("%s_parse_us %.2f us\n", name, t_parse / (double)done);
	printf("%s_prepare_us %.2f us\n", name, t_prep / (double)done);
	printf("%s_format_us %.2f us\n", name, t_fmt / (double)done);
	printf("%s_free_us %.2f us\n", name, t_free / (double)done);
	printf("%s_json_bytes %zu bytes\n", name, out / (size_t)done);
}

int
main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 200000;

	if (rounds <= 0)
		rounds = 1;
	run("bdm_5bdms", five_bdms, rounds);
	run("bdm_flavor_only", flavor_only, rounds);
	return 0;
}
