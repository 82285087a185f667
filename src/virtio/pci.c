/* pci.c - modern virtio-pci (virtio 1.2 section 4.1) with MSI-X (PCI 3.0
 * section 6.8.2). BAR 0 layout:
 *   0x0000 common configuration    0x1000 ISR status
 *   0x2000 device configuration    0x3000 notifications (4 bytes/queue)
 *   0x4000 MSI-X table             0x5000 MSI-X pending bits */
#include "cvisor/virtio_pci.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define VENDOR_VIRTIO 0x1af4
#define BAR_SIZE 0x8000
#define OFF_COMMON 0x0000
#define OFF_ISR 0x1000
#define OFF_DEVICE 0x2000
#define OFF_NOTIFY 0x3000
#define OFF_MSIX_TABLE 0x4000
#define OFF_MSIX_PBA 0x5000
#define NOTIFY_MULT 4

#define CAP_VENDOR 0x09
#define CAP_MSIX 0x11
#define CFG_COMMON 1
#define CFG_NOTIFY 2
#define CFG_ISR 3
#define CFG_DEVICE 4

#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000
#define PCI_COMMAND 0x04
#define PCI_CMD_MEM 0x2	   /* memory space: the BAR decodes */
#define PCI_CMD_MASTER 0x4 /* bus master: the device may DMA */
#define VIRTIO_PCI_STATE_VERSION 1

static void add_virtio_cap(struct pci_device *p, uint8_t type, uint32_t off, uint32_t len)
{
	uint8_t at = pci_add_cap(p, CAP_VENDOR, type == CFG_NOTIFY ? 20 : 16);

	p->cfg[at + 2] = type == CFG_NOTIFY ? 20 : 16; /* cap_len */
	p->cfg[at + 3] = type;			       /* cfg_type */
	p->cfg[at + 4] = 0;			       /* bar */
	cv_put_le32(p->cfg + at + 8, off);
	cv_put_le32(p->cfg + at + 12, len);
	if (type == CFG_NOTIFY)
		cv_put_le32(p->cfg + at + 16, NOTIFY_MULT);
}

static uint16_t msix_ctrl(struct virtio_pci *vp)
{
	return (uint16_t)(vp->pci.cfg[vp->msix_cap + 2] | vp->pci.cfg[vp->msix_cap + 3] << 8);
}

/* Deliver vector v, or hold it pending while it (or the function) is
 * masked (PCI 3.0 6.8.3.5). */
static void msix_fire(struct virtio_pci *vp, uint16_t v)
{
	uint16_t ctrl = msix_ctrl(vp);

	if (!(ctrl & MSIX_ENABLE) || v >= vp->nvec)
		return;
	if ((ctrl & MSIX_MASKALL) || (vp->msix[v].ctrl & 1)) {
		atomic_fetch_or(&vp->pending, 1ULL << v);
		return;
	}
	irq_eventfd_signal(vp->msix[v].irqfd);
}

static void vp_signal(struct virtio_dev *d, uint16_t vector, uint8_t isr_bit)
{
	(void)isr_bit;
	if (vector != VIRTIO_NO_VECTOR)
		msix_fire(d->transport.ctx, vector);
}

static void msix_unmasked(struct virtio_pci *vp)
{
	uint64_t pend = atomic_load(&vp->pending);

	for (unsigned int v = 0; v < vp->nvec; v++) {
		if (!(pend & (1ULL << v)) || (vp->msix[v].ctrl & 1) ||
		    (msix_ctrl(vp) & MSIX_MASKALL))
			continue;
		atomic_fetch_and(&vp->pending, ~(1ULL << v));
		irq_eventfd_signal(vp->msix[v].irqfd);
	}
}

