/* vq_driver.h - a minimal split-ring driver (virtio 1.2 2.7), written from
 * the spec, for the device unit tests: queues in a guest RAM buffer of
 * RAM_SIZE bytes (define it before including), descriptor chains, kicks,
 * the used ring read back. Header-only. */
#ifndef CVISOR_TEST_VQ_DRIVER_H
#define CVISOR_TEST_VQ_DRIVER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/virtio.h"

#define QSZ 16
#define Q_BASE 0x10000u /* queue i: desc at Q_BASE + i * 0x1000, avail +0x100, used +0x200 */
#define BUF_BASE 0x20000u
#define F_NEXT 1
#define F_WRITE 2

struct buf {
	uint64_t gpa;
	uint32_t len;
	int write;
};

struct drv {
	uint8_t *ram;
	struct guest_mem mem;
	struct virtio_dev dev;
	uint16_t avail_idx[4], used_seen[4], next_desc[4];
	unsigned int queue_irqs, config_irqs;
};

static inline void drv_signal(struct virtio_dev *d, uint16_t vector, uint8_t isr)
{
	struct drv *t = d->transport.ctx;

	(void)vector;
	if (isr == VIRTIO_ISR_CONFIG)
		t->config_irqs++;
	else
		t->queue_irqs++;
}

static inline uint64_t q_desc(unsigned int q)
{
	return Q_BASE + q * 0x1000u;
}

static inline void w16(struct drv *t, uint64_t gpa, uint16_t v)
{
	memcpy(t->ram + gpa, &v, 2);
}

static inline uint32_t r32(struct drv *t, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, t->ram + gpa, 4);
	return v;
}

static inline void drv_status(struct drv *t, uint8_t s)
{
	pthread_mutex_lock(&t->dev.lock);
	virtio_dev_set_status(&t->dev, s);
	pthread_mutex_unlock(&t->dev.lock);
}

/* 3.1.1 driver initialization, with every queue at QSZ entries. */
static inline void drv_start(struct drv *t, uint64_t features, unsigned int nq)
{
	t->dev.transport = (struct virtio_transport){ .signal = drv_signal, .ctx = t };
	drv_status(t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	features |= 1ULL << VIRTIO_F_VERSION_1;
	virtio_dev_set_driver_features(&t->dev, 0, (uint32_t)features);
	virtio_dev_set_driver_features(&t->dev, 1, (uint32_t)(features >> 32));
	drv_status(t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_true(t->dev.status & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned int i = 0; i < nq; i++) {
		struct virtq *q = &t->dev.vqs[i];

		q->size = QSZ;
		q->desc_gpa = q_desc(i);
		q->avail_gpa = q_desc(i) + 0x100;
		q->used_gpa = q_desc(i) + 0x200;
		q->ready = true;
	}
	drv_status(t, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
			      VIRTIO_STATUS_DRIVER_OK);
	assert_true(t->dev.active);
}

/* Put a chain on queue q's avail ring (no kick). Returns the head. */
static inline uint16_t drv_add(struct drv *t, unsigned int q, const struct buf *b, unsigned int n)
{
	uint16_t head = t->next_desc[q];

	for (unsigned int i = 0; i < n; i++) {
		uint8_t *d = t->ram + q_desc(q) + 16u * t->next_desc[q];
		uint16_t flags = (uint16_t)((i + 1 < n ? F_NEXT : 0) | (b[i].write ? F_WRITE : 0));
		uint16_t next = (uint16_t)((t->next_desc[q] + 1) % QSZ);

		memcpy(d, &b[i].gpa, 8);
		memcpy(d + 8, &b[i].len, 4);
		memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
		t->next_desc[q] = next;
	}
	w16(t, q_desc(q) + 0x100 + 4 + 2u * (t->avail_idx[q] % QSZ), head);
	w16(t, q_desc(q) + 0x100 + 2, ++t->avail_idx[q]);
	return head;
}

/* Next used entry of queue q: 1 with id/len, or 0 if none. */
static inline int drv_used(struct drv *t, unsigned int q, uint32_t *id, uint32_t *len)
{
	uint16_t idx;

	memcpy(&idx, t->ram + q_desc(q) + 0x200 + 2, 2);
	if (idx == t->used_seen[q])
		return 0;
	*id = r32(t, q_desc(q) + 0x200 + 4 + 8u * (t->used_seen[q] % QSZ));
	*len = r32(t, q_desc(q) + 0x200 + 8 + 8u * (t->used_seen[q] % QSZ));
	t->used_seen[q]++;
	return 1;

#endif
