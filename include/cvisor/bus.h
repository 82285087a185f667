/* bus.h - port I/O and MMIO dispatch from vCPU exits to device models. */
#ifndef CVISOR_BUS_H
#define CVISOR_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvisor/util.h"

/* A device region's handler. `offset` is relative to the region base.
 * For reads the handler fills data[0..len); for writes it consumes it.
 * len is 1, 2, 4 or 8. Called from vCPU threads: handlers lock their own
 * device state. */
struct bus_ops {
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);
};

struct bus_region {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

#define BUS_MAX_REGIONS 64

/* One address space (port I/O or MMIO). Regions are registered before the
 * vCPUs start, so lookup takes no lock; only a region's base may change
 * while they run (bus_move: a PCI BAR the guest's firmware assigns), and
 * it is read and written atomically. */
struct bus {
	struct bus_region regions[BUS_MAX_REGIONS];
	unsigned int nr;
};

/* Register [base, base+len) with ops; -EEXIST on overlap, -ENOSPC if full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name) CV_MUST;

/* Move the region based at old_base to new_base, keeping its length:
 * -ENOENT if no region starts at old_base, -EINVAL if the new range wraps,
 * -EEXIST if it would overlap another region. Called with whatever lock
 * serializes moves of this bus (the PCI bus lock). */
int bus_move(struct bus *bus, uint64_t old_base, uint64_t new_base) CV_MUST;

/* Dispatch an access. Unclaimed reads return all-ones and unclaimed writes
 * are dropped, as on real hardware. Returns true if a device claimed it. */
bool bus_access(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
