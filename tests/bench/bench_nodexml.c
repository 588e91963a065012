/*
 * bench_nodexml: writes a libvirt test-driver node file (`test:///PATH`)
 * holding the domain of every instance in a hyperlet database, formatted
 * as hyperletd would define it (store -> blockinfo_build -> domxml, the
 * same inputs compute's plan_domain uses), each in the run state its row
 * says (<test:runstate>). With it, `make bench` measures the start-up the
 * target names: instances in the database *and* defined in libvirt, so
 * reconciliation only compares. Not timed.
 * Usage: bench_nodexml DB INSTANCES_PATH IMAGES_PATH VIRT_TYPE OUT.xml
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm.h"
#include "benchutil.h"
#include "blockinfo.h"
#include "domxml.h"
#include "store.h"

/* The domain XML with the test namespace and run state put in. */
static int
write_domain(FILE *f, const char *xml, enum instance_state st)
{
	const char *open = strstr(xml, "<domain");
	const char *gt = open ? strchr(open, '>') : NULL;
	/* libvirt's VIR_DOMAIN_SHUTOFF = 5, VIR_DOMAIN_RUNNING = 1 */
	int runstate = st == INSTANCE_RUNNING ? 1 : 5;

	if (gt == NULL)
		return -1;
	fwrite(open, 1, (size_t)(gt - open), f);
	fprintf(f,
	    " xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
	    "  <test:runstate>%d</test:runstate>",
	    runstate);
	fputs(gt + 1, f);
	fputc('\n', f);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct store_opts so = {.no_migrate = true};
	struct store *s = NULL;
	struct instance **v = NULL;
	struct err e = {0};
	size_t n = 0;
	FILE *f;

	if (argc != 6) {
		fprintf(stderr,
		    "usage: bench_nodexml DB INSTANCES_PATH "
		    "IMAGES_PATH VIRT_TYPE OUT.xml\n");
		return 2;
	}
	if (store_open(argv[1], &so, &s, &e) < 0 ||
	    store_instance_list(s, NULL, 0, &v, &n, &e) < 0) {
		fprintf(stderr, "bench_nodexml: %s\n", e.msg);
		return 1;
	}
	if ((f = fopen(argv[5], "w")) == NULL) {
		perror(argv[5]);
		return 1;
	}
	fputs("<node>\n", f);
	for (size_t i = 0; i < n; i++) {
		struct instance *inst = v[i];
		struct blockinfo *bi = NULL;
		struct store_image *img = NULL;
		struct domxml_opts o = {.virt_type = argv[4]};
		char dir[4096], base[4096], *xml = NULL;
		const char *id = inst->image_ref;

		e = (struct err){0};
		if (blockinfo_build(inst, &lim, &bi, &e) < 0)
			goto fail;
		if (bi->local_root && bi->local_root->bdm_index >= 0 &&
		    inst->bdms[bi->local_root->bdm_index].image_id)
			id = inst->bdms[bi->local_root->bdm_index].image_id;
		snprintf(dir, sizeof(dir), "%s/%s", argv[2], inst->uuid);
		o.instance_dir = dir;
		if (bi->local_root && id) {
			if (store_image_get(s, id, &img, &e) < 0)
				goto fail;
			snprintf(base, sizeof(base), "%s/%s", argv[3], img->id);
			o.base_image_path = base;
			o.base_image_format = img->format;
		}
		if (domxml_format_domain(inst, bi, &o, &xml, &e) < 0 ||
		    write_domain(f, xml, inst->state) < 0)
			goto fail;
		free(xml);
		store_image_free(img);
		blockinfo_free(bi);
		continue;
fail:
		fprintf(stderr, "bench_nodexml: %s: %s\n", inst->uuid, e.msg);
		return 1;
	}
	fputs("</node>\n", f);
	if (fclose(f) != 0) {
		perror(argv[5]);
		return 1;
	}
	store_instance_list_free(v, n);
	store_close(s);
	return 0;
}
