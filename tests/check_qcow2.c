/*
 * check_qcow2: lib/qcow2.c's images read back by QEMU itself. For blank
 * images and overlays on raw and qcow2 backing files, of sizes from 512
 * bytes to 1 PiB (one L1 cluster and several), `qemu-img check` finds no
 * error and no leak, and `qemu-img info --output=json` reports the format,
 * the virtual size asked (rounded up to 512), the backing file and its
 * format. Then the refusals: an existing file, size 0 or too large, a bad
 * backing format, and that a refused call leaves no file.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2.h"
#include "testutil.h"

static char *dir;

static void
setup(void)
{
	dir = testutil_mkdtemp("check_qcow2");
	ck_assert_ptr_nonnull(dir);
}

static void
teardown(void)
{
	testutil_rm_rf(dir);
	free(dir);
}

/* The output of cmd (owned), asserting it exits 0. */
static char *
run(const char *cmd)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	FILE *p = popen(cmd, "r");
	char buf[4096];
	size_t n;
	int st;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(p);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		fwrite(buf, 1, n, f);
	st = pclose(p);
	fclose(f);
	ck_assert_msg(st == 0, "%s exited %d: %s", cmd, st, out);
	return out;
}

/* Makes name in dir with qcow2_create and checks it with qemu-img. */
static void
make_and_check(const char *name, uint64_t size, const char *backing,
    const char *backing_format)
{
	char path[4200], cmd[8600];
	struct err e = {0};
	struct json_object *o, *v;
	char *out;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_msg(
	    qcow2_create(path, size, backing, backing_format, &e) == 0, "%s",
	    e.msg);
	(void)snprintf(cmd, sizeof(cmd),
	    "qemu-img check --output=json -f qcow2 '%s' 2>&1", path);
	out = run(cmd);
	o = json_tokener_parse(out);
	ck_assert_msg(o != NULL, "%s", out);
	ck_assert(json_object_object_get_ex(o, "check-errors", &v));
	ck_assert_int_eq(json_object_get_int(v), 0);
	ck_assert_msg(!json_object_object_get_ex(o, "leaks", &v) ||
		json_object_get_int(v) == 0,
	    "%s", out);
	ck_assert_msg(!json_object_object_get_ex(o, "corruptions", &v) ||
		json_object_get_int(v) == 0,
	    "%s", out);
	json_object_put(o);
	free(out);

	(void)snprintf(
	    cmd, sizeof(cmd), "qemu-img info --output=json -U '%s' 2>&1", path);
	out = run(cmd);
	o = json_tokener_parse(out);
	ck_assert_msg(o != NULL, "%s", out);
	ck_assert(json_object_object_get_ex(o, "format", &v));
	ck_assert_str_eq(json_object_get_string(v), "qcow2");
	ck_assert(json_object_object_get_ex(o, "virtual-size", &v));
	ck_assert_uint_eq(
	    (uint64_t)json_object_get_int64(v), (size + 511) & ~(uint64_t)511);
	if (backing) {
		ck_assert(json_object_object_get_ex(o, "backing-filename", &v));
		ck_assert_str_eq(json_object_get_string(v), backing);
		ck_assert(json_object_object_get_ex(
		    o, "backing-filename-format", &v));
		ck_assert_str_eq(json_object_get_string(v), backing_format);
	} else
		ck_assert(
		    !json_object_object_get_ex(o, "backing-filename", &v));
	ck_assert(json_object_object_get_ex(o, "format-specific", &v));
	ck_assert(json_object_object_get_ex(v, "data", &v));
	ck_assert(json_object_object_get_ex(v, "compat", &v));
	ck_assert_str_eq(json_object_get_string(v), "1.1");
	json_object_put(o);
	free(out);
}

static const uint64_t sizes[] = {
    512,
    1000,
    UINT64_C(64) << 20,
    UINT64_C(1) << 30,
    (UINT64_C(1) << 30) + 512,
    UINT64_C(20) << 30,
    UINT64_C(1) << 40,
    QCOW2_MAX_SIZE,
};

START_TEST(test_blank_images_of_every_size_pass_qemu_img_check)
{
	char name[64];

	(void)snprintf(name, sizeof(name), "blank%d", _i);
	make_and_check(name, sizes[_i], NULL, NULL);
}
END_TEST

START_TEST(test_overlays_on_raw_and_qcow2_read_back_their_backing_file)
{
	char raw[4200], base[4200], cmd[8600], name[64];
	struct err e = {0};

	(void)snprintf(raw, sizeof(raw), "%s/base.raw", dir);
	(void)snprintf(base, sizeof(base), "%s/base.qcow2", dir);
	(void)snprintf(cmd, sizeof(cmd), "truncate -s 1M '%s'", raw);
	free(run(cmd));
	ck_assert_msg(
	    qcow2_create(base, UINT64_C(1) << 30, NULL, NULL, &e) == 0, "%s",
	    e.msg);
	(void)snprintf(name, sizeof(name), "over-raw%d", _i);
	make_and_check(name, sizes[_i], raw, "raw");
	(void)snprintf(name, sizeof(name), "over-qcow2%d", _i);
	make_and_check(name, sizes[_i], base, "qcow2");
}
END_TEST

START_TEST(test_a_long_backing_name_is_written_in_full)
{
	char base[4200], link[1100];

	(void)snprintf(base, sizeof(base), "%s/b.raw", dir);
	{
		FILE *f = fopen(base, "w");

		ck_assert_ptr_nonnull(f);
		fclose(f);
	}
	/* a path of 1000 bytes through /./ repeats, still that file */
	(void)snprintf(link, sizeof(link), "%s", dir);
	while (strlen(link) + 3 + 5 < 1000)
		strcat(link, "/.");
	strcat(link, "/b.raw");
	make_and_check("long", UINT64_C(1) << 30, link, "raw");
}
END_TEST

START_TEST(test_refusals_leave_no_file)
{
	char path[4200], big[1100];
	struct err e = {0};
	struct stat st;

	(void)snprintf(path, sizeof(path), "%s/x", dir);
	ck_assert_int_eq(qcow2_create(path, 0, NULL, NULL, &e), -EINVAL);
	ck_assert_int_eq(
	    qcow2_create(path, QCOW2_MAX_SIZE + 1, NULL, NULL, &e), -EINVAL);
	ck_assert_int_eq(
	    qcow2_create(path, 1 << 20, "/b", "vmdk", &e), -EINVAL);
	ck_assert_int_eq(qcow2_create(path, 1 << 20, "/b", NULL, &e), -EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(qcow2_create(path, 1 << 20, big, "raw", &e), -EINVAL);
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(qcow2_create(path, 1 << 20, NULL, NULL, &e), 0);
	ck_assert_int_eq(qcow2_create(path, 1 << 20, NULL, NULL, &e), -EEXIST);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("qcow2");
	TCase *tc = tcase_create("create");
	int n = (int)(sizeof(sizes) / sizeof(sizes[0]));

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(
	    tc, test_blank_images_of_every_size_pass_qemu_img_check, 0, n);
	tcase_add_loop_test(tc,
	    test_overlays_on_raw_and_qcow2_read_back_their_backing_file, 0, n);
	tcase_add_test(tc, test_a_long_backing_name_is_written_in_full);
	tcase_add_test(tc, test_refusals_leave_no_file);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return testutil_run(suite());
}