static void msix_table_rw(struct virtio_pci *vp, uint64_t off, uint8_t *data, uint32_t len,
			  bool write)
{
	unsigned int v = (unsigned int)(off / 16), field = (unsigned int)(off % 16);
	struct virtio_pci_msix_entry *e;
	uint8_t raw[16];

	/* 6.8.2.9: table entries are accessed as dwords (or qwords). */
	if (v >= vp->nvec || (len != 4 && len != 8) || field % 4 || field + len > 16) {
		if (!write)
			memset(data, 0, len);
		return;
	}
	e = &vp->msix[v];
	cv_put_le32(raw, (uint32_t)e->addr);
	cv_put_le32(raw + 4, (uint32_t)(e->addr >> 32));
	cv_put_le32(raw + 8, e->data);
	cv_put_le32(raw + 12, e->ctrl);
	if (!write) {
		memcpy(data, raw + field, len);
		return;
	}
	memcpy(raw + field, data, len);
	e->addr = raw[0] | raw[1] << 8 | raw[2] << 16 | (uint64_t)raw[3] << 24 |
		  (uint64_t)(raw[4] | raw[5] << 8 | raw[6] << 16 | (uint32_t)raw[7] << 24) << 32;
	e->data = raw[8] | raw[9] << 8 | raw[10] << 16 | (uint32_t)raw[11] << 24;
	e->ctrl = (raw[12] | raw[13] << 8 | raw[14] << 16 | (uint32_t)raw[15] << 24) & 1;
	if (irq_set_msi(vp->router, e->gsi, e->addr, e->data))
		cv_debug("%s: MSI route for vector %u failed", vp->dev->label, v);
	if (!(e->ctrl & 1))
		msix_unmasked(vp);
}

static uint32_t common_read(struct virtio_pci *vp, uint64_t off)
{
	struct virtio_dev *d = vp->dev;
	struct virtq *q = vp->queue_sel < d->ops->num_queues ? &d->vqs[vp->queue_sel] : NULL;

	switch (off) {
	case 0x00:
		return vp->device_features_sel;
	case 0x04:
		return virtio_dev_get_device_features(d, vp->device_features_sel);
	case 0x08:
		return vp->driver_features_sel;
	case 0x0c:
		return (uint32_t)(d->driver_features >> (32 * (vp->driver_features_sel & 1)));
	case 0x10:
		return d->msix_config;
	case 0x12:
		return d->ops->num_queues;
	case 0x14:
		return d->status;
	case 0x15:
		return d->config_generation;
	case 0x16:
		return vp->queue_sel;
	case 0x18:
		return q ? q->size : 0;
	case 0x1a:
		return q ? q->msix_vector : VIRTIO_NO_VECTOR;
	case 0x1c:
		return q ? q->ready : 0;
	case 0x1e:
		return vp->queue_sel; /* queue_notify_off */
	case 0x20:
		return q ? (uint32_t)q->desc_gpa : 0;
	case 0x24:
		return q ? (uint32_t)(q->desc_gpa >> 32) : 0;
	case 0x28:
		return q ? (uint32_t)q->avail_gpa : 0;
	case 0x2c:
		return q ? (uint32_t)(q->avail_gpa >> 32) : 0;
	case 0x30:
		return q ? (uint32_t)q->used_gpa : 0;
	case 0x34:
		return q ? (uint32_t)(q->used_gpa >> 32) : 0;
	default:
		return 0;
	}
}

/* The common configuration structure as the guest sees it (4.1.4.3). */
static void common_image(struct virtio_pci *vp, uint8_t *img)
{
	static const uint8_t w32[] = { 0x00, 0x04, 0x08, 0x0c, 0x20, 0x24, 0x28, 0x2c, 0x30, 0x34 };
	static const uint8_t w16[] = { 0x10, 0x12, 0x16, 0x18, 0x1a, 0x1c, 0x1e };

	for (unsigned int i = 0; i < sizeof(w32); i++)
		cv_put_le32(img + w32[i], common_read(vp, w32[i]));
	for (unsigned int i = 0; i < sizeof(w16); i++)
		cv_put_le16(img + w16[i], (uint16_t)common_read(vp, w16[i]));
	img[0x14] = (uint8_t)common_read(vp, 0x14);
	img[0x15] = (uint8_t)common_read(vp, 0x15);
}

static void set_lo(uint64_t *v, uint32_t x)
{
	*v = (*v & ~0xffffffffULL) | x;
}
static void set_hi(uint64_t *v, uint32_t x)
{
	*v = (*v & 0xffffffffULL) | (uint64_t)x << 32;
}

