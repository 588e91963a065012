/*
 * configdrive: an ISO 9660 image (Rock Ridge and Joliet, primary volume id
 * exactly "config-2") built in memory with libisofs from an in-memory tree
 * of files, and written atomically to a path. It knows nothing of what the
 * files say: metadata.c fills the tree with Nova's layout. The only file
 * that includes <libisofs.h>.
 *
 * Use: configdrive_new, configdrive_add for every file ("openstack/latest/
 * meta_data.json"; parent directories are implied), then configdrive_image
 * (the bytes) and/or configdrive_write (temp file, fsync, rename, fsync of
 * the directory). Identical contents are stored once in the image.
 */
#ifndef HYPERLET_CONFIGDRIVE_H
#define HYPERLET_CONFIGDRIVE_H

#include <stddef.h>

#include "err.h"
#include "macro.h"

#define CONFIGDRIVE_VOLUME_ID "config-2"
#define CONFIGDRIVE_FILE_NAME "disk.config"

struct configdrive;

/* An empty tree. Returns NULL when out of memory. */
struct configdrive *configdrive_new(void);
/* Accepts NULL; returns NULL. */
struct configdrive *configdrive_free(struct configdrive *d);
DEFINE_FREEP(struct configdrive, configdrive_free)

/* Adds the file path (relative, '/'-separated, components of
 * [A-Za-z0-9._-] that are not "." or "..", at most 255 bytes) with a copy
 * of len bytes of data. Returns 0, -EINVAL (bad path, or a file or
 * directory of that name already), -ENOMEM. */
int configdrive_add(struct configdrive *d, const char *path, const void *data,
    size_t len, struct err *e);
/* As configdrive_add, taking ownership of data (malloc'd; freed on
 * failure too). */
int configdrive_add_take(struct configdrive *d, const char *path, void *data,
    size_t len, struct err *e);

/* The number of files, and file i's path and content (borrowed). */
size_t configdrive_n_files(const struct configdrive *d);
const char *configdrive_file(const struct configdrive *d, size_t i,
    const void **ret_data, size_t *ret_len);

/* The ISO image of the tree: *ret_buf (owned, free) of *ret_len bytes.
 * Returns 0, -ENOMEM, -EIO (libisofs refused; its code in e). */
int configdrive_image(const struct configdrive *d, unsigned char **ret_buf,
    size_t *ret_len, struct err *e);

/* Writes len bytes of buf to path atomically: a temp file beside it
 * (mode 0644), fsync, rename over path, fsync of the directory. Returns
 * 0, or -errno (the temp file removed). */
int configdrive_write_file(
    const char *path, const void *buf, size_t len, struct err *e);

/* configdrive_image + configdrive_write_file. */
int configdrive_write(
    const struct configdrive *d, const char *path, struct err *e);

#endif /* HYPERLET_CONFIGDRIVE_H */
