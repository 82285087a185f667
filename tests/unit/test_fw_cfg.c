/* test_fw_cfg.c - QEMU's fw_cfg device as SeaBIOS reads it (paravirt.c:
 * select with a 16-bit write to 0x510, read bytes from 0x511), and as a
 * hostile guest might: any selector, reads past the end, odd widths. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/firmware.h"
#include "cvisor/fw_cfg.h"

static void sel(struct fw_cfg *f, uint16_t key)
{
	uint8_t b[2] = { (uint8_t)key, (uint8_t)(key >> 8) };

	fw_cfg_bus_ops.write(f, 0, b, 2);
}

static void rd(struct fw_cfg *f, void *buf, size_t n)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < n; i++)
		fw_cfg_bus_ops.read(f, 1, &p[i], 1);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_signature_and_id(void **state)
{
	struct fw_cfg f;
	uint8_t b[8];

	(void)state;
	assert_int_equal(fw_cfg_init(&f), 0);
	sel(&f, FW_CFG_SIGNATURE);
	rd(&f, b, 4);
	assert_memory_equal(b, "QEMU", 4);
	/* The selector resets the offset; the ID says: no DMA. */
	sel(&f, FW_CFG_ID);
	rd(&f, b, 4);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[1] | b[2] | b[3], 0);
	fw_cfg_destroy(&f);
}

static void test_items_and_files(void **state)
{
	struct fw_cfg f;
	uint8_t b[4 + 3 * 64], v[8];
	uint16_t cpus = 3;

	(void)state;
	assert_int_equal(fw_cfg_init(&f), 0);
	assert_int_equal(fw_cfg_add(&f, FW_CFG_NB_CPUS, &cpus, 2), 0);
	assert_int_equal(fw_cfg_add_file(&f, "etc/z", "zz", 2), 0);
	assert_int_equal(fw_cfg_add_file(&f, "bootorder", "/pci@i0cf8/scsi@1/disk@0,0\n", 28), 0);
	assert_int_equal(fw_cfg_add_file(&f, "etc/z", "x", 1), -EEXIST);
	assert_int_equal(fw_cfg_add_file(&f, "", "x", 1), -EINVAL);
	assert_int_equal(fw_cfg_add(&f, FW_CFG_FILE_FIRST + 3, "x", 1), -EINVAL);
	sel(&f, FW_CFG_NB_CPUS);
	rd(&f, v, 2);
	assert_int_equal(v[0], 3);
	/* The directory, big-endian, sorted by name. */
	sel(&f, FW_CFG_FILE_DIR);
	rd(&f, b, sizeof(b));
	assert_int_equal(be32(b), 2);
	assert_string_equal((char *)b + 4 + 8, "bootorder");
	assert_int_equal(be32(b + 4), 28);
	assert_int_equal(b[4 + 4] << 8 | b[4 + 5], FW_CFG_FILE_FIRST + 1);
	assert_string_equal((char *)b + 4 + 64 + 8, "etc/z");
	/* Past the directory's end: zeros. */
	assert_int_equal(b[4 + 2 * 64], 0);
	sel(&f, FW_CFG_FILE_FIRST);
	rd(&f, v, 4);
	assert_memory_equal(v, "zz\0\0", 4);
	fw_cfg_destroy(&f);
	fw_cfg_destroy(&f);
}

static void test_hostile(void **state)
{
	struct fw_cfg f;
	uint8_t b[8], one = 0x42;

	(void)state;
	assert_int_equal(fw_cfg_init(&f), 0);
	/* Every selector answers, with zeros when nothing is there. */
	for (uint32_t k = 0; k <= 0xffff; k += 0x111) {
		sel(&f, (uint16_t)k);
		memset(b, 0xee, sizeof(b));
		fw_cfg_bus_ops.read(&f, 1, b, 8);
		if ((k & 0xbfff) > FW_CFG_FILE_DIR)
			for (int i = 0; i < 8; i++)
				assert_int_equal(b[i], 0);
	}
	/* Long reads run past the end and stay zero; the offset saturates. */
	sel(&f, FW_CFG_SIGNATURE);
	f.off = UINT32_MAX - 1;
	fw_cfg_bus_ops.read(&f, 1, b, 4);
	assert_int_equal(f.off, UINT32_MAX);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	/* Writes to the data port change nothing; the selector reads zero. */
	sel(&f, FW_CFG_SIGNATURE);
	fw_cfg_bus_ops.write(&f, 1, &one, 1);
	fw_cfg_bus_ops.read(&f, 0, b, 2);
	assert_int_equal(b[0] | b[1], 0);
	rd(&f, b, 4);
	assert_memory_equal(b, "QEMU", 4);
	/* A byte write selects too (its low byte). */
	one = FW_CFG_ID;
	fw_cfg_bus_ops.write(&f, 0, &one, 1);
	rd(&f, b, 1);
	assert_int_equal(b[0], 1);
	/* Items too large or too many are refused. */
	assert_int_equal(fw_cfg_add(&f, FW_CFG_RAM_SIZE, b, FW_CFG_ITEM_MAX + 1), -EINVAL);
	for (unsigned int i = 0; i < FW_CFG_MAX_FILES + 1; i++) {
		char name[16];
		int r;

		snprintf(name, sizeof(name), "f%u", i);
		r = fw_cfg_add_file(&f, name, "x", 1);
		assert_int_equal(r, i < FW_CFG_MAX_FILES ? 0 : -ENOSPC);
	}
	fw_cfg_destroy(&f);
}

static void test_firmware_size(void **state)
{
	char err[160];

	(void)state;
	assert_int_equal(firmware_check_size(128 << 10, err, sizeof(err)), 0);
	assert_int_equal(firmware_check_size(16 << 20, err, sizeof(err)), 0);
	assert_int_equal(firmware_check_size(0, err, sizeof(err)), -EINVAL);
	assert_int_equal(firmware_check_size(100000, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "multiple of 64 KiB"));
	assert_int_equal(firmware_check_size((16 << 20) + (64 << 10), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "16 MiB"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature_and_id),
		cmocka_unit_test(test_items_and_files),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_firmware_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
