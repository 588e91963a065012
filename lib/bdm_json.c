/*
 * JSON <-> model. Requests are parsed by jfield_parse (strict grammar, no
 * duplicate keys, bounded strings and depth) and read through sorted
 * field tables, one pass over each object's keys, so unknown keys are
 * refused as they are met; nothing is coerced but the BDM fields Nova
 * itself takes as strings (boot_index, volume_size,
 * delete_on_termination: Nova's parameter_types). Only types, shapes and
 * string limits are checked here; Nova's rules live in bdm.c. Instances
 * and BDMs are written as text with jwriter (one formatter, used by the
 * list's stream and, parsed back, by the json-c constructors); the
 * block_device_info tree is built with jfield's sticky-error helpers.
 * Everything handed out is owned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm_json.h"
#include "jfield.h"
#include "jwriter.h"
#include "nic_json.h"

#define BDM_JSON_MAX_BDMS 4096 /* hard cap; bdm_limits.max_bdms is lower */
#define BDM_JSON_MAX_METADATA 128 /* Nova's default metadata_items quota */
#define BDM_JSON_NAME_MAX 255

/* user_data may reach Nova's 65535 characters (nic_json refuses more
 * by name; the parser's cap only bounds the work), a key's data a long
 * x509 certificate */
static const struct jfield_long json_longs[] = {
    {"data", NIC_JSON_KEY_DATA_MAX},
    {"user_data", 2 * NIC_JSON_USER_DATA_MAX},
};
static const struct jfield_limits json_limits = {
    .max_depth = BDM_JSON_MAX_DEPTH,
    .max_string = BDM_JSON_MAX_STRING,
    .longs = json_longs,
    .n_longs = ELEMENTSOF(json_longs),
};

/* ---- parsing ------------------------------------------------------- */

static int
fail(const char *prefix, const char *key, struct err *e, const char *what)
{
	char path[JFIELD_PATH_MAX];

	jfield_path(path, prefix, key);
	return err_set_field(e, -EINVAL, path, "field '%s': %s", path, what);
}

static int
set_str(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, char **dst, struct err *e)
{
	char *s = NULL;
	int r = jfield_value_strdup(v, prefix, key, flags, &s, e);

	if (r > 0) {
		free(*dst);
		*dst = s;
	}
	return r;
}

/* An enum-valued string through its _from_string. */
#define SET_ENUM(v, prefix, key, fn, dst, expect)                              \
	({                                                                     \
		const char *_s = NULL;                                         \
		int _r =                                                       \
		    jfield_value_str(v, prefix, key, JFIELD_NULLABLE, &_s, e); \
		if (_r > 0 && fn(_s, dst) < 0)                                 \
			_r = fail(prefix, key, e, "expected " expect);         \
		_r;                                                            \
	})

static int
set_uuid(struct json_object *v, const char *prefix, const char *key,
    char out[UUID_STR_LEN], struct err *e)
{
	const char *s = NULL;
	int r = jfield_value_str(v, prefix, key, JFIELD_OPTIONAL, &s, e);

	if (r > 0 && util_uuid_normalize(s, out) < 0)
		return fail(prefix, key, e, "expected a UUID");
	return r;
}

/*
 * Reads the volume source of connection_info o (its path in the request is
 * field): driver_volume_type "file" or "block" and data.device_path, a
 * normalised absolute path, kept in b (conn_type, conn_path) so that
 * neither bdm_instance_prepare nor blockinfo_build reads the text again.
 * The messages and fields are bdm_json_conn_source's. Returns 0, -EINVAL
 * naming the field, -ENOMEM.
 */
static int
conn_read(
    struct json_object *o, const char *field, struct bdm *b, struct err *e)
{
	struct json_object *t = NULL, *d = NULL, *p = NULL;
	char dfield[JFIELD_PATH_MAX];
	const char *type, *path;

	free(b->conn_type);
	free(b->conn_path);
	b->conn_type = b->conn_path = NULL;
	if (!json_object_object_get_ex(o, "driver_volume_type", &t))
		return fail(field, "driver_volume_type", e, "is required");
	if (t == NULL || !json_object_is_type(t, json_type_string))
		return fail(field, "driver_volume_type", e, "expected string");
	type = json_object_get_string(t);
	if (!STREQ(type, "file") && !STREQ(type, "block"))
		return fail(field, "driver_volume_type", e,
		    "expected file or block (the volume must already be "
		    "attached to this host)");
	if (!json_object_object_get_ex(o, "data", &d))
		return fail(field, "data", e, "is required");
	if (d == NULL || !json_object_is_type(d, json_type_object))
		return fail(field, "data", e, "expected object");
	jfield_path(dfield, field, "data");
	if (!json_object_object_get_ex(d, "device_path", &p))
		return fail(dfield, "device_path", e, "is required");
	if (p == NULL || !json_object_is_type(p, json_type_string))
		return fail(dfield, "device_path", e, "expected string");
	path = json_object_get_string(p);
	if (!util_path_valid(path) || STREQ(path, "/"))
		return fail(dfield, "device_path", e,
		    "expected a normalised absolute path to a file or device");
	if ((b->conn_type = strdup(type)) == NULL ||
	    (b->conn_path = strdup(path)) == NULL) {
		free(b->conn_type);
		b->conn_type = NULL;
		return err_set(e, -ENOMEM, "out of memory");
	}
	return 0;
}

/* connection_info: an object, kept as compact JSON text, and its source
 * in b (see conn_read). */
static int
set_conn(struct json_object *v, const char *prefix, const char *key,
    struct bdm *b, struct err *e)
{
	struct json_object *o = NULL;
	char field[JFIELD_PATH_MAX];
	char *t;
	int r = jfield_value_obj(v, prefix, key, JFIELD_NULLABLE, &o, e);

