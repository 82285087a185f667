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

int bus_move(struct bus *bus, uint64_t old_base, uint64_t new_base)
{
	struct bus_region *moved = NULL;
	uint64_t end;

	for (unsigned int i = 0; i < bus->nr; i++)
		if (bus->regions[i].base == old_base)
			moved = &bus->regions[i];
	if (!moved)
		return -ENOENT;
	if (__builtin_add_overflow(new_base, moved->len, &end))
		return -EINVAL;
	for (unsigned int i = 0; i < bus->nr; i++) {
		const struct bus_region *r = &bus->regions[i];

		if (r != moved && new_base < r->base + r->len && r->base < end)
			return -EEXIST;
	}
	__atomic_store_n(&moved->base, new_base, __ATOMIC_RELEASE);
	return 0;
}

bool bus_access(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	for (unsigned int i = 0; i < bus->nr; i++) {
		const struct bus_region *r = &bus->regions[i];
		uint64_t base = __atomic_load_n(&r->base, __ATOMIC_ACQUIRE);

		/* The whole access must fall inside the region. */
		if (addr < base || addr - base >= r->len || len > r->len - (addr - base))
			continue;
		if (is_write) {
			if (r->ops->write)
				r->ops->write(r->opaque, addr - base, data, len);
		} else if (r->ops->read) {
			r->ops->read(r->opaque, addr - base, data, len);
		} else {
			memset(data, 0xff, len);
		}
		return true;
	}
	if (!is_write)
		memset(data, 0xff, len);
	return false;
}
