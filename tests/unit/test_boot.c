/* test_boot.c - the bzImage and PVH loaders against malformed input, and
 * the e820 map, over guest memory in a plain buffer (no KVM). */
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

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* A minimal valid bzImage: 4 setup sectors and a protected-mode part. */
static void make_bzimage(uint8_t *k)
{
	memset(k, 0, KSIZE);
	k[0x1f1] = 4;
	put16(k + 0x1fe, 0xaa55);
	k[0x201] = 0x66; /* header runs to 0x268 */
	memcpy(k + 0x202, "HdrS", 4);
	put16(k + 0x206, 0x020f);
	k[0x211] = 0x01;	      /* LOADED_HIGH */
	put32(k + 0x22c, 0x7fffffff); /* initrd_addr_max */
	k[0x236] = 0x01;	      /* XLF_KERNEL_64 */
	put32(k + 0x238, 2047);	      /* cmdline_size */
	put32(k + 0x260, 0x100000);   /* init_size */
	memset(k + 5 * 512, 0x90, KSIZE - 5 * 512);
}

static int load(struct fx *f, size_t len, const uint8_t *initrd, size_t initrd_len)
{
	struct boot_image img = {
		.kernel = f->k,
		.kernel_len = len,
		.initrd = initrd,
		.initrd_len = initrd_len,
		.cmdline = "console=ttyS0",
		.rsdp_gpa = 0xe0000,
	};

	return boot_load(&f->gm, &img, &f->entry, f->err, sizeof(f->err));
}

static void test_bzimage_ok(void **state)
{
	struct fx *f = *state;
	static const uint8_t rd[8192] = { 1, 2, 3 };
	uint8_t *bp = f->ram + LAYOUT_BOOT_PARAMS;

	make_bzimage(f->k);
	assert_int_equal(load(f, KSIZE, rd, sizeof(rd)), 0);
	assert_int_equal(f->entry.mode, BOOT_LINUX64);
	assert_int_equal(f->entry.rip, 0x100000 + 0x200);
	assert_int_equal(f->entry.arg, LAYOUT_BOOT_PARAMS);
	/* the protected-mode part sits at 1 MiB */
	assert_int_equal(f->ram[0x100000], 0x90);
	assert_string_equal((char *)f->ram + get32(bp + 0x228), "console=ttyS0");
	assert_int_equal(bp[0x210], 0xff);
	/* the initrd is page aligned, at the top of RAM, and intact */
	uint32_t at = get32(bp + 0x218);
	assert_int_equal(get32(bp + 0x21c), sizeof(rd));
	assert_int_equal(at % 4096, 0);
	assert_true(at + sizeof(rd) <= RAM);
	assert_true(at >= 0x100000 + 0x100000);
	assert_memory_equal(f->ram + at, rd, sizeof(rd));
	assert_int_equal(bp[0x1e8], 4); /* e820 entries */
}

static void test_bzimage_bad_headers(void **state)
{
	struct fx *f = *state;
	static const struct {
		size_t off;
		uint8_t val;
		const char *why;
	} cases[] = {
		{ 0x1fe, 0x00, "not a Linux bzImage" },
		{ 0x202, 'X', "not a Linux bzImage" },
		{ 0x207, 0x01, "too old" }, /* protocol 1.x */
		{ 0x236, 0x00, "no 64-bit entry" },
		{ 0x211, 0x00, "zImage" },
		{ 0x1f1, 60, "truncated" }, /* setup larger than the file */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		make_bzimage(f->k);
		f->k[cases[i].off] = cases[i].val;
		assert_int_equal(load(f, KSIZE, NULL, 0), -ENOEXEC);
		assert_non_null(strstr(f->err, cases[i].why));
	}
}

static void test_bzimage_truncated(void **state)
{
	struct fx *f = *state;

	/* Every length short of the setup sectors is refused cleanly. */
	for (size_t len = 0; len <= 5 * 512; len += 7) {
		make_bzimage(f->k);
		assert_int_not_equal(load(f, len, NULL, 0), 0);
		assert_true(f->err[0] != '\0');
	}
}

