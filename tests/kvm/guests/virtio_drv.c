/* virtio_drv.c - minimal virtio-pci / virtio-mmio driver for the tiny guests
 * (see virtio_drv.h). Register layouts: virtio 1.2 4.1.4 (PCI capabilities
 * and common configuration) and 4.2.2 (MMIO version 2). */
#include "virtio_drv.h"

int virtio_failures;

static void vreport(const char *tag, const char *fmt, va_list ap)
{
	printf("virtio: %s ", tag);
	vprintf(fmt, ap);
	serial_putc('\n');
}

void vpass(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("PASS", fmt, ap);
	va_end(ap);
}

void vfail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("FAIL", fmt, ap);
	va_end(ap);
	virtio_failures++;
}

void vinfo(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport("INFO", fmt, ap);
	va_end(ap);
}

void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* ---- memory ---- */
static uint8_t ring_pages[VDEV_MAX][VQ_MAX][4096] __attribute__((aligned(4096)));

extern char __image_end[];

uint8_t *virtio_scratch(void)
{
	uint64_t a = ((uintptr_t)__image_end + 0xfffff) & ~0xfffffull;
	return (uint8_t *)(uintptr_t)(a + 0x100000);
}

/* crt0.S maps 0-4 GiB. A BAR above that (QEMU may put 64-bit BARs there)
 * gets a 1 GiB identity window of uncached 2 MiB pages in pml4[0]'s PDPT. */
extern uint64_t pml4[512];
static uint64_t high_pd[4][512] __attribute__((aligned(4096)));
static int high_pd_used;

static int map_phys(uint64_t a)
{
	if (a < (4ull << 30))
		return 0;
	if (a >= (512ull << 30))
		return -1;
	uint64_t *pdpt = (uint64_t *)(uintptr_t)(pml4[0] & 0x000ffffffffff000ull);
	unsigned int i = (unsigned int)(a >> 30);
	if (pdpt[i] & 1)
		return 0;
	if (high_pd_used == 4)
		return -1;
	uint64_t *pd = high_pd[high_pd_used++];
	for (unsigned int j = 0; j < 512; j++)
		pd[j] = ((uint64_t)i << 30) + ((uint64_t)j << 21) + 0x9f; /* P RW US PWT PCD PS */
	pdpt[i] = (uintptr_t)pd + 0x7;
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
	return 0;
}

/* ---- PCI configuration mechanism #1 ---- */
static void pci_select(uint32_t bdf, uint32_t off)
{
	outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
}
static uint32_t pci_read32(uint32_t bdf, uint32_t off)
{
	pci_select(bdf, off);
	return inl(0xcfc);
}
static uint16_t pci_read16(uint32_t bdf, uint32_t off)
{
	pci_select(bdf, off);
	return inw((uint16_t)(0xcfc + (off & 2)));
}
static uint8_t pci_read8(uint32_t bdf, uint32_t off)
{
	pci_select(bdf, off);
	return inb((uint16_t)(0xcfc + (off & 3)));
}
static void pci_write16(uint32_t bdf, uint32_t off, uint16_t v)
{
	pci_select(bdf, off);
	outw((uint16_t)(0xcfc + (off & 2)), v);
}

uint16_t vdev_pci_command(struct vdev *d)
{
	return pci_read16(d->bdf, 0x04);
}

void vdev_set_pci_command(struct vdev *d, uint16_t v)
{
	pci_write16(d->bdf, 0x04, v);
}

/* The address BAR `bar` decodes at, as assigned by the monitor or the
 * firmware (not moved, not sized). 0 for an I/O or unassigned BAR. */
static uint64_t pci_bar_addr(uint32_t bdf, unsigned int bar)
{
	if (bar > 5)
		return 0;
	uint32_t lo = pci_read32(bdf, 0x10 + 4 * bar);
	if (lo & 1)
		return 0;
	uint64_t a = lo & ~0xfu;
	if (((lo >> 1) & 3) == 2 && bar < 5)
		a |= (uint64_t)pci_read32(bdf, 0x14 + 4 * bar) << 32;
	return a;
}

