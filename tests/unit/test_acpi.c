/* test_acpi.c - acpi_build(): walk the tables the way a guest does, from the
 * RSDP through guest-physical pointers, and check every field cvisor relies
 * on, every checksum, the PCI host bridge's AML in the DSDT, and the
 * buffer-size and argument errors. */
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
#include "cvisor/pci.h"

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

/* An AML PkgLength (ACPI 6.5 20.2.4) at p, with at most avail bytes
 * readable: the encoded length, and in *n the bytes the encoding took. */
static uint32_t pkg_length(const uint8_t *p, size_t avail, size_t *n)
{
	uint32_t len;

	assert_true(avail >= 1);
	*n = 1 + (p[0] >> 6);
	assert_true(*n <= avail);
	if (*n == 1)
		return p[0] & 0x3f;
	len = p[0] & 0x0f;
	for (size_t i = 1; i < *n; i++)
		len |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	return len;
}

/* The first occurrence of needle in [p, p + len), or NULL. */
static const uint8_t *find_bytes(const uint8_t *p, size_t len, const void *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (!memcmp(p + i, needle, n))
			return p + i;
	return NULL;
}

/* What the host bridge's _CRS declares (ACPI 6.5 6.4). */
struct crs {
	unsigned int buses, cfg_ports, io_windows, mem_windows, end_tags;
	uint32_t io_total;	   /* ports in the I/O windows */
	uint64_t mem_min, mem_max; /* the one memory window */
	uint64_t mem_len;
};

/* Walk a resource template: every descriptor inside it, the End Tag last. */
static void parse_crs(const uint8_t *p, size_t len, struct crs *c)
{
	size_t off = 0;

	memset(c, 0, sizeof(*c));
	while (off < len) {
		const uint8_t *d = p + off;

		assert_int_equal(c->end_tags, 0); /* nothing after the End Tag */
		if (!(d[0] & 0x80)) {
			/* 6.4.2 small item: name in bits 6-3, length in 2-0. */
			size_t n = 1 + (d[0] & 7);

			assert_true(off + n <= len);
			switch (d[0] >> 3) {
			case 0x08: /* 6.4.2.5 I/O Port Descriptor */
				assert_int_equal(n, 8);
				assert_int_equal(d[1] & 1, 1); /* 16-bit decode */
				assert_int_equal(le16(d + 2), PCI_CONFIG_ADDR);
				assert_int_equal(le16(d + 4), PCI_CONFIG_ADDR);
				assert_int_equal(d[7], 8);
				c->cfg_ports++;
				break;
			case 0x0f: /* 6.4.2.9 End Tag */
				assert_int_equal(n, 2);
				c->end_tags++;
				break;
			default:
				fail_msg("unexpected small resource 0x%02x", d[0]);
			}
			off += n;
			continue;
		}
		/* 6.4.3 large item: 16-bit length of the rest. */
		assert_true(off + 3 <= len);
		size_t n = 3 + le16(d + 1);

		assert_true(off + n <= len);
		assert_true(n >= 6);
		/* Address space descriptors: producer, min and max fixed,
		 * positive decode (general flags, 6.4.3.5). */
		assert_int_equal(d[4], 0x0c);
		if (d[0] == 0x88) { /* 6.4.3.5.3 Word Address Space */
			uint16_t min, max, l;

			assert_int_equal(n, 16);
			min = le16(d + 8);
			max = le16(d + 10);
			l = le16(d + 14);
			assert_int_equal(le16(d + 12), 0); /* no translation */
			assert_true(min <= max);
			assert_int_equal(l, max - min + 1);
			if (d[3] == 2) { /* bus numbers: bus 0 only */
				assert_int_equal(min, 0);
				assert_int_equal(max, 0);
				c->buses++;
			} else {
				assert_int_equal(d[3], 1); /* I/O */
				assert_int_equal(d[5] & 3, 3);
				/* The window must not forward the config ports. */
				assert_true(max < PCI_CONFIG_ADDR || min > PCI_CONFIG_DATA + 3);
				c->io_total += l;
				c->io_windows++;
			}
		} else if (d[0] == 0x87) { /* 6.4.3.5.2 DWord Address Space */
			assert_int_equal(n, 26);
			assert_int_equal(d[3], 0);	   /* memory */
			assert_int_equal(d[5] & 1, 1);	   /* read/write */
			assert_int_equal(le32(d + 18), 0); /* no translation */
			c->mem_min = le32(d + 10);
			c->mem_max = le32(d + 14);
			c->mem_len = le32(d + 22);
			c->mem_windows++;
		} else {
			fail_msg("unexpected large resource 0x%02x", d[0]);
		}
		off += n;
	}
	assert_int_equal(off, len);
	assert_int_equal(c->end_tags, 1);
}

