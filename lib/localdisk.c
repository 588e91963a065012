/*
 * localdisk: the instance's local disk files, made in-process. What it
 * replaced: a transient libvirt `dir` pool per call and one
 * virStorageVolCreateXML per disk, which ran one `qemu-img create` process
 * after another inside libvirtd (~17 ms each) and cost 17 RPCs per
 * instance life cycle; on libvirt's test driver the volumes were not even
 * files. Now a disk is one qcow2_create (an open, three pwrites, an
 * ftruncate) on every driver.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "localdisk.h"
#include "macro.h"
#include "qcow2.h"
#include "util.h"

#define LOCALDISK_GIB (UINT64_C(1) << 30)
#define LOCALDISK_MIB (UINT64_C(1) << 20)

/* The root disk's size in bytes into *ret after checking the base image.
 * See localdisk_create. */
static int
root_size(const struct instance *inst, const char *base_path,
    const char *base_format, uint64_t base_virtual_size, uint64_t *ret,
    struct err *e)
{
	uint64_t size;

	if (base_path == NULL || !util_path_valid(base_path))
		return err_set(e, -EINVAL,
		    "base image path '%s' is not a normalised absolute path",
		    base_path ? base_path : "(null)");
	if (base_format == NULL ||
	    (!STREQ(base_format, "raw") && !STREQ(base_format, "qcow2") &&
		!STREQ(base_format, "iso")))
		return err_set(e, -EINVAL,
		    "base image format '%s': expected raw, qcow2 or iso",
		    base_format ? base_format : "(null)");
	if (access(base_path, R_OK) < 0)
		return err_set(e, -EINVAL, "base image %s: %s", base_path,
		    strerror(errno));
	if (inst->flavor.root_gb < 0 ||
	    (uint64_t)inst->flavor.root_gb > QCOW2_MAX_SIZE / LOCALDISK_GIB)
		return err_set(e, -EINVAL, "root_gb %" PRId64 " out of range",
		    inst->flavor.root_gb);
	size = (uint64_t)inst->flavor.root_gb * LOCALDISK_GIB;
	if (size == 0)
		size = base_virtual_size;
	if (size == 0)
		return err_set(e, -EINVAL,
		    "root disk size unknown: root_gb 0 and no image size");
	if (size < base_virtual_size)
		return err_set(e, -EINVAL,
		    "root disk of %" PRId64 " GiB is smaller than the image "
		    "(%" PRIu64 " bytes)",
		    inst->flavor.root_gb, base_virtual_size);
	*ret = size;
	return 0;
}

/* <dir>/<name> as qcow2_create makes it, noted in made[*n_made]. */
static int
make_one(const char *dir, const char *name, uint64_t size, const char *backing,
    const char *fmt, const char **made, size_t *n_made, struct err *e)
{
	char path[4096];
	int r;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return err_set(e, -EINVAL, "%s/%s: path too long", dir, name);
	if ((r = qcow2_create(path, size, backing, fmt, e)) == 0)
		made[(*n_made)++] = name;
	return r;
}

/* Makes the local disks. See localdisk.h. */
int
localdisk_create(const char *dir, const struct instance *inst,
    const struct blockinfo *bi, const char *base_path, const char *base_format,
    uint64_t base_virtual_size, struct err *e)
{
	const char *made[2 + bi->n_ephemerals];
	size_t n_made = 0, i;
	uint64_t rsize = 0;
	char path[4096];
	int r = 0;

	if (bi->local_root &&
	    (r = root_size(inst, base_path, base_format, base_virtual_size,
		 &rsize, e)) < 0)
		return r;
	for (i = 0; i < bi->n_ephemerals; i++)
		if (bi->ephemerals[i]->size <= 0 ||
		    (uint64_t)bi->ephemerals[i]->size >
			QCOW2_MAX_SIZE / LOCALDISK_GIB)
			return err_set(e, -EINVAL,
			    "%s: size %" PRId64 " GiB out of range",
			    bi->ephemerals[i]->name, bi->ephemerals[i]->size);
	if (bi->swap &&
	    (bi->swap->size <= 0 ||
		(uint64_t)bi->swap->size > QCOW2_MAX_SIZE / LOCALDISK_MIB))
		return err_set(e, -EINVAL,
		    "disk.swap: size %" PRId64 " MiB out of range",
		    bi->swap->size);
	if (!bi->local_root && bi->n_ephemerals == 0 && !bi->swap)
		return 0;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return err_set(e, -errno, "mkdir %s: %s", dir, strerror(errno));

	if (bi->local_root)
		r = make_one(dir, bi->local_root->name, rsize, base_path,
		    STREQ(base_format, "iso") ? "raw" : base_format, made,
		    &n_made, e);
	for (i = 0; r == 0 && i < bi->n_ephemerals; i++)
		r = make_one(dir, bi->ephemerals[i]->name,
		    (uint64_t)bi->ephemerals[i]->size * LOCALDISK_GIB, NULL,
		    NULL, made, &n_made, e);
	if (r == 0 && bi->swap)
		r = make_one(dir, bi->swap->name,
		    (uint64_t)bi->swap->size * LOCALDISK_MIB, NULL, NULL, made,
		    &n_made, e);
	if (r < 0)
		for (i = 0; i < n_made; i++) {
			(void)snprintf(
			    path, sizeof(path), "%s/%s", dir, made[i]);
			(void)unlink(path);
		}
	return r;
}

/* Removes dir with the files in it. See localdisk.h. */
int
localdisk_delete(const char *dir, struct err *e)
{
	struct dirent *de;
	DIR *d;
	int r = 0;

	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		return err_set(e, -EIO, "open %s: %s", dir, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		if (STREQ(de->d_name, ".") || STREQ(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT &&
		    r == 0)
			r = err_set(e, -EIO, "remove %s/%s: %s", dir,
			    de->d_name, strerror(errno));
	}
	(void)closedir(d);
	if (r < 0)
		return r;
	if (rmdir(dir) < 0 && errno != ENOENT)
		return err_set(e, -EIO, "rmdir %s: %s", dir, strerror(errno));
	return 0;
}