#define PCI_CAP_VNDR 0x09
#define PCI_CAP_MSIX 0x11
#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR 3
#define VIRTIO_PCI_CAP_DEVICE 4

/* Fill in a modern virtio-pci function's structures from its capability
 * list (4.1.4). 0 or -1 (printed). */
static int pci_probe_dev(struct vdev *d, uint32_t bdf, uint16_t devid)
{
	d->transport = VIRTIO_T_PCI;
	d->bdf = bdf;
	d->type = devid - 0x1040u;
	snprintf(d->name, sizeof(d->name), "pci 00:%02x.%x", (bdf >> 3) & 31, bdf & 7);
	uint8_t rev = pci_read8(bdf, 0x08);
	if (rev < 1)
		vfail("%s: revision %u, modern virtio-pci has at least 1 (4.1.2)", d->name, rev);
	if (!(pci_read16(bdf, 0x06) & 0x10)) {
		vfail("%s: no capability list (status 0x%x)", d->name, pci_read16(bdf, 0x06));
		return -1;
	}
	uint8_t ptr = pci_read8(bdf, 0x34) & 0xfc;
	for (int n = 0; ptr && n < 48; n++) {
		uint8_t id = pci_read8(bdf, ptr), next = pci_read8(bdf, ptr + 1) & 0xfc;
		if (id == PCI_CAP_VNDR) {
			uint8_t type = pci_read8(bdf, ptr + 3), bar = pci_read8(bdf, ptr + 4);
			uint32_t off = pci_read32(bdf, ptr + 8);
			uint64_t base = pci_bar_addr(bdf, bar);
			uint64_t *slot = type == VIRTIO_PCI_CAP_COMMON	 ? &d->common
					 : type == VIRTIO_PCI_CAP_NOTIFY ? &d->notify_base
					 : type == VIRTIO_PCI_CAP_ISR	 ? &d->isr
					 : type == VIRTIO_PCI_CAP_DEVICE ? &d->devcfg
									 : NULL;
			/* The first capability of each type is the preferred one (4.1.4). */
			if (slot && !*slot) {
				if (!base) {
					vfail("%s: virtio cap type %u names BAR %u, which has no "
					      "memory address",
					      d->name, type, bar);
					return -1;
				}
				if (map_phys(base + off)) {
					vfail("%s: BAR %u at 0x%lx is out of reach", d->name, bar,
					      (unsigned long)base);
					return -1;
				}
				*slot = base + off;
				if (type == VIRTIO_PCI_CAP_NOTIFY)
					d->notify_mult = pci_read32(bdf, ptr + 16);
			}
		} else if (id == PCI_CAP_MSIX && !d->msix_cap) {
			d->msix_cap = ptr;
			d->msix_n = (pci_read16(bdf, ptr + 2) & 0x7ff) + 1;
			uint32_t t = pci_read32(bdf, ptr + 4), p = pci_read32(bdf, ptr + 8);
			uint64_t tb = pci_bar_addr(bdf, t & 7), pb = pci_bar_addr(bdf, p & 7);
			if (tb && pb && !map_phys(tb) && !map_phys(pb)) {
				d->msix_table = tb + (t & ~7u);
				d->msix_pba = pb + (p & ~7u);
			}
		}
		ptr = next;
	}
	if (!d->common || !d->notify_base || !d->isr) {
		vfail("%s: missing virtio capabilities (common 0x%lx notify 0x%lx isr 0x%lx)",
		      d->name, (unsigned long)d->common, (unsigned long)d->notify_base,
		      (unsigned long)d->isr);
		return -1;
	}
	/* Memory space and bus master: a device may not DMA without the latter. */
	pci_write16(bdf, 0x04, pci_read16(bdf, 0x04) | 0x6);
	return 0;
}

