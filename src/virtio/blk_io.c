/* blk_io.c - the I/O side of virtio-blk: each request runs as a sequence
 * of steps (a readv and its remainder after a short read, a datasync, one
 * fallocate or zero-write per discard / write-zeroes segment), each step
 * an io_uring SQE, or a synchronous system call when io_uring or the
 * opcode is missing. Completions arrive through an eventfd registered with
 * the ring and watched on the main loop; every ring access happens with
 * dev->lock held. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk_priv.h"

#define TAG_MAGIC 0xb1c0000000000000ULL
#define TAG_MASK 0xffff000000000000ULL
#define MAX_RETRIES 16
#define ZERO_CHUNK (64 * 1024)
#define ZERO_IOV 16 /* zero writes: 1 MiB per step */

/* Ways to zero a range, tried in order until the file system takes one. */
enum zero_mode { ZERO_PUNCH, ZERO_RANGE, ZERO_WRITE };

enum step_op { OP_READ, OP_WRITE, OP_FSYNC, OP_FALLOCATE, OP_ZERO_WRITE };

static const uint8_t zeros[ZERO_CHUNK] __attribute__((aligned(4096)));

/* Warn once per process, from whichever thread gets there first. */
static bool first_time(atomic_bool *flag)
{
	return !atomic_exchange(flag, true);
}

/* What the ring may carry once enabled (IORING_REGISTER_RESTRICTIONS): the
 * data path's reads, writes, fsync and fallocate, on the disk's registered
 * files when there are some, and no further registration. io_uring's
 * requests run in kernel workers that seccomp does not see, and workers
 * started before a jail keep the host's root: without this a compromised
 * monitor could queue an openat or a connect past its filter. */
static int restrict_ring(struct blk *b)
{
	static const uint8_t ops[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_READ,
				       IORING_OP_WRITE, IORING_OP_FSYNC,  IORING_OP_FALLOCATE };
	struct io_uring_restriction res[ARRAY_SIZE(ops) + 2];
	unsigned int n = 0;
	int r;

	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		res[n].opcode = IORING_RESTRICTION_SQE_OP;
		res[n++].sqe_op = ops[i];
	}
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[n++].sqe_flags = IOSQE_FIXED_FILE;
	if (b->fixed_files) {
		res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
		res[n++].sqe_flags = IOSQE_FIXED_FILE;
	}
	if ((r = io_uring_register_restrictions(&b->ring, res, n)))
		return r;
	return io_uring_enable_rings(&b->ring);
}

int blk_io_init(struct blk *b)
{
	static atomic_bool warned;
	struct io_uring_probe *p;
	int r;

	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0)
		return -errno;
	if (b->cfg.sync_io)
		return 0;
	/* Disabled until restricted (Linux 5.10). */
	r = io_uring_queue_init(b->nq * VIRTIO_BLK_INFLIGHT, &b->ring, IORING_SETUP_R_DISABLED);
	if (!r && (r = io_uring_register_eventfd(&b->ring, b->efd)))
		io_uring_queue_exit(&b->ring);
	if (r) {
		if (first_time(&warned))
			cv_warn("%s: io_uring unavailable (%s); disk I/O runs synchronously on "
				"the main thread",
				b->dev->label, strerror(-r));
		return 0;
	}
	b->have_ring = true;
	/* Fixed files spare an fget/fput per request. */
	b->fixed_files = !io_uring_register_files(&b->ring, (int[]){ b->fd, b->fd_buf }, 2);
	p = io_uring_get_probe_ring(&b->ring);
	if (p) {
		b->async_rw = io_uring_opcode_supported(p, IORING_OP_READV) &&
			      io_uring_opcode_supported(p, IORING_OP_WRITEV);
		b->async_rw1 = io_uring_opcode_supported(p, IORING_OP_READ) &&
			       io_uring_opcode_supported(p, IORING_OP_WRITE);
		b->async_fsync = io_uring_opcode_supported(p, IORING_OP_FSYNC);
		b->async_fallocate = io_uring_opcode_supported(p, IORING_OP_FALLOCATE);
		io_uring_free_probe(p);
	} else {
		/* No probe before Linux 5.6; READV, WRITEV and FSYNC are 5.1's. */
		b->async_rw = b->async_fsync = true;
	}
	if ((r = restrict_ring(b))) {
		cv_warn("%s: io_uring restrictions: %s; disk I/O runs synchronously on the main "
			"thread",
			b->dev->label, strerror(-r));
		io_uring_queue_exit(&b->ring);
		b->have_ring = b->fixed_files = false;
	}
	return 0;
}