static void check_dsdt(const struct tables *t)
{
	const uint8_t *f = xsdt_find(t, "FACP");
	const uint8_t *d = sdt(t, le64(f + 140), "DSDT"); /* checksum checked there */
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
	/* Device (\_SB.PCI0): ExtOpPrefix DeviceOp, PkgLength, then the path. */
	const uint8_t pci0[] = { '\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0' };
	/* Name (_HID, EisaId ("PNP0A03")): DWordPrefix and the compressed id. */
	const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	const uint8_t crs_name[] = { 0x08, '_', 'C', 'R', 'S', 0x11 };
	static const char *const zero_names[] = { "_UID", "_SEG", "_BBN" };
	uint32_t len = le32(d + 4);
	const uint8_t *aml = d + 36, *end = d + len, *p;
	size_t n;
	uint32_t pkg, size;
	struct crs c;

	assert_memory_equal(aml, s5, sizeof(s5));
	p = aml + sizeof(s5);

	/* The device runs, by its PkgLength, exactly to the end of the table. */
	assert_true(end - p > 2);
	assert_int_equal(p[0], 0x5b);
	assert_int_equal(p[1], 0x82);
	pkg = pkg_length(p + 2, (size_t)(end - p - 2), &n);
	assert_int_equal(pkg, end - (p + 2));
	assert_true((size_t)(end - p) >= 2 + n + sizeof(pci0));
	assert_memory_equal(p + 2 + n, pci0, sizeof(pci0));

	assert_non_null(find_bytes(p, (size_t)(end - p), hid, sizeof(hid)));
	/* Name (_UID, Zero), Name (_SEG, Zero), Name (_BBN, Zero). */
	for (size_t i = 0; i < sizeof(zero_names) / sizeof(zero_names[0]); i++) {
		const char *nm = zero_names[i];
		const uint8_t zero[] = { 0x08, nm[0], nm[1], nm[2], nm[3], 0x00 };

		assert_non_null(find_bytes(p, (size_t)(end - p), zero, sizeof(zero)));
	}

	/* Name (_CRS, Buffer): PkgLength, BufferSize as a BytePrefix byte,
	 * then the resource template, which ends the device and the table. */
	p = find_bytes(p, (size_t)(end - p), crs_name, sizeof(crs_name));
	assert_non_null(p);
	p += sizeof(crs_name);
	pkg = pkg_length(p, (size_t)(end - p), &n);
	assert_int_equal(pkg, end - p);
	p += n;
	assert_true(end - p >= 2);
	assert_int_equal(p[0], 0x0a);
	size = p[1];
	p += 2;
	assert_int_equal(size, end - p);

	parse_crs(p, size, &c);
	assert_int_equal(c.buses, 1);
	assert_int_equal(c.cfg_ports, 1);
	assert_int_equal(c.io_windows, 2);
	assert_int_equal(c.io_total, 0x10000 - 8); /* every port but 0xcf8-0xcff */
	assert_int_equal(c.mem_windows, 1);
	assert_int_equal(c.mem_min, PCI_MMIO_BASE);
	assert_int_equal(c.mem_max, PCI_MMIO_END - 1);
	assert_int_equal(c.mem_len, PCI_MMIO_END - PCI_MMIO_BASE);
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
