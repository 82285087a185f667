/* virtq.h - the virtqueue core (virtio 1.2 section 2.7, split ring), safe
 * against a hostile guest: every address through guest_mem_ptr, queue size
 * a power of two within the maximum, rings inside RAM and aligned, avail
 * index jumps bounded, a TTL on chains, bounded indirect tables, iov arrays
 * of fixed capacity. */
#ifndef CVISOR_VIRTQ_H
#define CVISOR_VIRTQ_H

#include <stdbool.h>
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
};

/* One request popped from the avail ring: the chain's buffers as host
 * iovecs, device-readable ("out") first, then device-writable ("in"). */
struct virtq_elem {
	uint16_t head;
	unsigned int out_num, in_num;
	uint64_t out_len, in_len; /* total bytes each way */
	struct iovec iov[VIRTQ_MAX_IOV];
};

/* Check the driver's configuration before the queue is used: size a power
 * of two in [1, max_size], each ring inside guest RAM with its alignment
 * (desc 16, avail 2, used 4). Returns 0 or -EINVAL. */
int virtq_validate(const struct virtq *q) CV_MUST;

/* Take the next available request. Returns 1 with *e filled, 0 if none is
 * pending, or -EINVAL if the guest put a malformed chain or index there (the
 * device should then fail the request or set DEVICE_NEEDS_RESET). */
int virtq_pop(struct virtq *q, struct virtq_elem *e) CV_MUST;

/* Return a request to the guest with `len` bytes written into its
 * device-writable buffers. */
void virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t len);

/* After pushes: does the guest want an interrupt now (honours
 * VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX)? */
bool virtq_should_notify(struct virtq *q);

/* Tell the guest whether it needs to notify us (used->flags or avail_event).
 * Returns true if more requests arrived meanwhile (re-check before sleeping). */
bool virtq_enable_notify(struct virtq *q, bool enable);

/* Back to the state after a device reset. */
void virtq_reset(struct virtq *q);

/* Save / load the queue (addresses, size, ready, indices) as LE fields.
 * load validates (size, alignment, RAM) and returns -EINVAL otherwise. */
void virtq_save(const struct virtq *q, struct state_buf *out);
int virtq_load(struct virtq *q, struct state_rd *in) CV_MUST;

#endif
