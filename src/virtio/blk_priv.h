/* blk_priv.h - private to the virtio-blk model: the device and request
 * state shared by blk.c (device lifecycle), blk_req.c (taking and
 * validating requests) and blk_io.c (io_uring or synchronous I/O). */
#ifndef CVISOR_VIRTIO_BLK_PRIV_H
#define CVISOR_VIRTIO_BLK_PRIV_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvisor/qcow2.h"
#include "cvisor/virtio_blk.h"

struct blk_seg {
	uint64_t off, len; /* bytes */
	bool unmap;
};

/* One request from pop to push. The I/O is a sequence of steps (a readv,
 * its remainder after a short read, one fallocate per segment, ...), one
 * at a time, each either an SQE or a synchronous system call. */
struct blk_req {
	struct virtq_elem elem; /* status: its last device-writable byte */
	/* Read / write: the data still to transfer, a slice of elem without
	 * header and status (re-cut after a short transfer). Zero writes
	 * point it at a buffer of zeros instead. */
	struct virtq_iov data;
	uint32_t type;
	uint64_t off, len, done; /* bytes: image offset, length, completed */
	struct blk_seg segs[VIRTIO_BLK_MAX_DWZ_SEG];
	unsigned int nseg, seg_pos;
	int zero_mode;	 /* write-zeroes: 0 fallocate, 1 punch, 2 write */
	bool use_buf_fd; /* O_DIRECT refused this request's buffers */
	unsigned int retries;
	uint32_t used_len; /* bytes written into the guest's buffers */
	uint16_t queue, slot;
	bool in_kernel; /* an SQE for this request is queued or running */
};

struct blk_queue {
	struct blk_req *reqs; /* VIRTIO_BLK_INFLIGHT slots */
	uint16_t free[VIRTIO_BLK_INFLIGHT];
	unsigned int nfree;
	bool kicked;	/* the guest notified us */
	bool throttled; /* stopped with every slot busy: resume on completion */
	bool rate_wait; /* stopped by the rate limit: resume on the timer */
	bool used;	/* pushed since the last interrupt check */
};

struct blk {
	struct virtio_dev_ops ops; /* per device: num_queues varies */
	struct virtio_dev *dev;
	struct virtio_blk_config cfg;
	int fd, fd_buf;	     /* fd_buf: without O_DIRECT (== fd unless direct) */
	struct qcow2 *qcow2; /* a qcow2 image: requests go through it */
	uint64_t capacity;
	unsigned int nq;
	struct blk_queue q[VIRTIO_MAX_QUEUES];
	bool dsync;    /* FLUSH offered but not negotiated: write through */
	bool quiesced; /* virtio_blk_quiesce: take no new requests */
	bool draining; /* reset: finish in-flight I/O without pushing */
	struct evloop *loop;
	int efd; /* io_uring completions, and deferred kicks */
	bool have_ring;
	bool async_rw, async_fsync, async_fallocate; /* from the probe */
	bool async_rw1;	  /* IORING_OP_READ / WRITE: one buffer, no iovec */
	bool fixed_files; /* fd and fd_buf registered as fixed files 0 and 1 */
	struct io_uring ring;
	/* The rate limit (all queues together) and its wake-up; dev->lock. */
	struct rate_limiter rl;
	struct rate_timer rate_timer;
	unsigned int in_kernel, sq_pending;
	_Atomic uint64_t *read_bytes, *write_bytes; /* the VM's totals */
	struct virtio_blk_stats stats;		    /* this disk's; dev->lock */
	/* Storage migration: VIRTIO_BLK_TRACK_BLOCK blocks written since the
	 * last virtio_blk_track_take (NULL when not tracking); dev->lock. */
	uint64_t *written;
	uint64_t nblocks;
};

/* Set up the ring (or note why not) and the eventfd. 0 or -errno. */
int blk_io_init(struct blk *b);
void blk_io_exit(struct blk *b);

/* Start the request's I/O: queue its first SQE, or do it all now and call
 * blk_req_done. */
void blk_io_start(struct blk *b, struct blk_req *r);

/* Submit queued SQEs. */
void blk_io_submit(struct blk *b);

/* Handle the completions that are ready (wait for at least one first if
 * wait). Returns how many. */
unsigned int blk_io_reap(struct blk *b, bool wait);

/* Wait until no request is in the kernel. */
void blk_io_drain(struct blk *b);

/* Wake the completion handler on the main loop (deferred kick). */
void blk_io_poke(struct blk *b);

/* blk_qcow2.c: run a request on a qcow2 image synchronously and complete
 * it; false if it is a read of plain data mapped to one host range, with
 * r->off now that host offset, for blk_io.c to run as on a raw image. */
bool blk_qcow2_start(struct blk *b, struct blk_req *r);

/* blk_req.c: the request's I/O is over with this status; push it to the
 * used ring (unless the device is draining for a reset) and free its slot. */
void blk_req_done(struct blk *b, struct blk_req *r, uint8_t status);

/* blk_req.c: process kicked and resumable queues, submit, reap what
 * completed, and interrupt the guest once per queue. d->lock held. */
void blk_run(struct blk *b);

/* blk_req.c: the rate limit's timer fired: run the queues it held. */
void blk_rate_event(void *opaque, int fd, uint32_t events);

/* blk.c: note that [off, off+len) of the image may have changed. */
void blk_track_write(struct blk *b, uint64_t off, uint64_t len);

/* blk_req.c: requests taken from the rings and not yet completed. */
unsigned int blk_busy(const struct blk *b);

#endif
