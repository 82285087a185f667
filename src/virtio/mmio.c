/* mmio.c - virtio-mmio transport, version 2 (virtio 1.2 section 4.2.2). */
#include "cvisor/virtio_mmio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cvisor/irq.h"

#define MMIO_MAGIC 0x74726976 /* "virt" */
#define MMIO_VERSION 2
#define MMIO_VENDOR 0x52564943 /* "CIVR" */
#define VIRTIO_MMIO_STATE_VERSION 1

enum {
	REG_MAGIC = 0x000,
	REG_VERSION = 0x004,
	REG_DEVICE_ID = 0x008,
	REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010,
	REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020,
	REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030,
	REG_QUEUE_NUM_MAX = 0x034,
	REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044,
	REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060,
	REG_INTERRUPT_ACK = 0x064,
	REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080,
	REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090,
	REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0,
	REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_CONFIG_GENERATION = 0x0fc,
	REG_CONFIG = 0x100,
};

static struct virtq *selected(struct virtio_mmio *m)
{
	struct virtio_dev *d = m->dev;

	return m->queue_sel < d->ops->num_queues ? &d->vqs[m->queue_sel] : NULL;
}

static uint32_t reg_read(struct virtio_mmio *m, uint64_t off)
{
	struct virtio_dev *d = m->dev;
	struct virtq *q = selected(m);

	switch (off) {
	case REG_MAGIC:
		return MMIO_MAGIC;
	case REG_VERSION:
		return MMIO_VERSION;
	case REG_DEVICE_ID:
		return d->ops->device_id;
	case REG_VENDOR_ID:
		return MMIO_VENDOR;
	case REG_DEVICE_FEATURES:
		return virtio_dev_get_device_features(d, m->device_features_sel);
	case REG_QUEUE_NUM_MAX:
		return q ? q->max_size : 0;
	case REG_QUEUE_READY:
		return q ? q->ready : 0;
	case REG_INTERRUPT_STATUS:
		return atomic_load(&d->isr);
	case REG_STATUS:
		return d->status;
	case REG_CONFIG_GENERATION:
		return d->config_generation;
	default:
		return 0;
	}
}

/* 4.2.2.3: queue registers are writable only while the queue is not ready. */
static void queue_write(struct virtq *q, uint64_t off, uint32_t v)
{
	if (!q || (q->ready && off != REG_QUEUE_READY))
		return;
	switch (off) {
	case REG_QUEUE_NUM:
		q->size = (uint16_t)v;
		break;
	case REG_QUEUE_READY:
		q->ready = v & 1;
		break;
	case REG_QUEUE_DESC_LOW:
		q->desc_gpa = (q->desc_gpa & ~0xffffffffULL) | v;
		break;
	case REG_QUEUE_DESC_HIGH:
		q->desc_gpa = (q->desc_gpa & 0xffffffffULL) | (uint64_t)v << 32;
		break;
	case REG_QUEUE_DRIVER_LOW:
		q->avail_gpa = (q->avail_gpa & ~0xffffffffULL) | v;
		break;
	case REG_QUEUE_DRIVER_HIGH:
		q->avail_gpa = (q->avail_gpa & 0xffffffffULL) | (uint64_t)v << 32;
		break;
	case REG_QUEUE_DEVICE_LOW:
		q->used_gpa = (q->used_gpa & ~0xffffffffULL) | v;
		break;
	case REG_QUEUE_DEVICE_HIGH:
		q->used_gpa = (q->used_gpa & 0xffffffffULL) | (uint64_t)v << 32;
		break;
	}
}

static void reg_write(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct virtio_dev *d = m->dev;

	switch (off) {
	case REG_DEVICE_FEATURES_SEL:
		m->device_features_sel = v;
		break;
	case REG_DRIVER_FEATURES:
		virtio_dev_set_driver_features(d, m->driver_features_sel, v);
		break;
	case REG_DRIVER_FEATURES_SEL:
		m->driver_features_sel = v;
		break;
	case REG_QUEUE_SEL:
		m->queue_sel = v;
		break;
	case REG_QUEUE_NOTIFY:
		/* Only reached without an ioeventfd for this queue: hand the
		 * kick to the main thread the same way KVM would. */
		if (v < d->ops->num_queues)
			irq_eventfd_signal(m->kick_fd[v]);
		break;
	case REG_INTERRUPT_ACK:
		atomic_fetch_and(&d->isr, (uint8_t)~v);
		break;
	case REG_STATUS:
		virtio_dev_set_status(d, (uint8_t)v);
		break;
	default:
		queue_write(selected(m), off, v);
	}
}

static void mmio_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_mmio *m = opaque;
	uint32_t v;

	pthread_mutex_lock(&m->dev->lock);
	if (off >= REG_CONFIG) {
		virtio_dev_config_read(m->dev, (uint32_t)(off - REG_CONFIG), data, len);
	} else if (len == 4 && !(off & 3)) {
		v = reg_read(m, off);
		memcpy(data, &v, 4);
	} else {
		/* 4.2.2.2: registers are 32-bit, aligned; anything else reads 0. */
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&m->dev->lock);
}

