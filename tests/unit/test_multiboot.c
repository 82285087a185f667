/* test_multiboot.c - the multiboot (v1) loader (src/boot/multiboot.c) over
 * guest memory in a plain buffer: the information structure it writes for
 * an a.out-kludge and an ELF32 kernel, and every refusal (a wrong checksum,
 * ELF64, addresses outside the file or RAM, modules that do not fit). */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boot_fixture.h"

#define MB_MAGIC 0x1BADB002u

static uint32_t get32(const uint8_t *p)
{
	return cv_le32(p);
}

/* A flat kernel: the header at 0x40, loaded at 1 MiB (file offset 0), its
 * text up to 0x1000, bss to 0x3000, entry at 0x100080. */
static void make_aout(uint8_t *k, uint32_t flags)
{
	memset(k, 0, KSIZE);
	cv_put_le32(k + 0x40, MB_MAGIC);
	cv_put_le32(k + 0x44, flags | 0x10000);
	cv_put_le32(k + 0x48, -(MB_MAGIC + (flags | 0x10000)));
	cv_put_le32(k + 0x4c, 0x100040); /* header_addr */
	cv_put_le32(k + 0x50, 0x100000); /* load_addr */
	cv_put_le32(k + 0x54, 0x101000); /* load_end_addr */
	cv_put_le32(k + 0x58, 0x103000); /* bss_end_addr */
	cv_put_le32(k + 0x5c, 0x100080); /* entry_addr */
	memset(k + 0x80, 0xf4, 0x10);
}

/* An ELF32 kernel: one PT_LOAD linked at 0xc0200000 (p_vaddr), loaded at
 * 2 MiB (p_paddr), the header in its first bytes, entry 0xc0200010. */
static void make_elf32(uint8_t *k)
{
	Elf32_Ehdr *eh = (Elf32_Ehdr *)k;
	Elf32_Phdr *ph = (Elf32_Phdr *)(k + sizeof(*eh));

	memset(k, 0, KSIZE);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_machine = EM_386;
	eh->e_entry = 0xc0200010;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 1;
	ph[0] = (Elf32_Phdr){ .p_type = PT_LOAD,
			      .p_offset = 0x1000,
			      .p_vaddr = 0xc0200000,
			      .p_paddr = 0x200000,
			      .p_filesz = 0x100,
			      .p_memsz = 0x2000 };
	cv_put_le32(k + 0x1000, MB_MAGIC);
	cv_put_le32(k + 0x1004, 0x3);
	cv_put_le32(k + 0x1008, -(MB_MAGIC + 3));
	memset(k + 0x1010, 0xf4, 0x10);
}

static int load(struct fx *f, size_t len, const struct boot_module *m, unsigned int n)
{
	struct boot_image img = { .kernel = f->k,
				  .kernel_len = len,
				  .cmdline = "/k/mb.elf cpus=2",
				  .modules = m,
				  .nmodules = n };

	f->err[0] = '\0';
	return boot_load(&f->gm, &img, &f->entry, f->err, sizeof(f->err));
}

