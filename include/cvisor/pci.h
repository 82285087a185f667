/* pci.h - a PCI host bridge on configuration mechanism #1 (ports
 * 0xcf8/0xcfc), bus 0 only, with devices whose BARs cvisor assigns the way
 * firmware would, so that a stock kernel takes them as they are. */
#ifndef CVISOR_PCI_H
#define CVISOR_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvisor/bus.h"
#include "cvisor/util.h"

#define PCI_CONFIG_ADDR 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_MAX_DEVICES 32
#define PCI_CFG_SIZE 256
/* BARs live in the 32-bit hole, below the virtio-mmio window. */
#define PCI_MMIO_BASE 0xc0000000ULL
#define PCI_MMIO_END 0xd0000000ULL
/* The PC's 32-bit PCI hole, from the end of low RAM (at most
 * GUEST_MEM_LOW_LIMIT, which is PCI_MMIO_BASE) to the IOAPIC: where a
 * guest (SeaBIOS, Linux) may move a BAR. Below it is RAM; above it the
 * IOAPIC, the local APICs and the firmware ROM. */
#define PCI_HOLE_END 0xfec00000ULL

struct pci_device;

struct pci_device_ops {
	/* After a config write the bus applied (offset, len); for devices
	 * that react to their capabilities (MSI-X enable, ...). */
	void (*cfg_written)(struct pci_device *p, uint32_t off, uint32_t len);
	/* After the guest moved BAR `bar` and the bus decodes it at new_addr
	 * (called outside the bus lock). May be NULL. */
	void (*bar_moved)(struct pci_device *p, unsigned int bar, uint64_t old, uint64_t new_addr);
};

struct pci_device {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may change */
	uint64_t bar_size[6];	     /* 0 = unused BAR */
	uint64_t bar_addr[6];	     /* where cvisor decodes it */
	bool bar_warned;
	const struct pci_device_ops *ops;
	void *opaque;
	struct pci_bus *bus; /* set by pci_bus_add */
	uint8_t next_cap;    /* where pci_add_cap puts the next capability */
};

struct pci_bus {
	pthread_mutex_t lock;
	uint32_t config_addr;
	struct pci_device *devs[PCI_MAX_DEVICES];
	uint64_t mmio_next;
	struct bus *mmio;
	struct pci_device host_bridge;
};

/* Put the host bridge at 00:00.0 and the config ports on pio. */
int pci_bus_init(struct pci_bus *b, struct bus *pio, struct bus *mmio) CV_MUST;

/* The host bridge's device ids: Q35's MCH (the default, which Linux's
 * sanity check accepts), or the i440FX that firmware guests see: SeaBIOS
 * takes a Q35 id to mean an ECAM window at 0xb0000000, which cvisor does
 * not decode (src/boot/firmware.c). */
#define PCI_HOST_BRIDGE_Q35 0x29c0
#define PCI_HOST_BRIDGE_I440FX 0x1237

/* Change the host bridge's device id, before the guest runs. */
void pci_host_bridge_set_device(struct pci_bus *b, uint16_t device);

/* Initialize a device's header: ids, class (24-bit class/subclass/prog-if),
 * no INTx pin, capability list empty. */
void pci_device_init(struct pci_device *p, uint16_t vendor, uint16_t device, uint32_t class_code,
		     uint16_t subsys_vendor, uint16_t subsys_id, uint8_t revision);

/* Give BAR `bar` a 64-bit prefetchable-off memory region of `size` (a power
 * of two) in the PCI window and decode it with ops. */
int pci_device_add_bar(struct pci_bus *b, struct pci_device *p, unsigned int bar, uint64_t size,
		       const struct bus_ops *ops, void *opaque, const char *name) CV_MUST;

/* Append a capability of `len` bytes with id `cap_id`; returns its offset
 * in config space (the caller fills the body), or 0 if there is no room. */
uint8_t pci_add_cap(struct pci_device *p, uint8_t cap_id, uint8_t len);

/* Plug the device into the first free slot. -ENOSPC. */
int pci_bus_add(struct pci_bus *b, struct pci_device *p) CV_MUST;

/* Decode each of p's BARs where its config space now says (a state
 * loaded into it: a snapshot, a reset in place), as a guest's write
 * there would, bar_moved included; a place refused is said once. */
void pci_device_sync_bars(struct pci_device *p);

#endif
