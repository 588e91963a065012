/*
 * The driver's view of an instance's disks: the DriverBlockDevice kinds
 * (nova/virt/block_device.py), block_device_info (nova/virt/driver.py) with
 * hyperlet's `local_root`, and the libvirt disk mapping of
 * nova/virt/libvirt/blockinfo.py for x86_64/KVM: bus, target device, boot
 * order and the serial each disk carries. Pure: no I/O.
 */
#ifndef HYPERLET_BLOCKINFO_H
#define HYPERLET_BLOCKINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bdm.h"
#include "err.h"

#define BLOCKINFO_SERIAL_MAX 37 /* 36 characters and the NUL */
#define BLOCKINFO_BYID_MAX 96
#define BLOCKINFO_DEV_MAX 16

/* One kind per DriverBlockDevice role. */
enum blockinfo_kind {
	BLOCKINFO_LOCAL_ROOT = 0, /* image -> local, boot_index 0 */
	BLOCKINFO_EPHEMERAL, /* blank -> local, not swap */
	BLOCKINFO_SWAP, /* blank -> local, guest_format swap */
	BLOCKINFO_VOLUME, /* volume -> volume */
	BLOCKINFO_SNAPSHOT, /* snapshot -> volume */
	BLOCKINFO_IMAGE, /* image -> volume */
	BLOCKINFO_BLANK, /* blank -> volume */
	BLOCKINFO_CONFIG_DRIVE, /* disk.config: no BDM */
};

/* One disk as the driver sees it. Strings are owned by the array. */
struct blockinfo_disk {
	enum blockinfo_kind kind;
	int bdm_index; /* index into instance->bdms, -1 for the
				      config drive */
	char uuid[UUID_STR_LEN]; /* the BDM uuid ("" for the config drive) */
	const char *name; /* Nova's disk name for local disks:
				      "disk", "disk.eph0", "disk.swap",
				      "disk.config"; NULL for volumes */
	char dev[BLOCKINFO_DEV_MAX]; /* target dev: "vda", "sdb", "hdc" */
	char device_name[BLOCKINFO_DEV_MAX + 5]; /* "/dev/vda" */
	enum bdm_bus bus;
	enum bdm_device_type type; /* disk, cdrom, lun */
	int boot_order; /* libvirt <boot order>, 0 = none: boot_index + 1
			   for the local root (always 1) and bootable
			   volumes; ephemerals, swap and the config drive
			   never boot (Nova's mapping boot_index) */
	int64_t size; /* GiB; MiB for swap; BDM_SIZE_NONE. Local disks
			 without volume_size take the flavor's root_gb,
			 ephemeral_gb or swap (root: BDM_SIZE_NONE when
			 root_gb is 0, i.e. the image's size) */
	const char *guest_format; /* borrowed from the BDM, may be NULL */
	char serial[BLOCKINFO_SERIAL_MAX]; /* as written in <serial>; "" =
					      none (lun, config drive) */
	char by_id[BLOCKINFO_BYID_MAX]; /* "/dev/disk/by-id/virtio-..." or
					      "" */
	/* Volumes only (from connection_info): "file" or "block", and the
	 * path libvirt's <source file=|dev=> gets. NULL for local disks,
	 * whose path is <instance dir>/<name>. Owned. */
	char *conn_type;
	char *conn_path;
	bool dev_picked; /* dev was chosen by the mapping, not given by the
			    BDM (false once written back and built again) */
};

/*
 * block_device_info plus the disk mapping. disks[] is in mapping order
 * (root, disk.eph<N>, disk.swap, volumes, disk.config); the role pointers
 * point into it.
 */
struct blockinfo {
	char root_device_name[BLOCKINFO_DEV_MAX + 5]; /* "/dev/vda" */
	enum bdm_bus disk_bus; /* default bus for disks */
	enum bdm_bus cdrom_bus; /* default bus for cdroms */
	bool virtio_scsi; /* needs a virtio-scsi controller */
	bool q35; /* machine type is q35 */

	struct blockinfo_disk *disks;
	size_t n_disks;

	struct blockinfo_disk *local_root; /* NULL when booting from volume */
	struct blockinfo_disk **ephemerals;
	size_t n_ephemerals;
	struct blockinfo_disk *swap; /* NULL when none */
	struct blockinfo_disk **volumes; /* block_device_mapping[] */
	size_t n_volumes;
	struct blockinfo_disk *config_drive; /* NULL when none */
};

const char *blockinfo_kind_to_string(enum blockinfo_kind k);

/*
 * Builds the driver view and disk mapping of a prepared instance (see
 * bdm_instance_prepare). As Nova's _default_block_device_names does, it
 * writes the device_name and disk_bus it picks back into every BDM that
 * lacks them, so the stored BDMs carry them; building again from those
 * BDMs gives the same result. The result is owned by the caller
 * (blockinfo_free). Returns 0, or -EINVAL (too many devices for a bus,
 * a device name taken twice, a serial that is not [A-Za-z0-9_.+-]) with
 * the field named in e, -ENOMEM.
 */
int blockinfo_build(struct instance *inst, const struct bdm_limits *lim,
    struct blockinfo **ret, struct err *e);
struct blockinfo *blockinfo_free(struct blockinfo *bi);

/*
 * Picks bus and device name for a volume about to be attached to inst, as
 * Nova's LibvirtDriver.get_device_name_for_instance: b->device_name is
 * ignored (replaced), b->disk_bus honoured when given; the next free name
 * on the bus. Writes them into b. Returns 0, -EINVAL (bus full, limit
 * reached), -ENOMEM.
 */
int blockinfo_pick_attach(const struct instance *inst, struct bdm *b,
    const struct bdm_limits *lim, struct err *e);

/* The serial a disk on bus carries for id: id whole on SCSI, its first 20
 * characters elsewhere. Returns 0, or -EINVAL if id has characters outside
 * [A-Za-z0-9_.+-]. */
int blockinfo_serial(enum bdm_bus bus, const char *id,
    char out[BLOCKINFO_SERIAL_MAX], struct err *e);

/* The /dev/disk/by-id path a guest gets for serial on bus. */
void blockinfo_by_id(
    enum bdm_bus bus, const char *serial, char out[BLOCKINFO_BYID_MAX]);

/* As blockinfo_by_id for a disk of device type type: a cdrom shows as
 * ata-QEMU_DVD-ROM_<serial> (SATA/IDE) or scsi-0QEMU_QEMU_CD-ROM_<serial>.
 * An empty serial gives "". */
void blockinfo_by_id_type(enum bdm_bus bus, enum bdm_device_type type,
    const char *serial, char out[BLOCKINFO_BYID_MAX]);

/* Nova's get_boot_order: the <os><boot dev=> list ("hd", "cdrom"), each
 * once, ordered by the disks' boot_order. Use either this or the per-disk
 * boot_order in the XML, never both (libvirt refuses the mix). Writes at
 * most 2 entries to ret; returns how many. */
size_t blockinfo_boot_devs(const struct blockinfo *bi, const char *ret[2]);

#endif
