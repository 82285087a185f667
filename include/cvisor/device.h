/* device.h - the one lifecycle every device the VM owns implements, for
 * the snapshot and migration code, which treat all devices alike: the
 * platform devices of src/dev (serial8250, i8042, rtc, acpi_pm), the PCI
 * host bridge, and each virtio device (through one adapter in
 * src/devices.c that adds the transport's and the virtio core's state).
 *
 * What stays distinct, and why:
 *  - struct bus_ops (bus.h): register reads and writes from vCPU exits.
 *    It is per address range, not per device (the i8042 has two), and it
 *    is the hot path, so it is not folded into a table of slower hooks.
 *  - struct virtio_dev_ops (virtio.h): what only a virtio device model
 *    has (features, config space, activate, notify), and its part of the
 *    lifecycle below (reset, save, load, quiesce, resume, destroy), which
 *    the virtio core wraps with the state every virtio device shares
 *    (status, features, queues) and the transport's.
 *  - struct device_type (devices.h): how a device is asked for and
 *    created (flag, config key, create); a type, where these are
 *    instances. */
#ifndef CVISOR_DEVICE_H
#define CVISOR_DEVICE_H

#include "cvisor/state.h"
#include "cvisor/util.h"

/* kvmtool virtio_ops style, with the Firecracker / Cloud Hypervisor
 * persist and pause hooks. Any hook may be NULL when the device has
 * nothing to do. load() validates everything it reads and returns -EINVAL
 * on anything out of range. */
struct device_ops {
	const char *name;
	/* Back to the power-on state. */
	void (*reset)(void *dev);
	/* Finish the I/O in flight and take no new requests (main thread,
	 * vCPUs paused), so that save() sees a still device; resume() undoes
	 * it. */
	int (*quiesce)(void *dev);
	void (*resume)(void *dev);
	int (*save)(void *dev, struct state_buf *out);
	int (*load)(void *dev, struct state_rd *in);
	/* Free what the device's create made. */
	void (*destroy)(void *dev);
};

/* A device instance: its name in the snapshot's DEVICE section, its ops,
 * and the state they take. */
struct device {
	const char *name;
	const struct device_ops *ops;
	void *dev;
};

#endif
