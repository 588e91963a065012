/*
 * metadata: the config drive's files for an instance (see metadata.h),
 * written with jwriter and added to a configdrive tree. Which field and
 * which file a version has follows nova/api/metadata/base.py's
 * _check_os_version thresholds, "latest" counting as the newest.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "jwriter.h"
#include "metadata.h"
#include "netinfo.h"

const char *const metadata_versions[METADATA_N_VERSIONS] = {
    "2012-08-10", /* FOLSOM */
    "2013-04-04", /* GRIZZLY: random_seed */
    "2013-10-17", /* HAVANA: vendor_data.json */
    "2015-10-15", /* LIBERTY: network_data.json */
    "2016-06-30", /* NEWTON_ONE: devices */
    "2016-10-06", /* NEWTON_TWO: vendor_data2.json */
    "2017-02-22", /* OCATA */
    "2018-08-27", /* ROCKY: vf_trusted */
    "2020-10-14", /* VICTORIA: dedicated_cpus */
    "latest",
};

enum {
	V_GRIZZLY = 1,
	V_HAVANA = 2,
	V_LIBERTY = 3,
	V_NEWTON_ONE = 4,
	V_NEWTON_TWO = 5,
	V_ROCKY = 7,
	V_VICTORIA = 8,
};

#define RANDOM_SEED_BYTES 512

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of n bytes into out (4 * ceil(n / 3) + 1 bytes). */
static void
b64_encode(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		out[o++] = b64[in[i] >> 2];
		out[o++] = b64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		out[o++] = b64[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		out[o++] = b64[in[i + 2] & 63];
	}
	if (i < n) {
		out[o++] = b64[in[i] >> 2];
		if (i + 1 < n) {
			out[o++] = b64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			out[o++] = b64[(in[i + 1] & 15) << 2];
		} else {
			out[o++] = b64[(in[i] & 3) << 4];
			out[o++] = '=';
		}
		out[o++] = '=';
	}
	out[o] = '\0';
}

static int
version_index(const char *version)
{
	for (int i = 0; i < METADATA_N_VERSIONS; i++)
		if (STREQ(metadata_versions[i], version))
			return i;
	return -1;
}

/* "/dev/vdb" -> "vdb" (Nova's block_device.strip_dev) */
static const char *
strip_dev(const char *name)
{
	return name && strncmp(name, "/dev/", 5) == 0 ? name + 5 : name;
}

/* Nova's _prepare_device_bus: bus and address of a device. */
static void
bus_address(const struct domaddr_dev *d, const char **bus, const char **addr)
{
	*bus = "none";
	*addr = "none";
	if (d == NULL)
		return;
	if (d->addr_type && STREQ(d->addr_type, "pci"))
		*bus = "pci";
	else if (d->kind == DOMADDR_DISK && d->target_bus &&
	    (STREQ(d->target_bus, "scsi") || STREQ(d->target_bus, "ide") ||
		STREQ(d->target_bus, "usb")))
		*bus = d->target_bus;
	if (!STREQ(*bus, "none") && d->address)
		*addr = d->address;
}

static void
tags(struct jwriter *w, const char *tag)
{
	jwriter_key(w, "tags");
	jwriter_arr_begin(w);
	jwriter_str(w, tag);
	jwriter_arr_end(w);
}

static void
disk_device(struct jwriter *w, const struct bdm *b, const struct domaddr_dev *d)
{
	const char *bus, *addr;

	bus_address(d, &bus, &addr);
	jwriter_obj_begin(w);
	jwriter_key(w, "type");
	jwriter_str(w, "disk");
	if (d && d->serial) {
		jwriter_key(w, "serial");
		jwriter_str(w, d->serial);
	}
	jwriter_key(w, "bus");
	jwriter_str(w, bus);
	jwriter_key(w, "address");
	jwriter_str(w, addr);
	tags(w, b->tag);
	jwriter_obj_end(w);
}

static void
nic_device(
    struct jwriter *w, const struct nic *n, const struct domaddr_dev *d, int v)
{
	const char *bus, *addr;

