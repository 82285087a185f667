/* test_mptable.c - mptable_build(): find the floating pointer, follow it to
 * the configuration table, walk every entry, and check sizes and errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/acpi.h"
#include "cvisor/acpi_pm.h"
#include "cvisor/mptable.h"

#define GPA 0xf0000u
#define BUF_LEN 8192
#define IOAPIC_ADDR 0xfec00000u
#define IOAPIC_ID 0xfe

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return le16(p) | (uint32_t)le16(p + 2) << 16;
}

static void check_table(unsigned int ncpus)
{
	uint8_t *buf = calloc(1, BUF_LEN);
	const uint8_t *c, *e;
	size_t used;
	uint16_t base_len, count;
	unsigned int cpus = 0, buses = 0, ioapics = 0, ioints = 0, lints = 0;
	uint8_t last_type = 0;

	assert_non_null(buf);
	assert_int_equal(mptable_build(buf, BUF_LEN, GPA, ncpus, IOAPIC_ADDR, IOAPIC_ID, &used), 0);

	/* MP 1.4 4.1 floating pointer. */
	assert_memory_equal(buf, "_MP_", 4);
	assert_int_equal(buf[8], 1);
	assert_int_equal(buf[9], 4);
	assert_int_equal(acpi_checksum(buf, 16), 0);
	assert_int_equal(buf[11], 0); /* config table present, not a default config */
	assert_true(le32(buf + 4) >= GPA && le32(buf + 4) - GPA + 44 <= used);
	c = buf + (le32(buf + 4) - GPA);

	/* 4.2 header. */
	assert_memory_equal(c, "PCMP", 4);
	base_len = le16(c + 4);
	assert_ptr_equal(c + base_len, buf + used); /* base table ends the buffer */
	assert_int_equal(c[6], 4);
	assert_int_equal(acpi_checksum(c, base_len), 0);
	assert_memory_equal(c + 8, "CVISOR  ", 8);
	assert_int_equal(le32(c + 36), 0xfee00000u);
	assert_int_equal(le16(c + 40), 0); /* no extended table */
	count = le16(c + 34);

	/* 4.3 entries, sorted by type. */
	e = c + 44;
	for (unsigned int i = 0; i < count; i++) {
		size_t len = e[0] == 0 ? 20 : 8;

		assert_true(e + len <= c + base_len);
		assert_true(e[0] >= last_type);
		last_type = e[0];
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], cpus);
			assert_int_equal(e[2], 0x14);
			assert_int_equal(e[3] & 1, 1);		   /* enabled */
			assert_int_equal(!!(e[3] & 2), cpus == 0); /* BSP only on cpu 0 */
			cpus++;
			break;
		case 1:
			assert_int_equal(e[1], 0);
			assert_memory_equal(e + 2, "ISA   ", 6);
			buses++;
			break;
		case 2:
			assert_int_equal(e[1], IOAPIC_ID);
			assert_int_equal(e[2], 0x11);
			assert_int_equal(e[3] & 1, 1);
			assert_int_equal(le32(e + 4), IOAPIC_ADDR);
			ioapics++;
			break;
		case 3:
			/* ISA IRQ n -> IOAPIC pin n, like the MADT (no IRQ0 override). */
			assert_int_equal(e[1], 0); /* mp_INT */
			assert_int_equal(e[4], 0); /* ISA bus */
			assert_int_equal(e[5], ioints);
			assert_int_equal(e[6], IOAPIC_ID);
			assert_int_equal(e[7], ioints);
			assert_int_equal(le16(e + 2), ioints == ACPI_SCI_IRQ ? 0x0d : 0);
			ioints++;
			break;
		case 4:
			/* ExtINT on LINT0, then NMI on LINT1, all processors. */
			assert_int_equal(e[1], lints == 0 ? 3 : 1);
			assert_int_equal(e[6], 0xff);
			assert_int_equal(e[7], lints);
			lints++;
			break;
		default:
			fail_msg("unexpected MP entry type %u", e[0]);
		}
		e += len;
	}
	assert_ptr_equal(e, c + base_len); /* count and length agree */
	assert_int_equal(cpus, ncpus);
	assert_int_equal(buses, 1);
	assert_int_equal(ioapics, 1);
	assert_int_equal(ioints, 16);
	assert_int_equal(lints, 2);
	free(buf);
}

static void test_walk(void **state)
{
	static const unsigned int counts[] = { 1, 2, 64, 254 };

	(void)state;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		check_table(counts[i]);
}

static void test_enospc(void **state)
{
	static const unsigned int counts[] = { 1, 254 };

	(void)state;
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		uint8_t *buf = malloc(BUF_LEN);
		size_t needed, used;

		assert_non_null(buf);
		assert_int_equal(mptable_build(buf, BUF_LEN, GPA, counts[c], IOAPIC_ADDR, IOAPIC_ID,
					       &needed),
				 0);
		assert_true(needed + 64 <= BUF_LEN);
		for (size_t len = 0; len < needed; len++) {
			memset(buf, 0xa5, needed + 64);
			used = 0;
			assert_int_equal(mptable_build(buf, len, GPA, counts[c], IOAPIC_ADDR,
						       IOAPIC_ID, &used),
					 -ENOSPC);
			assert_int_equal(used, needed);
			for (size_t i = 0; i < needed + 64; i++)
				assert_int_equal(buf[i], 0xa5);
		}
		memset(buf, 0xa5, needed + 64);
		assert_int_equal(
			mptable_build(buf, needed, GPA, counts[c], IOAPIC_ADDR, IOAPIC_ID, &used),
			0);
		for (size_t i = needed; i < needed + 64; i++)
			assert_int_equal(buf[i], 0xa5);
		free(buf);
	}
}

static void test_einval(void **state)
{
	uint8_t buf[64];
	size_t used;

	(void)state;
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(mptable_build(buf, sizeof(buf), GPA, 0, IOAPIC_ADDR, 1, &used), -EINVAL);
	assert_int_equal(mptable_build(buf, sizeof(buf), GPA, 255, IOAPIC_ADDR, 0xfe, &used),
			 -EINVAL);
	assert_int_equal(mptable_build(buf, sizeof(buf), GPA, 1000, IOAPIC_ADDR, 0xfe, &used),
			 -EINVAL);
	/* The IOAPIC id must not collide with a processor's or be broadcast. */
	assert_int_equal(mptable_build(buf, sizeof(buf), GPA, 4, IOAPIC_ADDR, 3, &used), -EINVAL);
	assert_int_equal(mptable_build(buf, sizeof(buf), GPA, 4, IOAPIC_ADDR, 0xff, &used),
			 -EINVAL);
	/* 32-bit physical pointers. */
	assert_int_equal(mptable_build(buf, sizeof(buf), 0x100000000ull, 1, IOAPIC_ADDR, 1, &used),
			 -EINVAL);
	assert_int_equal(mptable_build(buf, sizeof(buf), 0xffffffc0u, 1, IOAPIC_ADDR, 1, &used),
			 -EINVAL);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xa5);
	/* Smallest valid IOAPIC id: ncpus. */
	{
		uint8_t *big = malloc(BUF_LEN);

		assert_non_null(big);
		assert_int_equal(mptable_build(big, BUF_LEN, GPA, 4, IOAPIC_ADDR, 4, &used), 0);
		free(big);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_einval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
