/*
 * bench_configdrive: how long building a typical config drive takes on
 * the create path: 2 NICs (static IPv4 + IPv6 with DNS; DHCP), 4 tagged
 * disks (local root, ephemeral, two volumes), 2 keys, 16 KiB of user
 * data. The instance comes from a create request through the real chain
 * (bdm_json_parse_create -> bdm_instance_prepare -> nic_json_prepare ->
 * blockinfo_build), its
 * domain XML from domxml; timed per drive:
 *   configdrive_build        domaddr_parse of the domain XML + metadata
 *                            (every version's files) + the ISO in memory
 *   configdrive_build_write  the same + the atomic write (fsync) of
 *                            disk.config into $TMPDIR
 * Prints "name value unit" lines (medians, and p99). With --dump DIR,
 * also writes the drive's files under DIR (for the Nova comparison,
 * tests/bench/bench_configdrive_nova.py) and the ISO as DIR.iso.
 * Usage: bench_configdrive [--dump DIR] [iterations]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "configdrive.h"
#include "domaddr.h"
#include "domxml.h"
#include "metadata.h"
#include "nic_json.h"

#include "benchutil.h"

#define USER_DATA_BYTES (16 * 1024)

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* 16 KiB of bytes once decoded, as base64 (owned). */
static char *
user_data(void)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
	    "tuvwxyz0123456789+/";
	size_t i, n = (USER_DATA_BYTES + 2) / 3 * 4;
	char *ud = calloc(n + 1, 1);

	if (ud == NULL)
		abort();
	for (i = 0; i < n; i++)
		ud[i] = b64[(i * 7 + 3) % 64];
	if (USER_DATA_BYTES % 3 == 1) {
		ud[n - 2] = '=';
		ud[n - 1] = '=';
	} else if (USER_DATA_BYTES % 3 == 2)
		ud[n - 1] = '=';
	return ud;
}

/* The typical create request; %s is the user data. */
static const char request[] =
    "{\"name\": \"web-1\", \"flavor\": {\"vcpus\": 2, \"memory_mb\": 2048,"
    " \"root_gb\": 10, \"ephemeral_gb\": 5},"
    " \"imageRef\": \"155d900f-4e14-4e4c-a73d-069cbf4541e6\","
    " \"config_drive\": true, \"metadata\": {\"role\": \"web\"},"
    " \"hostname\": \"web-1\", \"user_data\": \"%s\","
    " \"keys\": [{\"name\": \"ops\", \"type\": \"ssh\", \"data\":"
    " \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYX"
    "GBkaGxwdHh8g ops@example\"},"
    " {\"name\": \"backup\", \"type\": \"ssh\", \"data\":"
    " \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
    "Hh8gISIjJCUm backup\"}],"
    " \"networks\": [{\"bridge\": \"br-ex\", \"mtu\": 1500,"
    " \"tag\": \"public\", \"ips\": [{\"address\": \"192.0.2.10/24\","
    " \"gateway\": \"192.0.2.1\"}, {\"address\": \"2001:db8::10/64\","
    " \"gateway\": \"2001:db8::1\"}], \"dns\": [\"192.0.2.53\"]},"
    " {\"network\": \"default\", \"tag\": \"mgmt\"}],"
    " \"block_device_mapping_v2\": ["
    "{\"boot_index\": 0, \"source_type\": \"image\", \"destination_type\":"
    " \"local\", \"uuid\": \"155d900f-4e14-4e4c-a73d-069cbf4541e6\","
    " \"tag\": \"root\"},"
    "{\"source_type\": \"blank\", \"destination_type\": \"local\","
    " \"volume_size\": 5, \"tag\": \"scratch\"},"
    "{\"source_type\": \"volume\", \"destination_type\": \"volume\","
    " \"uuid\": \"0d1f0c52-8b1e-4c33-9e2f-0a8d3c2b1a99\", \"tag\": \"data\","
    " \"connection_info\": {\"driver_volume_type\": \"file\","
    " \"data\": {\"device_path\": \"/srv/vol/a.img\"}}},"
    "{\"source_type\": \"volume\", \"destination_type\": \"volume\","
    " \"uuid\": \"1d1f0c52-8b1e-4c33-9e2f-0a8d3c2b1a99\", \"tag\": \"logs\","
    " \"connection_info\": {\"driver_volume_type\": \"file\","
    " \"data\": {\"device_path\": \"/srv/vol/b.img\"}}}]}";

/* One drive: what the create path does after the define's XML is read. */
static int
build(const struct instance *inst, const char *xml, unsigned char **iso,
    size_t *len, struct err *e)
{
	_cleanup_(domaddr_freep) struct domaddr *dom = NULL;
	_cleanup_(configdrive_freep) struct configdrive *d = configdrive_new();
	int rc;

	if (d == NULL || (rc = domaddr_parse(xml, &dom, e)) < 0 ||
	    (rc = metadata_build(inst, dom, NULL, d, e)) < 0)
		return -1;
	return configdrive_image(d, iso, len, e);
}

