/* test_acpi.c - acpi_build(): walk the tables the way a guest does, from the
 * RSDP through guest-physical pointers, and check every field cvisor relies
 * on, every checksum, and the buffer-size and argument errors. */
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

#define GPA 0xe0000u
#define BUF_LEN 8192

static const struct acpi_config base_cfg = {
	.ncpus = 1,
	.lapic_addr = 0xfee00000,
	.ioapic_addr = 0xfec00000,
	.ioapic_id = 0xfe,
};

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* A built table set and the guest address it was built for. */
struct tables {
	uint8_t buf[BUF_LEN];
	size_t used;
	uint64_t gpa;
};

/* Translate a guest-physical address to a pointer into buf, asserting that
 * [gpa, gpa + len) lies inside the bytes acpi_build() reported as used. */
static const uint8_t *at(const struct tables *t, uint64_t gpa, size_t len)
{
	assert_true(gpa >= t->gpa);
	assert_true(gpa - t->gpa <= t->used);
	assert_true(len <= t->used - (gpa - t->gpa));
	return t->buf + (gpa - t->gpa);
}

/* An SDT at gpa: signature, length within bounds, valid checksum. */
static const uint8_t *sdt(const struct tables *t, uint64_t gpa, const char *sig)
{
	const uint8_t *p = at(t, gpa, 36);
	uint32_t len = le32(p + 4);

	assert_memory_equal(p, sig, 4);
	assert_true(len >= 36);
	p = at(t, gpa, len);
	assert_int_equal(acpi_checksum(p, len), 0);
	assert_memory_equal(p + 10, "CVISOR", 6);
	return p;
}

static void build(struct tables *t, unsigned int ncpus, uint64_t gpa)
{
	struct acpi_config cfg = base_cfg;

	cfg.ncpus = ncpus;
	t->gpa = gpa;
	assert_int_equal(acpi_build(t->buf, sizeof(t->buf), gpa, &cfg, &t->used), 0);
	assert_true(t->used > 0 && t->used <= sizeof(t->buf));
}

static const uint8_t *rsdp(const struct tables *t)
{
	const uint8_t *p = at(t, t->gpa, 36);

	assert_memory_equal(p, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(p, 20), 0);
	assert_int_equal(p[15], 2); /* revision: ACPI 2.0+ */
	assert_int_equal(le32(p + 20), 36);
	assert_int_equal(acpi_checksum(p, 36), 0);
	return p;
}

/* The XSDT entry with the given signature (exactly one must match). */
static const uint8_t *xsdt_find(const struct tables *t, const char *sig)
{
	const uint8_t *x = sdt(t, le64(rsdp(t) + 24), "XSDT");
	const uint8_t *found = NULL;
	uint32_t n = (le32(x + 4) - 36) / 8;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p = at(t, le64(x + 36 + 8 * i), 36);

		if (!memcmp(p, sig, 4)) {
			assert_null(found);
			found = sdt(t, le64(x + 36 + 8 * i), sig);
		}
	}
	assert_non_null(found);
	return found;
}

static void check_rsdt_matches_xsdt(const struct tables *t)
{
	const uint8_t *r = rsdp(t);
	const uint8_t *rsdt = sdt(t, le32(r + 16), "RSDT");
	const uint8_t *xsdt = sdt(t, le64(r + 24), "XSDT");
	uint32_t n = (le32(rsdt + 4) - 36) / 4;

	assert_int_equal(n, (le32(xsdt + 4) - 36) / 8);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(le32(rsdt + 36 + 4 * i), le64(xsdt + 36 + 8 * i));
}