	if (r <= 0)
		return r;
	if ((r = conn_read(o, jfield_path(field, prefix, key), b, e)) < 0)
		return r;
	if ((t = jfield_to_text(o)) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	free(b->connection_info);
	b->connection_info = t;
	return 1;
}

enum {
	BK_BDM_UUID,
	BK_BOOT_INDEX,
	BK_CONNECTION_INFO,
	BK_DELETE_ON_TERMINATION,
	BK_DESTINATION_TYPE,
	BK_DEVICE_NAME,
	BK_DEVICE_TYPE,
	BK_DISK_BUS,
	BK_GUEST_FORMAT,
	BK_NO_DEVICE,
	BK_SOURCE_TYPE,
	BK_TAG,
	BK_UUID,
	BK_VOLUME_ID,
	BK_VOLUME_SIZE,
	BK_VOLUME_TYPE,
};
static const char *const bdm_keys[] = {
    [BK_BDM_UUID] = "bdm_uuid",
    [BK_BOOT_INDEX] = "boot_index",
    [BK_CONNECTION_INFO] = "connection_info",
    [BK_DELETE_ON_TERMINATION] = "delete_on_termination",
    [BK_DESTINATION_TYPE] = "destination_type",
    [BK_DEVICE_NAME] = "device_name",
    [BK_DEVICE_TYPE] = "device_type",
    [BK_DISK_BUS] = "disk_bus",
    [BK_GUEST_FORMAT] = "guest_format",
    [BK_NO_DEVICE] = "no_device",
    [BK_SOURCE_TYPE] = "source_type",
    [BK_TAG] = "tag",
    [BK_UUID] = "uuid",
    [BK_VOLUME_ID] = "volume_id",
    [BK_VOLUME_SIZE] = "volume_size",
    [BK_VOLUME_TYPE] = "volume_type",
};

/* One block_device_mapping_v2 entry, Nova's field names. */
static int
parse_bdm(
    struct json_object *v, const char *prefix, struct bdm *b, struct err *e)
{
	const char *uuid = NULL, *volume_id = NULL;
	bool dot_given = false;
	int64_t x;
	int r = 0;

	if (!json_object_is_type(v, json_type_object))
		return fail(prefix, NULL, e, "expected object");
	json_object_object_foreach(v, key, val)
	{
		switch (jfield_lookup(bdm_keys, ELEMENTSOF(bdm_keys), key)) {
		case BK_BDM_UUID:
			r = set_uuid(val, prefix, key, b->uuid, e);
			b->uuid_given = r > 0;
			break;
		case BK_BOOT_INDEX:
			r = jfield_value_nova_int(val, prefix, key,
			    JFIELD_NULLABLE, true, -1, INT32_MAX - 1, &x, e);
			if (r > 0)
				b->boot_index = (int)x;
			break;
		case BK_CONNECTION_INFO:
			r = set_conn(val, prefix, key, b, e);
			break;
		case BK_DELETE_ON_TERMINATION:
			r = jfield_value_nova_bool(val, prefix, key,
			    JFIELD_OPTIONAL, &b->delete_on_termination, e);
			dot_given = r > 0;
			break;
		case BK_DESTINATION_TYPE:
			r = SET_ENUM(val, prefix, key, bdm_dest_from_string,
			    &b->destination_type, "local or volume");
			break;
		case BK_DEVICE_NAME:
			r = set_str(val, prefix, key, JFIELD_NULLABLE,
			    &b->device_name, e);
			break;
		case BK_DEVICE_TYPE:
			r = SET_ENUM(val, prefix, key,
			    bdm_device_type_from_string, &b->device_type,
			    "disk, cdrom or lun");
			break;
		case BK_DISK_BUS:
			r = SET_ENUM(val, prefix, key, bdm_bus_from_string,
			    &b->disk_bus, "virtio, scsi, sata or ide");
			break;
		case BK_GUEST_FORMAT:
			r = set_str(val, prefix, key, JFIELD_NULLABLE,
			    &b->guest_format, e);
			break;
		case BK_NO_DEVICE:
			r = fail(prefix, key, e,
			    "is not supported (hyperlet has no image-defined "
			    "mappings to suppress)");
			break;
		case BK_SOURCE_TYPE:
			r = SET_ENUM(val, prefix, key, bdm_source_from_string,
			    &b->source_type,
			    "image, volume, snapshot or blank");
			break;
		case BK_TAG:
			r = set_str(
			    val, prefix, key, JFIELD_NULLABLE, &b->tag, e);
			break;
		case BK_UUID:
			r = jfield_value_str(
			    val, prefix, key, JFIELD_OPTIONAL, &uuid, e);
			break;
		case BK_VOLUME_ID:
			r = jfield_value_str(
			    val, prefix, key, JFIELD_NULLABLE, &volume_id, e);
			break;
		case BK_VOLUME_SIZE:
			r = jfield_value_nova_int(val, prefix, key,
			    JFIELD_NULLABLE, false, 1, 0x7fffffff,
			    &b->volume_size, e);
			break;
		case BK_VOLUME_TYPE:
			r = fail(prefix, key, e,
			    "is not supported (hyperlet has no volume service "
			    "to create volumes with)");
			break;
		default:
			r = fail(prefix, key, e, "unknown field");
			break;
		}
		if (r < 0)
			return r;
	}

