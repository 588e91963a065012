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
 * afterwards inside a root is the root owner's business. hyperlet's own
 * directories may be resolved once, at start (struct volroot_real): they
 * are hyperlet's, made by it before it serves.
 */
#ifndef HYPERLET_VOLROOT_H
#define HYPERLET_VOLROOT_H

#include "err.h"

/* hyperlet's own paths of a volroot_opts, resolved once
 * (volroot_real_resolve; owned; NULL where one did not resolve). */
struct volroot_real {
	char *state_dir, *images_dir, *instances_dir, *db_path;
};

/* What the check compares against; every string is borrowed and may be
 * NULL (no roots: every volume is refused; an unset directory excludes
 * nothing). */
struct volroot_opts {
	const char *roots; /* the [storage] volume_roots list */
	const char *state_dir;
	const char *images_dir;
	const char *instances_dir;
	const char *db_path;
	/* NULL, or the four paths above resolved once: each check then
	 * resolves only the volume's path and the roots (the operator's,
	 * which may change while hyperlet runs); a member that is NULL is
	 * resolved at each check as without it */
	const struct volroot_real *real;
};

/* Characters that separate the entries of a roots list. */
#define VOLROOT_SEPARATORS ", \t\n"

/*
 * Checks a roots list's syntax only (cfg): every entry a normalised
 * absolute path. Returns 0 or -EINVAL naming the entry.
 */
int volroot_list_check(const char *roots, struct err *e);

/* Resolves o's own paths into *r (a member that does not resolve, for
 * whatever reason, is NULL: the check then resolves it each time). */
void volroot_real_resolve(const struct volroot_opts *o, struct volroot_real *r);

/* Frees what volroot_real_resolve put in r. */
void volroot_real_clear(struct volroot_real *r);

/*
 * Whether path may be a volume of type ("file" or "block"), see above.
 * Returns 0, or -EINVAL with field (copied into e) and a message saying
 * why; -ENOMEM.
 */
int volroot_check(const struct volroot_opts *o, const char *type,
    const char *path, const char *field, struct err *e);

#endif
