/*
 * check_blockinfo: the driver view and the disk mapping. Unit tests build
 * their instances the way the daemon does (JSON request ->
 * bdm_json_parse_create -> bdm_instance_prepare -> blockinfo_build). The
 * golden runner takes every request under tests/data/golden/<case>.json
 * (with <case>.config.json for the limits) through the same chain and
 * compares the BDMs, block_device_info and disk mapping with
 * <case>.expected.json, which tests/golden/nova_golden.py derived from
 * Nova's own code (or, for refusals, hyperlet's errno and field). The
 * comparison is of parsed JSON: every key the expectation holds must be
 * there with the same value; keys only hyperlet knows are not compared.
 * UPDATE_GOLDEN=1 rewrites the expectations from hyperlet's output.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "testutil.h"

#define CONN(path)                                                           \
	"\"connection_info\": {\"driver_volume_type\": \"file\", \"data\": " \
	"{\"device_path\": \"" path "\"}}"
#define IMG "6f1b3c2a-0d4e-4f5a-9b8c-7d6e5f4a3b2c"
#define VOL1 "0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11"
#define VOL2 "5e2b8f10-3c4d-4e6f-8a9b-0c1d2e3f4a5b"
#define VOL3 "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
#define ROOT_BDM                                                   \
	"{\"boot_index\": 0, \"source_type\": \"image\", "         \
	"\"destination_type\": \"local\", \"uuid\": \"" IMG "\", " \
	"\"bdm_uuid\": \"bd000001-1111-4222-8333-444444444444\"}"
/* A volume; extra holds more keys, each followed by ", ". */
#define VOL_BDM(id, extra)                                                 \
	"{\"source_type\": \"volume\", \"destination_type\": \"volume\", " \
	"\"uuid\": \"" id "\", " extra CONN("/srv/volumes/" id) "}"
#define FLAVOR(eph, swap)                                                   \
	"\"flavor\": {\"vcpus\": 2, \"memory_mb\": 2048, \"root_gb\": 10, " \
	"\"ephemeral_gb\": " #eph ", \"swap\": " #swap "}"

/* The instance of the benchmark and of design.md: root, ephemeral, swap and
 * two file volumes. */
static const char five_disks[] =
    "{\"name\": \"five\", \"imageRef\": \"" IMG "\", " FLAVOR(20,
	1024) ", "
	      "\"block_device_mapping_v2\": [" ROOT_BDM ", "
	      "{\"boot_index\": -1, \"source_type\": \"blank\", "
	      "\"destination_type\": \"local\", \"guest_format\": \"ext4\", "
	      "\"volume_size\": 20}, "
	      "{\"boot_index\": -1, \"source_type\": \"blank\", "
	      "\"destination_type\": \"local\", \"guest_format\": \"swap\", "
	      "\"volume_size\": 1024}, " VOL_BDM(VOL1, "") ", " VOL_BDM(
		  VOL2, "") "]}";

/* ---- helpers --------------------------------------------------------- */

/* Parses and prepares json into *ret_inst; fails the test on error. */
static struct instance *
prepared(const char *json, const struct bdm_limits *lim)
{
	struct instance *inst = NULL;
	struct err e = {0};
	int r;

	r = bdm_json_parse_create(json, strlen(json), &inst, &e);
	ck_assert_msg(r == 0, "parse: %d %s (%s)", r, e.msg, e.field);
	r = bdm_instance_prepare(inst, lim, &e);
	ck_assert_msg(r == 0, "prepare: %d %s (%s)", r, e.msg, e.field);
	return inst;
}

/* The whole chain; fails the test unless blockinfo_build succeeds. */
static struct blockinfo *
built(
    const char *json, const struct bdm_limits *lim, struct instance **ret_inst)
{
	struct instance *inst = prepared(json, lim);
	struct blockinfo *bi = NULL;
	struct err e = {0};
	int r;

	r = blockinfo_build(inst, lim, &bi, &e);
	ck_assert_msg(r == 0, "build: %d %s (%s)", r, e.msg, e.field);
	ck_assert_ptr_nonnull(bi);
	*ret_inst = inst;
	return bi;
}

/* The chain, expecting blockinfo_build to fail with code and field. */
static void
build_fails(const char *json, const struct bdm_limits *lim, int code,
    const char *field, const char *msg_part)
{
	struct instance *inst = prepared(json, lim);
	struct blockinfo *bi = (struct blockinfo *)0x1;
	struct err e = {0};
	int r;

	r = blockinfo_build(inst, lim, &bi, &e);
	ck_assert_msg(
	    r == code, "build gave %d (%s), expected %d", r, e.msg, code);
	ck_assert_ptr_eq(bi, (struct blockinfo *)0x1);
	ck_assert_int_eq(e.code, code);
	if (field)
		ck_assert_str_eq(e.field, field);
	if (msg_part)
		ck_assert_msg(strstr(e.msg, msg_part),
		    "message '%s' lacks '%s'", e.msg, msg_part);
	for (size_t i = 0; i < inst->n_bdms; i++)
		ck_assert_msg(inst->bdms[i].device_name == NULL ||
			inst->bdms[i].device_name[0] != '\0',
		    "a failed build touched BDM %zu", i);
	instance_free(inst);
}

/* ---- blockinfo_serial / blockinfo_by_id ------------------------------- */

START_TEST(test_serial_is_whole_on_scsi)
{
	char s[BLOCKINFO_SERIAL_MAX];

	ck_assert_int_eq(blockinfo_serial(BDM_BUS_SCSI, VOL1, s, NULL), 0);
	ck_assert_str_eq(s, VOL1);
}
END_TEST

START_TEST(test_serial_is_cut_to_20_on_virtio_sata_and_ide)
{
	static const enum bdm_bus buses[] = {
	    BDM_BUS_VIRTIO, BDM_BUS_SATA, BDM_BUS_IDE};
	char s[BLOCKINFO_SERIAL_MAX];

	for (size_t i = 0; i < ELEMENTSOF(buses); i++) {
		ck_assert_int_eq(blockinfo_serial(buses[i], VOL1, s, NULL), 0);
		ck_assert_str_eq(s, "0c3a9d52-7f1e-4b2a-9");
	}
}
END_TEST

START_TEST(test_serial_keeps_short_ids_and_cuts_scsi_at_36)
{
	char s[BLOCKINFO_SERIAL_MAX];

	ck_assert_int_eq(blockinfo_serial(BDM_BUS_VIRTIO, "vol-1", s, NULL), 0);
	ck_assert_str_eq(s, "vol-1");
	ck_assert_int_eq(
	    blockinfo_serial(BDM_BUS_SCSI,
		"0123456789abcdefghij0123456789ABCDEFGHIJ", s, NULL),
	    0);
	ck_assert_str_eq(s, "0123456789abcdefghij0123456789ABCDEF");
}
END_TEST