static void mmio_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_mmio *m = opaque;
	uint32_t v;

	pthread_mutex_lock(&m->dev->lock);
	if (off >= REG_CONFIG) {
		virtio_dev_config_write(m->dev, (uint32_t)(off - REG_CONFIG), data, len);
	} else if (len == 4 && !(off & 3)) {
		memcpy(&v, data, 4);
		reg_write(m, off, v);
	}
	pthread_mutex_unlock(&m->dev->lock);
}

static const struct bus_ops mmio_ops = {
	.read = mmio_read,
	.write = mmio_write,
};

static void mmio_signal(struct virtio_dev *d, uint16_t vector, uint8_t isr_bit)
{
	struct virtio_mmio *m = d->transport.ctx;

	(void)vector;
	(void)isr_bit;
	irq_eventfd_signal(m->irqfd);
}

static void mmio_kick(struct virtio_dev *d, unsigned int q)
{
	struct virtio_mmio *m = d->transport.ctx;

	if (q < d->ops->num_queues)
		irq_eventfd_signal(m->kick_fd[q]);
}

static void on_kick(void *opaque, int fd, uint32_t events)
{
	struct virtio_mmio *m = opaque;
	uint64_t n;

	(void)events;
	if (read(fd, &n, sizeof(n)) < 0)
		return;
	for (unsigned int q = 0; q < m->dev->ops->num_queues; q++)
		if (m->kick_fd[q] == fd)
			virtio_dev_notify(m->dev, q);
}

int virtio_mmio_attach(struct virtio_mmio *m, struct virtio_dev *d, struct bus *mmio, int vm_fd,
		       struct evloop *loop, uint64_t base, uint32_t gsi)
{
	int r;

	memset(m, 0, sizeof(*m));
	m->irqfd = -1;
	for (unsigned int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		m->kick_fd[q] = -1;
	m->dev = d;
	m->base = base;
	m->gsi = gsi;
	m->loop = loop;
	d->transport =
		(struct virtio_transport){ .signal = mmio_signal, .kick = mmio_kick, .ctx = m };
	m->irqfd = irq_irqfd(vm_fd, gsi);
	if (m->irqfd < 0)
		return m->irqfd;
	for (unsigned int q = 0; q < d->ops->num_queues; q++) {
		int fd = irq_ioeventfd(vm_fd, base + REG_QUEUE_NOTIFY, 4, true, q, false);

		m->kick_by_kvm[q] = fd >= 0;
		if (fd < 0)
			fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			return -errno;
		m->kick_fd[q] = fd;
		if ((r = evloop_add(loop, fd, EPOLLIN, on_kick, m)))
			return r;
	}
	return bus_register(mmio, base, VIRTIO_MMIO_SIZE, &mmio_ops, m, d->label);
}

void virtio_mmio_detach(struct virtio_mmio *m)
{
	if (!m->dev)
		return; /* never attached */
	evloop_close_fds(m->loop, m->kick_fd, VIRTIO_MAX_QUEUES);
	if (m->irqfd >= 0)
		close(m->irqfd);
	m->irqfd = -1;
}

void virtio_mmio_cmdline(const struct virtio_mmio *m, char *buf, size_t len)
{
	snprintf(buf, len, "virtio_mmio.device=%u@%#llx:%u", VIRTIO_MMIO_SIZE,
		 (unsigned long long)m->base, m->gsi);
}

/* State, version 1: u32 version, u64 base, u32 gsi, u32
 * device_features_sel, u32 driver_features_sel, u32 queue_sel. */
int virtio_mmio_save(struct virtio_mmio *m, struct state_buf *out)
{
	pthread_mutex_lock(&m->dev->lock);
	state_put_u32(out, VIRTIO_MMIO_STATE_VERSION);
	state_put_u64(out, m->base);
	state_put_u32(out, m->gsi);
	state_put_u32(out, m->device_features_sel);
	state_put_u32(out, m->driver_features_sel);
	state_put_u32(out, m->queue_sel);
	pthread_mutex_unlock(&m->dev->lock);
	return out->err;
}

int virtio_mmio_load(struct virtio_mmio *m, struct state_rd *in)
{
	uint32_t version = state_get_u32(in);
	uint64_t base = state_get_u64(in);
	uint32_t gsi = state_get_u32(in), dsel = state_get_u32(in), drsel = state_get_u32(in);
	uint32_t qsel = state_get_u32(in);

	/* The guest found the device where the command line said: it must be
	 * there again. */
	if (in->err || version != VIRTIO_MMIO_STATE_VERSION || base != m->base || gsi != m->gsi)
		return -EINVAL;
	pthread_mutex_lock(&m->dev->lock);
	m->device_features_sel = dsel;
	m->driver_features_sel = drsel;
	m->queue_sel = qsel;
	pthread_mutex_unlock(&m->dev->lock);
	return 0;
}
