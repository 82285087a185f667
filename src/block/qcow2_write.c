/* qcow2_write.c - writing a qcow2 image (qcow2.txt "Host cluster
 * management"): refcounts of every width (1 to 64 bits), refcount blocks
 * and a larger refcount table allocated as the file grows, clusters freed
 * since open reused first, then new ones at the end of the file,
 * copy-on-write of partial clusters from the old content (backing file,
 * zeros, compressed data), zero clusters, discard and flush.
 *
 * Order for a kill -9 at any point (qemu-img check: clean or leaks only):
 * refcounts are raised QC_POOL clusters ahead and made durable before any
 * of them is used; a new data cluster or L2 table is written before the
 * entry that points at it; an entry is cleared and made durable before
 * the refcount of what it pointed at drops, so a cluster is free (and
 * reusable) only once nothing durable points at it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2_priv.h"

#define FREE_BATCH 64
#define ALLOC_TRIES 4096

struct frees {
	uint64_t entry[FREE_BATCH]; /* old L2 entries whose clusters to release */
	unsigned int n;
};

int qc_pwrite(struct qcow2 *q, const void *buf, uint64_t len, uint64_t off)
{
	int r = cv_pwrite_all(q->fd, buf, len, off);

	if (!r && off + len > q->file_size)
		q->file_size = off + len;
	if (q->kill_after && !--q->kill_after)
		raise(SIGKILL);
	return r;
}

static int pwritev_all(struct qcow2 *q, const struct iovec *iov, unsigned int n, uint64_t len,
		       uint64_t host)
{
	struct iovec v[QC_MAX_IOV];
	uint64_t done = 0;

	while (done < len) {
		unsigned int k = qc_iov_slice(iov, n, done, len - done, v);
		ssize_t put = pwritev(q->fd, v, (int)k, (off_t)(host + done));

		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0)
			return put < 0 ? -errno : -EIO;
		done += (uint64_t)put;
	}
	if (host + len > q->file_size)
		q->file_size = host + len;
	if (q->kill_after && !--q->kill_after)
		raise(SIGKILL);
	return 0;
}

int qcow2_flush(struct qcow2 *q)
{
	return fdatasync(q->fd) ? -errno : 0;
}

/* The refcount block covering cluster ci in q->rb; 0 if none is allocated
 * (*rb_off = 0), or -EIO if the refcount table points somewhere bad. */
static int rb_load(struct qcow2 *q, uint64_t ci, uint64_t *rb_off)
{
	uint64_t rti = ci / q->rb_entries, off;
	int r;

	*rb_off = 0;
	if (rti >= q->rt_size || !(off = q->rt[rti] & QC_RT_OFF_MASK))
		return 0;
	if ((off & (q->csize - 1)) || off >= q->file_size || qc_meta_overlap(q, off, q->csize))
		return -EIO;
	if (q->rb_off != off) {
		q->rb_off = 0;
		if ((r = qc_pread(q, q->rb, q->csize, off)))
			return r;
		q->rb_off = off;
	}
	*rb_off = off;
	return 0;
}

/* Entry i of a refcount block: refcount_bits wide, big-endian from 8 bits
 * up, least significant bits first below (qcow2.txt). Returns the byte
 * range that holds it. */
