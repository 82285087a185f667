/* qcow2_extent.c - which guest ranges of a qcow2 chain may hold data, to
 * copy an image without reading its holes (storage migration's first
 * pass, src/migrate/disk.c): the L1 and L2 tables of each image, and
 * SEEK_DATA on a raw backing file. */
#include <errno.h>
#include <unistd.h>

#include "qcow2_priv.h"

/* Extents stop here, so that a caller holding a lock holds it briefly. */
#define EXTENT_MAX (64ULL << 20)

static int first_data(struct qcow2 *q, uint64_t off, uint64_t lim, uint64_t *found);

/* The first byte in [off, lim) that may hold data in q's backing file;
 * lim if none. */
static int backing_first(struct qcow2 *q, uint64_t off, uint64_t lim, uint64_t *found)
{
	uint64_t blim = lim < q->bsize ? lim : q->bsize, s, e;
	int r;

	*found = lim;
	if (q->bfd < 0 || off >= blim)
		return 0;
	if (q->bq) {
		if ((r = first_data(q->bq, off, blim, found)))
			return r;
		if (*found >= blim)
			*found = lim;
		return 0;
	}
	if (!cv_data_extent(q->bfd, off, blim, &s, &e))
		*found = s;
	return 0;
}

/* The first byte in [off, lim) (lim <= q->size) that may hold data in q's
 * chain; lim if none. An L1 entry without an L2 table skips its span. */
static int first_data(struct qcow2 *q, uint64_t off, uint64_t lim, uint64_t *found)
{
	uint64_t span = q->csize << q->l2_bits;
	int r;

	while (off < lim) {
		uint64_t l1i = off / span, cend = (off | (q->csize - 1)) + 1, entry = 0, f;
		enum qc_kind kind = QC_UNALLOC;

		if (l1i >= q->l1_size)
			return -EIO;
		if (!(q->l1[l1i] & QC_OFF_MASK))
			cend = (l1i + 1) * span;
		else if ((r = qc_lookup(q, off, &kind, &entry)))
			return r;
		if (cend > lim)
			cend = lim;
		if (kind == QC_DATA || kind == QC_COMP) {
			*found = off;
			return 0;
		}
		if (kind == QC_UNALLOC) {
			if ((r = backing_first(q, off, cend, &f)))
				return r;
			if (f < cend) {
				*found = f;
				return 0;
			}
		}
		off = cend;
	}
	*found = lim;
	return 0;
}

int qcow2_next_data(struct qcow2 *q, uint64_t off, uint64_t lim, uint64_t *start, uint64_t *end)
{
	uint64_t s, e, f;
	int r;

	if (lim > q->size)
		lim = q->size;
	if (off >= lim)
		return -ENXIO;
	if ((r = first_data(q, off, lim, &s)))
		return r;
	if (s >= lim)
		return -ENXIO;
	/* Then the clusters after it that hold data from their first byte. */
	e = (s | (q->csize - 1)) + 1;
	while (e < q->size && e - s < EXTENT_MAX) {
		uint64_t ce = e + q->csize < q->size ? e + q->csize : q->size;

		if ((r = first_data(q, e, ce, &f)))
			return r;
		if (f != e)
			break;
		e = ce;
	}
	*start = s;
	*end = e < q->size ? e : q->size;
	return 0;
}

unsigned int qcow2_cluster_bits(const struct qcow2 *q)
{
	return q->cluster_bits;
}