START_TEST(test_serial_refuses_characters_outside_the_safe_set)
{
	static const char *const bad[] = {
	    "vol 1", "vol/1", "vol\"1", "", "vol<1>", "vol\n"};
	char s[BLOCKINFO_SERIAL_MAX] = "untouched";
	struct err e = {0};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		err_clear(&e);
		ck_assert_int_eq(
		    blockinfo_serial(BDM_BUS_VIRTIO, bad[i], s, &e), -EINVAL);
		ck_assert_int_eq(e.code, -EINVAL);
		ck_assert_str_eq(s, "untouched");
	}
	ck_assert_int_eq(
	    blockinfo_serial(BDM_BUS_SCSI, NULL, s, NULL), -EINVAL);
}
END_TEST

START_TEST(test_by_id_follows_udev_names_per_bus)
{
	char p[BLOCKINFO_BYID_MAX];

	blockinfo_by_id(BDM_BUS_VIRTIO, "0c3a9d52-7f1e-4b2a-9", p);
	ck_assert_str_eq(p, "/dev/disk/by-id/virtio-0c3a9d52-7f1e-4b2a-9");
	blockinfo_by_id(BDM_BUS_SCSI, VOL1, p);
	ck_assert_str_eq(p, "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_" VOL1);
	blockinfo_by_id(BDM_BUS_SATA, "abc", p);
	ck_assert_str_eq(p, "/dev/disk/by-id/ata-QEMU_HARDDISK_abc");
	blockinfo_by_id(BDM_BUS_IDE, "abc", p);
	ck_assert_str_eq(p, "/dev/disk/by-id/ata-QEMU_HARDDISK_abc");
	blockinfo_by_id(BDM_BUS_VIRTIO, "", p);
	ck_assert_str_eq(p, "");
}
END_TEST

START_TEST(test_by_id_type_names_cdroms_as_qemu_shows_them)
{
	char p[BLOCKINFO_BYID_MAX];

	blockinfo_by_id_type(BDM_BUS_IDE, BDM_DEVICE_CDROM, "abc", p);
	ck_assert_str_eq(p, "/dev/disk/by-id/ata-QEMU_DVD-ROM_abc");
	blockinfo_by_id_type(BDM_BUS_SATA, BDM_DEVICE_CDROM, "abc", p);
	ck_assert_str_eq(p, "/dev/disk/by-id/ata-QEMU_DVD-ROM_abc");
	blockinfo_by_id_type(BDM_BUS_SCSI, BDM_DEVICE_CDROM, "abc", p);
	ck_assert_str_eq(p, "/dev/disk/by-id/scsi-0QEMU_QEMU_CD-ROM_abc");
	blockinfo_by_id_type(BDM_BUS_SCSI, BDM_DEVICE_DISK, "abc", p);
	ck_assert_str_eq(p, "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_abc");
}
END_TEST

START_TEST(test_kind_names_match_the_api)
{
	ck_assert_str_eq(
	    blockinfo_kind_to_string(BLOCKINFO_LOCAL_ROOT), "local_root");
	ck_assert_str_eq(
	    blockinfo_kind_to_string(BLOCKINFO_CONFIG_DRIVE), "config_drive");
	ck_assert_ptr_null(blockinfo_kind_to_string((enum blockinfo_kind)99));
}
END_TEST

/* ---- blockinfo_build -------------------------------------------------- */

