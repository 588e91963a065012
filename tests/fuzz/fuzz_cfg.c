/*
 * libFuzzer target: the configuration parser. The input is written to a
 * temporary file (cfg_load reads a path), then loaded over the defaults,
 * finished and formatted back. Refusals are fine; crashes, leaks and
 * undefined behaviour are findings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cfg.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg c;
	struct err e = {0};
	char *text = NULL;
	FILE *f;

	if (path[0] == '\0') {
		int fd;

		snprintf(path, sizeof(path), "/tmp/fuzz_cfg.XXXXXX");
		if ((fd = mkstemp(path)) < 0)
			abort();
		close(fd);
	}
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	if (cfg_defaults(&c) < 0)
		return 0;
	if (cfg_load(path, &c, &e) == 0 && cfg_finish(&c, &e) == 0 &&
	    cfg_format(&c, &text) == 0)
		free(text);
	cfg_clear(&c);
	return 0;
}
