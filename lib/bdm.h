/*
 * The instance and block device mapping (BDM) model: Nova's
 * block_device_mapping_v2 entries, the instance they belong to, the enum
 * <-> string tables, and Nova's validation and defaulting rules
 * (nova/block_device.py, nova/compute/api.py _check_and_transform_bdm and
 * _validate_bdm). Pure: no I/O, no JSON, no SQL.
 */
#ifndef HYPERLET_BDM_H
#define HYPERLET_BDM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "nic.h"
#include "util.h"

#define BDM_BOOT_NONE (-1) /* boot_index null or -1: not bootable */
#define BDM_SIZE_NONE (-1) /* volume_size null */

enum bdm_source {
	BDM_SOURCE_UNSET = 0,
	BDM_SOURCE_IMAGE,
	BDM_SOURCE_VOLUME,
	BDM_SOURCE_SNAPSHOT,
	BDM_SOURCE_BLANK,
};

enum bdm_dest {
	BDM_DEST_UNSET = 0,
	BDM_DEST_LOCAL,
	BDM_DEST_VOLUME,
};

enum bdm_device_type {
	BDM_DEVICE_UNSET = 0,
	BDM_DEVICE_DISK,
	BDM_DEVICE_CDROM,
	BDM_DEVICE_LUN,
};

enum bdm_bus {
	BDM_BUS_UNSET = 0,
	BDM_BUS_VIRTIO,
	BDM_BUS_SCSI,
	BDM_BUS_SATA,
	BDM_BUS_IDE,
};

/* Where a volume's attach or detach stands (block_device_mappings.
 * attach_state, schema 6). SETTLED (NULL in the row): libvirt confirmed
 * the attach, or the BDM came with the create. ATTACHING: the row is
 * written, libvirt's attach not confirmed. DETACHING: a detach was sent
 * and not confirmed (or the running guest has not released the disk).
 * Start-up reconciliation compares the disks of an instance with libvirt
 * only when one of its BDMs is not settled. */
enum bdm_attach_state {
	BDM_ATTACH_SETTLED = 0,
	BDM_ATTACH_ATTACHING,
	BDM_ATTACH_DETACHING,
};

/*
 * One block device mapping. Owns every char * member. After
 * bdm_instance_prepare() every enum is set (no _UNSET) and uuid holds a
 * canonical lower-case UUID; device_name and disk_bus are filled in by
 * blockinfo_build()'s disk mapping (as Nova saves the names it picks).
 */
struct bdm {
	char uuid[UUID_STR_LEN]; /* bdm_uuid; "" only for a v1 row not yet
				    migrated */
	bool uuid_given; /* the caller supplied bdm_uuid */
	enum bdm_source source_type;
	enum bdm_dest destination_type;
	char *guest_format; /* NULL, "swap", or a filesystem name */
	int boot_index; /* 0.., or BDM_BOOT_NONE */
	enum bdm_device_type device_type;
	enum bdm_bus disk_bus;
	char *device_name; /* "/dev/vdb" or NULL */
	int64_t volume_size; /* GiB (MiB for swap), or BDM_SIZE_NONE */
	char *image_id; /* source image, canonical UUID */
	char *volume_id; /* the volume (destination_type volume) */
	char *snapshot_id; /* source snapshot */
	char *tag;
	bool delete_on_termination;
	char *connection_info; /* JSON text, or NULL */
	enum bdm_attach_state attach_state; /* stored; never from a request */
	/* connection_info's driver_volume_type ("file" or "block") and
	 * data.device_path, read once where connection_info comes in:
	 * bdm_json when it parses a request (a bad one is refused there),
	 * the store when it loads a row. Both NULL (not read, or not
	 * valid: the model refuses a volume then) or both set and valid.
	 * Whoever replaces connection_info frees and NULLs them; bdm_copy
	 * and bdm_clear handle them. */
	char *conn_type;
	char *conn_path;
};

struct flavor {
	int64_t vcpus;
	int64_t memory_mb;
	int64_t root_gb;
	int64_t ephemeral_gb;
	int64_t swap; /* MiB */
};

/* Image properties that steer the disk mapping; NULL when not given. The
 * request's image_meta.properties override the stored image's. */
struct image_props {
	char *hw_disk_bus;
	char *hw_cdrom_bus;
	char *hw_scsi_model;
	char *hw_machine_type;
	/* image_meta.disk_format: "raw", "qcow2" or "iso" (bdm_json refuses
	 * others); the request's, else the stored image's format. Nova's
	 * blockinfo reads it only in get_root_info without a root BDM, which
	 * a create never has (the image root is a BDM), so it does not
	 * change the mapping. Not stored with the instance. */
	char *disk_format;
};

enum instance_state {
	INSTANCE_BUILDING = 0,
	INSTANCE_RUNNING,
	INSTANCE_STOPPED,
	INSTANCE_ERROR,
	INSTANCE_DELETING,
	/* schema 10: what libvirt's lifecycle events report (domevents.h) */
	INSTANCE_PAUSED,
	INSTANCE_CRASHED,
};

