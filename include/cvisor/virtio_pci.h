/* virtio_pci.h - the modern virtio-pci transport (virtio 1.2 section 4.1)
 * with MSI-X, so that any stock kernel finds the devices without help. */
#ifndef CVISOR_VIRTIO_PCI_H
#define CVISOR_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "cvisor/evloop.h"
#include "cvisor/irq.h"
#include "cvisor/pci.h"
#include "cvisor/virtio.h"

#define VIRTIO_PCI_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)

struct virtio_pci_msix_entry {
	uint64_t addr;
	uint32_t data;
	uint32_t ctrl; /* bit 0: masked */
	uint32_t gsi;
	int irqfd;
};

struct virtio_pci {
	struct pci_device pci;
	struct virtio_dev *dev;
	struct irq_router *router;
	struct evloop *loop;
	uint32_t device_features_sel, driver_features_sel;
	uint16_t queue_sel;
	uint8_t msix_cap; /* offset of the MSI-X capability in config space */
	unsigned int nvec;
	struct virtio_pci_msix_entry msix[VIRTIO_PCI_MAX_VECTORS];
	_Atomic uint64_t pending; /* PBA: one bit per vector */
	int kick_fd[VIRTIO_MAX_QUEUES];
	/* kick_fd[q] is KVM's ioeventfd at bar's notify address for q (else a
	 * plain eventfd, signalled from the MMIO exit). */
	bool kick_ioeventfd[VIRTIO_MAX_QUEUES];
	uint64_t bar;
};

/* Create the PCI function for d on bus b: config header, virtio
 * capabilities, BAR 0 with the common/ISR/device/notify areas and the
 * MSI-X table, an irqfd per vector and an ioeventfd per queue. */
int virtio_pci_attach(struct virtio_pci *vp, struct virtio_dev *d, struct pci_bus *b,
		      struct irq_router *router, struct evloop *loop) CV_MUST;

/* Close what attach opened (the irqfds and the queues' kick eventfds,
 * off the loop); the VM's fd and loop still exist. Safe after a failed
 * attach and on a zeroed struct that was never attached. */
void virtio_pci_detach(struct virtio_pci *vp);

/* Save / load the transport's state (config space as the guest left it,
 * MSI-X table and pending bits, register selectors) for snapshots; load
 * refuses a config space that differs from this device's in anything the
 * guest cannot write, and re-programs the MSI routes. Vcpus paused. */
int virtio_pci_save(struct virtio_pci *vp, struct state_buf *out) CV_MUST;
int virtio_pci_load(struct virtio_pci *vp, struct state_rd *in) CV_MUST;

#endif
