/*
 * bench_domxml: how long domxml_format_domain takes for one instance.
 * The instance comes from a create request (default: the 5-disk
 * tests/data/domxml/local-virtio.json) through the real chain
 * (bdm_json_parse_create -> bdm_instance_prepare -> blockinfo_build);
 * only the formatting is timed. Prints "name value unit" lines.
 * Usage: bench_domxml [request.json [iterations]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "domxml.h"

#include "benchutil.h"

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	const struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	const char *data = getenv("TEST_DATA");
	char path[1024], dir[256], base[256];
	const char *req = argc > 1 ? argv[1] : NULL;
	long iters = argc > 2 ? atol(argv[2]) : 200000;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	struct domxml_opts o = {.virt_type = "kvm"};
	struct err e = {0};
	double *lat, t0, t1, wall0;
	size_t bytes = 0;
	char *body;

	if (req == NULL) {
		(void)snprintf(path, sizeof(path),
		    "%s/domxml/local-virtio.json",
		    data && *data ? data : "tests/data");
		req = path;
	}
	body = bench_read_file(req);
	if (body == NULL || iters < 1) {
		fprintf(stderr, "usage: bench_domxml [request.json [n]]\n");
		return 2;
	}
	if (bdm_json_parse_create(body, strlen(body), &inst, &e) < 0 ||
	    bdm_instance_prepare(inst, &lim, &e) < 0 ||
	    blockinfo_build(inst, &lim, &bi, &e) < 0) {
		fprintf(stderr, "bench_domxml: %s: %s\n", req, e.msg);
		return 1;
	}
	(void)snprintf(
	    dir, sizeof(dir), "/var/lib/hyperlet/instances/%s", inst->uuid);
	o.instance_dir = dir;
	if (inst->image_ref != NULL) {
		(void)snprintf(base, sizeof(base),
		    "/var/lib/hyperlet/images/%s", inst->image_ref);
		o.base_image_path = base;
	}

	lat = malloc((size_t)iters * sizeof(*lat));
	if (lat == NULL)
		return 1;
	wall0 = bench_now_ms();
	for (long i = 0; i < iters; i++) {
		char *xml = NULL;

		t0 = bench_now_ms();
		if (domxml_format_domain(inst, bi, &o, &xml, &e) < 0) {
			fprintf(stderr, "bench_domxml: %s\n", e.msg);
			return 1;
		}
		t1 = bench_now_ms();
		lat[i] = (t1 - t0) * 1e3; /* microseconds */
		bytes = strlen(xml);
		free(xml);
	}
	t1 = bench_now_ms();
	qsort(lat, (size_t)iters, sizeof(*lat), cmp_double);
	printf("domxml_disks %zu count\n", bi->n_disks);
	printf("domxml_bytes %zu bytes\n", bytes);
	printf("domxml_format_domain_mean %.2f us\n",
	    (t1 - wall0) * 1e3 / (double)iters);
	printf("domxml_format_domain_p50 %.2f us\n", lat[iters / 2]);
	printf("domxml_format_domain_p99 %.2f us\n",
	    lat[(size_t)((double)iters * 0.99)]);
	free(lat);
	free(body);
	blockinfo_free(bi);
	instance_free(inst);
	return 0;
}