static void test_aout_ok(void **state)
{
	struct fx *f = *state;
	static const uint8_t a[5000] = { 'A' }, b[10] = { 'B' };
	const struct boot_module m[2] = { { a, sizeof(a), "/m/a x y" }, { b, sizeof(b), "/m/b" } };
	const uint8_t *mbi = f->ram + LAYOUT_BOOT_PARAMS, *mods;

	assert_true(boot_is_multiboot(f->k, 0) == false);
	make_aout(f->k, 0x3);
	assert_true(boot_is_multiboot(f->k, KSIZE));
	f->ram[0x102000] = 0x55; /* bss must be zeroed */
	assert_int_equal(load(f, KSIZE, m, 2), 0);
	assert_int_equal(f->entry.mode, BOOT_MULTIBOOT);
	assert_int_equal(f->entry.rip, 0x100080);
	assert_int_equal(f->entry.arg, LAYOUT_BOOT_PARAMS);
	assert_int_equal(f->ram[0x100080], 0xf4);
	assert_int_equal(f->ram[0x102000], 0);
	assert_int_equal(get32(mbi), 0x24f); /* memory, boot device, cmdline, mods, mmap, name */
	assert_int_equal(get32(mbi + 4), 639);
	assert_int_equal(get32(mbi + 8), (RAM >> 10) - 1024);
	assert_int_equal(get32(mbi + 12), 0x8000ffff);
	assert_string_equal((char *)f->ram + get32(mbi + 16), "/k/mb.elf cpus=2");
	assert_int_equal(get32(mbi + 20), 2);
	mods = f->ram + get32(mbi + 24);
	/* page-aligned after the bss, in order, each with its string */
	assert_int_equal(get32(mods), 0x103000);
	assert_int_equal(get32(mods + 4), 0x103000 + sizeof(a));
	assert_string_equal((char *)f->ram + get32(mods + 8), "/m/a x y");
	assert_int_equal(get32(mods + 16), 0x105000);
	assert_string_equal((char *)f->ram + get32(mods + 24), "/m/b");
	assert_int_equal(f->ram[0x103000], 'A');
	assert_int_equal(f->ram[0x105000], 'B');
	/* the memory map: 24-byte entries, RAM from 1 MiB */
	assert_int_equal(get32(mbi + 44) % 24, 0);
	assert_int_equal(get32(f->ram + get32(mbi + 48)), 20);
	assert_string_equal((char *)f->ram + get32(mbi + 64), "cvisor");
}

static void test_elf32_ok(void **state)
{
	struct fx *f = *state;

	const struct boot_module empty = { NULL, 0, "/m/empty" }; /* QEMU takes one too */
	const uint8_t *mods = f->ram + LAYOUT_MB_MODS;

	make_elf32(f->k);
	assert_int_equal(load(f, KSIZE, NULL, 0), 0);
	assert_int_equal(f->entry.mode, BOOT_MULTIBOOT);
	assert_int_equal(f->entry.rip, 0x200010); /* e_entry moved to p_paddr */
	assert_int_equal(f->ram[0x200010], 0xf4);
	assert_int_equal(get32(f->ram + LAYOUT_BOOT_PARAMS + 20), 0);
	assert_int_equal(load(f, KSIZE, &empty, 1), 0);
	assert_int_equal(get32(f->ram + LAYOUT_BOOT_PARAMS + 20), 1);
	assert_int_equal(get32(mods), 0x202000);
	assert_int_equal(get32(mods + 4), 0x202000);
}

/* A magic whose checksum is wrong is passed over, as QEMU's search does:
 * the header after it loads; one past the window (8 KiB less 48) does not. */
static void test_search_past_bad_magic(void **state)
{
	struct fx *f = *state;

	make_aout(f->k, 0);
	cv_put_le32(f->k + 0x10, MB_MAGIC); /* flags 0, checksum 0: wrong */
	assert_true(boot_is_multiboot(f->k, KSIZE));
	assert_int_equal(load(f, KSIZE, NULL, 0), 0);
	assert_int_equal(f->entry.mode, BOOT_MULTIBOOT);
	assert_int_equal(f->entry.rip, 0x100080);

	memset(f->k, 0, KSIZE);
	cv_put_le32(f->k + 8192 - 48, MB_MAGIC);
	cv_put_le32(f->k + 8192 - 44, 0);
	cv_put_le32(f->k + 8192 - 40, -MB_MAGIC);
	assert_false(boot_is_multiboot(f->k, KSIZE));
	cv_put_le32(f->k + 8192 - 52, MB_MAGIC);
	cv_put_le32(f->k + 8192 - 48, 0);
	cv_put_le32(f->k + 8192 - 44, -MB_MAGIC);
	assert_true(boot_is_multiboot(f->k, KSIZE));
}

