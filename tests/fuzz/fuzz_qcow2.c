/*
 * libFuzzer target: the image format inspection (lib/imgfmt.c) on the
 * whole input as an uploaded file. Refusals are fine; crashes, leaks,
 * undefined behaviour, and an acceptance that breaks the rules (a qcow2
 * with a backing file, an external data file, an unknown incompatible
 * feature or an out-of-range cluster size, or a virtual size that is not
 * the header's) are findings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "imgfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t
be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | *p++;
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imgfmt_info inf = {0};
	struct err e = {0};
	int rc = imgfmt_inspect_buf(data, size, &inf, &e);

	if (rc < 0) {
		if (e.code != rc || e.msg[0] == '\0')
			abort(); /* a refusal always says why */
		return 0;
	}
	if (strcmp(inf.format, "raw") == 0) {
		if (inf.virtual_size != size || size == 0 ||
		    (size >= 4 && memcmp(data, "QFI\xfb", 4) == 0))
			abort();
		return 0;
	}
	if (strcmp(inf.format, "qcow2") != 0 || size < 104 ||
	    memcmp(data, "QFI\xfb", 4) != 0)
		abort();
	if (be(data + 8, 8) != 0 || be(data + 16, 4) != 0) /* backing */
		abort();
	if (be(data + 20, 4) < 9 || be(data + 20, 4) > 21) /* cluster_bits */
		abort();
	if (be(data + 24, 8) != inf.virtual_size || inf.virtual_size == 0)
		abort();
	if (be(data + 4, 4) == 3 && (be(data + 72, 8) & ~0x18ull) != 0)
		abort(); /* data file, dirty, corrupt or unknown */
	return 0;
}
