/*
 * check_configdrive: the config drive from the model to the ISO bytes.
 * lib/configdrive.c: the primary volume descriptor says exactly
 * "config-2", Rock Ridge and Joliet are there, xorriso (a reader no one
 * here wrote) extracts every file byte for byte, the write is atomic and
 * leaves no temp file. lib/domaddr.c on libvirt-shaped XML. lib/metadata.c
 * and lib/netinfo.c: Nova 26's layout (which file in which version), and
 * the JSON content read back with json-c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bdm_json.h"
#include "blockinfo.h"
#include "configdrive.h"
#include "domaddr.h"
#include "domxml.h"
#include "metadata.h"
#include "netinfo.h"
#include "nic.h"
#include "nic_json.h"
#include "testutil.h"

static char *dir;

static void
setup(void)
{
	dir = testutil_mkdtemp("check_configdrive");
	ck_assert_ptr_nonnull(dir);
}

static void
teardown(void)
{
	testutil_rm_rf(dir);
	free(dir);
}

#define ISO_BLOCK 2048

/* The 32-byte field at off of the volume descriptor in block blk,
 * without its trailing spaces. */
static void
vd_field(
    const unsigned char *iso, size_t blk, size_t off, size_t len, char *out)
{
	memcpy(out, iso + blk * ISO_BLOCK + off, len);
	out[len] = '\0';
	for (size_t i = len; i > 0 && out[i - 1] == ' '; i--)
		out[i - 1] = '\0';
}

static bool
has_bytes(const unsigned char *hay, size_t n, const char *needle, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return true;
	return false;
}

START_TEST(test_image_volume_id_is_config_2_with_rock_ridge_and_joliet)
{
	_cleanup_(configdrive_freep) struct configdrive *d = configdrive_new();
	_cleanup_free_ unsigned char *iso = NULL;
	struct err e = {0};
	char vol[33];
	size_t len = 0, blk;
	bool joliet = false;

	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(
	    configdrive_add(d, "openstack/latest/meta_data.json", "{}", 2, &e),
	    0);
	ck_assert_int_eq(configdrive_image(d, &iso, &len, &e), 0);
	ck_assert_uint_eq(len % ISO_BLOCK, 0);
	ck_assert_uint_gt(len, 17 * ISO_BLOCK);
	/* block 16: the primary volume descriptor */
	ck_assert_int_eq(iso[16 * ISO_BLOCK], 1);
	ck_assert_int_eq(memcmp(iso + 16 * ISO_BLOCK + 1, "CD001", 5), 0);
	vd_field(iso, 16, 40, 32, vol);
	ck_assert_str_eq(vol, "config-2");
	/* a supplementary descriptor with a Joliet escape sequence */
	for (blk = 17; blk < 32 && iso[blk * ISO_BLOCK] != 255; blk++)
		if (iso[blk * ISO_BLOCK] == 2 &&
		    memcmp(iso + blk * ISO_BLOCK + 88, "%/", 2) == 0)
			joliet = true;
	ck_assert(joliet);
	/* Rock Ridge: the SUSP "SP" and RRIP "NM"/"PX" entries */
	ck_assert(has_bytes(iso, len, "RRIP_1991A", 10) ||
	    has_bytes(iso, len, "IEEE_P1282", 10) ||
	    has_bytes(iso, len, "IEEE_1282", 9));
	ck_assert(has_bytes(iso, len, "meta_data.json", 14));
}
END_TEST

START_TEST(test_add_refuses_bad_paths_and_clashes)
{
	_cleanup_(configdrive_freep) struct configdrive *d = configdrive_new();
	static const char *const bad[] = {"", "/abs", "a//b", "a/", "../x",
	    "a/../b", "./a", "a b", "a/\xc3\xa9", "a\\b"};
	struct err e = {0};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		err_clear(&e);
		ck_assert_int_eq(
		    configdrive_add(d, bad[i], "x", 1, &e), -EINVAL);
	}
	ck_assert_int_eq(configdrive_add(d, "a/b", "x", 1, &e), 0);
	ck_assert_int_eq(configdrive_add(d, "a/b", "y", 1, &e), -EINVAL);
	ck_assert_int_eq(configdrive_add(d, "a/b/c", "y", 1, &e), -EINVAL);
	ck_assert_int_eq(configdrive_add(d, "a", "y", 1, &e), -EINVAL);
	ck_assert_int_eq(configdrive_add(d, "a/bc", "y", 1, &e), 0);
	ck_assert_uint_eq(configdrive_n_files(d), 2);
}
END_TEST

