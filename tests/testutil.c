/*
 * Shared test plumbing. testutil_run() prints Check's summary line, which
 * CI reads; data lives under $TEST_DATA (set by make check), falling back
 * to tests/data relative to the current directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* Runs s with its own runner and returns an exit status for main(). */
int
testutil_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The directory holding test data. */
const char *
testutil_data_dir(void)
{
	const char *d = getenv("TEST_DATA");

	return d && *d ? d : "tests/data";
}

/* Reads a whole file into a NUL-terminated buffer (owned by the caller).
 * Returns NULL if it cannot be read. */
char *
testutil_read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap ? cap * 2 : 8192);

			if (nb == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = cap ? cap * 2 : 8192;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	return buf;
}

/* Makes a fresh directory under $TMPDIR (or /tmp); returns its path
 * (owned) or NULL. */
char *
testutil_mkdtemp(const char *prefix)
{
	const char *t = getenv("TMPDIR");
	char *p;

	if (asprintf(&p, "%s/%s.XXXXXX", t && *t ? t : "/tmp", prefix) < 0)
		return NULL;
	if (mkdtemp(p) == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

/* Removes path and everything below it; ignores errors. */
void
testutil_rm_rf(const char *path)
{
	char *cmd;

	if (path == NULL || path[0] != '/' || strlen(path) < 6)
		return;
	if (asprintf(&cmd, "rm -rf -- '%s'", path) < 0)
		return;
	(void)system(cmd);
	free(cmd);
}
