/* test_pci.c - configuration mechanism #1 as firmware uses it: BAR sizing,
 * BAR assignment (SeaBIOS's pciinit moves every BAR; cvisor decodes it
 * where it was written and tells the device), and moves a guest must not
 * make (onto another device's region). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/bus.h"
#include "cvisor/pci.h"
#include "cvisor/util.h"

struct fixture {
	struct bus pio, mmio;
	struct pci_bus b;
	struct pci_device dev[2];
	unsigned int reads[2];
	unsigned int moves;
	uint64_t moved_from, moved_to;
};

static void bar_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	unsigned int *n = opaque;

	(*n)++;
	memset(data, 0x5a, len);
	(void)off;
}

static const struct bus_ops ops = { .read = bar_read };

static void moved(struct pci_device *p, unsigned int bar, uint64_t old, uint64_t to)
{
	struct fixture *f = p->opaque;

	assert_int_equal(bar, 0);
	f->moves++;
	f->moved_from = old;
	f->moved_to = to;
}

static const struct pci_device_ops dev_ops = { .bar_moved = moved };

static void cfg_write32(struct fixture *f, unsigned int slot, unsigned int reg, uint32_t v)
{
	uint8_t a[4], d[4];

	cv_put_le32(a, 0x80000000u | slot << 11 | reg);
	cv_put_le32(d, v);
	assert_true(bus_access(&f->pio, PCI_CONFIG_ADDR, a, 4, true));
	assert_true(bus_access(&f->pio, PCI_CONFIG_DATA, d, 4, true));
}

static uint32_t cfg_read32(struct fixture *f, unsigned int slot, unsigned int reg)
{
	uint8_t a[4], d[4];

	cv_put_le32(a, 0x80000000u | slot << 11 | reg);
	assert_true(bus_access(&f->pio, PCI_CONFIG_ADDR, a, 4, true));
	assert_true(bus_access(&f->pio, PCI_CONFIG_DATA, d, 4, false));
	return cv_le32(d);
}

static bool hits(struct fixture *f, uint64_t addr)
{
	uint8_t d[4];

	return bus_access(&f->mmio, addr, d, 4, false);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || pci_bus_init(&f->b, &f->pio, &f->mmio))
		return -1;
	for (unsigned int i = 0; i < 2; i++) {
		pci_device_init(&f->dev[i], 0x1af4, 0x1042, 0x018000, 0x1af4, 2, 1);
		f->dev[i].ops = &dev_ops;
		f->dev[i].opaque = f;
		if (pci_device_add_bar(&f->b, &f->dev[i], 0, 0x4000, &ops, &f->reads[i], "d") ||
		    pci_bus_add(&f->b, &f->dev[i]))
			return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

/* SeaBIOS's order: size each half, restore, then write the address. */
static void test_firmware_assigns(void **state)
{
	struct fixture *f = *state;
	uint64_t first = f->dev[0].bar_addr[0];

	assert_true(hits(f, first));
	cfg_write32(f, 1, 0x10, 0xffffffff);
	assert_int_equal(cfg_read32(f, 1, 0x10), 0xffffc004);
	cfg_write32(f, 1, 0x10, (uint32_t)first | 4);
	cfg_write32(f, 1, 0x14, 0xffffffff);
	assert_int_equal(cfg_read32(f, 1, 0x14), 0xffffffff);
	cfg_write32(f, 1, 0x14, 0);
	assert_int_equal(f->moves, 0);
	assert_int_equal(f->dev[0].bar_addr[0], first);
	cfg_write32(f, 1, 0x10, 0xfebf0000);
	assert_int_equal(f->moves, 1);
	assert_int_equal(f->moved_from, first);
	assert_int_equal(f->moved_to, 0xfebf0000);
	assert_int_equal(f->dev[0].bar_addr[0], 0xfebf0000);
	assert_false(hits(f, first));
	assert_true(hits(f, 0xfebf0000 + 0x3ffc));
	assert_int_equal(f->reads[0], 2);
	/* Writing the same address again moves nothing. */
	cfg_write32(f, 1, 0x14, 0);
	assert_int_equal(f->moves, 1);
}

/* A move onto the other device's BAR is refused: both keep decoding. */
static void test_overlap_refused(void **state)
{
	struct fixture *f = *state;
	uint64_t a = f->dev[0].bar_addr[0], b = f->dev[1].bar_addr[0];

	cfg_write32(f, 1, 0x10, (uint32_t)b + 0x1000);
	assert_int_equal(f->moves, 0);
	assert_int_equal(f->dev[0].bar_addr[0], a);
	assert_true(hits(f, a));
	assert_true(hits(f, b));
	assert_int_equal(f->reads[1], 1);
	/* Onto RAM, the IOAPIC or the ROM, outside the PCI hole:
	 * refused, the BAR decodes where it was. */
	cfg_write32(f, 1, 0x10, 0x00100000);
	cfg_write32(f, 1, 0x10, 0xfec00000);
	cfg_write32(f, 1, 0x10, 0xfffe0000);
	assert_int_equal(f->moves, 0);
	assert_int_equal(f->dev[0].bar_addr[0], a);
	assert_true(hits(f, a));
	assert_false(hits(f, 0x00100000));
	assert_false(hits(f, 0xfffe0000));
	/* Near the top of the address space: a region that would wrap. */
	assert_int_equal(bus_move(&f->mmio, b, UINT64_MAX - 0x1000), -EINVAL);
	assert_int_equal(bus_move(&f->mmio, 0x1234, 0x5000), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_firmware_assigns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlap_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
