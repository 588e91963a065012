/*
 * imgfmt: the format inspection of an uploaded image, after Nova's
 * nova/image/format_inspector.py (CVE-2024-32498) and qemu's
 * docs/interop/qcow2.txt. The file is detected against every format
 * Nova's inspector knows (qcow2, qed, vhd, vhdx, vmdk, vdi, iso); a file
 * that matches two of them (an ISO that is also a qcow2) is refused, as
 * Nova's detect_file_format does. An ISO 9660 image is kept as format
 * iso (Nova's disk_format, read by its disk mapping) and handed to qemu
 * as raw (Nova: "qemu will treat this as raw"); UDF alone is raw. qed, vhd, vhdx, vmdk (sparse, COWD or a text
 * descriptor naming extents) and vdi are refused: hyperlet only ever hands
 * qemu raw or qcow2, and a file whose content says otherwise is not what
 * its label says. A qcow2 must be self-contained and clean: version 2 or
 * 3, no backing file, no external data file (incompatible bit 2 or header
 * extension 0x44415441), no encryption, no dirty or corrupt bit and no
 * unknown incompatible bit, header extensions walked within the first
 * cluster and only those known to be harmless, and sizes qemu itself
 * would accept (cluster_bits 9..21, header_length, L1 and refcount tables
 * inside the file). Pure: reads only through the caller's callback and
 * reads at most a cluster's worth of header extensions, 8 bytes at a time.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "imgfmt.h"

#define HEAD 512 /* bytes of the first sector every probe looks at */
#define ISO_OFF 32768 /* ISO 9660 / UDF volume descriptor */

#define QCOW2_MAGIC "QFI\xfb"
#define QCOW2_V2_HEADER 72
#define QCOW2_V3_HEADER 104
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES 0x2000000ull /* qemu's QCOW_MAX_L1_SIZE */
#define QCOW2_MAX_REFTABLE_BYTES 0x800000ull /* QCOW_MAX_REFTABLE_SIZE */
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_EXTENSIONS 256

/* incompatible feature bits */
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
/* autoclear feature bits */
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ull << 1)

/* header extension types */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_DATA_FILE 0x44415441u

struct src {
	imgfmt_pread_fn rd;
	void *cls;
	uint64_t size;
};

/* Reads up to len bytes at off; the number read (short at the end of the
 * file) or a negative errno. */
static int64_t
fetch(const struct src *s, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	if (off >= s->size)
		return 0;
	if (len > s->size - off)
		len = (size_t)(s->size - off);
	while (got < len) {
		int64_t n =
		    s->rd(s->cls, (char *)buf + got, len - got, off + got);

		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (int64_t)got;
}

static uint64_t
be64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[1] << 8 | p[0];
}

static bool
prefix(const unsigned char *h, size_t n, const char *magic)
{
	size_t l = strlen(magic);

	return n >= l && memcmp(h, magic, l) == 0;
}

/* The first mismatch of a header field, as a refusal naming it. */
static int
refuse(struct err *e, const char *what)
{
	return err_set(e, -EINVAL, "qcow2 image refused: %s", what);
}

/* Does [off, off + len) lie inside the file? */
static bool
inside(uint64_t off, uint64_t len, uint64_t file_size)
{
	return off <= file_size && len <= file_size - off;
}

static int
qcow2_extensions(
    const struct src *s, uint64_t off, uint64_t cluster, struct err *e)
{
	unsigned char x[8];
	int i;

	for (i = 0; i < QCOW2_MAX_EXTENSIONS; i++) {
		uint32_t type, len;
		int64_t n;

		if (off + sizeof(x) > cluster)
			return refuse(e,
			    "header extensions run past the "
			    "first cluster");
		if ((n = fetch(s, x, sizeof(x), off)) < 0)
			return err_set(e, (int)n, "reading the image");
		if (n < (int64_t)sizeof(x))
			return refuse(e, "truncated header extensions");
		type = be32(x);
		len = be32(x + 4);
		switch (type) {
		case QCOW2_EXT_END:
			return 0;
		case QCOW2_EXT_FEATURE_TABLE:
		case QCOW2_EXT_BITMAPS:
			break;
		case QCOW2_EXT_DATA_FILE:
			return refuse(e, "an external data file");
		case QCOW2_EXT_BACKING_FORMAT:
			return refuse(e, "a backing file format");
		case QCOW2_EXT_CRYPTO:
			return refuse(e, "encryption");
		default:
			return err_set(e, -EINVAL,
			    "qcow2 image refused: unknown header extension "
			    "0x%08x",
			    type);
		}
		/* the data, padded to 8 bytes, stays in the first cluster */
		if (len > cluster ||
		    off + sizeof(x) + ((uint64_t)len + 7) / 8 * 8 > cluster)
			return refuse(e,
			    "a header extension runs past the "
			    "first cluster");
		off += sizeof(x) + ((uint64_t)len + 7) / 8 * 8;
	}
	return refuse(e, "too many header extensions");
}