void blk_io_exit(struct blk *b)
{
	if (b->have_ring)
		io_uring_queue_exit(&b->ring);
	b->have_ring = false;
	cv_close(&b->efd);
}

void blk_io_poke(struct blk *b)
{
	uint64_t one = 1;
	ssize_t n = write(b->efd, &one, sizeof(one));

	(void)n; /* EAGAIN: the counter is already non-zero */
}

static int start_seg(struct blk_req *r)
{
	return r->segs[r->seg_pos].unmap ? ZERO_PUNCH : ZERO_RANGE;
}

/* What the request's next step is, with its file offset and length. */
static enum step_op step_op(const struct blk_req *r, int *mode, uint64_t *off, uint64_t *len)
{
	const struct blk_seg *s = &r->segs[r->seg_pos];

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		return OP_READ;
	case VIRTIO_BLK_T_OUT:
		return OP_WRITE;
	case VIRTIO_BLK_T_FLUSH:
		return OP_FSYNC;
	default: /* discard, write zeroes */
		*off = s->off + r->done;
		*len = s->len - r->done;
		if (r->type == VIRTIO_BLK_T_DISCARD || r->zero_mode == ZERO_PUNCH)
			*mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		else if (r->zero_mode == ZERO_RANGE)
			*mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		else
			return OP_ZERO_WRITE;
		return OP_FALLOCATE;
	}
}

/* Point r->data at the zero buffer for the next chunk of a zero write. */
static unsigned int zero_iov(struct blk_req *r, uint64_t len)
{
	unsigned int n = 0;

	for (; n < ZERO_IOV && len; n++) {
		size_t c = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;

		r->data.iov[n].iov_base = (void *)zeros;
		r->data.iov[n].iov_len = c;
		len -= c;
	}
	return n;
}

/* r->data = the data of a read or write not transferred yet: after the
 * header of the readable buffers, or from the start of the writable ones
 * (the status byte is past r->len). */
static void data_slice(struct blk_req *r)
{
	bool out = r->type == VIRTIO_BLK_T_OUT;

	(void)virtq_elem_slice(&r->elem, out ? VIRTQ_OUT : VIRTQ_IN,
			       (out ? VIRTIO_BLK_HDR_SIZE : 0) + r->done, r->len - r->done,
			       &r->data);
}

static int rw_fd(const struct blk *b, const struct blk_req *r)
{
	return r->use_buf_fd ? b->fd_buf : b->fd;
}

static long step_sync(struct blk *b, struct blk_req *r)
{
	int mode = 0, rwf = b->dsync ? RWF_DSYNC : 0;
	uint64_t off = 0, len = 0;
	struct iovec *v = r->data.iov;
	int cnt = (int)r->data.n;
	long n;

	switch (step_op(r, &mode, &off, &len)) {
	case OP_READ:
		n = preadv(rw_fd(b, r), v, cnt, (off_t)(r->off + r->done));
		break;
	case OP_WRITE:
		n = pwritev2(rw_fd(b, r), v, cnt, (off_t)(r->off + r->done), rwf);
		break;
	case OP_FSYNC:
		n = fdatasync(b->fd);
		break;
	case OP_FALLOCATE:
		n = fallocate(b->fd, mode, (off_t)off, (off_t)len);
		break;
	default:
		n = pwritev2(b->fd_buf, r->data.iov, (int)zero_iov(r, len), (off_t)off, rwf);
		break;
	}
	return n < 0 ? -errno : n;
}

