/*
 * guestdrive: an instance's config drive on disk, between compute and the
 * pieces that make it: <instances_path>/<uuid>/disk.config is made from
 * the defined domain (its addresses, read back: domaddr), the instance
 * and its guest data (metadata, netinfo) as an ISO (configdrive), and
 * removed with the instance. compute calls it between define and start;
 * the API reads the bytes back.
 */
#ifndef HYPERLET_GUESTDRIVE_H
#define HYPERLET_GUESTDRIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "bdm.h"
#include "err.h"
#include "virt.h"

/* Largest drive guestdrive_read returns (Nova's user_data limit keeps a
 * real one far below). */
#define GUESTDRIVE_MAX_BYTES (16 * 1024 * 1024)

/*
 * Builds inst's config drive from its defined domain (the persistent XML,
 * one libvirt call) and writes it atomically as <dir>/disk.config, making
 * the instance directory (and instances_path) when missing: libvirt's test
 * driver makes none. availability_zone NULL: "nova". Returns 0, -ENOENT
 * (no domain), -EINVAL (user_data not base64), -EAGAIN, -EIO, -ENOMEM.
 */
int guestdrive_make(struct virt *v, const struct instance *inst,
    const char *availability_zone, struct err *e);

/* Removes <dir>/disk.config and the temp files of an interrupted write,
 * then the instance directory if that left it empty. Idempotent. Returns
 * 0, -EINVAL (bad uuid), -EIO. */
int guestdrive_remove(struct virt *v, const char *uuid, struct err *e);

/* 1 if the instance has a disk.config, 0 if not, -errno. */
int guestdrive_exists(struct virt *v, const char *uuid, struct err *e);

/* The drive's bytes into *ret (owned) and *ret_len. Returns 0, -ENOENT
 * (none), -EIO, -ENOMEM. */
int guestdrive_read(struct virt *v, const char *uuid, char **ret,
    size_t *ret_len, struct err *e);

#endif /* HYPERLET_GUESTDRIVE_H */