static int probe_pci(struct vdev *devs, int n, int max)
{
	for (uint32_t dev = 0; dev < 32 && n < max; dev++) {
		unsigned int nfn = 1;
		for (uint32_t fn = 0; fn < nfn && n < max; fn++) {
			uint32_t bdf = dev << 3 | fn;
			uint32_t id = pci_read32(bdf, 0);
			if ((id & 0xffff) == 0xffff)
				continue;
			if (fn == 0 && (pci_read8(bdf, 0x0e) & 0x80))
				nfn = 8;
			uint16_t vendor = (uint16_t)id, devid = (uint16_t)(id >> 16);
			printf("virtio: pci 00:%02x.%x %04x:%04x class 0x%06x\n", dev, fn, vendor,
			       devid, pci_read32(bdf, 0x08) >> 8);
			if (vendor != 0x1af4)
				continue;
			if (devid >= 0x1000 && devid < 0x1040) {
				vinfo("pci 00:%02x.%x: transitional virtio device 0x%x ignored",
				      dev, fn, devid);
				continue;
			}
			if (devid < 0x1040 || devid > 0x107f)
				continue;
			struct vdev *d = &devs[n];
			memset(d, 0, sizeof(*d));
			if (pci_probe_dev(d, bdf, devid))
				continue;
			d->ring_mem = ring_pages[n][0];
			printf("virtio: dev %d %s type %u common 0x%lx msix %u\n", n, d->name,
			       d->type, (unsigned long)d->common, d->msix_n);
			n++;
		}
	}
	return n;
}

/* ---- virtio-mmio ---- */
#define MMIO_MAGIC 0x000
#define MMIO_VERSION 0x004
#define MMIO_DEVICE_ID 0x008
#define MMIO_DEVICE_FEATURES 0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES 0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL 0x030
#define MMIO_QUEUE_NUM_MAX 0x034
#define MMIO_QUEUE_NUM 0x038
#define MMIO_QUEUE_READY 0x044
#define MMIO_QUEUE_NOTIFY 0x050
#define MMIO_INTERRUPT_STATUS 0x060
#define MMIO_INTERRUPT_ACK 0x064
#define MMIO_STATUS 0x070
#define MMIO_QUEUE_DESC 0x080
#define MMIO_QUEUE_DRIVER 0x090
#define MMIO_QUEUE_DEVICE 0x0a0
#define MMIO_CONFIG_GENERATION 0x0fc
#define MMIO_CONFIG 0x100
#define MMIO_MAGIC_VALUE 0x74726976 /* "virt" */

static uint32_t mr(struct vdev *d, uint32_t off)
{
	return mmio_read32(d->base + off);
}
static void mw(struct vdev *d, uint32_t off, uint32_t v)
{
	mmio_write32(d->base + off, v);
}

/* Linux's memparse: a number (0x for hex) with an optional K/M/G suffix. */
static const char *parse_num(const char *p, uint64_t *v)
{
	p = parse_u64(p, v);
	if (*p == 'K' || *p == 'k')
		*v <<= 10, p++;
	else if (*p == 'M' || *p == 'm')
		*v <<= 20, p++;
	else if (*p == 'G' || *p == 'g')
		*v <<= 30, p++;
	return p;
}

static int probe_mmio(struct vdev *devs, int n, int max)
{
	const char *p = cmdline();
	while (n < max && (p = cmdline_next(p, "virtio_mmio.device"))) {
		uint64_t size, base, irq;
		p = parse_num(p, &size);
		bool ok = *p == '@';
		if (ok)
			p = parse_num(p + 1, &base);
		ok = ok && *p == ':';
		if (ok)
			p = parse_num(p + 1, &irq);
		if (!ok || (*p && *p != ' ' && *p != ':')) {
			vfail("cannot parse a virtio_mmio.device= word near '%s'", p);
			continue;
		}
		if (size < 0x100 || base < 0x100000000ull - (1ull << 30) ||
		    base >= 0x100000000ull) {
			vfail("mmio device 0x%lx (size 0x%lx) is outside the 3-4 GiB hole",
			      (unsigned long)base, (unsigned long)size);
			continue;
		}
		struct vdev *d = &devs[n];
		memset(d, 0, sizeof(*d));
		d->transport = VIRTIO_T_MMIO;
		d->base = base;
		d->gsi = (uint32_t)irq;
		snprintf(d->name, sizeof(d->name), "mmio 0x%lx", (unsigned long)base);
		uint32_t magic = mr(d, MMIO_MAGIC), ver = mr(d, MMIO_VERSION);
		d->type = mr(d, MMIO_DEVICE_ID);
		if (magic != MMIO_MAGIC_VALUE) {
			vfail("%s: MagicValue 0x%x, want 0x%x", d->name, magic, MMIO_MAGIC_VALUE);
			continue;
		}
		if (ver != 2) {
			vfail("%s: Version %u, want 2 (4.2.2)", d->name, ver);
			continue;
		}
		if (d->type == 0) {
			vinfo("%s: DeviceID 0 (placeholder) ignored", d->name);
			continue;
		}
		d->ring_mem = ring_pages[n][0];
		printf("virtio: dev %d %s size 0x%lx irq %u type %u\n", n, d->name,
		       (unsigned long)size, d->gsi, d->type);
		n++;
	}
	return n;
}