static int
qcow2_check(const struct src *s, const unsigned char *h, size_t n,
    struct imgfmt_info *ret, struct err *e)
{
	uint32_t version, cluster_bits, l1_size, reftable_clusters, snapshots;
	uint32_t refcount_order = 4, header_length = QCOW2_V2_HEADER;
	uint64_t size, cluster, l1_off, reftable_off, l2_bits, need;
	uint64_t incompat = 0, autoclear = 0;
	unsigned compression = 0;
	int rc;

	if (n < QCOW2_V2_HEADER)
		return refuse(e, "truncated header");
	version = be32(h + 4);
	if (version != 2 && version != 3)
		return err_set(e, -EINVAL,
		    "qcow2 image refused: version %u (expected 2 or 3)",
		    version);
	if (be64(h + 8) != 0 || be32(h + 16) != 0)
		return refuse(e, "a backing file");
	cluster_bits = be32(h + 20);
	if (cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return err_set(e, -EINVAL,
		    "qcow2 image refused: cluster_bits %u (expected 9 to 21)",
		    cluster_bits);
	cluster = 1ull << cluster_bits;
	size = be64(h + 24);
	if (size == 0 || size > (uint64_t)INT64_MAX)
		return refuse(e, "virtual size out of range");
	if (be32(h + 32) != 0)
		return refuse(e, "encryption");
	l1_size = be32(h + 36);
	l1_off = be64(h + 40);
	reftable_off = be64(h + 48);
	reftable_clusters = be32(h + 56);
	snapshots = be32(h + 60);
	if (version == 3) {
		if (n < QCOW2_V3_HEADER)
			return refuse(e, "truncated header");
		incompat = be64(h + 72);
		autoclear = be64(h + 88);
		refcount_order = be32(h + 96);
		header_length = be32(h + 100);
		if (header_length < QCOW2_V3_HEADER || header_length % 8 != 0 ||
		    header_length > cluster || header_length > n)
			return refuse(e, "header_length out of range");
		if (header_length > QCOW2_V3_HEADER)
			compression = h[104];
	}
	if (incompat & QCOW2_INCOMPAT_DATA_FILE)
		return refuse(e, "an external data file");
	if (incompat & QCOW2_INCOMPAT_DIRTY)
		return refuse(e, "dirty (needs qemu-img check -r)");
	if (incompat & QCOW2_INCOMPAT_CORRUPT)
		return refuse(e, "marked corrupt");
	if (incompat & ~(QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2))
		return refuse(e, "unknown incompatible features");
	if (autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW)
		return refuse(e, "an external data file");
	if (compression > 1 ||
	    (compression != 0) != !!(incompat & QCOW2_INCOMPAT_COMPRESSION))
		return refuse(e, "compression type");
	if (refcount_order > 6)
		return refuse(e, "refcount_order out of range");
	l2_bits = cluster_bits - 3;
	if (incompat & QCOW2_INCOMPAT_EXTL2) {
		if (cluster_bits < 14)
			return refuse(e,
			    "extended L2 entries need 16 KiB "
			    "clusters");
		l2_bits = cluster_bits - 4;
	}
	/* L1 entries the virtual size needs (each maps 2^(cb + l2) bytes) */
	need = (size >> (cluster_bits + l2_bits)) +
	    !!(size & ((1ull << (cluster_bits + l2_bits)) - 1));
	if (need > QCOW2_MAX_L1_BYTES / 8 || l1_size < need ||
	    l1_size > QCOW2_MAX_L1_BYTES / 8)
		return refuse(e, "L1 table size does not match the size");
	if (l1_size > 0 &&
	    (l1_off % cluster != 0 || l1_off < cluster ||
		!inside(l1_off, (uint64_t)l1_size * 8, s->size)))
		return refuse(e, "L1 table outside the file");
	if (reftable_off % cluster != 0 || reftable_off < cluster ||
	    reftable_clusters == 0 ||
	    (uint64_t)reftable_clusters > QCOW2_MAX_REFTABLE_BYTES >>
		cluster_bits ||
	    !inside(reftable_off, (uint64_t)reftable_clusters << cluster_bits,
		s->size))
		return refuse(e, "refcount table outside the file");
	if (snapshots > QCOW2_MAX_SNAPSHOTS)
		return refuse(e, "too many snapshots");
	if (snapshots > 0) {
		uint64_t snap_off = be64(h + 64);

		if (snap_off % 8 != 0 || snap_off < cluster ||
		    snap_off >= s->size)
			return refuse(e, "snapshot table outside the file");
	}
	if ((rc = qcow2_extensions(s, header_length, cluster, e)) < 0)
		return rc;
	ret->format = "qcow2";
	ret->virtual_size = size;
	return 0;
}

/* Reads the image through rd (file_size bytes long) and decides: *ret
 * (format static) on acceptance. Returns 0, -EINVAL with the reason (safe
 * to show the client), or rd's error. */
int
imgfmt_inspect(imgfmt_pread_fn rd, void *cls, uint64_t file_size,
    struct imgfmt_info *ret, struct err *e)
{
	const struct src s = {rd, cls, file_size};
	unsigned char h[HEAD] = {0}, iso[6] = {0};
	const char *found[8];
	size_t nfound = 0;
	int64_t n, niso;
	bool qcow2 = false;

