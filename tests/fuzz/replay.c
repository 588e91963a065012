/*
 * Replays fuzz inputs through a libFuzzer target built without libFuzzer
 * (make check, gcc): every file under tests/fuzz/regressions/<target>/
 * (crashes found once, kept so they stay fixed) and the seed directories
 * FUZZ_DIRS, or the files named on the command line. A crash fails the
 * test the way it failed the fuzzer. Prints "1 passed, 0 failed" for the
 * CI summary.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n_run;

static void
replay_file(const char *path)
{
	size_t len = 0;
	char *buf = testutil_read_file(path, &len);

	if (buf == NULL) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(99);
	}
	/* An exact-size copy, so ASan sees reads past the end. */
	{
		uint8_t *exact = malloc(len ? len : 1);

		memcpy(exact, buf, len);
		free(buf);
		(void)LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	n_run++;
}

static void
replay_dir(const char *dir)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		char *path = NULL;

		if (names[i]->d_name[0] != '.' &&
		    asprintf(&path, "%s/%s", dir, names[i]->d_name) >= 0) {
			replay_file(path);
			free(path);
		}
		free(names[i]);
	}
	free(names);
}

int
main(int argc, char **argv)
{
	const char *top = getenv("TOP_SRCDIR");
	/* FUZZ_DIRS: colon-separated directories under the source tree. */
	char dirs[] = "tests/fuzz/regressions/" FUZZ_TARGET ":" FUZZ_DIRS;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			replay_file(argv[i]);
	} else {
		for (char *d = strtok(dirs, ":"); d; d = strtok(NULL, ":")) {
			char *dir = NULL;

			if (asprintf(&dir, "%s/%s", top ? top : ".", d) < 0)
				return 99;
			replay_dir(dir);
			free(dir);
		}
	}
	printf("%s: replayed %d inputs without a crash\n", FUZZ_TARGET, n_run);
	printf("1 passed, 0 failed\n");
	return 0;
}