int virtio_probe(struct vdev *devs, int max)
{
	int n = probe_pci(devs, 0, max);
	return probe_mmio(devs, n, max);
}

/* ---- common configuration ---- */
#define PC_DFSELECT 0x00
#define PC_DF 0x04
#define PC_GFSELECT 0x08
#define PC_GF 0x0c
#define PC_MSIX_CONFIG 0x10
#define PC_NUM_QUEUES 0x12
#define PC_STATUS 0x14
#define PC_CFG_GENERATION 0x15
#define PC_Q_SELECT 0x16
#define PC_Q_SIZE 0x18
#define PC_Q_MSIX 0x1a
#define PC_Q_ENABLE 0x1c
#define PC_Q_NOFF 0x1e
#define PC_Q_DESC 0x20
#define PC_Q_DRIVER 0x28
#define PC_Q_DEVICE 0x30

uint8_t vdev_status(struct vdev *d)
{
	if (d->transport == VIRTIO_T_PCI)
		return mmio_read8(d->common + PC_STATUS);
	return (uint8_t)mr(d, MMIO_STATUS);
}

void vdev_set_status(struct vdev *d, uint8_t s)
{
	if (d->transport == VIRTIO_T_PCI)
		mmio_write8(d->common + PC_STATUS, s);
	else
		mw(d, MMIO_STATUS, s);
}

int vdev_reset(struct vdev *d)
{
	vdev_set_status(d, 0);
	for (int i = 0; i < VQ_MAX; i++)
		d->vq[i].ready = false;
	uint64_t t0 = rdtsc();
	while (vdev_status(d) != 0) {
		if (rdtsc() - t0 > VIRTIO_TIMEOUT_TSC) {
			vfail("%s: status 0x%x after reset, want 0 (4.1.4.3.2)", d->name,
			      vdev_status(d));
			return -1;
		}
		cpu_relax();
	}
	return 0;
}

uint64_t vdev_device_features(struct vdev *d)
{
	uint64_t f = 0;
	for (uint32_t sel = 0; sel < 2; sel++) {
		uint32_t v;
		if (d->transport == VIRTIO_T_PCI) {
			mmio_write32(d->common + PC_DFSELECT, sel);
			v = mmio_read32(d->common + PC_DF);
		} else {
			mw(d, MMIO_DEVICE_FEATURES_SEL, sel);
			v = mr(d, MMIO_DEVICE_FEATURES);
		}
		f |= (uint64_t)v << (32 * sel);
	}
	return f;
}

void vdev_write_features(struct vdev *d, uint64_t f)
{
	for (uint32_t sel = 0; sel < 2; sel++) {
		uint32_t v = (uint32_t)(f >> (32 * sel));
		if (d->transport == VIRTIO_T_PCI) {
			mmio_write32(d->common + PC_GFSELECT, sel);
			mmio_write32(d->common + PC_GF, v);
		} else {
			mw(d, MMIO_DRIVER_FEATURES_SEL, sel);
			mw(d, MMIO_DRIVER_FEATURES, v);
		}
	}
}

