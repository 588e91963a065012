/*
 * bench_populate: fills a hyperlet database with N instances the API's way
 * (the create body template -> bdm_json_parse_create ->
 * bdm_instance_prepare -> blockinfo_build -> store_instance_create), each
 * left "stopped", so that the list, memory and start-up figures of `make
 * bench` need no create path. Start-up then has to define all of them in
 * libvirt: with test:///default nothing persists across a restart, so
 * reconciliation redefines every domain (the case measured). Not timed.
 * Usage: bench_populate DB BODY_TEMPLATE N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "bdm.h"
#include "bdm_json.h"
#include "benchutil.h"
#include "blockinfo.h"
#include "store.h"

/* The template with @NAME@, @VOLn@ replaced (fresh volume ids). */
static char *
render(const char *tmpl, size_t i)
{
	size_t cap = strlen(tmpl) + 256, len = 0;
	char *out = malloc(cap);

	for (const char *p = tmpl; *p;) {
		char rep[64] = "";
		size_t skip = 1;

		if (strncmp(p, "@NAME@", 6) == 0) {
			snprintf(rep, sizeof(rep), "pop-%zu", i);
			skip = 6;
		} else if (strncmp(p, "@VOL", 4) == 0 && strchr(p + 1, '@')) {
			uuid_t u;

			uuid_generate_random(u);
			uuid_unparse_lower(u, rep);
			skip = (size_t)(strchr(p + 1, '@') - p) + 1;
		} else {
			rep[0] = *p;
			rep[1] = '\0';
		}
		memcpy(out + len, rep, strlen(rep));
		len += strlen(rep);
		p += skip;
	}
	out[len] = '\0';
	return out;
}

int
main(int argc, char **argv)
{
	const struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct store_opts so = {.sync_normal = true};
	struct store *s = NULL;
	struct err e = {0};
	char *tmpl;
	size_t n;

	if (argc != 4 || (tmpl = bench_read_file(argv[2])) == NULL) {
		fprintf(stderr, "usage: bench_populate DB BODY_TEMPLATE N\n");
		return 2;
	}
	n = strtoul(argv[3], NULL, 10);
	if (store_open(argv[1], &so, &s, &e) < 0) {
		fprintf(stderr, "bench_populate: %s\n", e.msg);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		char *body = render(tmpl, i);
		struct instance *inst = NULL;
		struct blockinfo *bi = NULL;

		e = (struct err){0};
		if (bdm_json_parse_create(body, strlen(body), &inst, &e) < 0 ||
		    bdm_instance_prepare(inst, &lim, &e) < 0 ||
		    blockinfo_build(inst, &lim, &bi, &e) < 0 ||
		    store_instance_create(s, inst, NULL, &e) < 0 ||
		    store_instance_set_state(
			s, inst->uuid, INSTANCE_STOPPED, &e) < 0) {
			fprintf(stderr, "bench_populate: %zu: %s\n", i, e.msg);
			return 1;
		}
		blockinfo_free(bi);
		instance_free(inst);
		free(body);
	}
	store_close(s);
	return 0;
}
