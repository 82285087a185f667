/* vq_driver.c - the guest driver's side of split virtqueues and of device
 * initialization, for tests, fuzzers and benchmarks (see vq_driver.h).
 * Ring layout from virtio 1.2 2.7: desc {le64 addr, le32 len, le16 flags,
 * le16 next}[size]; avail {le16 flags, idx, ring[size], used_event}; used
 * {le16 flags, idx, {le32 id, le32 len}[size], avail_event}. */
#include "vq_driver.h"

#include <pthread.h>
#include <string.h>

void vqd_wr16(uint8_t *ram, uint64_t gpa, uint16_t v)
{
	ram[gpa] = (uint8_t)v;
	ram[gpa + 1] = (uint8_t)(v >> 8);
}

uint16_t vqd_rd16(const uint8_t *ram, uint64_t gpa)
{
	return (uint16_t)(ram[gpa] | ram[gpa + 1] << 8);
}

uint32_t vqd_rd32(const uint8_t *ram, uint64_t gpa)
{
	return vqd_rd16(ram, gpa) | (uint32_t)vqd_rd16(ram, gpa + 2) << 16;
}

static void wr32(uint8_t *ram, uint64_t gpa, uint32_t v)
{
	vqd_wr16(ram, gpa, (uint16_t)v);
	vqd_wr16(ram, gpa + 2, (uint16_t)(v >> 16));
}

void vqd_init(struct vqd *q, uint8_t *ram, uint16_t size, uint64_t desc, uint64_t avail,
	      uint64_t used)
{
	*q = (struct vqd){ .ram = ram, .size = size, .desc = desc, .avail = avail, .used = used };
}

void vqd_clear(struct vqd *q)
{
	memset(q->ram + q->desc, 0, 16u * q->size);
	memset(q->ram + q->avail, 0, 6u + 2u * q->size);
	memset(q->ram + q->used, 0, 6u + 8u * q->size);
	q->avail_idx = q->used_seen = q->next_desc = 0;
}

void vqd_desc(const struct vqd *q, uint64_t table, unsigned int i, uint64_t addr, uint32_t len,
	      uint16_t flags, uint16_t next)
{
	uint64_t d = table + 16u * (uint64_t)i;

	wr32(q->ram, d, (uint32_t)addr);
	wr32(q->ram, d + 4, (uint32_t)(addr >> 32));
	wr32(q->ram, d + 8, len);
	vqd_wr16(q->ram, d + 12, flags);
	vqd_wr16(q->ram, d + 14, next);
}

uint16_t vqd_chain(const struct vqd *q, uint16_t first, const struct vqd_buf *b, unsigned int n)
{
	for (unsigned int k = 0; k < n; k++) {
		uint16_t i = (uint16_t)((first + k) % q->size);
		uint16_t flags =
			(uint16_t)((k + 1 < n ? VQD_F_NEXT : 0) | (b[k].write ? VQD_F_WRITE : 0));

		vqd_desc(q, q->desc, i, b[k].gpa, b[k].len, flags, (uint16_t)((i + 1) % q->size));
	}
	return first;
}

void vqd_offer(struct vqd *q, uint16_t head)
{
	vqd_wr16(q->ram, q->avail + 4 + 2u * (q->avail_idx % q->size), head);
	q->avail_idx++;
}

void vqd_publish(struct vqd *q)
{
	/* 2.7.13.3.1: the entries and descriptors before the index. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vqd_wr16(q->ram, q->avail + 2, q->avail_idx);
}

void vqd_avail(struct vqd *q, uint16_t head)
{
	vqd_offer(q, head);
	vqd_publish(q);
}

uint16_t vqd_add(struct vqd *q, const struct vqd_buf *b, unsigned int n)
{
	uint16_t head = vqd_chain(q, q->next_desc, b, n);

	q->next_desc = (uint16_t)((q->next_desc + n) % q->size);
	vqd_avail(q, head);
	return head;
}

uint16_t vqd_used_idx(const struct vqd *q)
{
	uint16_t idx = vqd_rd16(q->ram, q->used + 2);

	/* The entries after the index that published them (2.7.14). */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return idx;
}

uint32_t vqd_used_id(const struct vqd *q, uint16_t i)
{
	return vqd_rd32(q->ram, q->used + 4 + 8u * (i % q->size));
}

uint32_t vqd_used_len(const struct vqd *q, uint16_t i)
{
	return vqd_rd32(q->ram, q->used + 8 + 8u * (i % q->size));
}

int vqd_used(struct vqd *q, uint32_t *id, uint32_t *len)
{
	if (vqd_used_idx(q) == q->used_seen)
		return 0;
	if (id)
		*id = vqd_used_id(q, q->used_seen);
	if (len)
		*len = vqd_used_len(q, q->used_seen);
	q->used_seen++;
	return 1;
}

void vqd_configure(const struct vqd *q, struct virtq *vq)
{
	vq->size = q->size;
	vq->desc_gpa = q->desc;
	vq->avail_gpa = q->avail;
	vq->used_gpa = q->used;
}

void vqd_dev_status(struct virtio_dev *d, uint8_t status)
{
	pthread_mutex_lock(&d->lock);
	virtio_dev_set_status(d, status);
	pthread_mutex_unlock(&d->lock);
}

int vqd_dev_start(struct virtio_dev *d, uint64_t features, const struct vqd *q, unsigned int nq)
{
	const uint8_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	bool ok;

	vqd_dev_status(d, st);
	virtio_dev_set_driver_features(d, 0, (uint32_t)features);
	virtio_dev_set_driver_features(d, 1, (uint32_t)(features >> 32));
	vqd_dev_status(d, st | VIRTIO_STATUS_FEATURES_OK);
	/* Refused or not, go on as a careless driver would: DRIVER_OK
	 * without FEATURES_OK must not activate the device either. */
	ok = d->status & VIRTIO_STATUS_FEATURES_OK;
	for (unsigned int i = 0; i < nq && i < VIRTIO_MAX_QUEUES; i++) {
		vqd_configure(&q[i], &d->vqs[i]);
		d->vqs[i].ready = true;
	}
	vqd_dev_status(d, st | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	return ok && d->active ? 0 : -1;
}

static void dev_signal(struct virtio_dev *d, uint16_t vector, uint8_t isr)
{
	struct vqd_dev *t = d->transport.ctx;

	(void)vector;
	if (isr == VIRTIO_ISR_CONFIG)
		t->config_irqs++;
	else
		t->queue_irqs++;
}

int vqd_dev_up(struct vqd_dev *t, uint64_t features, unsigned int nq)
{
	t->dev.transport = (struct virtio_transport){ .signal = dev_signal, .ctx = t };
	for (unsigned int i = 0; i < nq && i < VQD_QUEUES; i++) {
		uint64_t base = VQD_RINGS + i * 0x1000u;

		vqd_init(&t->vq[i], t->ram, VQD_SIZE, base, base + 0x100, base + 0x200);
		vqd_clear(&t->vq[i]);
	}
	return vqd_dev_start(&t->dev, features | 1ULL << VIRTIO_F_VERSION_1, t->vq,
			     nq < VQD_QUEUES ? nq : VQD_QUEUES);
}