static bool
have(const char *prog)
{
	char cmd[256];

	(void)snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null", prog);
	return system(cmd) == 0;
}

START_TEST(test_write_is_atomic_and_xorriso_extracts_every_file)
{
	_cleanup_(configdrive_freep) struct configdrive *d = configdrive_new();
	_cleanup_free_ char *big = malloc(70000);
	char path[4096], out[4096], cmd[9000], file[4200];
	struct err e = {0};
	struct stat st;
	size_t n;

	for (size_t i = 0; i < 70000; i++)
		big[i] = (char)(i * 7 + 3);
	ck_assert_int_eq(configdrive_add(d, "openstack/2012-08-10/user_data",
			     big, 70000, &e),
	    0);
	ck_assert_int_eq(
	    configdrive_add(d, "openstack/latest/user_data", big, 70000, &e),
	    0);
	ck_assert_int_eq(configdrive_add(d,
			     "openstack/latest/"
			     "a_rather_long_file_name_beyond_31.json",
			     "[1]", 3, &e),
	    0);
	ck_assert_int_eq(configdrive_add(d, "ec2/empty", "", 0, &e), 0);
	(void)snprintf(path, sizeof(path), "%s/disk.config", dir);
	ck_assert_int_eq(configdrive_write(d, path, &e), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
	/* equal contents stored once: one user_data, not two */
	ck_assert_int_lt(st.st_size, 2 * 70000 + 64 * 1024);
	/* nothing but disk.config in the directory */
	(void)snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) = 1", dir);
	ck_assert_int_eq(system(cmd), 0);
	if (!have("xorriso"))
		return;
	(void)snprintf(out, sizeof(out), "%s/x", dir);
	(void)snprintf(cmd, sizeof(cmd),
	    "xorriso -osirrox on -indev '%s' -extract / '%s' >/dev/null 2>&1",
	    path, out);
	ck_assert_int_eq(system(cmd), 0);
	for (size_t i = 0; i < configdrive_n_files(d); i++) {
		const void *data;
		size_t len;
		const char *p = configdrive_file(d, i, &data, &len);
		_cleanup_free_ char *got = NULL;

		(void)snprintf(file, sizeof(file), "%s/%s", out, p);
		got = testutil_read_file(file, &n);
		ck_assert_msg(got != NULL, "%s missing", p);
		ck_assert_uint_eq(n, len);
		ck_assert_int_eq(memcmp(got, data, len), 0);
	}
	/* the volume id as xorriso reads it */
	(void)snprintf(cmd, sizeof(cmd),
	    "xorriso -indev '%s' -pvd_info 2>/dev/null | "
	    "grep -q \"^Volume Id    : config-2$\"",
	    path);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_write_to_a_missing_directory_fails_cleanly)
{
	_cleanup_(configdrive_freep) struct configdrive *d = configdrive_new();
	char path[4096];
	struct err e = {0};

	ck_assert_int_eq(configdrive_add(d, "f", "x", 1, &e), 0);
	(void)snprintf(path, sizeof(path), "%s/no/disk.config", dir);
	ck_assert_int_eq(configdrive_write(d, path, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "disk.config"));
}
END_TEST

static const char dom_xml[] =
    "<domain type='kvm'><name>x</name><devices>"
    "<disk type='file' device='disk'><source file='/i/disk'/>"
    "<target dev='vda' bus='virtio'/><serial>0d1f0c52-aaaa</serial>"
    "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' "
    "function='0x0'/></disk>"
    "<disk type='file' device='disk'><target dev='sda' bus='scsi'/>"
    "<serial>vol-1</serial><address type='drive' controller='0' bus='0' "
    "target='0' unit='1'/></disk>"
    "<disk type='file' device='cdrom'><target dev='hda' bus='ide'/>"
    "<readonly/></disk>"
    "<interface type='bridge'><mac address='FA:16:3E:00:00:01'/>"
    "<target dev='tap12345678-9a'/><model type='virtio'/>"
    "<address type='pci' domain='0x0000' bus='0x01' slot='0x1f' "
    "function='0x2'/></interface>"
    "</devices></domain>";

