/* test_crc32.c - the one CRC-32 (src/crc32.c) that snapshot files and the
 * migration stream use: against the check value of the standard and a
 * bit-at-a-time reference written here from the definition, at every
 * length and alignment that picks a different path (table, PCLMULQDQ
 * folding with a tail, the copy variant), incrementally, and combined. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/crc32.h"

/* The definition: reflected polynomial 0xedb88320, register preset to all
 * ones, result inverted. */
static uint32_t ref_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffU;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320U ^ (c >> 1) : c >> 1;
	}
	return ~c;
}

static uint8_t *pattern(size_t n)
{
	uint8_t *b = malloc(n);

	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 2654435761U >> 13);
	return b;
}

static void test_check_value(void **state)
{
	(void)state;
	/* The "check" of CRC-32/ISO-HDLC (zlib, Ethernet, PNG). */
	assert_int_equal(cv_crc32(0, "123456789", 9), 0xcbf43926U);
	assert_int_equal(cv_crc32(0, "", 0), 0);
	assert_int_equal(cv_crc32(0x1234, "", 0), 0x1234);
}

/* Moved from test_migrate.c, where the migration's CRC was checked
 * against the snapshot file's (now the same function). */
static void test_matches_reference(void **state)
{
	uint8_t *b = pattern(9000);

	(void)state;
	for (size_t off = 0; off < 5; off++)
		for (size_t n = 0; n < 9000 - off; n += n < 200 ? 1 : 61)
			assert_int_equal(cv_crc32(0, b + off, n), ref_crc32(b + off, n));
	assert_int_equal(cv_crc32(cv_crc32(0, b, 100), b + 100, 5000), ref_crc32(b, 5100));
	free(b);
}

static void test_incremental_any_split(void **state)
{
	uint8_t *b = pattern(4096 + 77);
	uint32_t want = ref_crc32(b, 4096 + 77);

	(void)state;
	for (size_t cut = 0; cut <= 4096 + 77; cut += cut < 130 ? 1 : 97)
		assert_int_equal(cv_crc32(cv_crc32(0, b, cut), b + cut, 4096 + 77 - cut), want);
	free(b);
}

/* Copying while summing: the same bytes, the same CRC, any length. */
static void test_copy(void **state)
{
	uint8_t *b = pattern(4300);

	(void)state;
	for (size_t n = 0; n < 4200; n += n < 130 ? 1 : 61) {
		uint8_t *d = calloc(1, n + 1);
		uint32_t c = cv_crc32_copy(0x1234, d, b + 3, n);

		assert_memory_equal(d, b + 3, n);
		assert_int_equal(c, cv_crc32(0x1234, b + 3, n));
		assert_int_equal(d[n], 0); /* nothing past the end */
		free(d);
	}
	free(b);
}

/* crc(A || B) from crc(A), crc(B), |B|. */
static void test_combine(void **state)
{
	size_t big = (size_t)256 * 4096; /* a migration batch of page data */
	uint8_t *b = pattern(big + 100);

	(void)state;
	for (size_t a = 0; a < 9000; a += 1111)
		for (size_t n = 0; a + n < 9000; n += 777)
			assert_int_equal(cv_crc32_combine(ref_crc32(b, a), ref_crc32(b + a, n), n),
					 ref_crc32(b, a + n));
	/* The sender's case: records, then a whole batch of page data. */
	assert_int_equal(cv_crc32_combine(cv_crc32(0, b, 100), cv_crc32(0, b + 100, big), big),
			 cv_crc32(0, b, big + 100));
	/* An empty B leaves crc(A) as it is. */
	assert_int_equal(cv_crc32_combine(0xdeadbeefU, 0, 0), 0xdeadbeefU);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_matches_reference),
		cmocka_unit_test(test_incremental_any_split),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_combine),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