/* An instance and its BDMs. Owns every pointer member and bdms[]. */
struct instance {
	char uuid[UUID_STR_LEN];
	bool uuid_given; /* the caller chose the uuid */
	char *name;
	struct flavor flavor;
	char *image_ref; /* NULL when booting from a volume */
	struct image_props props;
	char *metadata; /* JSON object text; never NULL after parse ("{}") */
	bool config_drive;
	bool start; /* request only: start after define (default true) */
	enum instance_state state; /* observed: what libvirt last said */
	/* what the API last asked for: INSTANCE_RUNNING (create, start,
	 * reboot) or INSTANCE_STOPPED (stop, create with start false) */
	enum instance_state desired_state;
	char *fault; /* why the instance is in error, or NULL */
	int64_t created_at; /* ms since the epoch */
	int64_t updated_at;
	int64_t generation; /* bumped on every change; the ETag */
	struct bdm *bdms;
	size_t n_bdms;
	size_t bdms_cap; /* entries allocated in bdms (instance_bdm_append;
			    0 when bdms was allocated elsewhere) */
	struct guest_data guest; /* hostname, user_data, keys, NICs */
};

/* Knobs of the validation, from the config file (Nova's names). */
struct bdm_limits {
	int max_local_block_devices; /* default 3; <0 unlimited */
	int max_disk_devices_to_attach; /* default -1 (unlimited) */
	int max_bdms; /* BDMs per request, default 64 */
};

#define BDM_LIMITS_DEFAULT                                       \
	{                                                        \
		.max_local_block_devices = 3,                    \
		.max_disk_devices_to_attach = -1, .max_bdms = 64 \
	}

/* enum <-> string; _from_string returns 0 and sets *ret, or -EINVAL. */
const char *bdm_source_to_string(enum bdm_source v);
int bdm_source_from_string(const char *s, enum bdm_source *ret);
const char *bdm_dest_to_string(enum bdm_dest v);
int bdm_dest_from_string(const char *s, enum bdm_dest *ret);
const char *bdm_device_type_to_string(enum bdm_device_type v);
int bdm_device_type_from_string(const char *s, enum bdm_device_type *ret);
const char *bdm_bus_to_string(enum bdm_bus v);
int bdm_bus_from_string(const char *s, enum bdm_bus *ret);
const char *instance_state_to_string(enum instance_state v);
int instance_state_from_string(const char *s, enum instance_state *ret);
/* NULL for BDM_ATTACH_SETTLED (the column's NULL) */
const char *bdm_attach_state_to_string(enum bdm_attach_state v);
int bdm_attach_state_from_string(const char *s, enum bdm_attach_state *ret);

/* Role predicates, as nova/block_device.py new_format_is_swap etc. */
bool bdm_is_swap(const struct bdm *b);
bool bdm_is_ephemeral(const struct bdm *b);
bool bdm_is_local(const struct bdm *b);
bool bdm_is_volume(const struct bdm *b);

void bdm_clear(struct bdm *b);
int bdm_copy(const struct bdm *src, struct bdm *dst, struct err *e);

struct instance *instance_new(void);
struct instance *instance_free(struct instance *inst);
int instance_bdm_append(
    struct instance *inst, struct bdm **ret_bdm, struct err *e);
void image_props_clear(struct image_props *p);

/*
 * Applies Nova's API rules to a parsed create request, in place: adds the
 * image root BDM and the flavor's ephemeral and swap BDMs when the request
 * does not give them, fills defaults (device_type disk, delete_on_termination
 * for local disks, ...), validates every rule, drops every device_name
 * but the root BDM's (Nova's libvirt driver, default_device_names_for_
 * instance: blockinfo_build assigns them), and draws a uuid for every
 * BDM that has none (a generated one whose first 20 characters collide
 * with another disk's is drawn again), and the instance uuid if empty.
 * The image root goes first, the flavor's disks last. Calling it again
 * on its result changes nothing. lim NULL means BDM_LIMITS_DEFAULT.
 * Returns 0, or -EINVAL with the field named in e, or -EEXIST for
 * colliding volume ids / bdm_uuids / serials, -ENOMEM; on failure inst
 * may be half-defaulted and is only good for instance_free.
 */
int bdm_instance_prepare(
    struct instance *inst, const struct bdm_limits *lim, struct err *e);

/*
 * Validates a BDM for a volume attached to an existing instance (the
 * attach route): destination volume, volume_id and connection_info set,
 * device_name/disk_bus well formed, no volume id or serial collision with
 * the instance's BDMs. Draws the uuid if not given. The device name
 * (a given one is replaced, as Nova does) and the attach limit are
 * blockinfo_pick_attach's (lim is not used here). Returns 0, -EINVAL, -EEXIST (volume already attached, its
 * serial prefix or the bdm_uuid taken), -ENOMEM.
 */
int bdm_prepare_attach(const struct instance *inst, struct bdm *b,
    const struct bdm_limits *lim, struct err *e);

#endif