int vdev_negotiate(struct vdev *d, uint64_t want)
{
	if (vdev_reset(d))
		return -1;
	vdev_set_status(d, VIRTIO_S_ACKNOWLEDGE);
	vdev_set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);
	d->offered = vdev_device_features(d);
	if (!(d->offered & VIRTIO_F_VERSION_1)) {
		vfail("%s: VERSION_1 not offered (features 0x%lx)", d->name,
		      (unsigned long)d->offered);
		return -1;
	}
	d->features = d->offered & (want | VIRTIO_F_VERSION_1);
	vdev_write_features(d, d->features);
	vdev_set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	uint8_t s = vdev_status(d);
	if (!(s & VIRTIO_S_FEATURES_OK)) {
		vfail("%s: FEATURES_OK did not stick for features 0x%lx (status 0x%x)", d->name,
		      (unsigned long)d->features, s);
		return -1;
	}
	return 0;
}

uint16_t vq_max_size(struct vdev *d, unsigned int q)
{
	if (d->transport == VIRTIO_T_PCI) {
		if (q >= mmio_read16(d->common + PC_NUM_QUEUES))
			return 0;
		mmio_write16(d->common + PC_Q_SELECT, (uint16_t)q);
		return mmio_read16(d->common + PC_Q_SIZE);
	}
	mw(d, MMIO_QUEUE_SEL, q);
	return (uint16_t)mr(d, MMIO_QUEUE_NUM_MAX);
}

uint16_t vq_size_raw(struct vdev *d, unsigned int q)
{
	if (d->transport == VIRTIO_T_PCI) {
		mmio_write16(d->common + PC_Q_SELECT, (uint16_t)q);
		return mmio_read16(d->common + PC_Q_SIZE);
	}
	mw(d, MMIO_QUEUE_SEL, q);
	return (uint16_t)mr(d, MMIO_QUEUE_NUM_MAX);
}

static void pc_write64(struct vdev *d, uint32_t off, uint64_t v)
{
	/* Two 32-bit halves, as Linux writes them (4.1.3.1 allows it). */
	mmio_write32(d->common + off, (uint32_t)v);
	mmio_write32(d->common + off + 4, (uint32_t)(v >> 32));
}

int vq_setup_raw(struct vdev *d, unsigned int q, uint16_t size, uint64_t desc, uint64_t avail,
		 uint64_t used, uint16_t vector)
{
	struct vq *vq = &d->vq[q < VQ_MAX ? q : 0];
	if (q >= VQ_MAX || !vq_max_size(d, q))
		return -1;
	vq->index = (uint16_t)q;
	vq->size = size;
	vq->ready = false;
	vq->desc = (volatile void *)(uintptr_t)desc;
	vq->avail = (volatile void *)(uintptr_t)avail;
	vq->used = (volatile void *)(uintptr_t)used;
	vq->avail_idx = vq->last_used = vq->next_desc = 0;
	if (d->transport == VIRTIO_T_PCI) {
		uint64_t c = d->common;
		mmio_write16(c + PC_Q_SELECT, (uint16_t)q);
		if (mmio_read16(c + PC_Q_ENABLE))
			vfail("%s: queue %u enabled right after reset", d->name, q);
		mmio_write16(c + PC_Q_SIZE, size);
		mmio_write16(c + PC_Q_MSIX, vector);
		pc_write64(d, PC_Q_DESC, desc);
		pc_write64(d, PC_Q_DRIVER, avail);
		pc_write64(d, PC_Q_DEVICE, used);
		vq->notify = d->notify_base + (uint64_t)mmio_read16(c + PC_Q_NOFF) * d->notify_mult;
		if (vector != VIRTIO_NO_VECTOR && mmio_read16(c + PC_Q_MSIX) != vector) {
			vfail("%s: queue %u: queue_msix_vector reads 0x%x after writing %u",
			      d->name, q, mmio_read16(c + PC_Q_MSIX), vector);
			return -3;
		}
		mmio_write16(c + PC_Q_ENABLE, 1);
		if (mmio_read16(c + PC_Q_ENABLE) != 1)
			return -2;
	} else {
		if (mr(d, MMIO_QUEUE_READY))
			vfail("%s: queue %u ready right after reset", d->name, q);
		mw(d, MMIO_QUEUE_NUM, size);
		mw(d, MMIO_QUEUE_DESC, (uint32_t)desc);
		mw(d, MMIO_QUEUE_DESC + 4, (uint32_t)(desc >> 32));
		mw(d, MMIO_QUEUE_DRIVER, (uint32_t)avail);
		mw(d, MMIO_QUEUE_DRIVER + 4, (uint32_t)(avail >> 32));
		mw(d, MMIO_QUEUE_DEVICE, (uint32_t)used);
		mw(d, MMIO_QUEUE_DEVICE + 4, (uint32_t)(used >> 32));
		mw(d, MMIO_QUEUE_READY, 1);
		if (mr(d, MMIO_QUEUE_READY) != 1)
			return -2;
	}
	vq->ready = true;
	return 0;
}

