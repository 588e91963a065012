/*
 * api_images: the image routes. PUT /v1/images/{id} first claims the id:
 * its temporary file <images>/.upload-<id> is created O_EXCL, so a second
 * upload (or a DELETE, which claims the same name) of the id is 409 at
 * once. The body is streamed into that file while hashing it (sha256
 * always, md5 too when the caller's checksum is md5); then the checksum is
 * checked, lib/imgfmt judges the format (raw or a self-contained qcow2;
 * anything else refused) and the file is published under its id with
 * link() (never replacing a file), the row recorded, and only then the
 * claim released. A failed upload leaves neither a file nor a row; a crash
 * leaves a claim or a file without a row, which api_images_clean removes
 * at start-up. GET lists, DELETE (a job: it waits for creates) refuses
 * images in use.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api.h"
#include "api_impl.h"
#include "bdm.h"
#include "cfg.h"
#include "imgfmt.h"
#include "log.h"
#include "store.h"

#define CLAIM_PREFIX ".upload-"

struct upload {
	int fd;
	char *tmp_path; /* owned; the id's claim, unlinked at cleanup */
	char *final_path; /* owned */
	gnutls_hash_hd_t sha256;
	gnutls_hash_hd_t md5; /* only when the caller sent md5 */
	uint64_t size;
	char want_algo[8]; /* "sha256", "md5" or "" */
	char want_hex[65];
	char *properties; /* JSON object text, owned */
};

static const char *
images_dir(struct api_req *r)
{
	return r->h->images_dir ? r->h->images_dir : r->h->cfg->images_path;
}

static void
hex(const unsigned char *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* sha256 of buf as lower-case hex (see api_impl.h). */
int
api_sha256_hex(const void *buf, size_t len, char out[65])
{
	unsigned char d[32];

	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, len, d) < 0)
		return -EIO;
	hex(d, sizeof(d), out);
	return 0;
}

