/*
 * bench_virt: the round trip of virt_define + virt_undefine through
 * hyperlet's own code, for one instance (root, ephemeral, swap) whose XML
 * comes from the real chain (JSON -> bdm -> blockinfo -> domxml). Only the
 * two virt calls are timed; one warm-up pair runs first (a fresh libvirtd
 * probes QEMU's capabilities on its first define). Prints "name value
 * unit" lines. Against a private libvirtd:
 *   tests/libvirtd/with-libvirtd.sh sh -c \
 *       'tests/bench/bench_virt "$HL_LIBVIRT_URI" 200'
 * Usage: bench_virt [uri [iterations]]   (uri default test:///default)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "domxml.h"
#include "virt.h"

#include "benchutil.h"

static const char request[] =
    "{\"name\": \"bench\", \"flavor\": {\"vcpus\": 1, \"memory_mb\": 64,"
    " \"root_gb\": 1, \"ephemeral_gb\": 1, \"swap\": 16},"
    " \"imageRef\": \"5b0f3c1e-2d4a-4e6f-8a9b-0c1d2e3f4a5b\"}";

static int
fail(const char *what, const struct err *e)
{
	fprintf(stderr, "bench_virt: %s: %s\n", what, e->msg);
	return 1;
}

int
main(int argc, char **argv)
{
	const struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	const char *uri = argc > 1 ? argv[1] : "test:///default";
	long iters = argc > 2 ? atol(argv[2]) : 1000;
	struct virt_opts vo = {
	    .virt_type = "qemu", .instances_path = "/var/tmp/hyperlet-bench"};
	struct domxml_opts o = {.virt_type = "qemu"};
	_cleanup_(virt_closep) struct virt *v = NULL;
	_cleanup_free_ char *dir = NULL, *xml = NULL;
	_cleanup_free_ double *lat = NULL;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	struct err e = {0};
	double t0, wall0;
	size_t errors = 0;
	long i;
	int rc = 0;

	if (iters < 1)
		iters = 1;
	vo.uri = uri;
	if (virt_open(&vo, &v, &e) < 0)
		return fail("open", &e);
	if (bdm_json_parse_create(request, strlen(request), &inst, &e) < 0 ||
	    bdm_instance_prepare(inst, &lim, &e) < 0 ||
	    blockinfo_build(inst, &lim, &bi, &e) < 0)
		return fail("model", &e);
	/* define does not look at the disks: none are made */
	o.instance_dir = NULL;
	if (virt_instance_dir(v, inst->uuid, &dir, &e) < 0)
		return fail("dir", &e);
	o.instance_dir = dir;
	o.base_image_path = "/var/tmp/hyperlet-bench/base.qcow2";
	if (domxml_format_domain(inst, bi, &o, &xml, &e) < 0)
		return fail("domxml", &e);

	if (virt_define(v, xml, &e) < 0 || virt_undefine(v, inst->uuid, &e) < 0)
		return fail("warm-up", &e);
	lat = calloc((size_t)iters, sizeof(*lat));
	if (lat == NULL)
		return 1;
	wall0 = bench_now_ms();
	for (i = 0; i < iters; i++) {
		err_clear(&e);
		t0 = bench_now_ms();
		if (virt_define(v, xml, &e) < 0 ||
		    virt_undefine(v, inst->uuid, &e) < 0) {
			errors++;
			if (errors == 1)
				fprintf(stderr, "bench_virt: %s\n", e.msg);
		}
		lat[i] = bench_now_ms() - t0;
	}
	printf("bench_virt_uri %s\n", uri);
	bench_report_latencies("virt_define_undefine", lat, (size_t)iters,
	    bench_now_ms() - wall0, errors);
	rc = errors ? 1 : 0;
	blockinfo_free(bi);
	instance_free(inst);
	return rc;
}
