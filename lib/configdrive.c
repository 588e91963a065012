/*
 * configdrive: the config drive's ISO image, made in-process with libisofs
 * (Nova runs genisoimage; see configdrive.h). The tree is a flat list of
 * files with '/'-separated paths; configdrive_image grafts it into a
 * libisofs image and reads the image back from libisofs' writer thread
 * (a burn_source) into one buffer. The options are genisoimage's as Nova
 * passes them (-J -r -l -allow-lowercase -V config-2): Joliet, Rock Ridge
 * with root ownership and read-only modes, 31-character ISO names; and the
 * volume id exactly "config-2" (relaxed volume attributes: libisofs would
 * upper-case it, and cloud-init looks for the lower-case label).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* without libburn.h, libisofs.h declares struct burn_source itself; it
 * has two old-style declarations (iso_init(), iso_finish()) */
#define LIBISOFS_WITHOUT_LIBBURN 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <libisofs.h>
#pragma GCC diagnostic pop

#include "configdrive.h"

#define CONFIGDRIVE_PATH_MAX 255
#define CONFIGDRIVE_BLOCK 2048

struct configdrive_file {
	char *path;
	unsigned char *data;
	size_t len;
};

struct configdrive {
	struct configdrive_file *files;
	size_t n, cap;
};

static pthread_once_t configdrive_once = PTHREAD_ONCE_INIT;
static int configdrive_init_rc;
/* libisofs keeps global state (its message queue, the node id counter):
 * one image at a time. A build takes well under a millisecond. */
static pthread_mutex_t configdrive_lock = PTHREAD_MUTEX_INITIALIZER;

static void
configdrive_init(void)
{
	/* bit0: leave the process' locale alone */
	configdrive_init_rc = iso_init_with_flag(1);
	if (configdrive_init_rc >= 0)
		(void)iso_set_msgs_severities("NEVER", "NEVER", "libisofs");
}

struct configdrive *
configdrive_new(void)
{
	return calloc(1, sizeof(struct configdrive));
}

struct configdrive *
configdrive_free(struct configdrive *d)
{
	if (d == NULL)
		return NULL;
	for (size_t i = 0; i < d->n; i++) {
		free(d->files[i].path);
		free(d->files[i].data);
	}
	free(d->files);
	free(d);
	return NULL;
}

/* A path configdrive_add accepts (see configdrive.h). */
static bool
path_valid(const char *p)
{
	size_t n = strlen(p), comp = 0;

	if (n == 0 || n > CONFIGDRIVE_PATH_MAX || p[0] == '/' ||
	    p[n - 1] == '/')
		return false;
	for (const char *c = p;; c++) {
		if (*c == '/' || *c == '\0') {
			if (comp == 0 || (comp == 1 && c[-1] == '.') ||
			    (comp == 2 && c[-1] == '.' && c[-2] == '.'))
				return false;
			if (*c == '\0')
				return true;
			comp = 0;
			continue;
		}
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			(*c >= '0' && *c <= '9') || *c == '.' || *c == '_' ||
			*c == '-'))
			return false;
		comp++;
	}
}

/* Whether a is b or a directory above it ("a/b" and "a/b/c"). */
static bool
path_clash(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);

	if (na > nb)
		return path_clash(b, a);
	return strncmp(a, b, na) == 0 && (b[na] == '\0' || b[na] == '/');
}

