/* qcow2_map.c - guest offset -> host cluster (qcow2.txt "Cluster
 * mapping"): the L1 table in memory, L2 tables in a small LRU cache, each
 * entry checked before use; and reads: plain data, zero clusters,
 * unallocated ranges from the backing file or as zeros, and compressed
 * clusters (zlib raw deflate, or zstd for compression_type 1). */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "qcow2_priv.h"

unsigned int qc_iov_slice(const struct iovec *src, unsigned int n, uint64_t off, uint64_t len,
			  struct iovec *dst)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < n && len && k < QC_MAX_IOV; i++) {
		uint64_t l = src[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len ? l - off : len;
		dst[k].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[k++].iov_len = c;
		len -= c;
		off = 0;
	}
	return k;
}

/* Copy between iov (from byte off) and buf: into iov if to_iov (zeros if
 * buf is NULL), else out of it. */
static void iov_copy(const struct iovec *iov, unsigned int n, uint64_t off, void *buf, uint64_t len,
		     bool to_iov)
{
	uint8_t *p = buf;

	for (unsigned int i = 0; i < n && len; i++) {
		uint8_t *base = iov[i].iov_base;
		uint64_t l = iov[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len ? l - off : len;
		if (!to_iov)
			memcpy(p, base + off, c);
		else if (p)
			memcpy(base + off, p, c);
		else
			memset(base + off, 0, c);
		if (p)
			p += c;
		len -= c;
		off = 0;
	}
}

static void iov_from_buf(const struct iovec *iov, unsigned int n, uint64_t off, const void *buf,
			 uint64_t len)
{
	iov_copy(iov, n, off, (void *)buf, len, true);
}

void qc_iov_to_buf(const struct iovec *iov, unsigned int n, uint64_t off, void *buf, uint64_t len)
{
	iov_copy(iov, n, off, buf, len, false);
}

/* Whole bytes or an error: a short read past the end of the file reads
 * as zeros (qemu may leave a file's last cluster short). */
int qc_pread(struct qcow2 *q, void *buf, uint64_t len, uint64_t off)
{
	return cv_pread_full(q->fd, buf, len, off);
}

static int preadv_all(struct qcow2 *q, int fd, const struct iovec *iov, unsigned int n,
		      uint64_t len, uint64_t host)
{
	struct iovec v[QC_MAX_IOV];
	uint64_t done = 0;

	while (done < len) {
		unsigned int k = qc_iov_slice(iov, n, done, len - done, v);
		ssize_t got = preadv(fd, v, (int)k, (off_t)(host + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (!got) { /* past the end of the file: zeros */
			iov_from_buf(iov, n, done, NULL, len - done);
			return 0;
		}
		done += (uint64_t)got;
	}
	(void)q;
	return 0;
}

/* Metadata or data at [off, off+len) would hit the header cluster, the L1
 * table or the refcount table. */
bool qc_meta_overlap(const struct qcow2 *q, uint64_t off, uint64_t len)
{
	uint64_t l1_end = q->l1_off + (uint64_t)q->l1_size * 8, rt_end = q->rt_off + q->rt_size * 8;

	return off < q->csize || (off < l1_end && q->l1_off < off + len) ||
	       (off < rt_end && q->rt_off < off + len);
}

int qc_l2_get(struct qcow2 *q, uint64_t l2_off, uint64_t **tab)
{
	struct qc_l2 *victim = &q->l2c[0];
	uint8_t *raw;
	int r;

	for (unsigned int i = 0; i < q->nl2c; i++) {
		if (q->l2c[i].off == l2_off) {
			q->l2c[i].used = ++q->clock;
			*tab = q->l2c[i].tab;
			return 0;
		}
		if (q->l2c[i].used < victim->used)
			victim = &q->l2c[i];
	}
	if ((l2_off & (q->csize - 1)) || l2_off >= q->file_size ||
	    qc_meta_overlap(q, l2_off, q->csize))
		return -EIO;
	victim->off = 0;
	raw = (uint8_t *)victim->tab;
	if ((r = qc_pread(q, raw, q->csize, l2_off)))
		return r;
	for (uint64_t i = 0; i < q->csize / 8; i++)
		victim->tab[i] = qc_be(raw + i * 8, 8);
	victim->off = l2_off;
	victim->used = ++q->clock;
	*tab = victim->tab;
	return 0;
}

void qc_l2_forget(struct qcow2 *q, uint64_t l2_off)
{
	for (unsigned int i = 0; i < q->nl2c; i++)
		if (q->l2c[i].off == l2_off)
			q->l2c[i].off = 0;
}

int qc_lookup(struct qcow2 *q, uint64_t off, enum qc_kind *kind, uint64_t *entry)
{
	uint64_t ci = off >> q->cluster_bits, l1i = ci >> q->l2_bits, l1e, e, *tab;
	int r;

	*entry = 0;
	*kind = QC_UNALLOC;
	if (l1i >= q->l1_size)
		return -EIO;
	l1e = q->l1[l1i];
	if (!(l1e & QC_OFF_MASK))
		return 0;
	if ((r = qc_l2_get(q, l1e & QC_OFF_MASK, &tab)))
		return r;
	e = tab[ci & ((1ULL << q->l2_bits) - 1)];
	*entry = e;
	if (e & QC_COMPRESSED) {
		*kind = QC_COMP;
		return 0;
	}
	if (e & QC_ZERO && q->version >= 3) {
		*kind = QC_ZEROES;
		return 0;
	}
	if (!(e & QC_OFF_MASK))
		return 0;
	/* A data cluster: aligned, starting inside the file, not on the
	 * header or the tables. */
	if ((e & QC_OFF_MASK & (q->csize - 1)) || (e & QC_OFF_MASK) >= q->file_size ||
	    qc_meta_overlap(q, e & QC_OFF_MASK, q->csize))
		return -EIO;
	*kind = QC_DATA;
	return 0;
}

static int inflate_zlib(struct qcow2 *q, uint64_t in_len)
{
	z_stream z;
	int r;

	memset(&z, 0, sizeof(z));
	/* Raw deflate, as qemu writes it; 15 bits accept any smaller window. */
	if (inflateInit2(&z, -15) != Z_OK)
		return -ENOMEM;
	z.next_in = q->cbuf;
	z.avail_in = (uInt)in_len;
	z.next_out = q->dbuf;
	z.avail_out = (uInt)q->csize;
	r = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	/* The last sector may hold more than this stream: a full cluster out
	 * is success whether or not the stream ended. */
	return (r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK) && !z.avail_out ? 0 : -EIO;
}

static int inflate_zstd(struct qcow2 *q, uint64_t in_len)
{
	ZSTD_inBuffer in = { q->cbuf, in_len, 0 };
	ZSTD_outBuffer out = { q->dbuf, q->csize, 0 };

	ZSTD_DCtx_reset(q->zstd, ZSTD_reset_session_only);
	while (out.pos < out.size) {
		size_t pos = in.pos, opos = out.pos;
		size_t r = ZSTD_decompressStream(q->zstd, &out, &in);

		if (ZSTD_isError(r) || (!r && out.pos < out.size) ||
		    (in.pos == pos && out.pos == opos))
			return -EIO;
	}
	return 0;
}

/* Decompress the cluster described by entry into q->dbuf (cached: the
 * same descriptor is not decompressed twice in a row). */
static int read_compressed(struct qcow2 *q, uint64_t entry)
{
	unsigned int x = 62 - (q->cluster_bits - 8);
	uint64_t desc = entry & ~(QC_COPIED | QC_COMPRESSED);
	uint64_t host = desc & ((1ULL << x) - 1);
	uint64_t nsec = ((desc >> x) & ((1ULL << (q->cluster_bits - 8)) - 1)) + 1;
	uint64_t len = nsec * 512 - (host & 511);
	int r;

	if (q->dbuf_desc == entry)
		return 0;
	if (host < q->csize || host >= q->file_size)
		return -EIO;
	if (len > q->file_size - host)
		len = q->file_size - host;
	if ((r = qc_pread(q, q->cbuf, len, host)))
		return r;
	q->dbuf_desc = 0;
	if ((r = q->compression ? inflate_zstd(q, len) : inflate_zlib(q, len)))
		return r;
	q->dbuf_desc = entry;
	return 0;
}

/* The backing file's bytes [off, off+len) into iov at iov_off; zeros past
 * its end. */
static int read_backing(struct qcow2 *q, uint64_t off, uint64_t len, const struct iovec *iov,
			unsigned int n, uint64_t iov_off)
{
	struct iovec v[QC_MAX_IOV];
	uint64_t have = off < q->bsize ? q->bsize - off : 0;
	unsigned int k;

	if (have > len)
		have = len;
	if (have < len)
		iov_from_buf(iov, n, iov_off + have, NULL, len - have);
	if (!have)
		return 0;
	k = qc_iov_slice(iov, n, iov_off, have, v);
	if (q->bq)
		return qcow2_readv(q->bq, v, k, off, have);
	return preadv_all(q, q->bfd, v, k, have, off);
}

int qc_read_cluster_part(struct qcow2 *q, uint64_t off, uint64_t len, const struct iovec *iov,
			 unsigned int n, uint64_t iov_off)
{
	enum qc_kind kind;
	uint64_t entry, in = off & (q->csize - 1);
	struct iovec v[QC_MAX_IOV];
	unsigned int k;
	int r;

	if ((r = qc_lookup(q, off, &kind, &entry)))
		return r;
	switch (kind) {
	case QC_UNALLOC:
		if (q->bfd >= 0)
			return read_backing(q, off, len, iov, n, iov_off);
		/* fall through */
	case QC_ZEROES:
		iov_from_buf(iov, n, iov_off, NULL, len);
		return 0;
	case QC_COMP:
		if ((r = read_compressed(q, entry)))
			return r;
		iov_from_buf(iov, n, iov_off, q->dbuf + in, len);
		return 0;
	default:
		k = qc_iov_slice(iov, n, iov_off, len, v);
		return preadv_all(q, q->fd, v, k, len, (entry & QC_OFF_MASK) + in);
	}
}

int qcow2_readv(struct qcow2 *q, const struct iovec *iov, unsigned int n, uint64_t off,
		uint64_t len)
{
	uint64_t done = 0;

	if (off > q->size || len > q->size - off)
		return -EIO;
	while (done < len) {
		uint64_t in = (off + done) & (q->csize - 1), c = q->csize - in;
		struct iovec v[QC_MAX_IOV];
		uint64_t host, run;
		unsigned int k;
		int r;

		if (c > len - done)
			c = len - done;
		/* Plain data contiguous in the file: one preadv for the run. */
		if ((r = qcow2_map(q, off + done, c, &host)) < 0)
			return r;
		run = c;
		if (r) {
			uint64_t h2 = 0;

			while (done + run < len) {
				uint64_t c2 =
					len - done - run < q->csize ? len - done - run : q->csize;

				if (qcow2_map(q, off + done + run, c2, &h2) != 1 ||
				    h2 != host + run)
					break;
				run += c2;
			}
			k = qc_iov_slice(iov, n, done, run, v);
			r = preadv_all(q, q->fd, v, k, run, host);
		} else {
			r = qc_read_cluster_part(q, off + done, c, iov, n, done);
		}
		if (r)
			return r;
		done += run;
	}
	return 0;
}

int qcow2_map(struct qcow2 *q, uint64_t off, uint64_t len, uint64_t *host)
{
	enum qc_kind kind;
	uint64_t entry, in = off & (q->csize - 1);
	int r;

	if (!len || len > q->csize - in)
		return 0;
	if ((r = qc_lookup(q, off, &kind, &entry)))
		return r;
	if (kind != QC_DATA)
		return 0;
	*host = (entry & QC_OFF_MASK) + in;
	return *host + len <= q->file_size;
}