int vq_setup(struct vdev *d, unsigned int q, uint16_t cap, uint16_t vector)
{
	uint16_t max = vq_max_size(d, q);
	if (!max || q >= VQ_MAX)
		return -1;
	uint16_t size = max < cap ? max : cap;
	uint8_t *page = d->ring_mem + 4096 * q;
	/* desc 16*64 bytes at 0, avail 6+2*64 at 1024, used 6+8*64 at 2048. */
	volatile struct vring_avail *avail = (volatile void *)(page + 1024);
	volatile struct vring_used *used = (volatile void *)(page + 2048);
	avail->flags = avail->idx = 0;
	used->flags = used->idx = 0;
	return vq_setup_raw(d, q, size, (uintptr_t)page, (uintptr_t)avail, (uintptr_t)used, vector);
}

int vdev_driver_ok(struct vdev *d)
{
	vdev_set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK |
				   VIRTIO_S_DRIVER_OK);
	uint8_t s = vdev_status(d);
	if (!(s & VIRTIO_S_DRIVER_OK) || (s & (VIRTIO_S_NEEDS_RESET | VIRTIO_S_FAILED)))
		return -1;
	return 0;
}

int vdev_init(struct vdev *d, uint64_t want, unsigned int nq, uint16_t vector)
{
	if (vdev_negotiate(d, want))
		return -1;
	for (unsigned int q = 0; q < nq; q++) {
		int r = vq_setup(d, q, VQ_SIZE_CAP, vector);
		if (r) {
			vfail("%s: queue %u setup failed (%s)", d->name, q,
			      r == -1	? "no such queue"
			      : r == -2 ? "enable did not stick"
					: "vector");
			return -1;
		}
	}
	if (vdev_driver_ok(d)) {
		vfail("%s: DRIVER_OK: status 0x%x", d->name, vdev_status(d));
		return -1;
	}
	return 0;
}

/* ---- device configuration ---- */
static uint64_t cfg_addr(struct vdev *d, uint32_t off)
{
	return d->transport == VIRTIO_T_PCI ? d->devcfg + off : d->base + MMIO_CONFIG + off;
}
uint8_t vdev_cfg8(struct vdev *d, uint32_t off)
{
	return mmio_read8(cfg_addr(d, off));
}
uint16_t vdev_cfg16(struct vdev *d, uint32_t off)
{
	return mmio_read16(cfg_addr(d, off));
}
uint32_t vdev_cfg32(struct vdev *d, uint32_t off)
{
	return mmio_read32(cfg_addr(d, off));
}

uint8_t vdev_config_generation(struct vdev *d)
{
	if (d->transport == VIRTIO_T_PCI)
		return mmio_read8(d->common + PC_CFG_GENERATION);
	return (uint8_t)mr(d, MMIO_CONFIG_GENERATION);
}

uint64_t vdev_cfg64(struct vdev *d, uint32_t off)
{
	uint64_t v = 0;
	for (int tries = 0; tries < 10; tries++) {
		uint8_t g = vdev_config_generation(d);
		v = vdev_cfg32(d, off) | (uint64_t)vdev_cfg32(d, off + 4) << 32;
		if (vdev_config_generation(d) == g)
			break;
	}
	return v;
}

