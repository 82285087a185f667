/* blk_qcow2.c - virtio-blk requests on a qcow2 image (src/block/qcow2.c):
 * each runs synchronously on the main thread with dev->lock held, except
 * reads of plain data that map to one host range, which go to io_uring
 * like a raw image's reads. */
#include <errno.h>

#include "blk_priv.h"

static int run_segs(struct blk *b, struct blk_req *r)
{
	int rc = 0;

	for (unsigned int i = 0; i < r->nseg && !rc; i++)
		rc = r->type == VIRTIO_BLK_T_DISCARD
			     ? qcow2_discard(b->qcow2, r->segs[i].off, r->segs[i].len)
			     : qcow2_zero(b->qcow2, r->segs[i].off, r->segs[i].len);
	return rc;
}

bool blk_qcow2_start(struct blk *b, struct blk_req *r)
{
	struct qcow2 *q = b->qcow2;
	uint64_t host;
	int rc;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		if (b->have_ring && b->async_rw && qcow2_map(q, r->off, r->len, &host) == 1) {
			r->off = host;
			return false;
		}
		(void)virtq_elem_slice(&r->elem, VIRTQ_IN, 0, r->len, &r->data);
		if (!(rc = qcow2_readv(q, r->data.iov, r->data.n, r->off, r->len)))
			r->done = r->len;
		break;
	case VIRTIO_BLK_T_OUT:
		(void)virtq_elem_slice(&r->elem, VIRTQ_OUT, VIRTIO_BLK_HDR_SIZE, r->len, &r->data);
		rc = qcow2_writev(q, r->data.iov, r->data.n, r->off, r->len);
		/* FLUSH not negotiated: a completed write must be stable. */
		if (!rc && b->dsync)
			rc = qcow2_flush(q);
		if (!rc)
			r->done = r->len;
		break;
	case VIRTIO_BLK_T_FLUSH:
		rc = qcow2_flush(q);
		break;
	default: /* discard, write zeroes */
		rc = run_segs(b, r);
		if (!rc && b->dsync)
			rc = qcow2_flush(q);
		break;
	}
	blk_req_done(b, r, rc ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
	return true;
}
