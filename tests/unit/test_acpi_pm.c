/* test_acpi_pm.c - PM1a event/control blocks, reset register and the SCI. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/acpi_pm.h"

/* Offsets in the block and bits, from the ACPI PM1 register tables. */
#define STS 0
#define EN 2
#define CNT 4
#define RST 6
#define PWRBTN 0x0100
#define WAK_STS 0x8000
#define SCI_EN 0x0001
#define SLP_EN 0x2000
#define SLP_TYP(t) ((t) << 10)

struct host {
	struct acpi_pm pm;
	unsigned int poweroffs, resets, irq_calls;
	int level;
};

#define HOST_OPS acpi_pm_device_ops
#define HOST_DEV(h) (&(h)->pm)
#define HOST_CALLS(h) ((h)->poweroffs + (h)->resets + (h)->irq_calls)
#define HOST_IRQ /* the SCI */
#include "dev_host.h"

static void host_event(void *ctx, enum acpi_pm_event ev)
{
	struct host *h = ctx;

	if (ev == ACPI_PM_POWEROFF)
		h->poweroffs++;
	else if (ev == ACPI_PM_RESET)
		h->resets++;
	else
		fail_msg("unknown event %d", ev);
}

static void host_init(struct host *h)
{
	acpi_pm_init(&h->pm, host_event, host_irq, h);
}

static uint32_t rd(struct host *h, unsigned int off, uint32_t len)
{
	uint8_t b[8];
	uint32_t v = 0;

	memset(b, 0xee, sizeof(b));
	acpi_pm_bus_ops.read(&h->pm, off, b, len);
	for (uint32_t i = 0; i < len && i < 4; i++)
		v |= (uint32_t)b[i] << (8 * i);
	return v;
}

static void wr(struct host *h, unsigned int off, uint32_t len, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	acpi_pm_bus_ops.write(&h->pm, off, b, len);
}

static void test_power_on(void **state)
{
	struct host *h = *state;

	assert_int_equal(rd(h, STS, 2), 0);
	assert_int_equal(rd(h, EN, 2), 0);
	assert_int_equal(rd(h, CNT, 2), SCI_EN);
	assert_int_equal(rd(h, RST, 1), 0);
	assert_int_equal(h->irq_calls, 0);
}

static void test_s5_poweroff(void **state)
{
	struct host *h = *state;

	/* ACPICA's two writes: SLP_TYP first, then SLP_TYP | SLP_EN. */
	wr(h, CNT, 2, SCI_EN | SLP_TYP(ACPI_S5_SLP_TYP));
	assert_int_equal(h->poweroffs, 0);
	assert_int_equal(rd(h, CNT, 2), SCI_EN | SLP_TYP(ACPI_S5_SLP_TYP));
	wr(h, CNT, 2, SCI_EN | SLP_TYP(ACPI_S5_SLP_TYP) | SLP_EN);
	assert_int_equal(h->poweroffs, 1);
	assert_int_equal(h->resets, 0);
	/* SLP_EN is write-only. */
	assert_int_equal(rd(h, CNT, 2) & SLP_EN, 0);
	/* A byte write to the high half (SLP_TYP and SLP_EN) is enough. */
	wr(h, CNT, 2, SCI_EN);
	wr(h, CNT + 1, 1, (SLP_TYP(ACPI_S5_SLP_TYP) | SLP_EN) >> 8);
	assert_int_equal(h->poweroffs, 2);
	/* ... and a byte write to the low half keeps the stored SLP_TYP. */
	wr(h, CNT, 1, SCI_EN);
	assert_int_equal(rd(h, CNT, 2), SCI_EN | SLP_TYP(ACPI_S5_SLP_TYP));
	assert_int_equal(h->poweroffs, 2);
	/* And one 4-byte write at +4 (PM1_CNT plus the reset register
	 * holding something other than RESET_VALUE). */
	wr(h, CNT, 4, (SLP_TYP(ACPI_S5_SLP_TYP) | SLP_EN) | 0x00ff0000);
	assert_int_equal(h->poweroffs, 3);
	assert_int_equal(h->resets, 0);
}