START_TEST(test_domaddr_reads_disks_and_interfaces_in_nova_form)
{
	_cleanup_(domaddr_freep) struct domaddr *a = NULL;
	const struct domaddr_dev *d;
	struct err e = {0};

	ck_assert_int_eq(domaddr_parse(dom_xml, &a, &e), 0);
	ck_assert_uint_eq(a->n, 4);
	d = domaddr_disk(a, "vda");
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->address, "0000:00:05.0");
	ck_assert_str_eq(d->addr_type, "pci");
	ck_assert_str_eq(d->serial, "0d1f0c52-aaaa");
	ck_assert_str_eq(d->target_bus, "virtio");
	d = domaddr_disk(a, "sda");
	ck_assert_str_eq(d->address, "0:0:0:1");
	ck_assert_str_eq(d->addr_type, "drive");
	d = domaddr_disk(a, "hda");
	ck_assert_ptr_null(d->address);
	ck_assert_ptr_null(d->serial);
	ck_assert_str_eq(d->device, "cdrom");
	d = domaddr_nic(a, "fa:16:3e:00:00:01");
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->mac, "fa:16:3e:00:00:01");
	ck_assert_str_eq(d->address, "0000:01:1f.2");
	ck_assert_str_eq(d->target_dev, "tap12345678-9a");
	ck_assert_ptr_null(domaddr_disk(a, "vdz"));
	ck_assert_int_eq(domaddr_parse("<domain", &a, &e), -EINVAL);
	ck_assert_int_eq(domaddr_parse("<network/>", &a, &e), -EINVAL);
}
END_TEST

#define IMAGE_ID "155d900f-4e14-4e4c-a73d-069cbf4541e6"
#define VOLUME_ID "0d1f0c52-8b1e-4c33-9e2f-0a8d3c2b1a99"
#define USER_DATA "#cloud-config\nhostname: ignored\n"

#define KEY_OPS                                                                \
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYX" \
	"GBkaGxwdHh8g ops@example"
#define KEY_BACKUP                                                             \
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcICQoLDA0ODxAREhMUFRYXGBkaGxwd" \
	"Hh8gISIjJCUm backup"

/* A create request as the API parses and prepares it (bdm_json with
 * nic_json's fields, bdm_instance_prepare, nic_json_prepare, the mapping):
 * tagged root and volume, two NICs (static IPv4 + IPv6 with gateways and
 * DNS, tagged; DHCP, untagged), two keys (one name needing escapes), a
 * hostname, user data. */
