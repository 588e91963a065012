/*
 * check_console: lib/console.c on real files in a temp directory: line
 * counts with and without a final newline, virtlogd's rotations, the
 * byte bound (whole lines only; one longer line cut to the bound),
 * control characters, and the files it refuses (a symlink, a directory).
 * The API side (length parsing, 404, the route) is in check_api.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"
#include "testutil.h"

static char *dir, path[4096];

static void
setup(void)
{
	dir = testutil_mkdtemp("check_console");
	ck_assert_ptr_nonnull(dir);
	(void)snprintf(path, sizeof(path), "%s/console.log", dir);
}

static void
teardown(void)
{
	testutil_rm_rf(dir);
	free(dir);
}

static void
put(const char *suffix, const char *text, size_t len)
{
	char p[4200];
	FILE *f;

	(void)snprintf(p, sizeof(p), "%s%s", path, suffix);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

/* The tail as a string (owned), asserting success. */
static char *
tail(long lines, size_t max)
{
	struct err e = {0};
	char *t = NULL;
	size_t len = 0;

	ck_assert_msg(
	    console_tail(path, lines, max, &t, &len, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(strlen(t), len);
	return t;
}

#define CK_TAIL(lines, max, want)                \
	do {                                     \
		char *t_ = tail((lines), (max)); \
		ck_assert_str_eq(t_, (want));    \
		free(t_);                        \
	} while (0)

START_TEST(test_lines_are_counted_from_the_end)
{
	CK_TAIL(-1, 0, ""); /* no file yet */
	put("", "a\nb\nc\n", 6);
	CK_TAIL(1, 0, "c\n");
	CK_TAIL(2, 0, "b\nc\n");
	CK_TAIL(3, 0, "a\nb\nc\n");
	CK_TAIL(9, 0, "a\nb\nc\n");
	CK_TAIL(0, 0, "");
	put("", "a\nb\nc", 5); /* a last line still being written */
	CK_TAIL(1, 0, "c");
	CK_TAIL(2, 0, "b\nc");
	put("", "a\r\n\033[0mb\0\n", 10);
	CK_TAIL(-1, 0, "a\n[0mb\n");
}
END_TEST

START_TEST(test_rotated_files_are_read_on_newest_first)
{
	put(".1", "oldest\n", 7);
	put(".0", "older\n", 6);
	put("", "new\n", 4);
	CK_TAIL(-1, 0, "oldest\nolder\nnew\n");
	CK_TAIL(2, 0, "older\nnew\n");
	/* the bound stops the chain: 10 bytes are "older\nnew\n" */
	CK_TAIL(-1, 10, "older\nnew\n");
	/* 12 bytes: "st\n" of oldest is a cut line, left out */
	CK_TAIL(-1, 12, "older\nnew\n");
}
END_TEST

START_TEST(test_the_byte_bound_keeps_whole_lines_or_cuts_one_long_line)
{
	put("", "0123456789\nabcdefghij\n", 22);
	CK_TAIL(-1, 11, "abcdefghij\n"); /* the cut lands on a line start */
	CK_TAIL(-1, 15, "abcdefghij\n"); /* "789\n" is a cut line */
	CK_TAIL(5, 15, "abcdefghij\n");
	CK_TAIL(-1, 5, "ghij\n"); /* one line longer than the bound */
}
END_TEST

START_TEST(test_a_symlink_or_a_directory_is_refused)
{
	struct err e = {0};
	char *t = NULL;
	size_t len;

	ck_assert_int_eq(symlink("/etc/passwd", path), 0);
	ck_assert_int_eq(console_tail(path, -1, 0, &t, &len, &e), -EIO);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	err_clear(&e);
	ck_assert_int_eq(console_tail(path, -1, 0, &t, &len, &e), -EIO);
	ck_assert_ptr_null(t);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("console");
	TCase *tc = tcase_create("tail");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lines_are_counted_from_the_end);
	tcase_add_test(tc, test_rotated_files_are_read_on_newest_first);
	tcase_add_test(
	    tc, test_the_byte_bound_keeps_whole_lines_or_cuts_one_long_line);
	tcase_add_test(tc, test_a_symlink_or_a_directory_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return testutil_run(suite());
}
