/* virtq.h - the virtqueue core (virtio 1.2 section 2.7, split ring), safe
 * against a hostile guest: every address through guest_mem_ptr, queue size
 * a power of two within the maximum, rings inside RAM and aligned, avail
 * index jumps bounded, a TTL on chains, bounded indirect tables, iov arrays
 * of fixed capacity.
 *
 * Threading: one thread owns a queue (pop, push, notify decisions); the
 * guest writes its side of the rings concurrently, which the core reads with
 * single atomic loads and the fences virtio 1.2 2.7.13 and 2.7.10 ask for. */
#ifndef CVISOR_VIRTQ_H
#define CVISOR_VIRTQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cvisor/guest_mem.h"
#include "cvisor/state.h"
#include "cvisor/util.h"

#define VIRTQ_MAX_SIZE 1024 /* largest queue size cvisor offers */
#define VIRTQ_MAX_IOV 260   /* segments in one request: 256 data + headers */

/* Feature bits the core understands (virtio 1.2 section 6). */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Ring layout flags (virtio 1.2 2.7.5, 2.7.6, 2.7.8). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

/* virtq_elem.head when no descriptor head could be taken (never a valid
 * head: sizes are at most VIRTQ_MAX_SIZE). */
#define VIRTQ_HEAD_NONE 0xffff

/* virtio-pci's VIRTIO_MSI_NO_VECTOR: no MSI-X vector assigned. */
#define VIRTQ_MSI_NO_VECTOR 0xffff

struct virtq {
	/* Set by the driver through the transport, validated by virtq_validate. */
	uint16_t size;
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t msix_vector;

	/* Device side. */
	uint16_t max_size;
	uint16_t last_avail;	 /* next avail ring entry to take */
	uint16_t used_idx;	 /* shadow of used->idx */
	uint16_t signalled_used; /* used_idx at the last interrupt (EVENT_IDX) */
	bool signalled_used_valid;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	const struct guest_mem *mem;
	/* The transport's "no DMA" flag (PCI bus mastering off), or NULL:
	 * while set, virtq_pop finds nothing. Kept across resets, like mem. */
	const _Atomic bool *dma_off;
};

/* One request popped from the avail ring: the chain's buffers as host
 * iovecs, device-readable ("out") first, then device-writable ("in").
 * Every iov lies inside one guest RAM region and has a non-zero length;
 * out_len and in_len are at most UINT32_MAX. */
struct virtq_elem {
	uint16_t head;
	unsigned int out_num, in_num;
	uint64_t out_len, in_len; /* total bytes each way */
	struct iovec iov[VIRTQ_MAX_IOV];
};

/* Which buffers of an element an accessor works on: the device-readable
 * ones ("out", the first out_num iovs) or the device-writable ones ("in",
 * the in_num iovs after them). Offsets count from the start of that part. */
enum virtq_dir { VIRTQ_OUT, VIRTQ_IN };

/* A byte range of one element's buffers as host iovecs, the one iovec type
 * every device hands to preadv, pwritev, io_uring, sendmsg or recvmsg. Its
 * capacity is an element's, so any range of any element fits: n entries
 * (none empty) covering len bytes. */
struct virtq_iov {
	unsigned int n;
	uint64_t len;
	struct iovec iov[VIRTQ_MAX_IOV];
};

/* Element accessors, for the data of a request. Offsets and lengths come
 * from the guest: they are checked against the element here (no addition
 * that can wrap), so a device copies or slices without walking e->iov
 * itself. An element that virtq_pop did not fill (out_num + in_num over
 * VIRTQ_MAX_IOV) is clamped to its capacity.
 *
 * Live migration: whatever cvisor writes into guest RAM must be marked
 * dirty (dirty.h). virtq_elem_write marks what it writes; virtq_push marks
 * the first `len` bytes of the writable buffers it reports. A slice the
 * device fills itself (preadv, io_uring, recvmsg) is covered by that push
 * when `len` counts every byte written; if the I/O may have written more
 * than it reports (a failed or short read), call virtq_elem_mark_dirty on
 * the slice's range when the I/O completes, before virtq_push. */

/* Copy up to len bytes from offset off of e's device-readable buffers to
 * dst. Returns the bytes copied: fewer than len when the readable part
 * ends first (0 when off is past it). Never reads a writable buffer. */
size_t virtq_elem_read(const struct virtq_elem *e, uint64_t off, void *dst, size_t len);

/* Copy up to len bytes from src into e's device-writable buffers at offset
 * off and mark them dirty. Returns the bytes copied: fewer than len when the
 * writable part ends first. Never writes a device-readable buffer. */
