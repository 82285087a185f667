/* blk_req.c - virtio-blk requests (virtio 1.2 section 5.2.6): take them
 * from the rings, validate everything the guest wrote, start their I/O
 * (blk_io.c) and return them with their status. d->lock is held
 * throughout. */
#include <errno.h>

#include "blk_priv.h"

/* Requests taken from one queue per pass before yielding to the loop. */
#define BLK_POP_BUDGET VIRTIO_BLK_QUEUE_SIZE

static bool range_ok(const struct blk *b, uint64_t sector, uint64_t nsec)
{
	return sector <= b->capacity && nsec <= b->capacity - sector;
}

static bool negotiated(const struct blk *b, unsigned int bit)
{
	return b->dev->driver_features & (1ULL << bit);
}

/* Discard / write-zeroes: an array of struct virtio_blk_discard_write_zeroes
 * after the header (5.2.6). Returns a status, or OK with r->segs filled. */
static uint8_t parse_segs(struct blk *b, struct blk_req *r, uint64_t bytes)
{
	bool discard = r->type == VIRTIO_BLK_T_DISCARD;

	if (bytes % 16 || !bytes || bytes / 16 > VIRTIO_BLK_MAX_DWZ_SEG)
		return VIRTIO_BLK_S_IOERR;
	r->nseg = (unsigned int)(bytes / 16);
	for (unsigned int i = 0; i < r->nseg; i++) {
		uint8_t s[16];
		uint64_t sector;
		uint32_t num, flags;

		if (virtq_elem_read(&r->elem, VIRTIO_BLK_HDR_SIZE + 16ULL * i, s, sizeof(s)) !=
		    sizeof(s))
			return VIRTIO_BLK_S_IOERR;
		sector = cv_get_le(s, 8);
		num = (uint32_t)cv_get_le(s + 8, 4);
		flags = (uint32_t)cv_get_le(s + 12, 4);
		/* 5.2.6.2: unknown flags, or unmap on a discard -> UNSUPP. */
		if ((flags & ~VIRTIO_BLK_WZ_F_UNMAP) || (discard && flags))
			return VIRTIO_BLK_S_UNSUPP;
		if (num > VIRTIO_BLK_MAX_DWZ_SECTORS || !range_ok(b, sector, num))
			return VIRTIO_BLK_S_IOERR;
		r->segs[i] = (struct blk_seg){ sector * VIRTIO_BLK_SECTOR_SIZE,
					       (uint64_t)num * VIRTIO_BLK_SECTOR_SIZE,
					       flags & VIRTIO_BLK_WZ_F_UNMAP };
	}
	return VIRTIO_BLK_S_OK;
}

/* Validate a request (5.2.6) and start it. Guest errors complete it at
 * once with a status; only a chain without a status byte faults. */
