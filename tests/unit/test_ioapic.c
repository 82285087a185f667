/* test_ioapic.c - the split irqchip's IOAPIC (src/dev/ioapic.c) through
 * its MMIO window, as Linux's io_apic.c programs it, with the MSIs it
 * delivers and the routes it installs recorded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/ioapic.h"

#define MAX_EV 64

struct host {
	struct ioapic io;
	unsigned int ndeliver;
	uint64_t addr[MAX_EV];
	uint32_t data[MAX_EV];
	unsigned int nroute;
	bool present[IOAPIC_PINS];
	uint64_t raddr[IOAPIC_PINS];
	uint32_t rdata[IOAPIC_PINS];
};

static void on_deliver(void *ctx, uint64_t addr, uint32_t data)
{
	struct host *h = ctx;

	if (h->ndeliver < MAX_EV) {
		h->addr[h->ndeliver] = addr;
		h->data[h->ndeliver] = data;
	}
	h->ndeliver++;
}

static void on_route(void *ctx, unsigned int pin, bool present, uint64_t addr, uint32_t data)
{
	struct host *h = ctx;

	assert_true(pin < IOAPIC_PINS);
	h->nroute++;
	h->present[pin] = present;
	h->raddr[pin] = addr;
	h->rdata[pin] = data;
}

static const struct ioapic_ops ops = { .deliver = on_deliver, .route = on_route };

static int setup(void **state)
{
	struct host *h = calloc(1, sizeof(*h));

	if (!h)
		return -1;
	ioapic_init(&h->io, 2, &ops, h);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct host *h = *state;

	ioapic_destroy(&h->io);
	free(h);
	return 0;
}

static void wr(struct host *h, uint32_t reg, uint32_t v)
{
	ioapic_bus_ops.write(&h->io, 0x00, (const uint8_t *)&reg, 4);
	ioapic_bus_ops.write(&h->io, 0x10, (const uint8_t *)&v, 4);
}

static uint32_t rd(struct host *h, uint32_t reg)
{
	uint32_t v = 0xdeadbeef;

	ioapic_bus_ops.write(&h->io, 0x00, (const uint8_t *)&reg, 4);
	ioapic_bus_ops.read(&h->io, 0x10, (uint8_t *)&v, 4);
	return v;
}

/* Linux's ioapic_write_entry: high dword, then low. */
static void set_entry(struct host *h, unsigned int pin, uint32_t lo, uint8_t dest)
{
	wr(h, 0x11 + 2 * pin, (uint32_t)dest << 24);
	wr(h, 0x10 + 2 * pin, lo);
}

#define LEVEL (1u << 15)
#define MASK (1u << 16)
#define RIRR (1u << 14)

static void test_ids(void **state)
{
	struct host *h = *state;
	uint32_t sel = 0;

	assert_int_equal(rd(h, 0), 2u << 24);
	assert_int_equal(rd(h, 1), 0x00170011u); /* version 0x11, max entry 23 */
	assert_int_equal(rd(h, 2), 2u << 24);
	wr(h, 0, 0xff000000u); /* only bits 27:24 of the ID are writable */
	assert_int_equal(rd(h, 0), 0x0f000000u);
	wr(h, 1, 0);
	assert_int_equal(rd(h, 1), 0x00170011u);
	/* IOREGSEL reads back; an unimplemented register reads 0. */
	wr(h, 0x7f, 0x1234);
	ioapic_bus_ops.read(&h->io, 0x00, (uint8_t *)&sel, 4);
	assert_int_equal(sel, 0x7f);
	assert_int_equal(rd(h, 0x7f), 0);
	/* Every entry is masked after reset, and nothing is routed. */
	for (unsigned int i = 0; i < IOAPIC_PINS; i++)
		assert_int_equal(rd(h, 0x10 + 2 * i), MASK);
	assert_int_equal(h->nroute, 0);
}

static void test_msi_format(void **state)
{
	struct host *h = *state;
	uint64_t addr;
	uint32_t data;

	/* Fixed, physical, edge, dest 3, vector 0x31. */
	ioapic_entry_msi(0x31ull | 3ull << 56, &addr, &data);
	assert_int_equal(addr, 0xfee03000ull);
	assert_int_equal(data, 0x31);
	/* Lowest priority, logical, level, dest 0x0f. */
	ioapic_entry_msi(0x41ull | 1ull << 8 | 1ull << 11 | 1ull << 15 | 0x0full << 56, &addr,
			 &data);
	assert_int_equal(addr, 0xfee0f004ull);
	assert_int_equal(data, 0x41 | 1u << 8 | 1u << 15);
	(void)h;
}

