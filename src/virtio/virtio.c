/* virtio.c - status, feature negotiation, reset, interrupts and state of a
 * virtio device, shared by both transports (virtio 1.2 sections 2 and 3). */
#include "cvisor/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define VIRTIO_DEV_STATE_VERSION 1

static uint64_t offered_features(struct virtio_dev *d)
{
	uint64_t f = d->ops->features ? d->ops->features(d) : 0;

	return f | (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_EVENT_IDX) |
	       (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
}

void virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, void *priv,
		     const struct guest_mem *mem, const char *label)
{
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	d->priv = priv;
	d->mem = mem;
	pthread_mutex_init(&d->lock, NULL);
	snprintf(d->label, sizeof(d->label), "%s", label);
	d->device_features = offered_features(d);
	d->msix_config = VIRTIO_NO_VECTOR;
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		d->vqs[i].max_size = i < ops->num_queues ? ops->queue_max : 0;
		d->vqs[i].mem = mem;
		d->vqs[i].dma_off = &d->dma_off;
		virtq_reset(&d->vqs[i]);
	}
}

static void dev_reset(struct virtio_dev *d)
{
	if (d->ops->reset)
		d->ops->reset(d);
	/* fault_logged survives: a guest that faults and resets in a loop
	 * must not flood the host's log. */
	d->active = false;
	d->status = 0;
	d->driver_features = 0;
	atomic_store(&d->isr, 0);
	d->msix_config = VIRTIO_NO_VECTOR;
	for (unsigned int i = 0; i < d->ops->num_queues; i++)
		virtq_reset(&d->vqs[i]);
}

static bool activate(struct virtio_dev *d)
{
	bool event_idx = d->driver_features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
	bool indirect = d->driver_features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);

	for (unsigned int i = 0; i < d->ops->num_queues; i++) {
		struct virtq *q = &d->vqs[i];

		q->event_idx = event_idx;
		q->indirect = indirect;
		if (q->ready && virtq_validate(q)) {
			virtio_dev_fault(d, "a queue's size or ring addresses are invalid");
			return false;
		}
	}
	if (d->ops->activate && d->ops->activate(d)) {
		virtio_dev_fault(d, "the device could not be activated");
		return false;
	}
	d->active = true;
	cv_debug("%s: driver ready, features %#llx", d->label,
		 (unsigned long long)d->driver_features);
	return true;
}

void virtio_dev_set_status(struct virtio_dev *d, uint8_t status)
{
	uint8_t old = d->status;

	if (status == 0) {
		dev_reset(d);
		return;
	}
	/* 2.1.2: the driver only adds bits until it resets the device; a write
	 * that clears one (to renegotiate live) is a protocol error. */
	if ((old & ~VIRTIO_STATUS_NEEDS_RESET) & ~status) {
		virtio_dev_fault(d, "the driver cleared status bits without a reset");
		return;
	}
	/* 3.1.1: FEATURES_OK only sticks for an acceptable feature set. */
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		if ((d->driver_features & ~d->device_features) ||
		    !(d->driver_features & (1ULL << VIRTIO_F_VERSION_1)))
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	}
	/* Once NEEDS_RESET is set only a reset clears it. */
	d->status = status | (old & VIRTIO_STATUS_NEEDS_RESET);
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
	    (status & VIRTIO_STATUS_FEATURES_OK) && !(status & VIRTIO_STATUS_FAILED))
		activate(d);
}

void virtio_dev_set_driver_features(struct virtio_dev *d, uint32_t sel, uint32_t value)
{
	if (sel > 1 || (d->status & VIRTIO_STATUS_FEATURES_OK))
		return;
	d->driver_features &= ~(0xffffffffULL << (32 * sel));
	d->driver_features |= (uint64_t)value << (32 * sel);
}

uint32_t virtio_dev_get_device_features(const struct virtio_dev *d, uint32_t sel)
{
	return sel > 1 ? 0 : (uint32_t)(d->device_features >> (32 * sel));
}

void virtio_dev_notify(struct virtio_dev *d, unsigned int q)
{
	pthread_mutex_lock(&d->lock);
	if (d->active && !(d->status & VIRTIO_STATUS_NEEDS_RESET) && q < d->ops->num_queues &&
	    d->vqs[q].ready && d->ops->notify)
		d->ops->notify(d, q);
	pthread_mutex_unlock(&d->lock);
}

