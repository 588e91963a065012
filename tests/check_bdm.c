/*
 * check_bdm: the request model. Valid create requests of every shape go
 * through bdm_json_parse_create -> bdm_instance_prepare and their BDM
 * lists are compared as one-line summaries; every validation rule and a
 * catalogue of hostile JSON fail once each, with the expected errno and
 * the expected err.field. Requests are written with ' for " (see q()).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdm.h"
#include "bdm_json.h"
#include "blockinfo.h"
#include "jfield.h"
#include "testutil.h"

#define IMG "11111111-2222-4333-8444-555555555555"
#define IMG2 "99999999-2222-4333-8444-555555555555"
#define VOL1 "0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11"
#define VOL2 "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define VOL3 "d00dfeed-0000-4000-8000-000000000001"
#define SNAP "5a5a5a5a-0000-4000-8000-000000000002"
#define BDMU "8b472c9a-3201-41cb-8e0f-3c2d1a0b9f88"
#define CONN(p) "{'driver_volume_type':'file','data':{'device_path':'" p "'}}"
#define CONNB(p) "{'driver_volume_type':'block','data':{'device_path':'" p "'}}"
#define FLAVOR(eph, swap)                                                        \
	"'flavor':{'vcpus':2,'memory_mb':2048,'root_gb':10,'ephemeral_gb':" #eph \
	",'swap':" #swap "}"
#define HEAD "'name':'web-1'," FLAVOR(0, 0)
#define HEADF(eph, swap) "'name':'web-1'," FLAVOR(eph, swap)
#define VOLBDM(id, boot)                                                     \
	"{'boot_index':" #boot ",'source_type':'volume','destination_type':" \
	"'volume','uuid':'" id "','connection_info':" CONN("/dev/vol/" id) "}"

/* The request text with ' turned into ", so tests read like JSON. */
static char *
q(const char *s)
{
	char *r = strdup(s);

	ck_assert_ptr_nonnull(r);
	for (char *p = r; *p; p++)
		if (*p == '\'')
			*p = '"';
	return r;
}

static int
parse(const char *json, struct instance **ret, struct err *e)
{
	char *body = q(json);
	int r = bdm_json_parse_create(body, strlen(body), ret, e);

	free(body);
	return r;
}

/* parse and prepare with the default limits; *ret set on success */
static int
parse_prepare(const char *json, const struct bdm_limits *lim,
    struct instance **ret, struct err *e)
{
	struct instance *inst = NULL;
	int r = parse(json, &inst, e);

	if (r < 0)
		return r;
	r = bdm_instance_prepare(inst, lim, e);
	if (r < 0) {
		instance_free(inst);
		return r;
	}
	*ret = inst;
	return 0;
}

/* "src>dst:boot:size:fmt[@dev]" for every BDM, comma separated. */
static void
summary(const struct instance *inst, char *buf, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < inst->n_bdms; i++) {
		const struct bdm *b = &inst->bdms[i];
		int w = snprintf(buf + used, n - used, "%s%s>%s:%d:%lld:%s%s%s",
		    i ? "," : "", bdm_source_to_string(b->source_type),
		    bdm_dest_to_string(b->destination_type), b->boot_index,
		    (long long)b->volume_size,
		    b->guest_format ? b->guest_format : "-",
		    b->device_name ? "@" : "",
		    b->device_name ? b->device_name : "");

		ck_assert_int_gt(w, 0);
		used += (size_t)w;
		ck_assert_uint_lt(used, n);
	}
}

/* ---- valid requests ---------------------------------------------- */

struct valid_case {
	const char *name;
	const char *json;
	const char *bdms; /* summary after prepare */
};

static const struct valid_case valid_cases[] = {
    {"image boot without BDMs gets an image root",
	"{" HEAD ",'imageRef':'" IMG "'}", "image>local:0:-1:-"},
    {"image boot gets the flavor's ephemeral and swap",
	"{" HEADF(20, 1024) ",'imageRef':'" IMG "'}",
	"image>local:0:-1:-,blank>local:-1:20:-,blank>local:-1:1024:swap"},
    {"an ephemeral BDM replaces the flavor's, swap still comes from it",
	"{" HEADF(20, 512) ",'imageRef':'" IMG "','block_device_mapping_v2':"
			   "[{'source_type':'blank','destination_type':'local',"
			   "'guest_format':'ext4','volume_size':10}]}",
	"image>local:0:-1:-,blank>local:-1:10:ext4,"
	"blank>local:-1:512:swap"},
    {"an explicit image root is not doubled",
	"{" HEAD ",'imageRef':'" IMG "','block_device_mapping_v2':"
	"[{'boot_index':0,'source_type':'image','destination_type':"
	"'local','uuid':'" IMG "'}]}",
	"image>local:0:-1:-"},
    {"boot from volume",
	"{" HEAD ",'block_device_mapping_v2':[" VOLBDM(VOL1, 0) "]}",
	"volume>volume:0:-1:-"},
    {"boot from volume with imageRef given keeps the volume as root",
	"{" HEAD ",'imageRef':'" IMG
	"','block_device_mapping_v2':[" VOLBDM(VOL1, 0) "]}",
	"volume>volume:0:-1:-"},
    {"image to volume as root",
	"{" HEAD ",'block_device_mapping_v2':[{'boot_index':0,"
	"'source_type':'image','destination_type':'volume','uuid':'" IMG
	"','volume_size':10,'volume_id':'" VOL1
	"','connection_info':" CONNB("/dev/sdx") "}]}",
	"image>volume:0:10:-"},
    {"snapshot to volume as root",
	"{" HEAD ",'block_device_mapping_v2':[{'boot_index':0,"
	"'source_type':'snapshot','destination_type':'volume','uuid':'" SNAP
	"','volume_id':'" VOL1 "','connection_info':" CONN("/v/1") "}]}",
	"snapshot>volume:0:-1:-"},
    {"a blank volume beside an image root",
	"{" HEAD ",'imageRef':'" IMG "','block_device_mapping_v2':["
	"{'source_type':'blank','destination_type':'volume',"
	"'volume_size':5,'volume_id':'" VOL2
	"','connection_info':" CONN("/v/2") "}]}",
	"image>local:0:-1:-,blank>volume:-1:5:-"},
    {"several ephemerals share the flavor's space",
	"{" HEADF(30,
	    0) ",'imageRef':'" IMG "','block_device_mapping_v2':["
	       "{'source_type':'blank','destination_type':'local',"
	       "'volume_size':10},{'source_type':'blank','destination_type':"
	       "'local','volume_size':20,'guest_format':'xfs'}]}",
	"image>local:0:-1:-,blank>local:-1:10:-,blank>local:-1:20:xfs"},
    {"an ephemeral without size takes the flavor's",
	"{" HEADF(30, 0) ",'imageRef':'" IMG "','block_device_mapping_v2':["
			 "{'source_type':'blank','destination_type':'local'}]}",
	"image>local:0:-1:-,blank>local:-1:30:-"},
    {"swap from a BDM, smaller than the flavor's",
	"{" HEADF(0,
	    1024) ",'imageRef':'" IMG "','block_device_mapping_v2':"
		  "[{'source_type':'blank','destination_type':'local',"
		  "'guest_format':'swap','volume_size':256,'boot_index':null}]}",
	"image>local:0:-1:-,blank>local:-1:256:swap"},
    {"device names a request gives are dropped (Nova's libvirt driver)",
	"{" HEADF(10, 0) ",'imageRef':'" IMG "','block_device_mapping_v2':["
			 "{'source_type':'blank','destination_type':'local',"
			 "'device_name':'vdb'}," VOLBDM(VOL1, -1) "]}",
	"image>local:0:-1:-,blank>local:-1:10:-,"
	"volume>volume:-1:-1:-"},
    {"the root's device name is kept, normalised to /dev/",
	"{" HEADF(10, 0) ",'imageRef':'" IMG "','block_device_mapping_v2':["
			 "{'source_type':'image','destination_type':'local',"
			 "'boot_index':0,'uuid':'" IMG "','device_name':'vdc'},"
			 "{'source_type':'blank','destination_type':'local',"
			 "'device_name':'vdc'}]}",
	"image>local:0:-1:-@/dev/vdc,blank>local:-1:10:-"},
    {"config drive and metadata",
	"{" HEAD ",'imageRef':'" IMG "','config_drive':true,'metadata':"
	"{'role':'web','a b:c.d-e_f':''},'start':false}",
	"image>local:0:-1:-"},
    {"upper-case UUIDs are normalised",
	"{'uuid':'0C3A9D52-7F1E-4B2A-9D3C-5B1F0E2A7C11'," HEAD
	",'imageRef':'11111111-2222-4333-8444-55555555555A'}",
	"image>local:0:-1:-"},
    {"an ISO root as cdrom on ide",
	"{" HEAD ",'imageRef':'" IMG "','block_device_mapping_v2':["
	"{'boot_index':0,'source_type':'image','destination_type':"
	"'local','uuid':'" IMG "','device_type':'cdrom','disk_bus':"
	"'ide'}]}",
	"image>local:0:-1:-"},
    {"a lun volume on a block device",
	"{" HEAD ",'imageRef':'" IMG "','block_device_mapping_v2':[{"
	"'source_type':'volume','destination_type':'volume','uuid':'" VOL1
	"','device_type':'lun','disk_bus':'scsi',"
	"'connection_info':" CONNB("/dev/sdq") "}]}",
	"image>local:0:-1:-,volume>volume:-1:-1:-"},
    {"two bootable volumes in order",
	"{" HEAD
	",'block_device_mapping_v2':[" VOLBDM(VOL2, 1) "," VOLBDM(VOL1, 0) "]}",
	"volume>volume:1:-1:-,volume>volume:0:-1:-"},
    {"empty imageRef means boot from volume, as in Nova",
	"{" HEAD
	",'imageRef':'','block_device_mapping_v2':[" VOLBDM(VOL1, 0) "]}",
	"volume>volume:0:-1:-"},
    {"three local disks are within max_local_block_devices",
	"{" HEADF(10, 10) ",'imageRef':'" IMG "'}",
	"image>local:0:-1:-,blank>local:-1:10:-,blank>local:-1:10:swap"},
};

START_TEST(test_prepare_valid_request_gives_expected_bdms)
{
	const struct valid_case *c = &valid_cases[_i];
	struct instance *inst = NULL;
	struct err e = {0};
	char got[1024];
	int r = parse_prepare(c->json, NULL, &inst, &e);

	ck_assert_msg(r == 0, "%s: %d %s [%s]", c->name, r, e.msg, e.field);
	summary(inst, got, sizeof(got));
	ck_assert_msg(STREQ(got, c->bdms), "%s:\n got %s\nwant %s", c->name,
	    got, c->bdms);
	ck_assert(util_uuid_is_canonical(inst->uuid));
	ck_assert_ptr_nonnull(inst->metadata);
	for (size_t i = 0; i < inst->n_bdms; i++) {
		const struct bdm *b = &inst->bdms[i];

		ck_assert(util_uuid_is_canonical(b->uuid));
		/* drawn ones are random (version 4, RFC 4122 variant) */
		ck_assert(b->uuid_given ||
		    (b->uuid[14] == '4' && strchr("89ab", b->uuid[19])));
		ck_assert_int_ne(b->source_type, BDM_SOURCE_UNSET);
		ck_assert_int_ne(b->destination_type, BDM_DEST_UNSET);
		ck_assert_int_ne(b->device_type, BDM_DEVICE_UNSET);
		if (bdm_is_local(b))
			ck_assert(b->delete_on_termination);
		for (size_t k = 0; k < i; k++)
			ck_assert(strncmp(b->uuid, inst->bdms[k].uuid, 20));
	}
	instance_free(inst);
}
END_TEST

START_TEST(test_prepare_normalises_uuids_and_keeps_fields)
{
	struct instance *inst = NULL;
	struct err e = {0};

	ck_assert_int_eq(
	    parse_prepare(valid_cases[15].json, NULL, &inst, &e), 0);
	ck_assert_str_eq(inst->uuid, VOL1);
	ck_assert(inst->uuid_given);
	ck_assert_str_eq(
	    inst->image_ref, "11111111-2222-4333-8444-55555555555a");
	ck_assert_str_eq(inst->bdms[0].image_id, inst->image_ref);
	instance_free(inst);

	ck_assert_int_eq(
	    parse_prepare(valid_cases[14].json, NULL, &inst, &e), 0);
	ck_assert(inst->config_drive);
	ck_assert(!inst->start);
	ck_assert_str_eq(
	    inst->metadata, "{\"role\":\"web\",\"a b:c.d-e_f\":\"\"}");
	ck_assert(!inst->uuid_given);
	instance_free(inst);
}
END_TEST

START_TEST(test_prepare_keeps_given_bdm_uuid_and_sets_defaults)
{
	struct instance *inst = NULL;
	struct err e = {0};
	const char *json =
	    "{" HEAD ",'block_device_mapping_v2':[{"
	    "'boot_index':0,'source_type':'volume',"
	    "'destination_type':'volume','uuid':'" VOL1
	    "','bdm_uuid':'8B472C9A-3201-41CB-8E0F-3C2D1A0B9F88',"
	    "'tag':'db','delete_on_termination':true,"
	    "'connection_info':" CONN("/v/1") "}]}";

	ck_assert_int_eq(parse_prepare(json, NULL, &inst, &e), 0);
	ck_assert_str_eq(inst->bdms[0].uuid, BDMU);
	ck_assert(inst->bdms[0].uuid_given);
	ck_assert_str_eq(inst->bdms[0].volume_id, VOL1);
	ck_assert_str_eq(inst->bdms[0].tag, "db");
	ck_assert(inst->bdms[0].delete_on_termination);
	ck_assert_int_eq(inst->bdms[0].device_type, BDM_DEVICE_DISK);
	ck_assert_str_eq(inst->bdms[0].connection_info,
	    "{\"driver_volume_type\":\"file\",\"data\":{\"device_path\":\"/v/"
	    "1\"}}");
	instance_free(inst);
}
END_TEST

/* ---- failures ---------------------------------------------------- */

struct fail_case {
	const char *name;
	const char *json;
	int code;
	const char *field;
};

