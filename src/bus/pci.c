/* pci.c - PCI configuration mechanism #1 and bus 0 (PCI Local Bus 3.0
 * section 3.2.2.3.2; header type 0 per section 6.1). */
#include "cvisor/pci.h"

#include <errno.h>
#include <string.h>

#define CFG_VENDOR 0x00
#define CFG_DEVICE 0x02
#define CFG_COMMAND 0x04
#define CFG_STATUS 0x06
#define CFG_REVISION 0x08
#define CFG_CLASS 0x09
#define CFG_HEADER_TYPE 0x0e
#define CFG_BAR0 0x10
#define CFG_SUBSYS_VENDOR 0x2c
#define CFG_SUBSYS_ID 0x2e
#define CFG_CAP_PTR 0x34
#define CFG_INTERRUPT_LINE 0x3c
#define STATUS_CAP_LIST 0x10
#define CAP_FIRST 0x40

void pci_device_init(struct pci_device *p, uint16_t vendor, uint16_t device, uint32_t class_code,
		     uint16_t subsys_vendor, uint16_t subsys_id, uint8_t revision)
{
	memset(p, 0, sizeof(*p));
	cv_put_le16(p->cfg + CFG_VENDOR, vendor);
	cv_put_le16(p->cfg + CFG_DEVICE, device);
	p->cfg[CFG_REVISION] = revision;
	p->cfg[CFG_CLASS] = (uint8_t)class_code;
	p->cfg[CFG_CLASS + 1] = (uint8_t)(class_code >> 8);
	p->cfg[CFG_CLASS + 2] = (uint8_t)(class_code >> 16);
	cv_put_le16(p->cfg + CFG_SUBSYS_VENDOR, subsys_vendor);
	cv_put_le16(p->cfg + CFG_SUBSYS_ID, subsys_id);
	/* Command: I/O, memory, bus master; interrupt line scratch. */
	p->wmask[CFG_COMMAND] = 0x07;
	p->wmask[CFG_COMMAND + 1] = 0x04; /* INTx disable */
	p->wmask[CFG_INTERRUPT_LINE] = 0xff;
	p->next_cap = CAP_FIRST;
}

uint8_t pci_add_cap(struct pci_device *p, uint8_t cap_id, uint8_t len)
{
	uint8_t at = p->next_cap;

	if (len < 2 || at + len > PCI_CFG_SIZE)
		return 0;
	p->cfg[at] = cap_id;
	p->cfg[at + 1] = p->cfg[CFG_CAP_PTR];
	/* Prepend: the list order does not matter to drivers. */
	p->cfg[CFG_CAP_PTR] = at;
	p->cfg[CFG_STATUS] |= STATUS_CAP_LIST;
	p->next_cap = (uint8_t)((at + len + 3) & ~3);
	return at;
}

int pci_device_add_bar(struct pci_bus *b, struct pci_device *p, unsigned int bar, uint64_t size,
		       const struct bus_ops *ops, void *opaque, const char *name)
{
	uint64_t addr = (b->mmio_next + size - 1) & ~(size - 1);
	int r;

	if (bar > 4 || size < 16 || (size & (size - 1)) || addr + size > PCI_MMIO_END)
		return -EINVAL;
	if ((r = bus_register(b->mmio, addr, size, ops, opaque, name)))
		return r;
	b->mmio_next = addr + size;
	p->bar_size[bar] = size;
	p->bar_addr[bar] = addr;
	/* 64-bit memory BAR: type 10b in bits 2:1, spanning two registers. */
	cv_put_le32(p->cfg + CFG_BAR0 + 4 * bar, (uint32_t)addr | 0x4);
	cv_put_le32(p->cfg + CFG_BAR0 + 4 * bar + 4, (uint32_t)(addr >> 32));
	cv_put_le32(p->wmask + CFG_BAR0 + 4 * bar, (uint32_t) ~(size - 1) & ~0xfU);
	cv_put_le32(p->wmask + CFG_BAR0 + 4 * bar + 4, 0xffffffff);
	return 0;
}

int pci_bus_add(struct pci_bus *b, struct pci_device *p)
{
	for (unsigned int i = 0; i < PCI_MAX_DEVICES; i++) {
		if (!b->devs[i]) {
			b->devs[i] = p;
			p->bus = b;
			return 0;
		}
	}
	return -ENOSPC;
}

static struct pci_device *addressed(struct pci_bus *b, uint32_t *reg)
{
	uint32_t a = b->config_addr;

	/* Enable bit, bus 0, function 0 only. */
	if (!(a & 0x80000000U) || ((a >> 16) & 0xff) || ((a >> 8) & 0x7))
		return NULL;
	*reg = a & 0xfc;
	return b->devs[(a >> 11) & 0x1f];
}

/* A guest moving a BAR away from where cvisor put it is not supported;
 * sizing (all ones) and restoring the address are. */
static uint32_t cfg32(const struct pci_device *p, unsigned int off)
{
	return p->cfg[off] | (uint32_t)p->cfg[off + 1] << 8 | (uint32_t)p->cfg[off + 2] << 16 |
	       (uint32_t)p->cfg[off + 3] << 24;
}

/* Sizing a BAR (all ones, one dword at a time) leaves it where it is; any
 * other address written moves the decoding there, as firmware (SeaBIOS's
 * pciinit) assigns every BAR itself. A move onto another region is
 * refused, and said once. Called with the bus lock held. */