static void common_write(struct virtio_pci *vp, uint64_t off, uint32_t v)
{
	struct virtio_dev *d = vp->dev;
	struct virtq *q = vp->queue_sel < d->ops->num_queues ? &d->vqs[vp->queue_sel] : NULL;

	switch (off) {
	case 0x00:
		vp->device_features_sel = v;
		return;
	case 0x08:
		vp->driver_features_sel = v;
		return;
	case 0x0c:
		virtio_dev_set_driver_features(d, vp->driver_features_sel, v);
		return;
	case 0x10:
		d->msix_config = (uint16_t)(v < vp->nvec ? v : VIRTIO_NO_VECTOR);
		return;
	case 0x14:
		virtio_dev_set_status(d, (uint8_t)v);
		return;
	case 0x16:
		vp->queue_sel = (uint16_t)v;
		return;
	}
	/* 4.1.4.3.2: queue fields are set only while the queue is disabled. */
	if (!q || (q->ready && off != 0x1a))
		return;
	switch (off) {
	case 0x18:
		q->size = (uint16_t)v;
		break;
	case 0x1a:
		q->msix_vector = (uint16_t)(v < vp->nvec ? v : VIRTIO_NO_VECTOR);
		break;
	case 0x1c:
		q->ready = v & 1;
		break;
	case 0x20:
		set_lo(&q->desc_gpa, v);
		break;
	case 0x24:
		set_hi(&q->desc_gpa, v);
		break;
	case 0x28:
		set_lo(&q->avail_gpa, v);
		break;
	case 0x2c:
		set_hi(&q->avail_gpa, v);
		break;
	case 0x30:
		set_lo(&q->used_gpa, v);
		break;
	case 0x34:
		set_hi(&q->used_gpa, v);
		break;
	}
}

static uint16_t pci_command(const struct virtio_pci *vp)
{
	return (uint16_t)(vp->pci.cfg[PCI_COMMAND] | vp->pci.cfg[PCI_COMMAND + 1] << 8);
}

/* The device works only with its BAR decoding and bus mastering on (PCI
 * 3.0 6.2.2): until then kicks find nothing to take, so it starts no new
 * request in guest RAM a driver has withdrawn (kexec, a driver unbinding).
 * Buffers taken before (a received packet waiting for data, a disk read
 * in flight) may still complete; the driver's reset ends them. Queues
 * kicked meanwhile are looked at again once the device is allowed back. */
static void update_dma(struct virtio_pci *vp)
{
	uint16_t want = PCI_CMD_MEM | PCI_CMD_MASTER;
	bool off, was;

	/* Serialized: two vCPUs writing the register must leave the flag as
	 * the last value says (each write is followed by its own update). */
	pthread_mutex_lock(&vp->dev->lock);
	off = (pci_command(vp) & want) != want;
	was = atomic_exchange(&vp->dev->dma_off, off);
	pthread_mutex_unlock(&vp->dev->lock);
	if (was && !off)
		for (unsigned int q = 0; q < vp->dev->ops->num_queues; q++)
			irq_eventfd_signal(vp->kick_fd[q]);
}

/* Common config fields are 1, 2 or 4 bytes at their natural offsets; a
 * wider or odd access is split or dropped (4.1.3.1 requires natural width). */
static void bar_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *d = vp->dev;

	if (!(pci_command(vp) & PCI_CMD_MEM)) {
		memset(data, 0xff, len); /* not decoded: the bus reads all ones */
		return;
	}

	memset(data, 0, len);
	pthread_mutex_lock(&d->lock);
	if (off < OFF_COMMON + 0x40) {
		uint8_t img[0x40] = { 0 };

		common_image(vp, img);
		for (uint32_t i = 0; i < len && off + i < sizeof(img); i++)
			data[i] = img[off + i];
	} else if (off == OFF_ISR) {
		/* 4.1.4.5.1: reading the ISR clears it. */
		data[0] = atomic_exchange(&d->isr, 0);
	} else if (off >= OFF_DEVICE && off < OFF_NOTIFY) {
		virtio_dev_config_read(d, (uint32_t)(off - OFF_DEVICE), data, len);
	} else if (off >= OFF_MSIX_TABLE && off < OFF_MSIX_PBA) {
		msix_table_rw(vp, off - OFF_MSIX_TABLE, data, len, false);
	} else if (off >= OFF_MSIX_PBA && off + len <= OFF_MSIX_PBA + 8) {
		uint64_t pend = atomic_load(&vp->pending);

		for (uint32_t i = 0; i < len; i++)
			data[i] = (uint8_t)(pend >> (8 * (off - OFF_MSIX_PBA + i)));
	}
	pthread_mutex_unlock(&d->lock);
}