/* ---- requests ---- */
void vq_notify(struct vdev *d, unsigned int q)
{
	mb(); /* ring writes before the notification (2.7.13) */
	if (d->transport == VIRTIO_T_PCI)
		mmio_write16(d->vq[q].notify, (uint16_t)q);
	else
		mw(d, MMIO_QUEUE_NOTIFY, q);
}

void vq_publish(struct vdev *d, unsigned int q, uint16_t head)
{
	struct vq *vq = &d->vq[q];
	vq->avail->ring[vq->avail_idx % vq->size] = head;
	barrier(); /* entry before index (2.7.13.2); x86 keeps stores in order */
	vq->avail->idx = ++vq->avail_idx;
	vq->head = head;
}

void vq_put_head(struct vdev *d, unsigned int q, uint16_t head)
{
	vq_publish(d, q, head);
	vq_notify(d, q);
}

uint16_t vq_add(struct vdev *d, unsigned int q, const struct vbuf *b, int n)
{
	struct vq *vq = &d->vq[q];
	uint16_t head = vq->next_desc;
	for (int i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % vq->size);
		vq->desc[idx].addr = b[i].addr;
		vq->desc[idx].len = b[i].len;
		vq->desc[idx].flags = (uint16_t)((b[i].write ? VRING_DESC_F_WRITE : 0) |
						 (i + 1 < n ? VRING_DESC_F_NEXT : 0));
		vq->desc[idx].next = (uint16_t)((idx + 1) % vq->size);
	}
	vq->next_desc = (uint16_t)((head + n) % vq->size);
	vq_publish(d, q, head);
	return head;
}

uint16_t vq_submit(struct vdev *d, unsigned int q, const struct vbuf *b, int n)
{
	uint16_t head = vq_add(d, q, b, n);
	vq_notify(d, q);
	return head;
}

int vq_wait(struct vdev *d, unsigned int q, uint32_t *id, uint32_t *len)
{
	return vq_wait_tsc(d, q, id, len, VIRTIO_TIMEOUT_TSC);
}

int vq_wait_tsc(struct vdev *d, unsigned int q, uint32_t *id, uint32_t *len, uint64_t limit)
{
	struct vq *vq = &d->vq[q];
	uint64_t t0 = rdtsc();
	for (unsigned int i = 1;; i++) {
		uint16_t u = vq->used->idx;
		if (u != vq->last_used) {
			barrier(); /* index before entry; x86 keeps loads in order */
			if ((uint16_t)(u - vq->last_used) > 1)
				vfail("%s: used idx moved by %u for one request", d->name,
				      (uint16_t)(u - vq->last_used));
			/* size 0 only in the hostile test's refused-size case */
			volatile struct vring_used_elem *e =
				&vq->used->ring[vq->size ? vq->last_used % vq->size : 0];
			*id = e->id;
			*len = e->len;
			vq->last_used = u;
			return VQ_DONE;
		}
		if (!(i & 31)) {
			if (vdev_status(d) & VIRTIO_S_NEEDS_RESET)
				return VQ_NEEDS_RESET;
			if (rdtsc() - t0 > limit)
				return VQ_TIMEOUT;
		}
		cpu_relax();
	}
}

int vq_request(struct vdev *d, unsigned int q, const struct vbuf *b, int n, uint32_t *len)
{
	uint16_t head = vq_submit(d, q, b, n);
	uint32_t id;
	int r = vq_wait(d, q, &id, len);
	if (r == VQ_DONE && id != head) {
		vfail("%s: used id %u, want head %u", d->name, id, head);
		return -1;
	}
	return r;
}