static void test_initrd_out_of_range(void **state)
{
	struct fx *f = *state;
	uint8_t *big = calloc(1, RAM);

	make_bzimage(f->k);
	assert_non_null(big);
	assert_int_equal(load(f, KSIZE, big, RAM - 0x100000), -E2BIG);
	assert_non_null(strstr(f->err, "initrd"));
	/* initrd_addr_max below the kernel's end: nowhere to put it */
	put32(f->k + 0x22c, 0x180000);
	assert_int_equal(load(f, KSIZE, big, 4096), -E2BIG);
	free(big);
}

static void test_kernel_larger_than_ram(void **state)
{
	struct fx *f = *state;

	make_bzimage(f->k);
	put32(f->k + 0x260, 0x7f000000); /* init_size 2 GiB */
	assert_int_equal(load(f, KSIZE, NULL, 0), -E2BIG);
}

static void test_cmdline_too_long(void **state)
{
	struct fx *f = *state;
	char *line = malloc(4000);
	struct boot_image img = { .kernel = f->k, .kernel_len = KSIZE, .cmdline = line };

	memset(line, 'a', 3999);
	line[3999] = 0;
	make_bzimage(f->k);
	put32(f->k + 0x238, 255);
	assert_int_equal(boot_load(&f->gm, &img, &f->entry, f->err, sizeof(f->err)), -E2BIG);
	free(line);
}

/* An ELF64 with one PT_LOAD at 2 MiB and a PT_NOTE holding the PVH note. */
static size_t make_pvh(uint8_t *k, bool with_note, uint64_t paddr)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)k;
	Elf64_Phdr *ph = (Elf64_Phdr *)(k + sizeof(*eh));
	uint8_t *note = k + 0x200, *code = k + 0x400;

	memset(k, 0, KSIZE);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_machine = EM_X86_64;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 2;
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD,
			      .p_offset = 0x400,
			      .p_paddr = paddr,
			      .p_filesz = 0x100,
			      .p_memsz = 0x2000 };
	ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = 0x200, .p_filesz = 20 };
	put32(note, 4);
	put32(note + 4, 4);
	put32(note + 8, with_note ? 18 : 17);
	memcpy(note + 12, "Xen", 4);
	put32(note + 16, (uint32_t)paddr + 0x10);
	memset(code, 0xf4, 0x100);
	return 0x500;
}

static void test_pvh_ok(void **state)
{
	struct fx *f = *state;
	static const uint8_t rd[4096] = { 7 };
	size_t len = make_pvh(f->k, true, 0x200000);
	uint8_t *si = f->ram + LAYOUT_BOOT_PARAMS;

	f->ram[0x200000 + 0x1000] = 0x55; /* bss must be zeroed */
	assert_int_equal(load(f, len, rd, sizeof(rd)), 0);
	assert_int_equal(f->entry.mode, BOOT_PVH32);
	assert_int_equal(f->entry.rip, 0x200010);
	assert_int_equal(f->ram[0x200000], 0xf4);
	assert_int_equal(f->ram[0x201000], 0);
	assert_int_equal(get32(si), 0x336ec578);
	assert_int_equal(get32(si + 12), 1); /* one module: the initrd */
	assert_int_equal(get32(si + 48), 4); /* memmap entries */
	assert_string_equal((char *)f->ram + get32(si + 24), "console=ttyS0");
}

static void test_pvh_bad(void **state)
{
	struct fx *f = *state;
	size_t len;

	len = make_pvh(f->k, false, 0x200000);
	assert_int_equal(load(f, len, NULL, 0), -ENOEXEC);
	assert_non_null(strstr(f->err, "no PVH entry note"));

	len = make_pvh(f->k, true, RAM - 0x1000); /* segment runs off the end */
	assert_int_equal(load(f, len, NULL, 0), -E2BIG);

	len = make_pvh(f->k, true, 0x7000); /* over the boot data */
	assert_int_equal(load(f, len, NULL, 0), -E2BIG);

	len = make_pvh(f->k, true, 0x200000);
	((Elf64_Phdr *)(f->k + sizeof(Elf64_Ehdr)))[0].p_offset = 0xfffffffffffff000ULL;
	assert_int_equal(load(f, len, NULL, 0), -ENOEXEC);

	len = make_pvh(f->k, true, 0x200000);
	((Elf64_Ehdr *)f->k)->e_phoff = KSIZE - 8; /* headers past the file */
	assert_int_equal(load(f, len, NULL, 0), -ENOEXEC);

	len = make_pvh(f->k, true, 0x200000);
	put32(f->k + 0x200, 0xfffffff0); /* note name size wraps */
	assert_int_equal(load(f, len, NULL, 0), -ENOEXEC);

	/* Truncations of a valid image never load and never crash. */
	make_pvh(f->k, true, 0x200000);
	for (size_t l = 0; l < 0x500; l += 3)
		assert_int_not_equal(load(f, l, NULL, 0), 0);
}