static void test_route_follows_entry(void **state)
{
	struct host *h = *state;

	set_entry(h, 4, 0x24 | MASK, 1);
	assert_false(h->present[4]); /* masked: no route */
	set_entry(h, 4, 0x24, 1);
	assert_true(h->present[4]);
	assert_int_equal(h->raddr[4], 0xfee01000ull);
	assert_int_equal(h->rdata[4], 0x24);
	set_entry(h, 4, 0x25 | LEVEL, 1);
	assert_int_equal(h->rdata[4], 0x25 | 1u << 15);
	set_entry(h, 4, 0x25 | LEVEL | MASK, 1);
	assert_false(h->present[4]);
	assert_int_equal(h->ndeliver, 0);
}

static void test_edge(void **state)
{
	struct host *h = *state;

	set_entry(h, 3, 0x33, 0);
	ioapic_set_irq(&h->io, 3, 1);
	assert_int_equal(h->ndeliver, 1);
	assert_int_equal(h->data[0], 0x33);
	ioapic_set_irq(&h->io, 3, 1); /* no new edge */
	assert_int_equal(h->ndeliver, 1);
	ioapic_set_irq(&h->io, 3, 0);
	ioapic_set_irq(&h->io, 3, 1);
	assert_int_equal(h->ndeliver, 2);
	assert_int_equal(rd(h, 0x10 + 6) & RIRR, 0);
	/* An edge while masked is lost, and unmasking does not replay it. */
	ioapic_set_irq(&h->io, 3, 0);
	set_entry(h, 3, 0x33 | MASK, 0);
	ioapic_set_irq(&h->io, 3, 1);
	set_entry(h, 3, 0x33, 0);
	assert_int_equal(h->ndeliver, 2);
}

static void test_level_eoi(void **state)
{
	struct host *h = *state;

	set_entry(h, 4, 0x44 | LEVEL, 0);
	ioapic_set_irq(&h->io, 4, 1);
	assert_int_equal(h->ndeliver, 1);
	assert_int_equal(h->data[0], 0x44 | 1u << 15);
	assert_true(rd(h, 0x18) & RIRR);
	/* Still asserted, remote IRR set: nothing more until the EOI. */
	ioapic_set_irq(&h->io, 4, 1);
	assert_int_equal(h->ndeliver, 1);
	/* An EOI for another vector changes nothing. */
	ioapic_eoi(&h->io, 0x45);
	assert_true(rd(h, 0x18) & RIRR);
	/* EOI with the line still up: delivered again. */
	ioapic_eoi(&h->io, 0x44);
	assert_int_equal(h->ndeliver, 2);
	assert_true(rd(h, 0x18) & RIRR);
	/* The device lowers the line; the EOI clears remote IRR, no more. */
	ioapic_set_irq(&h->io, 4, 0);
	ioapic_eoi(&h->io, 0x44);
	assert_int_equal(h->ndeliver, 2);
	assert_int_equal(rd(h, 0x18) & RIRR, 0);
	/* The guest cannot write remote IRR or delivery status. */
	set_entry(h, 4, 0x44 | LEVEL | RIRR | 1u << 12, 0);
	assert_int_equal(rd(h, 0x18), 0x44 | LEVEL);
}

static void test_level_masked(void **state)
{
	struct host *h = *state;

	set_entry(h, 9, 0x49 | LEVEL | MASK, 0);
	ioapic_set_irq(&h->io, 9, 1);
	assert_int_equal(h->ndeliver, 0);
	/* Unmasking a held level line delivers it. */
	set_entry(h, 9, 0x49 | LEVEL, 0);
	assert_int_equal(h->ndeliver, 1);
	/* Masked while waiting for its EOI: the route stays until the EOI
	 * (KVM reports the EOI only for routed vectors), then goes. */
	set_entry(h, 9, 0x49 | LEVEL | MASK, 0);
	assert_true(h->present[9]);
	assert_true(rd(h, 0x10 + 18) & RIRR);
	ioapic_eoi(&h->io, 0x49);
	assert_false(h->present[9]);
	assert_int_equal(h->ndeliver, 1); /* masked: not delivered again */
	set_entry(h, 9, 0x49 | LEVEL, 0);
	assert_int_equal(h->ndeliver, 2);
}

