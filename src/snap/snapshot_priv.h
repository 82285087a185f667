/* snapshot_priv.h - what snapshot.c (saving) and snapshot_load.c share:
 * the list of devices a snapshot holds. Private to src/snap. */
#ifndef CVISOR_SNAPSHOT_PRIV_H
#define CVISOR_SNAPSHOT_PRIV_H

#include "cvisor/snapshot.h"
#include "cvisor/vm.h"

#define PCI_BUS_STATE_VERSION 1

enum dev_kind { DEV_OPS, DEV_PCI_BUS, DEV_VIRTIO };

struct snap_dev {
	const char *name;
	enum dev_kind kind;
	const struct device_ops *ops; /* DEV_OPS */
	void *dev;
	struct vm_virtio *v; /* DEV_VIRTIO */
};

/* Every device whose state a snapshot holds, in a fixed order, into d
 * (SNAPSHOT_MAX_DEVICES entries); returns the count. */
unsigned int snapshot_list_devices(struct vm *vm, struct snap_dev *d);

#endif
