/*
 * Shared test plumbing. testutil_run() prints Check's summary line, which
 * CI reads; data lives under $TEST_DATA (set by make check), falling back
 * to tests/data relative to the current directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* For a daemon under test, in the child between fork and exec: lifts the
 * core size limit and makes dir the working directory, so that a crash
 * leaves dir/core (the kernel's default core_pattern) for
 * testutil_core_report. Async-signal-safe; errors are ignored. */
void
testutil_child_allow_core(const char *dir)
{
	struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};

	(void)setrlimit(RLIMIT_CORE, &rl);
	if (dir)
		(void)chdir(dir);
}

/* After a daemon under test died of a signal: prints to stderr, from the
 * core it left in dir (see testutil_child_allow_core), who sent the signal
 * ($_siginfo: si_pid, si_code) and every thread's backtrace, when gdb is
 * installed. Returns whether a core file was found. */
bool
testutil_core_report(const char *bin, const char *dir)
{
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	bool found = false;

	if (d == NULL)
		return false;
	while ((de = readdir(d)) != NULL) {
		char *cmd;

		if (strncmp(de->d_name, "core", 4) != 0)
			continue;
		found = true;
		fprintf(stderr, "core file %s/%s:\n", dir, de->d_name);
		fflush(stderr);
		if (asprintf(&cmd,
			"command -v gdb >/dev/null && gdb -q -batch -nx "
			"-ex 'p $_siginfo' -ex 'info threads' "
			"-ex 'thread apply all bt' '%s' '%s/%s' 1>&2",
			bin, dir, de->d_name) < 0)
			break;
		(void)system(cmd);
		free(cmd);
	}
	closedir(d);
	return found;
}