static void bar_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *d = vp->dev;
	uint32_t v = 0;

	if (!(pci_command(vp) & PCI_CMD_MEM))
		return;
	if (off >= OFF_NOTIFY && off < OFF_MSIX_TABLE) {
		/* Only without an ioeventfd: pass the kick to the main thread. */
		uint64_t q = (off - OFF_NOTIFY) / NOTIFY_MULT;

		if (q < d->ops->num_queues)
			irq_eventfd_signal(vp->kick_fd[q]);
		return;
	}
	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < len && i < 4; i++)
		v |= (uint32_t)data[i] << (8 * i);
	if (off < OFF_COMMON + 0x40) {
		/* 4.1.3.1: fields are written at their natural width and
		 * alignment; anything else is dropped, not taken as zero. */
		if ((len == 1 || len == 2 || len == 4) && !(off & (len - 1)))
			common_write(vp, off, v);
	} else if (off >= OFF_DEVICE && off < OFF_NOTIFY) {
		virtio_dev_config_write(d, (uint32_t)(off - OFF_DEVICE), data, len);
	} else if (off >= OFF_MSIX_TABLE && off < OFF_MSIX_PBA) {
		msix_table_rw(vp, off - OFF_MSIX_TABLE, (uint8_t *)data, len, true);
	}
	pthread_mutex_unlock(&d->lock);
}

static const struct bus_ops bar_ops = { .read = bar_read, .write = bar_write };

static void cfg_written(struct pci_device *p, uint32_t off, uint32_t len)
{
	struct virtio_pci *vp = p->opaque;

	if (off < PCI_COMMAND + 2u && off + len > PCI_COMMAND)
		update_dma(vp);
	/* Enabling MSI-X or clearing its function mask may release pending
	 * vectors. */
	if (off + len > vp->msix_cap + 2u && off <= vp->msix_cap + 3u) {
		pthread_mutex_lock(&vp->dev->lock);
		msix_unmasked(vp);
		pthread_mutex_unlock(&vp->dev->lock);
	}
}

/* The guest (its firmware) moved BAR 0: the ioeventfds follow it. One
 * that cannot move is dropped, and its kicks come as MMIO exits. */
static void bar_moved(struct pci_device *p, unsigned int bar, uint64_t old, uint64_t new_addr)
{
	struct virtio_pci *vp = p->opaque;

	if (bar != 0)
		return;
	pthread_mutex_lock(&vp->dev->lock);
	vp->bar = new_addr;
	for (unsigned int q = 0; q < vp->dev->ops->num_queues; q++) {
		uint64_t at = OFF_NOTIFY + (uint64_t)q * NOTIFY_MULT;
		int r;

		if (!vp->kick_ioeventfd[q])
			continue;
		r = irq_ioeventfd_move(vp->router->vm_fd, vp->kick_fd[q], old + at, new_addr + at,
				       2);
		if (r) {
			vp->kick_ioeventfd[q] = false;
			cv_debug("virtio-pci: queue %u's ioeventfd did not follow its BAR: %s", q,
				 strerror(-r));
		}
	}
	pthread_mutex_unlock(&vp->dev->lock);
}

static const struct pci_device_ops vp_pci_ops = { .cfg_written = cfg_written,
						  .bar_moved = bar_moved };

static void vp_kick(struct virtio_dev *d, unsigned int q)
{
	struct virtio_pci *vp = d->transport.ctx;

	if (q < d->ops->num_queues)
		irq_eventfd_signal(vp->kick_fd[q]);
}