static void test_other_slp_typ(void **state)
{
	struct host *h = *state;

	for (unsigned int t = 0; t < 8; t++) {
		if (t == ACPI_S5_SLP_TYP)
			continue;
		wr(h, STS, 2, WAK_STS);
		wr(h, CNT, 2, SLP_TYP(t) | SLP_EN);
		assert_int_equal(h->poweroffs, 0);
		/* No sleep happened: report the wake so the OS does not spin. */
		assert_int_equal(rd(h, STS, 2) & WAK_STS, WAK_STS);
		assert_int_equal(rd(h, CNT, 2), SLP_TYP(t) | SCI_EN);
	}
	/* SLP_TYP == S5 without SLP_EN does nothing either. */
	wr(h, CNT, 2, SLP_TYP(ACPI_S5_SLP_TYP));
	assert_int_equal(h->poweroffs, 0);
	/* Writing SCI_EN 0 cannot leave ACPI mode. */
	wr(h, CNT, 2, 0);
	assert_int_equal(rd(h, CNT, 2), SCI_EN);
}

static void test_reset_register(void **state)
{
	struct host *h = *state;

	wr(h, RST, 1, 0x00);
	wr(h, RST, 1, 0xfe);
	assert_int_equal(h->resets, 0);
	wr(h, RST, 1, ACPI_RESET_VALUE);
	assert_int_equal(h->resets, 1);
	assert_int_equal(rd(h, RST, 1), 0);
	/* The reset port's own address, as the FADT gives it. */
	assert_int_equal(ACPI_RESET_PORT - ACPI_PM_BASE, RST);
	/* Reserved byte +7 ignores writes and reads 0. */
	wr(h, 7, 1, ACPI_RESET_VALUE);
	assert_int_equal(h->resets, 1);
	assert_int_equal(rd(h, 7, 1), 0);
	assert_int_equal(h->poweroffs, 0);
}

static void test_pwrbtn_sci(void **state)
{
	struct host *h = *state;

	/* Status set, not enabled: no SCI. */
	acpi_pm_power_button(&h->pm);
	assert_int_equal(rd(h, STS, 2), PWRBTN);
	assert_int_equal(h->irq_calls, 0);
	/* Enabling raises it (level: status AND enable). */
	wr(h, EN, 2, PWRBTN);
	assert_int_equal(h->level, 1);
	assert_int_equal(h->irq_calls, 1);
	/* A second press while pending changes nothing on the line. */
	acpi_pm_power_button(&h->pm);
	assert_int_equal(h->irq_calls, 1);
	/* Writing 0 to the status bit does not clear it. */
	wr(h, STS, 2, 0);
	assert_int_equal(h->level, 1);
	/* Writing 1 clears it and lowers the SCI. */
	wr(h, STS, 2, PWRBTN);
	assert_int_equal(rd(h, STS, 2), 0);
	assert_int_equal(h->level, 0);
	assert_int_equal(h->irq_calls, 2);
	/* Press with the enable set; disabling lowers the line too. */
	acpi_pm_power_button(&h->pm);
	assert_int_equal(h->level, 1);
	wr(h, EN, 2, 0);
	assert_int_equal(h->level, 0);
	assert_int_equal(rd(h, STS, 2), PWRBTN);
	/* Byte write-1-to-clear on the high byte of PM1_STS. */
	wr(h, EN, 2, PWRBTN);
	assert_int_equal(h->level, 1);
	wr(h, STS + 1, 1, PWRBTN >> 8);
	assert_int_equal(h->level, 0);
	assert_int_equal(h->irq_calls, 6);
}

static void test_w1c_only_clears(void **state)
{
	struct host *h = *state;

	/* The guest cannot set status bits by writing them. */
	wr(h, STS, 2, 0xffff);
	assert_int_equal(rd(h, STS, 2), 0);
	acpi_pm_power_button(&h->pm);
	wr(h, STS, 2, WAK_STS); /* clearing another bit leaves PWRBTN */
	assert_int_equal(rd(h, STS, 2), PWRBTN);
	wr(h, STS, 1, 0xff); /* the low byte holds no PWRBTN */
	assert_int_equal(rd(h, STS, 2), PWRBTN);
}

