/*
 * volroot: the host-path check of a volume (see volroot.h). Paths are
 * compared after realpath(3): the final path and every root are resolved,
 * then compared by prefix on a '/' boundary, so no symlink (in the path or
 * in a root) can make a path look inside what it is not. Filesystem
 * reads only (realpath, lstat, stat); nothing is opened.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "util.h"
#include "volroot.h"

/* p equals dir or lies below it. */
static bool
volroot_within(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* realpath of path into *ret (owned), NULL when it does not resolve. */
static char *
volroot_resolve(const char *path)
{
	return path ? realpath(path, NULL) : NULL;
}

/* The next entry of a roots list into buf (NUL-terminated): its length,
 * 0 at the end; *pos advances. Entries longer than PATH_MAX are -1. */
static int
volroot_next(const char *list, size_t *pos, char buf[PATH_MAX])
{
	size_t at = *pos, n;

	at += strspn(list + at, VOLROOT_SEPARATORS);
	n = strcspn(list + at, VOLROOT_SEPARATORS);
	*pos = at + n;
	if (n == 0)
		return 0;
	if (n >= PATH_MAX)
		return -1;
	memcpy(buf, list + at, n);
	buf[n] = '\0';
	return (int)n;
}

/* Syntax of a roots list. See volroot.h. */
int
volroot_list_check(const char *roots, struct err *e)
{
	char buf[PATH_MAX];
	size_t pos = 0;
	int n;

	if (roots == NULL)
		return 0;
	while ((n = volroot_next(roots, &pos, buf)) != 0) {
		if (n < 0)
			return err_set(
			    e, -EINVAL, "volume_roots: an entry is too long");
		if (!util_path_valid(buf))
			return err_set(e, -EINVAL,
			    "volume_roots: '%.200s' is not a normalised "
			    "absolute path",
			    buf);
	}
	return 0;
}

/* The parent directory of a normalised absolute path, resolved; NULL if
 * it does not resolve. */
static char *
volroot_parent(const char *path)
{
	char buf[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (n >= sizeof(buf))
		return NULL;
	if (n == 0)
		return volroot_resolve("/");
	memcpy(buf, path, n);
	buf[n] = '\0';
	return volroot_resolve(buf);
}

/* real is the database file or one of SQLite's files next to it. */
static bool
volroot_is_db(const char *real, const char *db)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	size_t n = strlen(db);

	if (strncmp(real, db, n) != 0)
		return false;
	for (size_t i = 0; i < ELEMENTSOF(sfx); i++)
		if (STREQ(real + n, sfx[i]))
			return true;
	return false;
}

/* Which root admits real (path resolved): *ret_root (owned, resolved) or
 * NULL (none, or out of memory: refused either way). */
static void
volroot_find_root(const char *roots, const char *path, const char *real,
    bool block, bool is_link, char **ret_root)
{
	_cleanup_free_ char *parent = NULL;
	char buf[PATH_MAX];
	size_t pos = 0;
	int n;

	*ret_root = NULL;
	/* a udev-style link (by-id, by-path, mapper): a block volume's path
	 * that is a direct entry of a root and a symlink to a device node */
	if (block && is_link && volroot_within(real, "/dev"))
		parent = volroot_parent(path);
	while ((n = volroot_next(roots, &pos, buf)) != 0) {
		char *root;

		if (n < 0 || (root = volroot_resolve(buf)) == NULL)
			continue; /* a root that does not exist admits nothing */
		if ((volroot_within(real, root) && !STREQ(real, root)) ||
		    (parent && STREQ(parent, root))) {
			*ret_root = root;
			return;
		}
		free(root);
	}
}

/* Resolves the own paths once. See volroot.h. */
void
volroot_real_resolve(const struct volroot_opts *o, struct volroot_real *r)
{
	r->state_dir = volroot_resolve(o->state_dir);
	r->images_dir = volroot_resolve(o->images_dir);
	r->instances_dir = volroot_resolve(o->instances_dir);
	r->db_path = volroot_resolve(o->db_path);
}

void
volroot_real_clear(struct volroot_real *r)
{
	free(r->state_dir);
	free(r->images_dir);
	free(r->instances_dir);
	free(r->db_path);
	*r = (struct volroot_real){0};
}

/* path resolved (owned; NULL if it does not resolve), or its copy when
 * real is the resolved path already. */
static char *
volroot_own(const char *path, const char *real)
{
	return real ? strdup(real) : volroot_resolve(path);
}

/* May path be a volume of type? See volroot.h. */
int
volroot_check(const struct volroot_opts *o, const char *type, const char *path,
    const char *field, struct err *e)
{
	_cleanup_free_ char *real = NULL, *root = NULL, *dir = NULL;
	bool block = type && STREQ(type, "block");
	const struct volroot_real *r = o ? o->real : NULL;
	const char *own[] = {
	    o ? o->images_dir : NULL, o ? o->instances_dir : NULL};
	const char *own_real[] = {
	    r ? r->images_dir : NULL, r ? r->instances_dir : NULL};
	struct stat st;
	bool is_link;

	if (o == NULL || o->roots == NULL ||
	    o->roots[strspn(o->roots, VOLROOT_SEPARATORS)] == '\0')
		return err_set_field(e, -EINVAL, field,
		    "no volume roots are configured ([storage] volume_roots): "
		    "this host takes no volumes");
	if (path == NULL || !util_path_valid(path))
		return err_set_field(
		    e, -EINVAL, field, "expected a normalised absolute path");
	if (lstat(path, &st) < 0 || (real = volroot_resolve(path)) == NULL)
		return err_set_field(e, -EINVAL, field,
		    "%.200s: %s (the volume must already be attached to this "
		    "host)",
		    path, strerror(errno));
	is_link = S_ISLNK(st.st_mode);
	volroot_find_root(o->roots, path, real, block, is_link, &root);
	if (root == NULL)
		return err_set_field(e, -EINVAL, field,
		    "%.200s is not inside any of [storage] volume_roots "
		    "(symlinks resolved)",
		    path);
	/* hyperlet's own files are never a volume */
	for (size_t i = 0; i < ELEMENTSOF(own); i++) {
		bool in;

		dir = volroot_own(own[i], own_real[i]);
		in = dir && volroot_within(real, dir);
		free(TAKE_PTR(dir));
		if (in)
			return err_set_field(e, -EINVAL, field,
			    "%.200s is inside hyperlet's images or instances "
			    "directory",
			    path);
	}
	if ((dir = volroot_own(o->db_path, r ? r->db_path : NULL)) &&
	    volroot_is_db(real, dir))
		return err_set_field(
		    e, -EINVAL, field, "%.200s is hyperlet's database", path);
	free(TAKE_PTR(dir));
	if ((dir = volroot_own(o->state_dir, r ? r->state_dir : NULL)) &&
	    volroot_within(real, dir) &&
	    !(volroot_within(root, dir) && !STREQ(root, dir)))
		return err_set_field(e, -EINVAL, field,
		    "%.200s is inside hyperlet's state directory", path);
	if (stat(real, &st) < 0)
		return err_set_field(
		    e, -EINVAL, field, "%.200s: %s", path, strerror(errno));
	if (block && !S_ISBLK(st.st_mode))
		return err_set_field(e, -EINVAL, field,
		    "%.200s is not a block device (driver_volume_type block)",
		    path);
	if (!block && !S_ISREG(st.st_mode))
		return err_set_field(e, -EINVAL, field,
		    "%.200s is not a regular file (driver_volume_type file)",
		    path);
	return 0;
}
