/* qcow2.c - opening a qcow2 image (qcow2.txt "Header", "Header
 * extensions"): the header checked field by field, the L1 and refcount
 * tables loaded and bounded, the backing chain opened read-only; and
 * closing it. Lookups and reads are in qcow2_map.c, writes in
 * qcow2_write.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "qcow2_priv.h"

#define HDR_V2 72
#define HDR_V3 104
#define EXT_END 0
#define EXT_BACKING_FMT 0xe2792acaU
/* Incompatible feature bits (header bytes 72-79). */
#define INC_DIRTY 1ULL
#define INC_CORRUPT 2ULL
#define INC_DATA_FILE 4ULL
#define INC_COMPRESSION 8ULL
#define INC_EXTL2 16ULL

/* The files of one chain, to refuse a loop by identity, not by name. */
struct chain {
	dev_t dev[QCOW2_MAX_DEPTH];
	ino_t ino[QCOW2_MAX_DEPTH];
	unsigned int n;
};

static int open_chain(struct qcow2 **out, int fd, const char *path, unsigned int flags,
		      struct chain *ch, struct cv_error *e);

bool qcow2_probe(int fd)
{
	uint8_t m[4];

	return pread(fd, m, 4, 0) == 4 && qc_be(m, 4) == QCOW2_MAGIC;
}

uint64_t qcow2_max_file_size(int fd)
{
	uint8_t h[32];
	struct stat st;
	uint64_t size;

	if (pread(fd, h, sizeof(h), 0) != sizeof(h) || qc_be(h, 4) != QCOW2_MAGIC || fstat(fd, &st))
		return 0;
	/* Bounded like the L1 table (qcow2_open refuses larger). */
	size = qc_be(h + 24, 8) & ((1ULL << 56) - 1);
	/* 1/32 more: L2 entries and 64-bit refcounts at 512-byte clusters. */
	return (uint64_t)st.st_size + size + size / 32 + (16u << 20);
}

uint64_t qcow2_size(const struct qcow2 *q)
{
	return q->size;
}

void qcow2_test_kill_after(struct qcow2 *q, unsigned long n)
{
	q->kill_after = n;
}

static int bad(struct qcow2 *q, struct cv_error *e, const char *what)
{
	return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s: not a usable qcow2 image: %s", q->path,
		       what);
}

/* A table of len bytes at off: cluster-aligned, inside the file, not the
 * header's cluster. */
static bool table_ok(const struct qcow2 *q, uint64_t off, uint64_t len)
{
	return off && !(off & (q->csize - 1)) && off <= q->file_size && len <= q->file_size - off;
}

static int load_table(struct qcow2 *q, uint64_t off, uint64_t n, uint64_t **out)
{
	uint64_t *t = calloc(n ? n : 1, 8);
	uint8_t *raw = (uint8_t *)t;
	int r;

	if (!t)
		return -ENOMEM;
	if (n && (r = qc_pread(q, raw, n * 8, off))) {
		free(t);
		return r;
	}
	/* In place, front to back: entry i's bytes are consumed first. */
	for (uint64_t i = 0; i < n; i++)
		t[i] = qc_be(raw + i * 8, 8);
	*out = t;
	return 0;
}

/* The header extensions after the header (qcow2.txt "Header
 * extensions"): only the backing file's format is used. */
static int read_exts(struct qcow2 *q, const uint8_t *c, uint64_t hdr_len, char *bfmt,
		     size_t bfmt_len, struct cv_error *e)
{
	uint64_t p = hdr_len;

	for (unsigned int i = 0; i < 1024; i++) {
		uint32_t type, len;

		if (p + 8 > q->csize)
			return 0; /* the area may end with the cluster */
		type = (uint32_t)qc_be(c + p, 4);
		len = (uint32_t)qc_be(c + p + 4, 4);
		if (type == EXT_END)
			return 0;
		if (len > q->csize - p - 8)
			return bad(q, e, "a header extension runs past the first cluster");
		if (type == EXT_BACKING_FMT && len < bfmt_len) {
			memcpy(bfmt, c + p + 8, len);
			bfmt[len] = '\0';
		}
		p += 8 + (((uint64_t)len + 7) & ~7ULL);
	}
	return bad(q, e, "too many header extensions");
}

static int parse_header(struct qcow2 *q, const uint8_t *h, unsigned int flags, uint64_t *hdr_len,
			struct cv_error *e)
{
	uint64_t inc = 0, need, l2_span;