int
configdrive_add_take(struct configdrive *d, const char *path, void *data,
    size_t len, struct err *e)
{
	_cleanup_free_ void *own = data;
	char *p;

	if (!path_valid(path))
		return err_set(
		    e, -EINVAL, "config drive path '%.64s' is not valid", path);
	for (size_t i = 0; i < d->n; i++)
		if (path_clash(d->files[i].path, path))
			return err_set(e, -EINVAL,
			    "config drive path '%.64s' clashes with '%.64s'",
			    path, d->files[i].path);
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct configdrive_file *f =
		    realloc(d->files, cap * sizeof(*f));

		if (f == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		d->files = f;
		d->cap = cap;
	}
	if ((p = strdup(path)) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	d->files[d->n++] = (struct configdrive_file){
	    .path = p, .data = TAKE_PTR(own), .len = len};
	return 0;
}

int
configdrive_add(struct configdrive *d, const char *path, const void *data,
    size_t len, struct err *e)
{
	void *copy = malloc(len ? len : 1);

	if (copy == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	if (len)
		memcpy(copy, data, len);
	return configdrive_add_take(d, path, copy, len, e);
}

size_t
configdrive_n_files(const struct configdrive *d)
{
	return d->n;
}

const char *
configdrive_file(const struct configdrive *d, size_t i, const void **ret_data,
    size_t *ret_len)
{
	if (i >= d->n)
		return NULL;
	if (ret_data)
		*ret_data = d->files[i].data;
	if (ret_len)
		*ret_len = d->files[i].len;
	return d->files[i].path;
}

static int
iso_fail(struct err *e, int rc, const char *what)
{
	return err_set(e, rc == (int)ISO_OUT_OF_MEM ? -ENOMEM : -EIO,
	    "config drive: %s: %s", what, iso_error_to_msg(rc));
}

/* The directory for the parent of path under root, made as needed. */
static int
parent_dir(IsoDir *root, const char *path, IsoDir **ret, struct err *e)
{
	char name[CONFIGDRIVE_PATH_MAX + 1];
	const char *s = path, *slash;
	IsoDir *dir = root;
	IsoNode *node;
	int rc;

	while ((slash = strchr(s, '/')) != NULL) {
		memcpy(name, s, (size_t)(slash - s));
		name[slash - s] = '\0';
		rc = iso_dir_get_node(dir, name, &node);
		if (rc == 1) {
			if (!ISO_NODE_IS_DIR(node))
				return err_set(e, -EINVAL,
				    "config drive: %s is a file", name);
			dir = (IsoDir *)node;
		} else if ((rc = iso_tree_add_new_dir(dir, name, &dir)) < 0)
			return iso_fail(e, rc, "add directory");
		s = slash + 1;
	}
	*ret = dir;
	return 0;
}

/* The tree of d grafted into img. Equal contents share one stream, which
 * libisofs writes once. */
static int
graft(const struct configdrive *d, IsoImage *img, struct err *e)
{
	_cleanup_free_ IsoStream **streams = NULL;
	IsoDir *root = iso_image_get_root(img), *dir;
	int rc = 0;

	if (d->n && (streams = calloc(d->n, sizeof(*streams))) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < d->n && rc >= 0; i++) {
		const struct configdrive_file *f = &d->files[i];
		const char *base = strrchr(f->path, '/');
		IsoStream *st = NULL;
		unsigned char *copy;

		for (size_t j = 0; j < i && st == NULL; j++)
			if (d->files[j].len == f->len &&
			    memcmp(d->files[j].data, f->data, f->len) == 0)
				st = streams[j];
		if (st)
			iso_stream_ref(st);
		else {
			/* the stream owns (and frees) its buffer */
			if ((copy = malloc(f->len ? f->len : 1)) == NULL) {
				rc = err_set(e, -ENOMEM, "out of memory");
				break;
			}
			memcpy(copy, f->data, f->len);
			if ((rc = iso_memory_stream_new(copy, f->len, &st)) <
			    0) {
				free(copy);
				rc = iso_fail(e, rc, "memory stream");
				break;
			}
		}
		streams[i] = st;
		if ((rc = parent_dir(root, f->path, &dir, e)) < 0) {
			iso_stream_unref(st);
			break;
		}
		/* the new file takes the reference */
		if ((rc = iso_tree_add_new_file(
			 dir, base ? base + 1 : f->path, st, NULL)) < 0) {
			iso_stream_unref(st);
			rc = iso_fail(e, rc, "add file");
		}
	}
	return rc < 0 ? rc : 0;
}

/* genisoimage -J -r -l -allow-lowercase -V config-2, as Nova runs it. */
static int
write_opts(IsoWriteOpts **ret, struct err *e)
{
	IsoWriteOpts *o;
	int rc;

	if ((rc = iso_write_opts_new(&o, 0)) < 0)
		return iso_fail(e, rc, "write options");
	if ((rc = iso_write_opts_set_iso_level(o, 2)) < 0 ||
	    (rc = iso_write_opts_set_rockridge(o, 1)) < 0 ||
	    (rc = iso_write_opts_set_joliet(o, 1)) < 0 ||
	    (rc = iso_write_opts_set_relaxed_vol_atts(o, 1)) < 0 ||
	    (rc = iso_write_opts_set_allow_lowercase(o, 1)) < 0 ||
	    (rc = iso_write_opts_set_max_37_char_filenames(o, 0)) < 0 ||
	    /* -r: owned by root, readable by all, writable by none */
	    (rc = iso_write_opts_set_replace_mode(o, 2, 2, 2, 2)) < 0 ||
	    (rc = iso_write_opts_set_default_dir_mode(o, 0555)) < 0 ||
	    (rc = iso_write_opts_set_default_file_mode(o, 0444)) < 0 ||
	    (rc = iso_write_opts_set_default_uid(o, 0)) < 0 ||
	    (rc = iso_write_opts_set_default_gid(o, 0)) < 0) {
		iso_write_opts_free(o);
		return iso_fail(e, rc, "write options");
	}
	*ret = o;
	return 0;
}

/* Reads the whole image from libisofs' writer. */
static int
drain(struct burn_source *bs, unsigned char **ret_buf, size_t *ret_len,
    struct err *e)
{
	_cleanup_free_ unsigned char *buf = NULL;
	off_t size = bs->get_size(bs);
	size_t len = 0, cap;
	int n;

	if (size <= 0 || size % CONFIGDRIVE_BLOCK != 0)
		return err_set(
		    e, -EIO, "config drive: image size %lld", (long long)size);
	cap = (size_t)size;
	if ((buf = malloc(cap)) == NULL) {
		(void)bs->cancel(bs);
		return err_set(e, -ENOMEM, "out of memory");
	}
	while (len < cap) {
		n = bs->read_xt ? bs->read_xt(bs, buf + len, CONFIGDRIVE_BLOCK)
				: bs->read(bs, buf + len, CONFIGDRIVE_BLOCK);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (len != cap) {
		(void)bs->cancel(bs);
		return err_set(e, -EIO,
		    "config drive: the writer gave %zu of %zu bytes", len, cap);
	}
	*ret_buf = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int
image_locked(const struct configdrive *d, unsigned char **ret_buf,
    size_t *ret_len, struct err *e)
{
	IsoImage *img = NULL;
	IsoWriteOpts *o = NULL;
	struct burn_source *bs = NULL;
	int rc;

	if ((rc = iso_image_new(CONFIGDRIVE_VOLUME_ID, &img)) < 0)
		return iso_fail(e, rc, "new image");
	iso_image_set_volume_id(img, CONFIGDRIVE_VOLUME_ID);
	iso_image_set_publisher_id(img, "hyperlet");
	iso_image_set_application_id(img, "hyperlet config drive");
	if ((rc = graft(d, img, e)) < 0 || (rc = write_opts(&o, e)) < 0)
		goto out;
	if ((rc = iso_image_create_burn_source(img, o, &bs)) < 0) {
		rc = iso_fail(e, rc, "start writer");
		goto out;
	}
	rc = drain(bs, ret_buf, ret_len, e);
	/* the writer thread has ended (all read, or cancelled) */
	bs->free_data(bs);
	free(bs);
out:
	if (o)
		iso_write_opts_free(o);
	iso_image_unref(img);
	return rc;
}

int
configdrive_image(const struct configdrive *d, unsigned char **ret_buf,
    size_t *ret_len, struct err *e)
{
	int rc;

	(void)pthread_once(&configdrive_once, configdrive_init);
	if (configdrive_init_rc < 0)
		return iso_fail(e, configdrive_init_rc, "libisofs init");
	(void)pthread_mutex_lock(&configdrive_lock);
	rc = image_locked(d, ret_buf, ret_len, e);
	(void)pthread_mutex_unlock(&configdrive_lock);
	return rc;
}

int
configdrive_write_file(
    const char *path, const void *buf, size_t len, struct err *e)
{
	_cleanup_free_ char *tmp = NULL, *dcopy = NULL;
	const unsigned char *p = buf;
	size_t off = 0;
	ssize_t n;
	int fd, dfd, rc = 0;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0 ||
	    (dcopy = strdup(path)) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return err_set(
		    e, -errno, "create %s: %s", tmp, strerror(errno));
	if (fchmod(fd, 0644) < 0)
		rc = -errno;
	while (rc == 0 && off < len) {
		n = write(fd, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		else
			off += (size_t)n;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		(void)unlink(tmp);
		return err_set(e, rc, "write %s: %s", path, strerror(-rc));
	}
	/* the rename is durable once the directory is */
	if ((dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >=
	    0) {
		(void)fsync(dfd);
		(void)close(dfd);
	}
	return 0;
}

int
configdrive_write(const struct configdrive *d, const char *path, struct err *e)
{
	_cleanup_free_ unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	if ((rc = configdrive_image(d, &buf, &len, e)) < 0)
		return rc;
	return configdrive_write_file(path, buf, len, e);
}