static void check_fadt(const struct tables *t, unsigned int ncpus)
{
	const uint8_t *f = xsdt_find(t, "FACP");
	const uint8_t *facs;
	uint32_t flags = le32(f + 112);
	uint16_t boot = le16(f + 109);

	assert_int_equal(le32(f + 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(le16(f + 46), ACPI_SCI_IRQ);
	assert_int_equal(le32(f + 48), 0); /* SMI_CMD: already in ACPI mode */
	assert_int_equal(le32(f + 56), ACPI_PM1A_EVT_PORT);
	assert_int_equal(f[88], 4);
	assert_int_equal(le32(f + 64), ACPI_PM1A_CNT_PORT);
	assert_int_equal(f[89], 2);
	assert_int_equal(le32(f + 60) | le32(f + 68) | le32(f + 72), 0); /* no PM1b, PM2 */
	assert_int_equal(le32(f + 76), 0);				 /* no PM timer */
	assert_int_equal(f[91], 0);
	/* X_ blocks agree with the 32-bit ones (ACPICA warns otherwise). */
	assert_int_equal(f[148], 1);
	assert_int_equal(f[149], 32);
	assert_int_equal(le64(f + 152), ACPI_PM1A_EVT_PORT);
	assert_int_equal(f[172], 1);
	assert_int_equal(f[173], 16);
	assert_int_equal(le64(f + 176), ACPI_PM1A_CNT_PORT);
	assert_int_equal(le64(f + 208 + 4), 0); /* X_PM_TMR_BLK */

	/* Reset register: system I/O, 8 bits at offset 0. */
	assert_int_equal(f[116], 1);
	assert_int_equal(f[117], 8);
	assert_int_equal(f[118], 0);
	assert_int_equal(le64(f + 120), ACPI_RESET_PORT);
	assert_int_equal(f[128], ACPI_RESET_VALUE);

	assert_true(flags & (1u << 0));	  /* WBINVD */
	assert_false(flags & (1u << 4));  /* PWR_BUTTON clear: fixed-feature button */
	assert_true(flags & (1u << 5));	  /* SLP_BUTTON: none */
	assert_true(flags & (1u << 10));  /* RESET_REG_SUP */
	assert_false(flags & (1u << 20)); /* not HW_REDUCED_ACPI */
	assert_int_equal(!!(flags & (1u << 19)), ncpus > 8); /* physical APIC dest */
	assert_true(boot & (1u << 1));			     /* 8042 */
	assert_false(boot & (1u << 5));			     /* CMOS RTC present */

	/* DSDT and X_DSDT name the same table. */
	assert_int_equal(le32(f + 40), le64(f + 140));
	/* FACS: 64-byte aligned, found through FIRMWARE_CTRL. */
	assert_int_equal(le32(f + 36) % 64, 0);
	facs = at(t, le32(f + 36), 64);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(le32(facs + 4), 64);
}

static void check_dsdt(const struct tables *t)
{
	const uint8_t *f = xsdt_find(t, "FACP");
	const uint8_t *d = sdt(t, le64(f + 140), "DSDT");
	const uint8_t s5[] = {
		0x08,
		'\\',
		'_',
		'S',
		'5',
		'_',
		0x12,
		0x08,
		0x04,
		0x0a,
		ACPI_S5_SLP_TYP,
		0x0a,
		ACPI_S5_SLP_TYP,
		0x00,
		0x00,
	};

	assert_int_equal(le32(d + 4), 36 + sizeof(s5));
	assert_memory_equal(d + 36, s5, sizeof(s5));
}

static void check_madt(const struct tables *t, unsigned int ncpus)
{
	const uint8_t *m = xsdt_find(t, "APIC");
	uint32_t len = le32(m + 4);
	unsigned int lapics = 0, ioapics = 0, isos = 0, nmis = 0;

	assert_int_equal(le32(m + 36), base_cfg.lapic_addr);
	assert_int_equal(le32(m + 40) & 1, 1); /* PCAT_COMPAT */
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = m + off;

		assert_true(off + 2 <= len);
		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics); /* UID */
			assert_int_equal(e[3], lapics); /* APIC ID */
			assert_int_equal(le32(e + 4) & 1, 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], base_cfg.ioapic_id);
			assert_int_equal(le32(e + 4), base_cfg.ioapic_addr);
			assert_int_equal(le32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			/* Only the SCI: KVM delivers the PIT on GSI 0 = pin 0,
			 * so there must be no IRQ0 -> GSI2 override. */
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			assert_int_equal(e[3], ACPI_SCI_IRQ);
			assert_int_equal(le32(e + 4), ACPI_SCI_IRQ);
			assert_int_equal(le16(e + 8), 0x000d); /* active high, level */
			isos++;
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1); /* LINT1 */
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(lapics, ncpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 1);
	assert_int_equal(nmis, 1);
}

static void check_all(unsigned int ncpus, uint64_t gpa)
{
	struct tables *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	build(t, ncpus, gpa);
	check_rsdt_matches_xsdt(t);
	check_fadt(t, ncpus);
	check_dsdt(t);
	check_madt(t, ncpus);
	free(t);
}