static int
dump(const struct instance *inst, const char *xml, const char *dir)
{
	_cleanup_(domaddr_freep) struct domaddr *dom = NULL;
	_cleanup_(configdrive_freep) struct configdrive *d = configdrive_new();
	struct err e = {0};
	char path[4096], iso[4096];

	if (domaddr_parse(xml, &dom, &e) < 0 ||
	    metadata_build(inst, dom, NULL, d, &e) < 0 ||
	    (mkdir(dir, 0755) < 0 && errno != EEXIST))
		return -1;
	for (size_t i = 0; i < configdrive_n_files(d); i++) {
		const void *data;
		size_t len;
		const char *p = configdrive_file(d, i, &data, &len);
		FILE *f;

		(void)snprintf(path, sizeof(path), "%s/%s", dir, p);
		for (char *s = path + strlen(dir) + 1; (s = strchr(s, '/'));
		     s++) {
			*s = '\0';
			(void)mkdir(path, 0755);
			*s = '/';
		}
		if ((f = fopen(path, "wb")) == NULL ||
		    fwrite(data, 1, len, f) != len || fclose(f) != 0)
			return -1;
	}
	(void)snprintf(iso, sizeof(iso), "%s.iso", dir);
	return configdrive_write(d, iso, &e);
}

static void
report(const char *name, double *lat, long n)
{
	qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
	printf("%s %.3f ms\n", name, lat[n / 2]);
	printf("%s_p99 %.3f ms\n", name, lat[(size_t)((double)n * 0.99)]);
}

int
main(int argc, char **argv)
{
	const struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	const char *dumpdir = NULL, *tmpdir = getenv("TMPDIR");
	long iters = 200;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	struct domxml_opts o = {.virt_type = "kvm",
	    .instance_dir = "/var/lib/hyperlet/instances/x",
	    .base_image_path =
		"/var/lib/hyperlet/images/155d900f-4e14-4e4c-a73d-069cbf4541e6",
	    .base_image_format = "qcow2"};
	struct err e = {0};
	char *xml = NULL, *ud = NULL, *body = NULL, out[4096];
	double *lat, *latw, t0;
	size_t iso_len = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
			dumpdir = argv[++i];
		else
			iters = atol(argv[i]);
	}
	if (iters < 1)
		return 2;
	ud = user_data();
	if (asprintf(&body, request, ud) < 0)
		return 1;
	if (bdm_json_parse_create(body, strlen(body), &inst, &e) < 0 ||
	    bdm_instance_prepare(inst, &lim, &e) < 0 ||
	    nic_json_prepare(&inst->guest, inst->name, inst->uuid, &e) < 0 ||
	    blockinfo_build(inst, &lim, &bi, &e) < 0 ||
	    domxml_format_domain(inst, bi, &o, &xml, &e) < 0) {
		fprintf(stderr, "bench_configdrive: %s\n", e.msg);
		return 1;
	}
	if (dumpdir && dump(inst, xml, dumpdir) < 0) {
		fprintf(
		    stderr, "bench_configdrive: dump to %s failed\n", dumpdir);
		return 1;
	}
	(void)snprintf(out, sizeof(out), "%s/hl-bench-disk.config.%d",
	    tmpdir && *tmpdir ? tmpdir : "/tmp", (int)getpid());
	lat = malloc((size_t)iters * sizeof(*lat));
	latw = malloc((size_t)iters * sizeof(*latw));
	if (lat == NULL || latw == NULL)
		return 1;
	for (long i = 0; i < iters; i++) {
		unsigned char *iso = NULL;

		t0 = bench_now_ms();
		if (build(inst, xml, &iso, &iso_len, &e) < 0) {
			fprintf(stderr, "bench_configdrive: %s\n", e.msg);
			return 1;
		}
		lat[i] = bench_now_ms() - t0;
		free(iso);
		t0 = bench_now_ms();
		if (build(inst, xml, &iso, &iso_len, &e) < 0 ||
		    configdrive_write_file(out, iso, iso_len, &e) < 0) {
			fprintf(stderr, "bench_configdrive: %s\n", e.msg);
			return 1;
		}
		latw[i] = bench_now_ms() - t0;
		free(iso);
	}
	(void)unlink(out);
	report("configdrive_build", lat, iters);
	report("configdrive_build_write", latw, iters);
	printf("configdrive_iso_bytes %zu B\n", iso_len);
	free(lat);
	free(latw);
	free(xml);
	free(ud);
	free(body);
	blockinfo_free(bi);
	instance_free(inst);
	return 0;
}
