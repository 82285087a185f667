/* devices.h - the VM's paravirtual devices: which ones the user asked for,
 * and attaching them to the chosen transport (virtio-pci or virtio-mmio). */
#ifndef CVISOR_DEVICES_H
#define CVISOR_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/irq.h"
#include "cvisor/pci.h"
#include "cvisor/util.h"
#include "cvisor/virtio.h"
#include "cvisor/virtio_mmio.h"
#include "cvisor/virtio_pci.h"

#define VM_MAX_VIRTIO 16
#define DEVICES_MAX_DISKS 8
#define DEVICES_MAX_NETS 4
/* virtio-mmio devices: 4 KiB apart from here, with ISA interrupts that no
 * emulated device uses. */
#define VIRTIO_MMIO_BASE 0xd8000000ULL
#define VIRTIO_MMIO_STRIDE 0x1000

enum virtio_transport_kind {
	VIRTIO_TRANSPORT_PCI,  /* any stock kernel finds these */
	VIRTIO_TRANSPORT_MMIO, /* microVM kernels, announced on the command line */
};

/* What the user asked for, as given on the command line or in the config
 * file; each spec is parsed by its device when the VM is built. */
struct devices_config {
	enum virtio_transport_kind transport;
	const char *disks[DEVICES_MAX_DISKS]; /* --disk PATH[,readonly][,serial=ID] */
	unsigned int ndisks;
	const char *nets[DEVICES_MAX_NETS]; /* --net user[,hostfwd=...] | tap=NAME */
	unsigned int nnets;
	bool rng;		/* --rng */
	uint64_t balloon_bytes; /* --balloon SIZE (starting target) */
	bool balloon;
	const char *vsock; /* --vsock CID[,uds=PATH] */
};

/* Record one device flag (--disk, --net, --rng, --balloon, --vsock,
 * --virtio) into dc. Returns 1 if flag is a device flag and was taken, 0 if
 * it is not a device flag, or -EINVAL with one line in err. Pure. */
int devices_parse_flag(struct devices_config *dc, const char *flag, const char *value, char *err,
		       size_t errlen) CV_MUST;

/* True for device flags that take no value (--rng). */
bool devices_flag_is_bool(const char *flag);

struct vm_virtio {
	struct virtio_dev dev;
	union {
		struct virtio_pci pci;
		struct virtio_mmio mmio;
	} t;
	void (*destroy)(struct virtio_dev *d); /* the device model's cleanup */
};

struct vm;

/* The PCI bus and the interrupt router; before any device is attached. */
int vm_devices_init(struct vm *vm) CV_MUST;

/* Create every device dc asks for and attach it. On failure prints one
 * line and returns -errno; *usage is set when the user's spec was at fault. */
int vm_devices_create(struct vm *vm, const struct devices_config *dc, bool *usage) CV_MUST;

/* Attach an initialized device to the VM's transport; the VM owns v from
 * now on (freed by vm_devices_destroy). */
int vm_attach_virtio(struct vm *vm, struct vm_virtio *v) CV_MUST;

/* Words for the kernel command line (virtio-mmio announcements), or "". */
const char *vm_devices_cmdline(const struct vm *vm);

void vm_devices_destroy(struct vm *vm);

#endif