static void blk_handle(struct blk *b, struct blk_req *r)
{
	struct virtq_elem *e = &r->elem;
	uint8_t hdr[VIRTIO_BLK_HDR_SIZE];
	uint64_t sector, in_data, out_data, len;
	uint8_t st;

	r->data.n = r->nseg = r->seg_pos = 0;
	r->done = r->off = r->len = 0;
	r->retries = 0;
	r->use_buf_fd = false;
	r->used_len = 1;
	/* 5.2.6: the status is the last device-writable byte. */
	if (!e->in_len) {
		blk_req_done(b, r, VIRTIO_BLK_S_IOERR);
		virtio_dev_fault(b->dev, "a request has no device-writable status byte (5.2.6)");
		return;
	}
	if (virtq_elem_read(e, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
		blk_req_done(b, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	r->type = (uint32_t)cv_get_le(hdr, 4);
	sector = cv_get_le(hdr + 8, 8);
	in_data = e->in_len - 1;
	out_data = e->out_len - VIRTIO_BLK_HDR_SIZE;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		len = r->type == VIRTIO_BLK_T_OUT ? out_data : in_data;
		if ((r->type == VIRTIO_BLK_T_OUT && b->cfg.readonly) ||
		    len % VIRTIO_BLK_SECTOR_SIZE ||
		    !range_ok(b, sector, len / VIRTIO_BLK_SECTOR_SIZE)) {
			blk_req_done(b, r, VIRTIO_BLK_S_IOERR);
			return;
		}
		r->off = sector * VIRTIO_BLK_SECTOR_SIZE;
		r->len = len;
		if (!len) {
			blk_req_done(b, r, VIRTIO_BLK_S_OK);
			return;
		}
		blk_io_start(b, r);
		return;
	case VIRTIO_BLK_T_FLUSH:
		blk_io_start(b, r);
		return;
	case VIRTIO_BLK_T_GET_ID:
		len = in_data < VIRTIO_BLK_ID_BYTES ? in_data : VIRTIO_BLK_ID_BYTES;
		(void)virtq_elem_write(e, 0, b->cfg.serial, len);
		r->used_len = (uint32_t)len + 1;
		blk_req_done(b, r, VIRTIO_BLK_S_OK);
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!negotiated(b, r->type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD
								   : VIRTIO_BLK_F_WRITE_ZEROES))
			st = VIRTIO_BLK_S_UNSUPP;
		else if (b->cfg.readonly)
			st = VIRTIO_BLK_S_IOERR;
		else
			st = parse_segs(b, r, out_data);
		if (st == VIRTIO_BLK_S_OK)
			blk_io_start(b, r);
		else
			blk_req_done(b, r, st);
		return;
	default:
		blk_req_done(b, r, VIRTIO_BLK_S_UNSUPP);
		return;
	}
}

void blk_req_done(struct blk *b, struct blk_req *r, uint8_t status)
{
	struct blk_queue *q = &b->q[r->queue];

	/* Storage migration: whatever the status, the image may have changed
	 * (a failed write can be partly done); also during a reset drain. */
	if (b->written) {
		if (r->type == VIRTIO_BLK_T_OUT)
			blk_track_write(b, r->off, r->len);
		else if (r->type == VIRTIO_BLK_T_DISCARD || r->type == VIRTIO_BLK_T_WRITE_ZEROES)
			for (unsigned int i = 0; i < r->nseg; i++)
				blk_track_write(b, r->segs[i].off, r->segs[i].len);
	}

	if (r->elem.in_len && !b->draining) { /* a request with a status byte */
		if (status == VIRTIO_BLK_S_OK && r->type == VIRTIO_BLK_T_IN) {
			b->stats.read_bytes += r->len;
			b->stats.read_ops++;
			if (b->read_bytes)
				atomic_fetch_add(b->read_bytes, r->len);
		}
		if (status == VIRTIO_BLK_S_OK && r->type == VIRTIO_BLK_T_OUT) {
			b->stats.write_bytes += r->len;
			b->stats.write_ops++;
			if (b->write_bytes)
				atomic_fetch_add(b->write_bytes, r->len);
		}
		if (r->type == VIRTIO_BLK_T_IN)
			r->used_len = r->done < UINT32_MAX ? (uint32_t)r->done + 1 : UINT32_MAX;
		/* Written (and marked for live migration) through the
		 * accessor: the status byte may lie past used_len. */
		(void)virtq_elem_write(&r->elem, r->elem.in_len - 1, &status, 1);
		/* A failed read may have filled more than it reports. */
		if (r->type == VIRTIO_BLK_T_IN)
			virtq_elem_mark_dirty(&r->elem, 0, r->len);
		virtq_push(&b->dev->vqs[r->queue], &r->elem, r->used_len);
		q->used = true;
	}
	q->free[q->nfree++] = r->slot;
}

static bool blk_can_run(struct blk *b, unsigned int qi)
{
	struct virtio_dev *d = b->dev;

	return d->active && !(d->status & VIRTIO_STATUS_NEEDS_RESET) && !b->quiesced &&
	       !b->draining && qi < b->nq && d->vqs[qi].ready;
}

/* What a request costs the rate limit: its data bytes (reads and writes
 * only, as Firecracker counts them) and one operation. Read before the
 * request is validated: a malformed one costs what it claims, up to the
 * disk's size (no transfer is larger), so a lie leaves a bounded debt. */
static uint64_t req_bytes(const struct blk *b, const struct virtq_elem *e)
{
	uint8_t hdr[VIRTIO_BLK_HDR_SIZE];
	uint64_t bytes = 0;
	uint32_t type;

	if (virtq_elem_read(e, 0, hdr, sizeof(hdr)) != sizeof(hdr))
		return 0;
	type = (uint32_t)cv_get_le(hdr, 4);
	if (type == VIRTIO_BLK_T_IN && e->in_len)
		bytes = e->in_len - 1;
	else if (type == VIRTIO_BLK_T_OUT)
		bytes = e->out_len - VIRTIO_BLK_HDR_SIZE;
	return bytes < b->capacity * 512 ? bytes : b->capacity * 512;
}

/* The popped request may go now, or it goes back on the ring and the
 * queue sleeps until the tokens are there (never failed, never dropped). */
static bool rate_allows(struct blk *b, struct blk_queue *q, struct virtq *vq,
			const struct virtq_elem *e)
{
	uint64_t now, wait;

	if (!rate_limiter_on(&b->rl))
		return true;
	now = cv_now_ns();
	if (!(wait = rate_limiter_take(&b->rl, req_bytes(b, e), 1, now)))
		return true;
	virtq_unpop(vq);
	q->rate_wait = true;
	rate_timer_arm(&b->rate_timer, now, wait);
	return false;
}

void blk_rate_event(void *opaque, int fd, uint32_t events)
{
	struct blk *b = opaque;

	(void)fd;
	(void)events;
	rate_timer_fired(&b->rate_timer);
	pthread_mutex_lock(&b->dev->lock);
	for (unsigned int i = 0; i < b->nq; i++)
		if (b->q[i].rate_wait) {
			b->q[i].rate_wait = false;
			b->q[i].kicked = true;
		}
	blk_run(b);
	pthread_mutex_unlock(&b->dev->lock);
}

/* Take requests from queue qi while slots are free and the rate limit
 * allows (2.7.10 for the notification suppression around the walk; a
 * queue held by either sleeps with notifications off). */
static void blk_process(struct blk *b, unsigned int qi)
{
	struct blk_queue *q = &b->q[qi];
	struct virtq *vq = &b->dev->vqs[qi];
	unsigned int budget = BLK_POP_BUDGET;

	q->kicked = false;
	q->throttled = false;
	q->rate_wait = false;
	for (;;) {
		(void)virtq_enable_notify(vq, false);
		while (q->nfree) {
			struct blk_req *r = &q->reqs[q->free[q->nfree - 1]];
			int rc;

			if (!blk_can_run(b, qi))
				return;
			if (!budget--) {
				/* Let the loop serve others; continue from the eventfd. */
				q->throttled = true;
				blk_io_poke(b);
				return;
			}
			rc = virtq_pop(vq, &r->elem);
			if (rc < 0) {
				virtio_dev_fault(b->dev,
						 "malformed descriptor chain or avail index");
				return;
			}
			if (!rc)
				break;
			if (!rate_allows(b, q, vq, &r->elem))
				return;
			q->nfree--;
			blk_handle(b, r);
		}
		if (!q->nfree) {
			/* Resumed when a completion frees a slot. */
			q->throttled = true;
			return;
		}
		if (!virtq_enable_notify(vq, true))
			return;
	}
}

void blk_run(struct blk *b)
{
	for (unsigned int round = 0; round < 4; round++) {
		for (unsigned int i = 0; i < b->nq; i++) {
			struct blk_queue *q = &b->q[i];

			if ((q->kicked || (q->throttled && q->nfree)) && blk_can_run(b, i))
				blk_process(b, i);
		}
		blk_io_submit(b);
		if (!blk_io_reap(b, false))
			break;
	}
	for (unsigned int i = 0; i < b->nq; i++) {
		struct blk_queue *q = &b->q[i];

		if (q->throttled && q->nfree && blk_can_run(b, i))
			blk_io_poke(b);
		if (q->used) {
			q->used = false;
			virtio_dev_used(b->dev, i);
		}
	}
}

unsigned int blk_busy(const struct blk *b)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < b->nq; i++)
		n += VIRTIO_BLK_INFLIGHT - b->q[i].nfree;
	return n;
}