void virtio_dev_rekick(struct virtio_dev *d, unsigned int q)
{
	if (d->transport.kick)
		d->transport.kick(d, q);
}

void virtio_dev_used(struct virtio_dev *d, unsigned int q)
{
	if (q >= d->ops->num_queues || !virtq_should_notify(&d->vqs[q]))
		return;
	atomic_fetch_or(&d->isr, VIRTIO_ISR_QUEUE);
	if (d->transport.signal)
		d->transport.signal(d, d->vqs[q].msix_vector, VIRTIO_ISR_QUEUE);
}

void virtio_dev_config_changed(struct virtio_dev *d)
{
	d->config_generation++;
	atomic_fetch_or(&d->isr, VIRTIO_ISR_CONFIG);
	if (d->transport.signal)
		d->transport.signal(d, d->msix_config, VIRTIO_ISR_CONFIG);
}

void virtio_dev_fault(struct virtio_dev *d, const char *why)
{
	if (!d->fault_logged) {
		d->fault_logged = true;
		cv_warn("%s: %s; device needs reset", d->label, why);
	}
	d->active = false;
	if (d->status & VIRTIO_STATUS_DRIVER_OK) {
		d->status |= VIRTIO_STATUS_NEEDS_RESET;
		virtio_dev_config_changed(d);
	}
}

void virtio_dev_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	memset(data, 0, len);
	if (off >= d->ops->config_len || !d->ops->config_read)
		return;
	if (len > d->ops->config_len - off)
		len = (uint32_t)(d->ops->config_len - off);
	d->ops->config_read(d, off, data, len);
}

void virtio_dev_config_write(struct virtio_dev *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	if (off >= d->ops->config_len || !d->ops->config_write)
		return;
	if (len > d->ops->config_len - off)
		len = (uint32_t)(d->ops->config_len - off);
	d->ops->config_write(d, off, data, len);
}

int virtio_dev_save(struct virtio_dev *d, struct state_buf *out)
{
	int r = 0;

	pthread_mutex_lock(&d->lock);
	state_put_u32(out, VIRTIO_DEV_STATE_VERSION);
	state_put_u32(out, d->ops->device_id);
	state_put_u32(out, d->ops->num_queues);
	state_put_u64(out, d->device_features);
	state_put_u64(out, d->driver_features);
	state_put_u8(out, d->status);
	state_put_u8(out, atomic_load(&d->isr));
	state_put_u8(out, d->config_generation);
	state_put_u16(out, d->msix_config);
	state_put_u8(out, d->active);
	for (unsigned int i = 0; i < d->ops->num_queues; i++)
		virtq_save(&d->vqs[i], out);
	if (d->ops->save)
		r = d->ops->save(d, out);
	pthread_mutex_unlock(&d->lock);
	return r ? r : out->err;
}

int virtio_dev_load(struct virtio_dev *d, struct state_rd *in)
{
	uint32_t version = state_get_u32(in), id = state_get_u32(in), nq = state_get_u32(in);
	uint64_t dev_f = state_get_u64(in), drv_f = state_get_u64(in);
	uint8_t status = state_get_u8(in), isr = state_get_u8(in), gen = state_get_u8(in);
	uint16_t msix_config = state_get_u16(in);
	bool active = state_get_u8(in);
	int r;

	if (in->err || version != VIRTIO_DEV_STATE_VERSION || id != d->ops->device_id ||
	    nq != d->ops->num_queues || dev_f != d->device_features || (drv_f & ~dev_f) ||
	    isr > (VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG))
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	for (unsigned int i = 0; i < nq; i++) {
		d->vqs[i].mem = d->mem;
		d->vqs[i].max_size = d->ops->queue_max;
		if ((r = virtq_load(&d->vqs[i], in)))
			goto out;
	}
	d->driver_features = drv_f;
	d->status = status;
	atomic_store(&d->isr, isr);
	d->config_generation = gen;
	d->msix_config = msix_config;
	d->active = false;
	r = d->ops->load ? d->ops->load(d, in) : 0;
	if (!r && in->err)
		r = -EINVAL;
	if (!r && active)
		r = d->ops->activate ? d->ops->activate(d) : 0;
	if (!r)
		d->active = active;
out:
	pthread_mutex_unlock(&d->lock);
	return r;
}
