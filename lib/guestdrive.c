/*
 * guestdrive: the config drive file of an instance (see guestdrive.h).
 * Write: domain XML (virt) -> addresses (domaddr) -> files (metadata) ->
 * ISO (configdrive) -> temp file + rename. The temp file is
 * disk.config.tmp.XXXXXX beside it, so a kill -9 mid-write leaves at most
 * that, which every removal path of compute takes with the instance
 * directory (localdisk_delete removes every entry).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "configdrive.h"
#include "domaddr.h"
#include "guestdrive.h"
#include "metadata.h"

#define TMP_PREFIX CONFIGDRIVE_FILE_NAME ".tmp."

static int
drive_path(struct virt *v, const char *uuid, char **ret_dir, char **ret_path,
    struct err *e)
{
	_cleanup_free_ char *dir = NULL;
	char *p;
	int rc;

	if ((rc = virt_instance_dir(v, uuid, &dir, e)) < 0)
		return rc;
	if (asprintf(&p, "%s/" CONFIGDRIVE_FILE_NAME, dir) < 0)
		return err_set(e, -ENOMEM, "out of memory");
	*ret_path = p;
	if (ret_dir)
		*ret_dir = TAKE_PTR(dir);
	return 0;
}

static int
mkdir_one(const char *dir, struct err *e)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return err_set(e, errno == ENOENT ? -EIO : -errno,
		    "mkdir %s: %s", dir, strerror(errno));
	return 0;
}

int
guestdrive_make(struct virt *v, const struct instance *inst,
    const char *availability_zone, struct err *e)
{
	_cleanup_free_ char *xml = NULL, *dir = NULL, *path = NULL;
	_cleanup_(domaddr_freep) struct domaddr *dom = NULL;
	_cleanup_(configdrive_freep) struct configdrive *d = NULL;
	struct metadata_opts o = {.availability_zone = availability_zone};
	int rc;

	if ((rc = drive_path(v, inst->uuid, &dir, &path, e)) < 0 ||
	    (rc = virt_get_xml(v, inst->uuid, true, &xml, e)) < 0 ||
	    (rc = domaddr_parse(xml, &dom, e)) < 0)
		return rc;
	if ((d = configdrive_new()) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	if ((rc = metadata_build(inst, dom, &o, d, e)) < 0 ||
	    (rc = mkdir_one(virt_instances_path(v), e)) < 0 ||
	    (rc = mkdir_one(dir, e)) < 0)
		return rc;
	return configdrive_write(d, path, e);
}

int
guestdrive_remove(struct virt *v, const char *uuid, struct err *e)
{
	_cleanup_free_ char *dir = NULL, *path = NULL;
	struct dirent *de;
	DIR *dp;
	int rc, fd;

	if ((rc = drive_path(v, uuid, &dir, &path, e)) < 0)
		return rc;
	if ((dp = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		return err_set(e, -EIO, "open %s: %s", dir, strerror(errno));
	}
	fd = dirfd(dp);
	rc = 0;
	while ((de = readdir(dp)) != NULL) {
		if (!STREQ(de->d_name, CONFIGDRIVE_FILE_NAME) &&
		    strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
			continue;
		if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT &&
		    rc == 0)
			rc = err_set(e, -EIO, "unlink %s/%s: %s", dir,
			    de->d_name, strerror(errno));
	}
	(void)closedir(dp);
	/* only the drive was there (libvirt's test driver makes no disks):
	 * the directory goes too; otherwise virt_delete_disks removes it */
	if (rc == 0)
		(void)rmdir(dir);
	return rc;
}

int
guestdrive_exists(struct virt *v, const char *uuid, struct err *e)
{
	_cleanup_free_ char *path = NULL;
	struct stat st;
	int rc;

	if ((rc = drive_path(v, uuid, NULL, &path, e)) < 0)
		return rc;
	if (stat(path, &st) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	return err_set(e, -errno, "stat %s: %s", path, strerror(errno));
}

int
guestdrive_read(struct virt *v, const char *uuid, char **ret, size_t *ret_len,
    struct err *e)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	struct stat st;
	size_t off = 0;
	ssize_t n;
	int rc, fd;

	if ((rc = drive_path(v, uuid, NULL, &path, e)) < 0)
		return rc;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT
		    ? err_set(
			  e, -ENOENT, "instance %s has no config drive", uuid)
		    : err_set(e, -EIO, "open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > GUESTDRIVE_MAX_BYTES) {
		(void)close(fd);
		return err_set(e, -EIO, "%s: not a config drive", path);
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		(void)close(fd);
		return err_set(e, -ENOMEM, "out of memory");
	}
	while (off < (size_t)st.st_size) {
		n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	(void)close(fd);
	if (off != (size_t)st.st_size)
		return err_set(e, -EIO, "read %s: short read", path);
	*ret = TAKE_PTR(buf);
	*ret_len = off;
	return 0;
}
