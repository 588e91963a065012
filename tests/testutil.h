/*
 * Helpers shared by the Check programs: running a suite with the usual
 * summary, reading test data files, and temporary directories.
 */
#ifndef HYPERLET_TESTUTIL_H
#define HYPERLET_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

int testutil_run(Suite *s);
char *testutil_read_file(const char *path, size_t *ret_len);
const char *testutil_data_dir(void);
char *testutil_mkdtemp(const char *prefix);
void testutil_rm_rf(const char *path);
void testutil_child_allow_core(const char *dir);
bool testutil_core_report(const char *bin, const char *dir);

#endif