static struct instance *
guest_instance(void)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct blockinfo *bi = NULL;
	struct err e = {0};
	static const char body[] =
	    "{\"name\": \"web 1\", \"flavor\": {\"vcpus\": 1, \"memory_mb\": 64,"
	    " \"root_gb\": 1, \"ephemeral_gb\": 1},"
	    " \"imageRef\": \"" IMAGE_ID "\", \"config_drive\": true,"
	    " \"metadata\": {\"role\": \"web\"},"
	    " \"hostname\": \"web-1\","
	    /* base64 of USER_DATA */
	    " \"user_data\": \"I2Nsb3VkLWNvbmZpZwpob3N0bmFtZTogaWdub3JlZAo=\","
	    " \"keys\": [{\"name\": \"ops\", \"type\": \"ssh\","
	    "  \"data\": \"" KEY_OPS "\"},"
	    " {\"name\": \"b\\\"ack\\\\up\", \"type\": \"ssh\","
	    "  \"data\": \"" KEY_BACKUP "\"}],"
	    " \"networks\": ["
	    " {\"port_id\": \"3f5a1c2e-1111-4a2b-8c3d-000000000001\","
	    "  \"mac\": \"fa:16:3e:00:00:01\", \"bridge\": \"br-ex\","
	    "  \"mtu\": 1450, \"tag\": \"public\","
	    "  \"ips\": [{\"address\": \"192.0.2.10/24\","
	    "   \"gateway\": \"192.0.2.1\"},"
	    "   {\"address\": \"2001:db8::10/64\","
	    "   \"gateway\": \"2001:db8::1\"}],"
	    "  \"dns\": [\"192.0.2.53\", \"192.0.2.54\"]},"
	    " {\"port_id\": \"3f5a1c2e-2222-4a2b-8c3d-000000000002\","
	    "  \"mac\": \"fa:16:3e:00:00:02\", \"network\": \"default\","
	    "  \"dns\": [\"192.0.2.53\"]}],"
	    " \"block_device_mapping_v2\": ["
	    "{\"boot_index\": 0, \"source_type\": \"image\","
	    " \"destination_type\": \"local\", \"uuid\": \"" IMAGE_ID "\","
	    " \"tag\": \"root\"},"
	    "{\"source_type\": \"volume\", \"destination_type\": \"volume\","
	    " \"uuid\": \"" VOLUME_ID "\", \"tag\": \"data\","
	    " \"connection_info\": {\"driver_volume_type\": \"file\","
	    " \"data\": {\"device_path\": \"/srv/vol/a.img\"}}}]}";

	ck_assert_msg(bdm_json_parse_create(body, strlen(body), &inst, &e) == 0,
	    "%s: %s", e.field, e.msg);
	ck_assert_msg(bdm_instance_prepare(inst, &lim, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    nic_json_prepare(&inst->guest, inst->name, inst->uuid, &e) == 0,
	    "%s", e.msg);
	ck_assert_msg(blockinfo_build(inst, &lim, &bi, &e) == 0, "%s", e.msg);
	blockinfo_free(bi);
	ck_assert_str_eq(inst->guest.nics[0].target_dev, "tap3f5a1c2e-11");
	return inst;
}

static struct json_object *
parse(const char *text, size_t len)
{
	struct json_object *o = json_tokener_parse(text);

	ck_assert_msg(o != NULL, "not JSON: %.*s", (int)len, text);
	return o;
}

static struct json_object *
get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s", key);
	return v;
}

static const char *
gets(struct json_object *o, const char *key)
{
	return json_object_get_string(get(o, key));
}

static bool
has(struct json_object *o, const char *key)
{
	return json_object_object_get_ex(o, key, NULL);
}

/* The drive's file path, or NULL. */
static const char *
find(const struct configdrive *d, const char *path, const char **data,
    size_t *len)
{
	for (size_t i = 0; i < configdrive_n_files(d); i++) {
		const void *p;
		const char *name = configdrive_file(d, i, &p, len);

		if (STREQ(name, path)) {
			*data = p;
			return name;
		}
	}
	return NULL;
}

START_TEST(test_layout_is_nova_26s_versions_and_files)
{
	_cleanup_(configdrive_freep) struct configdrive *d = configdrive_new();
	struct instance *inst = guest_instance();
	/* version: has vendor_data, network_data, vendor_data2 */
	static const struct {
		const char *v;
		bool vd, nd, vd2;
	} want[] = {
	    {"2012-08-10", false, false, false},
	    {"2013-04-04", false, false, false},
	    {"2013-10-17", true, false, false},
	    {"2015-10-15", true, true, false},
	    {"2016-06-30", true, true, false},
	    {"2016-10-06", true, true, true},
	    {"2017-02-22", true, true, true},
	    {"2018-08-27", true, true, true},
	    {"2020-10-14", true, true, true},
	    {"latest", true, true, true},
	};
	struct err e = {0};
	char p[128];
	const char *data;
	size_t len, n = 0;

	ck_assert_msg(
	    metadata_build(inst, NULL, NULL, d, &e) == 0, "%s", e.msg);
	for (size_t i = 0; i < ELEMENTSOF(want); i++) {
		(void)snprintf(
		    p, sizeof(p), "openstack/%s/meta_data.json", want[i].v);
		ck_assert_ptr_nonnull(find(d, p, &data, &len));
		(void)snprintf(
		    p, sizeof(p), "openstack/%s/user_data", want[i].v);
		ck_assert_ptr_nonnull(find(d, p, &data, &len));
		ck_assert_uint_eq(len, strlen(USER_DATA));
		ck_assert_int_eq(memcmp(data, USER_DATA, len), 0);
		(void)snprintf(
		    p, sizeof(p), "openstack/%s/vendor_data.json", want[i].v);
		ck_assert_int_eq(find(d, p, &data, &len) != NULL, want[i].vd);
		(void)snprintf(
		    p, sizeof(p), "openstack/%s/network_data.json", want[i].v);
		ck_assert_int_eq(find(d, p, &data, &len) != NULL, want[i].nd);
		(void)snprintf(
		    p, sizeof(p), "openstack/%s/vendor_data2.json", want[i].v);
		ck_assert_int_eq(find(d, p, &data, &len) != NULL, want[i].vd2);
		n += 2 + want[i].vd + want[i].nd + want[i].vd2;
	}
	ck_assert_uint_eq(configdrive_n_files(d), n);
	ck_assert_ptr_nonnull(
	    find(d, "openstack/latest/vendor_data2.json", &data, &len));
	ck_assert_int_eq(memcmp(data, "{\"static\":{}}", len), 0);
	instance_free(inst);
}
END_TEST

