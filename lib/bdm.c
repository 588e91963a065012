/*
 * The BDM model and Nova's API rules for it (nova/block_device.py and
 * nova/compute/api.py _check_and_transform_bdm, _get_flavor_defined_bdms,
 * _validate_bdm). Where Nova answers 500 or silently rewrites a bad value,
 * this module refuses it with -EINVAL and names the request field. Pure
 * but for drawing UUIDs; a volume's connection_info source comes read
 * (conn_type, conn_path: bdm_json when it parses a request, the store when
 * it loads a row), never parsed here. Work is linear in the
 * number of BDMs, except the uniqueness checks: pairwise up to 16 BDMs,
 * sorted (n log n) above.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm.h"

#define BDM_SERIAL_PREFIX 20 /* what virtio-blk, SATA and IDE keep */
#define BDM_NAME_MAX 255 /* characters, as Nova's name and ids */
#define BDM_TAG_MAX 60 /* nova/objects/tag.py MAX_TAG_LENGTH */
#define BDM_SIZE_MAX 0x7fffffff /* nova/db/constants.py MAX_INT */

static const char *const source_names[] = {
    [BDM_SOURCE_IMAGE] = "image",
    [BDM_SOURCE_VOLUME] = "volume",
    [BDM_SOURCE_SNAPSHOT] = "snapshot",
    [BDM_SOURCE_BLANK] = "blank",
};
static const char *const dest_names[] = {
    [BDM_DEST_LOCAL] = "local",
    [BDM_DEST_VOLUME] = "volume",
};
static const char *const device_type_names[] = {
    [BDM_DEVICE_DISK] = "disk",
    [BDM_DEVICE_CDROM] = "cdrom",
    [BDM_DEVICE_LUN] = "lun",
};
static const char *const bus_names[] = {
    [BDM_BUS_VIRTIO] = "virtio",
    [BDM_BUS_SCSI] = "scsi",
    [BDM_BUS_SATA] = "sata",
    [BDM_BUS_IDE] = "ide",
};
static const char *const state_names[] = {
    [INSTANCE_BUILDING] = "building",
    [INSTANCE_RUNNING] = "running",
    [INSTANCE_STOPPED] = "stopped",
    [INSTANCE_ERROR] = "error",
    [INSTANCE_DELETING] = "deleting",
    [INSTANCE_PAUSED] = "paused",
    [INSTANCE_CRASHED] = "crashed",
};
static const char *const attach_state_names[] = {
    [BDM_ATTACH_ATTACHING] = "attaching",
    [BDM_ATTACH_DETACHING] = "detaching",
};
/* libvirt's SCSI controller models that QEMU/KVM offers. */
static const char *const scsi_models[] = {
    "virtio-scsi",
    "lsilogic",
    "lsisas1068",
    "lsisas1078",
    "mptsas1068",
    "megasas",
    "buslogic",
    "vmpvscsi",
};

static const char *
table_to_string(const char *const *t, size_t n, int v)
{
	if (v < 0 || (size_t)v >= n)
		return NULL;
	return t[v];
}

static int
table_from_string(const char *const *t, size_t n, const char *s, int *ret)
{
	if (s == NULL)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (t[i] != NULL && STREQ(t[i], s)) {
			*ret = (int)i;
			return 0;
		}
	return -EINVAL;
}

#define DEFINE_ENUM_STRING(name, type, table)                                  \
	const char *name##_to_string(type v)                                   \
	{                                                                      \
		return table_to_string(table, ELEMENTSOF(table), (int)v);      \
	}                                                                      \
	int name##_from_string(const char *s, type *ret)                       \
	{                                                                      \
		int v, r = table_from_string(table, ELEMENTSOF(table), s, &v); \
		if (r == 0)                                                    \
			*ret = (type)v;                                        \
		return r;                                                      \
	}

/* enum <-> string: _to_string returns a static string or NULL for an
 * unset or unknown value; _from_string returns 0 and sets *ret, or
 * -EINVAL (*ret untouched). */
DEFINE_ENUM_STRING(bdm_source, enum bdm_source, source_names)
DEFINE_ENUM_STRING(bdm_dest, enum bdm_dest, dest_names)
DEFINE_ENUM_STRING(bdm_device_type, enum bdm_device_type, device_type_names)
DEFINE_ENUM_STRING(bdm_bus, enum bdm_bus, bus_names)
DEFINE_ENUM_STRING(instance_state, enum instance_state, state_names)
DEFINE_ENUM_STRING(bdm_attach_state, enum bdm_attach_state, attach_state_names)

/* True for a blank -> local BDM with guest_format "swap"
 * (new_format_is_swap). */
bool
bdm_is_swap(const struct bdm *b)
{
	return b->source_type == BDM_SOURCE_BLANK &&
	    b->destination_type == BDM_DEST_LOCAL && b->guest_format != NULL &&
	    STREQ(b->guest_format, "swap");
}

/* True for a blank -> local BDM that is not swap
 * (new_format_is_ephemeral). */
bool
bdm_is_ephemeral(const struct bdm *b)
{
	return b->source_type == BDM_SOURCE_BLANK &&
	    b->destination_type == BDM_DEST_LOCAL && !bdm_is_swap(b);
}

/* True for every BDM whose disk lives on this host (root, ephemeral,
 * swap). */
bool
bdm_is_local(const struct bdm *b)
{
	return b->destination_type == BDM_DEST_LOCAL;
}

/* True for a BDM whose destination is a (Cinder-style) volume. */
bool
bdm_is_volume(const struct bdm *b)
{
	return b->destination_type == BDM_DEST_VOLUME;
}

/* Frees the strings b owns and resets every field (boot_index and
 * volume_size to their "none" values). */
void
bdm_clear(struct bdm *b)
{
	free(b->guest_format);
	free(b->device_name);
	free(b->image_id);
	free(b->volume_id);
	free(b->snapshot_id);
	free(b->tag);
	free(b->connection_info);
	free(b->conn_type);
	free(b->conn_path);
	memset(b, 0, sizeof(*b));
	b->boot_index = BDM_BOOT_NONE;
	b->volume_size = BDM_SIZE_NONE;
}