	if (qc_be(h, 4) != QCOW2_MAGIC)
		return bad(q, e, "no QFI\\xfb magic (drop format=qcow2 for a raw image)");
	q->version = (uint32_t)qc_be(h + 4, 4);
	if (q->version != 2 && q->version != 3)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "%s: qcow2 version %u is not supported (2 and 3 are)", q->path,
			       q->version);
	q->cluster_bits = (uint32_t)qc_be(h + 20, 4);
	if (q->cluster_bits < 9 || q->cluster_bits > 21)
		return bad(q, e, "cluster_bits must be 9 to 21");
	q->csize = 1ULL << q->cluster_bits;
	q->l2_bits = q->cluster_bits - 3;
	q->size = qc_be(h + 24, 8);
	if (qc_be(h + 32, 4))
		return cv_fail(e, CV_EXIT_USAGE, -ENOTSUP,
			       "%s: encrypted qcow2 images are not supported (decrypt it with "
			       "qemu-img convert)",
			       q->path);
	q->l1_size = (uint32_t)qc_be(h + 36, 4);
	q->l1_off = qc_be(h + 40, 8);
	q->rt_off = qc_be(h + 48, 8);
	q->rt_size = qc_be(h + 56, 4) << (q->cluster_bits - 3);
	q->refcount_order = 4;
	*hdr_len = HDR_V2;
	if (q->version == 3) {
		*hdr_len = qc_be(h + 100, 4);
		if (*hdr_len < HDR_V3 || *hdr_len % 8 || *hdr_len > q->csize)
			return bad(q, e, "header_length must be 104 or more, a multiple of 8");
		inc = qc_be(h + 72, 8);
		q->refcount_order = (uint32_t)qc_be(h + 96, 4);
		if (q->refcount_order > 6)
			return bad(q, e, "refcount_order above 6");
		if (*hdr_len > HDR_V3)
			q->compression = h[104];
		if (q->compression > 1 || !(inc & INC_COMPRESSION) != !q->compression)
			return bad(q, e, "unknown compression_type");
	}
	if (inc & INC_DATA_FILE)
		return cv_fail(e, CV_EXIT_USAGE, -ENOTSUP,
			       "%s: qcow2 external data files are not supported", q->path);
	if (inc & INC_EXTL2)
		return cv_fail(e, CV_EXIT_USAGE, -ENOTSUP,
			       "%s: qcow2 extended L2 entries (subclusters) are not supported",
			       q->path);
	if (inc & ~(INC_DIRTY | INC_CORRUPT | INC_COMPRESSION))
		return cv_fail(e, CV_EXIT_USAGE, -ENOTSUP,
			       "%s: unknown qcow2 incompatible features 0x%llx", q->path,
			       (unsigned long long)inc);
	if (!(flags & QCOW2_READONLY) && (inc & (INC_DIRTY | INC_CORRUPT)))
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "%s: the image is marked %s (run qemu-img check -r all, or add "
			       ",readonly)",
			       q->path, inc & INC_CORRUPT ? "corrupt" : "dirty");
	if (!(flags & QCOW2_READONLY) && qc_be(h + 60, 4))
		return cv_fail(e, CV_EXIT_USAGE, -ENOTSUP,
			       "%s: writing an image with internal snapshots is not supported "
			       "(add ,readonly or delete them with qemu-img snapshot -d)",
			       q->path);
	/* The L1 table must cover the virtual size; qemu's own limits. */
	l2_span = q->csize << q->l2_bits;
	need = q->size / l2_span + (q->size % l2_span != 0);
	if ((uint64_t)q->l1_size * 8 > QC_MAX_L1_BYTES)
		return bad(q, e, "the L1 table is larger than 32 MiB");
	if (q->size > (uint64_t)1 << 56 || need > q->l1_size)
		return bad(q, e, "the L1 table does not cover the virtual size");
	if (!table_ok(q, q->l1_off, (uint64_t)q->l1_size * 8))
		return bad(q, e, "the L1 table lies outside the file or is not aligned");
	if (!q->rt_size || q->rt_size * 8 > QC_MAX_RT_BYTES)
		return bad(q, e, "the refcount table is empty or larger than 8 MiB");
	if (!table_ok(q, q->rt_off, q->rt_size * 8))
		return bad(q, e, "the refcount table lies outside the file or is not aligned");
	if (q->l1_off < q->rt_off + q->rt_size * 8 &&
	    q->rt_off < q->l1_off + (uint64_t)q->l1_size * 8)
		return bad(q, e, "the L1 table overlaps the refcount table");
	q->rb_entries = q->csize * 8 >> q->refcount_order;
	return 0;
}

