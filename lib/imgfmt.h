/*
 * imgfmt: judges an uploaded image file before it becomes a base image
 * (pure: reads through a callback, no HTTP, no libvirt). Accepts raw
 * (UDF included), ISO 9660 (format "iso", which qemu reads as raw) and
 * qcow2 v2/v3 that is self-contained; refuses every other format qemu
 * knows and any qcow2 that could make qemu open another file or that it
 * would not open cleanly. See imgfmt.c for the rules.
 */
#ifndef HYPERLET_IMGFMT_H
#define HYPERLET_IMGFMT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Reads up to len bytes at off into buf. Returns the number read (fewer
 * only at the end of the file), or a negative errno. */
typedef int64_t (*imgfmt_pread_fn)(
    void *cls, void *buf, size_t len, uint64_t off);

struct imgfmt_info {
	const char *format; /* "raw", "iso" (ISO 9660) or "qcow2" (static) */
	uint64_t virtual_size; /* bytes the guest sees */
};

int imgfmt_inspect(imgfmt_pread_fn rd, void *cls, uint64_t file_size,
    struct imgfmt_info *ret, struct err *e);
int imgfmt_inspect_buf(
    const void *buf, size_t len, struct imgfmt_info *ret, struct err *e);

#endif