START_TEST(test_build_maps_five_disks_in_nova_order)
{
	struct instance *inst;
	struct blockinfo *bi = built(five_disks, NULL, &inst);
	static const char *const devs[] = {"vda", "vdb", "vdc", "vdd", "vde"};
	static const char *const names[] = {
	    "disk", "disk.eph0", "disk.swap", NULL, NULL};

	ck_assert_uint_eq(bi->n_disks, 5);
	ck_assert_str_eq(bi->root_device_name, "/dev/vda");
	ck_assert_int_eq(bi->disk_bus, BDM_BUS_VIRTIO);
	ck_assert_int_eq(bi->cdrom_bus, BDM_BUS_IDE);
	ck_assert(!bi->q35 && !bi->virtio_scsi);
	for (size_t i = 0; i < 5; i++) {
		const struct blockinfo_disk *d = &bi->disks[i];

		ck_assert_str_eq(d->dev, devs[i]);
		ck_assert_int_eq(d->bus, BDM_BUS_VIRTIO);
		if (names[i])
			ck_assert_str_eq(d->name, names[i]);
		else
			ck_assert_ptr_null(d->name);
	}
	ck_assert_ptr_eq(bi->local_root, &bi->disks[0]);
	ck_assert_uint_eq(bi->n_ephemerals, 1);
	ck_assert_ptr_eq(bi->ephemerals[0], &bi->disks[1]);
	ck_assert_ptr_eq(bi->swap, &bi->disks[2]);
	ck_assert_uint_eq(bi->n_volumes, 2);
	ck_assert_ptr_eq(bi->volumes[1], &bi->disks[4]);
	ck_assert_ptr_null(bi->config_drive);
	ck_assert_int_eq(bi->disks[0].kind, BLOCKINFO_LOCAL_ROOT);
	ck_assert_int_eq(bi->disks[1].kind, BLOCKINFO_EPHEMERAL);
	ck_assert_int_eq(bi->disks[2].kind, BLOCKINFO_SWAP);
	ck_assert_int_eq(bi->disks[3].kind, BLOCKINFO_VOLUME);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_gives_local_disks_their_bdm_uuid_as_serial)
{
	struct instance *inst;
	struct blockinfo *bi = built(five_disks, NULL, &inst);

	for (size_t i = 0; i < 3; i++) {
		const struct blockinfo_disk *d = &bi->disks[i];
		const struct bdm *b = &inst->bdms[d->bdm_index];
		char want[BLOCKINFO_BYID_MAX];

		ck_assert_str_eq(d->uuid, b->uuid);
		ck_assert_uint_eq(strlen(d->serial), 20);
		ck_assert(strncmp(d->serial, b->uuid, 20) == 0);
		snprintf(
		    want, sizeof(want), "/dev/disk/by-id/virtio-%s", d->serial);
		ck_assert_str_eq(d->by_id, want);
	}
	ck_assert_str_eq(bi->disks[0].serial, "bd000001-1111-4222-8");
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_gives_volumes_their_volume_id_as_serial)
{
	struct instance *inst;
	struct blockinfo *bi = built(five_disks, NULL, &inst);

	ck_assert_str_eq(bi->volumes[0]->serial, "0c3a9d52-7f1e-4b2a-9");
	ck_assert_str_eq(bi->volumes[0]->by_id,
	    "/dev/disk/by-id/virtio-0c3a9d52-7f1e-4b2a-9");
	ck_assert_str_eq(bi->volumes[1]->serial, "5e2b8f10-3c4d-4e6f-8");
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_writes_scsi_serials_whole)
{
	static const char json[] =
	    "{\"name\": \"s\", \"imageRef\": \"" IMG "\", " FLAVOR(0,
		0) ", "
		   "\"image_meta\": {\"properties\": {\"hw_disk_bus\": \"scsi\", "
		   "\"hw_scsi_model\": \"virtio-scsi\"}}, "
		   "\"block_device_mapping_v2\": [" ROOT_BDM
		   ", " VOL_BDM(VOL1, "") "]}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);

	ck_assert(bi->virtio_scsi);
	ck_assert_str_eq(bi->disks[0].dev, "sda");
	ck_assert_str_eq(
	    bi->disks[0].serial, "bd000001-1111-4222-8333-444444444444");
	ck_assert_str_eq(bi->disks[1].dev, "sdb");
	ck_assert_int_eq(bi->disks[1].bus, BDM_BUS_SCSI);
	ck_assert_str_eq(bi->disks[1].serial, VOL1);
	ck_assert_str_eq(bi->disks[1].by_id,
	    "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_" VOL1);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_reads_the_volume_source_from_connection_info)
{
	struct instance *inst;
	struct blockinfo *bi = built(five_disks, NULL, &inst);

	ck_assert_str_eq(bi->volumes[0]->conn_type, "file");
	ck_assert_str_eq(bi->volumes[0]->conn_path, "/srv/volumes/" VOL1);
	ck_assert_ptr_null(bi->disks[0].conn_type);
	ck_assert_ptr_null(bi->disks[0].conn_path);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

/* Parsing keeps each volume's source with its BDM (the store does when it
 * loads a row); blockinfo never reads the connection_info text itself, so
 * a volume BDM without its source is refused, naming the field. */
START_TEST(test_build_refuses_a_volume_whose_source_was_not_read)
{
	struct instance *inst = prepared(five_disks, NULL);
	struct blockinfo *bi = NULL;
	struct err e = {0};
	size_t n_vol = 0, last = 0;

	for (size_t i = 0; i < inst->n_bdms; i++) {
		struct bdm *b = &inst->bdms[i];

		if (!bdm_is_volume(b))
			continue;
		n_vol++;
		ck_assert_str_eq(b->conn_type, "file");
		ck_assert_ptr_nonnull(b->conn_path);
		last = i;
	}
	ck_assert_uint_eq(n_vol, 2);
	free(inst->bdms[last].conn_type);
	free(inst->bdms[last].conn_path);
	inst->bdms[last].conn_type = inst->bdms[last].conn_path = NULL;
	ck_assert_int_eq(blockinfo_build(inst, NULL, &bi, &e), -EINVAL);
	ck_assert_ptr_null(bi);
	ck_assert_ptr_nonnull(strstr(e.field, ".connection_info"));
	instance_free(inst);
}
END_TEST

/* bdm_copy takes the kept source along, as its own strings. */
START_TEST(test_build_of_copied_bdms_keeps_the_volume_source)
{
	struct instance *inst = prepared(five_disks, NULL);
	struct blockinfo *bi = NULL;
	struct err e = {0};

	for (size_t i = 0; i < inst->n_bdms; i++) {
		struct bdm *a = &inst->bdms[i], b;

		memset(&b, 0, sizeof(b));
		ck_assert_int_eq(bdm_copy(a, &b, &e), 0);
		if (a->conn_type == NULL)
			ck_assert_ptr_null(b.conn_type);
		else {
			ck_assert_str_eq(b.conn_type, a->conn_type);
			ck_assert_str_eq(b.conn_path, a->conn_path);
			ck_assert_ptr_ne(b.conn_type, a->conn_type);
			ck_assert_ptr_ne(b.conn_path, a->conn_path);
		}
		bdm_clear(a);
		*a = b; /* the instance now holds only copies */
	}
	ck_assert_int_eq(blockinfo_build(inst, NULL, &bi, &e), 0);
	ck_assert_str_eq(bi->volumes[1]->conn_path, "/srv/volumes/" VOL2);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_writes_picked_names_and_buses_back)
{
	struct instance *inst;
	struct blockinfo *bi = built(five_disks, NULL, &inst), *again = NULL;
	struct err e = {0};

	for (size_t i = 0; i < bi->n_disks; i++) {
		const struct blockinfo_disk *d = &bi->disks[i];
		const struct bdm *b = &inst->bdms[d->bdm_index];

		ck_assert(d->dev_picked);
		ck_assert_str_eq(b->device_name, d->device_name);
		ck_assert_int_eq(b->disk_bus, d->bus);
	}
	/* building from the stored names gives the same mapping */
	ck_assert_int_eq(blockinfo_build(inst, NULL, &again, &e), 0);
	ck_assert_uint_eq(again->n_disks, bi->n_disks);
	for (size_t i = 0; i < bi->n_disks; i++) {
		ck_assert_str_eq(again->disks[i].dev, bi->disks[i].dev);
		ck_assert_str_eq(again->disks[i].serial, bi->disks[i].serial);
		ck_assert(!again->disks[i].dev_picked);
	}
	blockinfo_free(again);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

/* Device names a request gives are dropped and assigned as Nova's libvirt
 * driver does (default_device_names_for_instance), in mapping order. */
START_TEST(test_build_assigns_the_names_a_request_gave)
{
	static const char json[] =
	    "{\"name\": \"n\", \"imageRef\": \"" IMG "\", " FLAVOR(5,
		256) ", "
		     "\"block_device_mapping_v2\": [" ROOT_BDM
		     ", " VOL_BDM(VOL1,
			 "\"device_name\": \"/dev/vdb\", ") ", " VOL_BDM(VOL2,
			 "\"device_name\": \"/dev/vdd\", ") "]}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);

	ck_assert_str_eq(bi->local_root->dev, "vda");
	ck_assert_str_eq(bi->ephemerals[0]->dev, "vdb");
	ck_assert_str_eq(bi->swap->dev, "vdc");
	ck_assert_str_eq(bi->volumes[0]->dev, "vdd");
	ck_assert(bi->volumes[0]->dev_picked);
	ck_assert_str_eq(bi->volumes[1]->dev, "vde");
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_boots_from_volume_without_local_root)
{
	static const char json[] = "{\"name\": \"bfv\", " FLAVOR(
	    5, 0) ", "
		  "\"block_device_mapping_v2\": ["
		  "{\"boot_index\": 0, \"source_type\": \"volume\", "
		  "\"destination_type\": \"volume\", \"uuid\": \"" VOL1
		  "\", " CONN("/srv/v1") "}, " VOL_BDM(
		      VOL2, "\"boot_index\": 1, ") "]}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);

	ck_assert_ptr_null(bi->local_root);
	ck_assert_str_eq(bi->root_device_name, "/dev/vda");
	ck_assert_uint_eq(bi->n_ephemerals, 1);
	ck_assert_str_eq(bi->ephemerals[0]->dev, "vdb");
	ck_assert_uint_eq(bi->n_volumes, 2);
	ck_assert_str_eq(bi->volumes[0]->dev, "vda");
	ck_assert_int_eq(bi->volumes[0]->boot_order, 1);
	ck_assert_str_eq(bi->volumes[1]->dev, "vdc");
	ck_assert_int_eq(bi->volumes[1]->boot_order, 2);
	ck_assert_int_eq(bi->ephemerals[0]->boot_order, 0);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_sizes_local_disks_from_the_flavor)
{
	static const char json[] =
	    "{\"name\": \"f\", \"imageRef\": \"" IMG "\", " FLAVOR(20, 512) "}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);

	ck_assert_int_eq(bi->local_root->size, 10);
	ck_assert_int_eq(bi->local_root->boot_order, 1);
	ck_assert_int_eq(bi->ephemerals[0]->size, 20);
	ck_assert_str_eq(bi->ephemerals[0]->name, "disk.eph0");
	ck_assert_int_eq(bi->swap->size, 512);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_puts_the_config_drive_last_without_serial)
{
	static const char json[] =
	    "{\"name\": \"c\", \"imageRef\": \"" IMG
	    "\", " FLAVOR(0, 0) ", \"config_drive\": true}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);

	ck_assert_ptr_eq(bi->config_drive, &bi->disks[bi->n_disks - 1]);
	ck_assert_str_eq(bi->config_drive->name, "disk.config");
	ck_assert_str_eq(bi->config_drive->dev, "hda");
	ck_assert_int_eq(bi->config_drive->bus, BDM_BUS_IDE);
	ck_assert_int_eq(bi->config_drive->type, BDM_DEVICE_CDROM);
	ck_assert_int_eq(bi->config_drive->bdm_index, -1);
	ck_assert_str_eq(bi->config_drive->serial, "");
	ck_assert_str_eq(bi->config_drive->by_id, "");
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_uses_sata_for_cdroms_on_q35)
{
	static const char json[] =
	    "{\"name\": \"q\", \"imageRef\": \"" IMG "\", " FLAVOR(0,
		0) ", "
		   "\"config_drive\": true, \"image_meta\": {\"properties\": "
		   "{\"hw_machine_type\": \"pc-q35-7.2\"}}, "
		   "\"block_device_mapping_v2\": [" ROOT_BDM
		   ", " VOL_BDM(VOL1, "\"device_type\": \"cdrom\", ") "]}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);

	ck_assert(bi->q35);
	ck_assert_int_eq(bi->cdrom_bus, BDM_BUS_SATA);
	ck_assert_str_eq(bi->volumes[0]->dev, "sda");
	ck_assert_int_eq(bi->volumes[0]->bus, BDM_BUS_SATA);
	ck_assert_str_eq(bi->volumes[0]->by_id,
	    "/dev/disk/by-id/ata-QEMU_DVD-ROM_0c3a9d52-7f1e-4b2a-9");
	ck_assert_str_eq(bi->config_drive->dev, "sdb");
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_gives_a_lun_no_serial)
{
	static const char json[] =
	    "{\"name\": \"l\", \"imageRef\": \"" IMG "\", " FLAVOR(0,
		0) ", "
		   "\"block_device_mapping_v2\": [" ROOT_BDM ", "
		   "{\"boot_index\": -1, \"source_type\": \"volume\", "
		   "\"destination_type\": \"volume\", \"uuid\": \"" VOL1 "\", "
		   "\"device_type\": \"lun\", \"disk_bus\": \"scsi\", "
		   "\"connection_info\": {\"driver_volume_type\": \"block\", "
		   "\"data\": {\"device_path\": \"/dev/sdz\"}}}]}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);

	ck_assert_int_eq(bi->volumes[0]->type, BDM_DEVICE_LUN);
	ck_assert_str_eq(bi->volumes[0]->dev, "sda");
	ck_assert_str_eq(bi->volumes[0]->serial, "");
	ck_assert_str_eq(bi->volumes[0]->by_id, "");
	ck_assert_str_eq(bi->volumes[0]->conn_type, "block");
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_puts_a_cdrom_root_on_the_cdrom_bus)
{
	/* Nova would put it on the disk bus (virtio), which QEMU refuses */
	static const char json[] = "{\"name\": \"iso\", " FLAVOR(0,
	    0) ", "
	       "\"block_device_mapping_v2\": [" VOL_BDM(VOL1,
		   "\"boot_index\": 0, \"device_type\": \"cdrom\", ") ", " VOL_BDM(VOL2,
		   "") "]}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);

	ck_assert_str_eq(bi->root_device_name, "/dev/hda");
	ck_assert_int_eq(bi->volumes[0]->bus, BDM_BUS_IDE);
	ck_assert_int_eq(bi->volumes[0]->boot_order, 1);
	ck_assert_str_eq(bi->volumes[1]->dev, "vda");
	ck_assert_int_eq(inst->bdms[0].disk_bus, BDM_BUS_IDE);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_puts_a_lun_without_bus_on_scsi)
{
	static const char json[] =
	    "{\"name\": \"l\", \"imageRef\": \"" IMG "\", " FLAVOR(0,
		0) ", "
		   "\"block_device_mapping_v2\": [" ROOT_BDM ", "
		   "{\"source_type\": \"volume\", \"destination_type\": \"volume\", "
		   "\"uuid\": \"" VOL1 "\", \"device_type\": \"lun\", "
		   "\"connection_info\": {\"driver_volume_type\": \"block\", "
		   "\"data\": {\"device_path\": \"/dev/sdz\"}}}]}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);

	ck_assert_int_eq(bi->volumes[0]->bus, BDM_BUS_SCSI);
	ck_assert_str_eq(bi->volumes[0]->dev, "sda");
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_refuses_a_fifth_ide_device)
{
	static const char json[] =
	    "{\"name\": \"i\", \"imageRef\": \"" IMG "\", " FLAVOR(5,
		256) ", "
		     "\"image_meta\": {\"properties\": {\"hw_disk_bus\": \"ide\"}}, "
		     "\"block_device_mapping_v2\": [" ROOT_BDM
		     ", " VOL_BDM(VOL1, "") ", " VOL_BDM(VOL2, "") "]}";

	build_fails(json, NULL, -EINVAL, "block_device_mapping_v2",
	    "bus ide (maximum 4)");
}
END_TEST

START_TEST(test_build_refuses_a_config_drive_that_finds_ide_full)
{
	static const char json[] =
	    "{\"name\": \"i\", \"imageRef\": \"" IMG "\", " FLAVOR(5,
		256) ", "
		     "\"config_drive\": true, \"image_meta\": {\"properties\": "
		     "{\"hw_disk_bus\": \"ide\"}}, "
		     "\"block_device_mapping_v2\": [" ROOT_BDM
		     ", " VOL_BDM(VOL1, "\"device_name\": \"/dev/hdd\", ") "]}";

	build_fails(json, NULL, -EINVAL, "config_drive", "maximum 4");
}
END_TEST

START_TEST(test_build_honours_max_disk_devices_to_attach)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;

	lim.max_disk_devices_to_attach = 4;
	build_fails(five_disks, &lim, -EINVAL, "block_device_mapping_v2",
	    "bus virtio (maximum 4)");
	lim.max_disk_devices_to_attach = 5;
	{
		struct instance *inst;
		struct blockinfo *bi = built(five_disks, &lim, &inst);

		ck_assert_uint_eq(bi->n_disks, 5);
		blockinfo_free(bi);
		instance_free(inst);
	}
}
END_TEST

START_TEST(test_build_refuses_a_volume_id_that_cannot_be_a_serial)
{
	struct instance *inst = prepared(five_disks, NULL);
	struct blockinfo *bi = NULL;
	struct err e = {0};

	/* a stored row the API could not have written */
	free(inst->bdms[3].volume_id);
	inst->bdms[3].volume_id = strdup("vol 1");
	ck_assert_int_eq(blockinfo_build(inst, NULL, &bi, &e), -EINVAL);
	ck_assert_str_eq(e.field, "block_device_mapping_v2[3].uuid");
	ck_assert_ptr_null(bi);
	ck_assert_ptr_null(inst->bdms[0].device_name);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_refuses_two_disks_with_one_serial)
{
	struct instance *inst = prepared(five_disks, NULL);
	struct blockinfo *bi = NULL;
	struct err e = {0};

	/* a stored row the API could not have written */
	free(inst->bdms[4].volume_id);
	inst->bdms[4].volume_id =
	    strdup("0c3a9d52-7f1e-4b2a-9fff-000000000000");
	ck_assert_int_eq(blockinfo_build(inst, NULL, &bi, &e), -EEXIST);
	ck_assert_str_eq(e.field, "block_device_mapping_v2[4].uuid");
	instance_free(inst);
}
END_TEST

START_TEST(test_build_refuses_a_name_taken_twice_in_stored_rows)
{
	struct instance *inst = prepared(five_disks, NULL);
	struct blockinfo *bi = NULL;
	struct err e = {0};

	inst->bdms[3].device_name = strdup("/dev/vdf");
	inst->bdms[4].device_name = strdup("/dev/vdf");
	ck_assert_int_eq(blockinfo_build(inst, NULL, &bi, &e), -EINVAL);
	ck_assert_str_eq(e.field, "block_device_mapping_v2[4].device_name");
	ck_assert_ptr_null(inst->bdms[0].device_name);
	instance_free(inst);
}
END_TEST

START_TEST(test_build_names_the_27th_disk_on_a_bus_vdaa)
{
	char json[16384];
	size_t n = 0;
	struct instance *inst;
	struct blockinfo *bi;

	n += (size_t)snprintf(json + n, sizeof(json) - n,
	    "{\"name\": \"many\", \"imageRef\": \"" IMG
	    "\", " FLAVOR(0, 0) ", \"block_device_mapping_v2\": [" ROOT_BDM);
	for (int i = 0; i < 28; i++)
		n += (size_t)snprintf(json + n, sizeof(json) - n,
		    ", {\"source_type\": \"volume\", "
		    "\"destination_type\": \"volume\", "
		    "\"uuid\": \"%08x-aaaa-4bbb-8ccc-dddddddddddd\", %s"
		    "\"connection_info\": {\"driver_volume_type\": \"file\", "
		    "\"data\": {\"device_path\": \"/srv/v%d\"}}}",
		    (unsigned)i + 1,
		    i == 3 ? "\"device_name\": \"/dev/vdab\", " : "", i);
	snprintf(json + n, sizeof(json) - n, "]}");
	bi = built(json, NULL, &inst);
	ck_assert_uint_eq(bi->n_disks, 29);
	/* the /dev/vdab volume 3 asked for is dropped, as Nova does */
	ck_assert_str_eq(bi->volumes[3]->dev, "vde");
	ck_assert_str_eq(bi->volumes[24]->dev, "vdz");
	ck_assert_str_eq(bi->volumes[25]->dev, "vdaa");
	ck_assert_str_eq(bi->volumes[26]->dev, "vdab");
	ck_assert_str_eq(bi->volumes[27]->dev, "vdac");
	ck_assert_str_eq(inst->bdms[28].device_name, "/dev/vdac");
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

/* ---- blockinfo_pick_attach -------------------------------------------- */

/* A BDM as the attach route would hand it over. */
static void
attach_bdm(struct bdm *b, const char *device_name, enum bdm_bus bus)
{
	memset(b, 0, sizeof(*b));
	b->boot_index = BDM_BOOT_NONE;
	b->volume_size = BDM_SIZE_NONE;
	b->source_type = BDM_SOURCE_VOLUME;
	b->destination_type = BDM_DEST_VOLUME;
	b->device_type = BDM_DEVICE_DISK;
	b->disk_bus = bus;
	b->volume_id = strdup(VOL3);
	b->device_name = device_name ? strdup(device_name) : NULL;
}

START_TEST(test_pick_attach_takes_the_next_free_name)
{
	struct instance *inst;
	struct blockinfo *bi = built(five_disks, NULL, &inst);
	struct bdm b;
	struct err e = {0};

	attach_bdm(&b, NULL, BDM_BUS_UNSET);
	ck_assert_int_eq(blockinfo_pick_attach(inst, &b, NULL, &e), 0);
	ck_assert_str_eq(b.device_name, "/dev/vdf");
	ck_assert_int_eq(b.disk_bus, BDM_BUS_VIRTIO);
	bdm_clear(&b);

	attach_bdm(&b, NULL, BDM_BUS_SCSI);
	ck_assert_int_eq(blockinfo_pick_attach(inst, &b, NULL, &e), 0);
	ck_assert_str_eq(b.device_name, "/dev/sda");
	bdm_clear(&b);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

/* get_device_name_for_instance: a device_name given at attach is ignored,
 * free or taken, and does not steer the bus; the next free name is
 * assigned. */
START_TEST(test_pick_attach_ignores_a_given_name)
{
	static const char *const given[] = {"/dev/hdb", "/dev/vdc", "/dev/vdz"};
	struct instance *inst;
	struct blockinfo *bi = built(five_disks, NULL, &inst);
	struct bdm b;
	struct err e = {0};

	for (size_t i = 0; i < ELEMENTSOF(given); i++) {
		attach_bdm(&b, given[i], BDM_BUS_UNSET);
		ck_assert_int_eq(blockinfo_pick_attach(inst, &b, NULL, &e), 0);
		ck_assert_str_eq(b.device_name, "/dev/vdf");
		ck_assert_int_eq(b.disk_bus, BDM_BUS_VIRTIO);
		bdm_clear(&b);
	}
	/* a given bus is honoured, its name still picked */
	attach_bdm(&b, "/dev/sdc", BDM_BUS_SCSI);
	ck_assert_int_eq(blockinfo_pick_attach(inst, &b, NULL, &e), 0);
	ck_assert_str_eq(b.device_name, "/dev/sda");
	bdm_clear(&b);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_pick_attach_stops_at_max_disk_devices_to_attach)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst;
	struct blockinfo *bi = built(five_disks, NULL, &inst);
	struct bdm b;
	struct err e = {0};

	lim.max_disk_devices_to_attach = 5;
	attach_bdm(&b, NULL, BDM_BUS_SCSI);
	ck_assert_int_eq(blockinfo_pick_attach(inst, &b, &lim, &e), -EINVAL);
	ck_assert_ptr_null(b.device_name);
	bdm_clear(&b);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_pick_attach_refuses_when_ide_is_full)
{
	static const char json[] =
	    "{\"name\": \"i\", \"imageRef\": \"" IMG "\", " FLAVOR(5,
		256) ", "
		     "\"image_meta\": {\"properties\": {\"hw_disk_bus\": \"ide\"}}, "
		     "\"block_device_mapping_v2\": [" ROOT_BDM
		     ", " VOL_BDM(VOL1, "") "]}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);
	struct bdm b;
	struct err e = {0};

	ck_assert_str_eq(bi->volumes[0]->dev, "hdd");
	attach_bdm(&b, NULL, BDM_BUS_IDE);
	ck_assert_int_eq(blockinfo_pick_attach(inst, &b, NULL, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "maximum 4"), "%s", e.msg);
	bdm_clear(&b);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

/* ---- blockinfo_boot_devs / blockinfo_free ----------------------------- */

START_TEST(test_boot_devs_lists_disk_then_cdrom_once_each)
{
	static const char json[] = "{\"name\": \"b\", " FLAVOR(0,
	    0) ", "
	       "\"block_device_mapping_v2\": ["
	       "{\"boot_index\": 0, \"source_type\": \"volume\", "
	       "\"destination_type\": \"volume\", \"uuid\": \"" VOL1
	       "\", " CONN("/srv/v1") "}, " VOL_BDM(VOL2,
		   "\"boot_index\": 1, \"device_type\": \"cdrom\", ") ", " VOL_BDM(VOL3,
		   "\"boot_index\": 2, ") "]}";
	struct instance *inst;
	struct blockinfo *bi = built(json, NULL, &inst);
	const char *devs[2] = {NULL, NULL};

	ck_assert_uint_eq(blockinfo_boot_devs(bi, devs), 2);
	ck_assert_str_eq(devs[0], "hd");
	ck_assert_str_eq(devs[1], "cdrom");
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_free_accepts_null)
{
	ck_assert_ptr_null(blockinfo_free(NULL));
}
END_TEST

/* ---- golden cases ----------------------------------------------------- */

/* Nova's disk_info dict of one disk: bus, dev, type, boot_index (a
 * string, as Nova keeps it) and format (not for swap, whose
 * DriverBlockDevice has no guest_format). */
static struct json_object *
mapping_entry(const struct blockinfo_disk *d)
{
	struct json_object *o = json_object_new_object();
	char boot[16];

	json_object_object_add(
	    o, "bus", json_object_new_string(bdm_bus_to_string(d->bus)));
	json_object_object_add(o, "dev", json_object_new_string(d->dev));
	json_object_object_add(o, "type",
	    json_object_new_string(bdm_device_type_to_string(d->type)));
	if (d->boot_order > 0) {
		snprintf(boot, sizeof(boot), "%d", d->boot_order);
		json_object_object_add(
		    o, "boot_index", json_object_new_string(boot));
	}
	if (d->guest_format && d->kind != BLOCKINFO_SWAP)
		json_object_object_add(
		    o, "format", json_object_new_string(d->guest_format));
	return o;
}

/* The disk mapping as Nova's get_disk_info answers it: "root", "disk",
 * "disk.eph<N>", "disk.swap", "/dev/<dev>" for volumes, "disk.config". */
static struct json_object *
mapping_json(const struct blockinfo *bi)
{
	struct json_object *m = json_object_new_object();

	for (size_t i = 0; i < bi->n_disks; i++) {
		const struct blockinfo_disk *d = &bi->disks[i];

		if (d->name)
			json_object_object_add(m, d->name, mapping_entry(d));
		else
			json_object_object_add(
			    m, d->device_name, mapping_entry(d));
		if (STREQ(d->device_name, bi->root_device_name))
			json_object_object_add(m, "root", mapping_entry(d));
	}
	return m;
}

/* What the golden files describe, from hyperlet's output. */
static struct json_object *
actual_json(const struct instance *inst, const struct blockinfo *bi)
{
	struct json_object *o = json_object_new_object();
	struct json_object *bdms = bdm_json_format_bdms(inst, bi);
	struct json_object *list;

	/* the BDM route answers {"block_device_mappings": [...]} */
	if (json_object_is_type(bdms, json_type_object) &&
	    json_object_object_get_ex(bdms, "block_device_mappings", &list)) {
		json_object_get(list);
		json_object_put(bdms);
		bdms = list;
	}
	json_object_object_add(o, "bdms", bdms);
	json_object_object_add(
	    o, "block_device_info", bdm_json_format_blockinfo(inst, bi));
	json_object_object_add(o, "mapping", mapping_json(bi));
	json_object_object_add(o, "disk_bus",
	    json_object_new_string(bdm_bus_to_string(bi->disk_bus)));
	json_object_object_add(o, "cdrom_bus",
	    json_object_new_string(bdm_bus_to_string(bi->cdrom_bus)));
	return o;
}

/* Is every key of exp in act with an equal value? (A null expectation
 * also matches a missing key.) Writes the first difference to why. */
static bool
json_subset(struct json_object *exp, struct json_object *act, const char *path,
    char *why, size_t whylen)
{
	enum json_type t = json_object_get_type(exp);
	char sub[512];

	if (t == json_type_null)
		return act == NULL ||
		    json_object_is_type(act, json_type_null) ||
		    (snprintf(why, whylen, "%s: expected null, got %s", path,
			 json_object_to_json_string(act)),
			false);
	if (act == NULL || json_object_get_type(act) != t) {
		snprintf(why, whylen, "%s: expected %s, got %s", path,
		    json_object_to_json_string(exp),
		    act ? json_object_to_json_string(act) : "(missing)");
		return false;
	}
	switch (t) {
	case json_type_object: {
		json_object_object_foreach(exp, k, v)
		{
			struct json_object *a = NULL;

			(void)json_object_object_get_ex(act, k, &a);
			snprintf(sub, sizeof(sub), "%s.%s", path, k);
			if (!json_subset(v, a, sub, why, whylen))
				return false;
		}
		return true;
	}
	case json_type_array: {
		size_t n = json_object_array_length(exp);

		if (json_object_array_length(act) != n) {
			snprintf(why, whylen,
			    "%s: expected %zu entries, got %zu", path, n,
			    json_object_array_length(act));
			return false;
		}
		for (size_t i = 0; i < n; i++) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (!json_subset(json_object_array_get_idx(exp, i),
				json_object_array_get_idx(act, i), sub, why,
				whylen))
				return false;
		}
		return true;
	}
	case json_type_int:
		if (json_object_get_int64(exp) == json_object_get_int64(act))
			return true;
		break;
	case json_type_boolean:
		if (json_object_get_boolean(exp) ==
		    json_object_get_boolean(act))
			return true;
		break;
	case json_type_string:
		if (STREQ(json_object_get_string(exp),
			json_object_get_string(act)))
			return true;
		break;
	default:
		if (json_object_equal(exp, act))
			return true;
		break;
	}
	snprintf(why, whylen, "%s: expected %s, got %s", path,
	    json_object_to_json_string(exp), json_object_to_json_string(act));
	return false;
}

/* A formatted message (owned), or a fixed one when memory is short. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *
fmt(const char *f, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, f);
	r = vasprintf(&s, f, ap);
	va_end(ap);
	return r < 0 ? strdup("out of memory") : s;
}

static const char *
errno_name(int code)
{
	switch (code) {
	case -EINVAL:
		return "EINVAL";
	case -EEXIST:
		return "EEXIST";
	case -ENOMEM:
		return "ENOMEM";
	case 0:
		return "0";
	default:
		return "E?";
	}
}

/* The uuid the golden files give a BDM the request did not name, so that
 * serials are the same from run to run (nova_golden.py generated_uuid). */
static void
golden_uuids(struct instance *inst)
{
	for (size_t i = 0; i < inst->n_bdms; i++)
		if (!inst->bdms[i].uuid_given)
			snprintf(inst->bdms[i].uuid, UUID_STR_LEN,
			    "%08x-0000-4000-8000-000000000000",
			    (unsigned)(i + 1) & 0xffffffffu);
}

/* path = dir/c + suffix; fails the test if it does not fit. */
static void
case_path(char path[1024], const char *dir, const char *c, const char *suffix)
{
	int n = snprintf(path, 1024, "%s/%s%s", dir, c, suffix);

	ck_assert_msg(n > 0 && n < 1024, "path too long: %s/%s", dir, c);
}

/* The limits of a case: defaults, or <case>.config.json. */
static void
golden_limits(const char *dir, const char *c, struct bdm_limits *lim)
{
	char path[1024];
	char *text;
	struct json_object *o, *v;

	case_path(path, dir, c, ".config.json");
	text = testutil_read_file(path, NULL);
	if (text == NULL)
		return;
	o = json_tokener_parse(text);
	ck_assert_msg(o != NULL, "%s: not JSON", path);
	if (json_object_object_get_ex(o, "max_local_block_devices", &v))
		lim->max_local_block_devices = json_object_get_int(v);
	if (json_object_object_get_ex(o, "max_disk_devices_to_attach", &v))
		lim->max_disk_devices_to_attach = json_object_get_int(v);
	json_object_put(o);
	free(text);
}

/* Rewrites the expectation at path from hyperlet's result. */
static void
golden_write(const char *path, int r, const struct err *e,
    const struct instance *inst, const struct blockinfo *bi)
{
	struct json_object *act, *err;

	if (r == 0)
		act = actual_json(inst, bi);
	else {
		act = json_object_new_object();
		err = json_object_new_object();
		json_object_object_add(
		    err, "errno", json_object_new_string(errno_name(r)));
		json_object_object_add(
		    err, "field", json_object_new_string(e->field));
		json_object_object_add(act, "error", err);
	}
	json_object_object_add(
	    act, "expected_by", json_object_new_string("hyperlet"));
	ck_assert_int_eq(json_object_to_file_ext(path, act,
			     JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED),
	    0);
	json_object_put(act);
}

/* Compares hyperlet's result with the expectation exp; returns NULL if
 * they agree, else what differs (owned). */
static char *
golden_compare(const char *c, struct json_object *exp, int r,
    const struct err *e, const struct instance *inst,
    const struct blockinfo *bi)
{
	struct json_object *act, *err, *v;
	char why[1024] = "";
	char *msg = NULL;

	if (json_object_object_get_ex(exp, "error", &err)) {
		const char *want_errno = "", *want_field = "";

		if (json_object_object_get_ex(err, "errno", &v))
			want_errno = json_object_get_string(v);
		if (json_object_object_get_ex(err, "field", &v))
			want_field = json_object_get_string(v);
		if (!STREQ(errno_name(r), want_errno) ||
		    !STREQ(e->field, want_field))
			msg =
			    fmt("%s: expected %s on '%s', got %s on '%s' (%s)",
				c, want_errno, want_field, errno_name(r),
				e->field, e->msg);
		return msg;
	}
	if (r < 0)
		return fmt("%s: expected success, got %s on '%s': %s", c,
		    errno_name(r), e->field, e->msg);
	act = actual_json(inst, bi);
	json_object_object_del(exp, "expected_by");
	if (!json_subset(exp, act, c, why, sizeof(why)))
		msg = fmt("%s", why);
	json_object_put(act);
	return msg;
}

/*
 * The attaches of <case>.attach.json (a list of attach bodies), one after
 * the other on the created instance: parse, bdm_prepare_attach,
 * blockinfo_pick_attach, and the BDM joins the instance. Compared with
 * the expectation's "attach" ([{device_name, disk_bus}], from Nova's
 * get_device_name_for_instance). Returns NULL if they agree or the case
 * has none, else what differs (owned).
 */
static char *
golden_attach(const char *dir, const char *c, const struct bdm_limits *lim,
    struct instance *inst, struct json_object *want)
{
	struct json_object *list = NULL, *act;
	char path[1024], why[1024] = "";
	char *text, *msg = NULL;

	case_path(path, dir, c, ".attach.json");
	if ((text = testutil_read_file(path, NULL)) == NULL)
		return NULL;
	list = json_tokener_parse(text);
	free(text);
	ck_assert_msg(json_object_is_type(list, json_type_array), "%s", path);
	if (want == NULL)
		msg = fmt("%s: the expectation has no \"attach\"", c);
	act = json_object_new_array();
	for (size_t i = 0; msg == NULL && i < json_object_array_length(list);
	     i++) {
		const char *body = json_object_to_json_string(
		    json_object_array_get_idx(list, i));
		struct bdm b, *slot = NULL;
		struct err e = {0};
		struct json_object *o;
		int r;

		memset(&b, 0, sizeof(b));
		r = bdm_json_parse_attach(body, strlen(body), &b, &e);
		if (r == 0) {
			(void)snprintf(b.uuid, sizeof(b.uuid),
			    "%08zx-0000-4000-8000-000000000000",
			    inst->n_bdms + 1);
			b.uuid_given = true;
			r = bdm_prepare_attach(inst, &b, lim, &e);
		}
		if (r == 0)
			r = blockinfo_pick_attach(inst, &b, lim, &e);
		if (r == 0)
			r = instance_bdm_append(inst, &slot, &e);
		if (r < 0) {
			msg = fmt("%s: attach %zu: %s on '%s': %s", c, i,
			    errno_name(r), e.field, e.msg);
			bdm_clear(&b);
			break;
		}
		*slot = b;
		o = json_object_new_object();
		json_object_object_add(o, "device_name",
		    json_object_new_string(slot->device_name));
		json_object_object_add(o, "disk_bus",
		    json_object_new_string(bdm_bus_to_string(slot->disk_bus)));
		json_object_array_add(act, o);
	}
	if (msg == NULL && !json_subset(want, act, c, why, sizeof(why)))
		msg = fmt("%s (attach)", why);
	json_object_put(act);
	json_object_put(list);
	return msg;
}

/* Runs one case through the chain; returns NULL if it passed, else what
 * differs (owned). */
static char *
golden_case(const char *dir, const char *c, bool update)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	struct json_object *exp = NULL;
	struct err e = {0};
	char path[1024];
	char *body, *text, *msg = NULL;
	size_t len;
	int r;

	golden_limits(dir, c, &lim);
	case_path(path, dir, c, ".json");
	body = testutil_read_file(path, &len);
	ck_assert_msg(body != NULL, "cannot read %s", path);
	r = bdm_json_parse_create(body, len, &inst, &e);
	if (r == 0)
		r = bdm_instance_prepare(inst, &lim, &e);
	if (r == 0) {
		golden_uuids(inst);
		r = blockinfo_build(inst, &lim, &bi, &e);
	}
	free(body);

	case_path(path, dir, c, ".expected.json");
	if (update)
		golden_write(path, r, &e, inst, bi);
	else {
		text = testutil_read_file(path, NULL);
		exp = text ? json_tokener_parse(text) : NULL;
		free(text);
		if (exp == NULL)
			msg = fmt("%s: cannot read %s", c, path);
		else {
			struct json_object *att = NULL;

			/* compared on its own, after the create */
			if (json_object_object_get_ex(exp, "attach", &att)) {
				json_object_get(att);
				json_object_object_del(exp, "attach");
			}
			msg = golden_compare(c, exp, r, &e, inst, bi);
			if (msg == NULL && r == 0)
				msg = golden_attach(dir, c, &lim, inst, att);
			json_object_put(att);
		}
	}
	json_object_put(exp);
	blockinfo_free(bi);
	instance_free(inst);
	return msg;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(test_golden_cases_match_novas_mapping)
{
	char dir[1024];
	const char *update = getenv("UPDATE_GOLDEN");
	DIR *d;
	struct dirent *ent;
	char *names[512];
	size_t n = 0, failed = 0;

	snprintf(dir, sizeof(dir), "%s/golden", testutil_data_dir());
	d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((ent = readdir(d)) != NULL) {
		size_t len = strlen(ent->d_name);

		if (len < 6 || !STREQ(ent->d_name + len - 5, ".json") ||
		    strstr(ent->d_name, ".expected.json") ||
		    strstr(ent->d_name, ".config.json") ||
		    strstr(ent->d_name, ".attach.json"))
			continue;
		ck_assert_uint_lt(n, ELEMENTSOF(names));
		names[n++] = strndup(ent->d_name, len - 5);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	ck_assert_uint_ge(n, 30);
	for (size_t i = 0; i < n; i++) {
		char *msg =
		    golden_case(dir, names[i], update && STREQ(update, "1"));

		if (msg) {
			fprintf(stderr, "golden: %s\n", msg);
			failed++;
			free(msg);
		}
		free(names[i]);
	}
	ck_assert_msg(failed == 0, "%zu of %zu golden cases differ (see above)",
	    failed, n);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("blockinfo");
	TCase *tc;

	tc = tcase_create("blockinfo_serial");
	tcase_add_test(tc, test_serial_is_whole_on_scsi);
	tcase_add_test(tc, test_serial_is_cut_to_20_on_virtio_sata_and_ide);
	tcase_add_test(tc, test_serial_keeps_short_ids_and_cuts_scsi_at_36);
	tcase_add_test(tc, test_serial_refuses_characters_outside_the_safe_set);
	suite_add_tcase(s, tc);

	tc = tcase_create("blockinfo_by_id");
	tcase_add_test(tc, test_by_id_follows_udev_names_per_bus);
	tcase_add_test(tc, test_by_id_type_names_cdroms_as_qemu_shows_them);
	tcase_add_test(tc, test_kind_names_match_the_api);
	suite_add_tcase(s, tc);

	tc = tcase_create("blockinfo_build");
	tcase_add_test(tc, test_build_maps_five_disks_in_nova_order);
	tcase_add_test(
	    tc, test_build_gives_local_disks_their_bdm_uuid_as_serial);
	tcase_add_test(tc, test_build_gives_volumes_their_volume_id_as_serial);
	tcase_add_test(tc, test_build_writes_scsi_serials_whole);
	tcase_add_test(
	    tc, test_build_reads_the_volume_source_from_connection_info);
	tcase_add_test(
	    tc, test_build_refuses_a_volume_whose_source_was_not_read);
	tcase_add_test(tc, test_build_of_copied_bdms_keeps_the_volume_source);
	tcase_add_test(tc, test_build_writes_picked_names_and_buses_back);
	tcase_add_test(tc, test_build_assigns_the_names_a_request_gave);
	tcase_add_test(tc, test_build_boots_from_volume_without_local_root);
	tcase_add_test(tc, test_build_sizes_local_disks_from_the_flavor);
	tcase_add_test(
	    tc, test_build_puts_the_config_drive_last_without_serial);
	tcase_add_test(tc, test_build_uses_sata_for_cdroms_on_q35);
	tcase_add_test(tc, test_build_gives_a_lun_no_serial);
	tcase_add_test(tc, test_build_puts_a_cdrom_root_on_the_cdrom_bus);
	tcase_add_test(tc, test_build_puts_a_lun_without_bus_on_scsi);
	tcase_add_test(tc, test_build_refuses_a_fifth_ide_device);
	tcase_add_test(
	    tc, test_build_refuses_a_config_drive_that_finds_ide_full);
	tcase_add_test(tc, test_build_honours_max_disk_devices_to_attach);
	tcase_add_test(
	    tc, test_build_refuses_a_volume_id_that_cannot_be_a_serial);
	tcase_add_test(tc, test_build_refuses_two_disks_with_one_serial);
	tcase_add_test(
	    tc, test_build_refuses_a_name_taken_twice_in_stored_rows);
	tcase_add_test(tc, test_build_names_the_27th_disk_on_a_bus_vdaa);
	suite_add_tcase(s, tc);

	tc = tcase_create("blockinfo_pick_attach");
	tcase_add_test(tc, test_pick_attach_takes_the_next_free_name);
	tcase_add_test(tc, test_pick_attach_ignores_a_given_name);
	tcase_add_test(
	    tc, test_pick_attach_stops_at_max_disk_devices_to_attach);
	tcase_add_test(tc, test_pick_attach_refuses_when_ide_is_full);
	suite_add_tcase(s, tc);

	tc = tcase_create("blockinfo_boot_devs");
	tcase_add_test(tc, test_boot_devs_lists_disk_then_cdrom_once_each);
	tcase_add_test(tc, test_free_accepts_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("golden");
	tcase_add_test(tc, test_golden_cases_match_novas_mapping);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