static int
dup_str(const char *s, char **ret, struct err *e)
{
	if (s == NULL) {
		*ret = NULL;
		return 0;
	}
	*ret = strdup(s);
	return *ret ? 0 : err_set(e, -ENOMEM, "out of memory");
}

/* Deep-copies src into dst, which must hold no strings (cleared or
 * zeroed). On failure dst is left cleared. Returns 0 or -ENOMEM. */
int
bdm_copy(const struct bdm *src, struct bdm *dst, struct err *e)
{
	struct bdm t = *src;
	int r = 0;

	t.guest_format = t.device_name = t.image_id = t.volume_id =
	    t.snapshot_id = t.tag = t.connection_info = t.conn_type =
		t.conn_path = NULL;
	if ((r = dup_str(src->guest_format, &t.guest_format, e)) < 0 ||
	    (r = dup_str(src->device_name, &t.device_name, e)) < 0 ||
	    (r = dup_str(src->image_id, &t.image_id, e)) < 0 ||
	    (r = dup_str(src->volume_id, &t.volume_id, e)) < 0 ||
	    (r = dup_str(src->snapshot_id, &t.snapshot_id, e)) < 0 ||
	    (r = dup_str(src->tag, &t.tag, e)) < 0 ||
	    (r = dup_str(src->connection_info, &t.connection_info, e)) < 0 ||
	    (r = dup_str(src->conn_type, &t.conn_type, e)) < 0 ||
	    (r = dup_str(src->conn_path, &t.conn_path, e)) < 0) {
		bdm_clear(&t);
		bdm_clear(dst);
		return r;
	}
	*dst = t;
	return 0;
}

/* Frees the strings p owns and sets them to NULL. */
void
image_props_clear(struct image_props *p)
{
	free(p->hw_disk_bus);
	free(p->hw_cdrom_bus);
	free(p->hw_scsi_model);
	free(p->hw_machine_type);
	free(p->disk_format);
	memset(p, 0, sizeof(*p));
}

/* A new empty instance (state building, start true, no BDMs), owned by
 * the caller (instance_free). NULL on OOM. */
struct instance *
instance_new(void)
{
	struct instance *inst = calloc(1, sizeof(*inst));

	if (inst == NULL)
		return NULL;
	inst->state = INSTANCE_BUILDING;
	inst->desired_state = INSTANCE_RUNNING;
	inst->start = true;
	return inst;
}

/* Frees inst and everything it owns. Accepts NULL; returns NULL. */
struct instance *
instance_free(struct instance *inst)
{
	if (inst == NULL)
		return NULL;
	for (size_t i = 0; i < inst->n_bdms; i++)
		bdm_clear(&inst->bdms[i]);
	free(inst->bdms);
	free(inst->name);
	free(inst->image_ref);
	free(inst->metadata);
	free(inst->fault);
	image_props_clear(&inst->props);
	guest_data_clear(&inst->guest);
	free(inst);
	return NULL;
}

/* Appends a cleared BDM to inst and points *ret_bdm at it (borrowed; valid
 * until the next append). The array grows geometrically. Returns 0 or
 * -ENOMEM. */
