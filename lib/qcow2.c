/*
 * qcow2: an empty qcow2 v3 image written in-process. The format is
 * QEMU's docs/interop/qcow2.txt; the layout is the one qemu-img 7.2
 * writes for `create -f qcow2 [-b B -F F]`, so that `qemu-img check`
 * finds no leak and `qemu-img info` reads back what was asked:
 *
 *   cluster 0   header (112 bytes), the backing format extension
 *               (0xe2792aca), the end of extensions, the backing name
 *   cluster 1   refcount table: one entry, cluster 2
 *   cluster 2   refcount block: 1 for each cluster in use (0 .. 2 + L1)
 *   cluster 3.. L1 table, all entries 0 (nothing allocated: reads go to
 *               the backing file, or are zeros)
 *
 * The file ends where the L1 table ends (ftruncate: holes, no zeros
 * written), as qemu-img's does.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "qcow2.h"

#define QCOW2_CLUSTER_BITS 16
#define QCOW2_CLUSTER ((uint64_t)1 << QCOW2_CLUSTER_BITS)
#define QCOW2_HEADER_LEN 112
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_BACKING_MAX 1023 /* qemu refuses longer backing names */
/* bytes of guest data one L1 entry maps: an L2 table of 8-byte entries */
#define QCOW2_L1_SPAN (QCOW2_CLUSTER * (QCOW2_CLUSTER / 8))

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static void
put_be16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* Writes all of len bytes at off. Returns 0 or -errno. */
static int
pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Creates an empty qcow2 image. See qcow2.h. */
int
qcow2_create(const char *path, uint64_t size, const char *backing,
    const char *backing_format, struct err *e)
{
	/* cluster 0 up to the end of the backing name, and the refcount
	 * block's used entries (3 + at most 16 L1 clusters) */
	unsigned char head[QCOW2_HEADER_LEN + 16 + 8 + 8 + QCOW2_BACKING_MAX];
	unsigned char refs[2 * (3 + 16)];
	uint64_t l1_size, l1_clusters, l1_off = 3 * QCOW2_CLUSTER;
	size_t blen = 0, flen = 0, off, hlen, i;
	int fd, r;

	if (size == 0 || size > QCOW2_MAX_SIZE)
		return err_set(e, -EINVAL,
		    "%s: size %" PRIu64 " out of range (1 .. %" PRIu64 ")",
		    path, size, QCOW2_MAX_SIZE);
	size = (size + 511) & ~(uint64_t)511;
	if (backing) {
		blen = strlen(backing);
		if (blen == 0 || blen > QCOW2_BACKING_MAX)
			return err_set(e, -EINVAL,
			    "%s: backing file name of %zu bytes", path, blen);
		if (backing_format == NULL ||
		    (!STREQ(backing_format, "raw") &&
			!STREQ(backing_format, "qcow2")))
			return err_set(e, -EINVAL,
			    "%s: backing format '%s': expected raw or qcow2",
			    path, backing_format ? backing_format : "(null)");
		flen = strlen(backing_format);
	}
	l1_size = (size + QCOW2_L1_SPAN - 1) / QCOW2_L1_SPAN;
	l1_clusters = (l1_size * 8 + QCOW2_CLUSTER - 1) / QCOW2_CLUSTER;

	memset(head, 0, sizeof(head));
	memcpy(head, "QFI\xfb", 4);
	put_be32(head + 4, 3); /* version */
	put_be32(head + 20, QCOW2_CLUSTER_BITS);
	put_be64(head + 24, size);
	put_be32(head + 36, (uint32_t)l1_size);
	put_be64(head + 40, l1_off);
	put_be64(head + 48, QCOW2_CLUSTER); /* refcount table */
	put_be32(head + 56, 1); /* refcount table clusters */
	put_be32(head + 96, 4); /* refcount_order: 16 bits */
	put_be32(head + 100, QCOW2_HEADER_LEN);
	/* 104: compression type 0 (zlib) and padding */
	off = QCOW2_HEADER_LEN;
	if (backing) {
		put_be32(head + off, QCOW2_EXT_BACKING_FORMAT);
		put_be32(head + off + 4, (uint32_t)flen);
		memcpy(head + off + 8, backing_format, flen);
		off += 8 + ((flen + 7) & ~(size_t)7);
	}
	off += 8; /* the end of the extensions: type 0, length 0 */
	if (backing) {
		put_be64(head + 8, off);
		put_be32(head + 16, (uint32_t)blen);
		memcpy(head + off, backing, blen);
		off += blen;
	}
	hlen = off;

	/* refcount 1 for clusters 0 (header), 1 (table), 2 (block) and
	 * the L1 table's */
	memset(refs, 0, sizeof(refs));
	for (i = 0; i < 3 + l1_clusters; i++)
		put_be16(refs + 2 * i, 1);

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set(
		    e, -errno, "create %s: %s", path, strerror(errno));
	{
		unsigned char table[8];

		put_be64(table, 2 * QCOW2_CLUSTER); /* the refcount block */
		if ((r = pwrite_all(fd, head, hlen, 0)) < 0 ||
		    (r = pwrite_all(
			 fd, table, sizeof(table), (off_t)QCOW2_CLUSTER)) < 0 ||
		    (r = pwrite_all(fd, refs, 2 * (3 + (size_t)l1_clusters),
			 (off_t)(2 * QCOW2_CLUSTER))) < 0 ||
		    (ftruncate(fd, (off_t)(l1_off + l1_size * 8)) < 0 &&
			(r = -errno) < 0)) {
			(void)close(fd);
			(void)unlink(path);
			return err_set(
			    e, r, "write %s: %s", path, strerror(-r));
		}
	}
	if (close(fd) < 0 && errno != EINTR) {
		r = -errno;
		(void)unlink(path);
		return err_set(e, r, "close %s: %s", path, strerror(-r));
	}
	return 0;
}