START_TEST(test_meta_data_has_every_key_and_the_hostname_as_is)
{
	struct instance *inst = guest_instance();
	_cleanup_free_ char *md = NULL, *old = NULL;
	struct metadata_opts o = {.availability_zone = "az-1"};
	struct json_object *j, *keys, *pk;
	struct err e = {0};
	size_t len;

	ck_assert_int_eq(metadata_meta_data(inst, NULL, &o, "latest",
			     "c2VlZA==", &md, &len, &e),
	    0);
	j = parse(md, len);
	ck_assert_str_eq(gets(j, "uuid"), inst->uuid);
	ck_assert_str_eq(gets(j, "name"), "web 1");
	ck_assert_str_eq(gets(j, "hostname"), "web-1");
	ck_assert_int_eq(json_object_get_int(get(j, "launch_index")), 0);
	ck_assert_str_eq(gets(j, "availability_zone"), "az-1");
	ck_assert_str_eq(gets(j, "random_seed"), "c2VlZA==");
	ck_assert_str_eq(gets(get(j, "meta"), "role"), "web");
	pk = get(j, "public_keys");
	ck_assert_int_eq(json_object_object_length(pk), 2);
	ck_assert_str_eq(gets(pk, "b\"ack\\up"), KEY_BACKUP);
	keys = get(j, "keys");
	ck_assert_uint_eq(json_object_array_length(keys), 2);
	ck_assert_str_eq(
	    gets(json_object_array_get_idx(keys, 0), "type"), "ssh");
	ck_assert_str_eq(
	    gets(json_object_array_get_idx(keys, 0), "name"), "ops");
	ck_assert_int_eq(json_object_array_length(get(j, "dedicated_cpus")), 0);
	json_object_put(j);
	/* Folsom: no random_seed, no devices */
	ck_assert_int_eq(metadata_meta_data(inst, NULL, NULL, "2012-08-10",
			     "c2VlZA==", &old, &len, &e),
	    0);
	j = parse(old, len);
	ck_assert(!has(j, "random_seed"));
	ck_assert(!has(j, "devices"));
	ck_assert_str_eq(gets(j, "availability_zone"), "nova");
	json_object_put(j);
	ck_assert_int_eq(metadata_meta_data(inst, NULL, NULL, "2099-01-01",
			     NULL, &old, &len, &e),
	    -EINVAL);
	instance_free(inst);
}
END_TEST

/* devices from the domain XML domxml makes for the instance: serials as
 * in <serial>, for the local root too; only tagged devices. */
