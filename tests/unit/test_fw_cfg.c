/* test_fw_cfg.c - QEMU's fw_cfg device as SeaBIOS reads it (paravirt.c:
 * select with a 16-bit write to 0x510, read bytes from 0x511), and as a
 * hostile guest might: any selector, reads past the end, odd widths; its
 * snapshot state (selector, offset, items and files, through a save and a
 * load into another device), its reset, and hostile saved states. */
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

/* A device with a file and an item, its selector in the middle of one. */
static void make_saved(struct fw_cfg *f, struct state_buf *b)
{
	uint8_t v[2];

	assert_int_equal(fw_cfg_init(f), 0);
	assert_int_equal(fw_cfg_add_machine(f, 64 << 20, 2), 0);
	assert_int_equal(fw_cfg_add_file(f, "etc/sercon-port", "\xf8\x03", 2), 0);
	assert_int_equal(fw_cfg_add_file(f, "bootorder", "/pci@i0cf8/scsi@3/disk@0,0\n", 28), 0);
	sel(f, FW_CFG_RAM_SIZE);
	rd(f, v, 2);
	memset(b, 0, sizeof(*b));
	assert_int_equal(fw_cfg_device_ops.save(f, b), 0);
}

static int load(struct fw_cfg *f, const struct state_buf *b)
{
	struct state_rd r;
	int ret;

	state_rd_init(&r, b->data, b->len);
	ret = fw_cfg_device_ops.load(f, &r);
	return ret ? ret : r.err || r.pos != r.len ? -EINVAL : 0;
}

static void test_save_load(void **state)
{
	struct fw_cfg f, g;
	struct state_buf b;
	uint8_t dir_f[4 + 2 * 64], dir_g[sizeof(dir_f)], v[8];

	(void)state;
	make_saved(&f, &b);
	assert_int_equal(fw_cfg_init(&g), 0); /* a bare device, as a restore has */
	assert_int_equal(load(&g, &b), 0);
	/* The read goes on where it was: bytes 2..3 of RAM_SIZE (64 MiB). */
	rd(&g, v, 2);
	assert_int_equal(v[0], 0x00);
	assert_int_equal(v[1], 0x04);
	sel(&f, FW_CFG_FILE_DIR);
	rd(&f, dir_f, sizeof(dir_f));
	sel(&g, FW_CFG_FILE_DIR);
	rd(&g, dir_g, sizeof(dir_g));
	assert_memory_equal(dir_f, dir_g, sizeof(dir_f));
	assert_int_equal(be32(dir_g), 2);
	sel(&g, (uint16_t)(be32(dir_g + 4 + 64 + 4) >> 16)); /* "etc/sercon-port", sorted second */
	rd(&g, v, 2);
	assert_int_equal(v[0] | v[1] << 8, 0x3f8);
	sel(&g, FW_CFG_NB_CPUS);
	rd(&g, v, 2);
	assert_int_equal(v[0], 2);
	/* A reset selects item 0 at offset 0: the signature. */
	fw_cfg_device_ops.reset(&g);
	rd(&g, v, 4);
	assert_memory_equal(v, "QEMU", 4);
	/* A load into the device it came from (a reset in place). */
	assert_int_equal(load(&f, &b), 0);
	state_buf_free(&b);
	fw_cfg_destroy(&f);
	fw_cfg_destroy(&g);
}

/* Every field of a saved state out of range is refused, the device kept
 * as it was; every truncation too. */
static void test_load_hostile(void **state)
{
	struct fw_cfg f, g;
	struct state_buf b;
	uint8_t v[4];
	/* Offsets in the saved state: u32 version, u16 sel, u32 off, u32
	 * nfiles, then the names (u16 length, name). */
	const size_t nfiles = 10, name0 = 14;

	(void)state;
	make_saved(&f, &b);
	assert_int_equal(fw_cfg_init(&g), 0);
	for (size_t l = 0; l < b.len; l++) {
		struct state_buf t = { .data = b.data, .len = l };

		assert_int_not_equal(load(&g, &t), 0);
	}
	b.data[0] = 2; /* version */
	assert_int_equal(load(&g, &b), -EINVAL);
	b.data[0] = 1;
	cv_put_le32(b.data + nfiles, FW_CFG_MAX_FILES + 1);
	assert_int_equal(load(&g, &b), -EINVAL);
	cv_put_le32(b.data + nfiles, 1); /* the second name is read as items */
	assert_int_equal(load(&g, &b), -EINVAL);
	cv_put_le32(b.data + nfiles, 2);
	b.data[name0 + 2] = '\0'; /* a NUL in a name */
	assert_int_equal(load(&g, &b), -EINVAL);
	b.data[name0 + 2] = 'e';
	assert_int_equal(load(&g, &b), 0);
	cv_put_le16(b.data + name0, 0); /* an empty name */
	assert_int_equal(load(&g, &b), -EINVAL);
	cv_put_le16(b.data + name0, FW_CFG_NAME_MAX); /* too long */
	assert_int_equal(load(&g, &b), -EINVAL);
	/* g kept its own items through every refusal. */
	sel(&g, FW_CFG_SIGNATURE);
	rd(&g, v, 4);
	assert_memory_equal(v, "QEMU", 4);
	state_buf_free(&b);
	fw_cfg_destroy(&f);
	fw_cfg_destroy(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature_and_id), cmocka_unit_test(test_items_and_files),
		cmocka_unit_test(test_hostile),		 cmocka_unit_test(test_firmware_size),
		cmocka_unit_test(test_save_load),	 cmocka_unit_test(test_load_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