/* Queue the step as an SQE; false if it must run synchronously. */
static bool step_submit(struct blk *b, struct blk_req *r)
{
	int mode = 0, rwf = b->dsync ? RWF_DSYNC : 0;
	uint64_t off = 0, len = 0;
	enum step_op op = step_op(r, &mode, &off, &len);
	struct iovec *v = r->data.iov;
	unsigned int n = r->data.n;
	struct io_uring_sqe *sqe;
	int fd;

	if (!b->have_ring ||
	    ((op == OP_READ || op == OP_WRITE || op == OP_ZERO_WRITE) && !b->async_rw) ||
	    (op == OP_FSYNC && !b->async_fsync) || (op == OP_FALLOCATE && !b->async_fallocate))
		return false;
	if (op == OP_READ || op == OP_WRITE)
		off = r->off + r->done;
	if (!(sqe = io_uring_get_sqe(&b->ring))) {
		blk_io_submit(b);
		if (!(sqe = io_uring_get_sqe(&b->ring)))
			return false;
	}
	fd = op == OP_ZERO_WRITE || r->use_buf_fd ? 1 : 0;
	switch (op) {
	case OP_READ:
	case OP_WRITE:
		if (n == 1 && b->async_rw1 && v->iov_len <= UINT32_MAX) {
			/* One buffer: skip importing an iovec array. */
			if (op == OP_READ)
				io_uring_prep_read(sqe, fd, v->iov_base, (unsigned int)v->iov_len,
						   off);
			else
				io_uring_prep_write(sqe, fd, v->iov_base, (unsigned int)v->iov_len,
						    off);
		} else if (op == OP_READ) {
			io_uring_prep_readv(sqe, fd, v, n, off);
		} else {
			io_uring_prep_writev(sqe, fd, v, n, off);
		}
		if (op == OP_WRITE)
			sqe->rw_flags = rwf;
		break;
	case OP_FSYNC:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case OP_FALLOCATE:
		io_uring_prep_fallocate(sqe, fd, mode, off, len);
		break;
	case OP_ZERO_WRITE:
		io_uring_prep_writev2(sqe, fd, r->data.iov, zero_iov(r, len), off, rwf);
		break;
	}
	if (b->fixed_files)
		sqe->flags |= IOSQE_FIXED_FILE;
	else
		sqe->fd = fd ? b->fd_buf : b->fd;
	io_uring_sqe_set_data64(sqe, TAG_MAGIC | (uint64_t)r->queue << 16 | r->slot);
	r->in_kernel = true;
	b->in_kernel++;
	b->sq_pending++;
	return true;
}

/* The next discard / write-zeroes segment; true when there is none. */
static bool next_seg(struct blk_req *r)
{
	r->done = 0;
	if (++r->seg_pos >= r->nseg)
		return true;
	r->zero_mode = start_seg(r);
	return false;
}

/* The current step ended with res (bytes or -errno). Returns true when
 * the request is over, with its status in *st. */
