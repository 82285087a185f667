/* bus.c - port I/O and MMIO dispatch. */
#include "cvisor/bus.h"

#include <errno.h>
#include <string.h>

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name)
{
	uint64_t end;

	if (!len || __builtin_add_overflow(base, len, &end))
		return -EINVAL;
	if (bus->nr == BUS_MAX_REGIONS)
		return -ENOSPC;
	for (unsigned int i = 0; i < bus->nr; i++) {
		const struct bus_region *r = &bus->regions[i];

		if (base < r->base + r->len && r->base < end)
			return -EEXIST;
	}
	bus->regions[bus->nr++] = (struct bus_region){ base, len, ops, opaque, name };
	return 0;
}

bool bus_access(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	for (unsigned int i = 0; i < bus->nr; i++) {
		const struct bus_region *r = &bus->regions[i];

		/* The whole access must fall inside the region. */
		if (addr < r->base || addr - r->base >= r->len || len > r->len - (addr - r->base))
			continue;
		if (is_write) {
			if (r->ops->write)
				r->ops->write(r->opaque, addr - r->base, data, len);
		} else if (r->ops->read) {
			r->ops->read(r->opaque, addr - r->base, data, len);
		} else {
			memset(data, 0xff, len);
		}
		return true;
	}
	if (!is_write)
		memset(data, 0xff, len);
	return false;
}
