/* test_ramwalk.c - the walk of the RAM pages that may hold data
 * (src/mem/ramwalk.c), which snapshots and migration share: anonymous RAM
 * yields exactly the pages written (and forgets one given back with
 * MADV_DONTNEED); RAM mapped from a memory file adds the file's data
 * extents; without pagemap every page counts; and the zero-page test. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/guest_mem.h"
#include "cvisor/ramwalk.h"

#define PAGE RAMWALK_PAGE_SIZE
#define NPAGES 1024ULL /* 4 MiB */
#define MEM (NPAGES * PAGE)

struct run {
	uint64_t first, count;
};

/* The walk's runs into out (at most max); returns how many. */
static unsigned int walk(const struct guest_mem *gm, struct run *out, unsigned int max)
{
	struct ramwalk w;
	unsigned int n = 0;
	uint64_t first, count;

	ramwalk_begin(&w, gm);
	while (ramwalk_next(&w, &first, &count)) {
		assert_true(n < max);
		assert_true(count > 0);
		out[n++] = (struct run){ first, count };
	}
	ramwalk_end(&w);
	return n;
}

/* Anonymous memory without transparent huge pages: a write makes exactly
 * its page present. */
static uint8_t *anon(void)
{
	uint8_t *p = mmap(NULL, MEM, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	assert_true(p != MAP_FAILED);
	(void)madvise(p, MEM, MADV_NOHUGEPAGE);
	return p;
}

static void test_anonymous(void **state)
{
	static const struct run want[] = { { 0, 2 }, { 5, 1 }, { 100, 3 }, { NPAGES - 1, 1 } };
	struct guest_mem gm;
	struct run got[16];
	uint8_t *ram = anon();
	uint64_t bits[NPAGES / 64 + 1] = { 0 };
	unsigned int n;

	(void)state;
	guest_mem_init_buf(&gm, ram, MEM);
	assert_int_equal(walk(&gm, got, 16), 0); /* nothing touched yet */
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		for (uint64_t k = 0; k < want[i].count; k++)
			ram[(want[i].first + k) * PAGE + 7] = 1;
	n = walk(&gm, got, 16);
	assert_int_equal(n, 4);
	assert_memory_equal(got, want, sizeof(want));
	/* The bitmap form says the same. */
	bits[0] = 1ULL << 63; /* kept: the caller's bits stay set */
	ramwalk_bitmap(&gm, bits);
	assert_int_equal(bits[0], (1ULL << 63) | 0x3 | (1ULL << 5));
	assert_int_equal(bits[1], 0x7ULL << (100 - 64));
	assert_int_equal(bits[NPAGES / 64 - 1], 1ULL << 63);
	/* A page given back reads as zero again: it drops out. */
	assert_int_equal(madvise(ram + 5 * PAGE, PAGE, MADV_DONTNEED), 0);
	n = walk(&gm, got, 16);
	assert_int_equal(n, 3);
	assert_int_equal(got[1].first, 100);
	munmap(ram, MEM);
}

static void test_file_backed(void **state)
{
	char path[] = "/tmp/cvisor-ramwalk-test.XXXXXX";
	uint8_t data[PAGE];
	struct guest_mem gm;
	struct run got[16];
	unsigned int n;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	memset(data, 0xab, sizeof(data));
	/* A sparse memory file: data at pages 3 and 40 only. */
	assert_int_equal(pwrite(fd, data, PAGE, 3 * PAGE), PAGE);
	assert_int_equal(pwrite(fd, data, PAGE, 40 * PAGE), PAGE);
	assert_int_equal(ftruncate(fd, MEM), 0);
	assert_int_equal(guest_mem_init_file(&gm, fd, MEM), 0);
	close(fd);
	(void)madvise(gm.base, MEM, MADV_NOHUGEPAGE);
	/* The guest writes page 10 (a private copy); 3 and 40 it never
	 * touched, yet they hold the file's data. */
	gm.base[10 * PAGE] = 1;
	n = walk(&gm, got, 16);
	assert_int_equal(n, 3);
	assert_int_equal(got[0].first, 3);
	assert_int_equal(got[0].count, 1);
	assert_int_equal(got[1].first, 10);
	assert_int_equal(got[1].count, 1);
	assert_int_equal(got[2].first, 40);
	assert_int_equal(got[2].count, 1);
	guest_mem_destroy(&gm);
}

/* Without pagemap (unreadable, or gone mid-walk) every page counts. */
static void test_no_pagemap(void **state)
{
	struct guest_mem gm;
	struct ramwalk w;
	uint8_t *ram = anon();
	uint64_t first, count;

	(void)state;
	guest_mem_init_buf(&gm, ram, MEM);
	ram[3 * PAGE] = 1;
	ramwalk_begin(&w, &gm);
	assert_true(ramwalk_next(&w, &first, &count));
	assert_int_equal(first, 3);
	if (w.pagemap >= 0)
		close(w.pagemap);
	w.pagemap = -1;
	assert_true(ramwalk_next(&w, &first, &count));
	assert_int_equal(first, 4);
	assert_int_equal(count, NPAGES - 4);
	assert_false(ramwalk_next(&w, &first, &count));
	ramwalk_end(&w);
	munmap(ram, MEM);
}

static void test_page_is_zero(void **state)
{
	uint64_t page[PAGE / 8] = { 0 };

	(void)state;
	assert_true(ramwalk_page_is_zero(page));
	for (size_t i = 0; i < PAGE / 8; i += 61) {
		page[i] = 1ULL << (i % 64);
		assert_false(ramwalk_page_is_zero(page));
		page[i] = 0;
	}
	page[PAGE / 8 - 1] = 1ULL << 63; /* the very last bit */
	assert_false(ramwalk_page_is_zero(page));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_anonymous),
		cmocka_unit_test(test_file_backed),
		cmocka_unit_test(test_no_pagemap),
		cmocka_unit_test(test_page_is_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
