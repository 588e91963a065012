/*
 * bench_bdm: what the request model costs per create. Times, over many
 * rounds, bdm_json_parse_create, bdm_instance_prepare and
 * bdm_json_format_instance (to text) of a 5-BDM request (image root,
 * ephemeral, swap, two volumes) and of the flavor-only request, and prints
 * "name value unit" lines. Not a test: nothing here passes or fails.
 * Usage: bench_bdm [rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm.h"
#include "bdm_json.h"
#include "benchutil.h"
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

static void
run(const char *name, const char *body, long rounds)
{
	double t_parse = 0, t_prep = 0, t_fmt = 0, t0, t1, t2, t3;
	size_t out = 0;

	for (long i = 0; i < rounds; i++) {
		struct instance *inst = NULL;
		struct json_object *o;
		struct err e = {0};

		t0 = bench_now_ms();
		if (bdm_json_parse_create(body, strlen(body), &inst, &e) < 0) {
			fprintf(stderr, "%s: parse: %s\n", name, e.msg);
			exit(1);
		}
		t1 = bench_now_ms();
		if (bdm_instance_prepare(inst, NULL, &e) < 0) {
			fprintf(stderr, "%s: prepare: %s\n", name, e.msg);
			exit(1);
		}
		t2 = bench_now_ms();
		o = bdm_json_format_instance(inst, NULL);
		out += strlen(
		    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		t3 = bench_now_ms();
		instance_free(inst);
		t_parse += t1 - t0;
		t_prep += t2 - t1;
		t_fmt += t3 - t2;
	}
	printf("%s_parse_us %.2f us\n", name, t_parse * 1e3 / (double)rounds);
	printf("%s_prepare_us %.2f us\n", name, t_prep * 1e3 / (double)rounds);
	printf("%s_format_us %.2f us\n", name, t_fmt * 1e3 / (double)rounds);
	printf("%s_json_bytes %zu bytes\n", name, out / (size_t)rounds);
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