	bus_address(d, &bus, &addr);
	jwriter_obj_begin(w);
	if (v >= V_ROCKY) {
		jwriter_key(w, "vf_trusted");
		jwriter_bool(w, false);
	}
	jwriter_key(w, "type");
	jwriter_str(w, "nic");
	jwriter_key(w, "mac");
	jwriter_str(w, n->mac);
	jwriter_key(w, "bus");
	jwriter_str(w, bus);
	jwriter_key(w, "address");
	jwriter_str(w, addr);
	tags(w, n->tag);
	jwriter_obj_end(w);
}

static const struct bdm *
tagged_bdm(const struct instance *inst, const char *dev)
{
	for (size_t i = 0; dev && i < inst->n_bdms; i++) {
		const struct bdm *b = &inst->bdms[i];

		if (b->tag && b->tag[0] && b->device_name &&
		    STREQ(strip_dev(b->device_name), dev))
			return b;
	}
	return NULL;
}

static const struct nic *
tagged_nic(const struct instance *inst, const char *mac)
{
	for (size_t i = 0; mac && i < inst->guest.n_nics; i++) {
		const struct nic *n = &inst->guest.nics[i];

		if (n->tag && n->tag[0] && strcasecmp(n->mac, mac) == 0)
			return n;
	}
	return NULL;
}

/* devices: in the domain's order when it is known; else the tagged BDMs
 * then the tagged NICs, without addresses. */
static void
devices(struct jwriter *w, const struct instance *inst,
    const struct domaddr *dom, int v)
{
	jwriter_key(w, "devices");
	jwriter_arr_begin(w);
	if (dom) {
		for (size_t i = 0; i < dom->n; i++) {
			const struct domaddr_dev *d = &dom->devs[i];
			const struct bdm *b;
			const struct nic *n;

			if (d->kind == DOMADDR_DISK &&
			    (b = tagged_bdm(inst, d->target_dev)) != NULL)
				disk_device(w, b, d);
			else if (d->kind == DOMADDR_NIC &&
			    (n = tagged_nic(inst, d->mac)) != NULL)
				nic_device(w, n, d, v);
		}
	} else {
		for (size_t i = 0; i < inst->n_bdms; i++)
			if (inst->bdms[i].tag && inst->bdms[i].tag[0])
				disk_device(w, &inst->bdms[i], NULL);
		for (size_t i = 0; i < inst->guest.n_nics; i++)
			if (inst->guest.nics[i].tag &&
			    inst->guest.nics[i].tag[0])
				nic_device(w, &inst->guest.nics[i], NULL, v);
	}
	jwriter_arr_end(w);
}

static void
keys(struct jwriter *w, const struct guest_data *g)
{
	if (g->n_keys == 0)
		return;
	jwriter_key(w, "public_keys");
	jwriter_obj_begin(w);
	for (size_t i = 0; i < g->n_keys; i++) {
		jwriter_key_str(w, g->keys[i].name);
		jwriter_str(w, g->keys[i].data);
	}
	jwriter_obj_end(w);
	jwriter_key(w, "keys");
	jwriter_arr_begin(w);
	for (size_t i = 0; i < g->n_keys; i++) {
		jwriter_obj_begin(w);
		jwriter_key(w, "name");
		jwriter_str(w, g->keys[i].name);
		jwriter_key(w, "type");
		jwriter_str(w, g->keys[i].type);
		jwriter_key(w, "data");
		jwriter_str(w, g->keys[i].data);
		jwriter_obj_end(w);
	}
	jwriter_arr_end(w);
}

