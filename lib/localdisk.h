/*
 * localdisk: an instance's local disks as files in its instance directory,
 * made in-process (lib/qcow2.c) with no libvirt storage pool and no
 * qemu-img process: `disk` (the root, a qcow2 overlay on the base image),
 * `disk.eph<N>` and `disk.swap` (blank qcow2). The directory also holds
 * what others put there (the console log, the config drive); removing the
 * instance removes all of it. No libvirt call, no lock: one instance's
 * disks are made by one caller at a time (compute's state machine).
 */
#ifndef HYPERLET_LOCALDISK_H
#define HYPERLET_LOCALDISK_H

#include <stdint.h>

#include "bdm.h"
#include "blockinfo.h"
#include "err.h"

/*
 * Makes dir (0755; an existing one is used) and in it the local disks of
 * bi: the root as an overlay on base_path (format base_format: "raw",
 * "qcow2", or "iso", read as raw) of root_gb GiB, or of base_virtual_size
 * bytes when root_gb is 0; each ephemeral of its BDM's size in GiB; the
 * swap in MiB. base_path may be NULL when bi has no local root. On failure
 * the files this call made are removed again. Returns 0, -EINVAL (a size
 * out of range, a root smaller than the image, a missing or unreadable
 * base), -EEXIST (a disk already exists; the existing file is kept),
 * -EIO, or another -errno.
 */
int localdisk_create(const char *dir, const struct instance *inst,
    const struct blockinfo *bi, const char *base_path, const char *base_format,
    uint64_t base_virtual_size, struct err *e);

/* Removes every file in dir and dir itself. Idempotent: a missing dir is
 * success. Returns 0, or -EIO (something in it cannot be removed, e.g. a
 * directory). */
int localdisk_delete(const char *dir, struct err *e);

#endif