size_t virtq_elem_write(const struct virtq_elem *e, uint64_t off, const void *src, size_t len);

/* Fill *v with bytes [off, off + len) of e's readable (VIRTQ_OUT) or
 * writable (VIRTQ_IN) buffers, clipped to the end of that part. Returns
 * v->len, the bytes covered. Marks nothing (see above). */
uint64_t virtq_elem_slice(const struct virtq_elem *e, enum virtq_dir dir, uint64_t off,
			  uint64_t len, struct virtq_iov *v);

/* Mark bytes [off, off + len) of e's device-writable buffers dirty, clipped
 * to the writable part: for a slice the device filled (see above). */
void virtq_elem_mark_dirty(const struct virtq_elem *e, uint64_t off, uint64_t len);

/* Set up a queue for a device: guest memory, the largest size the device
 * offers (at most VIRTQ_MAX_SIZE), no dma_off flag, then virtq_reset. */
void virtq_init(struct virtq *q, const struct guest_mem *mem, uint16_t max_size);

/* Check the driver's configuration before the queue is used: size a power
 * of two in [1, max_size] (max_size <= VIRTQ_MAX_SIZE), each ring inside one
 * guest RAM region with its alignment (desc 16*size bytes at 16, avail
 * 6+2*size at 2, used 6+8*size at 4; virtio 1.2 2.7). mem must be set.
 * Returns 0 or -EINVAL. The transport sets ready only after this passes;
 * the other calls re-check it cheaply and do nothing on a bad queue. */
int virtq_validate(const struct virtq *q) CV_MUST;

/* Take the next available request. Returns 1 with *e filled, 0 if none is
 * pending (or the queue is not ready, or its device may not DMA now), or
 * -EINVAL if the guest put a
 * malformed chain or index there.
 *
 * On -EINVAL, e->out_num = e->in_num = 0 and:
 *  - e->head < size: the avail entry was consumed (last_avail advanced) and
 *    its chain is malformed. The device may fail just that request with
 *    virtq_push(q, e, 0) and go on, or set DEVICE_NEEDS_RESET (virtio 1.2
 *    2.1.2) and log once.
 *  - e->head == VIRTQ_HEAD_NONE: the queue itself is broken (avail idx more
 *    than size ahead of last_avail, 2.7.13.3, in which case last_avail is
 *    not advanced; or a head >= size, whose entry is consumed; or a queue
 *    that fails virtq_validate). Nothing can be returned to the driver: set
 *    DEVICE_NEEDS_RESET and log once. */
int virtq_pop(struct virtq *q, struct virtq_elem *e) CV_MUST;

/* Give back the request the last virtq_pop took (it returned 1), untouched
 * and not pushed: the next pop returns it again (QEMU's virtqueue_unpop).
 * A device that cannot serve it yet (no room, a rate limit) leaves it on
 * the ring this way. Only right after that pop. */
void virtq_unpop(struct virtq *q);

/* Return a request to the guest with `len` bytes written into its
 * device-writable buffers (clamped to e->in_len, virtio 1.2 2.7.8), and mark
 * those bytes dirty. Needs e->head and e->in_len, and e->iov for the marks
 * (an element rebuilt with only head and in_len marks nothing). Ignores a
 * head out of range (VIRTQ_HEAD_NONE) and a queue that is not ready. */
void virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t len);

/* After pushes: does the guest want an interrupt now (honours
 * VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX, 2.7.7.2)?
 * With EVENT_IDX it records used_idx as signalled, so call it once per
 * batch and send the interrupt when it returns true. */
bool virtq_should_notify(struct virtq *q);

/* Tell the guest whether it needs to notify us (used->flags NO_NOTIFY, or
 * avail_event = last_avail with EVENT_IDX, where disabling is a no-op;
 * 2.7.10). Returns true if avail->idx differs from last_avail after a full
 * fence: requests arrived meanwhile, pop again before sleeping (false, and
 * nothing written, while the device may not DMA). */
bool virtq_enable_notify(struct virtq *q, bool enable);

/* Back to the state after a device reset: not ready, size = max_size (what
 * virtio-pci reads back as queue_size), addresses and indices 0, no MSI-X
 * vector, no ring features. mem and max_size are kept. */
void virtq_reset(struct virtq *q);

/* Save / load the queue as LE fields (format in virtq.c). The caller sets
 * mem and max_size first (virtq_init); load validates everything it reads
 * (a ready queue as virtq_validate) and returns -EINVAL, leaving *q
 * untouched, on anything truncated or out of range. */
void virtq_save(const struct virtq *q, struct state_buf *out);
int virtq_load(struct virtq *q, struct state_rd *in) CV_MUST;

#endif