int
instance_bdm_append(struct instance *inst, struct bdm **ret_bdm, struct err *e)
{
	struct bdm *b;

	if (inst->n_bdms >= inst->bdms_cap) {
		size_t cap = inst->n_bdms < 4 ? 4 : inst->n_bdms * 2;
		struct bdm *nb = realloc(inst->bdms, cap * sizeof(*nb));

		if (nb == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		inst->bdms = nb;
		inst->bdms_cap = cap;
	}
	b = &inst->bdms[inst->n_bdms++];
	memset(b, 0, sizeof(*b));
	b->boot_index = BDM_BOOT_NONE;
	b->volume_size = BDM_SIZE_NONE;
	*ret_bdm = b;
	return 0;
}

/* ---- prepare ------------------------------------------------------- */

/* Where BDM i of the prepared list came from, for error paths. */
struct origin {
	size_t n_req; /* BDMs the request gave */
	size_t off; /* 1 when an image root was inserted in front */
};

/* The request path of BDM i, plus ".field" if field is set. */
static const char *
bdm_field(char buf[ERR_FIELD_MAX], const struct origin *o, const struct bdm *b,
    size_t i, const char *field)
{
	if (i < o->off)
		(void)snprintf(buf, ERR_FIELD_MAX, "imageRef");
	else if (i >= o->off + o->n_req)
		(void)snprintf(buf, ERR_FIELD_MAX, "%s",
		    bdm_is_swap(b) ? "flavor.swap" : "flavor.ephemeral_gb");
	else if (field)
		(void)snprintf(buf, ERR_FIELD_MAX,
		    "block_device_mapping_v2[%zu].%s", i - o->off, field);
	else
		(void)snprintf(buf, ERR_FIELD_MAX,
		    "block_device_mapping_v2[%zu]", i - o->off);
	return buf;
}

#define BDM_FAIL(code, field, ...)                                        \
	({                                                                \
		char _f[ERR_FIELD_MAX];                                   \
		err_set_field(                                            \
		    e, code, bdm_field(_f, o, b, i, field), __VA_ARGS__); \
	})

static bool
is_lower_alnum(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
			return false;
	return n > 0 && n <= max;
}

/* Normalises a device name to "/dev/<vd|sd|hd><a-z>{1,3}" in place.
 * Returns 0 or -EINVAL. */
static int
device_name_normalize(char **name)
{
	const char *s = *name;
	size_t n;
	char *d;

	if (strncmp(s, "/dev/", 5) == 0)
		s += 5;
	if (strncmp(s, "vd", 2) != 0 && strncmp(s, "sd", 2) != 0 &&
	    strncmp(s, "hd", 2) != 0)
		return -EINVAL;
	n = strlen(s);
	if (n < 3 || n > 5)
		return -EINVAL;
	for (size_t k = 2; k < n; k++)
		if (s[k] < 'a' || s[k] > 'z')
			return -EINVAL;
	if (s != *name + 5) {
		d = malloc(n + 6);
		if (d == NULL)
			return -ENOMEM;
		memcpy(d, "/dev/", 5);
		memcpy(d + 5, s, n + 1);
		free(*name);
		*name = d;
	}
	return 0;
}

/* A Cinder-style id (volume, snapshot): a safe serial, 1..255 bytes. */
static bool
id_valid(const char *s)
{
	return util_serial_valid(s) && strlen(s) <= BDM_NAME_MAX;
}

/* The rules that concern one BDM alone (from_api, BlockDeviceDict
 * ._validate, the per-BDM part of _validate_bdm, and hyperlet's own), and
 * its defaults. i is its index in inst->bdms. */
static int
bdm_check_one(const struct instance *inst, struct bdm *b, size_t i,
    const struct origin *o, struct err *e)
{
	int r;

	if (b->destination_type <= BDM_DEST_UNSET ||
	    b->destination_type > BDM_DEST_VOLUME)
		return BDM_FAIL(-EINVAL, "destination_type",
		    "field '%s': is required (local or volume)", _f);

	/* sources, ids and destinations (from_api, _validate_bdm) */
	switch (b->source_type) {
	case BDM_SOURCE_IMAGE:
		if (b->image_id == NULL)
			return BDM_FAIL(-EINVAL, "uuid",
			    "field '%s': is required for source_type image",
			    _f);
		if (!util_uuid_is_canonical(b->image_id))
			return BDM_FAIL(-EINVAL, "uuid",
			    "field '%s': expected an image UUID", _f);
		if (bdm_is_local(b)) {
			if (inst->image_ref == NULL || b->boot_index != 0)
				return BDM_FAIL(-EINVAL, "source_type",
				    "field '%s': mapping an image to local is "
				    "supported only as the root disk "
				    "(boot_index 0) of an instance booted "
				    "from imageRef",
				    _f);
			if (!STREQ(b->image_id, inst->image_ref))
				return BDM_FAIL(-EINVAL, "uuid",
				    "field '%s': the local root disk must use "
				    "the image named by imageRef",
				    _f);
		} else if (b->volume_size == BDM_SIZE_NONE)
			return BDM_FAIL(-EINVAL, "volume_size",
			    "field '%s': images with destination_type volume "
			    "need a non-zero volume_size",
			    _f);
		break;
	case BDM_SOURCE_VOLUME:
		if (b->volume_id == NULL)
			return BDM_FAIL(-EINVAL, "uuid",
			    "field '%s': is required for source_type volume",
			    _f);
		if (bdm_is_local(b))
			return BDM_FAIL(-EINVAL, "destination_type",
			    "field '%s': a volume can only be mapped to "
			    "destination_type volume",
			    _f);
		break;
	case BDM_SOURCE_SNAPSHOT:
		if (b->snapshot_id == NULL)
			return BDM_FAIL(-EINVAL, "uuid",
			    "field '%s': is required for source_type snapshot",
			    _f);
		if (!id_valid(b->snapshot_id))
			return BDM_FAIL(-EINVAL, "uuid",
			    "field '%s': expected a snapshot id of 1..255 "
			    "characters [A-Za-z0-9_.+-]",
			    _f);
		if (bdm_is_local(b))
			return BDM_FAIL(-EINVAL, "destination_type",
			    "field '%s': a snapshot can only be mapped to "
			    "destination_type volume",
			    _f);
		break;
	case BDM_SOURCE_BLANK:
		if (b->image_id || b->snapshot_id)
			return BDM_FAIL(-EINVAL, "uuid",
			    "field '%s': a blank source takes no uuid", _f);
		if (bdm_is_volume(b) && b->volume_size == BDM_SIZE_NONE)
			return BDM_FAIL(-EINVAL, "volume_size",
			    "field '%s': blank volumes need a non-zero "
			    "volume_size",
			    _f);
		break;
	default:
		return BDM_FAIL(-EINVAL, "source_type",
		    "field '%s': is required (image, volume, snapshot or "
		    "blank)",
		    _f);
	}

	if (b->volume_size != BDM_SIZE_NONE &&
	    (b->volume_size < 1 || b->volume_size > BDM_SIZE_MAX))
		return BDM_FAIL(-EINVAL, "volume_size",
		    "field '%s': expected 1..%d", _f, BDM_SIZE_MAX);
	if (b->boot_index < BDM_BOOT_NONE)
		b->boot_index = BDM_BOOT_NONE;

	if (b->device_type == BDM_DEVICE_UNSET)
		b->device_type = BDM_DEVICE_DISK;
	else if (b->device_type < BDM_DEVICE_DISK ||
	    b->device_type > BDM_DEVICE_LUN)
		return BDM_FAIL(-EINVAL, "device_type",
		    "field '%s': expected disk, cdrom or lun", _f);
	if (b->disk_bus < BDM_BUS_UNSET || b->disk_bus > BDM_BUS_IDE)
		return BDM_FAIL(-EINVAL, "disk_bus",
		    "field '%s': expected virtio, scsi, sata or ide", _f);
	if (b->device_type == BDM_DEVICE_CDROM && b->disk_bus == BDM_BUS_VIRTIO)
		return BDM_FAIL(-EINVAL, "disk_bus",
		    "field '%s': a cdrom cannot sit on the virtio bus", _f);
	if (b->device_type == BDM_DEVICE_LUN &&
	    (bdm_is_local(b) ||
		(b->disk_bus != BDM_BUS_UNSET && b->disk_bus != BDM_BUS_SCSI)))
		return BDM_FAIL(-EINVAL, "device_type",
		    "field '%s': lun is only for volumes on the scsi bus", _f);

	if (b->device_name != NULL) {
		r = device_name_normalize(&b->device_name);
		if (r == -ENOMEM)
			return err_set(e, r, "out of memory");
		if (r < 0)
			return BDM_FAIL(-EINVAL, "device_name",
			    "field '%s': expected /dev/ followed by vd, sd or "
			    "hd and 1..3 letters, e.g. /dev/vdb",
			    _f);
	}
	if (b->guest_format != NULL && !STREQ(b->guest_format, "swap") &&
	    !is_lower_alnum(b->guest_format, 32))
		return BDM_FAIL(-EINVAL, "guest_format",
		    "field '%s': expected swap or a filesystem name "
		    "([a-z0-9]{1,32})",
		    _f);
	if (b->guest_format != NULL && STREQ(b->guest_format, "swap") &&
	    !(b->source_type == BDM_SOURCE_BLANK && bdm_is_local(b)))
		return BDM_FAIL(-EINVAL, "guest_format",
		    "field '%s': swap is only for blank local disks", _f);
	if (b->tag != NULL &&
	    (b->tag[0] == '\0' || util_utf8_chars(b->tag) > BDM_TAG_MAX ||
		strpbrk(b->tag, ",/") != NULL))
		return BDM_FAIL(-EINVAL, "tag",
		    "field '%s': expected 1..%d characters without ',' or "
		    "'/'",
		    _f, BDM_TAG_MAX);

	if (bdm_is_local(b)) {
		if (b->volume_id != NULL)
			return BDM_FAIL(-EINVAL, "volume_id",
			    "field '%s': only for destination_type volume", _f);
		if (b->connection_info != NULL)
			return BDM_FAIL(-EINVAL, "connection_info",
			    "field '%s': only for destination_type volume", _f);
		if (b->source_type == BDM_SOURCE_BLANK) {
			if (b->device_type != BDM_DEVICE_DISK)
				return BDM_FAIL(-EINVAL, "device_type",
				    "field '%s': blank local disks are of "
				    "device_type disk",
				    _f);
			if (b->boot_index == 0)
				return BDM_FAIL(-EINVAL, "boot_index",
				    "field '%s': a blank local disk cannot be "
				    "the root disk",
				    _f);
			if (bdm_is_swap(b) && b->boot_index != BDM_BOOT_NONE)
				return BDM_FAIL(-EINVAL, "boot_index",
				    "field '%s': swap is not bootable", _f);
		}
		/* local disks always go with the instance */
		b->delete_on_termination = true;
	} else {
		if (b->volume_id == NULL)
			return BDM_FAIL(-EINVAL, "volume_id",
			    "field '%s': is required: hyperlet needs the "
			    "volume the scheduler attached",
			    _f);
		if (!id_valid(b->volume_id))
			return BDM_FAIL(-EINVAL,
			    b->source_type == BDM_SOURCE_VOLUME ? "uuid"
								: "volume_id",
			    "field '%s': expected a volume id of 1..255 "
			    "characters [A-Za-z0-9_.+-]",
			    _f);
		if (b->connection_info == NULL)
			return BDM_FAIL(-EINVAL, "connection_info",
			    "field '%s': is required for destination_type "
			    "volume",
			    _f);
		/* read once, by bdm_json or the store */
		if (b->conn_type == NULL || b->conn_path == NULL)
			return BDM_FAIL(-EINVAL, "connection_info",
			    "field '%s': expected driver_volume_type file or "
			    "block and data.device_path",
			    _f);
		if (b->device_type == BDM_DEVICE_LUN &&
		    !STREQ(b->conn_type, "block"))
			return BDM_FAIL(-EINVAL,
			    "connection_info.driver_volume_type",
			    "field '%s': a lun needs a block device", _f);
	}
	return 0;
}

/* Is the first BDM_SERIAL_PREFIX bytes of a equal to those of b? */
static bool
prefix_eq(const char *a, const char *b)
{
	return strncmp(a, b, BDM_SERIAL_PREFIX) == 0;
}

/* The id the guest sees as serial of b ("" for lun, which has none). */
static const char *
serial_id(const struct bdm *b)
{
	if (b->device_type == BDM_DEVICE_LUN)
		return "";
	if (bdm_is_volume(b))
		return b->volume_id ? b->volume_id : "";
	return b->uuid;
}

/* Does id collide (by serial prefix) with the serial id of any BDM in
 * bdms[0..n) other than skip? */
static bool
serial_taken(const struct bdm *bdms, size_t n, size_t skip, const char *id)
{
	for (size_t k = 0; k < n; k++) {
		const char *s;

		if (k == skip)
			continue;
		s = serial_id(&bdms[k]);
		if (s[0] != '\0' && prefix_eq(s, id))
			return true;
	}
	return false;
}

/* Inserts a cleared BDM at index 0 (the image root). */
static int
bdm_insert_front(struct instance *inst, struct bdm **ret, struct err *e)
{
	struct bdm *b;
	int r;

	if ((r = instance_bdm_append(inst, &b, e)) < 0)
		return r;
	memmove(
	    &inst->bdms[1], &inst->bdms[0], (inst->n_bdms - 1) * sizeof(*b));
	b = &inst->bdms[0];
	memset(b, 0, sizeof(*b));
	b->boot_index = BDM_BOOT_NONE;
	b->volume_size = BDM_SIZE_NONE;
	*ret = b;
	return 0;
}

/* create_blank_bdm(size, guest_format) */
static int
bdm_append_blank(struct instance *inst, int64_t size, const char *guest_format,
    struct err *e)
{
	struct bdm *b;
	int r;

	if ((r = instance_bdm_append(inst, &b, e)) < 0)
		return r;
	b->source_type = BDM_SOURCE_BLANK;
	b->destination_type = BDM_DEST_LOCAL;
	b->device_type = BDM_DEVICE_DISK;
	b->delete_on_termination = true;
	b->volume_size = size;
	if (guest_format && (b->guest_format = strdup(guest_format)) == NULL) {
		inst->n_bdms--;
		return err_set(e, -ENOMEM, "out of memory");
	}
	return 0;
}

static int
check_props(const struct image_props *p, struct err *e)
{
	enum bdm_bus bus;
	int v;

	if (p->hw_disk_bus && bdm_bus_from_string(p->hw_disk_bus, &bus) < 0)
		return err_set_field(e, -EINVAL,
		    "image_meta.properties.hw_disk_bus",
		    "field 'image_meta.properties.hw_disk_bus': expected "
		    "virtio, scsi, sata or ide");
	if (p->hw_cdrom_bus &&
	    (bdm_bus_from_string(p->hw_cdrom_bus, &bus) < 0 ||
		bus == BDM_BUS_VIRTIO))
		return err_set_field(e, -EINVAL,
		    "image_meta.properties.hw_cdrom_bus",
		    "field 'image_meta.properties.hw_cdrom_bus': expected "
		    "scsi, sata or ide");
	if (p->hw_scsi_model &&
	    table_from_string(
		scsi_models, ELEMENTSOF(scsi_models), p->hw_scsi_model, &v) < 0)
		return err_set_field(e, -EINVAL,
		    "image_meta.properties.hw_scsi_model",
		    "field 'image_meta.properties.hw_scsi_model': expected a "
		    "libvirt SCSI model such as virtio-scsi");
	if (p->hw_machine_type) {
		const char *s = p->hw_machine_type;
		size_t n = strlen(s);
		bool ok = n > 0 && n <= 64;

		for (; ok && *s; s++)
			ok = (*s >= 'a' && *s <= 'z') ||
			    (*s >= '0' && *s <= '9') || *s == '.' ||
			    *s == '-' || *s == '_';
		if (!ok)
			return err_set_field(e, -EINVAL,
			    "image_meta.properties.hw_machine_type",
			    "field 'image_meta.properties.hw_machine_type': "
			    "expected a machine type such as q35 or "
			    "pc-q35-7.2");
	}
	return 0;
}

static int
check_instance(const struct instance *inst, struct err *e)
{
	const struct flavor *f = &inst->flavor;

	if (inst->uuid[0] != '\0' && !util_uuid_is_canonical(inst->uuid))
		return err_set_field(
		    e, -EINVAL, "uuid", "field 'uuid': expected a UUID");
	if (inst->name == NULL || inst->name[0] == '\0' ||
	    util_utf8_chars(inst->name) > BDM_NAME_MAX)
		return err_set_field(e, -EINVAL, "name",
		    "field 'name': expected 1..255 characters");
	if (f->vcpus < 1 || f->memory_mb < 1 || f->root_gb < 0 ||
	    f->ephemeral_gb < 0 || f->swap < 0)
		return err_set_field(e, -EINVAL, "flavor",
		    "field 'flavor': vcpus and memory_mb must be >= 1, sizes "
		    ">= 0");
	if (inst->image_ref && !util_uuid_is_canonical(inst->image_ref))
		return err_set_field(e, -EINVAL, "imageRef",
		    "field 'imageRef': expected an image UUID");
	return check_props(&inst->props, e);
}

/* ---- uniqueness ---------------------------------------------------- */

/*
 * Device names, volume ids (by serial prefix), bdm_uuids and serials must
 * be unique within an instance. Up to BDM_PAIRWISE_MAX BDMs (the usual
 * case) every pair is compared; above, the keys are sorted, so that a
 * max_bdms of 1024 costs n log n. Both paths name the same BDM: the
 * lowest-indexed one that repeats an earlier one.
 */
#define BDM_PAIRWISE_MAX 16

enum dup_kind { DUP_NONE, DUP_DEVICE, DUP_VOLUME, DUP_UUID };

struct ref {
	const char *s;
	size_t i;
};

static int
ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;
	int c = strcmp(x->s, y->s);

	return c ? c : (x->i > y->i) - (x->i < y->i);
}