static void on_kick(void *opaque, int fd, uint32_t events)
{
	struct virtio_pci *vp = opaque;
	uint64_t n;

	(void)events;
	if (read(fd, &n, sizeof(n)) < 0)
		return;
	for (unsigned int q = 0; q < vp->dev->ops->num_queues; q++)
		if (vp->kick_fd[q] == fd)
			virtio_dev_notify(vp->dev, q);
}

static uint32_t class_of(uint32_t id)
{
	switch (id) {
	case VIRTIO_ID_NET:
		return 0x020000; /* Ethernet */
	case VIRTIO_ID_BLOCK:
		return 0x018000; /* other mass storage */
	default:
		return 0xff0000; /* unassigned class */
	}
}

int virtio_pci_attach(struct virtio_pci *vp, struct virtio_dev *d, struct pci_bus *b,
		      struct irq_router *router, struct evloop *loop)
{
	struct pci_device *p = &vp->pci;
	int r;

	memset(vp, 0, sizeof(*vp));
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vp->kick_fd[i] = -1;
	for (unsigned int v = 0; v < VIRTIO_PCI_MAX_VECTORS; v++)
		vp->msix[v].irqfd = -1;
	vp->dev = d;
	vp->router = router;
	vp->loop = loop;
	vp->nvec = d->ops->num_queues + 1;
	atomic_store(&d->dma_off, true); /* the command register starts at 0 */
	d->transport = (struct virtio_transport){ .signal = vp_signal, .kick = vp_kick, .ctx = vp };
	/* 4.1.2.1: device id 0x1040 + type, revision 1 for a modern-only device. */
	pci_device_init(p, VENDOR_VIRTIO, (uint16_t)(0x1040 + d->ops->device_id),
			class_of(d->ops->device_id), VENDOR_VIRTIO, (uint16_t)d->ops->device_id, 1);
	p->ops = &vp_pci_ops;
	p->opaque = vp;
	if ((r = pci_device_add_bar(b, p, 0, BAR_SIZE, &bar_ops, vp, d->label)))
		return r;
	vp->bar = p->bar_addr[0];
	add_virtio_cap(p, CFG_COMMON, OFF_COMMON, 0x38);
	add_virtio_cap(p, CFG_ISR, OFF_ISR, 1);
	add_virtio_cap(p, CFG_DEVICE, OFF_DEVICE, 0x1000);
	add_virtio_cap(p, CFG_NOTIFY, OFF_NOTIFY, NOTIFY_MULT * VIRTIO_MAX_QUEUES);
	vp->msix_cap = pci_add_cap(p, CAP_MSIX, 12);
	if (!vp->msix_cap)
		return -ENOSPC;
	cv_put_le16(p->cfg + vp->msix_cap + 2, (uint16_t)(vp->nvec - 1));
	p->wmask[vp->msix_cap + 3] = (MSIX_ENABLE | MSIX_MASKALL) >> 8;
	cv_put_le32(p->cfg + vp->msix_cap + 4, OFF_MSIX_TABLE); /* BIR 0 */
	cv_put_le32(p->cfg + vp->msix_cap + 8, OFF_MSIX_PBA);
	for (unsigned int v = 0; v < vp->nvec; v++) {
		vp->msix[v].ctrl = 1; /* masked at reset */
		if ((r = irq_alloc_msi(router, &vp->msix[v].gsi)))
			return r;
		vp->msix[v].irqfd = irq_irqfd(router->vm_fd, vp->msix[v].gsi);
		if (vp->msix[v].irqfd < 0)
			return vp->msix[v].irqfd;
	}
	for (unsigned int q = 0; q < d->ops->num_queues; q++) {
		int fd = irq_ioeventfd(router->vm_fd, vp->bar + OFF_NOTIFY + q * NOTIFY_MULT, 2,
				       false, 0, false);

		vp->kick_ioeventfd[q] = fd >= 0;
		if (fd < 0)
			fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			return -errno;
		vp->kick_fd[q] = fd;
		if ((r = evloop_add(loop, fd, EPOLLIN, on_kick, vp)))
			return r;
	}
	return pci_bus_add(b, p);
}