	if (file_size == 0)
		return err_set(e, -EINVAL, "the image is empty");
	if ((n = fetch(&s, h, sizeof(h), 0)) < 0 ||
	    (niso = fetch(&s, iso, sizeof(iso), ISO_OFF)) < 0)
		return err_set(e, -EIO, "reading the image");
	if (prefix(h, (size_t)n, QCOW2_MAGIC)) {
		found[nfound++] = "qcow2";
		qcow2 = true;
	}
	if (prefix(h, (size_t)n, "QED"))
		found[nfound++] = "qed";
	if (prefix(h, (size_t)n, "conectix"))
		found[nfound++] = "vhd";
	if (prefix(h, (size_t)n, "vhdxfile"))
		found[nfound++] = "vhdx";
	if (prefix(h, (size_t)n, "KDMV") || prefix(h, (size_t)n, "COWD") ||
	    prefix(h, (size_t)n, "# Disk DescriptorFile"))
		found[nfound++] = "vmdk";
	if (n >= 0x44 && le32(h + 0x40) == 0xbeda107fu)
		found[nfound++] = "vdi";
	if (niso == (int64_t)sizeof(iso) &&
	    (memcmp(iso + 1, "CD001", 5) == 0 ||
		memcmp(iso + 1, "NSR02", 5) == 0 ||
		memcmp(iso + 1, "NSR03", 5) == 0))
		found[nfound++] = "iso";
	if (nfound > 1)
		return err_set(e, -EINVAL,
		    "image refused: it is both %s and %s", found[0], found[1]);
	if (qcow2)
		return qcow2_check(&s, h, (size_t)n, ret, e);
	if (nfound == 1 && strcmp(found[0], "iso") != 0)
		return err_set(e, -EINVAL,
		    "image refused: %s images are not accepted (upload raw or "
		    "qcow2)",
		    found[0]);
	/* ISO 9660 is kept as iso (Nova's disk_format, which its disk
	 * mapping reads); qemu reads it as raw. UDF alone stays raw. */
	ret->format =
	    nfound == 1 && memcmp(iso + 1, "CD001", 5) == 0 ? "iso" : "raw";
	ret->virtual_size = file_size;
	return 0;
}

struct mem {
	const unsigned char *p;
	size_t len;
};

static int64_t
mem_read(void *cls, void *buf, size_t len, uint64_t off)
{
	const struct mem *m = cls;

	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = (size_t)(m->len - off);
	memcpy(buf, m->p + off, len);
	return (int64_t)len;
}

/* imgfmt_inspect on a whole image in memory (tests, the fuzzer). */
int
imgfmt_inspect_buf(
    const void *buf, size_t len, struct imgfmt_info *ret, struct err *e)
{
	struct mem m = {buf, len};

	return imgfmt_inspect(mem_read, &m, len, ret, e);
}