#define B0 "'block_device_mapping_v2':["
#define IMGREF "'imageRef':'" IMG "',"

static const struct fail_case fail_cases[] = {
    /* instance fields */
    {"a request without name", "{" FLAVOR(0, 0) ",'imageRef':'" IMG "'}",
	-EINVAL, "name"},
    {"an empty name", "{'name':''," FLAVOR(0, 0) "}", -EINVAL, "name"},
    {"a name with a leading space", "{'name':' x'," FLAVOR(0, 0) "}", -EINVAL,
	"name"},
    {"a name with a newline", "{'name':'a\\nb'," FLAVOR(0, 0) "}", -EINVAL,
	"name"},
    {"a name that is a number", "{'name':12," FLAVOR(0, 0) "}", -EINVAL,
	"name"},
    {"a request without flavor", "{'name':'x','imageRef':'" IMG "'}", -EINVAL,
	"flavor"},
    {"a null flavor", "{'name':'x','flavor':null}", -EINVAL, "flavor"},
    {"zero vcpus",
	"{'name':'x','flavor':{'vcpus':0,'memory_mb':1,'root_gb':1}}", -EINVAL,
	"flavor.vcpus"},
    {"too much memory",
	"{'name':'x','flavor':{'vcpus':1,'memory_mb':99999999,'root_gb':"
	"1}}",
	-EINVAL, "flavor.memory_mb"},
    {"a flavor without root_gb",
	"{'name':'x','flavor':{'vcpus':1,'memory_mb':1}}", -EINVAL,
	"flavor.root_gb"},
    {"a flavor without vcpus",
	"{'name':'x','flavor':{'memory_mb':1,'root_gb':1}}", -EINVAL,
	"flavor.vcpus"},
    {"a negative swap",
	"{'name':'x','flavor':{'vcpus':1,'memory_mb':1,'root_gb':1,"
	"'swap':-1}}",
	-EINVAL, "flavor.swap"},
    {"a negative root_gb",
	"{'name':'x','flavor':{'vcpus':1,'memory_mb':1,'root_gb':-1}}", -EINVAL,
	"flavor.root_gb"},
    {"an unknown flavor key",
	"{'name':'x','flavor':{'vcpus':1,'memory_mb':1,'root_gb':1,"
	"'disk':1}}",
	-EINVAL, "flavor.disk"},
    {"an imageRef that is not a UUID",
	"{" HEAD ",'imageRef':'http://glance/x'}", -EINVAL, "imageRef"},
    {"an instance uuid that is not a UUID", "{" HEAD ",'uuid':'x'}", -EINVAL,
	"uuid"},
    {"neither imageRef nor a root BDM", "{" HEAD "}", -EINVAL, "imageRef"},
    {"config_drive as a string", "{" HEAD "," IMGREF "'config_drive':'true'}",
	-EINVAL, "config_drive"},
    {"start as a number", "{" HEAD "," IMGREF "'start':1}", -EINVAL, "start"},
    {"an unknown top-level key", "{" HEAD "," IMGREF "'key_name':'k'}", -EINVAL,
	"key_name"},
    {"Nova's server wrapper", "{'server':{" HEAD "}}", -EINVAL, "server"},
    {"a metadata value that is not a string",
	"{" HEAD "," IMGREF "'metadata':{'k':1}}", -EINVAL, "metadata.k"},
    {"a metadata key with a slash",
	"{" HEAD "," IMGREF "'metadata':{'a/b':'x'}}", -EINVAL, "metadata.a/b"},
    {"an empty metadata key", "{" HEAD "," IMGREF "'metadata':{'':'x'}}",
	-EINVAL, "metadata"},
    {"a metadata value over 255 characters",
	"{" HEAD "," IMGREF "'metadata':{'k':'"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"'}}",
	-EINVAL, "metadata.k"},
    {"metadata that is an array", "{" HEAD "," IMGREF "'metadata':[]}", -EINVAL,
	"metadata"},
    {"an unknown hw_disk_bus",
	"{" HEAD "," IMGREF
	"'image_meta':{'properties':{'hw_disk_bus':'usb'}}}",
	-EINVAL, "image_meta.properties.hw_disk_bus"},
    {"a virtio cdrom bus",
	"{" HEAD "," IMGREF
	"'image_meta':{'properties':{'hw_cdrom_bus':'virtio'}}}",
	-EINVAL, "image_meta.properties.hw_cdrom_bus"},
    {"an unknown SCSI model",
	"{" HEAD "," IMGREF
	"'image_meta':{'properties':{'hw_scsi_model':'nope'}}}",
	-EINVAL, "image_meta.properties.hw_scsi_model"},
    {"a machine type with a space",
	"{" HEAD "," IMGREF
	"'image_meta':{'properties':{'hw_machine_type':'q 35'}}}",
	-EINVAL, "image_meta.properties.hw_machine_type"},
    {"an unknown image property",
	"{" HEAD "," IMGREF
	"'image_meta':{'properties':{'hw_video_model':'qxl'}}}",
	-EINVAL, "image_meta.properties.hw_video_model"},
    {"an unknown image_meta key",
	"{" HEAD "," IMGREF "'image_meta':{'name':'x'}}", -EINVAL,
	"image_meta.name"},
    {"block_device_mapping_v2 as an object",
	"{" HEAD "," IMGREF "'block_device_mapping_v2':{}}", -EINVAL,
	"block_device_mapping_v2"},
    {"a BDM that is a string", "{" HEAD "," IMGREF B0 "'x']}", -EINVAL,
	"block_device_mapping_v2[0]"},

    /* BDM shapes (parse) */
    {"a BDM without source_type",
	"{" HEAD "," IMGREF B0 "{'destination_type':'local'}]}", -EINVAL,
	"block_device_mapping_v2[0].source_type"},
    {"an unknown source_type",
	"{" HEAD "," IMGREF B0 "{'source_type':'iso','destination_type':"
	"'local'}]}",
	-EINVAL, "block_device_mapping_v2[0].source_type"},
    {"an unknown destination_type",
	"{" HEAD "," IMGREF B0 "{'source_type':'blank','destination_type':"
	"'remote'}]}",
	-EINVAL, "block_device_mapping_v2[0].destination_type"},
    {"an unknown disk_bus",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','disk_bus':'usb'}]}",
	-EINVAL, "block_device_mapping_v2[0].disk_bus"},
    {"an unknown device_type",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','device_type':'floppy'}]}",
	-EINVAL, "block_device_mapping_v2[0].device_type"},
    {"boot_index as a string",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'boot_index':'0'}]}",
	-EINVAL, "block_device_mapping_v2[0].boot_index"},
    {"boot_index as a float",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'boot_index':1.0}]}",
	-EINVAL, "block_device_mapping_v2[0].boot_index"},
    {"boot_index below -1",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'boot_index':-2}]}",
	-EINVAL, "block_device_mapping_v2[0].boot_index"},
    {"volume_size zero",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':0}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"a negative volume_size",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':-5}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"image_meta.disk_format vmdk (hyperlet boots raw, qcow2, iso)",
	"{" HEAD ",'imageRef':'" IMG "','image_meta':{'disk_format':'vmdk'}}",
	-EINVAL, "image_meta.disk_format"},
    {"image_meta.disk_format not a string",
	"{" HEAD ",'imageRef':'" IMG "','image_meta':{'disk_format':3}}",
	-EINVAL, "image_meta.disk_format"},
    {"image_meta.disk_format ISO (case matters, as in Glance)",
	"{" HEAD ",'imageRef':'" IMG "','image_meta':{'disk_format':'ISO'}}",
	-EINVAL, "image_meta.disk_format"},
    /* Nova's parameter_types: digits only, at least 1 */
    {"volume_size '5x'",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':'5x'}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"volume_size '1.5'",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':'1.5'}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"volume_size '-1'",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':'-1'}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"volume_size '0'",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':'0'}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"volume_size ''",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':''}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"volume_size ' 5'",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':' 5'}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"volume_size 1.5",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':1.5}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"volume_size beyond MAX_INT as a string",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':'2147483648'}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"volume_size beyond int64 as a string",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':'local',"
	"'volume_size':'99999999999999999999'}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"boot_index '1.5'",
	"{" HEAD "," B0 VOLBDM(
	    VOL1, 0) ",{'source_type':'blank',"
		     "'destination_type':'local','boot_index':'1.5'}]}",
	-EINVAL, "block_device_mapping_v2[1].boot_index"},
    {"boot_index '+1'",
	"{" HEAD "," B0 VOLBDM(
	    VOL1, 0) ",{'source_type':'blank',"
		     "'destination_type':'local','boot_index':'+1'}]}",
	-EINVAL, "block_device_mapping_v2[1].boot_index"},
    {"delete_on_termination 'y' (not in Nova's boolean)",
	"{" HEAD "," B0 VOLBDM(VOL1,
	    0) ",{'source_type':'blank',"
	       "'destination_type':'local','delete_on_termination':'y'}]}",
	-EINVAL, "block_device_mapping_v2[1].delete_on_termination"},
    {"delete_on_termination 'tRUE' (not in Nova's boolean)",
	"{" HEAD "," B0 VOLBDM(VOL1,
	    0) ",{'source_type':'blank',"
	       "'destination_type':'local','delete_on_termination':'tRUE'}]}",
	-EINVAL, "block_device_mapping_v2[1].delete_on_termination"},
    {"delete_on_termination 1 (a number)",
	"{" HEAD "," B0 VOLBDM(
	    VOL1, 0) ",{'source_type':'blank',"
		     "'destination_type':'local','delete_on_termination':1}]}",
	-EINVAL, "block_device_mapping_v2[1].delete_on_termination"},
    {"delete_on_termination 'no' on a local disk",
	"{" HEAD "," B0 VOLBDM(VOL1,
	    0) ",{'source_type':'blank',"
	       "'destination_type':'local','delete_on_termination':'no'}]}",
	-EINVAL, "block_device_mapping_v2[1].delete_on_termination"},
    {"a local disk that is kept after termination",
	"{" HEADF(
	    1, 0) "," IMGREF B0 "{'source_type':'blank',"
		  "'destination_type':'local','delete_on_termination':false}]}",
	-EINVAL, "block_device_mapping_v2[0].delete_on_termination"},
    {"Nova's no_device",
	"{" HEAD "," IMGREF B0 "{'device_name':'vdb','no_device':true}]}",
	-EINVAL, "block_device_mapping_v2[0].no_device"},
    {"Nova's volume_type",
	"{" HEAD "," IMGREF B0 "{'source_type':'blank','destination_type':"
	"'volume','volume_type':'ssd'}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_type"},
    {"Nova's legacy image_id key",
	"{" HEAD "," IMGREF B0 "{'source_type':'image','image_id':'" IMG "'}]}",
	-EINVAL, "block_device_mapping_v2[0].image_id"},
    {"a blank source with a uuid",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','uuid':'" IMG "'}]}",
	-EINVAL, "block_device_mapping_v2[0].uuid"},
    {"an image source whose uuid is not a UUID",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'image',"
	"'destination_type':'volume','uuid':'cirros','volume_size':1}]}",
	-EINVAL, "block_device_mapping_v2[0].uuid"},
    {"a volume_id that differs from the volume's uuid",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1 "','volume_id':'" VOL2
	"','connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_id"},
    {"connection_info as a string",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1
	"','connection_info':'{}'}]}",
	-EINVAL, "block_device_mapping_v2[0].connection_info"},
    {"a bdm_uuid that is not a UUID",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1 "','bdm_uuid':'abc',"
	"'connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].bdm_uuid"},

    /* Nova's rules (prepare) */
    {"an image mapped to local without imageRef",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'image',"
	"'destination_type':'local','uuid':'" IMG "'}]}",
	-EINVAL, "block_device_mapping_v2[0].source_type"},
    {"an image mapped to local as a second disk",
	"{" HEAD "," IMGREF B0 "{'boot_index':1,'source_type':'image',"
	"'destination_type':'local','uuid':'" IMG "'}]}",
	-EINVAL, "block_device_mapping_v2[0].source_type"},
    {"a local root from another image than imageRef",
	"{" HEAD "," IMGREF B0 "{'boot_index':0,'source_type':'image',"
	"'destination_type':'local','uuid':'" IMG2 "'}]}",
	-EINVAL, "block_device_mapping_v2[0].uuid"},
    {"an image to volume without volume_size",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'image',"
	"'destination_type':'volume','uuid':'" IMG "','volume_id':'" VOL1
	"','connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"a blank volume without volume_size",
	"{" HEAD "," IMGREF B0 "{'source_type':'blank','destination_type':"
	"'volume','volume_id':'" VOL1 "','connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"a volume without uuid",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].uuid"},
    {"a snapshot without uuid",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'snapshot',"
	"'destination_type':'volume','volume_id':'" VOL1
	"','connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].uuid"},
    {"an image to volume without volume_id",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'image',"
	"'destination_type':'volume','uuid':'" IMG "','volume_size':1,"
	"'connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_id"},
    {"a volume mapped to local",
	"{" HEAD "," IMGREF B0 "{'source_type':'volume',"
	"'destination_type':'local','uuid':'" VOL1 "'}]}",
	-EINVAL, "block_device_mapping_v2[0].destination_type"},
    {"a snapshot mapped to local",
	"{" HEAD "," IMGREF B0 "{'source_type':'snapshot',"
	"'destination_type':'local','uuid':'" SNAP "'}]}",
	-EINVAL, "block_device_mapping_v2[0].destination_type"},
    {"a BDM without destination_type",
	"{" HEAD "," IMGREF B0 "{'source_type':'volume','uuid':'" VOL1 "'}]}",
	-EINVAL, "block_device_mapping_v2[0].destination_type"},
    {"a volume without connection_info",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1 "'}]}",
	-EINVAL, "block_device_mapping_v2[0].connection_info"},
    {"an iSCSI connection_info",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1 "','connection_info':"
	"{'driver_volume_type':'iscsi','data':{}}}]}",
	-EINVAL,
	"block_device_mapping_v2[0].connection_info.driver_volume_type"},
    {"a relative device_path",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1
	"','connection_info':" CONN("v/1") "}]}",
	-EINVAL, "block_device_mapping_v2[0].connection_info.data.device_path"},
    {"a device_path with ..",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1
	"','connection_info':" CONN("/v/../etc/shadow") "}]}",
	-EINVAL, "block_device_mapping_v2[0].connection_info.data.device_path"},
    {"a connection_info without data",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1 "','connection_info':"
	"{'driver_volume_type':'file'}}]}",
	-EINVAL, "block_device_mapping_v2[0].connection_info.data"},
    {"a volume id that is not a safe serial",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','uuid':'vol 1','connection_info':" CONN(
	    "/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].uuid"},
    {"a local disk with volume_id",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','volume_id':'" VOL1 "'}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_id"},
    {"a local disk with connection_info",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','connection_info':" CONN(
			    "/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].connection_info"},
    {"the same volume twice",
	"{" HEAD "," B0 VOLBDM(VOL1, 0) "," VOLBDM(VOL1, -1) "]}", -EEXIST,
	"block_device_mapping_v2[1].uuid"},
    {"two volumes whose ids share the first 20 characters",
	"{" HEAD "," B0 VOLBDM("0c3a9d52-7f1e-4b2a-9d3c-000000000000",
	    0) "," VOLBDM(VOL1, -1) "]}",
	-EEXIST, "block_device_mapping_v2[1].uuid"},
    {"the same bdm_uuid twice",
	"{" HEADF(
	    2, 0) "," IMGREF B0 "{'source_type':'blank',"
		  "'destination_type':'local','volume_size':1,'bdm_uuid':'" BDMU
		  "'},{'source_type':'blank','destination_type':'local',"
		  "'volume_size':1,'bdm_uuid':'" BDMU "'}]}",
	-EEXIST, "block_device_mapping_v2[1].bdm_uuid"},
    {"a bdm_uuid that would share a volume's serial",
	"{" HEADF(2, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','bdm_uuid':'" VOL1
			"'}," VOLBDM(VOL1, -1) "]}",
	-EEXIST, "block_device_mapping_v2[0].bdm_uuid"},
    {"a gap in the boot indexes",
	"{" HEAD "," B0 VOLBDM(VOL1, 0) "," VOLBDM(VOL2, 2) "]}", -EINVAL,
	"block_device_mapping_v2[1].boot_index"},
    {"two roots", "{" HEAD "," B0 VOLBDM(VOL1, 0) "," VOLBDM(VOL2, 0) "]}",
	-EINVAL, "block_device_mapping_v2[1].boot_index"},
    {"bootable disks but none with index 0",
	"{" HEAD "," B0 VOLBDM(VOL1, 1) "]}", -EINVAL,
	"block_device_mapping_v2[0].boot_index"},
    {"only non-bootable volumes and no imageRef",
	"{" HEAD "," B0 VOLBDM(VOL1, -1) "]}", -EINVAL, "imageRef"},
    {"two swap disks",
	"{" HEADF(0,
	    100) "," IMGREF B0 "{'source_type':'blank',"
		 "'destination_type':'local','guest_format':'swap','volume_size':"
		 "10},{'source_type':'blank','destination_type':'local',"
		 "'guest_format':'swap','volume_size':10}]}",
	-EINVAL, "block_device_mapping_v2[1]"},
    {"swap larger than the flavor's",
	"{" HEADF(0,
	    100) "," IMGREF B0 "{'source_type':'blank',"
		 "'destination_type':'local','guest_format':'swap','volume_size':"
		 "101}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_size"},
    {"swap when the flavor has none",
	"{" HEAD "," IMGREF B0 "{'source_type':'blank',"
	"'destination_type':'local','guest_format':'swap'}]}",
	-EINVAL, "block_device_mapping_v2[0]"},
    {"ephemerals larger than the flavor's",
	"{" HEADF(
	    10, 0) "," IMGREF B0 "{'source_type':'blank',"
		   "'destination_type':'local','volume_size':5},{'source_type':"
		   "'blank','destination_type':'local','volume_size':6}]}",
	-EINVAL, "block_device_mapping_v2[1].volume_size"},
    {"an ephemeral when the flavor has none",
	"{" HEAD "," IMGREF B0 "{'source_type':'blank',"
	"'destination_type':'local','volume_size':1}]}",
	-EINVAL, "block_device_mapping_v2[0]"},
    {"more local disks than max_local_block_devices",
	"{" HEADF(3,
	    0) "," IMGREF B0 "{'source_type':'blank',"
	       "'destination_type':'local','volume_size':1},{'source_type':"
	       "'blank','destination_type':'local','volume_size':1},"
	       "{'source_type':'blank','destination_type':'local','volume_size':"
	       "1}]}",
	-EINVAL, "block_device_mapping_v2"},
    {"a Xen device name",
	"{" HEADF(
	    1, 0) "," IMGREF B0 "{'source_type':'blank',"
		  "'destination_type':'local','device_name':'/dev/xvdb'}]}",
	-EINVAL, "block_device_mapping_v2[0].device_name"},
    {"a partition as device name",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','device_name':'vdb1'}]}",
	-EINVAL, "block_device_mapping_v2[0].device_name"},
    {"a device name without letter",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','device_name':'/dev/vd'}]}",
	-EINVAL, "block_device_mapping_v2[0].device_name"},
    {"a device name with a space",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','device_name':'vd b'}]}",
	-EINVAL, "block_device_mapping_v2[0].device_name"},
    {"a volume named like the root when booting from an image",
	"{" HEADF(2, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','volume_size':1},"
			"{'boot_index':1,'source_type':'volume',"
			"'destination_type':'volume','uuid':'" VOL1 "',"
			"'device_name':'/dev/vda','connection_info':" CONN(
			    "/dev/v") "}]}",
	-EINVAL, "block_device_mapping_v2[1].device_name"},
    {"a volume on the root's device name",
	"{" HEAD "," IMGREF B0 "{'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1 "','device_name':"
	"'vda','connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].device_name"},
    {"a tag over 60 characters",
	"{" HEADF(1,
	    0) "," IMGREF B0 "{'source_type':'blank',"
	       "'destination_type':'local','tag':'"
	       "0123456789012345678901234567890123456789012345678901234567890'}]}",
	-EINVAL, "block_device_mapping_v2[0].tag"},
    {"a tag with a comma",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','tag':'a,b'}]}",
	-EINVAL, "block_device_mapping_v2[0].tag"},
    {"a guest_format with shell characters",
	"{" HEADF(
	    1, 0) "," IMGREF B0 "{'source_type':'blank',"
		  "'destination_type':'local','guest_format':'ext4;rm'}]}",
	-EINVAL, "block_device_mapping_v2[0].guest_format"},
    {"swap guest_format on a volume",
	"{" HEAD "," IMGREF B0 "{'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1 "','guest_format':"
	"'swap','connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].guest_format"},
    {"a blank local disk as root",
	"{" HEADF(1, 0) "," B0 "{'boot_index':0,'source_type':'blank',"
			"'destination_type':'local'}]}",
	-EINVAL, "block_device_mapping_v2[0].boot_index"},
    {"a bootable swap",
	"{" HEADF(0,
	    10) "," IMGREF B0 "{'boot_index':1,'source_type':"
		"'blank','destination_type':'local','guest_format':'swap'}]}",
	-EINVAL, "block_device_mapping_v2[0].boot_index"},
    {"a blank local cdrom",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','device_type':'cdrom'}]}",
	-EINVAL, "block_device_mapping_v2[0].device_type"},
    {"a local lun",
	"{" HEAD "," IMGREF B0 "{'boot_index':0,'source_type':'image',"
	"'destination_type':'local','uuid':'" IMG "','device_type':'lun'"
	"}]}",
	-EINVAL, "block_device_mapping_v2[0].device_type"},
    {"a lun on a file",
	"{" HEAD "," IMGREF B0 "{'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1 "','device_type':"
	"'lun','connection_info':" CONN("/v") "}]}",
	-EINVAL,
	"block_device_mapping_v2[0].connection_info.driver_volume_type"},
    {"a lun on virtio",
	"{" HEAD "," IMGREF B0 "{'source_type':'volume',"
	"'destination_type':'volume','uuid':'" VOL1 "','device_type':"
	"'lun','disk_bus':'virtio','connection_info':" CONNB("/dev/sdq") "}]}",
	-EINVAL, "block_device_mapping_v2[0].device_type"},
    {"a cdrom on virtio",
	"{" HEAD "," IMGREF B0 "{'boot_index':0,'source_type':'image',"
	"'destination_type':'local','uuid':'" IMG "','device_type':'cdrom'"
	",'disk_bus':'virtio'}]}",
	-EINVAL, "block_device_mapping_v2[0].disk_bus"},
    {"a snapshot id that is not a safe serial",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'snapshot',"
	"'destination_type':'volume','uuid':'snap/1','volume_id':'" VOL1
	"','connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].uuid"},
    {"an image-to-volume whose volume_id is not a safe serial",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'image',"
	"'destination_type':'volume','uuid':'" IMG "','volume_size':1,"
	"'volume_id':'v:1','connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].volume_id"},
    {"a boot_index beyond int32",
	"{" HEAD "," B0 "{'source_type':'blank','destination_type':"
	"'local','boot_index':4294967296}]}",
	-EINVAL, "block_device_mapping_v2[0].boot_index"},
    {"a volume_id of 256 characters",
	"{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
	"'destination_type':'volume','uuid':'"
	"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
	"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
	"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
	"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
	"','connection_info':" CONN("/v") "}]}",
	-EINVAL, "block_device_mapping_v2[0].uuid"},
    {"a device name with four letters",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','device_name':'vdabcd'}]}",
	-EINVAL, "block_device_mapping_v2[0].device_name"},
    {"an upper-case device name",
	"{" HEADF(
	    1, 0) "," IMGREF B0 "{'source_type':'blank',"
		  "'destination_type':'local','device_name':'/dev/VDB'}]}",
	-EINVAL, "block_device_mapping_v2[0].device_name"},
    {"an empty tag",
	"{" HEADF(1, 0) "," IMGREF B0 "{'source_type':'blank',"
			"'destination_type':'local','tag':''}]}",
	-EINVAL, "block_device_mapping_v2[0].tag"},
    {"a null source_type", "{" HEAD "," IMGREF B0 "{'source_type':null}]}",
	-EINVAL, "block_device_mapping_v2[0].source_type"},
    {"a null uuid", "{" HEAD "," B0 "{'source_type':'volume','uuid':null}]}",
	-EINVAL, "block_device_mapping_v2[0].uuid"},
    {"a name of 256 characters",
	"{'name':'"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	"'," FLAVOR(0, 0) "}",
	-EINVAL, "name"},
    {"a flavor with 4097 vcpus",
	"{'name':'x','flavor':{'vcpus':4097,'memory_mb':1,'root_gb':1}}",
	-EINVAL, "flavor.vcpus"},
    {"a flavor that is a string", "{'name':'x','flavor':'m1.small'}", -EINVAL,
	"flavor"},
    {"image_meta.properties that is a list",
	"{" HEAD "," IMGREF "'image_meta':{'properties':[]}}", -EINVAL,
	"image_meta.properties"},
    {"a hw_disk_bus that is a number",
	"{" HEAD "," IMGREF "'image_meta':{'properties':{'hw_disk_bus':1}}}",
	-EINVAL, "image_meta.properties.hw_disk_bus"},
    {"a null block device mapping list, so no root",
	"{" HEAD ",'block_device_mapping_v2':null}", -EINVAL, "imageRef"},
    {"(control) a name of 255 two-byte characters is fine",
	"{'name':'"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
	"'," FLAVOR(0, 0) "," IMGREF "'start':true}",
	0, NULL},
    {"(control) three local disks beside two volumes are fine",
	"{" HEADF(5,
	    5) "," IMGREF B0 "{'source_type':'blank',"
	       "'destination_type':'local','guest_format':'swap','volume_size':"
	       "1},{'source_type':'blank','destination_type':'local',"
	       "'volume_size':1}," VOLBDM(VOL1, -1) "," VOLBDM(VOL2, -1) "]}",
	0, NULL},
};

START_TEST(test_prepare_refuses_invalid_request)
{
	const struct fail_case *c = &fail_cases[_i];
	struct instance *inst = NULL;
	struct err e = {0};
	int r = parse_prepare(c->json, NULL, &inst, &e);

	if (c->code == 0) {
		ck_assert_msg(r == 0, "%s: %d %s", c->name, r, e.msg);
		instance_free(inst);
		return;
	}
	ck_assert_msg(r == c->code, "%s: got %d (%s), want %d", c->name, r,
	    e.msg, c->code);
	ck_assert_int_eq(e.code, r);
	ck_assert_msg(STREQ(e.field, c->field),
	    "%s: field '%s' (%s), want '%s'", c->name, e.field, e.msg,
	    c->field);
	ck_assert_msg(e.msg[0] != '\0' && strchr(e.msg, '\n') == NULL,
	    "%s: message '%s'", c->name, e.msg);
}
END_TEST

START_TEST(test_prepare_enforces_max_bdms_and_max_local)
{
	const struct bdm_limits lim = {.max_local_block_devices = -1,
	    .max_disk_devices_to_attach = -1,
	    .max_bdms = 1};
	const struct bdm_limits none = {.max_local_block_devices = 0,
	    .max_disk_devices_to_attach = -1,
	    .max_bdms = 64};
	struct instance *inst = NULL;
	struct err e = {0};

	ck_assert_int_eq(parse_prepare("{" HEAD "," B0 VOLBDM(
					   VOL1, 0) "," VOLBDM(VOL2, -1) "]}",
			     &lim, &inst, &e),
	    -EINVAL);
	ck_assert_str_eq(e.field, "block_device_mapping_v2");
	err_clear(&e);
	/* max_local_block_devices 0: an image boot is impossible, a volume
	 * boot is fine */
	ck_assert_int_eq(parse_prepare("{" HEAD "," IMGREF "'start':true}",
			     &none, &inst, &e),
	    -EINVAL);
	ck_assert_str_eq(e.field, "block_device_mapping_v2");
	err_clear(&e);
	ck_assert_int_eq(parse_prepare("{" HEAD "," B0 VOLBDM(VOL1, 0) "]}",
			     &none, &inst, &e),
	    0);
	instance_free(inst);
}
END_TEST

START_TEST(test_prepare_names_flavor_fields_for_flavor_disks)
{
	const struct bdm_limits lim = {.max_local_block_devices = 2,
	    .max_disk_devices_to_attach = -1,
	    .max_bdms = 64};
	struct instance *inst = NULL;
	struct err e = {0};

	/* root + flavor ephemeral + flavor swap = 3 > 2 */
	ck_assert_int_eq(
	    parse_prepare(
		"{" HEADF(1, 1) "," IMGREF "'start':true}", &lim, &inst, &e),
	    -EINVAL);
	ck_assert_str_eq(e.field, "block_device_mapping_v2");
}
END_TEST

/* ---- hostile JSON ------------------------------------------------ */

struct raw_case {
	const char *name;
	const char *body; /* sent as is, no ' conversion */
	size_t len; /* 0: strlen */
	const char *field;
};

#define RHEAD \
	"\"name\":\"x\",\"flavor\":{\"vcpus\":1,\"memory_mb\":1,\"root_gb\":1}"

static const struct raw_case raw_cases[] = {
    {"an empty body", "", 0, ""},
    {"whitespace only", "  \n ", 0, ""},
    {"a truncated object", "{", 0, ""},
    {"a truncated request", "{" RHEAD, 0, "flavor"},
    {"a truncated string", "{\"name\":\"x", 0, "name"},
    {"trailing garbage", "{" RHEAD "} x", 0, ""},
    {"two objects", "{" RHEAD "}{}", 0, ""},
    {"a top-level array", "[]", 0, ""},
    {"a top-level string", "\"x\"", 0, ""},
    {"single-quoted strings", "{'name':'x'}", 0, ""},
    {"NaN", "{" RHEAD ",\"start\":NaN}", 0, "start"},
    {"a comment", "{" RHEAD ",/* c */\"start\":true}", 0, "flavor"},
    {"a trailing comma", "{" RHEAD ",}", 0, "flavor"},
    {"a leading zero", "{\"name\":\"x\",\"flavor\":{\"vcpus\":01}}", 0,
	"flavor.vcpus"},
    {"True in capitals", "{" RHEAD ",\"start\":True}", 0, "start"},
    {"12abc for an integer",
	"{\"name\":\"x\",\"flavor\":{\"vcpus\":12abc,\"memory_mb\":1}}", 0,
	"flavor.vcpus"},
    {"\"12abc\" for an integer",
	"{\"name\":\"x\",\"flavor\":{\"vcpus\":\"12abc\",\"memory_mb\":1,"
	"\"root_gb\":1}}",
	0, "flavor.vcpus"},
    {"a float for an integer",
	"{\"name\":\"x\",\"flavor\":{\"vcpus\":3.9,\"memory_mb\":1,"
	"\"root_gb\":1}}",
	0, "flavor.vcpus"},
    {"an exponent for an integer",
	"{\"name\":\"x\",\"flavor\":{\"vcpus\":1e1,\"memory_mb\":1,"
	"\"root_gb\":1}}",
	0, "flavor.vcpus"},
    {"a number too big for int64",
	"{\"name\":\"x\",\"flavor\":{\"vcpus\":1,\"memory_mb\":1,"
	"\"root_gb\":99999999999999999999}}",
	0, "flavor.root_gb"},
    {"INT64_MAX exactly",
	"{\"name\":\"x\",\"flavor\":{\"vcpus\":1,\"memory_mb\":1,"
	"\"root_gb\":9223372036854775807}}",
	0, "flavor.root_gb"},
    {"a number too small for int64",
	"{\"name\":\"x\",\"flavor\":{\"vcpus\":1,\"memory_mb\":1,"
	"\"root_gb\":-9223372036854775809}}",
	0, "flavor.root_gb"},
    {"a huge volume_size",
	"{" RHEAD ",\"block_device_mapping_v2\":[{\"source_type\":\"blank\","
	"\"volume_size\":2147483648}]}",
	0, "block_device_mapping_v2[0].volume_size"},
    {"a boolean as a string", "{" RHEAD ",\"start\":\"false\"}", 0, "start"},
    {"a duplicate top-level key", "{\"name\":\"x\"," RHEAD "}", 0, "name"},
    {"a duplicate key spelt with an escape", "{" RHEAD ",\"na\\u006de\":\"y\"}",
	0, "name"},
    {"a duplicate key inside a BDM",
	"{" RHEAD ",\"block_device_mapping_v2\":[{},{\"boot_index\":0,"
	"\"source_type\":\"blank\",\"boot_index\":1}]}",
	0, "block_device_mapping_v2[1].boot_index"},
    {"a duplicate key deep in connection_info",
	"{" RHEAD ",\"block_device_mapping_v2\":[{\"connection_info\":{"
	"\"data\":{\"a\":1,\"a\":2}}}]}",
	0, "block_device_mapping_v2[0].connection_info.data.a"},
    {"a duplicate key in a large object",
	"{" RHEAD ",\"metadata\":{\"k01\":\"\",\"k02\":\"\",\"k03\":\"\","
	"\"k04\":\"\",\"k05\":\"\",\"k06\":\"\",\"k07\":\"\",\"k08\":\"\","
	"\"k09\":\"\",\"k10\":\"\",\"k11\":\"\",\"k12\":\"\",\"k13\":\"\","
	"\"k14\":\"\",\"k15\":\"\",\"k16\":\"\",\"k17\":\"\",\"k18\":\"\","
	"\"k03\":\"\"}}",
	0, "metadata"},
    {"an unknown key", "{" RHEAD ",\"nme\":\"x\"}", 0, "nme"},
    {"nesting 9 deep", "{" RHEAD ",\"a\":[[[[[[[[1]]]]]]]]}", 0,
	"a[0][0][0][0][0][0][0]"},
    {"nesting 8 deep is parsed (and the key then refused)",
	"{" RHEAD ",\"a\":[[[[[[[1]]]]]]]}", 0, "a"},
    {"a NUL byte in the body", "{\"name\":\"x\0\"}", 13, ""},
    {"an escaped NUL in a string", "{\"name\":\"x\\u0000\"}", 0, "name"},
    {"invalid UTF-8 in a string", "{\"name\":\"\xff\"}", 0, "name"},
    {"overlong UTF-8 in a string", "{\"name\":\"\xc0\xaf\"}", 0, "name"},
    {"UTF-8 encoded surrogate", "{\"name\":\"\xed\xa0\x80\"}", 0, "name"},
    {"a lone surrogate escape", "{\"name\":\"\\ud800\"}", 0, "name"},
    {"a lone low surrogate escape", "{\"name\":\"\\udc00x\"}", 0, "name"},
    {"a raw control character", "{\"name\":\"a\x01\"}", 0, "name"},
    {"an escaped control character", "{\"name\":\"a\\u001f\"}", 0, "name"},
    {"a backspace escape", "{\"name\":\"a\\b\"}", 0, "name"},
    {"DEL", "{\"name\":\"a\x7f\"}", 0, "name"},
    {"invalid UTF-8 in a key", "{\"\xfe\":1}", 0, ""},
    {"a newline in a key", "{" RHEAD ",\"a\\nb\":1}", 0, ""},
    {"a raw tab in a key", "{" RHEAD ",\"a\tb\":1}", 0, ""},
    {"a bad escape", "{\"name\":\"\\x41\"}", 0, "name"},
    {"a short \\u escape", "{\"name\":\"\\u41\"}", 0, "name"},
};

START_TEST(test_parse_refuses_hostile_json)
{
	const struct raw_case *c = &raw_cases[_i];
	struct instance *inst = NULL;
	struct err e = {0};
	size_t len = c->len ? c->len : strlen(c->body);
	/* a heap copy, so that ASan sees reads past the end */
	char *body = malloc(len ? len : 1);
	int r;

	memcpy(body, c->body, len);
	r = bdm_json_parse_create(body, len, &inst, &e);
	free(body);
	ck_assert_msg(r == -EINVAL, "%s: got %d", c->name, r);
	ck_assert_msg(STREQ(e.field, c->field),
	    "%s: field '%s' (%s), want '%s'", c->name, e.field, e.msg,
	    c->field);
	ck_assert_ptr_null(inst);
}
END_TEST

static char *
long_string_request(size_t n, bool as_key)
{
	size_t cap = n + 256;
	char *b = malloc(cap), *p;

	ck_assert_ptr_nonnull(b);
	p = b + sprintf(b, as_key ? "{\"" : "{\"name\":\"");
	memset(p, 'a', n);
	p += n;
	sprintf(p, as_key ? "\":1}" : "\"}");
	return b;
}

START_TEST(test_parse_bounds_string_length)
{
	struct instance *inst = NULL;
	struct err e = {0};
	char *b = long_string_request(1025, false);

	ck_assert_int_eq(
	    bdm_json_parse_create(b, strlen(b), &inst, &e), -EINVAL);
	ck_assert_str_eq(e.field, "name");
	ck_assert_ptr_nonnull(strstr(e.msg, "1024"));
	free(b);

	/* 1024 bytes pass the parser; the name rule (255) then refuses */
	err_clear(&e);
	b = long_string_request(1024, false);
	ck_assert_int_eq(
	    bdm_json_parse_create(b, strlen(b), &inst, &e), -EINVAL);
	ck_assert_str_eq(e.field, "name");
	ck_assert_ptr_null(strstr(e.msg, "1024"));
	free(b);

	err_clear(&e);
	b = long_string_request(1025, true);
	ck_assert_int_eq(
	    bdm_json_parse_create(b, strlen(b), &inst, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "1024"));
	free(b);

	/* 4-byte escapes count by what they decode to */
	err_clear(&e);
	{
		char body[1300];
		size_t n = (size_t)sprintf(body, "{\"name\":\"");

		for (int k = 0; k < 200; k++)
			n += (size_t)sprintf(body + n, "\\u00e9");
		sprintf(body + n,
		    "\",\"flavor\":{\"vcpus\":1,\"memory_mb\":1,"
		    "\"root_gb\":1}}");
		ck_assert_int_eq(
		    bdm_json_parse_create(body, strlen(body), &inst, &e), 0);
		ck_assert_uint_eq(strlen(inst->name), 400);
		instance_free(inst);
	}
}
END_TEST

START_TEST(test_parse_accepts_1000_bdms_and_prepare_refuses_them)
{
	size_t cap = 1000 * 64 + 256, n;
	char *b = malloc(cap);
	struct instance *inst = NULL;
	struct err e = {0};

	n = (size_t)sprintf(b, "{" RHEAD ",\"block_device_mapping_v2\":[");
	for (int i = 0; i < 1000; i++)
		n += (size_t)sprintf(b + n,
		    "%s{\"source_type\":\"blank\",\"destination_type\":"
		    "\"local\"}",
		    i ? "," : "");
	sprintf(b + n, "]}");
	ck_assert_int_eq(bdm_json_parse_create(b, strlen(b), &inst, &e), 0);
	ck_assert_uint_eq(inst->n_bdms, 1000);
	ck_assert_int_eq(bdm_instance_prepare(inst, NULL, &e), -EINVAL);
	ck_assert_str_eq(e.field, "block_device_mapping_v2");
	instance_free(inst);
	free(b);
}
END_TEST

START_TEST(test_parse_limits_metadata_to_128_items)
{
	char body[8192];
	struct instance *inst = NULL;
	struct err e = {0};
	size_t n;

	for (int items = 128; items <= 129; items++) {
		n = (size_t)sprintf(body, "{" RHEAD ",\"metadata\":{");
		for (int k = 0; k < items; k++)
			n += (size_t)sprintf(
			    body + n, "%s\"k%d\":\"v\"", k ? "," : "", k);
		sprintf(body + n, "}}");
		err_clear(&e);
		if (items == 128) {
			ck_assert_int_eq(bdm_json_parse_create(
					     body, strlen(body), &inst, &e),
			    0);
			instance_free(inst);
			inst = NULL;
		} else {
			ck_assert_int_eq(bdm_json_parse_create(
					     body, strlen(body), &inst, &e),
			    -EINVAL);
			ck_assert_str_eq(e.field, "metadata");
		}
	}
}
END_TEST

START_TEST(test_errors_stay_valid_utf8_with_long_keys)
{
	struct instance *inst = NULL;
	struct err e = {0};
	char body[2048];
	size_t n = (size_t)sprintf(body, "{\"metadata\":{\"");

	/* an invalid metadata key of 300 bytes of 3-byte characters */
	for (int k = 0; k < 100; k++)
		n += (size_t)sprintf(body + n, "\xe2\x82\xac");
	sprintf(body + n, "\":\"v\"}}");
	ck_assert_int_eq(
	    bdm_json_parse_create(body, strlen(body), &inst, &e), -EINVAL);
	ck_assert(util_utf8_valid(e.field, strlen(e.field)));
	ck_assert(util_utf8_valid(e.msg, strlen(e.msg)));
	ck_assert_ptr_nonnull(strstr(e.field, "..."));
	ck_assert_uint_le(strlen(e.field), 9 + 64 + 3);

	/* a top-level unknown key, same length */
	err_clear(&e);
	n = (size_t)sprintf(body, "{\"");
	for (int k = 0; k < 100; k++)
		n += (size_t)sprintf(body + n, "\xe2\x82\xac");
	sprintf(body + n, "\":1}");
	ck_assert_int_eq(
	    bdm_json_parse_create(body, strlen(body), &inst, &e), -EINVAL);
	ck_assert(util_utf8_valid(e.field, strlen(e.field)));
	ck_assert(util_utf8_valid(e.msg, strlen(e.msg)));
	ck_assert_ptr_nonnull(strstr(e.msg, "unknown field"));

	/* a duplicate long key deep inside connection_info */
	err_clear(&e);
	n = (size_t)sprintf(body,
	    "{\"block_device_mapping_v2\":[{"
	    "\"connection_info\":{\"");
	for (int k = 0; k < 100; k++)
		n += (size_t)sprintf(body + n, "\xe2\x82\xac");
	n += (size_t)sprintf(body + n, "\":1,\"");
	for (int k = 0; k < 100; k++)
		n += (size_t)sprintf(body + n, "\xe2\x82\xac");
	sprintf(body + n, "\":2}}]}");
	ck_assert_int_eq(
	    bdm_json_parse_create(body, strlen(body), &inst, &e), -EINVAL);
	ck_assert(util_utf8_valid(e.field, strlen(e.field)));
	ck_assert(util_utf8_valid(e.msg, strlen(e.msg)));
	ck_assert_ptr_nonnull(strstr(e.msg, "duplicate key"));
}
END_TEST

START_TEST(test_parse_handles_escapes_and_unicode)
{
	struct instance *inst = NULL;
	struct err e = {0};
	/* "é" escaped, a raw 4-byte character, an escaped surrogate pair,
	 * and an escaped slash */
	const char *body = "{\"name\":\"caf\\u00e9 \xf0\x9f\x98\x80 "
			   "\\ud83d\\ude00 a\\/b\",\"flavor\":{\"vcpus\":1,"
			   "\"memory_mb\":1,\"root_gb\":0},\"metadata\":{"
			   "\"k\":\"/x\"}}";

	ck_assert_int_eq(
	    bdm_json_parse_create(body, strlen(body), &inst, &e), 0);
	ck_assert_str_eq(
	    inst->name, "caf\xc3\xa9 \xf0\x9f\x98\x80 \xf0\x9f\x98\x80 a/b");
	/* stored metadata text does not escape slashes */
	ck_assert_str_eq(inst->metadata, "{\"k\":\"/x\"}");
	instance_free(inst);
}
END_TEST

/* ---- jfield ------------------------------------------------------ */

static struct json_object *
jparse(const char *s)
{
	static const struct jfield_limits lim = {8, 1024};
	struct json_object *o = NULL;
	struct err e = {0};
	char *b = q(s);

	ck_assert_msg(
	    jfield_parse(b, strlen(b), &lim, &o, &e) == 0, "%s: %s", s, e.msg);
	free(b);
	return o;
}

START_TEST(test_jfield_getters_check_types)
{
	_cleanup_(jfield_putp) struct json_object *o = jparse(
	    "{'i':12,'s':'12','f':1.5,'b':true,'n':null,'o':{},'a':[1,2]}");
	struct err e = {0};
	const char *s = NULL;
	int64_t x = 7;
	bool b = false;
	struct json_object *v = NULL;

	ck_assert_int_eq(
	    jfield_int(o, "p", "i", JFIELD_REQUIRED, 0, 20, &x, &e), 1);
	ck_assert_int_eq(x, 12);
	ck_assert_int_eq(jfield_int(o, "p", "s", 0, 0, 20, &x, &e), -EINVAL);
	ck_assert_str_eq(e.field, "p.s");
	ck_assert_ptr_nonnull(strstr(e.msg, "expected integer"));
	err_clear(&e);
	ck_assert_int_eq(jfield_int(o, "", "f", 0, 0, 20, &x, &e), -EINVAL);
	ck_assert_str_eq(e.field, "f");
	err_clear(&e);
	ck_assert_int_eq(jfield_int(o, NULL, "i", 0, 13, 20, &x, &e), -EINVAL);
	ck_assert_int_eq(x, 12);
	err_clear(&e);
	ck_assert_int_eq(jfield_str(o, NULL, "i", 0, &s, &e), -EINVAL);
	err_clear(&e);
	ck_assert_int_eq(jfield_str(o, NULL, "s", 0, &s, &e), 1);
	ck_assert_str_eq(s, "12");
	ck_assert_int_eq(jfield_bool(o, NULL, "s", 0, &b, &e), -EINVAL);
	err_clear(&e);
	ck_assert_int_eq(jfield_bool(o, NULL, "b", 0, &b, &e), 1);
	ck_assert(b);
	/* null: refused unless NULLABLE; absent: 0 unless REQUIRED */
	ck_assert_int_eq(jfield_int(o, NULL, "n", 0, 0, 1, &x, &e), -EINVAL);
	err_clear(&e);
	ck_assert_int_eq(
	    jfield_int(o, NULL, "n", JFIELD_NULLABLE, 0, 1, &x, &e), 0);
	ck_assert_int_eq(jfield_int(o, NULL, "n",
			     JFIELD_NULLABLE | JFIELD_REQUIRED, 0, 1, &x, &e),
	    -EINVAL);
	err_clear(&e);
	ck_assert_int_eq(jfield_int(o, NULL, "zz", 0, 0, 1, &x, &e), 0);
	ck_assert_int_eq(
	    jfield_int(o, NULL, "zz", JFIELD_REQUIRED, 0, 1, &x, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "is required"));
	err_clear(&e);
	ck_assert_int_eq(jfield_obj(o, NULL, "o", 0, &v, &e), 1);
	ck_assert_int_eq(jfield_obj(o, NULL, "a", 0, &v, &e), -EINVAL);
	err_clear(&e);
	ck_assert_int_eq(jfield_array(o, NULL, "a", 0, 2, &v, &e), 1);
	ck_assert_int_eq(jfield_array(o, NULL, "a", 0, 1, &v, &e), -EINVAL);
}
END_TEST

START_TEST(test_jfield_check_keys_refuses_unknown_keys)
{
	static const char *const names[] = {"a", "b", "c"};
	_cleanup_(jfield_putp) struct json_object *o = jparse("{'a':1,'c':2}");
	_cleanup_(jfield_putp) struct json_object *bad =
	    jparse("{'a':1,'d':2}");
	struct err e = {0};

	ck_assert_int_eq(jfield_check_keys(o, "x", names, 3, &e), 0);
	ck_assert_int_eq(jfield_check_keys(bad, "x", names, 3, &e), -EINVAL);
	ck_assert_str_eq(e.field, "x.d");
	ck_assert_int_eq(jfield_lookup(names, 3, "c"), 2);
	ck_assert_int_eq(jfield_lookup(names, 3, "0"), -1);
}
END_TEST

START_TEST(test_jfield_parse_finds_duplicates_in_big_objects)
{
	static const struct jfield_limits lim = {8, 1024};
	struct json_object *o = NULL;
	struct err e = {0};
	char body[20000];
	size_t n = (size_t)sprintf(body, "{\"x\":{");

	/* 1000 distinct keys then a repeat of the 500th */
	for (int k = 0; k < 1000; k++)
		n += (size_t)sprintf(body + n, "\"key%d\":%d,", k, k);
	n += (size_t)sprintf(body + n, "\"key500\":0}}");
	ck_assert_int_eq(jfield_parse(body, n, &lim, &o, &e), -EINVAL);
	ck_assert_str_eq(e.field, "x");
	ck_assert_ptr_nonnull(strstr(e.msg, "key500"));

	/* without the repeat it parses */
	err_clear(&e);
	n = (size_t)sprintf(body, "{\"x\":{");
	for (int k = 0; k < 1000; k++)
		n += (size_t)sprintf(
		    body + n, "%s\"key%d\":%d", k ? "," : "", k, k);
	n += (size_t)sprintf(body + n, "},\"y\":{\"key1\":1}}");
	ck_assert_int_eq(jfield_parse(body, n, &lim, &o, &e), 0);
	ck_assert_int_eq(
	    json_object_object_length(json_object_object_get(o, "x")), 1000);
	json_object_put(o);
}
END_TEST

START_TEST(test_jfield_builders_make_nulls_and_values)
{
	_cleanup_(jfield_putp) struct json_object *o = json_object_new_object();
	int rc = 0;
	char *t;

	jfield_add_str(o, "s", "a/b", &rc);
	jfield_add_str(o, "n", NULL, &rc);
	jfield_add_int(o, "i", -3, &rc);
	jfield_add_bool(o, "b", false, &rc);
	jfield_add_take(o, "o", json_object_new_object(), &rc);
	ck_assert_int_eq(rc, 0);
	t = jfield_to_text(o);
	ck_assert_str_eq(
	    t, "{\"s\":\"a/b\",\"n\":null,\"i\":-3,\"b\":false,\"o\":{}}");
	free(t);
}
END_TEST

START_TEST(test_jfield_scan_picks_wanted_values)
{
	static const struct jfield_limits lim = {8, 1024};
	struct jfield_want w[] = {
	    {.path = "a", .type = json_type_string},
	    {.path = "b.c", .type = json_type_string},
	    {.path = "b", .type = json_type_object},
	    {.path = "d", .type = json_type_string},
	    {.path = "e.c", .type = json_type_string},
	};
	struct err e = {0};
	const char *text =
	    "{\"x\":{\"a\":\"no\"},\"a\":\"A\\u00e9\",\"b\":{\"c\":"
	    "\"C\",\"z\":[{\"c\":\"no\"}]},\"d\":7,\"e\":[{\"c\":"
	    "\"no\"}]}";

	ck_assert_int_eq(
	    jfield_scan(text, strlen(text), &lim, w, ELEMENTSOF(w), &e), 0);
	ck_assert(w[0].found && w[0].type_ok);
	ck_assert_str_eq(w[0].str, "A\xc3\xa9");
	ck_assert(w[1].found && w[1].type_ok);
	ck_assert_str_eq(w[1].str, "C");
	ck_assert(w[2].found && w[2].type_ok);
	ck_assert_ptr_null(w[2].str);
	ck_assert(w[3].found && !w[3].type_ok);
	ck_assert_ptr_null(w[3].str);
	ck_assert(!w[4].found);
	free(w[0].str);
	free(w[1].str);

	/* the same strictness as jfield_parse; nothing left allocated */
	text = "{\"a\":\"x\",\"a\":\"y\"}";
	ck_assert_int_eq(
	    jfield_scan(text, strlen(text), &lim, w, ELEMENTSOF(w), &e),
	    -EINVAL);
	ck_assert_str_eq(e.field, "a");
	ck_assert_ptr_null(w[0].str);
	err_clear(&e);
	text = "{\"a\":\"x\"} x";
	ck_assert_int_eq(
	    jfield_scan(text, strlen(text), &lim, w, ELEMENTSOF(w), &e),
	    -EINVAL);
	ck_assert_ptr_null(w[0].str);
}
END_TEST

START_TEST(test_conn_source_names_each_missing_or_mistyped_part)
{
	static const struct {
		const char *text;
		const char *field;
	} cases[] = {
	    {"{\"data\":{\"device_path\":\"/d\"}}", "c.driver_volume_type"},
	    {"{\"driver_volume_type\":null,\"data\":{}}",
		"c.driver_volume_type"},
	    {"{\"driver_volume_type\":\"file\"}", "c.data"},
	    {"{\"driver_volume_type\":\"file\",\"data\":\"x\"}", "c.data"},
	    {"{\"driver_volume_type\":\"file\",\"data\":{}}",
		"c.data.device_path"},
	    {"{\"driver_volume_type\":\"file\",\"data\":{\"device_path\":"
	     "[\"/d\"]}}",
		"c.data.device_path"},
	    {"{\"driver_volume_type\":\"file\",\"data\":{\"device_path\":"
	     "\"/d/\"}}",
		"c.data.device_path"},
	    {"{\"driver_volume_type\":\"rbd\",\"data\":{\"device_path\":"
	     "\"/d\"}}",
		"c.driver_volume_type"},
	    {"[]", "c"},
	    {"", "c"},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct err e = {0};
		char *type = NULL, *path = NULL;

		ck_assert_msg(bdm_json_conn_source(cases[i].text, "c", &type,
				  &path, &e) == -EINVAL,
		    "%s", cases[i].text);
		ck_assert_msg(STREQ(e.field, cases[i].field), "%s: %s (%s)",
		    cases[i].text, e.field, e.msg);
		ck_assert_ptr_null(type);
		ck_assert_ptr_null(path);
	}
}
END_TEST

/* ---- many BDMs: the sorted uniqueness checks ---------------------- */

/* A boot-from-volume request with n volumes v00.., where BDM `at` takes
 * something from BDM `of`: its volume id (what 'i'), an id sharing the
 * first 20 characters ('p'), its device name ('d') or its bdm_uuid
 * ('u'). at < 0: no clash. */
static char *
many_volumes(int n, char what, int at, int of)
{
	size_t cap = (size_t)n * 400 + 256, len;
	char *b = malloc(cap);

	ck_assert_ptr_nonnull(b);
	len = (size_t)snprintf(b, cap,
	    "{\"name\":\"many\",\"flavor\":{\"vcpus\":1,\"memory_mb\":1,"
	    "\"root_gb\":1},\"block_device_mapping_v2\":[");
	for (int i = 0; i < n; i++) {
		int idn = i == at && (what == 'i' || what == 'p') ? of : i;
		char id[64], extra[128] = "";

		snprintf(id, sizeof(id), "v%02d-0000000000000000-%s", idn,
		    i == at && what == 'p' ? "y" : "x");
		if (what == 'd' && (i == at || i == of))
			snprintf(
			    extra, sizeof(extra), ",\"device_name\":\"sdq\"");
		if (what == 'u' && (i == at || i == of))
			snprintf(
			    extra, sizeof(extra), ",\"bdm_uuid\":\"" BDMU "\"");
		len += (size_t)snprintf(b + len, cap - len,
		    "%s{\"boot_index\":%d,\"source_type\":\"volume\","
		    "\"destination_type\":\"volume\",\"uuid\":\"%s\"%s,"
		    "\"connection_info\":{\"driver_volume_type\":\"file\","
		    "\"data\":{\"device_path\":\"/v/%d\"}}}",
		    i ? "," : "", i == 0 ? 0 : -1, id, extra, i);
	}
	snprintf(b + len, cap - len, "]}");
	return b;
}

/* each clash twice: among 12 BDMs (pairwise) and among 40 (sorted) */
static const struct {
	const char *name;
	int n;
	char what;
	int at, of;
	int code;
	const char *field;
} many_cases[] = {
    {"no clash among 40", 40, 0, -1, -1, 0, NULL},
    {"a volume mapped twice", 40, 'i', 25, 3, -EEXIST,
	"block_device_mapping_v2[25].uuid"},
    {"a volume mapped twice (pairwise)", 12, 'i', 11, 3, -EEXIST,
	"block_device_mapping_v2[11].uuid"},
    {"two volumes with one serial", 40, 'p', 20, 7, -EEXIST,
	"block_device_mapping_v2[20].uuid"},
    {"two volumes with one serial (pairwise)", 12, 'p', 10, 7, -EEXIST,
	"block_device_mapping_v2[10].uuid"},
    /* names a request gives are dropped (Nova's libvirt driver), so a
     * name given twice is no clash */
    {"a device name given twice", 40, 'd', 28, 5, 0, NULL},
    {"a device name given twice (pairwise)", 40, 'd', 8, 5, 0, NULL},
    {"a bdm_uuid given twice", 40, 'u', 39, 10, -EEXIST,
	"block_device_mapping_v2[39].bdm_uuid"},
    {"a bdm_uuid given twice (pairwise)", 12, 'u', 11, 10, -EEXIST,
	"block_device_mapping_v2[11].bdm_uuid"},
    {"a clash between the first two", 40, 'i', 1, 0, -EEXIST,
	"block_device_mapping_v2[1].uuid"},
    {"a clash between the first two (pairwise)", 12, 'i', 1, 0, -EEXIST,
	"block_device_mapping_v2[1].uuid"},
};

START_TEST(test_prepare_checks_uniqueness_of_many_bdms_by_sorting)
{
	const struct bdm_limits lim = {.max_local_block_devices = 3,
	    .max_disk_devices_to_attach = -1,
	    .max_bdms = 1024};
	struct instance *inst = NULL;
	struct err e = {0};
	char *body = many_volumes(
	    40, many_cases[_i].what, many_cases[_i].at, many_cases[_i].of);
	int r = bdm_json_parse_create(body, strlen(body), &inst, &e);

	ck_assert_msg(r == 0, "%s", e.msg);
	r = bdm_instance_prepare(inst, &lim, &e);
	ck_assert_msg(r == many_cases[_i].code, "%s: %d %s",
	    many_cases[_i].name, r, e.msg);
	if (r == 0) {
		ck_assert_uint_eq(inst->n_bdms, (size_t)many_cases[_i].n);
		for (size_t i = 0; i < inst->n_bdms; i++)
			ck_assert(util_uuid_is_canonical(inst->bdms[i].uuid));
	} else
		ck_assert_msg(STREQ(e.field, many_cases[_i].field),
		    "%s: %s (%s)", many_cases[_i].name, e.field, e.msg);
	instance_free(inst);
	free(body);
}
END_TEST

START_TEST(test_prepare_refuses_a_given_uuid_on_a_volume_serial_among_many)
{
	const struct bdm_limits lim = {.max_local_block_devices = -1,
	    .max_disk_devices_to_attach = -1,
	    .max_bdms = 1024};
	struct instance *inst = NULL;
	struct err e = {0};
	size_t cap = 40 * 400, len;
	char *b = malloc(cap);

	/* an image root whose bdm_uuid is volume 17's id, 30 ephemerals
	 * of 1 GiB, 20 volumes: 51 BDMs */
	len = (size_t)snprintf(b, cap,
	    "{\"name\":\"m\",\"flavor\":{\"vcpus\":1,\"memory_mb\":1,"
	    "\"root_gb\":1,\"ephemeral_gb\":30},\"imageRef\":\"" IMG "\","
	    "\"block_device_mapping_v2\":[{\"boot_index\":0,\"source_type\":"
	    "\"image\",\"destination_type\":\"local\",\"uuid\":\"" IMG "\","
	    "\"bdm_uuid\":\"%s\"}",
	    VOL1);
	for (int i = 0; i < 30; i++)
		len += (size_t)snprintf(b + len, cap - len,
		    ",{\"source_type\":\"blank\",\"destination_type\":\"local\","
		    "\"volume_size\":1}");
	for (int i = 0; i < 20; i++) {
		char id[64];

		snprintf(id, sizeof(id), "w%02d-0000000000000000-x", i);
		len += (size_t)snprintf(b + len, cap - len,
		    ",{\"source_type\":\"volume\",\"destination_type\":"
		    "\"volume\",\"uuid\":\"%s\",\"connection_info\":{"
		    "\"driver_volume_type\":\"file\",\"data\":{\"device_path\":"
		    "\"/v/%d\"}}}",
		    i == 17 ? VOL1 : id, i);
	}
	snprintf(b + len, cap - len, "]}");
	ck_assert_int_eq(bdm_json_parse_create(b, strlen(b), &inst, &e), 0);
	ck_assert_int_eq(bdm_instance_prepare(inst, &lim, &e), -EEXIST);
	ck_assert_str_eq(e.field, "block_device_mapping_v2[0].bdm_uuid");
	instance_free(inst);
	free(b);
}
END_TEST

START_TEST(test_prepare_draws_distinct_serials_for_many_local_disks)
{
	const struct bdm_limits lim = {.max_local_block_devices = -1,
	    .max_disk_devices_to_attach = -1,
	    .max_bdms = 1024};
	struct instance *inst = NULL;
	struct err e = {0};
	size_t cap = 200 * 100, len;
	char *b = malloc(cap);

	len = (size_t)snprintf(b, cap,
	    "{\"name\":\"m\",\"flavor\":{\"vcpus\":1,\"memory_mb\":1,"
	    "\"root_gb\":1,\"ephemeral_gb\":200},\"imageRef\":\"" IMG "\","
	    "\"block_device_mapping_v2\":[");
	for (int i = 0; i < 200; i++)
		len += (size_t)snprintf(b + len, cap - len,
		    "%s{\"source_type\":\"blank\",\"destination_type\":\"local\","
		    "\"volume_size\":1}",
		    i ? "," : "");
	snprintf(b + len, cap - len, "]}");
	ck_assert_int_eq(bdm_json_parse_create(b, strlen(b), &inst, &e), 0);
	ck_assert_int_eq(bdm_instance_prepare(inst, &lim, &e), 0);
	ck_assert_uint_eq(inst->n_bdms, 201);
	for (size_t i = 0; i < inst->n_bdms; i++)
		for (size_t k = 0; k < i; k++)
			ck_assert(strncmp(
			    inst->bdms[i].uuid, inst->bdms[k].uuid, 20));
	instance_free(inst);
	free(b);
}
END_TEST

/* ---- enums and model --------------------------------------------- */

START_TEST(test_enum_tables_round_trip)
{
	enum bdm_source s;
	enum bdm_dest d;
	enum bdm_device_type t;
	enum bdm_bus b;
	enum instance_state st;

	for (int v = BDM_SOURCE_IMAGE; v <= BDM_SOURCE_BLANK; v++) {
		ck_assert_int_eq(
		    bdm_source_from_string(bdm_source_to_string(v), &s), 0);
		ck_assert_int_eq(s, v);
	}
	for (int v = BDM_DEST_LOCAL; v <= BDM_DEST_VOLUME; v++) {
		ck_assert_int_eq(
		    bdm_dest_from_string(bdm_dest_to_string(v), &d), 0);
		ck_assert_int_eq(d, v);
	}
	for (int v = BDM_DEVICE_DISK; v <= BDM_DEVICE_LUN; v++) {
		ck_assert_int_eq(bdm_device_type_from_string(
				     bdm_device_type_to_string(v), &t),
		    0);
		ck_assert_int_eq(t, v);
	}
	for (int v = BDM_BUS_VIRTIO; v <= BDM_BUS_IDE; v++) {
		ck_assert_int_eq(
		    bdm_bus_from_string(bdm_bus_to_string(v), &b), 0);
		ck_assert_int_eq(b, v);
	}
	for (int v = INSTANCE_BUILDING; v <= INSTANCE_DELETING; v++) {
		ck_assert_int_eq(instance_state_from_string(
				     instance_state_to_string(v), &st),
		    0);
		ck_assert_int_eq(st, v);
	}
	ck_assert_ptr_null(bdm_source_to_string(BDM_SOURCE_UNSET));
	ck_assert_ptr_null(bdm_bus_to_string((enum bdm_bus)99));
	ck_assert_int_eq(bdm_bus_from_string("usb", &b), -EINVAL);
	ck_assert_int_eq(bdm_bus_from_string(NULL, &b), -EINVAL);
	ck_assert_int_eq(bdm_source_from_string("", &s), -EINVAL);
	ck_assert_int_eq(instance_state_from_string("Running", &st), -EINVAL);
}
END_TEST

START_TEST(test_bdm_copy_is_deep_and_clear_resets)
{
	struct instance *inst = NULL;
	struct err e = {0};
	struct bdm c;

	ck_assert_int_eq(
	    parse_prepare("{" HEAD "," B0 "{'boot_index':0,"
			  "'source_type':'volume',"
			  "'destination_type':'volume',"
			  "'uuid':'" VOL1 "','tag':'t','device_name':'sdb',"
			  "'connection_info':" CONN("/v") "}]}",
		NULL, &inst, &e),
	    0);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(bdm_copy(&inst->bdms[0], &c, &e), 0);
	ck_assert_ptr_ne(c.volume_id, inst->bdms[0].volume_id);
	ck_assert_str_eq(c.volume_id, VOL1);
	ck_assert_str_eq(c.tag, "t");
	ck_assert_str_eq(c.device_name, "/dev/sdb");
	ck_assert_str_eq(c.uuid, inst->bdms[0].uuid);
	ck_assert_str_eq(c.connection_info, inst->bdms[0].connection_info);
	instance_free(inst);
	bdm_clear(&c);
	ck_assert_ptr_null(c.volume_id);
	ck_assert_int_eq(c.boot_index, BDM_BOOT_NONE);
	ck_assert_int_eq(c.volume_size, BDM_SIZE_NONE);
	bdm_clear(&c);
}
END_TEST

START_TEST(test_predicates_follow_nova)
{
	struct instance *inst = NULL;
	struct err e = {0};

	ck_assert_int_eq(
	    parse_prepare("{" HEADF(5, 5) "," IMGREF B0 VOLBDM(VOL1, -1) "]}",
		NULL, &inst, &e),
	    0);
	ck_assert_uint_eq(inst->n_bdms, 4);
	ck_assert(bdm_is_local(&inst->bdms[0]) &&
	    !bdm_is_ephemeral(&inst->bdms[0]) && !bdm_is_swap(&inst->bdms[0]));
	ck_assert(
	    bdm_is_volume(&inst->bdms[1]) && !bdm_is_local(&inst->bdms[1]));
	ck_assert(
	    bdm_is_ephemeral(&inst->bdms[2]) && !bdm_is_swap(&inst->bdms[2]));
	ck_assert(
	    bdm_is_swap(&inst->bdms[3]) && !bdm_is_ephemeral(&inst->bdms[3]));
	instance_free(inst);
}
END_TEST

START_TEST(test_prepare_is_idempotent)
{
	struct instance *inst = NULL;
	struct err e = {0};
	char a[1024], b[1024], u[UUID_STR_LEN];

	ck_assert_int_eq(
	    parse_prepare(valid_cases[1].json, NULL, &inst, &e), 0);
	summary(inst, a, sizeof(a));
	memcpy(u, inst->bdms[0].uuid, sizeof(u));
	ck_assert_int_eq(bdm_instance_prepare(inst, NULL, &e), 0);
	summary(inst, b, sizeof(b));
	ck_assert_str_eq(a, b);
	ck_assert_str_eq(u, inst->bdms[0].uuid);
	instance_free(inst);
}
END_TEST

/* Nova's own fields take Nova's types (parameter_types.py): boot_index
 * and volume_size as digit strings, delete_on_termination as any string of
 * parameter_types.boolean, at create and at attach. */
START_TEST(test_parse_takes_novas_string_integers_and_booleans)
{
	static const struct {
		const char *dot;
		bool want;
	} bools[] = {{"'True'", true}, {"'TRUE'", true}, {"'true'", true},
	    {"'1'", true}, {"'ON'", true}, {"'On'", true}, {"'on'", true},
	    {"'YES'", true}, {"'Yes'", true}, {"'yes'", true},
	    {"'False'", false}, {"'FALSE'", false}, {"'false'", false},
	    {"'0'", false}, {"'OFF'", false}, {"'Off'", false},
	    {"'off'", false}, {"'NO'", false}, {"'No'", false}, {"'no'", false},
	    {"true", true}, {"false", false}};
	struct instance *inst = NULL;
	struct err e = {0};
	char body[1024];

	ck_assert_int_eq(
	    parse(
		"{" HEADF(5,
		    0) "," B0 "{'boot_index':'0','source_type':'volume',"
		       "'destination_type':'volume','uuid':'" VOL1
		       "','connection_info':" CONN(
			   "/dev/v1") "},"
				      "{'boot_index':'-1','source_type':'blank',"
				      "'destination_type':'local','volume_size':'05'},"
				      "{'boot_index':'1','source_type':'volume',"
				      "'destination_type':'volume','uuid':'" VOL2
				      "','volume_size':'2147483647',"
				      "'connection_info':" CONN(
					  "/dev/v2") "}]}",
		&inst, &e),
	    0);
	ck_assert_int_eq(inst->bdms[0].boot_index, 0);
	ck_assert_int_eq(inst->bdms[1].boot_index, BDM_BOOT_NONE);
	ck_assert_int_eq(inst->bdms[1].volume_size, 5);
	ck_assert_int_eq(inst->bdms[2].boot_index, 1);
	ck_assert_int_eq(inst->bdms[2].volume_size, 2147483647);
	inst = instance_free(inst);

	/* image_meta.disk_format: raw, qcow2, iso */
	ck_assert_int_eq(parse("{" HEAD ",'imageRef':'" IMG
			       "','image_meta':{'disk_format':'iso',"
			       "'properties':{}}}",
			     &inst, &e),
	    0);
	ck_assert_str_eq(inst->props.disk_format, "iso");
	inst = instance_free(inst);

	/* jsonschema's '$' matches before a final newline, int() drops it */
	ck_assert_int_eq(
	    parse("{" HEADF(5, 0) "," B0
				  "{'source_type':'blank','destination_type':"
				  "'local','volume_size':'3\\n'}]}",
		&inst, &e),
	    0);
	ck_assert_int_eq(inst->bdms[0].volume_size, 3);
	inst = instance_free(inst);

	for (size_t i = 0; i < ELEMENTSOF(bools); i++) {
		struct bdm b;

		(void)snprintf(body, sizeof(body),
		    "{" HEAD "," B0 "{'boot_index':0,'source_type':'volume',"
		    "'destination_type':'volume','uuid':'" VOL1
		    "','connection_info':" CONN(
			"/dev/v1") ","
				   "'delete_on_termination':%s}]}",
		    bools[i].dot);
		ck_assert_msg(
		    parse(body, &inst, &e) == 0, "%s: %s", bools[i].dot, e.msg);
		ck_assert_msg(
		    inst->bdms[0].delete_on_termination == bools[i].want, "%s",
		    bools[i].dot);
		inst = instance_free(inst);

		memset(&b, 0, sizeof(b));
		(void)snprintf(body, sizeof(body),
		    "{'volume_id':'" VOL2 "','connection_info':" CONN(
			"/dev/v2") ",'delete_on_termination':%s}",
		    bools[i].dot);
		{
			char *t = q(body);

			ck_assert_int_eq(
			    bdm_json_parse_attach(t, strlen(t), &b, &e), 0);
			free(t);
		}
		ck_assert(b.delete_on_termination == bools[i].want);
		bdm_clear(&b);
	}
}
END_TEST

/* ---- attach ------------------------------------------------------ */

static int
attach(
    const struct instance *inst, const char *json, struct bdm *b, struct err *e)
{
	char *body = q(json);
	int r = bdm_json_parse_attach(body, strlen(body), b, e);

	free(body);
	if (r < 0)
		return r;
	return bdm_prepare_attach(inst, b, NULL, e);
}

START_TEST(test_attach_validates_and_draws_uuid)
{
	struct instance *inst = NULL;
	struct err e = {0};
	struct bdm b;

	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(
	    parse_prepare(
		"{" HEAD "," IMGREF B0 VOLBDM(VOL1, -1) "]}", NULL, &inst, &e),
	    0);
	ck_assert_int_eq(
	    attach(inst,
		"{'volume_id':'" VOL2 "',"
		"'connection_info':" CONN(
		    "/v/2") ","
			    "'device_name':'sdc','disk_bus':'scsi',"
			    "'tag':'data'}",
		&b, &e),
	    0);
	ck_assert(util_uuid_is_canonical(b.uuid));
	ck_assert(!b.uuid_given);
	ck_assert_int_eq(b.source_type, BDM_SOURCE_VOLUME);
	ck_assert_int_eq(b.destination_type, BDM_DEST_VOLUME);
	ck_assert_int_eq(b.disk_bus, BDM_BUS_SCSI);
	ck_assert_int_eq(b.boot_index, BDM_BOOT_NONE);
	ck_assert_str_eq(b.device_name, "/dev/sdc");
	ck_assert_str_eq(b.volume_id, VOL2);
	bdm_clear(&b);

	/* the same volume again */
	ck_assert_int_eq(attach(inst,
			     "{'volume_id':'" VOL1 "',"
			     "'connection_info':" CONN("/v/1") "}",
			     &b, &e),
	    -EEXIST);
	ck_assert_str_eq(e.field, "volume_id");
	err_clear(&e);
	/* a taken bdm_uuid */
	{
		char json[512];

		snprintf(json, sizeof(json),
		    "{'volume_id':'" VOL3 "','bdm_uuid':'%s',"
		    "'connection_info':" CONN("/v/3") "}",
		    inst->bdms[0].uuid);
		ck_assert_int_eq(attach(inst, json, &b, &e), -EEXIST);
		ck_assert_str_eq(e.field, "bdm_uuid");
		err_clear(&e);
		bdm_clear(&b);
	}
	/* missing connection_info, unknown key, bad types */
	ck_assert_int_eq(
	    attach(inst, "{'volume_id':'" VOL3 "'}", &b, &e), -EINVAL);
	ck_assert_str_eq(e.field, "connection_info");
	err_clear(&e);
	ck_assert_int_eq(attach(inst,
			     "{'volume_id':'" VOL3 "','boot_index':1,"
			     "'connection_info':" CONN("/v") "}",
			     &b, &e),
	    -EINVAL);
	ck_assert_str_eq(e.field, "boot_index");
	err_clear(&e);
	ck_assert_int_eq(
	    attach(inst, "{'volume_id':3,'connection_info':" CONN("/v") "}", &b,
		&e),
	    -EINVAL);
	ck_assert_str_eq(e.field, "volume_id");
	err_clear(&e);
	ck_assert_int_eq(attach(inst,
			     "{'volume_id':'" VOL3 "','disk_bus':"
			     "'usb','connection_info':" CONN("/v") "}",
			     &b, &e),
	    -EINVAL);
	ck_assert_str_eq(e.field, "disk_bus");
	err_clear(&e);
	ck_assert_int_eq(attach(inst,
			     "{'volume_id':'" VOL3 "','device_name':"
			     "'vdb1','connection_info':" CONN("/v") "}",
			     &b, &e),
	    -EINVAL);
	ck_assert_str_eq(e.field, "device_name");
	bdm_clear(&b);
	err_clear(&e);
	ck_assert_int_eq(attach(inst,
			     "{'volume_id':'" VOL3 "',"
			     "'connection_info':" CONN("rel") "}",
			     &b, &e),
	    -EINVAL);
	ck_assert_str_eq(e.field, "connection_info.data.device_path");
	bdm_clear(&b);
	instance_free(inst);
}
END_TEST

START_TEST(test_conn_source_reads_type_and_path)
{
	struct err e = {0};
	char *type = NULL, *path = NULL;

	ck_assert_int_eq(
	    bdm_json_conn_source("{\"driver_volume_type\":"
				 "\"block\",\"data\":{"
				 "\"device_path\":\"/dev/sdb\","
				 "\"other\":[1]},\"serial\":\"x\"}",
		"p", &type, &path, &e),
	    0);
	ck_assert_str_eq(type, "block");
	ck_assert_str_eq(path, "/dev/sdb");
	free(type);
	free(path);
	ck_assert_int_eq(
	    bdm_json_conn_source("{nope", "p", &type, &path, &e), -EINVAL);
	ck_assert_str_eq(e.field, "p");
	err_clear(&e);
	ck_assert_int_eq(bdm_json_conn_source("{\"driver_volume_type\":"
					      "\"file\",\"data\":{"
					      "\"device_path\":7}}",
			     "p", &type, &path, &e),
	    -EINVAL);
	ck_assert_str_eq(e.field, "p.data.device_path");
	err_clear(&e);
	ck_assert_int_eq(
	    bdm_json_conn_source(NULL, "p", &type, &path, &e), -EINVAL);
}
END_TEST

/* ---- formatting -------------------------------------------------- */

static const char *full_request = "{'uuid':'" VOL3 "','name':'web-1'," FLAVOR(
    20,
    512) ",'imageRef':'" IMG "','image_meta':{'properties':{'hw_disk_bus':"
	 "'scsi','hw_scsi_model':'virtio-scsi','hw_cdrom_bus':'sata',"
	 "'hw_machine_type':'q35'}},'config_drive':true,'metadata':{'role':"
	 "'web'},'block_device_mapping_v2':[{'boot_index':0,'source_type':"
	 "'image','destination_type':'local','uuid':'" IMG "'},{'source_type':"
	 "'blank','destination_type':'local','guest_format':'ext4',"
	 "'volume_size':20,'device_name':'sdb','tag':'scratch'},{'boot_index':"
	 "null,'source_type':'volume','destination_type':'volume','uuid':'" VOL1
	 "','bdm_uuid':'" BDMU "','delete_on_termination':true,"
	 "'connection_info':" CONN(
	     "/srv/vol1") "},{'source_type':'snapshot',"
			  "'destination_type':'volume','uuid':'" SNAP
			  "','volume_id':'" VOL2
			  "','volume_size':3,'connection_info':" CONNB(
			      "/dev/sdz") "}]}";

static const char *const bdm_json_keys[] = {"bdm_uuid", "boot_index",
    "source_type", "destination_type", "image_id", "volume_id", "snapshot_id",
    "device_type", "disk_bus", "device_name", "volume_size", "guest_format",
    "delete_on_termination", "tag", "connection_info", "serial", "by_id"};

static struct json_object *
get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no key %s", key);
	return v;
}

START_TEST(test_format_instance_round_trips_every_field)
{
	struct instance *inst = NULL;
	struct err e = {0};
	_cleanup_(jfield_putp) struct json_object *o = NULL;
	struct json_object *bdms, *b;

	ck_assert_int_eq(parse_prepare(full_request, NULL, &inst, &e), 0);
	inst->created_at = 1795622400000; /* 2026-11-25T16:00:00Z */
	inst->updated_at = 1795622401000;
	inst->state = INSTANCE_RUNNING;
	o = bdm_json_format_instance(inst, NULL);
	ck_assert_ptr_nonnull(o);

	ck_assert_str_eq(json_object_get_string(get(o, "uuid")), VOL3);
	ck_assert_str_eq(json_object_get_string(get(o, "name")), "web-1");
	ck_assert_str_eq(json_object_get_string(get(o, "state")), "running");
	ck_assert_str_eq(
	    json_object_get_string(get(o, "desired_state")), "running");
	ck_assert(!json_object_object_get_ex(o, "fault", NULL));
	ck_assert_int_eq(
	    json_object_get_int(get(get(o, "flavor"), "swap")), 512);
	ck_assert_int_eq(
	    json_object_get_int(get(get(o, "flavor"), "ephemeral_gb")), 20);
	ck_assert_int_eq(
	    json_object_get_int(get(get(o, "flavor"), "vcpus")), 2);
	ck_assert_int_eq(
	    json_object_get_int(get(get(o, "flavor"), "memory_mb")), 2048);
	ck_assert_int_eq(
	    json_object_get_int(get(get(o, "flavor"), "root_gb")), 10);
	ck_assert_str_eq(json_object_get_string(get(o, "imageRef")), IMG);
	ck_assert_str_eq(
	    json_object_get_string(
		get(get(get(o, "image_meta"), "properties"), "hw_scsi_model")),
	    "virtio-scsi");
	ck_assert_str_eq(
	    json_object_get_string(get(
		get(get(o, "image_meta"), "properties"), "hw_machine_type")),
	    "q35");
	ck_assert(json_object_get_boolean(get(o, "config_drive")));
	ck_assert_str_eq(
	    json_object_get_string(get(get(o, "metadata"), "role")), "web");
	ck_assert_str_eq(json_object_get_string(get(o, "created_at")),
	    "2026-11-25T16:00:00Z");
	ck_assert_str_eq(json_object_get_string(get(o, "updated_at")),
	    "2026-11-25T16:00:01Z");
	get(o, "generation");

	bdms = get(o, "block_device_mappings");
	ck_assert_uint_eq(json_object_array_length(bdms), 5);
	for (size_t i = 0; i < 5; i++) {
		b = json_object_array_get_idx(bdms, i);
		for (size_t k = 0; k < ELEMENTSOF(bdm_json_keys); k++)
			get(b, bdm_json_keys[k]);
		ck_assert_int_eq(json_object_object_length(b),
		    (int)ELEMENTSOF(bdm_json_keys));
		ck_assert_str_eq(json_object_get_string(get(b, "bdm_uuid")),
		    inst->bdms[i].uuid);
		/* no blockinfo: serial and by_id are null */
		ck_assert(
		    json_object_is_type(get(b, "serial"), json_type_null));
		ck_assert(json_object_is_type(get(b, "by_id"), json_type_null));
	}
	b = json_object_array_get_idx(bdms, 0);
	ck_assert_int_eq(json_object_get_int(get(b, "boot_index")), 0);
	ck_assert_str_eq(json_object_get_string(get(b, "image_id")), IMG);
	ck_assert(json_object_is_type(get(b, "volume_size"), json_type_null));
	ck_assert(
	    json_object_is_type(get(b, "connection_info"), json_type_null));
	b = json_object_array_get_idx(bdms, 1);
	ck_assert(json_object_is_type(get(b, "boot_index"), json_type_null));
	/* the request's /dev/sdb is dropped, as Nova's libvirt driver does;
	 * blockinfo_build assigns one */
	ck_assert(json_object_is_type(get(b, "device_name"), json_type_null));
	ck_assert_str_eq(json_object_get_string(get(b, "tag")), "scratch");
	ck_assert_str_eq(
	    json_object_get_string(get(b, "guest_format")), "ext4");
	ck_assert_int_eq(json_object_get_int(get(b, "volume_size")), 20);
	b = json_object_array_get_idx(bdms, 2);
	ck_assert_str_eq(json_object_get_string(get(b, "bdm_uuid")), BDMU);
	ck_assert_str_eq(json_object_get_string(get(b, "volume_id")), VOL1);
	ck_assert_str_eq(
	    json_object_get_string(
		get(get(get(b, "connection_info"), "data"), "device_path")),
	    "/srv/vol1");
	ck_assert(json_object_get_boolean(get(b, "delete_on_termination")));
	b = json_object_array_get_idx(bdms, 3);
	ck_assert_str_eq(json_object_get_string(get(b, "snapshot_id")), SNAP);
	ck_assert_str_eq(json_object_get_string(get(b, "volume_id")), VOL2);
	ck_assert_str_eq(
	    json_object_get_string(get(b, "source_type")), "snapshot");
	b = json_object_array_get_idx(bdms, 4);
	ck_assert_str_eq(
	    json_object_get_string(get(b, "guest_format")), "swap");
	ck_assert_int_eq(json_object_get_int(get(b, "volume_size")), 512);

	/* an instance start-up put in error shows why, as Nova's fault */
	{
		_cleanup_(jfield_putp) struct json_object *fo = NULL;

		inst->state = INSTANCE_ERROR;
		inst->fault = strdup("the root disk is missing");
		ck_assert_ptr_nonnull(inst->fault);
		fo = bdm_json_format_instance(inst, NULL);
		ck_assert_str_eq(
		    json_object_get_string(get(fo, "state")), "error");
		ck_assert_str_eq(
		    json_object_get_string(get(get(fo, "fault"), "message")),
		    "the root disk is missing");
		inst->state = INSTANCE_RUNNING;
	}

	/* the BDM route and one BDM */
	{
		_cleanup_(jfield_putp) struct json_object *l =
		    bdm_json_format_bdms(inst, NULL);
		_cleanup_(jfield_putp) struct json_object *one =
		    bdm_json_format_bdm(inst, 2, NULL);

		ck_assert_uint_eq(
		    json_object_array_length(get(l, "block_device_mappings")),
		    5);
		ck_assert_str_eq(
		    json_object_get_string(get(one, "bdm_uuid")), BDMU);
		ck_assert_ptr_null(bdm_json_format_bdm(inst, 5, NULL));
	}
	instance_free(inst);
}
END_TEST

START_TEST(test_format_of_a_new_instance_has_null_times)
{
	struct instance *inst = NULL;
	struct err e = {0};
	_cleanup_(jfield_putp) struct json_object *o = NULL;

	ck_assert_int_eq(
	    parse_prepare("{" HEAD "," IMGREF "'start':true}", NULL, &inst, &e),
	    0);
	o = bdm_json_format_instance(inst, NULL);
	ck_assert(json_object_is_type(get(o, "created_at"), json_type_null));
	ck_assert_str_eq(json_object_get_string(get(o, "state")), "building");
	ck_assert_int_eq(json_object_object_length(get(o, "metadata")), 0);
	instance_free(inst);
}
END_TEST

/* parse -> prepare -> blockinfo_build, as the daemon does */
static struct instance *
built(const char *json, struct blockinfo **ret_bi)
{
	const struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct err e = {0};

	ck_assert_msg(parse_prepare(json, &lim, &inst, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    blockinfo_build(inst, &lim, ret_bi, &e) == 0, "%s", e.msg);
	return inst;
}

START_TEST(test_format_blockinfo_of_an_image_boot_has_every_role)
{
	struct blockinfo *bi = NULL;
	struct instance *inst =
	    built("{" HEADF(20, 512) "," IMGREF B0 VOLBDM(VOL1, -1) "]}", &bi);
	_cleanup_(jfield_putp) struct json_object *o =
	    bdm_json_format_blockinfo(inst, bi);
	struct json_object *root, *eph, *swap, *vol;
	char serial[21];

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(json_object_object_length(o), 5);
	ck_assert_str_eq(
	    json_object_get_string(get(o, "root_device_name")), "/dev/vda");
	root = get(o, "local_root");
	ck_assert_str_eq(
	    json_object_get_string(get(root, "kind")), "local_root");
	ck_assert_str_eq(json_object_get_string(get(root, "image_id")), IMG);
	ck_assert_str_eq(
	    json_object_get_string(get(root, "device_name")), "/dev/vda");
	ck_assert_str_eq(
	    json_object_get_string(get(root, "disk_bus")), "virtio");
	ck_assert_str_eq(
	    json_object_get_string(get(root, "device_type")), "disk");
	ck_assert_int_eq(json_object_get_int(get(root, "boot_index")), 0);
	get(root, "size");
	ck_assert_str_eq(
	    json_object_get_string(get(root, "bdm_uuid")), inst->bdms[0].uuid);
	snprintf(serial, sizeof(serial), "%.20s", inst->bdms[0].uuid);
	ck_assert_str_eq(json_object_get_string(get(root, "serial")), serial);
	ck_assert_ptr_nonnull(
	    strstr(json_object_get_string(get(root, "by_id")), serial));

	ck_assert_uint_eq(json_object_array_length(get(o, "ephemerals")), 1);
	eph = json_object_array_get_idx(get(o, "ephemerals"), 0);
	ck_assert_int_eq(json_object_get_int(get(eph, "size")), 20);
	ck_assert_str_eq(json_object_get_string(get(eph, "kind")), "ephemeral");
	get(eph, "guest_format");
	get(eph, "device_name");
	get(eph, "disk_bus");
	get(eph, "device_type");
	ck_assert(json_object_is_type(get(eph, "boot_index"), json_type_null));

	swap = get(o, "swap");
	ck_assert_int_eq(json_object_get_int(get(swap, "swap_size")), 512);
	ck_assert_str_eq(json_object_get_string(get(swap, "kind")), "swap");
	get(swap, "device_name");
	get(swap, "disk_bus");
	get(swap, "bdm_uuid");

	ck_assert_uint_eq(
	    json_object_array_length(get(o, "block_device_mapping")), 1);
	vol = json_object_array_get_idx(get(o, "block_device_mapping"), 0);
	ck_assert_str_eq(json_object_get_string(get(vol, "kind")), "volume");
	ck_assert_str_eq(json_object_get_string(get(vol, "volume_id")), VOL1);
	ck_assert_str_eq(json_object_get_string(get(get(vol, "connection_info"),
			     "driver_volume_type")),
	    "file");
	snprintf(serial, sizeof(serial), "%.20s", VOL1);
	ck_assert_str_eq(json_object_get_string(get(vol, "serial")), serial);
	get(vol, "mount_device");
	get(vol, "delete_on_termination");
	get(vol, "disk_bus");
	get(vol, "device_type");
	get(vol, "guest_format");
	get(vol, "boot_index");
	get(vol, "bdm_uuid");
	get(vol, "by_id");
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_format_blockinfo_of_a_volume_boot_has_no_local_root)
{
	struct blockinfo *bi = NULL;
	struct instance *inst =
	    built("{" HEAD "," B0 VOLBDM(VOL1, 0) "]}", &bi);
	_cleanup_(jfield_putp) struct json_object *o =
	    bdm_json_format_blockinfo(inst, bi);
	struct json_object *v = NULL;

	ck_assert(!json_object_object_get_ex(o, "local_root", &v));
	ck_assert(json_object_is_type(get(o, "swap"), json_type_null));
	ck_assert_uint_eq(json_object_array_length(get(o, "ephemerals")), 0);
	ck_assert_uint_eq(
	    json_object_array_length(get(o, "block_device_mapping")), 1);
	v = json_object_array_get_idx(get(o, "block_device_mapping"), 0);
	ck_assert_int_eq(json_object_get_int(get(v, "boot_index")), 0);
	ck_assert_ptr_null(bdm_json_format_blockinfo(inst, NULL));
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_format_instance_with_blockinfo_shows_serials)
{
	struct blockinfo *bi = NULL;
	struct instance *inst = built(full_request, &bi);
	_cleanup_(jfield_putp) struct json_object *o =
	    bdm_json_format_instance(inst, bi);
	struct json_object *bdms = get(o, "block_device_mappings");

	ck_assert_uint_eq(json_object_array_length(bdms), inst->n_bdms);
	for (size_t i = 0; i < inst->n_bdms; i++) {
		struct json_object *b = json_object_array_get_idx(bdms, i);
		const struct blockinfo_disk *d = NULL;

		for (size_t k = 0; k < bi->n_disks; k++)
			if (bi->disks[k].bdm_index == (int)i)
				d = &bi->disks[k];
		ck_assert_ptr_nonnull(d);
		ck_assert_str_eq(
		    json_object_get_string(get(b, "serial")), d->serial);
		ck_assert_str_eq(
		    json_object_get_string(get(b, "by_id")), d->by_id);
		/* blockinfo_build wrote its device names back */
		ck_assert_str_eq(json_object_get_string(get(b, "device_name")),
		    d->device_name);
	}
	{
		_cleanup_(jfield_putp) struct json_object *one =
		    bdm_json_format_bdm(inst, 0, bi);

		ck_assert(
		    !json_object_is_type(get(one, "serial"), json_type_null));
	}
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

/* The create body that describes inst as formatted: the instance fields
 * and each BDM in Nova's v2 spelling (uuid names the source). */
static char *
resubmission(struct json_object *fmt)
{
	static const char *const copy[] = {"uuid", "name", "flavor", "imageRef",
	    "image_meta", "config_drive", "metadata"};
	static const char *const bdm_copy[] = {"bdm_uuid", "boot_index",
	    "source_type", "destination_type", "device_type", "disk_bus",
	    "device_name", "volume_size", "guest_format",
	    "delete_on_termination", "tag", "connection_info"};
	struct json_object *body = json_object_new_object(), *list, *src;
	char *text;

	for (size_t k = 0; k < ELEMENTSOF(copy); k++)
		json_object_object_add(
		    body, copy[k], json_object_get(get(fmt, copy[k])));
	src = get(fmt, "block_device_mappings");
	list = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(src); i++) {
		struct json_object *b = json_object_array_get_idx(src, i);
		struct json_object *n = json_object_new_object();
		const char *st = json_object_get_string(get(b, "source_type"));

		for (size_t k = 0; k < ELEMENTSOF(bdm_copy); k++)
			json_object_object_add(n, bdm_copy[k],
			    json_object_get(get(b, bdm_copy[k])));
		if (STREQ(st, "image"))
			json_object_object_add(
			    n, "uuid", json_object_get(get(b, "image_id")));
		else if (STREQ(st, "snapshot"))
			json_object_object_add(
			    n, "uuid", json_object_get(get(b, "snapshot_id")));
		else if (STREQ(st, "volume"))
			json_object_object_add(
			    n, "uuid", json_object_get(get(b, "volume_id")));
		if (!STREQ(st, "volume") &&
		    !json_object_is_type(get(b, "volume_id"), json_type_null))
			json_object_object_add(n, "volume_id",
			    json_object_get(get(b, "volume_id")));
		json_object_array_add(list, n);
	}
	json_object_object_add(body, "block_device_mapping_v2", list);
	text = jfield_to_text(body);
	json_object_put(body);
	return text;
}

START_TEST(test_format_round_trips_through_a_resubmitted_create)
{
	struct instance *a = NULL, *b = NULL;
	struct blockinfo *bi = NULL;
	struct err e = {0};
	_cleanup_(jfield_putp) struct json_object *fa = NULL;
	_cleanup_(jfield_putp) struct json_object *fb = NULL;
	char *body, *ta, *tb;

	a = built(full_request, &bi);
	fa = bdm_json_format_instance(a, NULL);
	body = resubmission(fa);
	ck_assert_msg(bdm_json_parse_create(body, strlen(body), &b, &e) == 0,
	    "%s: %s", e.field, e.msg);
	ck_assert_msg(
	    bdm_instance_prepare(b, NULL, &e) == 0, "%s: %s", e.field, e.msg);
	ck_assert_uint_eq(b->n_bdms, a->n_bdms);
	/* the names a's mapping assigned are dropped from the resubmission
	 * and assigned again, the same ones */
	blockinfo_free(bi);
	bi = NULL;
	ck_assert_msg(
	    blockinfo_build(b, NULL, &bi, &e) == 0, "%s: %s", e.field, e.msg);
	fb = bdm_json_format_instance(b, NULL);
	ta = jfield_to_text(fa);
	tb = jfield_to_text(fb);
	ck_assert_str_eq(ta, tb);
	free(ta);
	free(tb);
	free(body);
	blockinfo_free(bi);
	instance_free(a);
	instance_free(b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("bdm");
	TCase *tc;

	tc = tcase_create("jfield");
	tcase_add_test(tc, test_jfield_getters_check_types);
	tcase_add_test(tc, test_jfield_check_keys_refuses_unknown_keys);
	tcase_add_test(tc, test_jfield_parse_finds_duplicates_in_big_objects);
	tcase_add_test(tc, test_jfield_builders_make_nulls_and_values);
	tcase_add_test(tc, test_jfield_scan_picks_wanted_values);
	suite_add_tcase(s, tc);

	tc = tcase_create("bdm_json_parse_create");
	tcase_add_loop_test(
	    tc, test_parse_refuses_hostile_json, 0, (int)ELEMENTSOF(raw_cases));
	tcase_add_test(tc, test_parse_bounds_string_length);
	tcase_add_test(tc, test_parse_takes_novas_string_integers_and_booleans);
	tcase_add_test(
	    tc, test_parse_accepts_1000_bdms_and_prepare_refuses_them);
	tcase_add_test(tc, test_parse_handles_escapes_and_unicode);
	tcase_add_test(tc, test_parse_limits_metadata_to_128_items);
	tcase_add_test(tc, test_errors_stay_valid_utf8_with_long_keys);
	suite_add_tcase(s, tc);

	tc = tcase_create("bdm_instance_prepare");
	tcase_add_loop_test(tc, test_prepare_valid_request_gives_expected_bdms,
	    0, (int)ELEMENTSOF(valid_cases));
	tcase_add_loop_test(tc, test_prepare_refuses_invalid_request, 0,
	    (int)ELEMENTSOF(fail_cases));
	tcase_add_test(tc, test_prepare_normalises_uuids_and_keeps_fields);
	tcase_add_test(tc, test_prepare_keeps_given_bdm_uuid_and_sets_defaults);
	tcase_add_test(tc, test_prepare_enforces_max_bdms_and_max_local);
	tcase_add_test(tc, test_prepare_names_flavor_fields_for_flavor_disks);
	tcase_add_test(tc, test_prepare_is_idempotent);
	tcase_add_loop_test(tc,
	    test_prepare_checks_uniqueness_of_many_bdms_by_sorting, 0,
	    (int)ELEMENTSOF(many_cases));
	tcase_add_test(tc,
	    test_prepare_refuses_a_given_uuid_on_a_volume_serial_among_many);
	tcase_add_test(
	    tc, test_prepare_draws_distinct_serials_for_many_local_disks);
	suite_add_tcase(s, tc);

	tc = tcase_create("model");
	tcase_add_test(tc, test_enum_tables_round_trip);
	tcase_add_test(tc, test_bdm_copy_is_deep_and_clear_resets);
	tcase_add_test(tc, test_predicates_follow_nova);
	suite_add_tcase(s, tc);

	tc = tcase_create("bdm_prepare_attach");
	tcase_add_test(tc, test_attach_validates_and_draws_uuid);
	tcase_add_test(tc, test_conn_source_reads_type_and_path);
	tcase_add_test(
	    tc, test_conn_source_names_each_missing_or_mistyped_part);
	suite_add_tcase(s, tc);

	tc = tcase_create("bdm_json_format");
	tcase_add_test(tc, test_format_instance_round_trips_every_field);
	tcase_add_test(tc, test_format_of_a_new_instance_has_null_times);
	tcase_add_test(
	    tc, test_format_blockinfo_of_an_image_boot_has_every_role);
	tcase_add_test(
	    tc, test_format_blockinfo_of_a_volume_boot_has_no_local_root);
	tcase_add_test(tc, test_format_instance_with_blockinfo_shows_serials);
	tcase_add_test(
	    tc, test_format_round_trips_through_a_resubmitted_create);
	suite_add_tcase(s, tc);

	return testutil_run(s);
}
