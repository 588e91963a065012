/*
 * volroot: may this host path be a guest's volume? A volume's
 * connection_info.data.device_path is a path on this host that QEMU opens
 * read-write, so it must come from where the operator keeps volumes:
 *
 *  - [storage] volume_roots lists absolute directories (separated by
 *    commas and/or white space); none by default, so no volume at all
 *    until the operator lists where volumes live;
 *  - the path, with every symlink resolved (realpath), must lie inside one
 *    of the roots (also resolved), on a '/' boundary: a symlink inside a
 *    root that points elsewhere inside it is fine, one that leads out of
 *    it is refused;
 *  - the one exception is made for udev-style link directories
 *    (/dev/disk/by-id, /dev/disk/by-path, /dev/mapper): a `block` volume
 *    whose path is a direct entry of a root and a symlink may resolve
 *    anywhere under /dev, as long as it ends on a block device. A `file`
 *    volume never leaves its root;
 *  - never inside the images or instances directories, never the
 *    database (nor its -wal, -shm, -journal files), and inside the state
 *    directory only through a root that is itself a subdirectory of it
 *    (./bootstrap run lists <state_dir>/volumes);
 *  - a `block` volume must be a block device, a `file` volume a regular
 *    file.
 *
 * The check looks at the filesystem as it is at the time of the call (the
 * API's create and attach, reconciliation's redefine); what is swapped
 * afterwards inside a root is the root owner's business.
 */
#ifndef HYPERLET_VOLROOT_H
#define HYPERLET_VOLROOT_H

#include "err.h"

/* What the check compares against; every string is borrowed and may be
 * NULL (no roots: every volume is refused; an unset directory excludes
 * nothing). */
struct volroot_opts {
	const char *roots; /* the [storage] volume_roots list */
	const char *state_dir;
	const char *images_dir;
	const char *instances_dir;
	const char *db_path;
};

/* Characters that separate the entries of a roots list. */
#define VOLROOT_SEPARATORS ", \t\n"

/*
 * Checks a roots list's syntax only (cfg): every entry a normalised
 * absolute path. Returns 0 or -EINVAL naming the entry.
 */
int volroot_list_check(const char *roots, struct err *e);

/*
 * Whether path may be a volume of type ("file" or "block"), see above.
 * Returns 0, or -EINVAL with field (copied into e) and a message saying
 * why; -ENOMEM.
 */
int volroot_check(const struct volroot_opts *o, const char *type,
    const char *path, const char *field, struct err *e);

#endif
