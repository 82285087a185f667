/* virtio_drv.h - a minimal virtio 1.x driver for the tiny test guests:
 * modern virtio-pci (virtio 1.2 section 4.1, found by scanning bus 0 through
 * configuration mechanism #1) and virtio-mmio version 2 (4.2, announced as
 * "virtio_mmio.device=SIZE@BASE:GSI" words on the command line), split
 * queues, one request in flight per queue, completion by polling the used
 * ring with a bounded wait. Interrupts are optional: MSI-X vectors for PCI,
 * an IOAPIC redirection entry for an MMIO device's GSI.
 *
 * Everything the driver writes is what the spec lets a driver write, except
 * through the raw helpers (vq_put_head, vq_setup with any address, ...),
 * which the hostile test uses to hand the device malformed queues. */
#ifndef TINY_VIRTIO_DRV_H
#define TINY_VIRTIO_DRV_H

#include "lib.h"

/* Device types (virtio 1.2 section 5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19

/* Status bits (2.1). */
#define VIRTIO_S_ACKNOWLEDGE 1
#define VIRTIO_S_DRIVER 2
#define VIRTIO_S_DRIVER_OK 4
#define VIRTIO_S_FEATURES_OK 8
#define VIRTIO_S_NEEDS_RESET 64
#define VIRTIO_S_FAILED 128

/* Feature bits (section 6 and 5.2.3). */
#define VIRTIO_F_INDIRECT_DESC (1ull << 28)
#define VIRTIO_F_EVENT_IDX (1ull << 29)
#define VIRTIO_F_VERSION_1 (1ull << 32)

/* Descriptor flags (2.7.5). */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

#define VIRTIO_NO_VECTOR 0xffff

#define VIRTIO_T_PCI 1
#define VIRTIO_T_MMIO 2

#define VDEV_MAX 8
#define VQ_MAX 3			 /* queues per device this driver sets up (vsock has 3) */
#define VQ_SIZE_CAP 64			 /* largest queue size it asks for */
/* A request, an interrupt or a status change that must come: ~15-30 s of TSC
 * cycles, a bound on a lost one (a loaded host is slower, never failed for
 * it). A window in which something must NOT happen is the short one. */
#define VIRTIO_TIMEOUT_TSC 60000000000ull
#define VIRTIO_QUIET_TSC 2000000000ull /* ~0.5-1 s */

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};
struct vring_avail {
	uint16_t flags, idx, ring[];
};
struct vring_used_elem {
	uint32_t id, len;
};
struct vring_used {
	uint16_t flags, idx;
	struct vring_used_elem ring[];
};

struct vq {
	uint16_t index, size;
	bool ready;
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	uint16_t avail_idx, last_used, next_desc, head;
	uint64_t notify; /* PCI: the address to write the queue index to */
};

struct vdev {
	int transport;
	uint32_t type;
	char name[24]; /* "pci 00:01.0", "mmio 0xd8000000" */
	/* MMIO */
	uint64_t base;
	uint32_t gsi;
	/* PCI */
	uint32_t bdf; /* bus << 8 | dev << 3 | fn */
	uint64_t common, isr, devcfg, notify_base;
	uint32_t notify_mult;
	uint8_t msix_cap;
	uint16_t msix_n;
	uint64_t msix_table, msix_pba;

	uint64_t offered, features;
	struct vq vq[VQ_MAX];
	uint8_t *ring_mem; /* one page per queue: desc, avail, used */
};

/* What vq_wait saw. */
#define VQ_DONE 0
#define VQ_NEEDS_RESET 1
#define VQ_TIMEOUT 2

