/* test_snapfile.c - the snapshot container: round trip, and every kind of
 * corrupt, truncated or foreign file refused with a message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/crc32.h"
#include "cvisor/snapshot_format.h"

static void make_payload(struct state_buf *b)
{
	size_t at = snap_section_begin(b, SNAP_SEC_MACHINE, 1);

	state_put_u64(b, 256ULL << 20);
	state_put_u32(b, 2);
	snap_section_end(b, at);
	at = snap_section_begin(b, SNAP_SEC_VCPU, 3);
	for (int i = 0; i < 100; i++)
		state_put_u32(b, (uint32_t)i);
	snap_section_end(b, at);
}

static uint8_t *file_image(size_t *n)
{
	char path[] = "/tmp/cvisor-snap-test.XXXXXX";
	struct state_buf b = { 0 };
	uint8_t *buf;
	FILE *f;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	make_payload(&b);
	assert_int_equal(snap_file_write(path, &b), 0);
	f = fopen(path, "rb");
	assert_non_null(f);
	buf = malloc(1 << 16);
	*n = fread(buf, 1, 1 << 16, f);
	fclose(f);
	unlink(path);
	state_buf_free(&b);
	return buf;
}

static void test_round_trip(void **state)
{
	char path[] = "/tmp/cvisor-snap-test.XXXXXX", err[256];
	struct state_buf b = { 0 };
	struct snap_section s;
	uint8_t *payload;
	size_t len, pos = 0;
	int fd = mkstemp(path);

	(void)state;
	close(fd);
	make_payload(&b);
	assert_int_equal(snap_file_write(path, &b), 0);
	assert_int_equal(snap_file_read(path, &payload, &len, err, sizeof(err)), 0);
	assert_int_equal(len, b.len);
	assert_memory_equal(payload, b.data, len);
	assert_int_equal(snap_next_section(payload, len, &pos, &s), 1);
	assert_int_equal(s.id, SNAP_SEC_MACHINE);
	assert_int_equal(s.version, 1);
	assert_int_equal(s.len, 12);
	assert_int_equal(snap_next_section(payload, len, &pos, &s), 1);
	assert_int_equal(s.id, SNAP_SEC_VCPU);
	assert_int_equal(s.version, 3);
	assert_int_equal(s.len, 400);
	assert_int_equal(snap_next_section(payload, len, &pos, &s), 0);
	free(payload);
	state_buf_free(&b);
	unlink(path);
}

/* snap_parse on the first n bytes of img, for its verdict and message
 * only. */
static int parse(const uint8_t *img, size_t n, char *err, size_t errlen)
{
	const uint8_t *payload;
	size_t len;

	return snap_parse(img, n, &payload, &len, err, errlen);
}

static void test_corruption(void **state)
{
	size_t n;
	char err[256];
	uint8_t *img = file_image(&n);

	(void)state;
	assert_int_equal(parse(img, n, err, sizeof(err)), 0);
	/* Any single flipped bit anywhere is caught by a CRC or a check. */
	for (size_t i = 0; i < n; i++) {
		img[i] ^= 0x10;
		err[0] = 0;
		assert_int_equal(parse(img, n, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
		img[i] ^= 0x10;
	}
	/* Every truncation is refused. */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(parse(img, i, err, sizeof(err)), -EINVAL);
	free(img);
}

static void fix_header_crc(uint8_t *img)
{
	uint32_t c = cv_crc32(0, img, 28);

	memcpy(img + 28, &c, 4);
}

static void test_versions(void **state)
{
	size_t n;
	char err[256];
	uint8_t *img = file_image(&n);

	(void)state;
	img[8] = 2; /* major 2: foreign */
	fix_header_crc(img);
	assert_int_equal(parse(img, n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not supported"));
	img[8] = 1;
	img[10] = SNAP_MINOR + 1; /* a newer minor than this reader knows */
	fix_header_crc(img);
	assert_int_equal(parse(img, n, err, sizeof(err)), -EINVAL);
	img[10] = 0;
	/* a payload length past the 64 MiB bound is refused before any use */
	img[16 + 4] = 0x10;
	fix_header_crc(img);
	assert_int_equal(parse(img, n, err, sizeof(err)), -EINVAL);
	free(img);
}

static void test_sections_bounded(void **state)
{
	uint8_t p[40] = { 0 };
	struct snap_section s;
	size_t pos = 0;

	(void)state;
	p[0] = 1;
	p[8] = 24; /* claims 24 bytes, 24 remain: fine */
	assert_int_equal(snap_next_section(p, sizeof(p), &pos, &s), 1);
	assert_int_equal(snap_next_section(p, sizeof(p), &pos, &s), 0);
	pos = 0;
	p[8] = 25; /* one too many */
	assert_int_equal(snap_next_section(p, sizeof(p), &pos, &s), -EINVAL);
	pos = 0;
	memset(p + 8, 0xff, 8); /* 2^64-1 */
	assert_int_equal(snap_next_section(p, sizeof(p), &pos, &s), -EINVAL);
	pos = 0;
	assert_int_equal(snap_next_section(p, 10, &pos, &s), -EINVAL); /* partial head */
}

static void test_missing_file(void **state)
{
	uint8_t *payload;
	size_t len;
	char err[256];

	(void)state;
	assert_int_equal(snap_file_read("/nonexistent/snap", &payload, &len, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_corruption),
		cmocka_unit_test(test_versions),     cmocka_unit_test(test_sections_bounded),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
