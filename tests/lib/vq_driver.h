/* vq_driver.h - the guest driver's side of split virtqueues (virtio 1.2
 * 2.7) and of device initialization (3.1.1), written from the spec
 * independently of src/virtio/virtq.c. The one driver that every unit
 * test, fuzzer and benchmark harness playing the guest uses (the
 * freestanding tiny guests have their own, tests/kvm/guests/virtio_drv.*).
 *
 * Guest RAM is a host buffer at guest-physical 0: gpa g is ram + g. Nothing
 * here checks addresses, so a test can lay out hostile rings and chains;
 * nothing here asserts either, so fuzzers and benchmarks link it as well. */
#ifndef CVISOR_TEST_VQ_DRIVER_H
#define CVISOR_TEST_VQ_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "cvisor/guest_mem.h"
#include "cvisor/virtio.h"

/* Descriptor flags (2.7.5). */
#define VQD_F_NEXT 1
#define VQD_F_WRITE 2
#define VQD_F_INDIRECT 4

/* One buffer of a chain: device-writable if write. */
struct vqd_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* One queue as the driver keeps it: where its rings are, and its indices. */
struct vqd {
	uint8_t *ram;
	uint16_t size;
	uint64_t desc, avail, used; /* guest-physical */
	uint16_t avail_idx;	    /* the driver's shadow of avail->idx */
	uint16_t used_seen;	    /* used entries read back by vqd_used */
	uint16_t next_desc;	    /* where vqd_add lays out the next chain */
};

/* Little-endian loads and stores at a guest-physical address. */
void vqd_wr16(uint8_t *ram, uint64_t gpa, uint16_t v);
uint16_t vqd_rd16(const uint8_t *ram, uint64_t gpa);
uint32_t vqd_rd32(const uint8_t *ram, uint64_t gpa);

/* A queue of `size` entries with its rings at these addresses, indices 0.
 * Guest RAM is not touched. */
void vqd_init(struct vqd *q, uint8_t *ram, uint16_t size, uint64_t desc, uint64_t avail,
	      uint64_t used);

/* Zero the queue's three rings and its indices, as a driver starting over
 * on freshly allocated rings. */
void vqd_clear(struct vqd *q);

/* Write descriptor i of the table at gpa `table` (the queue's own, q->desc,
 * or an indirect table): {le64 addr, le32 len, le16 flags, le16 next}. */
void vqd_desc(const struct vqd *q, uint64_t table, unsigned int i, uint64_t addr, uint32_t len,
	      uint16_t flags, uint16_t next);

/* Lay out b[0..n) in q's descriptor table from index `first` on (wrapping
 * at q->size), linked with NEXT. Returns the head, first. Not available yet. */
uint16_t vqd_chain(const struct vqd *q, uint16_t first, const struct vqd_buf *b, unsigned int n);

/* Put head in the next avail ring entry without publishing it (2.7.13.2). */
void vqd_offer(struct vqd *q, uint16_t head);

/* Publish the offered entries: store avail->idx, with release order after
 * the ring entries and descriptors (2.7.13.3). */
void vqd_publish(struct vqd *q);

/* vqd_offer then vqd_publish: make one chain available (any head, even an
 * invalid one). */
void vqd_avail(struct vqd *q, uint16_t head);

/* Lay out a chain at q->next_desc, advance it, make the chain available.
 * Returns the head. */
uint16_t vqd_add(struct vqd *q, const struct vqd_buf *b, unsigned int n);

/* The device's used->idx (acquire). */
uint16_t vqd_used_idx(const struct vqd *q);

/* Used ring entry i (modulo the size): the head it returns, and the bytes
 * the device wrote (2.7.8). */
uint32_t vqd_used_id(const struct vqd *q, uint16_t i);
uint32_t vqd_used_len(const struct vqd *q, uint16_t i);

/* The next used entry not read yet: 1 with *id and *len (either may be
 * NULL), or 0 when the device has returned nothing more. */
int vqd_used(struct vqd *q, uint32_t *id, uint32_t *len);

/* Write q's size and ring addresses into the device's queue registers, as
 * a transport would (vq->ready untouched). */
void vqd_configure(const struct vqd *q, struct virtq *vq);

/* A status register write as the transports make it: under d->lock. */
void vqd_dev_status(struct virtio_dev *d, uint8_t status);

/* 3.1.1: ACKNOWLEDGE | DRIVER, the driver's features as given (the caller
 * adds VIRTIO_F_VERSION_1), FEATURES_OK, queue i configured from q[i] and
 * enabled, DRIVER_OK. Returns 0 if the device kept FEATURES_OK and is
 * active, else -1 (a fuzzer's device may refuse either). */
int vqd_dev_start(struct virtio_dev *d, uint64_t features, const struct vqd *q, unsigned int nq);

/* Defaults for vqd_dev_up: VQD_SIZE entries a queue, queue i's descriptor
 * table at VQD_RINGS + i * 0x1000, its avail ring 0x100 and its used ring
 * 0x200 after it; RAM from VQD_RINGS + VQD_QUEUES * 0x1000 on is free. */
#define VQD_SIZE 16
#define VQD_QUEUES 4
#define VQD_RINGS 0x10000u

/* A device under test with its guest driver: RAM, the device, its queues,
 * the interrupts it sent. */
struct vqd_dev {
	uint8_t *ram;
	struct guest_mem mem;
	struct virtio_dev dev;
	struct vqd vq[VQD_QUEUES];
	unsigned int queue_irqs, config_irqs;
};

/* Start t->dev with features (VIRTIO_F_VERSION_1 added) and nq queues at
 * the default places, on fresh rings; t->dev's interrupts then count in
 * t->queue_irqs and t->config_irqs. Returns what vqd_dev_start does. */
int vqd_dev_up(struct vqd_dev *t, uint64_t features, unsigned int nq);

#endif