/* Relative backing names are relative to the image's directory. */
static int backing_path(const char *img, const char *name, char *out, size_t n)
{
	const char *slash = strrchr(img, '/');
	int len;

	if (name[0] == '/' || !slash)
		len = snprintf(out, n, "%s", name);
	else
		len = snprintf(out, n, "%.*s/%s", (int)(slash - img), img, name);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

static int open_backing(struct qcow2 *q, const uint8_t *c, uint64_t boff, uint32_t blen,
			const char *bfmt, struct chain *ch, struct cv_error *e)
{
	char name[1024], path[4096];
	struct stat st;
	const char *why;
	int r;

	if (blen == 0 || blen > 1023 || boff > q->csize || blen > q->csize - boff)
		return bad(q, e,
			   "the backing file name is empty, longer than 1023 bytes or "
			   "outside the first cluster");
	memcpy(name, c + boff, blen);
	name[blen] = '\0';
	if (strlen(name) != blen)
		return bad(q, e, "the backing file name holds a NUL byte");
	if (backing_path(q->path, name, path, sizeof(path)))
		return bad(q, e, "the backing file's path is too long");
	if ((r = cv_open_regular(path, O_RDONLY, CV_OPEN_BLOCKDEV, &q->bfd, &st, &why)))
		return cv_fail(e, CV_EXIT_USAGE, r, "%s: backing file %s: %s", q->path, path, why);
	if (!strcmp(bfmt, "qcow2") || (!bfmt[0] && qcow2_probe(q->bfd))) {
		r = open_chain(&q->bq, q->bfd, path, QCOW2_READONLY, ch, e);
		if (r)
			return r;
		q->bsize = q->bq->size;
		return 0;
	}
	if (bfmt[0] && strcmp(bfmt, "raw"))
		return cv_fail(e, CV_EXIT_USAGE, -ENOTSUP,
			       "%s: backing file %s has format '%s' (qcow2 and raw are supported)",
			       q->path, path, bfmt);
	if (S_ISREG(st.st_mode))
		q->bsize = (uint64_t)st.st_size;
	else if ((q->bsize = (uint64_t)lseek(q->bfd, 0, SEEK_END)) == (uint64_t)-1)
		q->bsize = 0;
	return 0;
}

static int alloc_buffers(struct qcow2 *q)
{
	q->nl2c = (unsigned int)(QC_L2_CACHE_BYTES >> q->cluster_bits);
	if (q->nl2c < QC_L2_CACHE_MIN)
		q->nl2c = QC_L2_CACHE_MIN;
	if (q->nl2c > QC_L2_CACHE_MAX)
		q->nl2c = QC_L2_CACHE_MAX;
	q->l2c = calloc(q->nl2c, sizeof(*q->l2c));
	q->rb = malloc(q->csize);
	q->tmp = malloc(q->csize);
	q->dbuf = malloc(q->csize);
	/* A compressed cluster spans at most 2^(cluster_bits-8) sectors. */
	q->cbuf = malloc((q->csize >> 8) * 512 + 512);
	if (!q->l2c || !q->rb || !q->tmp || !q->dbuf || !q->cbuf)
		return -ENOMEM;
	for (unsigned int i = 0; i < q->nl2c; i++)
		if (!(q->l2c[i].tab = malloc(q->csize)))
			return -ENOMEM;
	return 0;
}

static int open_chain(struct qcow2 **out, int fd, const char *path, unsigned int flags,
		      struct chain *ch, struct cv_error *e)
{
	uint8_t h[HDR_V3 + 8] = { 0 };
	char bfmt[16] = "";
	uint64_t hdr_len = 0, boff;
	struct stat st;
	struct qcow2 *q;
	uint8_t *c = NULL;
	ssize_t got;
	int r;

	if (fstat(fd, &st))
		return cv_fail(e, CV_EXIT_USAGE, -errno, "%s: %s", path, strerror(errno));
	for (unsigned int i = 0; i < ch->n; i++)
		if (ch->dev[i] == st.st_dev && ch->ino[i] == st.st_ino)
			return cv_fail(e, CV_EXIT_USAGE, -ELOOP,
				       "%s: the backing chain loops back to this image", path);
	if (ch->n == QCOW2_MAX_DEPTH)
		return cv_fail(e, CV_EXIT_USAGE, -ELOOP,
			       "%s: the backing chain is deeper than %d images", path,
			       QCOW2_MAX_DEPTH);
	ch->dev[ch->n] = st.st_dev;
	ch->ino[ch->n++] = st.st_ino;
	if (!(q = calloc(1, sizeof(*q))))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "%s: out of memory", path);
	q->fd = fd;
	q->bfd = -1;
	q->depth = ch->n - 1;
	q->readonly = flags & QCOW2_READONLY;
	snprintf(q->path, sizeof(q->path), "%s", path);
	q->file_size =
		S_ISREG(st.st_mode) ? (uint64_t)st.st_size : (uint64_t)lseek(fd, 0, SEEK_END);
	got = pread(fd, h, sizeof(h), 0);
	if (got < HDR_V2) {
		r = bad(q, e, "shorter than a qcow2 header");
		goto fail;
	}
	if ((r = parse_header(q, h, flags, &hdr_len, e)))
		goto fail;
	if ((r = alloc_buffers(q))) {
		cv_fail(e, CV_EXIT_FAIL, r, "%s: out of memory", path);
		goto fail;
	}
	/* The first cluster: header extensions and the backing file name. */
	if (!(c = calloc(1, q->csize)) || pread(fd, c, q->csize, 0) < (ssize_t)hdr_len) {
		r = c ? bad(q, e, "cannot read the first cluster")
		      : cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	if ((r = read_exts(q, c, hdr_len, bfmt, sizeof(bfmt), e)))
		goto fail;
	if ((boff = qc_be(h + 8, 8))) {
		if (flags & QCOW2_NO_BACKING) {
			r = cv_fail(e, CV_EXIT_USAGE, -ENOTSUP,
				    "%s: names a backing file, which is followed only with "
				    "--disk PATH,format=qcow2 (a guest can write a qcow2 header "
				    "naming any host file onto a raw disk)",
				    path);
			goto fail;
		}
		if ((r = open_backing(q, c, boff, (uint32_t)qc_be(h + 16, 4), bfmt, ch, e)))
			goto fail;
	}
	if ((r = load_table(q, q->l1_off, q->l1_size, &q->l1)) ||
	    (r = load_table(q, q->rt_off, q->rt_size, &q->rt))) {
		cv_fail(e, CV_EXIT_USAGE, r, "%s: cannot read the L1 or refcount table: %s", path,
			strerror(-r));
		goto fail;
	}
	if (q->compression == 1 && !(q->zstd = ZSTD_createDCtx())) {
		r = cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "%s: out of memory", path);
		goto fail;
	}
	q->alloc_next = (q->file_size + q->csize - 1) >> q->cluster_bits;
	q->free_hint = q->alloc_next;
	/* 2.4 of the spec: unknown autoclear bits are cleared before writing. */
	if (!q->readonly && q->version == 3 && qc_be(h + 88, 8)) {
		uint8_t zero[8] = { 0 };

		if ((r = qc_pwrite(q, zero, 8, 88)) || (r = qcow2_flush(q))) {
			cv_fail(e, CV_EXIT_USAGE, r, "%s: cannot write the header: %s", path,
				strerror(-r));
			goto fail;
		}
	}
	free(c);
	*out = q;
	return 0;
fail:
	free(c);
	q->npool = 0;
	qcow2_close(q);
	return r;
}

int qcow2_open(struct qcow2 **out, int fd, const char *path, unsigned int flags, struct cv_error *e)
{
	struct chain ch = { .n = 0 };

	*out = NULL;
	return open_chain(out, fd, path, flags, &ch, e);
}

void qcow2_close(struct qcow2 *q)
{
	if (!q)
		return;
	qc_pool_release(q);
	if (q->bq)
		qcow2_close(q->bq);
	if (q->bfd >= 0)
		close(q->bfd);
	for (unsigned int i = 0; q->l2c && i < q->nl2c; i++)
		free(q->l2c[i].tab);
	free(q->l2c);
	free(q->l1);
	free(q->rt);
	free(q->rb);
	free(q->tmp);
	free(q->dbuf);
	free(q->cbuf);
	ZSTD_freeDCtx(q->zstd);
	free(q);
}