void vq_poke(struct vdev *d, unsigned int q, uint16_t size, uint64_t desc, bool enable)
{
	if (d->transport == VIRTIO_T_PCI) {
		mmio_write16(d->common + PC_Q_SELECT, (uint16_t)q);
		mmio_write16(d->common + PC_Q_SIZE, size);
		pc_write64(d, PC_Q_DESC, desc);
		if (enable)
			mmio_write16(d->common + PC_Q_ENABLE, 1);
	} else {
		mw(d, MMIO_QUEUE_SEL, q);
		mw(d, MMIO_QUEUE_NUM, size);
		mw(d, MMIO_QUEUE_DESC, (uint32_t)desc);
		mw(d, MMIO_QUEUE_DESC + 4, (uint32_t)(desc >> 32));
		if (enable)
			mw(d, MMIO_QUEUE_READY, 1);
	}
}

void vdev_notify_raw(struct vdev *d, uint32_t value)
{
	mb();
	if (d->transport == VIRTIO_T_PCI)
		mmio_write16(d->vq[0].notify, (uint16_t)value);
	else
		mw(d, MMIO_QUEUE_NOTIFY, value);
}

bool vdev_wait_status(struct vdev *d, uint8_t mask)
{
	uint64_t t0 = rdtsc();
	while (!(vdev_status(d) & mask)) {
		if (rdtsc() - t0 > VIRTIO_TIMEOUT_TSC)
			return false;
		cpu_relax();
	}
	return true;
}

/* ---- interrupts ---- */
int vdev_msix_enable(struct vdev *d, unsigned int entry, uint8_t vector)
{
	if (d->transport != VIRTIO_T_PCI || !d->msix_cap || !d->msix_table || entry >= d->msix_n)
		return -1;
	uint64_t e = d->msix_table + 16 * entry;
	mmio_write32(e + 0, (uint32_t)LAPIC_BASE | lapic_id() << 12);
	mmio_write32(e + 4, 0);
	mmio_write32(e + 8, vector); /* fixed delivery, edge */
	mmio_write32(e + 12, 0);     /* unmasked */
	uint16_t ctl = pci_read16(d->bdf, d->msix_cap + 2);
	pci_write16(d->bdf, d->msix_cap + 2, (uint16_t)((ctl | 0x8000) & ~0x4000));
	return 0;
}

void vdev_msix_disable(struct vdev *d)
{
	if (d->transport == VIRTIO_T_PCI && d->msix_cap) {
		uint16_t ctl = pci_read16(d->bdf, d->msix_cap + 2);
		pci_write16(d->bdf, d->msix_cap + 2, ctl & 0x3fff);
	}
}

void vdev_msix_mask(struct vdev *d, unsigned int entry, bool masked)
{
	mmio_write32(d->msix_table + 16 * entry + 12, masked);
}

bool vdev_msix_pending(struct vdev *d, unsigned int entry)
{
	return mmio_read32(d->msix_pba + 4 * (entry / 32)) >> (entry % 32) & 1;
}

int ioapic_route(uint32_t gsi, uint8_t vector, bool masked)
{
	uint32_t max = (ioapic_read(1) >> 16) & 0xff;
	if (gsi > max)
		return -1;
	ioapic_write(0x10 + 2 * gsi + 1, lapic_id() << 24);
	/* fixed, physical, active high, edge */
	ioapic_write(0x10 + 2 * gsi, vector | (masked ? 1u << 16 : 0));
	return 0;
}

uint32_t vdev_isr(struct vdev *d)
{
	if (d->transport == VIRTIO_T_PCI)
		return mmio_read8(d->isr);
	return mr(d, MMIO_INTERRUPT_STATUS);
}

void vdev_isr_ack(struct vdev *d, uint32_t bits)
{
	if (d->transport == VIRTIO_T_MMIO)
		mw(d, MMIO_INTERRUPT_ACK, bits);
}

static void spurious(struct trap_frame *f)
{
	(void)f;
}

void irq_prepare(void)
{
	outb(0x21, 0xff); /* both 8259s masked: only the IOAPIC and MSIs deliver */
	outb(0xa1, 0xff);
	lapic_write(0x350, lapic_read(0x350) | 1u << 16); /* LVT LINT0 masked */
	lapic_write(0x80, 0);				  /* TPR */
	trap_set_handler(0xff, spurious);
	idt_set_gate(0xff, 0);
	lapic_write(LAPIC_SVR, 0x1ff); /* software enable, spurious vector 0xff */
}