static void test_refused(void **state)
{
	struct fx *f = *state;
	static const uint8_t big[1] = { 1 };
	struct boot_module m[BOOT_MAX_MODULES + 1];

	make_aout(f->k, 0);
	cv_put_le32(f->k + 0x48, 0); /* checksum */
	assert_false(boot_is_multiboot(f->k, KSIZE));
	assert_int_equal(load(f, KSIZE, NULL, 0), -ENOEXEC);
	assert_non_null(strstr(f->err, "checksum"));

	make_aout(f->k, 0);
	cv_put_le32(f->k + 0x4c, 0x10); /* header_addr below load_addr */
	assert_int_equal(load(f, KSIZE, NULL, 0), -ENOEXEC);
	assert_true(f->err[0]);

	make_aout(f->k, 0);
	cv_put_le32(f->k + 0x4c, 0x200040); /* the file would start before its start */
	assert_int_equal(load(f, KSIZE, NULL, 0), -ENOEXEC);

	make_aout(f->k, 0);
	cv_put_le32(f->k + 0x54, 0x110000); /* load_end past the file */
	assert_int_equal(load(f, KSIZE, NULL, 0), -ENOEXEC);
	assert_non_null(strstr(f->err, "load_end_addr"));

	make_aout(f->k, 0);
	cv_put_le32(f->k + 0x58, 0x100800); /* bss below the loaded end */
	assert_int_equal(load(f, KSIZE, NULL, 0), -ENOEXEC);

	make_aout(f->k, 0);
	cv_put_le32(f->k + 0x4c, 0x9040); /* loaded over the boot data */
	cv_put_le32(f->k + 0x50, 0x9000);
	cv_put_le32(f->k + 0x54, 0xa000);
	cv_put_le32(f->k + 0x58, 0xc000);
	assert_int_equal(load(f, KSIZE, NULL, 0), -E2BIG);
	assert_non_null(strstr(f->err, "below 1 MiB"));

	make_aout(f->k, 0);
	cv_put_le32(f->k + 0x58, 0xfffff000); /* bss past RAM */
	assert_int_equal(load(f, KSIZE, NULL, 0), -E2BIG);

	make_aout(f->k, 0);
	cv_put_le32(f->k + 0x5c, 0xf0000000); /* entry outside RAM */
	assert_int_equal(load(f, KSIZE, NULL, 0), -ENOEXEC);

	make_elf32(f->k);
	((Elf32_Phdr *)(f->k + sizeof(Elf32_Ehdr)))->p_paddr = 0x7000;
	assert_int_equal(load(f, KSIZE, NULL, 0), -E2BIG);

	make_elf32(f->k);
	f->k[EI_CLASS] = ELFCLASS64; /* read as ELF64 */
	assert_int_equal(load(f, KSIZE, NULL, 0), -ENOEXEC);
	assert_true(f->err[0]);

	/* modules: too many, too big for RAM */
	make_aout(f->k, 0);
	for (unsigned int i = 0; i <= BOOT_MAX_MODULES; i++)
		m[i] = (struct boot_module){ big, 1, "m" };
	assert_int_equal(load(f, KSIZE, m, BOOT_MAX_MODULES + 1), -E2BIG);
	assert_non_null(strstr(f->err, "modules"));
	m[0].len = RAM; /* a length past RAM is refused before any copy */
	assert_int_equal(load(f, KSIZE, m, 1), -E2BIG);
	assert_non_null(strstr(f->err, "does not fit"));

	/* Truncations never load and never crash. */
	make_aout(f->k, 0);
	for (size_t l = 0; l < 0x60; l += 2)
		assert_int_not_equal(load(f, l, NULL, 0), 0);
	make_elf32(f->k);
	for (size_t l = 0; l < 0x1100; l += 7)
		assert_int_not_equal(load(f, l, NULL, 0), 0);
}

static void test_strings_too_long(void **state)
{
	struct fx *f = *state;
	static const uint8_t a[1] = { 1 };
	char *s = malloc(LAYOUT_CMDLINE_MAX);
	struct boot_module m = { a, 1, s };

	memset(s, 'a', LAYOUT_CMDLINE_MAX - 100);
	s[LAYOUT_CMDLINE_MAX - 100] = '\0';
	make_aout(f->k, 0);
	assert_int_equal(load(f, KSIZE, &m, 1), 0);
	struct boot_module two[2] = { m, m };
	assert_int_equal(load(f, KSIZE, two, 2), -E2BIG);
	assert_non_null(strstr(f->err, "command lines"));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_aout_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_elf32_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_past_bad_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strings_too_long, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