START_TEST(test_devices_carry_the_domains_serials_and_addresses)
{
	struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = guest_instance();
	struct blockinfo *bi = NULL;
	struct domaddr *dom = NULL;
	struct domxml_opts o = {.instance_dir = "/var/lib/hyperlet/x",
	    .base_image_path = "/var/lib/hyperlet/images/" IMAGE_ID,
	    .base_image_format = "qcow2"};
	_cleanup_free_ char *xml = NULL, *md = NULL;
	struct json_object *j, *devs, *dv;
	const struct domaddr_dev *root;
	struct err e = {0};
	size_t len, disks = 0, nics = 0;

	ck_assert_msg(blockinfo_build(inst, &lim, &bi, &e) == 0, "%s", e.msg);
	ck_assert_msg(
	    domxml_format_domain(inst, bi, &o, &xml, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(domaddr_parse(xml, &dom, &e), 0);
	ck_assert_int_eq(metadata_meta_data(
			     inst, dom, NULL, "2018-08-27", "", &md, &len, &e),
	    0);
	j = parse(md, len);
	devs = get(j, "devices");
	for (size_t i = 0; i < json_object_array_length(devs); i++) {
		dv = json_object_array_get_idx(devs, i);
		if (STREQ(gets(dv, "type"), "disk")) {
			const char *tag = json_object_get_string(
			    json_object_array_get_idx(get(dv, "tags"), 0));

			disks++;
			if (STREQ(tag, "root")) {
				root = domaddr_disk(dom, "vda");
				ck_assert_ptr_nonnull(root);
				ck_assert_str_eq(
				    gets(dv, "serial"), root->serial);
				ck_assert_int_eq(strncmp(inst->bdms[0].uuid,
						     root->serial, 20),
				    0);
			} else {
				ck_assert_str_eq(tag, "data");
				ck_assert_int_eq(
				    strncmp(gets(dv, "serial"), VOLUME_ID, 20),
				    0);
			}
			/* the test of libvirt-free XML: no address */
			ck_assert_str_eq(gets(dv, "bus"), "none");
			ck_assert_str_eq(gets(dv, "address"), "none");
		} else {
			ck_assert_str_eq(gets(dv, "type"), "nic");
			ck_assert_str_eq(gets(dv, "mac"), "fa:16:3e:00:00:01");
			nics++;
		}
	}
	/* domxml writes both NICs; only the tagged one is a device */
	ck_assert_uint_eq(disks, 2);
	ck_assert_uint_eq(nics, 1);
	json_object_put(j);
	dom = domaddr_free(dom);
	blockinfo_free(bi);
	instance_free(inst);
}
END_TEST

START_TEST(test_devices_in_nova_form_with_libvirts_addresses)
{
	struct instance *inst = guest_instance();
	struct domaddr *dom = NULL;
	_cleanup_free_ char *md = NULL;
	struct json_object *j, *devs, *d0, *d1, *n0;
	struct err e = {0};
	size_t len;

	/* the root is vda, the volume vdb (blockinfo's mapping) */
	free(inst->bdms[1].device_name);
	inst->bdms[1].device_name = strdup("/dev/sda");
	ck_assert_ptr_nonnull(inst->bdms[1].device_name);
	ck_assert_int_eq(domaddr_parse(dom_xml, &dom, &e), 0);
	ck_assert_int_eq(
	    metadata_meta_data(inst, dom, NULL, "latest", "", &md, &len, &e),
	    0);
	j = parse(md, len);
	devs = get(j, "devices");
	ck_assert_uint_eq(json_object_array_length(devs), 3);
	d0 = json_object_array_get_idx(devs, 0);
	ck_assert_str_eq(gets(d0, "type"), "disk");
	ck_assert_str_eq(gets(d0, "bus"), "pci");
	ck_assert_str_eq(gets(d0, "address"), "0000:00:05.0");
	ck_assert_str_eq(gets(d0, "serial"), "0d1f0c52-aaaa");
	d1 = json_object_array_get_idx(devs, 1);
	ck_assert_str_eq(gets(d1, "bus"), "scsi");
	ck_assert_str_eq(gets(d1, "address"), "0:0:0:1");
	ck_assert_str_eq(gets(d1, "serial"), "vol-1");
	n0 = json_object_array_get_idx(devs, 2);
	ck_assert_str_eq(gets(n0, "type"), "nic");
	ck_assert_str_eq(gets(n0, "mac"), "fa:16:3e:00:00:01");
	ck_assert_str_eq(gets(n0, "bus"), "pci");
	ck_assert_str_eq(gets(n0, "address"), "0000:01:1f.2");
	ck_assert_str_eq(json_object_get_string(
			     json_object_array_get_idx(get(n0, "tags"), 0)),
	    "public");
	ck_assert(json_object_get_boolean(get(n0, "vf_trusted")) == 0);
	json_object_put(j);
	domaddr_free(dom);
	instance_free(inst);
}
END_TEST

START_TEST(test_network_data_is_netutils_format)
{
	struct instance *inst = guest_instance();
	_cleanup_free_ char *net = NULL, *none = NULL;
	struct json_object *j, *links, *nets, *l0, *l1, *n0, *n1, *n2, *svc;
	struct guest_data empty = {0};
	struct err e = {0};
	size_t len;

	ck_assert_int_eq(netinfo_format(&inst->guest, &net, &len, &e), 0);
	j = parse(net, len);
	links = get(j, "links");
	ck_assert_uint_eq(json_object_array_length(links), 2);
	l0 = json_object_array_get_idx(links, 0);
	ck_assert_str_eq(gets(l0, "id"), "tap3f5a1c2e-11");
	ck_assert_str_eq(gets(l0, "type"), "phy");
	ck_assert_str_eq(gets(l0, "ethernet_mac_address"), "fa:16:3e:00:00:01");
	ck_assert_int_eq(json_object_get_int(get(l0, "mtu")), 1450);
	ck_assert_str_eq(gets(l0, "vif_id"), inst->guest.nics[0].port_id);
	l1 = json_object_array_get_idx(links, 1);
	ck_assert(json_object_is_type(get(l1, "mtu"), json_type_null));
	nets = get(j, "networks");
	ck_assert_uint_eq(json_object_array_length(nets), 3);
	n0 = json_object_array_get_idx(nets, 0);
	ck_assert_str_eq(gets(n0, "id"), "network0");
	ck_assert_str_eq(gets(n0, "type"), "ipv4");
	ck_assert_str_eq(gets(n0, "link"), "tap3f5a1c2e-11");
	ck_assert_str_eq(gets(n0, "ip_address"), "192.0.2.10");
	ck_assert_str_eq(gets(n0, "netmask"), "255.255.255.0");
	ck_assert_str_eq(
	    gets(json_object_array_get_idx(get(n0, "routes"), 0), "gateway"),
	    "192.0.2.1");
	ck_assert_str_eq(
	    gets(json_object_array_get_idx(get(n0, "routes"), 0), "network"),
	    "0.0.0.0");
	ck_assert_uint_eq(json_object_array_length(get(n0, "services")), 2);
	n1 = json_object_array_get_idx(nets, 1);
	ck_assert_str_eq(gets(n1, "type"), "ipv6");
	ck_assert_str_eq(gets(n1, "netmask"), "ffff:ffff:ffff:ffff::");
	ck_assert_str_eq(
	    gets(json_object_array_get_idx(get(n1, "routes"), 0), "network"),
	    "::");
	n2 = json_object_array_get_idx(nets, 2);
	ck_assert_str_eq(gets(n2, "type"), "ipv4_dhcp");
	ck_assert_str_eq(gets(n2, "link"), "tap3f5a1c2e-22");
	ck_assert_str_eq(gets(n2, "network_id"), "default");
	ck_assert(!has(n2, "ip_address"));
	svc = get(j, "services");
	/* 192.0.2.53 twice in the request, once here */
	ck_assert_uint_eq(json_object_array_length(svc), 2);
	ck_assert_str_eq(
	    gets(json_object_array_get_idx(svc, 1), "address"), "192.0.2.54");
	json_object_put(j);
	ck_assert_int_eq(netinfo_format(&empty, &none, &len, &e), 0);
	ck_assert_str_eq(none, "{}");
	instance_free(inst);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("configdrive");
	TCase *tc = tcase_create("iso");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(
	    tc, test_image_volume_id_is_config_2_with_rock_ridge_and_joliet);
	tcase_add_test(tc, test_add_refuses_bad_paths_and_clashes);
	tcase_add_test(
	    tc, test_write_is_atomic_and_xorriso_extracts_every_file);
	tcase_add_test(tc, test_write_to_a_missing_directory_fails_cleanly);
	tcase_add_test(
	    tc, test_domaddr_reads_disks_and_interfaces_in_nova_form);
	tcase_add_test(tc, test_layout_is_nova_26s_versions_and_files);
	tcase_add_test(tc, test_meta_data_has_every_key_and_the_hostname_as_is);
	tcase_add_test(
	    tc, test_devices_carry_the_domains_serials_and_addresses);
	tcase_add_test(tc, test_devices_in_nova_form_with_libvirts_addresses);
	tcase_add_test(tc, test_network_data_is_netutils_format);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return testutil_run(suite());
}
