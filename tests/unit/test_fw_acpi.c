/* test_fw_acpi.c - cvisor's ACPI tables through QEMU's table loader
 * (src/boot/fw_acpi.c): the test runs "etc/table-loader" as SeaBIOS's
 * romfile_loader.c does (allocate, add pointers, fix checksums) with the
 * files at made-up addresses, then walks the result as an OS would. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/acpi.h"
#include "cvisor/firmware.h"
#include "cvisor/fw_cfg.h"
#include "cvisor/util.h"

#define MEM (1u << 20)
#define RSDP_AT 0xf0100u
#define TABLES_AT 0x40000u

static const struct fw_cfg_item *file(struct fw_cfg *f, const char *name)
{
	for (unsigned int i = 0; i < f->nfiles; i++)
		if (!strcmp(f->names[i], name))
			for (unsigned int j = 0; j < f->nitems; j++)
				if (f->items[j].key == FW_CFG_FILE_FIRST + i)
					return &f->items[j];
	return NULL;
}

static uint32_t where(const char *name)
{
	return !strcmp(name, "etc/acpi/rsdp") ? RSDP_AT : TABLES_AT;
}

static void run_loader(struct fw_cfg *f, uint8_t *mem)
{
	const struct fw_cfg_item *ld = file(f, "etc/table-loader");

	assert_non_null(ld);
	assert_int_equal(ld->len % 128, 0);
	for (uint32_t at = 0; at < ld->len; at += 128) {
		const uint8_t *e = ld->data + at;
		const char *a = (const char *)e + 4, *b = (const char *)e + 60;

		switch (cv_le32(e)) {
		case 1: {
			const struct fw_cfg_item *it = file(f, a);

			assert_non_null(it);
			assert_int_equal(where(a) % cv_le32(e + 60), 0);
			assert_int_equal(e[64], !strcmp(a, "etc/acpi/rsdp") ? 2 : 1);
			memcpy(mem + where(a), it->data, it->len);
			break;
		}
		case 2: {
			uint8_t *p = mem + where(a) + cv_le32(e + 116);
			unsigned int size = e[120];

			assert_true(size == 4 || size == 8);
			cv_put_le(p, cv_get_le(p, size) + where(b), size);
			break;
		}
		case 3: {
			uint8_t *base = mem + where(a);

			base[cv_le32(e + 60)] -=
				acpi_checksum(base + cv_le32(e + 64), cv_le32(e + 68));
			break;
		}
		default:
			fail_msg("unknown loader command %u", cv_le32(e));
		}
	}
}

static const uint8_t *table(const uint8_t *mem, uint64_t addr, const char *sig)
{
	assert_true(addr >= TABLES_AT && addr < MEM - 36);
	assert_memory_equal(mem + addr, sig, 4);
	if (strcmp(sig, "FACS"))
		assert_int_equal(acpi_checksum(mem + addr, cv_le32(mem + addr + 4)), 0);
	return mem + addr;
}

static void test_loader(void **state)
{
	struct acpi_config ac = {
		.ncpus = 2, .lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000, .ioapic_id = 2
	};
	uint8_t *mem = calloc(1, MEM);
	const uint8_t *rsdp, *rsdt, *xsdt, *fadt;
	struct fw_cfg f;

	assert_non_null(mem);
	*state = mem;
	assert_int_equal(fw_cfg_init(&f), 0);
	assert_int_equal(firmware_acpi(&f, &ac), 0);
	run_loader(&f, mem);
	rsdp = mem + RSDP_AT;
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(rsdp, 20), 0);
	assert_int_equal(acpi_checksum(rsdp, 36), 0);
	rsdt = table(mem, cv_le32(rsdp + 16), "RSDT");
	xsdt = table(mem, cv_get_le(rsdp + 24, 8), "XSDT");
	fadt = table(mem, cv_le32(rsdt + 36), "FACP");
	assert_int_equal(cv_get_le(xsdt + 36, 8), cv_le32(rsdt + 36));
	table(mem, cv_le32(rsdt + 40), "APIC");
	assert_int_equal(cv_get_le(xsdt + 44, 8), cv_le32(rsdt + 40));
	table(mem, cv_le32(fadt + 36), "FACS");
	table(mem, cv_le32(fadt + 40), "DSDT");
	assert_int_equal(cv_get_le(fadt + 140, 8), cv_le32(fadt + 40));
	fw_cfg_destroy(&f);
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_loader, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
