/*
 * blockinfo: the driver's view of an instance's disks. It sorts the BDMs
 * into Nova's DriverBlockDevice roles (nova/virt/block_device.py convert_*),
 * builds block_device_info with hyperlet's `local_root`, and gives each disk
 * its bus, target device and boot order the way
 * nova/virt/libvirt/blockinfo.py _get_disk_mapping does for x86_64/KVM, and
 * the serial the guest will see. Pure: no I/O. A blockinfo is one
 * allocation (struct, disks[] and the role arrays); only a volume's
 * connection source strings are separate. A name a BDM carries (the
 * root's as the request gave it, the others as a previous build assigned
 * them: bdm_instance_prepare drops the rest, as Nova's libvirt driver
 * does) is kept and never handed to another disk.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blockinfo.h"
#include "util.h"

#define DEVP "/dev/"
#define DEVP_LEN (sizeof(DEVP) - 1)
#define IDE_MAX_DEVICES 4 /* 2 buses x master/slave */
#define MAX_EPHEMERALS 64
#define SERIAL_SHORT 20 /* what virtio-blk, SATA and IDE keep */
#define SERIAL_SCSI (BLOCKINFO_SERIAL_MAX - 1) /* SCSI keeps 36 */
#define FIELD_MAX 96

/* Prefix families of target device names; index into mapctx masks. */
enum prefix {
	PREFIX_VD = 0,
	PREFIX_SD,
	PREFIX_HD,
	PREFIX_N,
};

static const char *const prefix_str[PREFIX_N] = {"vd", "sd", "hd"};