static void test_walk(void **state)
{
	static const unsigned int counts[] = { 1, 2, 8, 9, 64, 255 };

	(void)state;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		check_all(counts[i], GPA);
}

/* A buf_gpa that is not 16-byte aligned still yields guest-aligned tables. */
static void test_unaligned_gpa(void **state)
{
	struct tables *t = calloc(1, sizeof(*t));
	const uint8_t *x, *f;

	(void)state;
	assert_non_null(t);
	build(t, 4, GPA + 8);
	x = sdt(t, le64(rsdp(t) + 24), "XSDT");
	assert_int_equal(le64(rsdp(t) + 24) % 16, 0);
	assert_int_equal(le64(x + 36) % 16, 0);
	f = xsdt_find(t, "FACP");
	assert_int_equal(le32(f + 36) % 64, 0);
	free(t);
	/* Every misalignment: FACS must land on 64 bytes whatever the base. */
	for (uint64_t off = 0; off < 64; off += 4)
		check_all(4, GPA + off);
	check_all(3, 0xfffff000u); /* just below 4 GiB */
}

static void test_deterministic(void **state)
{
	struct tables *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	memset(b->buf, 0x5a, sizeof(b->buf));
	build(a, 16, GPA);
	build(b, 16, GPA);
	assert_int_equal(a->used, b->used);
	assert_memory_equal(a->buf, b->buf, a->used);
	free(a);
	free(b);
}

/* Every buffer shorter than needed: -ENOSPC and not one byte written. */
static void test_enospc(void **state)
{
	static const unsigned int counts[] = { 1, 255 };

	(void)state;
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		struct acpi_config cfg = base_cfg;
		size_t needed, used;
		uint8_t *buf;
		int ret;

		cfg.ncpus = counts[c];
		buf = malloc(BUF_LEN);
		assert_non_null(buf);
		assert_int_equal(acpi_build(buf, BUF_LEN, GPA, &cfg, &needed), 0);
		assert_true(needed + 64 <= BUF_LEN);

		for (size_t len = 0; len < needed; len++) {
			memset(buf, 0xa5, needed + 64);
			used = 0;
			ret = acpi_build(buf, len, GPA, &cfg, &used);
			assert_int_equal(ret, -ENOSPC);
			assert_int_equal(used, needed);
			for (size_t i = 0; i < needed + 64; i++)
				assert_int_equal(buf[i], 0xa5);
		}
		/* Exactly enough: succeeds and stops at needed. */
		memset(buf, 0xa5, needed + 64);
		assert_int_equal(acpi_build(buf, needed, GPA, &cfg, &used), 0);
		assert_int_equal(used, needed);
		for (size_t i = needed; i < needed + 64; i++)
			assert_int_equal(buf[i], 0xa5);
		free(buf);
	}
}

static void test_einval(void **state)
{
	static const unsigned int bad[] = { 0, 256, 1000, 0xffffffffu };
	struct acpi_config cfg = base_cfg;
	uint8_t buf[64];
	size_t used = 0;

	(void)state;
	memset(buf, 0xa5, sizeof(buf));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.ncpus = bad[i];
		assert_int_equal(acpi_build(buf, sizeof(buf), GPA, &cfg, &used), -EINVAL);
	}
	cfg.ncpus = 1;
	/* Tables must stay below 4 GiB: 32-bit RSDT/DSDT/FACS pointers. */
	assert_int_equal(acpi_build(buf, sizeof(buf), 0x100000000ull, &cfg, &used), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), 0xffffff00u, &cfg, &used), -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), UINT64_MAX - 15, &cfg, &used), -EINVAL);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xa5);
}

static void test_checksum(void **state)
{
	const uint8_t b[] = { 0x01, 0xff, 0x80, 0x80 };

	(void)state;
	assert_int_equal(acpi_checksum(b, 0), 0);
	assert_int_equal(acpi_checksum(b, 2), 0);
	assert_int_equal(acpi_checksum(b, 4), 0);
	assert_int_equal(acpi_checksum(b, 3), 0x80);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum),      cmocka_unit_test(test_walk),
		cmocka_unit_test(test_unaligned_gpa), cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_enospc),	      cmocka_unit_test(test_einval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