static void test_widths(void **state)
{
	struct host *h = *state;
	uint8_t b[8];

	acpi_pm_power_button(&h->pm);
	wr(h, EN, 2, 0x0100);
	/* 4-byte read at +0 is STS | EN << 16. */
	assert_int_equal(rd(h, STS, 4), 0x01000100);
	/* Bytes read individually. */
	assert_int_equal(rd(h, 0, 1), 0x00);
	assert_int_equal(rd(h, 1, 1), 0x01);
	assert_int_equal(rd(h, 3, 1), 0x01);
	/* Unaligned 2-byte read straddling STS and EN. */
	assert_int_equal(rd(h, 1, 2), 0x0001);
	/* 4-byte read at +4: CNT, reset (0), reserved (0). */
	assert_int_equal(rd(h, CNT, 4), SCI_EN);
	/* 4-byte write at +0 clears status and sets enables at once. */
	wr(h, STS, 4, 0x0200ffff);
	assert_int_equal(rd(h, STS, 4), 0x02000000);
	assert_int_equal(h->level, 0);
	/* 1-byte writes to each half of PM1_EN. */
	wr(h, EN, 1, 0x21);
	wr(h, EN + 1, 1, 0x01);
	assert_int_equal(rd(h, EN, 2), 0x0121);
	/* Reserved enable bits do not stick. */
	wr(h, EN, 2, 0xffff);
	assert_int_equal(rd(h, EN, 2), 0x4721);
	/* Unaligned 2-byte write over EN high and CNT low. */
	wr(h, EN + 1, 2, 0x0200);
	assert_int_equal(rd(h, EN, 2), 0x0021);
	assert_int_equal(rd(h, CNT, 2), SCI_EN | 0x0002); /* BM_RLD */
	/* An 8-byte read returns the whole block. */
	memset(b, 0xee, sizeof(b));
	acpi_pm_bus_ops.read(&h->pm, 0, b, 8);
	assert_int_equal(b[0] | b[1] << 8, 0);
	assert_int_equal(b[2] | b[3] << 8, 0x0021);
	assert_int_equal(b[4] | b[5] << 8, 0x0003);
	assert_int_equal(b[6] | b[7], 0);
	/* Accesses off the end are harmless. */
	memset(b, 0xee, sizeof(b));
	acpi_pm_bus_ops.read(&h->pm, 6, b, 4);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	wr(h, 8, 4, 0xffffffff);
	wr(h, 0xffff, 1, 0xff);
	assert_int_equal(h->resets + h->poweroffs, 0);
}

static void test_save_load(void **state)
{
	struct host *h = *state, *g;
	struct state_buf b;

	acpi_pm_power_button(&h->pm);
	wr(h, EN, 2, PWRBTN | 0x0020);
	wr(h, CNT, 2, SLP_TYP(ACPI_S5_SLP_TYP) | 0x0002);
	g = host_copy(h, &b);
	assert_int_equal(b.len, 10);
	assert_int_equal(g->level, 1); /* the SCI follows the loaded state */
	for (unsigned int off = 0; off < ACPI_PM_LEN; off++)
		assert_int_equal(rd(g, off, 1), rd(h, off, 1));
	/* Same behaviour: a 16-bit write of SLP_EN with the loaded SLP_TYP. */
	wr(g, CNT, 2, rd(g, CNT, 2) | SLP_EN);
	assert_int_equal(g->poweroffs, 1);
	wr(g, STS, 2, PWRBTN);
	assert_int_equal(g->level, 0);

	/* Reset restores power-on state and lowers the SCI. */
	acpi_pm_device_ops.reset(&h->pm);
	assert_int_equal(h->level, 0);
	assert_int_equal(rd(h, STS, 4), 0);
	assert_int_equal(rd(h, CNT, 2), SCI_EN);
	wr(h, RST, 1, ACPI_RESET_VALUE); /* callbacks kept */
	assert_int_equal(h->resets, 1);
	state_buf_free(&b);
	free(g);
}

static void test_load_rejects(void **state)
{
	struct host *h = *state;
	struct state_buf good;
	uint8_t bad[10];

	host_save(h, &good);
	assert_int_equal(good.len, sizeof(bad));
	host_expect_truncations_fail(h, &good);
#define MUTATE(off, v) HOST_EXPECT_MUTANT_FAILS(h, &good, bad, bad[off] = (v))
	MUTATE(0, 0);	 /* version 0 */
	MUTATE(3, 1);	 /* version 1 << 24 */
	MUTATE(4, 0x01); /* TMR_STS: no timer here */
	MUTATE(7, 0x80); /* reserved enable bit */
	MUTATE(8, 0x00); /* SCI_EN clear */
	MUTATE(9, 0x20); /* SLP_EN is write-only */
#undef MUTATE
	state_buf_free(&good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HOST_TEST(test_power_on),      HOST_TEST(test_s5_poweroff),
		HOST_TEST(test_other_slp_typ), HOST_TEST(test_reset_register),
		HOST_TEST(test_pwrbtn_sci),    HOST_TEST(test_w1c_only_clears),
		HOST_TEST(test_widths),	       HOST_TEST(test_save_load),
		HOST_TEST(test_load_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