static void test_e820_layout(void **state)
{
	struct fx *f = *state;
	struct e820_entry e[E820_MAX];
	uint8_t *buf = malloc(1);
	struct guest_mem big;
	unsigned int n;

	n = boot_e820(&f->gm, 0, e, E820_MAX);
	assert_int_equal(n, 4);
	assert_int_equal(e[0].addr, 0);
	assert_int_equal(e[0].size, LAYOUT_EBDA);
	assert_int_equal(e[1].addr, LAYOUT_EBDA);
	assert_int_equal(e[1].type, E820_RESERVED);
	/* Pages reserved below the EBDA (the syscall shim's) join the EBDA's
	 * reserved range; an end above the EBDA is clamped to it. */
	n = boot_e820(&f->gm, 0x9b000, e, E820_MAX);
	assert_int_equal(n, 4);
	assert_int_equal(e[0].size, 0x9b000);
	assert_int_equal(e[1].addr, 0x9b000);
	assert_int_equal(e[1].addr + e[1].size, 0xa0000);
	assert_int_equal(e[1].type, E820_RESERVED);
	n = boot_e820(&f->gm, 0xc0000, e, E820_MAX);
	assert_int_equal(e[0].size, LAYOUT_EBDA);
	assert_int_equal(e[3].addr, 0x100000);
	assert_int_equal(e[3].addr + e[3].size, RAM);
	/* 5 GiB: 3 GiB low, 2 GiB from 4 GiB up (layout only; no access). */
	guest_mem_init_buf(&big, buf, 5ULL << 30);
	n = boot_e820(&big, 0, e, E820_MAX);
	assert_int_equal(n, 5);
	assert_int_equal(e[3].addr + e[3].size, 3ULL << 30);
	assert_int_equal(e[4].addr, 4ULL << 30);
	assert_int_equal(e[4].size, 2ULL << 30);
	for (unsigned int i = 0; i < n; i++)
		assert_true(e[i].type == E820_RAM || e[i].type == E820_RESERVED);
	assert_int_equal(boot_e820(&big, 0, e, 2), 0);
	free(buf);
}

static void test_guest_mem_ptr_bounds(void **state)
{
	struct fx *f = *state;
	struct guest_mem big;
	uint8_t *buf = malloc(1);

	assert_non_null(guest_mem_ptr(&f->gm, 0, RAM));
	assert_null(guest_mem_ptr(&f->gm, 0, RAM + 1));
	assert_null(guest_mem_ptr(&f->gm, RAM, 1));
	assert_non_null(guest_mem_ptr(&f->gm, RAM - 1, 1));
	assert_null(guest_mem_ptr(&f->gm, UINT64_MAX, 2));	/* wraps */
	assert_null(guest_mem_ptr(&f->gm, 16, UINT64_MAX - 8)); /* wraps */
	guest_mem_init_buf(&big, buf, 5ULL << 30);
	/* the hole between 3 and 4 GiB is not RAM, nor is a range across it */
	assert_null(guest_mem_ptr(&big, 3ULL << 30, 1));
	assert_null(guest_mem_ptr(&big, (3ULL << 30) - 1, 2));
	assert_null(guest_mem_ptr(&big, (4ULL << 30) - 1, 2));
	assert_ptr_equal(guest_mem_ptr(&big, 4ULL << 30, 1), buf + (3ULL << 30));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bzimage_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_bad_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bzimage_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kernel_larger_than_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pvh_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_e820_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_mem_ptr_bounds, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