static int
ref_cmp_prefix(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;
	int c = strncmp(x->s, y->s, BDM_SERIAL_PREFIX);

	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Sorts r[0..n) by key then index; returns the lowest index that repeats
 * the key of a lower one (and that one in *ret_first), or SIZE_MAX. */
static size_t
first_repeat(struct ref *r, size_t n, bool prefix, size_t *ret_first)
{
	size_t best = SIZE_MAX;

	qsort(r, n, sizeof(*r), prefix ? ref_cmp_prefix : ref_cmp);
	for (size_t k = 1; k < n; k++) {
		bool eq = prefix ? prefix_eq(r[k - 1].s, r[k].s)
				 : STREQ(r[k - 1].s, r[k].s);

		/* in a run of equal keys only the second can be lowest */
		if (eq &&
		    (k < 2 ||
			!(prefix ? prefix_eq(r[k - 2].s, r[k].s)
				 : STREQ(r[k - 2].s, r[k].s))) &&
		    r[k].i < best) {
			best = r[k].i;
			*ret_first = r[k - 1].i;
		}
	}
	return best;
}

/* Finds the first repeated device name, volume or given bdm_uuid: sets
 * *ret_i (the repeating BDM), *ret_k (the one it repeats) and returns the
 * kind, or DUP_NONE. refs holds at least n entries. */
static enum dup_kind
find_dup(
    const struct instance *inst, struct ref *refs, size_t *ret_i, size_t *ret_k)
{
	const struct bdm *bdms = inst->bdms;
	size_t n = inst->n_bdms, m, first = 0, i;
	enum dup_kind kind = DUP_NONE;

	if (n <= BDM_PAIRWISE_MAX) {
		for (i = 0; i < n; i++)
			for (size_t k = 0; k < i; k++) {
				const struct bdm *b = &bdms[i], *c = &bdms[k];

				if (b->device_name && c->device_name &&
				    STREQ(b->device_name, c->device_name))
					kind = DUP_DEVICE;
				else if (bdm_is_volume(b) && bdm_is_volume(c) &&
				    prefix_eq(b->volume_id, c->volume_id))
					kind = DUP_VOLUME;
				else if (b->uuid[0] && c->uuid[0] &&
				    STREQ(b->uuid, c->uuid))
					kind = DUP_UUID;
				if (kind != DUP_NONE) {
					*ret_i = i;
					*ret_k = k;
					return kind;
				}
			}
		return DUP_NONE;
	}

	/* sorted: the lowest repeating index over the three kinds (when one
	 * BDM repeats two others, the kind named may differ from the
	 * pairwise loop's) */
	*ret_i = SIZE_MAX;
	for (int pass = DUP_DEVICE; pass <= DUP_UUID; pass++) {
		m = 0;
		for (i = 0; i < n; i++) {
			const struct bdm *b = &bdms[i];
			const char *key = pass == DUP_DEVICE ? b->device_name
			    : pass == DUP_VOLUME
			    ? (bdm_is_volume(b) ? b->volume_id : NULL)
			    : (b->uuid[0] ? b->uuid : NULL);

			if (key)
				refs[m++] = (struct ref){key, i};
		}
		i = first_repeat(refs, m, pass == DUP_VOLUME, &first);
		if (i < *ret_i) {
			*ret_i = i;
			*ret_k = first;
			kind = (enum dup_kind)pass;
		}
	}
	return kind;
}

/* Serial ids of every disk that has one (volume ids, and local bdm uuids
 * that are set) into refs; returns how many. */
static size_t
serial_refs(const struct instance *inst, struct ref *refs)
{
	size_t m = 0;

	for (size_t i = 0; i < inst->n_bdms; i++) {
		const char *s = serial_id(&inst->bdms[i]);

		if (s[0] != '\0')
			refs[m++] = (struct ref){s, i};
	}
	return m;
}

/* The lowest-indexed local disk with a uuid whose serial prefix another
 * disk shares, or SIZE_MAX. */
static size_t
find_serial_clash(const struct instance *inst, struct ref *refs)
{
	size_t n = inst->n_bdms, best = SIZE_MAX, m, g;

	if (n <= BDM_PAIRWISE_MAX) {
		for (size_t i = 0; i < n; i++) {
			const struct bdm *b = &inst->bdms[i];

			if (b->uuid[0] && !bdm_is_volume(b) &&
			    b->device_type != BDM_DEVICE_LUN &&
			    serial_taken(inst->bdms, n, i, b->uuid))
				return i;
		}
		return SIZE_MAX;
	}
	m = serial_refs(inst, refs);
	qsort(refs, m, sizeof(*refs), ref_cmp_prefix);
	for (size_t k = 0; k < m; k = g) {
		for (g = k + 1; g < m && prefix_eq(refs[k].s, refs[g].s); g++)
			;
		/* a run of two or more: its local members clash */
		for (size_t x = k; g - k > 1 && x < g; x++)
			if (!bdm_is_volume(&inst->bdms[refs[x].i]) &&
			    refs[x].i < best)
				best = refs[x].i;
	}
	return best;
}

/* Draws a uuid for every BDM without one; a local disk's is drawn again
 * while its first 20 characters are another disk's serial prefix. */
static int
draw_uuids(struct instance *inst, struct ref *refs)
{
	size_t n = inst->n_bdms, m, g;
	_cleanup_free_ bool *drawn = NULL;
	bool again;

	if (n <= BDM_PAIRWISE_MAX) {
		for (size_t i = 0; i < n; i++) {
			struct bdm *b = &inst->bdms[i];

			if (b->uuid[0] != '\0')
				continue;
			do
				util_uuid_generate(b->uuid);
			while (!bdm_is_volume(b) &&
			    serial_taken(inst->bdms, n, i, b->uuid));
		}
		return 0;
	}
	/* draw all, then redraw the drawn members of any clashing run
	 * (keeping one when all of a run were drawn) until none clash */
	if ((drawn = calloc(n, sizeof(*drawn))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct bdm *b = &inst->bdms[i];

		if (b->uuid[0] != '\0')
			continue;
		util_uuid_generate(b->uuid);
		/* only a local disk's uuid is its serial; a volume's serial
		 * is its volume id, which no redraw changes */
		drawn[i] = serial_id(b) == b->uuid;
	}
	do {
		again = false;
		m = serial_refs(inst, refs);
		qsort(refs, m, sizeof(*refs), ref_cmp_prefix);
		for (size_t k = 0; k < m; k = g) {
			bool keep_one = true;

			for (g = k + 1;
			     g < m && prefix_eq(refs[k].s, refs[g].s); g++)
				if (!drawn[refs[g].i])
					keep_one = false;
			if (g - k < 2)
				continue;
			/* a given id in the run stays; else the first drawn */
			if (!drawn[refs[k].i])
				keep_one = false;
			for (size_t x = k; x < g; x++) {
				if (!drawn[refs[x].i])
					continue;
				if (keep_one) {
					keep_one = false;
					continue;
				}
				util_uuid_generate(inst->bdms[refs[x].i].uuid);
				again = true;
			}
		}
	} while (again);
	return 0;
}

/* The cross-BDM rules of _validate_bdm, the uniqueness of ids, device
 * names and serials, and the drawing of BDM uuids. */
static int
check_all(struct instance *inst, const struct bdm_limits *lim,
    const struct origin *o, struct err *e)
{
	const struct flavor *fl = &inst->flavor;
	const struct bdm *root = NULL;
	const char *root_name = NULL;
	size_t n = inst->n_bdms, n_boot = 0, n_local = 0, swap_at = SIZE_MAX;
	int64_t eph_total = 0;
	_cleanup_free_ unsigned char *seen_heap = NULL;
	_cleanup_free_ struct ref *refs_heap = NULL;
	unsigned char seen_stack[64];
	unsigned char *seen = seen_stack;
	struct ref *refs = NULL;
	enum dup_kind dup;
	size_t i, k = 0;
	struct bdm *b;

	/* boot indexes: exactly 0..k-1, each once (InvalidBDMBootSequence) */
	for (i = 0; i < n; i++)
		if (inst->bdms[i].boot_index >= 0)
			n_boot++;
	if (n_boot > sizeof(seen_stack)) {
		seen = seen_heap = calloc(n_boot, 1);
		if (seen == NULL)
			return err_set(e, -ENOMEM, "out of memory");
	} else
		memset(seen, 0, n_boot);
	for (i = 0; i < n; i++) {
		b = &inst->bdms[i];
		if (b->boot_index < 0)
			continue;
		if ((size_t)b->boot_index >= n_boot || seen[b->boot_index])
			return BDM_FAIL(-EINVAL, "boot_index",
			    "field '%s': boot indexes must be unique and run "
			    "0, 1, ... without gaps",
			    _f);
		seen[b->boot_index] = 1;
		if (b->boot_index == 0)
			root = b;
	}
	if (root == NULL)
		return err_set_field(e, -EINVAL, "imageRef",
		    "field 'imageRef': no root disk: give imageRef or a "
		    "block_device_mapping_v2 entry with boot_index 0");
	/* compute/api.py _check_and_transform_bdm: booting from an image, no
	 * volume may ask for the root device name (base_options'
	 * root_device_name, 'vda' as hyperlet has no image property for it) */
	if (bdm_is_local(root))
		root_name = "/dev/vda";

	for (i = 0; i < n; i++) {
		b = &inst->bdms[i];
		if (bdm_is_local(b))
			n_local++;
		if (bdm_is_swap(b)) {
			if (swap_at != SIZE_MAX)
				return BDM_FAIL(-EINVAL, NULL,
				    "field '%s': more than one swap disk "
				    "requested",
				    _f);
			swap_at = i;
			if (fl->swap == 0)
				return BDM_FAIL(-EINVAL, NULL,
				    "field '%s': the flavor has no swap", _f);
			if (b->volume_size == BDM_SIZE_NONE)
				b->volume_size = fl->swap;
			if (b->volume_size > fl->swap)
				return BDM_FAIL(-EINVAL, "volume_size",
				    "field '%s': swap of %lld MiB exceeds the "
				    "flavor's %lld MiB",
				    _f, (long long)b->volume_size,
				    (long long)fl->swap);
		} else if (bdm_is_ephemeral(b)) {
			if (fl->ephemeral_gb == 0)
				return BDM_FAIL(-EINVAL, NULL,
				    "field '%s': the flavor has no ephemeral "
				    "disk space",
				    _f);
			if (b->volume_size == BDM_SIZE_NONE)
				b->volume_size = fl->ephemeral_gb;
			eph_total += b->volume_size;
			if (eph_total > fl->ephemeral_gb)
				return BDM_FAIL(-EINVAL, "volume_size",
				    "field '%s': ephemeral disks total %lld "
				    "GiB, more than the flavor's %lld GiB",
				    _f, (long long)eph_total,
				    (long long)fl->ephemeral_gb);
		}
		if (b->device_name && root_name && b != root &&
		    b->destination_type == BDM_DEST_VOLUME &&
		    STREQ(b->device_name, root_name))
			return BDM_FAIL(-EINVAL, "device_name",
			    "field '%s': %s is the root disk's device name", _f,
			    root_name);
	}
	/* The libvirt driver's default_device_names_for_instance: every
	 * device name a BDM gives is dropped and the mapping assigns one
	 * (blockinfo_build); the root's becomes the instance's
	 * root_device_name (ComputeManager._default_block_device_names), so
	 * it alone is kept. */
	for (i = 0; i < n; i++) {
		b = &inst->bdms[i];
		if (b != root && b->device_name != NULL) {
			free(b->device_name);
			b->device_name = NULL;
		}
	}

	if (n > BDM_PAIRWISE_MAX &&
	    (refs = refs_heap = calloc(n, sizeof(*refs))) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	dup = find_dup(inst, refs, &i, &k);
	if (dup != DUP_NONE) {
		const struct bdm *c = &inst->bdms[k];

		b = &inst->bdms[i];
		if (dup == DUP_DEVICE)
			return BDM_FAIL(-EINVAL, "device_name",
			    "field '%s': device name %s is taken twice", _f,
			    b->device_name);
		if (dup == DUP_VOLUME)
			return BDM_FAIL(-EEXIST,
			    b->source_type == BDM_SOURCE_VOLUME ? "uuid"
								: "volume_id",
			    STREQ(b->volume_id, c->volume_id)
				? "field '%s': volume %s is mapped twice"
				: "field '%s': volume %s shares its first 20 "
				  "characters (the serial the guest sees) with "
				  "another volume",
			    _f, b->volume_id);
		return BDM_FAIL(-EEXIST, "bdm_uuid",
		    "field '%s': bdm_uuid %s is taken twice", _f, b->uuid);
	}
	if (lim->max_local_block_devices >= 0 &&
	    n_local > (size_t)lim->max_local_block_devices)
		return err_set_field(e, -EINVAL, "block_device_mapping_v2",
		    "field 'block_device_mapping_v2': %zu local disks (the "
		    "image root, ephemerals and swap count) exceed "
		    "max_local_block_devices %d",
		    n_local, lim->max_local_block_devices);

	/* serials: a given uuid may not collide with another disk's serial;
	 * a drawn one is drawn again until it does not */
	for (i = 0; i < n; i++) {
		b = &inst->bdms[i];
		if (b->uuid[0] != '\0' && !util_uuid_is_canonical(b->uuid))
			return BDM_FAIL(-EINVAL, "bdm_uuid",
			    "field '%s': expected a UUID", _f);
	}
	if ((i = find_serial_clash(inst, refs)) != SIZE_MAX) {
		b = &inst->bdms[i];
		return BDM_FAIL(-EEXIST, "bdm_uuid",
		    "field '%s': its first %d characters (the disk's "
		    "serial) collide with another disk's",
		    _f, BDM_SERIAL_PREFIX);
	}
	if (draw_uuids(inst, refs) < 0)
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* See bdm.h. The image root goes in front, flavor disks at the end; on
 * failure inst may hold them already (the caller drops the instance). */
int
bdm_instance_prepare(
    struct instance *inst, const struct bdm_limits *lim, struct err *e)
{
	static const struct bdm_limits defaults = BDM_LIMITS_DEFAULT;
	struct origin origin = {.n_req = inst->n_bdms, .off = 0};
	const struct origin *o = &origin;
	bool have_root = false, have_eph = false, have_swap = false;
	struct bdm *b;
	size_t i;
	int r;

	if (lim == NULL)
		lim = &defaults;
	if ((r = check_instance(inst, e)) < 0)
		return r;
	if (lim->max_bdms >= 0 && inst->n_bdms > (size_t)lim->max_bdms)
		return err_set_field(e, -EINVAL, "block_device_mapping_v2",
		    "field 'block_device_mapping_v2': more than %d block "
		    "device mappings",
		    lim->max_bdms);

	for (i = 0; i < inst->n_bdms; i++) {
		b = &inst->bdms[i];
		if ((r = bdm_check_one(inst, b, i, o, e)) < 0)
			return r;
		have_root |= b->boot_index == 0;
		have_eph |= bdm_is_ephemeral(b);
		have_swap |= bdm_is_swap(b);
	}

	/* create_image_bdm(imageRef) unless the request names a root */
	if (inst->image_ref && !have_root) {
		if ((r = bdm_insert_front(inst, &b, e)) < 0)
			return r;
		origin.off = 1;
		b->source_type = BDM_SOURCE_IMAGE;
		b->destination_type = BDM_DEST_LOCAL;
		b->device_type = BDM_DEVICE_DISK;
		b->boot_index = 0;
		b->delete_on_termination = true;
		if ((b->image_id = strdup(inst->image_ref)) == NULL)
			return err_set(e, -ENOMEM, "out of memory");
	}
	/* _get_flavor_defined_bdms */
	if (inst->flavor.ephemeral_gb > 0 && !have_eph &&
	    (r = bdm_append_blank(inst, inst->flavor.ephemeral_gb, NULL, e)) <
		0)
		return r;
	if (inst->flavor.swap > 0 && !have_swap &&
	    (r = bdm_append_blank(inst, inst->flavor.swap, "swap", e)) < 0)
		return r;

	if ((r = check_all(inst, lim, o, e)) < 0)
		return r;
	if (inst->uuid[0] == '\0')
		util_uuid_generate(inst->uuid);
	if (inst->metadata == NULL && (inst->metadata = strdup("{}")) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* See bdm.h. */
int
bdm_prepare_attach(const struct instance *inst, struct bdm *b,
    const struct bdm_limits *lim, struct err *e)
{
	int r;

	(void)lim;
	if (b->source_type == BDM_SOURCE_UNSET)
		b->source_type = BDM_SOURCE_VOLUME;
	if (b->destination_type == BDM_DEST_UNSET)
		b->destination_type = BDM_DEST_VOLUME;
	if (b->source_type != BDM_SOURCE_VOLUME ||
	    b->destination_type != BDM_DEST_VOLUME)
		return err_set(e, -EINVAL,
		    "only volumes (source and destination volume) can be "
		    "attached");
	if (b->volume_id == NULL || !id_valid(b->volume_id))
		return err_set_field(e, -EINVAL, "volume_id",
		    "field 'volume_id': expected a volume id of 1..255 "
		    "characters [A-Za-z0-9_.+-]");
	if (b->connection_info == NULL)
		return err_set_field(e, -EINVAL, "connection_info",
		    "field 'connection_info': is required");
	if (b->conn_type == NULL || b->conn_path == NULL)
		return err_set_field(e, -EINVAL, "connection_info",
		    "field 'connection_info': expected driver_volume_type "
		    "file or block and data.device_path");
	if (b->device_type == BDM_DEVICE_UNSET)
		b->device_type = BDM_DEVICE_DISK;
	if (b->device_type != BDM_DEVICE_DISK)
		return err_set_field(e, -EINVAL, "device_type",
		    "field 'device_type': attached volumes are disks");
	if (b->disk_bus < BDM_BUS_UNSET || b->disk_bus > BDM_BUS_IDE)
		return err_set_field(e, -EINVAL, "disk_bus",
		    "field 'disk_bus': expected virtio, scsi, sata or ide");
	if (b->device_name) {
		r = device_name_normalize(&b->device_name);
		if (r == -ENOMEM)
			return err_set(e, r, "out of memory");
		if (r < 0)
			return err_set_field(e, -EINVAL, "device_name",
			    "field 'device_name': expected /dev/ followed by "
			    "vd, sd or hd and 1..3 letters, e.g. /dev/vdb");
	}
	if (b->tag != NULL &&
	    (b->tag[0] == '\0' || util_utf8_chars(b->tag) > BDM_TAG_MAX ||
		strpbrk(b->tag, ",/") != NULL))
		return err_set_field(e, -EINVAL, "tag",
		    "field 'tag': expected 1..%d characters without ',' or "
		    "'/'",
		    BDM_TAG_MAX);
	if (b->guest_format != NULL)
		return err_set_field(e, -EINVAL, "guest_format",
		    "field 'guest_format': not for attached volumes");
	b->boot_index = BDM_BOOT_NONE;

	for (size_t k = 0; k < inst->n_bdms; k++) {
		const struct bdm *c = &inst->bdms[k];

		if (bdm_is_volume(c) && c->volume_id &&
		    STREQ(c->volume_id, b->volume_id))
			return err_set_field(e, -EEXIST, "volume_id",
			    "field 'volume_id': volume %s is already attached",
			    b->volume_id);
		if (serial_id(c)[0] && prefix_eq(serial_id(c), b->volume_id))
			return err_set_field(e, -EEXIST, "volume_id",
			    "field 'volume_id': its first %d characters (the "
			    "disk's serial) collide with another disk's",
			    BDM_SERIAL_PREFIX);
		if (b->uuid[0] && STREQ(c->uuid, b->uuid))
			return err_set_field(e, -EEXIST, "bdm_uuid",
			    "field 'bdm_uuid': %s is taken", b->uuid);
	}
	if (b->uuid[0] == '\0') {
		do
			util_uuid_generate(b->uuid);
		while (
		    serial_taken(inst->bdms, inst->n_bdms, SIZE_MAX, b->uuid));
	} else if (!util_uuid_is_canonical(b->uuid))
		return err_set_field(e, -EINVAL, "bdm_uuid",
		    "field 'bdm_uuid': expected a UUID");
	return 0;
}
