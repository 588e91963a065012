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

#include "configdrive.h"
#include "domaddr.h"
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
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return testutil_run(suite());
}