	if (b->source_type == BDM_SOURCE_UNSET)
		return fail(prefix, "source_type", e,
		    "is required (image, volume, snapshot or blank)");
	/* from_api: the uuid names the source */
	if (uuid != NULL) {
		char u[UUID_STR_LEN];
		const char *s = uuid;
		char **dst = NULL;

		switch (b->source_type) {
		case BDM_SOURCE_IMAGE:
			if (util_uuid_normalize(uuid, u) < 0)
				return fail(prefix, "uuid", e,
				    "expected an image UUID");
			s = u;
			dst = &b->image_id;
			break;
		case BDM_SOURCE_VOLUME:
			if (volume_id && !STREQ(volume_id, uuid))
				return fail(prefix, "volume_id", e,
				    "differs from uuid, which names the "
				    "volume for source_type volume");
			volume_id = NULL;
			dst = &b->volume_id;
			break;
		case BDM_SOURCE_SNAPSHOT:
			dst = &b->snapshot_id;
			break;
		default:
			return fail(
			    prefix, "uuid", e, "a blank source takes no uuid");
		}
		if ((*dst = strdup(s)) == NULL)
			return err_set(e, -ENOMEM, "out of memory");
	}
	if (volume_id != NULL && (b->volume_id = strdup(volume_id)) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	if (dot_given && !b->delete_on_termination &&
	    b->destination_type == BDM_DEST_LOCAL)
		return fail(prefix, "delete_on_termination", e,
		    "local disks are always deleted with the instance");
	return 0;
}

/* "block_device_mapping_v2[i]" into buf, as jfield_path_index writes it,
 * without snprintf: every entry of every request gets one. */
static const char *
bdm_prefix(char buf[JFIELD_PATH_MAX], size_t i)
{
	static const char key[] = "block_device_mapping_v2[";
	_Static_assert(sizeof(key) + 21 <= JFIELD_PATH_MAX, "prefix too long");
	char digits[24];
	size_t n = 0, len = sizeof(key) - 1;

	do
		digits[n++] = (char)('0' + i % 10);
	while ((i /= 10) != 0);
	memcpy(buf, key, len);
	while (n > 0)
		buf[len++] = digits[--n];
	buf[len++] = ']';
	buf[len] = '\0';
	return buf;
}

static int
parse_bdms(struct json_object *arr, struct instance *inst, struct err *e)
{
	size_t n = json_object_array_length(arr);

	for (size_t i = 0; i < n; i++) {
		char prefix[JFIELD_PATH_MAX];
		struct bdm *b;
		int r;

		if ((r = instance_bdm_append(inst, &b, e)) < 0)
			return r;
		if ((r = parse_bdm(json_object_array_get_idx(arr, i),
			 bdm_prefix(prefix, i), b, e)) < 0)
			return r;
	}
	return 0;
}

enum { FK_EPHEMERAL_GB, FK_MEMORY_MB, FK_ROOT_GB, FK_SWAP, FK_VCPUS };
static const char *const flavor_keys[] = {
    [FK_EPHEMERAL_GB] = "ephemeral_gb",
    [FK_MEMORY_MB] = "memory_mb",
    [FK_ROOT_GB] = "root_gb",
    [FK_SWAP] = "swap",
    [FK_VCPUS] = "vcpus",
};

static int
parse_flavor(struct json_object *o, struct flavor *f, struct err *e)
{
	unsigned seen = 0;
	int r = 0;

	json_object_object_foreach(o, key, val)
	{
		int k =
		    jfield_lookup(flavor_keys, ELEMENTSOF(flavor_keys), key);

		switch (k) {
		case FK_EPHEMERAL_GB:
			r = jfield_value_int(val, "flavor", key,
			    JFIELD_REQUIRED, 0, INT32_MAX, &f->ephemeral_gb, e);
			break;
		case FK_MEMORY_MB:
			/* 16 TiB: more than any host hyperlet runs on */
			r = jfield_value_int(val, "flavor", key,
			    JFIELD_REQUIRED, 1, 16 * 1024 * 1024, &f->memory_mb,
			    e);
			break;
		case FK_ROOT_GB:
			r = jfield_value_int(val, "flavor", key,
			    JFIELD_REQUIRED, 0, INT32_MAX, &f->root_gb, e);
			break;
		case FK_SWAP:
			r = jfield_value_int(val, "flavor", key,
			    JFIELD_REQUIRED, 0, INT32_MAX, &f->swap, e);
			break;
		case FK_VCPUS:
			/* KVM's KVM_MAX_VCPUS with CONFIG_MAXSMP */
			r = jfield_value_int(val, "flavor", key,
			    JFIELD_REQUIRED, 1, 4096, &f->vcpus, e);
			break;
		default:
			r = fail("flavor", key, e, "unknown field");
			break;
		}
		if (r < 0)
			return r;
		seen |= 1u << k;
	}
	if (!(seen & 1u << FK_VCPUS))
		return fail("flavor", "vcpus", e, "is required");
	if (!(seen & 1u << FK_MEMORY_MB))
		return fail("flavor", "memory_mb", e, "is required");
	if (!(seen & 1u << FK_ROOT_GB))
		return fail("flavor", "root_gb", e, "is required");
	return 0;
}

enum { PK_CDROM, PK_DISK, PK_MACHINE, PK_SCSI };
static const char *const prop_keys[] = {
    [PK_CDROM] = "hw_cdrom_bus",
    [PK_DISK] = "hw_disk_bus",
    [PK_MACHINE] = "hw_machine_type",
    [PK_SCSI] = "hw_scsi_model",
};

static int
parse_image_meta(struct json_object *o, struct image_props *p, struct err *e)
{
	static const char *const meta_keys[] = {"disk_format", "properties"};
	static const char *const formats[] = {"iso", "qcow2", "raw"};
	static const char prefix[] = "image_meta.properties";
	struct json_object *props = NULL;
	const char *fmt = NULL;
	int r;

	if ((r = jfield_check_keys(o, "image_meta", meta_keys, 2, e)) < 0)
		return r;
	/* Glance's disk_format, of those hyperlet can boot */
	if ((r = jfield_str(
		 o, "image_meta", "disk_format", JFIELD_NULLABLE, &fmt, e)) < 0)
		return r;
	if (r > 0) {
		if (jfield_lookup(formats, ELEMENTSOF(formats), fmt) < 0)
			return fail("image_meta", "disk_format", e,
			    "expected raw, qcow2 or iso");
		free(p->disk_format);
		if ((p->disk_format = strdup(fmt)) == NULL)
			return err_set(e, -ENOMEM, "out of memory");
	}
	if ((r = jfield_obj(o, "image_meta", "properties", JFIELD_OPTIONAL,
		 &props, e)) <= 0)
		return r;
	json_object_object_foreach(props, key, val)
	{
		char **dst;

		switch (jfield_lookup(prop_keys, ELEMENTSOF(prop_keys), key)) {
		case PK_CDROM:
			dst = &p->hw_cdrom_bus;
			break;
		case PK_DISK:
			dst = &p->hw_disk_bus;
			break;
		case PK_MACHINE:
			dst = &p->hw_machine_type;
			break;
		case PK_SCSI:
			dst = &p->hw_scsi_model;
			break;
		default:
			return fail(prefix, key, e, "unknown field");
		}
		if ((r = set_str(val, prefix, key, JFIELD_NULLABLE, dst, e)) <
		    0)
			return r;
	}
	return 0;
}

/* Nova's metadata schema: keys ^[a-zA-Z0-9-_:. ]{1,255}$, string values of
 * at most 255 characters; at most 128 items (Nova's default quota). */
static int
parse_metadata(struct json_object *o, char **ret, struct err *e)
{
	char *t;

	if (json_object_object_length(o) > BDM_JSON_MAX_METADATA)
		return fail(NULL, "metadata", e, "more than 128 items");
	json_object_object_foreach(o, key, val)
	{
		const char *s = NULL;
		size_t n = 0;
		int r;

		for (const char *c = key; *c; c++, n++)
			if (!((*c >= 'a' && *c <= 'z') ||
				(*c >= 'A' && *c <= 'Z') ||
				(*c >= '0' && *c <= '9') || *c == '-' ||
				*c == '_' || *c == ':' || *c == '.' ||
				*c == ' '))
				return fail("metadata", key, e,
				    "keys are 1..255 characters of "
				    "[a-zA-Z0-9-_:. ]");
		if (n == 0 || n > 255)
			return fail("metadata", key, e,
			    "keys are 1..255 characters of [a-zA-Z0-9-_:. ]");
		if ((r = jfield_value_str(
			 val, "metadata", key, JFIELD_REQUIRED, &s, e)) < 0)
			return r;
		if (util_utf8_chars(s) > 255)
			return fail("metadata", key, e,
			    "values are at most 255 characters");
	}
	if ((t = jfield_to_text(o)) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	free(*ret);
	*ret = t;
	return 0;
}

/* Nova's "name" format: printable, no leading or trailing whitespace. */
static int
check_name(const char *s, struct err *e)
{
	size_t n = strlen(s), c = util_utf8_chars(s);

	if (c == 0 || c > BDM_JSON_NAME_MAX)
		return fail(NULL, "name", e, "expected 1..255 characters");
	if (strpbrk(s, "\t\n\r") != NULL || s[0] == ' ' || s[n - 1] == ' ')
		return fail(NULL, "name", e,
		    "expected printable characters without leading or "
		    "trailing spaces");
	return 0;
}

enum {
	TK_BDMS,
	TK_CONFIG_DRIVE,
	TK_FLAVOR,
	TK_IMAGE_REF,
	TK_IMAGE_META,
	TK_METADATA,
	TK_NAME,
	TK_START,
	TK_UUID,
};
static const char *const top_keys[] = {
    [TK_BDMS] = "block_device_mapping_v2",
    [TK_CONFIG_DRIVE] = "config_drive",
    [TK_FLAVOR] = "flavor",
    [TK_IMAGE_REF] = "imageRef",
    [TK_IMAGE_META] = "image_meta",
    [TK_METADATA] = "metadata",
    [TK_NAME] = "name",
    [TK_START] = "start",
    [TK_UUID] = "uuid",
};

/* See bdm_json.h. */
int
bdm_json_parse_create(
    const char *body, size_t len, struct instance **ret_inst, struct err *e)
{
	_cleanup_(jfield_putp) struct json_object *root = NULL;
	struct instance *inst = NULL;
	bool have_flavor = false;
	int r;

	if ((r = jfield_parse(body, len, &json_limits, &root, e)) < 0)
		return r;
	if ((inst = instance_new()) == NULL)
		return err_set(e, -ENOMEM, "out of memory");

	json_object_object_foreach(root, key, val)
	{
		struct json_object *o = NULL;
		const char *s = NULL;

		switch (jfield_lookup(top_keys, ELEMENTSOF(top_keys), key)) {
		case TK_BDMS:
			r = jfield_value_array(val, NULL, key, JFIELD_NULLABLE,
			    BDM_JSON_MAX_BDMS, &o, e);
			if (r > 0)
				r = parse_bdms(o, inst, e);
			break;
		case TK_CONFIG_DRIVE:
			r = jfield_value_bool(val, NULL, key, JFIELD_OPTIONAL,
			    &inst->config_drive, e);
			break;
		case TK_FLAVOR:
			r = jfield_value_obj(
			    val, NULL, key, JFIELD_REQUIRED, &o, e);
			if (r > 0)
				r = parse_flavor(o, &inst->flavor, e);
			have_flavor = true;
			break;
		case TK_IMAGE_REF:
			/* "" is Nova's spelling of "boot from volume" */
			r = jfield_value_str(
			    val, NULL, key, JFIELD_NULLABLE, &s, e);
			if (r > 0 && s[0] != '\0') {
				char u[UUID_STR_LEN];

				if (util_uuid_normalize(s, u) < 0)
					r = fail(NULL, key, e,
					    "expected an image UUID");
				else if ((inst->image_ref = strdup(u)) == NULL)
					r = err_set(
					    e, -ENOMEM, "out of memory");
			}
			break;
		case TK_IMAGE_META:
			r = jfield_value_obj(
			    val, NULL, key, JFIELD_NULLABLE, &o, e);
			if (r > 0)
				r = parse_image_meta(o, &inst->props, e);
			break;
		case TK_METADATA:
			r = jfield_value_obj(
			    val, NULL, key, JFIELD_NULLABLE, &o, e);
			if (r > 0)
				r = parse_metadata(o, &inst->metadata, e);
			break;
		case TK_NAME:
			r = jfield_value_str(
			    val, NULL, key, JFIELD_REQUIRED, &s, e);
			if (r > 0 && (r = check_name(s, e)) == 0 &&
			    (inst->name = strdup(s)) == NULL)
				r = err_set(e, -ENOMEM, "out of memory");
			break;
		case TK_START:
			r = jfield_value_bool(
			    val, NULL, key, JFIELD_OPTIONAL, &inst->start, e);
			break;
		case TK_UUID:
			r = set_uuid(val, NULL, key, inst->uuid, e);
			inst->uuid_given = r > 0;
			break;
		default:
			/* hostname, user_data, keys, networks */
			r = nic_json_parse_field(key, val, &inst->guest, e);
			if (r == 0)
				r = fail(NULL, key, e, "unknown field");
			break;
		}
		if (r < 0)
			goto out;
	}
	if (inst->name == NULL)
		r = fail(NULL, "name", e, "is required");
	else if (!have_flavor)
		r = fail(NULL, "flavor", e, "is required");
	else if (inst->metadata == NULL &&
	    (inst->metadata = strdup("{}")) == NULL)
		r = err_set(e, -ENOMEM, "out of memory");
out:
	if (r < 0) {
		instance_free(inst);
		return r;
	}
	*ret_inst = inst;
	return 0;
}

enum {
	AK_BDM_UUID,
	AK_CONNECTION_INFO,
	AK_DELETE_ON_TERMINATION,
	AK_DEVICE_NAME,
	AK_DISK_BUS,
	AK_TAG,
	AK_VOLUME_ID,
};
static const char *const attach_keys[] = {
    [AK_BDM_UUID] = "bdm_uuid",
    [AK_CONNECTION_INFO] = "connection_info",
    [AK_DELETE_ON_TERMINATION] = "delete_on_termination",
    [AK_DEVICE_NAME] = "device_name",
    [AK_DISK_BUS] = "disk_bus",
    [AK_TAG] = "tag",
    [AK_VOLUME_ID] = "volume_id",
};

/* See bdm_json.h. */
int
bdm_json_parse_attach(
    const char *body, size_t len, struct bdm *ret, struct err *e)
{
	_cleanup_(jfield_putp) struct json_object *root = NULL;
	struct bdm b;
	int r = 0;

	if ((r = jfield_parse(body, len, &json_limits, &root, e)) < 0)
		return r;
	memset(&b, 0, sizeof(b));
	b.boot_index = BDM_BOOT_NONE;
	b.volume_size = BDM_SIZE_NONE;
	b.source_type = BDM_SOURCE_VOLUME;
	b.destination_type = BDM_DEST_VOLUME;
	b.device_type = BDM_DEVICE_DISK;

	json_object_object_foreach(root, key, val)
	{
		switch (
		    jfield_lookup(attach_keys, ELEMENTSOF(attach_keys), key)) {
		case AK_BDM_UUID:
			r = set_uuid(val, NULL, key, b.uuid, e);
			b.uuid_given = r > 0;
			break;
		case AK_CONNECTION_INFO:
			r = set_conn(val, NULL, key, &b, e);
			break;
		case AK_DELETE_ON_TERMINATION:
			r = jfield_value_nova_bool(val, NULL, key,
			    JFIELD_OPTIONAL, &b.delete_on_termination, e);
			break;
		case AK_DEVICE_NAME:
			r = set_str(
			    val, NULL, key, JFIELD_NULLABLE, &b.device_name, e);
			break;
		case AK_DISK_BUS: {
			const char *prefix = NULL;

			r = SET_ENUM(val, prefix, key, bdm_bus_from_string,
			    &b.disk_bus, "virtio, scsi, sata or ide");
			break;
		}
		case AK_TAG:
			r = set_str(val, NULL, key, JFIELD_NULLABLE, &b.tag, e);
			break;
		case AK_VOLUME_ID:
			r = set_str(
			    val, NULL, key, JFIELD_REQUIRED, &b.volume_id, e);
			break;
		default:
			r = fail(NULL, key, e, "unknown field");
			break;
		}
		if (r < 0)
			break;
	}
	if (r >= 0 && b.volume_id == NULL)
		r = fail(NULL, "volume_id", e, "is required");
	if (r >= 0 && b.connection_info == NULL)
		r = fail(NULL, "connection_info", e, "is required");
	if (r < 0) {
		bdm_clear(&b);
		return r;
	}
	bdm_clear(ret);
	*ret = b;
	return 0;
}

/* See bdm_json.h. Runs for every volume row the store loads, so it scans
 * the text (jfield_scan) rather than building a json-c tree. */
int
bdm_json_conn_source(const char *connection_info, const char *prefix,
    char **ret_type, char **ret_path, struct err *e)
{
	struct jfield_want w[] = {
	    {.path = "driver_volume_type", .type = json_type_string},
	    {.path = "data", .type = json_type_object},
	    {.path = "data.device_path", .type = json_type_string},
	};
	char dprefix[JFIELD_PATH_MAX];
	struct err tmp = {0};
	int r;

	if (connection_info == NULL)
		return fail(prefix, NULL, e, "is required");
	if ((r = jfield_scan(connection_info, strlen(connection_info),
		 &json_limits, w, ELEMENTSOF(w), &tmp)) < 0)
		return err_set_field(
		    e, r, prefix, "field '%s': %s", prefix, tmp.msg);
	if (!w[2].found || !w[2].type_ok || !util_path_valid(w[2].str))
		jfield_path(dprefix, prefix, "data"); /* for a message */
	if (!w[0].found)
		r = fail(prefix, "driver_volume_type", e, "is required");
	else if (!w[0].type_ok)
		r = fail(prefix, "driver_volume_type", e, "expected string");
	else if (!STREQ(w[0].str, "file") && !STREQ(w[0].str, "block"))
		r = fail(prefix, "driver_volume_type", e,
		    "expected file or block (the volume must already be "
		    "attached to this host)");
	else if (!w[1].found)
		r = fail(prefix, "data", e, "is required");
	else if (!w[1].type_ok)
		r = fail(prefix, "data", e, "expected object");
	else if (!w[2].found)
		r = fail(dprefix, "device_path", e, "is required");
	else if (!w[2].type_ok)
		r = fail(dprefix, "device_path", e, "expected string");
	else if (!util_path_valid(w[2].str) || STREQ(w[2].str, "/"))
		r = fail(dprefix, "device_path", e,
		    "expected a normalised absolute path to a file or device");
	if (r < 0) {
		free(w[0].str);
		free(w[2].str);
		return r;
	}
	*ret_type = w[0].str;
	*ret_path = w[2].str;
	return 0;
}

/* ---- formatting ---------------------------------------------------- */

static const char *
nonempty(const char *s)
{
	return s && s[0] ? s : NULL;
}

/* What one formatting call shares: a tokener for the stored JSON texts
 * (connection_info, metadata), made on first use and reset between
 * texts, since json_tokener_parse allocates a fresh one per call. */
struct fmt {
	struct json_tokener *tok;
};

static void
fmt_done(struct fmt *f)
{
	if (f->tok)
		json_tokener_free(f->tok);
	f->tok = NULL;
}

/* Our own stored JSON text back as an object; NULL (a JSON null) if it
 * does not parse, which text this module wrote always does. */
static struct json_object *
text_to_json(struct fmt *f, const char *text)
{
	struct json_object *o;

	if (text == NULL)
		return NULL;
	if (f->tok == NULL)
		f->tok = json_tokener_new_ex(BDM_JSON_MAX_DEPTH + 1);
	else
		json_tokener_reset(f->tok);
	if (f->tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(f->tok, text, (int)strlen(text));
	if (o != NULL &&
	    json_tokener_get_error(f->tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static void
add_boot_index(struct json_object *o, int boot_index, int *rc)
{
	if (boot_index >= 0)
		jfield_add_int(o, "boot_index", boot_index, rc);
	else
		jfield_add_take(o, "boot_index", NULL, rc);
}

static void
add_size(struct json_object *o, const char *key, int64_t size, int *rc)
{
	if (size != BDM_SIZE_NONE)
		jfield_add_int(o, key, size, rc);
	else
		jfield_add_take(o, key, NULL, rc);
}

/* The instance and BDM JSON is written with jwriter, one value after the
 * other into one buffer (a list page of 1,000 instances is megabytes);
 * the json-c constructors below parse that text, so there is one
 * formatter. */

/* A stored JSON text (connection_info, metadata) as a value: copied when
 * it is in json-c's printed form (what this module stores), else parsed
 * and printed by json-c as before; fallback (a JSON value) when there is
 * no text, it does not parse, or it is null. */
static void
write_text(
    struct jwriter *w, struct fmt *f, const char *text, const char *fallback)
{
	struct json_object *o;
	const char *s = NULL;

	if (text && strcmp(text, "null") != 0 &&
	    jwriter_json_text(w, text) == 0)
		return;
	if ((o = text_to_json(f, text)) != NULL &&
	    (s = json_object_to_json_string_ext(
		 o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) ==
		NULL)
		w->err = -ENOMEM;
	if (s == NULL)
		s = fallback;
	jwriter_raw(w, s, strlen(s));
	json_object_put(o);
}

static void
write_boot_index(struct jwriter *w, int boot_index)
{
	jwriter_key(w, "boot_index");
	if (boot_index >= 0)
		jwriter_int(w, boot_index);
	else
		jwriter_null(w);
}

static void
write_size(struct jwriter *w, int64_t size)
{
	if (size != BDM_SIZE_NONE)
		jwriter_int(w, size);
	else
		jwriter_null(w);
}

static void
write_bdm(struct jwriter *w, struct fmt *f, const struct bdm *b,
    const struct blockinfo_disk *d)
{
	jwriter_obj_begin(w);
	jwriter_key(w, "bdm_uuid");
	jwriter_str(w, nonempty(b->uuid));
	write_boot_index(w, b->boot_index);
	jwriter_key(w, "source_type");
	jwriter_str(w, bdm_source_to_string(b->source_type));
	jwriter_key(w, "destination_type");
	jwriter_str(w, bdm_dest_to_string(b->destination_type));
	jwriter_key(w, "image_id");
	jwriter_str(w, b->image_id);
	jwriter_key(w, "volume_id");
	jwriter_str(w, b->volume_id);
	jwriter_key(w, "snapshot_id");
	jwriter_str(w, b->snapshot_id);
	jwriter_key(w, "device_type");
	jwriter_str(w, bdm_device_type_to_string(b->device_type));
	jwriter_key(w, "disk_bus");
	jwriter_str(w,
	    bdm_bus_to_string(b->disk_bus != BDM_BUS_UNSET || d == NULL
		    ? b->disk_bus
		    : d->bus));
	jwriter_key(w, "device_name");
	jwriter_str(w,
	    b->device_name ? b->device_name
			   : (d ? nonempty(d->device_name) : NULL));
	jwriter_key(w, "volume_size");
	write_size(w, b->volume_size);
	jwriter_key(w, "guest_format");
	jwriter_str(w, b->guest_format);
	jwriter_key(w, "delete_on_termination");
	jwriter_bool(w, b->delete_on_termination);
	jwriter_key(w, "tag");
	jwriter_str(w, b->tag);
	jwriter_key(w, "connection_info");
	write_text(w, f, b->connection_info, "null");
	jwriter_key(w, "serial");
	jwriter_str(w, d ? nonempty(d->serial) : NULL);
	jwriter_key(w, "by_id");
	jwriter_str(w, d ? nonempty(d->by_id) : NULL);
	/* only while an attach or detach is unconfirmed (schema 6) */
	if (b->attach_state != BDM_ATTACH_SETTLED) {
		jwriter_key(w, "attach_state");
		jwriter_str(w, bdm_attach_state_to_string(b->attach_state));
	}
	jwriter_obj_end(w);
}

/* The array of every BDM, each matched to its disk in one pass. */
static void
write_bdm_array(struct jwriter *w, struct fmt *f, const struct instance *inst,
    const struct blockinfo *bi)
{
	const struct blockinfo_disk *stack[64];
	const struct blockinfo_disk **by_bdm = stack;

	if (inst->n_bdms > ELEMENTSOF(stack) &&
	    (by_bdm = calloc(inst->n_bdms, sizeof(*by_bdm))) == NULL) {
		w->err = -ENOMEM;
		return;
	}
	memset(by_bdm, 0, inst->n_bdms * sizeof(*by_bdm));
	for (size_t k = 0; bi && k < bi->n_disks; k++) {
		int x = bi->disks[k].bdm_index;

		if (x >= 0 && (size_t)x < inst->n_bdms)
			by_bdm[x] = &bi->disks[k];
	}
	jwriter_arr_begin(w);
	for (size_t i = 0; i < inst->n_bdms; i++)
		write_bdm(w, f, &inst->bdms[i], by_bdm[i]);
	jwriter_arr_end(w);
	if (by_bdm != stack)
		free(by_bdm);
}

static void
write_time(struct jwriter *w, int64_t ms)
{
	char buf[32];

	if (ms <= 0) {
		jwriter_null(w);
		return;
	}
	util_rfc3339(ms, buf);
	jwriter_str(w, buf);
}

static void
write_instance(struct jwriter *w, struct fmt *f, const struct instance *inst,
    const struct blockinfo *bi)
{
	const struct image_props *p = &inst->props;

	jwriter_obj_begin(w);
	jwriter_key(w, "uuid");
	jwriter_str(w, nonempty(inst->uuid));
	jwriter_key(w, "name");
	jwriter_str(w, inst->name);
	jwriter_key(w, "state");
	jwriter_str(w, instance_state_to_string(inst->state));
	/* what the client last asked for; state is what libvirt shows */
	jwriter_key(w, "desired_state");
	jwriter_str(w, instance_state_to_string(inst->desired_state));
	/* why it is in error, as Nova's fault; only while it is */
	if (inst->state == INSTANCE_ERROR && inst->fault) {
		jwriter_key(w, "fault");
		jwriter_obj_begin(w);
		jwriter_key(w, "message");
		jwriter_str(w, inst->fault);
		jwriter_obj_end(w);
	}
	jwriter_key(w, "flavor");
	jwriter_obj_begin(w);
	jwriter_key(w, "vcpus");
	jwriter_int(w, inst->flavor.vcpus);
	jwriter_key(w, "memory_mb");
	jwriter_int(w, inst->flavor.memory_mb);
	jwriter_key(w, "root_gb");
	jwriter_int(w, inst->flavor.root_gb);
	jwriter_key(w, "ephemeral_gb");
	jwriter_int(w, inst->flavor.ephemeral_gb);
	jwriter_key(w, "swap");
	jwriter_int(w, inst->flavor.swap);
	jwriter_obj_end(w);
	jwriter_key(w, "imageRef");
	jwriter_str(w, inst->image_ref);
	jwriter_key(w, "image_meta");
	jwriter_obj_begin(w);
	jwriter_key(w, "properties");
	jwriter_obj_begin(w);
	if (p->hw_disk_bus) {
		jwriter_key(w, "hw_disk_bus");
		jwriter_str(w, p->hw_disk_bus);
	}
	if (p->hw_cdrom_bus) {
		jwriter_key(w, "hw_cdrom_bus");
		jwriter_str(w, p->hw_cdrom_bus);
	}
	if (p->hw_scsi_model) {
		jwriter_key(w, "hw_scsi_model");
		jwriter_str(w, p->hw_scsi_model);
	}
	if (p->hw_machine_type) {
		jwriter_key(w, "hw_machine_type");
		jwriter_str(w, p->hw_machine_type);
	}
	jwriter_obj_end(w);
	jwriter_obj_end(w);
	jwriter_key(w, "config_drive");
	jwriter_bool(w, inst->config_drive);
	jwriter_key(w, "metadata");
	write_text(w, f, inst->metadata, "{}");
	jwriter_key(w, "created_at");
	write_time(w, inst->created_at);
	jwriter_key(w, "updated_at");
	write_time(w, inst->updated_at);
	jwriter_key(w, "generation");
	jwriter_int(w, inst->generation);
	nic_json_write_guest(w, &inst->guest);
	jwriter_key(w, "block_device_mappings");
	write_bdm_array(w, f, inst, bi);
	jwriter_obj_end(w);
}

/* See bdm_json.h. */
void
bdm_json_write_instance(
    struct jwriter *w, const struct instance *inst, const struct blockinfo *bi)
{
	struct fmt f = {NULL};

	write_instance(w, &f, inst, bi);
	fmt_done(&f);
}

/* w's text as a json-c object; NULL on any error (w is emptied). */
static struct json_object *
writer_to_json(struct jwriter *w)
{
	_cleanup_free_ char *text = NULL;
	struct json_tokener *tok;
	struct json_object *o;
	size_t len;

	if (jwriter_finish(w, &text, &len) < 0)
		return NULL;
	/* the instance's own levels plus stored texts' (depth-checked when
	 * they were parsed) */
	if ((tok = json_tokener_new_ex(BDM_JSON_MAX_DEPTH * 2 + 8)) == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o != NULL && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* The disk of BDM index in bi, or NULL. */
static const struct blockinfo_disk *
disk_of(const struct blockinfo *bi, size_t index)
{
	if (bi == NULL)
		return NULL;
	for (size_t k = 0; k < bi->n_disks; k++)
		if (bi->disks[k].bdm_index >= 0 &&
		    (size_t)bi->disks[k].bdm_index == index)
			return &bi->disks[k];
	return NULL;
}

/* See bdm_json.h. */
struct json_object *
bdm_json_format_bdm(
    const struct instance *inst, size_t index, const struct blockinfo *bi)
{
	struct fmt f = {NULL};
	struct jwriter w = {0};

	if (index >= inst->n_bdms)
		return NULL;
	write_bdm(&w, &f, &inst->bdms[index], disk_of(bi, index));
	fmt_done(&f);
	return writer_to_json(&w);
}

/* See bdm_json.h. */
struct json_object *
bdm_json_format_bdms(const struct instance *inst, const struct blockinfo *bi)
{
	struct fmt f = {NULL};
	struct jwriter w = {0};

	jwriter_obj_begin(&w);
	jwriter_key(&w, "block_device_mappings");
	write_bdm_array(&w, &f, inst, bi);
	jwriter_obj_end(&w);
	fmt_done(&f);
	return writer_to_json(&w);
}

/* See bdm_json.h. */
struct json_object *
bdm_json_format_instance(
    const struct instance *inst, const struct blockinfo *bi)
{
	struct jwriter w = {0};

	bdm_json_write_instance(&w, inst, bi);
	return writer_to_json(&w);
}

/* The fields every block_device_info entry carries besides Nova's. */
static void
add_common(struct json_object *o, const struct blockinfo_disk *d, int *rc)
{
	jfield_add_str(o, "bdm_uuid", nonempty(d->uuid), rc);
	jfield_add_str(o, "serial", nonempty(d->serial), rc);
	jfield_add_str(o, "by_id", nonempty(d->by_id), rc);
	jfield_add_str(o, "kind", blockinfo_kind_to_string(d->kind), rc);
}

/* One DriverBlockDevice dict (nova/virt/block_device.py), by kind. */
static struct json_object *
format_driver_bdm(
    struct fmt *f, const struct instance *inst, const struct blockinfo_disk *d)
{
	const struct bdm *b =
	    d->bdm_index >= 0 && (size_t)d->bdm_index < inst->n_bdms
	    ? &inst->bdms[d->bdm_index]
	    : NULL;
	struct json_object *o = json_object_new_object();
	const char *bus = bdm_bus_to_string(d->bus);
	const char *type = bdm_device_type_to_string(d->type);
	int boot = b ? b->boot_index : BDM_BOOT_NONE;
	int rc = 0;

	if (o == NULL)
		return NULL;
	switch (d->kind) {
	case BLOCKINFO_SWAP:
		jfield_add_str(o, "device_name", nonempty(d->device_name), &rc);
		add_size(o, "swap_size", d->size, &rc);
		jfield_add_str(o, "disk_bus", bus, &rc);
		break;
	case BLOCKINFO_EPHEMERAL:
		jfield_add_str(o, "device_name", nonempty(d->device_name), &rc);
		add_size(o, "size", d->size, &rc);
		jfield_add_str(o, "guest_format", d->guest_format, &rc);
		jfield_add_str(o, "disk_bus", bus, &rc);
		jfield_add_str(o, "device_type", type, &rc);
		add_boot_index(o, boot, &rc);
		break;
	case BLOCKINFO_LOCAL_ROOT:
		jfield_add_str(o, "device_name", nonempty(d->device_name), &rc);
		jfield_add_str(o, "disk_bus", bus, &rc);
		jfield_add_str(o, "device_type", type, &rc);
		add_boot_index(o, boot, &rc);
		jfield_add_str(o, "image_id", b ? b->image_id : NULL, &rc);
		add_size(o, "size", d->size, &rc);
		break;
	default: /* the volume kinds */
		jfield_add_str(
		    o, "mount_device", nonempty(d->device_name), &rc);
		jfield_add_take(o, "connection_info",
		    text_to_json(f, b ? b->connection_info : NULL), &rc);
		jfield_add_bool(o, "delete_on_termination",
		    b && b->delete_on_termination, &rc);
		jfield_add_str(o, "disk_bus", bus, &rc);
		jfield_add_str(o, "device_type", type, &rc);
		jfield_add_str(o, "guest_format", d->guest_format, &rc);
		add_boot_index(o, boot, &rc);
		jfield_add_str(o, "volume_id", b ? b->volume_id : NULL, &rc);
		add_size(
		    o, "volume_size", b ? b->volume_size : BDM_SIZE_NONE, &rc);
		if (d->kind == BLOCKINFO_SNAPSHOT)
			jfield_add_str(
			    o, "snapshot_id", b ? b->snapshot_id : NULL, &rc);
		if (d->kind == BLOCKINFO_IMAGE)
			jfield_add_str(
			    o, "image_id", b ? b->image_id : NULL, &rc);
		break;
	}
	add_common(o, d, &rc);
	if (rc < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *
format_driver_list(struct fmt *f, const struct instance *inst,
    struct blockinfo_disk *const *disks, size_t n)
{
	struct json_object *arr = json_object_new_array_ext((int)n);
	int rc = 0;

	if (arr == NULL)
		return NULL;
	for (size_t i = 0; i < n && rc == 0; i++)
		jfield_append_take(
		    arr, format_driver_bdm(f, inst, disks[i]), &rc);
	if (rc < 0) {
		json_object_put(arr);
		return NULL;
	}
	return arr;
}

/* See bdm_json.h. */
struct json_object *
bdm_json_format_blockinfo(
    const struct instance *inst, const struct blockinfo *bi)
{
	struct json_object *o = json_object_new_object(), *v;
	struct fmt f = {NULL};
	int rc = 0;

	if (o == NULL || bi == NULL) {
		json_object_put(o);
		return NULL;
	}
	jfield_add_str(
	    o, "root_device_name", nonempty(bi->root_device_name), &rc);
	if (bi->local_root) {
		v = format_driver_bdm(&f, inst, bi->local_root);
		if (v == NULL)
			rc = -ENOMEM;
		jfield_add_take(o, "local_root", v, &rc);
	}
	v = format_driver_list(&f, inst, bi->ephemerals, bi->n_ephemerals);
	if (v == NULL)
		rc = -ENOMEM;
	jfield_add_take(o, "ephemerals", v, &rc);
	v = NULL;
	if (bi->swap && (v = format_driver_bdm(&f, inst, bi->swap)) == NULL)
		rc = -ENOMEM;
	jfield_add_take(o, "swap", v, &rc);
	v = format_driver_list(&f, inst, bi->volumes, bi->n_volumes);
	if (v == NULL)
		rc = -ENOMEM;
	jfield_add_take(o, "block_device_mapping", v, &rc);
	fmt_done(&f);
	if (rc < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