static unsigned int check_bars(struct pci_bus *b, struct pci_device *p, uint64_t old[6])
{
	unsigned int moved = 0;

	for (unsigned int i = 0; i < 6; i++) {
		uint32_t lo, hi, mask;
		uint64_t to;
		int r;

		if (!p->bar_size[i])
			continue;
		lo = cfg32(p, CFG_BAR0 + 4 * i) & ~0xfU;
		hi = cfg32(p, CFG_BAR0 + 4 * i + 4);
		mask = (uint32_t) ~(p->bar_size[i] - 1) & ~0xfU;
		to = (uint64_t)hi << 32 | lo;
		if (lo == mask || hi == 0xffffffffU || to == p->bar_addr[i])
			continue;
		/* Never over RAM, the APICs or the ROM (a guest-chosen address). */
		if (to < PCI_MMIO_BASE || to > PCI_HOLE_END - p->bar_size[i])
			r = -ERANGE;
		else
			r = bus_move(b->mmio, p->bar_addr[i], to);
		if (!r) {
			old[i] = p->bar_addr[i];
			p->bar_addr[i] = to;
			moved |= 1u << i;
		} else if (!p->bar_warned) {
			p->bar_warned = true;
			cv_warn("pci: guest moved a BAR to %#llx: %s; cvisor keeps decoding it at "
				"%#llx",
				(unsigned long long)to,
				r == -EEXIST   ? "that overlaps another device"
				: r == -ERANGE ? "outside the PCI hole (RAM, the APICs or the ROM)"
					       : strerror(-r),
				(unsigned long long)p->bar_addr[i]);
		}
	}
	return moved;
}

static void data_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct pci_bus *b = opaque;
	struct pci_device *p;
	uint32_t reg = 0;

	pthread_mutex_lock(&b->lock);
	p = addressed(b, &reg);
	for (uint32_t i = 0; i < len; i++) {
		uint32_t at = reg + (uint32_t)off + i;

		data[i] = p && at < PCI_CFG_SIZE ? p->cfg[at] : 0xff;
	}
	pthread_mutex_unlock(&b->lock);
}

/* Outside the bus lock (the device takes its own): tell p which BARs
 * moved from old to to. */
static void tell_moved(struct pci_device *p, unsigned int moved, const uint64_t old[6],
		       const uint64_t to[6])
{
	for (unsigned int i = 0; i < 6; i++)
		if ((moved & (1u << i)) && p->ops && p->ops->bar_moved)
			p->ops->bar_moved(p, i, old[i], to[i]);
}

void pci_device_sync_bars(struct pci_device *p)
{
	struct pci_bus *b = p->bus;
	uint64_t old[6], to[6];
	unsigned int moved;

	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	moved = check_bars(b, p, old);
	memcpy(to, p->bar_addr, sizeof(to));
	pthread_mutex_unlock(&b->lock);
	tell_moved(p, moved, old, to);
}

static void data_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct pci_bus *b = opaque;
	struct pci_device *p;
	uint32_t reg = 0;
	uint64_t old[6], to[6];
	unsigned int moved = 0;

	pthread_mutex_lock(&b->lock);
	p = addressed(b, &reg);
	if (p) {
		for (uint32_t i = 0; i < len; i++) {
			uint32_t at = reg + (uint32_t)off + i;

			if (at < PCI_CFG_SIZE)
				p->cfg[at] = (uint8_t)((p->cfg[at] & ~p->wmask[at]) |
						       (data[i] & p->wmask[at]));
		}
		if (reg == CFG_BAR0 || (reg > CFG_BAR0 && reg < CFG_BAR0 + 24))
			moved = check_bars(b, p, old);
		memcpy(to, p->bar_addr, sizeof(to));
	}
	pthread_mutex_unlock(&b->lock);
	if (p)
		tell_moved(p, moved, old, to);
	/* Outside the bus lock: the device takes its own. */
	if (p && p->ops && p->ops->cfg_written)
		p->ops->cfg_written(p, reg + (uint32_t)off, len);
}

static void addr_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct pci_bus *b = opaque;
	uint32_t v;

	pthread_mutex_lock(&b->lock);
	v = b->config_addr;
	pthread_mutex_unlock(&b->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < 4 ? (uint8_t)(v >> (8 * (off + i))) : 0xff;
}

static void addr_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct pci_bus *b = opaque;

	/* Only a dword write at 0xcf8 selects a register (mechanism #1);
	 * byte writes to 0xcf9 are the chipset's reset control, ignored. */
	if (off != 0 || len != 4)
		return;
	pthread_mutex_lock(&b->lock);
	memcpy(&b->config_addr, data, 4);
	pthread_mutex_unlock(&b->lock);
}

static const struct bus_ops addr_ops = { .read = addr_read, .write = addr_write };
static const struct bus_ops data_ops = { .read = data_read, .write = data_write };

int pci_bus_init(struct pci_bus *b, struct bus *pio, struct bus *mmio)
{
	int r;

	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	b->mmio = mmio;
	b->mmio_next = PCI_MMIO_BASE;
	/* Linux's pci_sanity_check wants a host bridge or an Intel device on
	 * bus 0 before it trusts mechanism #1. */
	pci_device_init(&b->host_bridge, 0x8086, PCI_HOST_BRIDGE_Q35, 0x060000, 0x1af4, 0x1100, 0);
	b->devs[0] = &b->host_bridge;
	if ((r = bus_register(pio, PCI_CONFIG_ADDR, 4, &addr_ops, b, "pci-addr")) ||
	    (r = bus_register(pio, PCI_CONFIG_DATA, 4, &data_ops, b, "pci-data")))
		return r;
	return 0;
}

void pci_host_bridge_set_device(struct pci_bus *b, uint16_t device)
{
	cv_put_le16(b->host_bridge.cfg + CFG_DEVICE, device);
}