#define EPH(n) "disk.eph" #n
#define EPH10(t)                                                          \
	EPH(t##0), EPH(t##1), EPH(t##2), EPH(t##3), EPH(t##4), EPH(t##5), \
	    EPH(t##6), EPH(t##7), EPH(t##8), EPH(t##9)
static const char *const eph_names[MAX_EPHEMERALS] = {EPH(0), EPH(1), EPH(2),
    EPH(3), EPH(4), EPH(5), EPH(6), EPH(7), EPH(8), EPH(9), EPH10(1), EPH10(2),
    EPH10(3), EPH10(4), EPH10(5), EPH(60), EPH(61), EPH(62), EPH(63)};

/*
 * The names in use while the mapping is built. A name of the form
 * <prefix><one letter> lives in a bit mask (the common case); longer
 * names ("vdaa") are looked up in disks[] and the BDMs, which only happens
 * once a bus holds more than 26 disks.
 */
struct mapctx {
	const struct instance *inst;
	const struct bdm_limits *lim;
	struct blockinfo *bi;
	uint32_t used[PREFIX_N]; /* names in the mapping so far */
	uint32_t given[PREFIX_N]; /* names some BDM asks for */
	bool long_names; /* some name is outside the masks */
	const char *root_dev; /* the root's name, until its disk exists */
};

/* What get_info_from_bdm answers for one disk. */
struct devinfo {
	char dev[BLOCKINFO_DEV_MAX];
	enum bdm_bus bus;
	enum bdm_device_type type;
};

static const char *bus_name(enum bdm_bus bus);
static int bus_prefix(enum bdm_bus bus);
static bool dev_slot(const char *dev, int *ret_prefix, int *ret_letter);
static bool dev_well_formed(const char *dev);

/* The API's name of a kind ("local_root", "ephemeral", ...): a static
 * string, or NULL for a value out of range. */
const char *
blockinfo_kind_to_string(enum blockinfo_kind k)
{
	static const char *const names[] = {
	    [BLOCKINFO_LOCAL_ROOT] = "local_root",
	    [BLOCKINFO_EPHEMERAL] = "ephemeral",
	    [BLOCKINFO_SWAP] = "swap",
	    [BLOCKINFO_VOLUME] = "volume",
	    [BLOCKINFO_SNAPSHOT] = "snapshot",
	    [BLOCKINFO_IMAGE] = "image",
	    [BLOCKINFO_BLANK] = "blank",
	    [BLOCKINFO_CONFIG_DRIVE] = "config_drive",
	};

	if ((size_t)k >= ELEMENTSOF(names))
		return NULL;
	return names[k];
}

static const char *
bus_name(enum bdm_bus bus)
{
	switch (bus) {
	case BDM_BUS_VIRTIO:
		return "virtio";
	case BDM_BUS_SCSI:
		return "scsi";
	case BDM_BUS_SATA:
		return "sata";
	case BDM_BUS_IDE:
		return "ide";
	default:
		return "?";
	}
}

/* get_dev_prefix_for_disk_bus: vd for virtio, sd for scsi and sata, hd for
 * ide. */
static int
bus_prefix(enum bdm_bus bus)
{
	switch (bus) {
	case BDM_BUS_SCSI:
	case BDM_BUS_SATA:
		return PREFIX_SD;
	case BDM_BUS_IDE:
		return PREFIX_HD;
	default:
		return PREFIX_VD;
	}
}

/* True if dev is <vd|sd|hd><one letter>; gives prefix and letter index. */
static bool
dev_slot(const char *dev, int *ret_prefix, int *ret_letter)
{
	if (dev[0] == '\0' || dev[1] != 'd' || dev[2] < 'a' || dev[2] > 'z' ||
	    dev[3] != '\0')
		return false;
	switch (dev[0]) {
	case 'v':
		*ret_prefix = PREFIX_VD;
		break;
	case 's':
		*ret_prefix = PREFIX_SD;
		break;
	case 'h':
		*ret_prefix = PREFIX_HD;
		break;
	default:
		return false;
	}
	*ret_letter = dev[2] - 'a';
	return true;
}

/* A target name hyperlet accepts: (vd|sd|hd)[a-z]+, shorter than
 * BLOCKINFO_DEV_MAX. Nova also takes partitions ("sda1"), xvd and fd. */
static bool
dev_well_formed(const char *dev)
{
	size_t i, len = strlen(dev);

	if (len < 3 || len >= BLOCKINFO_DEV_MAX || dev[1] != 'd' ||
	    (dev[0] != 'v' && dev[0] != 's' && dev[0] != 'h'))
		return false;
	for (i = 2; i < len; i++)
		if (dev[i] < 'a' || dev[i] > 'z')
			return false;
	return true;
}

/* The BDM's target name without /dev/, or NULL when it has none. */
static const char *
bdm_dev(const struct bdm *b)
{
	const char *n = b->device_name;

	if (n == NULL || n[0] == '\0')
		return NULL;
	if (strncmp(n, DEVP, DEVP_LEN) == 0)
		n += DEVP_LEN;
	return n;
}

/*
 * The field of BDM i, e.g. "block_device_mapping_v2[2].volume_id". i is
 * the index in the prepared list (the order the API shows the BDMs in):
 * the request's index unless bdm_instance_prepare put an image root in
 * front. bdm_instance_prepare has refused whatever a create request can get
 * wrong in one BDM, so these errors mostly concern stored instances.
 */
static const char *
bdm_field(size_t i, const char *name, char buf[FIELD_MAX])
{
	static const char list[] = "block_device_mapping_v2[";
	char digits[24];
	size_t n = 0, k = 0, len;

	/* by hand, not snprintf: volumes need it on the success path */
	do
		digits[k++] = (char)('0' + i % 10);
	while ((i /= 10) > 0);
	memcpy(buf, list, sizeof(list) - 1);
	n = sizeof(list) - 1;
	while (k > 0)
		buf[n++] = digits[--k];
	buf[n++] = ']';
	if (name) {
		len = strnlen(name, FIELD_MAX - n - 2);
		buf[n++] = '.';
		memcpy(buf + n, name, len);
		n += len;
	}
	buf[n] = '\0';
	return buf;
}

/* generate_device_name: prefix + a, b, ..., z, aa, ab, ... */
static void
dev_generate(int prefix, unsigned idx, char out[BLOCKINFO_DEV_MAX])
{
	char letters[BLOCKINFO_DEV_MAX];
	size_t n = 0;
	long i = (long)idx;

	while (i >= 0 && n < sizeof(letters)) {
		letters[n++] = (char)('a' + i % 26);
		i = i / 26 - 1;
	}
	out[0] = prefix_str[prefix][0];
	out[1] = prefix_str[prefix][1];
	for (size_t k = 0; k < n; k++)
		out[2 + k] = letters[n - 1 - k];
	out[2 + n] = '\0';
}

/* True if dev (a long name) is in the mapping or asked for by a BDM. */
static bool
long_name_taken(const struct mapctx *m, const char *dev)
{
	const struct blockinfo *bi = m->bi;
	size_t i;

	if (!m->long_names)
		return false;
	if (m->root_dev && STREQ(m->root_dev, dev))
		return true;
	for (i = 0; i < bi->n_disks; i++)
		if (STREQ(bi->disks[i].dev, dev))
			return true;
	for (i = 0; i < m->inst->n_bdms; i++) {
		const char *d = bdm_dev(&m->inst->bdms[i]);

		if (d && STREQ(d, dev))
			return true;
	}
	return false;
}

/* True if dev is already in the mapping (given names of BDMs not yet
 * mapped do not count). */
static bool
dev_in_mapping(const struct mapctx *m, const char *dev)
{
	const struct blockinfo *bi = m->bi;
	int p, l;

	if (dev_slot(dev, &p, &l))
		return (m->used[p] >> l) & 1u;
	if (m->root_dev && STREQ(m->root_dev, dev))
		return true;
	for (size_t i = 0; i < bi->n_disks; i++)
		if (STREQ(bi->disks[i].dev, dev))
			return true;
	return false;
}

static void
dev_mark_used(struct mapctx *m, const char *dev)
{
	int p, l;

	if (dev_slot(dev, &p, &l))
		m->used[p] |= 1u << l;
	else
		m->long_names = true;
}

/*
 * find_disk_dev_for_disk_bus: the first name on bus that is neither in the
 * mapping nor given to some BDM. IDE holds 4 devices; other buses stop at
 * max_disk_devices_to_attach when that is set. field names the disk at
 * fault. Returns 0 or -EINVAL.
 */
static int
dev_pick(struct mapctx *m, enum bdm_bus bus, const char *field,
    char out[BLOCKINFO_DEV_MAX], struct err *e)
{
	int p = bus_prefix(bus);
	long max = bus == BDM_BUS_IDE ? IDE_MAX_DEVICES
				      : m->lim->max_disk_devices_to_attach;
	uint32_t taken = m->used[p] | m->given[p];

	/* 18278 names: a..zzz, as Nova's generate_device_letter */
	for (unsigned idx = 0; idx < 18278; idx++) {
		if (max >= 0 && idx >= (unsigned long)max)
			return err_set_field(e, -EINVAL, field,
			    "too many disk devices on bus %s (maximum %ld)",
			    bus_name(bus), max);
		if (idx < 26) {
			if ((taken >> idx) & 1u)
				continue;
			dev_generate(p, idx, out);
			return 0;
		}
		dev_generate(p, idx, out);
		if (!long_name_taken(m, out))
			return 0;
	}
	return err_set_field(
	    e, -EINVAL, field, "no free device name on bus %s", bus_name(bus));
}

/* get_disk_bus_for_disk_dev: hd -> ide, sd -> scsi, vd -> virtio. */
static enum bdm_bus
bus_for_dev(const char *dev)
{
	switch (dev[0]) {
	case 'h':
		return BDM_BUS_IDE;
	case 's':
		return BDM_BUS_SCSI;
	default:
		return BDM_BUS_VIRTIO;
	}
}

/*
 * get_info_from_bdm: bus, device type and target name of BDM i. Where Nova
 * passes the instance's disk bus (local is true: the root, ephemerals and
 * swap), a BDM without disk_bus takes it; a volume takes the bus its
 * device name implies, else the bus for its device type. As a
 * deliberate difference from Nova, a cdrom without disk_bus gets the cdrom
 * bus and a lun gets scsi (Nova puts a root cdrom on virtio and fails on a
 * lun). Marks the name used. Returns 0 or -EINVAL.
 */
static int
info_from_bdm(
    struct mapctx *m, size_t i, bool local, struct devinfo *ret, struct err *e)
{
	const struct bdm *b = &m->inst->bdms[i];
	const struct blockinfo *bi = m->bi;
	const char *given = bdm_dev(b);
	char field[FIELD_MAX];
	struct devinfo d = {.bus = b->disk_bus, .type = b->device_type};
	int r;

	if (d.type == BDM_DEVICE_UNSET)
		d.type = BDM_DEVICE_DISK;
	if (d.bus == BDM_BUS_UNSET) {
		if (d.type == BDM_DEVICE_LUN)
			d.bus = BDM_BUS_SCSI;
		else if (d.type == BDM_DEVICE_CDROM)
			d.bus = given && !local ? bus_for_dev(given)
						: bi->cdrom_bus;
		else if (given && !local)
			d.bus = bus_for_dev(given);
		else
			d.bus = bi->disk_bus;
	}
	if (given) {
		if (d.bus == BDM_BUS_IDE && given[0] == 'h' &&
		    (strlen(given) != 3 || given[2] - 'a' >= IDE_MAX_DEVICES))
			return err_set_field(e, -EINVAL,
			    bdm_field(i, "device_name", field),
			    "device_name '%s': the IDE bus holds %d devices "
			    "(hda to hdd)",
			    b->device_name, IDE_MAX_DEVICES);
		if (dev_in_mapping(m, given))
			return err_set_field(e, -EINVAL,
			    bdm_field(i, "device_name", field),
			    "device_name '%s' is taken by another disk",
			    b->device_name);
		memcpy(d.dev, given, strlen(given) + 1);
	} else if ((r = dev_pick(
			m, d.bus, "block_device_mapping_v2", d.dev, e)) < 0)
		/* the combination is at fault, not one BDM */
		return r;
	dev_mark_used(m, d.dev);
	*ret = d;
	return 0;
}

/* Size of a local disk: the BDM's, else the flavor's (root and ephemeral
 * GiB, swap MiB). */
static int64_t
disk_size(
    const struct instance *inst, const struct bdm *b, enum blockinfo_kind kind)
{
	if (b->volume_size != BDM_SIZE_NONE && b->volume_size > 0)
		return b->volume_size;
	switch (kind) {
	case BLOCKINFO_LOCAL_ROOT:
		return inst->flavor.root_gb > 0 ? inst->flavor.root_gb
						: BDM_SIZE_NONE;
	case BLOCKINFO_EPHEMERAL:
		return inst->flavor.ephemeral_gb;
	case BLOCKINFO_SWAP:
		return inst->flavor.swap;
	default:
		return b->volume_size;
	}
}

static enum blockinfo_kind
volume_kind(const struct bdm *b)
{
	switch (b->source_type) {
	case BDM_SOURCE_SNAPSHOT:
		return BLOCKINFO_SNAPSHOT;
	case BDM_SOURCE_IMAGE:
		return BLOCKINFO_IMAGE;
	case BDM_SOURCE_BLANK:
		return BLOCKINFO_BLANK;
	default:
		return BLOCKINFO_VOLUME;
	}
}

/* Appends a disk for BDM i with its mapping info d. */
static struct blockinfo_disk *
disk_add(struct mapctx *m, size_t i, enum blockinfo_kind kind, const char *name,
    const struct devinfo *d)
{
	struct blockinfo *bi = m->bi;
	struct blockinfo_disk *disk = &bi->disks[bi->n_disks++];
	const struct bdm *b = &m->inst->bdms[i];

	disk->kind = kind;
	disk->bdm_index = (int)i;
	memcpy(disk->uuid, b->uuid, UUID_STR_LEN);
	disk->name = name;
	memcpy(disk->dev, d->dev, sizeof(disk->dev));
	memcpy(disk->device_name, DEVP, DEVP_LEN);
	memcpy(disk->device_name + DEVP_LEN, d->dev, sizeof(d->dev));
	disk->bus = d->bus;
	disk->type = d->type;
	/* libvirt counts from 1; the image root is always boot_index 0.
	 * Ephemerals and swap never boot (their DriverBlockDevice has no
	 * boot_index). */
	if (kind == BLOCKINFO_LOCAL_ROOT)
		disk->boot_order = 1;
	else if (kind == BLOCKINFO_EPHEMERAL || kind == BLOCKINFO_SWAP)
		disk->boot_order = 0;
	else
		disk->boot_order = b->boot_index >= 0 ? b->boot_index + 1 : 0;
	disk->size = disk_size(m->inst, b, kind);
	disk->guest_format = b->guest_format;
	disk->dev_picked = bdm_dev(b) == NULL;
	return disk;
}

/* Image properties: the default buses, q35 and the SCSI model. */
static int
props_apply(const struct image_props *p, struct blockinfo *bi, struct err *e)
{
	enum bdm_bus bus;

	bi->q35 = p->hw_machine_type && strstr(p->hw_machine_type, "q35");
	bi->virtio_scsi =
	    p->hw_scsi_model && STREQ(p->hw_scsi_model, "virtio-scsi");
	bi->disk_bus = BDM_BUS_VIRTIO;
	bi->cdrom_bus = bi->q35 ? BDM_BUS_SATA : BDM_BUS_IDE;
	if (p->hw_disk_bus) {
		if (bdm_bus_from_string(p->hw_disk_bus, &bus) < 0 ||
		    bus == BDM_BUS_UNSET)
			return err_set_field(e, -EINVAL,
			    "image_meta.properties.hw_disk_bus",
			    "hw_disk_bus: expected virtio, scsi, sata or ide");
		bi->disk_bus = bus;
	}
	if (p->hw_cdrom_bus) {
		if (bdm_bus_from_string(p->hw_cdrom_bus, &bus) < 0 ||
		    bus == BDM_BUS_UNSET)
			return err_set_field(e, -EINVAL,
			    "image_meta.properties.hw_cdrom_bus",
			    "hw_cdrom_bus: expected scsi, sata or ide");
		bi->cdrom_bus = bus;
	}
	return 0;
}

/*
 * The serial a disk on bus carries for id, as the guest will see it: id
 * whole on SCSI (at most 36 characters), its first 20 characters on
 * virtio, SATA and IDE. Returns 0 with out filled, or -EINVAL (out
 * untouched) if id is NULL, empty or has characters outside
 * [A-Za-z0-9_.+-].
 */
int
blockinfo_serial(enum bdm_bus bus, const char *id,
    char out[BLOCKINFO_SERIAL_MAX], struct err *e)
{
	size_t len;

	if (id == NULL || !util_serial_valid(id))
		/* id is not echoed: it may hold anything */
		return err_set(
		    e, -EINVAL, "a serial holds only letters, digits and _.+-");
	len = strlen(id);
	if (len > (bus == BDM_BUS_SCSI ? SERIAL_SCSI : SERIAL_SHORT))
		len = bus == BDM_BUS_SCSI ? SERIAL_SCSI : SERIAL_SHORT;
	memcpy(out, id, len);
	out[len] = '\0';
	return 0;
}

/* The /dev/disk/by-id path of a disk of type on bus with serial, as udev
 * names it in the guest (60-persistent-storage.rules): virtio-<serial>,
 * scsi-0QEMU_QEMU_HARDDISK_<serial> (QEMU_CD-ROM for a SCSI cdrom),
 * ata-QEMU_HARDDISK_<serial> (QEMU_DVD-ROM for an ATA cdrom). An empty
 * serial gives "". */
void
blockinfo_by_id_type(enum bdm_bus bus, enum bdm_device_type type,
    const char *serial, char out[BLOCKINFO_BYID_MAX])
{
	bool cd = type == BDM_DEVICE_CDROM;
	const char *pre;
	size_t np, ns;

	if (serial == NULL || serial[0] == '\0') {
		out[0] = '\0';
		return;
	}
	switch (bus) {
	case BDM_BUS_SCSI:
		pre = cd ? "/dev/disk/by-id/scsi-0QEMU_QEMU_CD-ROM_"
			 : "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_";
		break;
	case BDM_BUS_SATA:
	case BDM_BUS_IDE:
		pre = cd ? "/dev/disk/by-id/ata-QEMU_DVD-ROM_"
			 : "/dev/disk/by-id/ata-QEMU_HARDDISK_";
		break;
	default:
		pre = "/dev/disk/by-id/virtio-";
		break;
	}
	/* memcpy, not snprintf: this runs for every disk of every request */
	np = strlen(pre);
	ns = strnlen(serial, BLOCKINFO_BYID_MAX - 1 - np);
	memcpy(out, pre, np);
	memcpy(out + np, serial, ns);
	out[np + ns] = '\0';
}

/* blockinfo_by_id_type for a disk (not a cdrom). */
void
blockinfo_by_id(
    enum bdm_bus bus, const char *serial, char out[BLOCKINFO_BYID_MAX])
{
	blockinfo_by_id_type(bus, BDM_DEVICE_DISK, serial, out);
}

/*
 * The serial and by-id path of every disk: the BDM uuid for local disks,
 * the volume id for volumes, none for a lun and the config drive; no two
 * disks of the instance alike. Returns 0, -EINVAL (bad characters), or
 * -EEXIST (two disks with one serial).
 */
static int
serials_assign(const struct instance *inst, struct blockinfo *bi, struct err *e)
{
	char field[FIELD_MAX];
	size_t i, k;
	int r;

	for (i = 0; i < bi->n_disks; i++) {
		struct blockinfo_disk *d = &bi->disks[i];
		const struct bdm *b;
		const char *id, *fname;

		if (d->bdm_index < 0 || d->type == BDM_DEVICE_LUN)
			continue;
		b = &inst->bdms[d->bdm_index];
		if (b->destination_type == BDM_DEST_VOLUME) {
			id = b->volume_id;
			fname = b->source_type == BDM_SOURCE_VOLUME
			    ? "uuid"
			    : "volume_id";
		} else {
			id = b->uuid;
			fname = "bdm_uuid";
		}
		if (id == NULL || id[0] == '\0')
			return err_set_field(e, -EINVAL,
			    bdm_field((size_t)d->bdm_index, fname, field),
			    "%s: required for a serial", fname);
		if ((r = blockinfo_serial(d->bus, id, d->serial, NULL)) < 0)
			return err_set_field(e, r,
			    bdm_field((size_t)d->bdm_index, fname, field),
			    "%s: a disk serial holds only letters, digits "
			    "and _.+-",
			    fname);
		for (k = 0; k < i; k++)
			if (bi->disks[k].serial[0] &&
			    STREQ(bi->disks[k].serial, d->serial))
				return err_set_field(e, -EEXIST,
				    bdm_field(
					(size_t)d->bdm_index, fname, field),
				    "serial '%s' is already used by disk %s",
				    d->serial, bi->disks[k].dev);
		blockinfo_by_id_type(d->bus, d->type, d->serial, d->by_id);
	}
	return 0;
}

/* One allocation: the struct, disks[n] and the two role arrays. */
static struct blockinfo *
blockinfo_alloc(size_t n)
{
	size_t sz = sizeof(struct blockinfo) +
	    n *
		(sizeof(struct blockinfo_disk) +
		    2 * sizeof(struct blockinfo_disk *));
	struct blockinfo *bi = calloc(1, sz);

	if (bi == NULL)
		return NULL;
	bi->disks = (struct blockinfo_disk *)(bi + 1);
	bi->ephemerals = (struct blockinfo_disk **)(bi->disks + n);
	bi->volumes = bi->ephemerals + n;
	return bi;
}

/* Frees bi and the strings its disks own; accepts NULL; returns NULL. */
struct blockinfo *
blockinfo_free(struct blockinfo *bi)
{
	if (bi == NULL)
		return NULL;
	for (size_t i = 0; i < bi->n_disks; i++) {
		free(bi->disks[i].conn_type);
		free(bi->disks[i].conn_path);
	}
	free(bi);
	return NULL;
}

DEFINE_FREEP(struct blockinfo, blockinfo_free)

/* Records the names the BDMs ask for (Nova's pre_assigned_device_names),
 * so that no picked name takes one. Returns 0 or -EINVAL for a malformed
 * name. */
static int
given_names_reserve(struct mapctx *m, struct err *e)
{
	char field[FIELD_MAX];
	int p, l;

	for (size_t i = 0; i < m->inst->n_bdms; i++) {
		const char *d = bdm_dev(&m->inst->bdms[i]);

		if (d == NULL)
			continue;
		if (!dev_well_formed(d))
			return err_set_field(e, -EINVAL,
			    bdm_field(i, "device_name", field),
			    "device_name: expected /dev/ and vd, sd or hd and "
			    "letters, e.g. /dev/vdb");
		if (dev_slot(d, &p, &l))
			m->given[p] |= 1u << l;
		else
			m->long_names = true;
	}
	return 0;
}

/* The volume's source from connection_info, as read once before (bdm_json
 * when parsing the request, the store when loading the row) and kept in
 * b. */
static int
conn_source(
    const struct bdm *b, size_t i, struct blockinfo_disk *disk, struct err *e)
{
	char field[FIELD_MAX];

	if (b->conn_type != NULL && b->conn_path != NULL &&
	    b->connection_info != NULL) {
		if ((disk->conn_type = strdup(b->conn_type)) == NULL ||
		    (disk->conn_path = strdup(b->conn_path)) == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		return 0;
	}
	if (b->connection_info == NULL)
		return err_set_field(e, -EINVAL,
		    bdm_field(i, "connection_info", field),
		    "connection_info: required for a volume");
	return err_set_field(e, -EINVAL, bdm_field(i, "connection_info", field),
	    "connection_info: expected driver_volume_type file or block and "
	    "data.device_path");
}

/*
 * The mapping itself, without touching inst: _get_disk_mapping in order
 * (root first, then ephemerals, swap, volumes and the config drive), each
 * disk appended to disks[] in block_device_info order.
 */
static int
build(const struct instance *inst, const struct bdm_limits *lim,
    struct blockinfo **ret, struct err *e)
{
	_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
	static const enum bdm_source vol_order[] = {BDM_SOURCE_VOLUME,
	    BDM_SOURCE_SNAPSHOT, BDM_SOURCE_IMAGE, BDM_SOURCE_BLANK};
	static const struct bdm_limits deflim = BDM_LIMITS_DEFAULT;
	struct mapctx m = {.inst = inst, .lim = lim ? lim : &deflim};
	struct devinfo root = {{0}};
	char field[FIELD_MAX];
	long image = -1, swap = -1, root_vol = -1;
	size_t i, n_eph = 0, n = inst->n_bdms + (inst->config_drive ? 1 : 0);
	int r;

	bi = blockinfo_alloc(n ? n : 1);
	if (bi == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	m.bi = bi;
	if ((r = props_apply(&inst->props, bi, e)) < 0)
		return r;

	/* convert_local_images / convert_swap / convert_ephemerals */
	for (i = 0; i < inst->n_bdms; i++) {
		const struct bdm *b = &inst->bdms[i];

		if (b->destination_type == BDM_DEST_VOLUME)
			continue;
		if (b->destination_type != BDM_DEST_LOCAL ||
		    (b->source_type != BDM_SOURCE_IMAGE &&
			b->source_type != BDM_SOURCE_BLANK))
			return err_set_field(e, -EINVAL,
			    bdm_field(i, "destination_type", field),
			    "source_type %s cannot have destination_type %s",
			    bdm_source_to_string(b->source_type),
			    bdm_dest_to_string(b->destination_type));
		if (b->source_type == BDM_SOURCE_IMAGE) {
			if (image >= 0 || b->boot_index != 0)
				return err_set_field(e, -EINVAL,
				    bdm_field(i, "boot_index", field),
				    "an image with destination_type local "
				    "must be the root disk (boot_index 0)");
			image = (long)i;
		} else if (bdm_is_swap(b)) {
			if (swap >= 0)
				return err_set_field(e, -EINVAL,
				    bdm_field(i, "guest_format", field),
				    "more than one swap disk");
			swap = (long)i;
		} else if (++n_eph > MAX_EPHEMERALS)
			return err_set_field(e, -EINVAL,
			    bdm_field(i, NULL, field),
			    "more than %d ephemeral disks", MAX_EPHEMERALS);
	}
	/* get_root_bdm: the image, else the first bootable volume in
	 * convert_all_volumes order */
	for (size_t s = 0; image < 0 && root_vol < 0 && s < 4; s++)
		for (i = 0; i < inst->n_bdms; i++) {
			const struct bdm *b = &inst->bdms[i];

			if (b->destination_type == BDM_DEST_VOLUME &&
			    b->source_type == vol_order[s] &&
			    b->boot_index == 0) {
				root_vol = (long)i;
				break;
			}
		}
	if (image < 0 && root_vol < 0)
		return err_set_field(e, -EINVAL, "block_device_mapping_v2",
		    "no root disk: boot_index 0 must be an image or a volume");

	if ((r = given_names_reserve(&m, e)) < 0)
		return r;

	/* get_root_info */
	if ((r = info_from_bdm(&m, (size_t)(image >= 0 ? image : root_vol),
		 true, &root, e)) < 0)
		return r;
	m.root_dev = root.dev;
	memcpy(bi->root_device_name, DEVP, DEVP_LEN);
	memcpy(bi->root_device_name + DEVP_LEN, root.dev, sizeof(root.dev));
	if (image >= 0)
		bi->local_root = disk_add(
		    &m, (size_t)image, BLOCKINFO_LOCAL_ROOT, "disk", &root);

	for (i = 0; i < inst->n_bdms; i++) {
		const struct bdm *b = &inst->bdms[i];
		struct devinfo d;

		if (!bdm_is_ephemeral(b))
			continue;
		if ((r = info_from_bdm(&m, i, true, &d, e)) < 0)
			return r;
		bi->ephemerals[bi->n_ephemerals] = disk_add(&m, i,
		    BLOCKINFO_EPHEMERAL, eph_names[bi->n_ephemerals], &d);
		bi->n_ephemerals++;
	}

	if (swap >= 0) {
		struct devinfo d;

		if ((r = info_from_bdm(&m, (size_t)swap, true, &d, e)) < 0)
			return r;
		bi->swap =
		    disk_add(&m, (size_t)swap, BLOCKINFO_SWAP, "disk.swap", &d);
	}

	/* convert_all_volumes: volumes, snapshots, images, blanks */
	for (size_t s = 0; s < ELEMENTSOF(vol_order); s++)
		for (i = 0; i < inst->n_bdms; i++) {
			const struct bdm *b = &inst->bdms[i];
			struct blockinfo_disk *disk;
			struct devinfo d;

			if (b->destination_type != BDM_DEST_VOLUME ||
			    b->source_type != vol_order[s])
				continue;
			if ((long)i == root_vol) {
				d = root;
				m.root_dev = NULL;
			} else if ((r = info_from_bdm(&m, i, false, &d, e)) < 0)
				return r;
			disk = disk_add(&m, i, volume_kind(b), NULL, &d);
			bi->volumes[bi->n_volumes++] = disk;
			if ((r = conn_source(b, i, disk, e)) < 0)
				return r;
		}

	if (inst->config_drive) {
		struct blockinfo_disk *disk = &bi->disks[bi->n_disks];

		/* Nova's default config_drive_format, iso9660: a cdrom */
		if ((r = dev_pick(
			 &m, bi->cdrom_bus, "config_drive", disk->dev, e)) < 0)
			return r;
		dev_mark_used(&m, disk->dev);
		bi->n_disks++;
		disk->kind = BLOCKINFO_CONFIG_DRIVE;
		disk->bdm_index = -1;
		disk->name = "disk.config";
		memcpy(disk->device_name, DEVP, DEVP_LEN);
		memcpy(
		    disk->device_name + DEVP_LEN, disk->dev, sizeof(disk->dev));
		disk->bus = bi->cdrom_bus;
		disk->type = BDM_DEVICE_CDROM;
		disk->size = BDM_SIZE_NONE;
		bi->config_drive = disk;
	}

	if ((r = serials_assign(inst, bi, e)) < 0)
		return r;
	*ret = TAKE_PTR(bi);
	return 0;
}

/* _default_block_device_names: the names and buses picked go back into
 * the BDMs that lack them. Returns 0 or -ENOMEM (inst unchanged). */
static int
names_write_back(
    struct instance *inst, const struct blockinfo *bi, struct err *e)
{
	size_t i;

	for (i = 0; i < bi->n_disks; i++) {
		const struct blockinfo_disk *d = &bi->disks[i];
		struct bdm *b;

		if (d->bdm_index < 0 || !d->dev_picked)
			continue;
		b = &inst->bdms[d->bdm_index];
		if (b->device_name != NULL)
			continue;
		b->device_name = strdup(d->device_name);
		if (b->device_name == NULL)
			goto oom;
	}
	for (i = 0; i < bi->n_disks; i++) {
		const struct blockinfo_disk *d = &bi->disks[i];
		struct bdm *b;

		if (d->bdm_index < 0)
			continue;
		b = &inst->bdms[d->bdm_index];
		if (b->disk_bus == BDM_BUS_UNSET)
			b->disk_bus = d->bus;
		if (b->device_type == BDM_DEVICE_UNSET)
			b->device_type = d->type;
	}
	return 0;
oom:
	/* undo the names given by this call: the picked ones */
	while (i-- > 0) {
		const struct blockinfo_disk *d = &bi->disks[i];

		if (d->bdm_index >= 0 && d->dev_picked) {
			struct bdm *b = &inst->bdms[d->bdm_index];

			free(b->device_name);
			b->device_name = NULL;
		}
	}
	return err_set(e, -ENOMEM, "out of memory");
}

/*
 * Builds the driver view and disk mapping of a prepared instance and writes
 * the names and buses it picked back into the BDMs that lack them. The
 * result is owned by the caller (blockinfo_free); inst is left unchanged
 * on failure. Returns 0, -EINVAL (bad or taken device name, too many
 * devices for a bus, no root disk, bad serial, bad connection_info) with
 * the field named in e, -EEXIST (two disks with one serial), -ENOMEM.
 */
int
blockinfo_build(struct instance *inst, const struct bdm_limits *lim,
    struct blockinfo **ret, struct err *e)
{
	_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
	int r;

	if ((r = build(inst, lim, &bi, e)) < 0)
		return r;
	if ((r = names_write_back(inst, bi, e)) < 0)
		return r;
	*ret = TAKE_PTR(bi);
	return 0;
}

/*
 * Picks bus and name for volume b about to be attached to inst, as Nova's
 * LibvirtDriver.get_device_name_for_instance: a device_name given is
 * ignored (Nova logs "Ignoring supplied device name" and clears it), then
 * get_info_from_bdm on the volume: the given disk_bus, else the bus for its
 * device type; the first name on that bus not in the instance's mapping
 * (find_disk_dev_for_disk_bus). Writes device_name, disk_bus and
 * device_type into b. Returns 0, -EINVAL (bus full,
 * max_disk_devices_to_attach reached, instance mapping invalid), -ENOMEM;
 * b is unchanged on failure.
 */
int
blockinfo_pick_attach(const struct instance *inst, struct bdm *b,
    const struct bdm_limits *lim, struct err *e)
{
	static const struct bdm_limits deflim = BDM_LIMITS_DEFAULT;
	_cleanup_(blockinfo_freep) struct blockinfo *bi = NULL;
	struct mapctx m = {.inst = inst, .lim = lim ? lim : &deflim};
	struct devinfo d = {.bus = b->disk_bus, .type = b->device_type};
	char *name = NULL;
	int r;

	if ((r = build(inst, lim, &bi, e)) < 0)
		return r;
	m.bi = bi;
	for (size_t i = 0; i < bi->n_disks; i++)
		dev_mark_used(&m, bi->disks[i].dev);
	if (m.lim->max_disk_devices_to_attach >= 0 &&
	    inst->n_bdms >= (size_t)m.lim->max_disk_devices_to_attach)
		return err_set(e, -EINVAL,
		    "the instance already has %zu disks "
		    "(max_disk_devices_to_attach %d)",
		    inst->n_bdms, m.lim->max_disk_devices_to_attach);
	if (d.type == BDM_DEVICE_UNSET)
		d.type = BDM_DEVICE_DISK;
	if (d.bus == BDM_BUS_UNSET) {
		if (d.type == BDM_DEVICE_LUN)
			d.bus = BDM_BUS_SCSI;
		else
			d.bus = d.type == BDM_DEVICE_CDROM ? bi->cdrom_bus
							   : bi->disk_bus;
	}
	if ((r = dev_pick(&m, d.bus, "device_name", d.dev, e)) < 0)
		return r;
	if (asprintf(&name, DEVP "%s", d.dev) < 0)
		return err_set(e, -ENOMEM, "out of memory");
	free(b->device_name);
	b->device_name = name;
	b->disk_bus = d.bus;
	b->device_type = d.type;
	return 0;
}

/*
 * Nova's get_boot_order: the <os><boot dev=> list ("hd", "cdrom"), each
 * once, in the order of the disks' boot_order. Writes at most 2 entries to
 * ret and returns how many.
 */
size_t
blockinfo_boot_devs(const struct blockinfo *bi, const char *ret[2])
{
	const struct blockinfo_disk *hd = NULL, *cd = NULL;
	size_t n = 0;

	for (size_t i = 0; i < bi->n_disks; i++) {
		const struct blockinfo_disk *d = &bi->disks[i];
		const struct blockinfo_disk **slot =
		    d->type == BDM_DEVICE_CDROM ? &cd : &hd;

		if (d->boot_order <= 0)
			continue;
		if (*slot == NULL || d->boot_order < (*slot)->boot_order)
			*slot = d;
	}
	if (hd && (!cd || hd->boot_order < cd->boot_order)) {
		ret[n++] = "hd";
		if (cd)
			ret[n++] = "cdrom";
	} else if (cd) {
		ret[n++] = "cdrom";
		if (hd)
			ret[n++] = "hd";
	}
	return n;
}