int
metadata_meta_data(const struct instance *inst, const struct domaddr *dom,
    const struct metadata_opts *o, const char *version, const char *random_seed,
    char **ret, size_t *ret_len, struct err *e)
{
	const struct guest_data *g = &inst->guest;
	struct jwriter w;
	int v = version_index(version), rc;

	if (v < 0)
		return err_set(
		    e, -EINVAL, "no metadata version '%.32s'", version);
	jwriter_init(&w, 2048);
	jwriter_obj_begin(&w);
	jwriter_key(&w, "uuid");
	jwriter_str(&w, inst->uuid);
	if (inst->metadata && !STREQ(inst->metadata, "{}")) {
		jwriter_key(&w, "meta");
		/* stored as json-c printed it; anything else as it is */
		if (jwriter_json_text(&w, inst->metadata) < 0)
			jwriter_raw(&w, inst->metadata, strlen(inst->metadata));
	}
	keys(&w, g);
	jwriter_key(&w, "hostname");
	jwriter_str(&w, g->hostname ? g->hostname : inst->name);
	jwriter_key(&w, "name");
	jwriter_str(&w, inst->name);
	jwriter_key(&w, "launch_index");
	jwriter_int(&w, 0);
	jwriter_key(&w, "availability_zone");
	jwriter_str(
	    &w, o && o->availability_zone ? o->availability_zone : "nova");
	if (v >= V_GRIZZLY) {
		jwriter_key(&w, "random_seed");
		jwriter_str(&w, random_seed ? random_seed : "");
	}
	if (v >= V_NEWTON_ONE)
		devices(&w, inst, dom, v);
	if (v >= V_VICTORIA) {
		jwriter_key(&w, "dedicated_cpus");
		jwriter_arr_begin(&w);
		jwriter_arr_end(&w);
	}
	jwriter_obj_end(&w);
	if ((rc = jwriter_finish(&w, ret, ret_len)) < 0)
		return err_set(e, rc, "out of memory");
	return 0;
}

/* Adds openstack/<version>/<name>. */
static int
add(struct configdrive *d, const char *version, const char *name,
    const void *data, size_t len, struct err *e)
{
	char path[128];

	(void)snprintf(path, sizeof(path), "openstack/%s/%s", version, name);
	return configdrive_add(d, path, data, len, e);
}

int
metadata_build(const struct instance *inst, const struct domaddr *dom,
    const struct metadata_opts *o, struct configdrive *d, struct err *e)
{
	static const char vd[] = "{}", vd2[] = "{\"static\":{}}";
	_cleanup_free_ unsigned char *ud = NULL;
	_cleanup_free_ char *net = NULL;
	unsigned char seed[RANDOM_SEED_BYTES];
	char seed64[(RANDOM_SEED_BYTES + 2) / 3 * 4 + 1];
	size_t ud_len = 0, net_len = 0, got = 0;
	ssize_t n;
	int rc;

	if (inst->guest.user_data &&
	    (rc = nic_base64_decode(inst->guest.user_data, &ud, &ud_len)) < 0)
		return rc == -ENOMEM ? err_set(e, rc, "out of memory")
				     : err_set_field(e, -EINVAL, "user_data",
					   "user_data is not base64");
	if ((rc = netinfo_format(&inst->guest, &net, &net_len, e)) < 0)
		return rc;
	while (got < sizeof(seed)) {
		n = getrandom(seed + got, sizeof(seed) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(
			    e, -errno, "getrandom: %s", strerror(errno));
		got += (size_t)n;
	}
	b64_encode(seed, sizeof(seed), seed64);
	for (int v = 0; v < METADATA_N_VERSIONS; v++) {
		const char *ver = metadata_versions[v];
		_cleanup_free_ char *md = NULL;
		size_t md_len = 0;

		if ((rc = metadata_meta_data(
			 inst, dom, o, ver, seed64, &md, &md_len, e)) < 0 ||
		    (rc = add(d, ver, "meta_data.json", md, md_len, e)) < 0 ||
		    (ud &&
			(rc = add(d, ver, "user_data", ud, ud_len, e)) < 0) ||
		    (v >= V_HAVANA &&
			(rc = add(d, ver, "vendor_data.json", vd,
			     sizeof(vd) - 1, e)) < 0) ||
		    (v >= V_LIBERTY &&
			(rc = add(d, ver, "network_data.json", net, net_len,
			     e)) < 0) ||
		    (v >= V_NEWTON_TWO &&
			(rc = add(d, ver, "vendor_data2.json", vd2,
			     sizeof(vd2) - 1, e)) < 0))
			return rc;
	}
	return 0;
}