struct vbuf {
	uint64_t addr;
	uint32_t len;
	bool write; /* device-writable */
};

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
static inline void mb(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Result lines: "virtio: PASS ...", "virtio: FAIL ..." (counted in
 * virtio_failures), "virtio: INFO ...". */
extern int virtio_failures;
void vpass(const char *fmt, ...) PRINTF(1, 2);
void vfail(const char *fmt, ...) PRINTF(1, 2);
void vinfo(const char *fmt, ...) PRINTF(1, 2);

/* Find every virtio device: the PCI bus first (by slot), then the MMIO
 * devices of the command line (in order). Prints one "virtio: dev ..." line
 * per device. Returns how many were filled in (at most max). */
int virtio_probe(struct vdev *devs, int max);
/* A scratch area of guest RAM past the image (1 MiB, page aligned), for
 * buffers the hostile test lets a broken device scribble over. */
uint8_t *virtio_scratch(void);

uint8_t vdev_status(struct vdev *d);
void vdev_set_status(struct vdev *d, uint8_t s);
/* Write 0 and wait (bounded) for the status to read back 0 (4.1.4.3.2).
 * Also forgets the queues. 0 or -1. */
int vdev_reset(struct vdev *d);
uint64_t vdev_device_features(struct vdev *d);
void vdev_write_features(struct vdev *d, uint64_t f);
/* Reset, ACKNOWLEDGE, DRIVER, accept offered & (want | VERSION_1), set
 * FEATURES_OK and check that it stuck. 0 or -1 (a line says why). */
int vdev_negotiate(struct vdev *d, uint64_t want);
/* Largest queue size the device offers for queue q (0: no such queue). */
uint16_t vq_max_size(struct vdev *d, unsigned int q);
/* Select queue q whatever num_queues says and read its size register. */
uint16_t vq_size_raw(struct vdev *d, unsigned int q);
/* Program queue q with explicit ring addresses and enable it. Returns 0,
 * -1 if the queue does not exist, -2 if the enable did not stick. */
int vq_setup_raw(struct vdev *d, unsigned int q, uint16_t size, uint64_t desc, uint64_t avail,
		 uint64_t used, uint16_t vector);
/* Program queue q on the device's own ring page, size min(max, cap). */
int vq_setup(struct vdev *d, unsigned int q, uint16_t cap, uint16_t vector);
/* Set DRIVER_OK; 0 if it reads back set without NEEDS_RESET/FAILED. */
int vdev_driver_ok(struct vdev *d);
/* vdev_negotiate + vq_setup for queues 0..nq-1 + vdev_driver_ok. */
int vdev_init(struct vdev *d, uint64_t want, unsigned int nq, uint16_t vector);

/* Device-specific configuration space, accessed with the field's width. */
uint8_t vdev_cfg8(struct vdev *d, uint32_t off);
uint16_t vdev_cfg16(struct vdev *d, uint32_t off);
uint32_t vdev_cfg32(struct vdev *d, uint32_t off);
/* A 64-bit field read consistently through config_generation (4.1.4.3). */
uint64_t vdev_cfg64(struct vdev *d, uint32_t off);
uint8_t vdev_config_generation(struct vdev *d);

/* Chain bufs into descriptors (from the queue's next free slot), publish
 * the head and notify. One request in flight per queue. Returns the head. */
uint16_t vq_submit(struct vdev *d, unsigned int q, const struct vbuf *b, int n);
/* vq_submit without the notification. */
uint16_t vq_add(struct vdev *d, unsigned int q, const struct vbuf *b, int n);
/* Publish head in the avail ring, no notification. */
void vq_publish(struct vdev *d, unsigned int q, uint16_t head);
/* With EVENT_IDX (2.7.7.2, 2.7.10): used_event, which the driver writes
 * after the avail ring, and avail_event, which the device writes after
 * the used ring. */
static inline volatile uint16_t *vq_used_event(struct vq *q)
{
	return &q->avail->ring[q->size];
}
static inline volatile uint16_t *vq_avail_event(struct vq *q)
{
	return (volatile uint16_t *)&q->used->ring[q->size];
}
/* Must the side that published up to new_idx (from old_idx) notify the
 * other, which asked for event_idx? (vring_need_event, 2.7.10.) */
static inline bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}
/* Publish head `head` in the avail ring as is (the descriptors are the
 * caller's) and notify. */
void vq_put_head(struct vdev *d, unsigned int q, uint16_t head);
void vq_notify(struct vdev *d, unsigned int q);
/* Wait for the next used entry: VQ_DONE (with *len, and *id), VQ_NEEDS_RESET
 * if the status shows it, VQ_TIMEOUT. */
int vq_wait(struct vdev *d, unsigned int q, uint32_t *id, uint32_t *len);
/* vq_wait with its own bound in TSC cycles (VIRTIO_QUIET_TSC: a request
 * that must not be served). */
int vq_wait_tsc(struct vdev *d, unsigned int q, uint32_t *id, uint32_t *len, uint64_t limit);
/* Submit and wait; checks the used id is the head. Returns VQ_* or -1 for
 * a wrong id (printed). */
int vq_request(struct vdev *d, unsigned int q, const struct vbuf *b, int n, uint32_t *len);

/* Raw register pokes for the hostile test: select queue q and write its
 * size and descriptor address, then 1 to its enable register if enable;
 * no checks, no driver state changed. */
void vq_poke(struct vdev *d, unsigned int q, uint16_t size, uint64_t desc, bool enable);
/* Write `value` where a notification for queue 0 goes (PCI: queue 0's
 * notify address; MMIO: QueueNotify). */
void vdev_notify_raw(struct vdev *d, uint32_t value);
/* Wait (bounded) until the status has any bit of mask. */
bool vdev_wait_status(struct vdev *d, uint8_t mask);
/* PCI: the command register (bit 1 memory space, bit 2 bus master). */
uint16_t vdev_pci_command(struct vdev *d);
void vdev_set_pci_command(struct vdev *d, uint16_t v);

/* ---- interrupts ---- */
/* Program MSI-X table entry `entry` to deliver `vector` to this CPU's
 * LAPIC, unmasked, and enable MSI-X. 0 or -1 (no MSI-X capability). */
int vdev_msix_enable(struct vdev *d, unsigned int entry, uint8_t vector);
void vdev_msix_disable(struct vdev *d);
void vdev_msix_mask(struct vdev *d, unsigned int entry, bool masked);
bool vdev_msix_pending(struct vdev *d, unsigned int entry);
/* Route GSI gsi through IOAPIC 0, edge, active high, to vector. -1 if the
 * pin does not exist. */
int ioapic_route(uint32_t gsi, uint8_t vector, bool masked);
/* virtio-mmio InterruptStatus / InterruptACK; PCI ISR (read clears). */
uint32_t vdev_isr(struct vdev *d);
void vdev_isr_ack(struct vdev *d, uint32_t bits);
/* LAPIC software-enabled, TPR 0, LINT0 masked, 8259s masked. */
void irq_prepare(void);

/* Little-endian helpers. */
void put_le32(uint8_t *p, uint32_t v);
void put_le64(uint8_t *p, uint64_t v);

#endif