void virtio_pci_detach(struct virtio_pci *vp)
{
	if (!vp->dev)
		return; /* never attached */
	evloop_close_fds(vp->loop, vp->kick_fd, VIRTIO_MAX_QUEUES);
	for (unsigned int v = 0; v < VIRTIO_PCI_MAX_VECTORS; v++) {
		if (vp->msix[v].irqfd >= 0)
			close(vp->msix[v].irqfd);
		vp->msix[v].irqfd = -1;
	}
}

/* State, version 1: u32 version, the 256 config-space bytes, u32
 * device_features_sel, u32 driver_features_sel, u16 queue_sel, u32 nvec,
 * nvec x (u64 addr, u32 data, u32 ctrl), u64 pending bits. */
int virtio_pci_save(struct virtio_pci *vp, struct state_buf *out)
{
	pthread_mutex_lock(&vp->dev->lock);
	state_put_u32(out, VIRTIO_PCI_STATE_VERSION);
	state_put_bytes(out, vp->pci.cfg, PCI_CFG_SIZE);
	state_put_u32(out, vp->device_features_sel);
	state_put_u32(out, vp->driver_features_sel);
	state_put_u16(out, vp->queue_sel);
	state_put_u32(out, vp->nvec);
	for (unsigned int v = 0; v < vp->nvec; v++) {
		state_put_u64(out, vp->msix[v].addr);
		state_put_u32(out, vp->msix[v].data);
		state_put_u32(out, vp->msix[v].ctrl);
	}
	state_put_u64(out, atomic_load(&vp->pending));
	pthread_mutex_unlock(&vp->dev->lock);
	return out->err;
}

int virtio_pci_load(struct virtio_pci *vp, struct state_rd *in)
{
	uint8_t cfg[PCI_CFG_SIZE];
	uint32_t dsel, drsel, nvec;
	uint16_t qsel;
	uint64_t pending;
	struct virtio_pci_msix_entry e[VIRTIO_PCI_MAX_VECTORS];
	int r = 0;

	if (state_get_u32(in) != VIRTIO_PCI_STATE_VERSION)
		return -EINVAL;
	state_get_bytes(in, cfg, sizeof(cfg));
	dsel = state_get_u32(in);
	drsel = state_get_u32(in);
	qsel = state_get_u16(in);
	nvec = state_get_u32(in);
	if (in->err || nvec != vp->nvec)
		return -EINVAL;
	for (unsigned int v = 0; v < nvec; v++) {
		e[v].addr = state_get_u64(in);
		e[v].data = state_get_u32(in);
		e[v].ctrl = state_get_u32(in);
		if (e[v].ctrl > 1)
			return -EINVAL;
	}
	pending = state_get_u64(in);
	if (in->err || (nvec < 64 && (pending >> nvec)))
		return -EINVAL;
	/* Only what the guest may write can differ: ids, class, BAR sizes and
	 * the capability layout must be this device's. */
	for (unsigned int i = 0; i < PCI_CFG_SIZE; i++)
		if ((cfg[i] ^ vp->pci.cfg[i]) & ~vp->pci.wmask[i])
			return -EINVAL;
	pthread_mutex_lock(&vp->dev->lock);
	memcpy(vp->pci.cfg, cfg, sizeof(cfg));
	vp->device_features_sel = dsel;
	vp->driver_features_sel = drsel;
	vp->queue_sel = qsel;
	for (unsigned int v = 0; v < nvec && !r; v++) {
		vp->msix[v].addr = e[v].addr;
		vp->msix[v].data = e[v].data;
		vp->msix[v].ctrl = e[v].ctrl;
		r = irq_set_msi(vp->router, vp->msix[v].gsi, e[v].addr, e[v].data);
	}
	atomic_store(&vp->pending, pending);
	pthread_mutex_unlock(&vp->dev->lock);
	/* The BAR where the loaded config space says (its firmware moved
	 * it, or a reset puts it back): bar_moved takes the device lock. */
	pci_device_sync_bars(&vp->pci);
	update_dma(vp);
	return r;
}