static uint64_t rb_get(const struct qcow2 *q, const uint8_t *rb, uint64_t i)
{
	unsigned int bits = 1u << q->refcount_order;

	if (bits < 8)
		return (rb[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
	return qc_be(rb + i * (bits / 8), bits / 8);
}

static void rb_set(const struct qcow2 *q, uint8_t *rb, uint64_t i, uint64_t v, uint64_t *at,
		   unsigned int *len)
{
	unsigned int bits = 1u << q->refcount_order;

	if (bits < 8) {
		unsigned int sh = (unsigned int)(i * bits % 8), m = ((1u << bits) - 1) << sh;

		*at = i * bits / 8;
		*len = 1;
		rb[*at] = (uint8_t)((rb[*at] & ~m) | ((unsigned int)v << sh & m));
		return;
	}
	*at = i * (bits / 8);
	*len = bits / 8;
	qc_put_be(rb + *at, v, bits / 8);
}

static uint64_t rc_max(const struct qcow2 *q)
{
	return q->refcount_order == 6 ? UINT64_MAX : (1ULL << (1u << q->refcount_order)) - 1;
}

int qc_refcount_get(struct qcow2 *q, uint64_t ci, uint64_t *rc)
{
	uint64_t off;
	int r = rb_load(q, ci, &off);

	*rc = 0;
	if (!r && off)
		*rc = rb_get(q, q->rb, ci % q->rb_entries);
	return r;
}

static int refcount_set(struct qcow2 *q, uint64_t ci, uint64_t v, unsigned int depth);
static int cluster_unref(struct qcow2 *q, uint64_t ci);

/* How many of the refcount blocks covering clusters [p, end) do not exist
 * yet (their table index is past the table or its entry is 0). */
static uint64_t rb_missing(const struct qcow2 *q, uint64_t p, uint64_t end)
{
	uint64_t n = 0;

	for (uint64_t t = p / q->rb_entries; t <= (end - 1) / q->rb_entries; t++)
		n += t >= q->rt_size || !q->rt[t];
	return n;
}

/* A refcount table with room for index rti: written whole at the end of
 * the file, T clusters, followed by the B new refcount blocks that count
 * those T+B clusters where no block does yet; made durable, then the
 * header points at it (one 12-byte write: offset and cluster count), then
 * the old table's clusters are released. A crash before the header write
 * leaves leaks only. */
static int rt_grow(struct qcow2 *q, uint64_t rti)
{
	uint64_t per = q->csize / 8, want = rti + 1 > q->rt_size * 2 ? rti + 1 : q->rt_size * 2;
	uint64_t tcl = (want + per - 1) / per, p = q->alloc_next, b = 0, nb = 0, *nrt;
	uint64_t old_off = q->rt_off, old_cl = q->rt_size / per, at;
	uint8_t *raw, hdr[12];
	unsigned int len;
	int r;

	/* The new blocks may themselves need counting, and the table must
	 * reach the blocks of its own area: until it settles. */
	for (unsigned int i = 0;; i++) {
		if (tcl * q->csize > QC_MAX_RT_BYTES || i > 64)
			return -ENOSPC;
		if ((nb = rb_missing(q, p, p + tcl + b)) != b)
			b = nb;
		else if ((p + tcl + b - 1) / q->rb_entries >= tcl * per)
			tcl++;
		else
			break;
	}
	if (!(nrt = calloc(tcl * per, 8)) || !(raw = malloc(tcl * q->csize))) {
		free(nrt);
		return -ENOMEM;
	}
	memcpy(nrt, q->rt, q->rt_size * 8);
	q->alloc_next = p + tcl + b;
	q->rb_off = 0;
	nb = 0;
	for (uint64_t t = p / q->rb_entries; t <= (p + tcl + b - 1) / q->rb_entries; t++) {
		if (t < q->rt_size && q->rt[t])
			continue;
		nrt[t] = (p + tcl + nb++) << q->cluster_bits;
		memset(q->rb, 0, q->csize);
		for (uint64_t c = p; c < p + tcl + b; c++)
			if (c / q->rb_entries == t)
				rb_set(q, q->rb, c % q->rb_entries, 1, &at, &len);
		if ((r = qc_pwrite(q, q->rb, q->csize, nrt[t])))
			goto out;
	}
	/* Clusters of the new area that existing blocks count. */
	for (uint64_t c = p; c < p + tcl + b; c++) {
		uint64_t t = c / q->rb_entries;

		if (t < q->rt_size && q->rt[t] && (r = refcount_set(q, c, 1, 0)))
			goto out;
	}
	for (uint64_t i = 0; i < tcl * per; i++)
		qc_put_be(raw + i * 8, nrt[i], 8);
	if ((r = qc_pwrite(q, raw, tcl * q->csize, p << q->cluster_bits)) || (r = qcow2_flush(q)))
		goto out;
	qc_put_be(hdr, p << q->cluster_bits, 8);
	qc_put_be(hdr + 8, tcl, 4);
	if ((r = qc_pwrite(q, hdr, 12, 48)) || (r = qcow2_flush(q)))
		goto out;
	free(q->rt);
	q->rt = nrt;
	nrt = NULL;
	q->rt_off = p << q->cluster_bits;
	q->rt_size = tcl * per;
	q->rb_off = 0;
	for (uint64_t c = 0; c < old_cl && !r; c++)
		r = cluster_unref(q, (old_off >> q->cluster_bits) + c);
out:
	free(nrt);
	free(raw);
	return r;
}

/* A new refcount block for table index rti, in the next free cluster:
 * written with its own refcount when it covers itself, else counted in
 * another block; then the table entry points at it. */
static int rb_alloc(struct qcow2 *q, uint64_t rti, unsigned int depth)
{
	uint64_t p = q->alloc_next++, at, rc;
	uint8_t be[8];
	unsigned int len;
	int r;

	if (depth > 4)
		return -ENOSPC;
	if (rti >= q->rt_size) {
		q->alloc_next--;
		if ((r = rt_grow(q, rti)))
			return r;
		if (q->rt[rti]) /* the growth made this block too */
			return 0;
		p = q->alloc_next++;
	}
	if (p / q->rb_entries != rti) {
		if ((r = qc_refcount_get(q, p, &rc)))
			return r;
		if (rc)
			return -EIO;
	}
	q->rb_off = 0;
	memset(q->rb, 0, q->csize);
	if (p / q->rb_entries == rti)
		rb_set(q, q->rb, p % q->rb_entries, 1, &at, &len);
	if ((r = qc_pwrite(q, q->rb, q->csize, p << q->cluster_bits)))
		return r;
	if (p / q->rb_entries != rti && (r = refcount_set(q, p, 1, depth + 1)))
		return r;
	qc_put_be(be, p << q->cluster_bits, 8);
	if ((r = qc_pwrite(q, be, 8, q->rt_off + rti * 8)))
		return r;
	q->rt[rti] = p << q->cluster_bits;
	return 0;
}

static int refcount_set(struct qcow2 *q, uint64_t ci, uint64_t v, unsigned int depth)
{
	uint64_t off, at;
	unsigned int len;
	int r;

	if (v > rc_max(q))
		return -ERANGE;
	if ((r = rb_load(q, ci, &off)))
		return r;
	if (!off) {
		if ((r = rb_alloc(q, ci / q->rb_entries, depth)) || (r = rb_load(q, ci, &off)))
			return r;
		if (!off)
			return -EIO;
	}
	rb_set(q, q->rb, ci % q->rb_entries, v, &at, &len);
	return qc_pwrite(q, q->rb + at, len, off + at);
}

/* Raise the refcounts of the next QC_POOL free clusters to 1 and make that
 * durable: until an L2 entry points at them they are leaks, never
 * corruption. */
static int pool_fill(struct qcow2 *q)
{
	uint64_t limit = (1ULL << 56) >> q->cluster_bits, rc;
	unsigned int tries = 0;
	int r;

	while (q->npool < QC_POOL) {
		/* Clusters freed while open first, then the end of the file. */
		bool reuse = q->free_hint < q->alloc_next;
		uint64_t c = reuse ? q->free_hint++ : q->alloc_next++;

		if (c >= limit || (!reuse && ++tries > ALLOC_TRIES))
			return -ENOSPC;
		if ((r = qc_refcount_get(q, c, &rc)))
			return r;
		if (rc) /* counted beyond the end of the file: leave it */
			continue;
		if ((r = refcount_set(q, c, 1, 0)))
			return r;
		q->pool[q->npool++] = c;
	}
	return qcow2_flush(q);
}

static int alloc_cluster(struct qcow2 *q, uint64_t *host)
{
	int r;

	if (!q->npool && (r = pool_fill(q)))
		return r;
	*host = q->pool[0] << q->cluster_bits;
	memmove(q->pool, q->pool + 1, --q->npool * sizeof(q->pool[0]));
	return 0;
}

void qc_pool_release(struct qcow2 *q)
{
	while (q->npool)
		if (refcount_set(q, q->pool[--q->npool], 0, 0))
			break;
}

/* Drop one reference to host cluster ci; a cluster nobody uses any more
 * is punched out of the file. A refcount already 0 is damage. */
static int cluster_unref(struct qcow2 *q, uint64_t ci)
{
	uint64_t rc;
	int r;

	/* Never the header or the tables, whatever a damaged entry says. */
	if (qc_meta_overlap(q, ci << q->cluster_bits, q->csize))
		return -EIO;
	if ((r = qc_refcount_get(q, ci, &rc)))
		return r;
	if (!rc)
		return -EIO;
	if ((r = refcount_set(q, ci, rc - 1, 0)))
		return r;
	if (rc == 1 && ci < q->free_hint)
		q->free_hint = ci;
	if (rc == 1)
		(void)fallocate(q->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)(ci << q->cluster_bits), (off_t)q->csize);
	return 0;
}

/* Release what old L2 entries pointed at, once the entries that replaced
 * them are durable. */
static int frees_run(struct qcow2 *q, struct frees *f)
{
	int r = 0;

	if (f->n && (r = qcow2_flush(q)))
		return r;
	for (unsigned int i = 0; i < f->n && !r; i++) {
		uint64_t e = f->entry[i];

		if (e & QC_COMPRESSED) {
			unsigned int x = 62 - (q->cluster_bits - 8);
			uint64_t host = e & ((1ULL << x) - 1);
			uint64_t nsec = ((e >> x) & ((1ULL << (q->cluster_bits - 8)) - 1)) + 1;
			uint64_t end = host + nsec * 512 - (host & 511);

			for (uint64_t c = host >> q->cluster_bits;
			     !r && c <= (end - 1) >> q->cluster_bits; c++)
				r = cluster_unref(q, c);
		} else if (e & QC_OFF_MASK) {
			r = cluster_unref(q, (e & QC_OFF_MASK) >> q->cluster_bits);
		}
	}
	f->n = 0;
	return r;
}

static int frees_add(struct qcow2 *q, struct frees *f, uint64_t entry)
{
	if (!(entry & (QC_COMPRESSED | QC_OFF_MASK)))
		return 0;
	if (f->n == FREE_BATCH) {
		int r = frees_run(q, f);

		if (r)
			return r;
	}
	f->entry[f->n++] = entry;
	return 0;
}

/* The L2 table for guest offset off, allocated (zeroed, then linked from
 * L1) if alloc and missing. *l2_off = 0 when missing and not alloc. */
static int l2_table(struct qcow2 *q, uint64_t off, bool alloc, uint64_t *l2_off, uint64_t **tab)
{
	uint64_t l1i = off >> (q->cluster_bits + q->l2_bits), l1e, t, rc;
	uint8_t be[8];
	int r;

	if (l1i >= q->l1_size)
		return -EIO;
	l1e = q->l1[l1i];
	*l2_off = l1e & QC_OFF_MASK;
	if (*l2_off) {
		/* No internal snapshots on a writable image: shared means damage. */
		if (!(l1e & QC_COPIED) &&
		    ((r = qc_refcount_get(q, *l2_off >> q->cluster_bits, &rc)) || rc != 1))
			return r ? r : -EIO;
		return qc_l2_get(q, *l2_off, tab);
	}
	if (!alloc)
		return 0;
	if ((r = alloc_cluster(q, &t)))
		return r;
	memset(q->tmp, 0, q->csize);
	if ((r = qc_pwrite(q, q->tmp, q->csize, t)))
		return r;
	qc_put_be(be, t | QC_COPIED, 8);
	if ((r = qc_pwrite(q, be, 8, q->l1_off + l1i * 8)))
		return r;
	q->l1[l1i] = t | QC_COPIED;
	*l2_off = t;
	return qc_l2_get(q, t, tab);
}

static int l2_set(struct qcow2 *q, uint64_t l2_off, uint64_t *tab, uint64_t idx, uint64_t v)
{
	uint8_t be[8];

	qc_put_be(be, v, 8);
	tab[idx] = v;
	return qc_pwrite(q, be, 8, l2_off + idx * 8);
}

/* Write [off, off+len) inside one cluster from iov at iov_off (zeros if
 * iov is NULL). */
static int write_cluster(struct qcow2 *q, uint64_t off, uint64_t len, const struct iovec *iov,
			 unsigned int n, uint64_t iov_off, struct frees *f)
{
	uint64_t in = off & (q->csize - 1),
		 idx = (off >> q->cluster_bits) & ((1ULL << q->l2_bits) - 1);
	uint64_t l2_off, *tab, entry, host, rc;
	struct iovec whole = { q->tmp, q->csize }, v[QC_MAX_IOV];
	enum qc_kind kind;
	unsigned int k;
	int r;

	if ((r = qc_lookup(q, off, &kind, &entry)))
		return r;
	if (!iov && ((kind == QC_UNALLOC && q->bfd < 0) || kind == QC_ZEROES))
		return 0; /* already reads as zeros */
	if (kind == QC_DATA) {
		host = entry & QC_OFF_MASK;
		if (!(entry & QC_COPIED) &&
		    ((r = qc_refcount_get(q, host >> q->cluster_bits, &rc)) || rc != 1))
			return r ? r : -EIO;
		if (!iov) {
			memset(q->tmp, 0, len);
			return qc_pwrite(q, q->tmp, len, host + in);
		}
		k = qc_iov_slice(iov, n, iov_off, len, v);
		return pwritev_all(q, v, k, len, host + in);
	}
	if ((r = l2_table(q, off, true, &l2_off, &tab)) || (r = alloc_cluster(q, &host)))
		return r;
	if (len == q->csize && iov) {
		k = qc_iov_slice(iov, n, iov_off, len, v);
		r = pwritev_all(q, v, k, len, host);
	} else {
		/* Copy on write: the cluster as it reads now, then the new bytes. */
		if ((r = qc_read_cluster_part(q, off - in, q->csize, &whole, 1, 0)))
			return r;
		if (iov)
			qc_iov_to_buf(iov, n, iov_off, q->tmp + in, len);
		else
			memset(q->tmp + in, 0, len);
		r = qc_pwrite(q, q->tmp, q->csize, host);
	}
	if (r || (r = l2_set(q, l2_off, tab, idx, host | QC_COPIED)))
		return r;
	return frees_add(q, f, entry);
}

/* Whole cluster at off reads as zeros from now on, without data: a zero
 * cluster (v3), or unallocated when no backing file shows through. */
static int zero_cluster(struct qcow2 *q, uint64_t off, struct frees *f)
{
	uint64_t idx = (off >> q->cluster_bits) & ((1ULL << q->l2_bits) - 1), l2_off, *tab, entry;
	uint64_t v = q->version >= 3 && q->bfd >= 0 ? QC_ZERO : 0;
	enum qc_kind kind;
	int r;

	if ((r = qc_lookup(q, off, &kind, &entry)))
		return r;
	if ((kind == QC_UNALLOC && q->bfd < 0) || (kind == QC_ZEROES && !(entry & QC_OFF_MASK)))
		return 0;
	if ((r = l2_table(q, off, v != 0, &l2_off, &tab)))
		return r;
	if (!l2_off)
		return 0;
	if ((r = l2_set(q, l2_off, tab, idx, v)))
		return r;
	return frees_add(q, f, entry);
}

/* Write iov (or zeros if iov is NULL) to [off, off+len) cluster by
 * cluster; whole clusters to zero without data when zero_whole. Then
 * release what the old entries pointed at. */
static int write_range(struct qcow2 *q, const struct iovec *iov, unsigned int n, uint64_t off,
		       uint64_t len, bool zero_whole)
{
	struct frees f = { .n = 0 };
	uint64_t done = 0;
	int r = 0, r2;

	if (q->readonly)
		return -EROFS;
	if (off > q->size || len > q->size - off)
		return -EIO;
	while (done < len && !r) {
		uint64_t in = (off + done) & (q->csize - 1), c = q->csize - in;

		if (c > len - done)
			c = len - done;
		if (zero_whole && c == q->csize)
			r = zero_cluster(q, off + done, &f);
		else
			r = write_cluster(q, off + done, c, iov, n, done, &f);
		done += c;
	}
	r2 = frees_run(q, &f);
	return r ? r : r2;
}

int qcow2_writev(struct qcow2 *q, const struct iovec *iov, unsigned int n, uint64_t off,
		 uint64_t len)
{
	return write_range(q, iov, n, off, len, false);
}

int qcow2_zero(struct qcow2 *q, uint64_t off, uint64_t len)
{
	/* v2 has no zero flag: with a backing file only zeros written hide it. */
	return write_range(q, NULL, 0, off, len, q->version >= 3 || q->bfd < 0);
}

int qcow2_discard(struct qcow2 *q, uint64_t off, uint64_t len)
{
	return qcow2_zero(q, off, len);
}