static bool
is_hex(const char *s, size_t n)
{
	size_t i;

	if (strlen(s) != n)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f') ||
			(s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static struct json_object *
image_json(const struct store_image *img)
{
	struct json_object *o = json_object_new_object();
	struct json_object *props = NULL;
	char ts[32];

	if (o == NULL)
		return NULL;
	util_rfc3339(img->created_at, ts);
	json_object_object_add(o, "id", json_object_new_string(img->id));
	json_object_object_add(
	    o, "format", json_object_new_string(img->format));
	json_object_object_add(
	    o, "virtual_size", json_object_new_int64(img->virtual_size));
	json_object_object_add(
	    o, "size", json_object_new_int64(img->file_size));
	json_object_object_add(o, "checksum",
	    img->checksum ? json_object_new_string(img->checksum) : NULL);
	if (img->properties)
		props = json_tokener_parse(img->properties);
	json_object_object_add(
	    o, "properties", props ? props : json_object_new_object());
	json_object_object_add(o, "created_at", json_object_new_string(ts));
	return o;
}

/* The image properties a PUT may carry as query parameters. */
static const char *const image_query[] = {"checksum", "hw_disk_bus",
    "hw_cdrom_bus", "hw_scsi_model", "hw_machine_type", NULL};

static int
upload_properties(struct api_req *r, char **ret, struct err *e)
{
	struct json_object *o = json_object_new_object();
	size_t i;
	int rc = 0;

	if (o == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	for (i = 1; image_query[i]; i++) {
		const char *v = api_query(r, image_query[i]);
		enum bdm_bus bus;

		if (v == NULL)
			continue;
		if (strlen(v) == 0 || strlen(v) > 64 ||
		    !util_text_valid(v, strlen(v))) {
			rc = err_set_field(e, -EINVAL, image_query[i],
			    "%s: expected 1 to 64 printable characters",
			    image_query[i]);
			break;
		}
		if ((STREQ(image_query[i], "hw_disk_bus") ||
			STREQ(image_query[i], "hw_cdrom_bus")) &&
		    bdm_bus_from_string(v, &bus) < 0) {
			rc = err_set_field(e, -EINVAL, image_query[i],
			    "%s: unknown bus '%s'", image_query[i], v);
			break;
		}
		json_object_object_add(
		    o, image_query[i], json_object_new_string(v));
	}
	if (rc == 0) {
		*ret = strdup(
		    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		if (*ret == NULL)
			rc = err_set(e, -ENOMEM, "out of memory");
	}
	json_object_put(o);
	return rc;
}

static int
upload_begin(struct api_req *r, struct err *e)
{
	struct upload *u;
	struct store *s;
	struct store_image *old = NULL;
	const char *ck;
	int rc;

	if ((rc = api_query_check(r, image_query, e)) < 0)
		return rc;
	if (!(s = api_store(r, e)))
		return e->code;
	rc = store_image_get(s, r->id, &old, e);
	if (rc == 0) {
		store_image_free(old);
		return err_set_field(e, -EEXIST, "image_id",
		    "image %s already exists (images are immutable)", r->id);
	}
	if (rc != -ENOENT)
		return rc;
	err_clear(e);

	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	u->fd = -1;
	r->stream = u;
	ck = api_query(r, "checksum");
	if (ck) {
		const char *colon = strchr(ck, ':');

		if (colon && colon - ck == 6 && strncmp(ck, "sha256", 6) == 0 &&
		    is_hex(colon + 1, 64))
			strcpy(u->want_algo, "sha256");
		else if (colon && colon - ck == 3 &&
		    strncmp(ck, "md5", 3) == 0 && is_hex(colon + 1, 32))
			strcpy(u->want_algo, "md5");
		else
			return err_set_field(e, -EINVAL, "checksum",
			    "checksum: expected sha256:<64 hex digits> or "
			    "md5:<32 hex digits>");
		(void)snprintf(
		    u->want_hex, sizeof(u->want_hex), "%s", colon + 1);
		for (char *p = u->want_hex; *p; p++)
			if (*p >= 'A' && *p <= 'F')
				*p = (char)(*p - 'A' + 'a');
	}
	if ((rc = upload_properties(r, &u->properties, e)) < 0)
		return rc;
	if (asprintf(&u->final_path, "%s/%s", images_dir(r), r->id) < 0) {
		u->final_path = NULL;
		return err_set(e, -ENOMEM, "out of memory");
	}
	if (asprintf(&u->tmp_path, "%s/" CLAIM_PREFIX "%s", images_dir(r),
		r->id) < 0) {
		u->tmp_path = NULL;
		return err_set(e, -ENOMEM, "out of memory");
	}
	/* The claim: O_EXCL, so of two uploads of one id (or an upload and
	 * a DELETE) only one goes on; the other is 409 before its body. */
	u->fd = open(u->tmp_path,
	    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (u->fd < 0) {
		rc = -errno;
		free(u->tmp_path);
		u->tmp_path = NULL;
		if (rc == -EEXIST)
			return err_set_field(e, -EBUSY, "image_id",
			    "image %s is being uploaded or deleted", r->id);
		return err_set(e, rc == -ENOENT ? -EIO : rc,
		    "cannot create a file in the images directory: %s",
		    strerror(-rc));
	}
	if (gnutls_hash_init(&u->sha256, GNUTLS_DIG_SHA256) < 0 ||
	    (STREQ(u->want_algo, "md5") &&
		gnutls_hash_init(&u->md5, GNUTLS_DIG_MD5) < 0))
		return err_set(e, -EIO, "cannot initialise the hash");
	return 0;
}

static int
upload_data(struct api_req *r, const char *buf, size_t len, struct err *e)
{
	struct upload *u = r->stream;
	int64_t max = r->h->cfg->max_image_bytes;
	size_t off = 0;

	if (u->size + len > (uint64_t)max)
		return err_set(e, -EFBIG, "the image is larger than %lld bytes",
		    (long long)max);
	(void)gnutls_hash(u->sha256, buf, len);
	if (u->md5)
		(void)gnutls_hash(u->md5, buf, len);
	while (off < len) {
		ssize_t n = write(u->fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(e, errno == ENOSPC ? -EFBIG : -EIO,
			    "writing the image: %s", strerror(errno));
		off += (size_t)n;
	}
	u->size += len;
	return 0;
}

static int64_t
fd_pread(void *cls, void *buf, size_t len, uint64_t off)
{
	const int *fd = cls;
	ssize_t n;

	do
		n = pread(*fd, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (int64_t)n;
}

/* Publishes the upload under its id without ever replacing a file: a
 * file there without a row (a crash after an earlier publish, or a
 * planted name) is removed first, which only the claim holder may do. */
static int
publish(struct api_req *r, struct store *s, struct upload *u, struct err *e)
{
	struct store_image *row = NULL;
	int tries;

	for (tries = 0; tries < 2; tries++) {
		if (link(u->tmp_path, u->final_path) == 0)
			return 0;
		if (errno != EEXIST)
			break;
		if (store_image_get(s, r->id, &row, NULL) == 0) {
			store_image_free(row);
			return err_set_field(e, -EEXIST, "image_id",
			    "image %s already exists", r->id);
		}
		log_warn("image %s: removing a file without a row", r->id);
		if (unlink(u->final_path) < 0 && errno != ENOENT)
			break;
	}
	return err_set(e, -EIO, "publishing the image: %s", strerror(errno));
}

static void
upload_finish(struct api_req *r)
{
	struct upload *u = r->stream;
	struct store_image img = {0};
	struct store_image *back = NULL;
	struct err e = {0};
	struct json_object *o;
	unsigned char d[32];
	char sha[65], md5hex[33], checksum[80];
	struct imgfmt_info fmt;
	struct store *s;
	int dfd;

	gnutls_hash_output(u->sha256, d);
	hex(d, 32, sha);
	if (u->md5) {
		gnutls_hash_output(u->md5, d);
		hex(d, 16, md5hex);
	}
	if (u->size == 0) {
		err_set(&e, -EINVAL, "the image is empty");
		goto out;
	}
	if (STREQ(u->want_algo, "sha256") && !STREQ(u->want_hex, sha)) {
		err_set_field(&e, -EINVAL, "checksum",
		    "checksum mismatch: the body's sha256 is %s", sha);
		goto out;
	}
	if (STREQ(u->want_algo, "md5") && !STREQ(u->want_hex, md5hex)) {
		err_set_field(&e, -EINVAL, "checksum",
		    "checksum mismatch: the body's md5 is %s", md5hex);
		goto out;
	}
	memcpy(img.id, r->id, sizeof(img.id));
	img.file_size = (int64_t)u->size;
	if (imgfmt_inspect(fd_pread, &u->fd, u->size, &fmt, &e) < 0)
		goto out;
	img.format = (char *)fmt.format; /* static; img is not freed */
	img.virtual_size = (int64_t)fmt.virtual_size;
	(void)snprintf(checksum, sizeof(checksum), "sha256:%s", sha);
	img.checksum = checksum;
	img.properties = u->properties;

	if (fsync(u->fd) < 0) {
		err_set(&e, -EIO, "fsync of the image: %s", strerror(errno));
		goto out;
	}
	(void)fchmod(u->fd, 0644);
	if (!(s = api_store(r, &e)))
		goto out;
	if (publish(r, s, u, &e) < 0)
		goto out;
	/* the file's name is durable before the row that names it */
	dfd = open(images_dir(r), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	if (store_image_put(s, &img, &e) < 0) {
		(void)unlink(u->final_path);
		goto out;
	}
	if (store_image_get(s, r->id, &back, &e) < 0)
		goto out;
	o = image_json(back);
	store_image_free(back);
	if (o == NULL) {
		err_set(&e, -ENOMEM, "out of memory");
		goto out;
	}
	if (asprintf(&r->location, "/v1/images/%s", r->id) < 0)
		r->location = NULL;
	api_reply_json(r, 201, o);
	json_object_put(o);
	log_info("image %s: %s, %llu bytes, virtual %lld", r->id, img.format,
	    (unsigned long long)u->size, (long long)img.virtual_size);
	return;
out:
	api_reply_error(r, &e);
}

static void
upload_cleanup(struct api_req *r)
{
	struct upload *u = r->stream;

	if (u == NULL)
		return;
	if (u->fd >= 0)
		close(u->fd);
	/* the published file is a second link: this releases the claim */
	if (u->tmp_path)
		(void)unlink(u->tmp_path);
	if (u->sha256)
		gnutls_hash_deinit(u->sha256, NULL);
	if (u->md5)
		gnutls_hash_deinit(u->md5, NULL);
	free(u->tmp_path);
	free(u->final_path);
	free(u->properties);
	free(u);
	r->stream = NULL;
}

const struct api_stream_ops api_image_upload = {
    .begin = upload_begin,
    .data = upload_data,
    .finish = upload_finish,
    .cleanup = upload_cleanup,
};

/* GET /v1/images: {"images": [...]}, oldest first. */
void
api_images_list(struct api_req *r)
{
	static const char *const none[] = {NULL};
	struct err e = {0};
	struct store_image **v = NULL;
	size_t n = 0, i;
	struct store *s;
	struct json_object *o, *arr;

	if (api_query_check(r, none, &e) < 0 || !(s = api_store(r, &e)) ||
	    store_image_list(s, &v, &n, &e) < 0) {
		api_reply_error(r, &e);
		return;
	}
	o = json_object_new_object();
	arr = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(arr, image_json(v[i]));
	json_object_object_add(o, "images", arr);
	store_image_list_free(v, n);
	api_reply_json(r, 200, o);
	json_object_put(o);
}

/* GET /v1/images/{image_id}. */
void
api_image_get(struct api_req *r)
{
	struct err e = {0};
	struct store_image *img = NULL;
	struct store *s;
	struct json_object *o;

	if (!(s = api_store(r, &e)) ||
	    store_image_get(s, r->id, &img, &e) < 0) {
		api_reply_error(r, &e);
		return;
	}
	o = image_json(img);
	store_image_free(img);
	api_reply_json(r, 200, o);
	json_object_put(o);
}

/* DELETE /v1/images/{image_id}: 204, 404, or 409 while an instance or a
 * BDM names it or an upload of it runs. A job (route slow): it waits for
 * the images lock, which creates hold across libvirt calls. It claims the
 * id as an upload does, so no upload publishes a file that this removes.
 * The row goes first, so a failed unlink (or a crash) leaves only a stray
 * file (removed at start-up), never a row without its file. */
void
api_image_delete(struct api_req *r)
{
	struct err e = {0};
	struct store *s;
	char *path = NULL, *claim = NULL;
	int fd = -1;

	if (asprintf(&path, "%s/%s", images_dir(r), r->id) < 0 ||
	    asprintf(&claim, "%s/" CLAIM_PREFIX "%s", images_dir(r), r->id) <
		0) {
		err_set(&e, -ENOMEM, "out of memory");
		goto out;
	}
	fd = open(
	    claim, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			err_set_field(&e, -EBUSY, "image_id",
			    "image %s is being uploaded or deleted", r->id);
		else
			err_set(&e, -EIO, "claiming image %s: %s", r->id,
			    strerror(errno));
		free(claim);
		claim = NULL;
		goto out;
	}
	api_images_lock(r, true);
	if (!(s = api_store(r, &e)) || store_image_delete(s, r->id, &e) < 0) {
		api_images_unlock(r);
		if (e.code == -EBUSY)
			(void)snprintf(e.field, sizeof(e.field), "image_id");
		goto out;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn(
		    "image %s: removing %s: %s", r->id, path, strerror(errno));
	api_images_unlock(r);
out:
	if (fd >= 0)
		close(fd);
	if (claim)
		(void)unlink(claim);
	free(claim);
	free(path);
	if (e.code)
		api_reply_error(r, &e);
	else
		api_reply_empty(r, 204);
}

/* Start-up (before the API serves): removes what a crash left in the
 * images directory, i.e. claims and temporary files (.upload-*) and
 * published files whose id has no row. Files with a row, and names that
 * are neither, are left alone. Returns the number removed, or -EIO when
 * the directory cannot be read (nothing removed then). */
int
api_images_clean(const char *dir, struct store *s)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL) {
		log_warn("images %s: %s", dir, strerror(errno));
		return -EIO;
	}
	while ((de = readdir(d)) != NULL) {
		struct store_image *img = NULL;
		struct err e = {0};
		const char *why;
		int rc;

		if (strncmp(de->d_name, CLAIM_PREFIX, strlen(CLAIM_PREFIX)) ==
		    0)
			why = "an interrupted upload";
		else if (util_uuid_is_canonical(de->d_name) &&
		    de->d_type != DT_DIR) {
			rc = store_image_get(s, de->d_name, &img, &e);
			store_image_free(img);
			if (rc != -ENOENT)
				continue;
			why = "an image without a row";
		} else
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
			log_warn("images: removing %s (%s): %s", de->d_name,
			    why, strerror(errno));
			continue;
		}
		log_info("images: removed %s (%s)", de->d_name, why);
		n++;
	}
	closedir(d);
	return n;
}