static bool step_result(struct blk *b, struct blk_req *r, long res, uint8_t *st)
{
	*st = VIRTIO_BLK_S_IOERR;
	if ((res == -EINTR || res == -EAGAIN) && ++r->retries < MAX_RETRIES)
		return false;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		/* O_DIRECT refuses buffers or lengths not aligned to the
		 * backing device's block: go through the page cache. */
		if (res == -EINVAL && b->fd_buf != b->fd && !r->use_buf_fd) {
			r->use_buf_fd = true;
			return false;
		}
		if (res <= 0) /* an error, or end of file: the image shrank */
			return true;
		r->done += (uint64_t)res;
		if (r->done >= r->len) {
			*st = VIRTIO_BLK_S_OK;
			return true;
		}
		data_slice(r); /* a short transfer: do the rest */
		return false;
	case VIRTIO_BLK_T_FLUSH:
		if (res >= 0)
			*st = VIRTIO_BLK_S_OK;
		return true;
	case VIRTIO_BLK_T_DISCARD:
		/* 5.2.6.2: the device MAY deallocate; a file system that
		 * cannot punch holes still completes the discard. */
		if (res < 0 && res != -EOPNOTSUPP)
			return true;
		*st = VIRTIO_BLK_S_OK;
		return next_seg(r);
	default: /* write zeroes: reads of the range must return zeros */
		if (r->zero_mode == ZERO_WRITE) {
			if (res <= 0)
				return true;
			r->done += (uint64_t)res;
			*st = VIRTIO_BLK_S_OK;
			return r->done < r->segs[r->seg_pos].len ? false : next_seg(r);
		}
		if (res == -EOPNOTSUPP || res == -EINVAL || res == -ENOSYS) {
			r->zero_mode++;
			return false;
		}
		if (res < 0)
			return true;
		*st = VIRTIO_BLK_S_OK;
		return next_seg(r);
	}
}

/* Issue steps until one goes to the kernel or the request is over. */
static void step_run(struct blk *b, struct blk_req *r)
{
	uint8_t st;

	while (!step_submit(b, r)) {
		if (step_result(b, r, step_sync(b, r), &st)) {
			blk_req_done(b, r, st);
			return;
		}
	}
}

void blk_io_start(struct blk *b, struct blk_req *r)
{
	if (b->qcow2 && blk_qcow2_start(b, r))
		return;
	if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT)
		data_slice(r);
	if (r->nseg)
		r->zero_mode = start_seg(r);
	step_run(b, r);
}

void blk_io_submit(struct blk *b)
{
	static atomic_bool warned;
	int r;

	if (!b->have_ring || !b->sq_pending)
		return;
	r = io_uring_submit(&b->ring);
	if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && first_time(&warned))
		cv_warn("%s: io_uring submission failed: %s", b->dev->label, strerror(-r));
	b->sq_pending = io_uring_sq_ready(&b->ring);
}

static struct blk_req *tag_req(struct blk *b, uint64_t tag)
{
	unsigned int q = (unsigned int)(tag >> 16) & 0xffff, slot = (unsigned int)tag & 0xffff;

	if ((tag & TAG_MASK) != TAG_MAGIC || q >= b->nq || slot >= VIRTIO_BLK_INFLIGHT ||
	    !b->q[q].reqs[slot].in_kernel)
		return NULL;
	return &b->q[q].reqs[slot];
}

unsigned int blk_io_reap(struct blk *b, bool wait)
{
	static atomic_bool warned;
	struct io_uring_cqe *cqe;
	unsigned int n = 0;
	uint8_t st;

	if (!b->have_ring)
		return 0;
	if (wait && b->in_kernel) {
		int r = io_uring_submit_and_wait(&b->ring, 1);

		b->sq_pending = io_uring_sq_ready(&b->ring);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME) {
			if (first_time(&warned))
				cv_warn("%s: waiting for disk I/O failed: %s", b->dev->label,
					strerror(-r));
			return 0;
		}
	}
	while (!io_uring_peek_cqe(&b->ring, &cqe)) {
		struct blk_req *r = tag_req(b, io_uring_cqe_get_data64(cqe));
		long res = cqe->res;

		io_uring_cqe_seen(&b->ring, cqe);
		if (!r)
			continue;
		r->in_kernel = false;
		b->in_kernel--;
		n++;
		if (b->draining)
			blk_req_done(b, r, VIRTIO_BLK_S_IOERR);
		else if (step_result(b, r, res, &st))
			blk_req_done(b, r, st);
		else
			step_run(b, r);
	}
	return n;
}

void blk_io_drain(struct blk *b)
{
	unsigned int idle = 0;

	while (b->have_ring && b->in_kernel) {
		blk_io_submit(b);
		/* A wait that keeps failing must not hang the caller. */
		if (blk_io_reap(b, true))
			idle = 0;
		else if (++idle > 1000)
			break;
	}
}