static void test_level_to_edge_clears_rirr(void **state)
{
	struct host *h = *state;

	set_entry(h, 10, 0x4a | LEVEL, 0);
	ioapic_set_irq(&h->io, 10, 1);
	ioapic_set_irq(&h->io, 10, 0);
	assert_true(rd(h, 0x10 + 20) & RIRR);
	/* Linux's __eoi_ioapic_pin on a version 0x11 IOAPIC. */
	set_entry(h, 10, 0x4a | MASK, 0);
	assert_int_equal(rd(h, 0x10 + 20) & RIRR, 0);
	set_entry(h, 10, 0x4a | LEVEL, 0);
	assert_int_equal(rd(h, 0x10 + 20) & RIRR, 0);
	assert_int_equal(h->ndeliver, 1);
}

/* Nonsense from a hostile guest: ignored, never delivered. */
static void test_hostile(void **state)
{
	struct host *h = *state;
	uint8_t b[8];
	uint32_t v = 0x30;

	set_entry(h, 0, 7u << 8 | 0x30, 0); /* ExtINT: there is no PIC */
	ioapic_set_irq(&h->io, 0, 1);
	set_entry(h, 1, 3u << 8 | 0x30, 0); /* reserved delivery mode */
	ioapic_set_irq(&h->io, 1, 1);
	set_entry(h, 2, 0x05, 0); /* fixed, vector below 16 */
	ioapic_set_irq(&h->io, 2, 1);
	assert_int_equal(h->ndeliver, 0);
	assert_false(h->present[0] || h->present[1] || h->present[2]);
	/* Pins out of range, registers past the table, odd widths and offsets. */
	ioapic_set_irq(&h->io, IOAPIC_PINS, 1);
	ioapic_set_irq(&h->io, 1000, 1);
	wr(h, 0x10 + 2 * IOAPIC_PINS, 0x31);
	wr(h, 0xff, 0x31);
	ioapic_bus_ops.write(&h->io, 0x10, (const uint8_t *)&v, 1); /* not 32-bit: dropped */
	ioapic_bus_ops.write(&h->io, 0x800, (const uint8_t *)&v, 4);
	memset(b, 0xee, sizeof(b));
	ioapic_bus_ops.read(&h->io, 0x20, b, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(b[i], 0);
	ioapic_eoi(&h->io, 0);
	assert_int_equal(h->ndeliver, 0);
}

static void test_state(void **state)
{
	struct host *h = *state;
	struct kvm_ioapic_state s, bad;
	struct ioapic fresh;
	struct host h2 = { 0 };

	set_entry(h, 4, 0x44 | LEVEL, 1);
	set_entry(h, 5, 0x55 | MASK, 0);
	ioapic_set_irq(&h->io, 4, 1); /* delivered: remote IRR set, line up */
	wr(h, 0, 0x03000000);
	ioapic_get_state(&h->io, 0xfec00000, &s);
	assert_int_equal(s.id, 3);
	assert_int_equal(s.irr, 1u << 4);
	assert_true(s.redirtbl[4].bits & RIRR);

	ioapic_init(&fresh, 0, &ops, &h2);
	bad = s;
	bad.base_address = 0xfed00000;
	assert_int_equal(ioapic_set_state(&fresh, 0xfec00000, &bad), -EINVAL);
	bad = s;
	bad.irr = 1u << 24;
	assert_int_equal(ioapic_set_state(&fresh, 0xfec00000, &bad), -EINVAL);
	assert_int_equal(h2.nroute, 0);
	assert_int_equal(ioapic_set_state(&fresh, 0xfec00000, &s), 0);
	/* The routes are installed from the loaded entries. */
	assert_true(h2.present[4]);
	assert_int_equal(h2.rdata[4], 0x44 | 1u << 15);
	assert_false(h2.present[5]);
	/* The loaded remote IRR holds until the EOI, which re-delivers the
	 * still-asserted line. */
	ioapic_set_irq(&fresh, 4, 1);
	assert_int_equal(h2.ndeliver, 0);
	ioapic_eoi(&fresh, 0x44);
	assert_int_equal(h2.ndeliver, 1);
	ioapic_destroy(&fresh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msi_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_follows_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_eoi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_masked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_to_edge_clears_rirr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
