/* virtio_mmio.h - the virtio-mmio transport (virtio 1.2 section 4.2),
 * version 2, announced to Linux on its command line. */
#ifndef CVISOR_VIRTIO_MMIO_H
#define CVISOR_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include "cvisor/bus.h"
#include "cvisor/evloop.h"
#include "cvisor/virtio.h"

#define VIRTIO_MMIO_SIZE 0x200

struct virtio_mmio {
	struct virtio_dev *dev;
	uint64_t base;
	uint32_t gsi;
	int irqfd;
	int kick_fd[VIRTIO_MAX_QUEUES];
	bool kick_by_kvm[VIRTIO_MAX_QUEUES]; /* ioeventfd registered */
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	struct evloop *loop;
};

/* Put d on the MMIO bus at base (VIRTIO_MMIO_SIZE bytes) with interrupt
 * gsi; notifications through ioeventfd where KVM has it. */
int virtio_mmio_attach(struct virtio_mmio *m, struct virtio_dev *d, struct bus *mmio, int vm_fd,
		       struct evloop *loop, uint64_t base, uint32_t gsi) CV_MUST;

/* Close what attach opened (the irqfd and the queues' kick eventfds, off
 * the loop); the VM's fd and loop still exist. Safe after a failed attach
 * and on a zeroed struct that was never attached. */
void virtio_mmio_detach(struct virtio_mmio *m);

/* "virtio_mmio.device=512@0xd0000000:5" for the kernel command line. */
void virtio_mmio_cmdline(const struct virtio_mmio *m, char *buf, size_t len);

/* Save / load the transport's state (register selectors; base and GSI,
 * which load checks against this device's) for snapshots. */
int virtio_mmio_save(struct virtio_mmio *m, struct state_buf *out) CV_MUST;
int virtio_mmio_load(struct virtio_mmio *m, struct state_rd *in) CV_MUST;

#endif
