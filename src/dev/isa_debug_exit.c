/* isa_debug_exit.c - QEMU's isa-debug-exit (include/cvisor/isa_debug_exit.h). */
#include "cvisor/isa_debug_exit.h"

#include <string.h>

int isa_debug_exit_status(uint32_t v)
{
	return (int)(((v << 1) | 1) & 0xff);
}

static void debug_exit_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	(void)opaque, (void)off;
	memset(data, 0, len);
}

static void debug_exit_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct isa_debug_exit *d = opaque;
	uint32_t v = 0;

	(void)off;
	for (uint32_t i = 0; i < len && i < 4; i++)
		v |= (uint32_t)data[i] << (8 * i);
	d->exit(d->ctx, isa_debug_exit_status(v));
}

const struct bus_ops isa_debug_exit_bus_ops = { .read = debug_exit_read,
						.write = debug_exit_write };
