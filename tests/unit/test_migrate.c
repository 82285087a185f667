/* test_migrate.c - the migration stream's receive parser against streams
 * built here from the format at the top of src/migrate/proto.c: a good
 * stream fed in every chunking, truncated, corrupt, oversized, out of
 * order, foreign versions, incompatible machines; and the replies the
 * source parses. The pure helpers around it: test_migrate_helpers.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/migrate.h"
#include "cvisor/migrate_proto.h"
#include "cvisor/crc32.h"

#define RAM (1u << 20)
#define DISK_SIZE (64u << 10)

/* ---- a stream writer, from the spec ---- */
struct w {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct w *w, const void *d, size_t n)
{
	if (w->len + n > w->cap) {
		w->cap = (w->len + n) * 2;
		w->p = realloc(w->p, w->cap);
	}
	memcpy(w->p + w->len, d, n);
	w->len += n;
}

static void put_le(struct w *w, uint64_t v, unsigned int n)
{
	uint8_t b[32] = { 0 };

	for (unsigned int i = 0; i < n && i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(w, b, n);
}

/* A message: type, length, body, CRC-32 of the three. */
static void msg(struct w *w, uint32_t type, const struct w *body)
{
	size_t at = w->len;

	put_le(w, type, 4);
	put_le(w, body ? body->len : 0, 4);
	if (body)
		put(w, body->p, body->len);
	put_le(w, cv_crc32(0, w->p + at, w->len - at), 4);
}

#define TEST_NONCE "nonce-0123456789" /* 16 bytes: HELLO echoes the target's */

struct hello_opts {
	uint16_t major, minor;
	uint32_t page_size, ncpus, flags, ndisks;
	uint64_t ram;
	const char *vendor;
	uint8_t format, cluster_bits; /* 2.1: each disk's */
};

static void hello_body(struct w *b, const struct hello_opts *o)
{
	uint64_t low = o->ram < (3ULL << 30) ? o->ram : 3ULL << 30;

	put(b, "CVIMIGR", 8);
	put_le(b, o->major, 2);
	put_le(b, o->minor, 2);
	if (o->major >= 2)
		put(b, TEST_NONCE, MIG_NONCE_SIZE);
	put_le(b, o->page_size, 4);
	put_le(b, o->ram, 8);
	put_le(b, o->ram > low ? 2 : 1, 4);
	put_le(b, o->ncpus, 4);
	put_le(b, 0, 8);
	put_le(b, low, 8);
	if (o->ram > low) {
		put_le(b, 4ULL << 30, 8);
		put_le(b, o->ram - low, 8);
	}
	put(b, o->vendor, 12);
	for (int i = 0; i < 8; i++)		 /* signature, then feature words */
		put_le(b, i == 3 ? 0x10 : 0, 4); /* leaf 7 ebx bit 4 */
	put_le(b, o->flags, 4);
	put_le(b, o->ndisks, 4);
	for (uint32_t i = 0; i < o->ndisks; i++) {
		put_le(b, DISK_SIZE, 8);
		if (o->minor >= 1) {
			put_le(b, o->format, 1);
			put_le(b, o->cluster_bits, 1);
		}
		put_le(b, 5, 2);
		put(b, i ? "d1.im" : "d0.im", 5);
	}
	put_le(b, 3, 4); /* config: opaque to the parser */
	put(b, "cfg", 3);
}

static const struct hello_opts good_hello = {
	.major = 2,
	.page_size = 4096,
	.ncpus = 2,
	.ram = RAM,
	.vendor = "GenuineIntel",
	.flags = MIG_F_STORAGE,
	.ndisks = 1,
};

static void hello(struct w *w, const struct hello_opts *o)
{
	struct w b = { 0 };

	hello_body(&b, o);
	msg(w, MIG_MSG_HELLO, &b);
	free(b.p);
}

/* PAGES: records first, then the data of non-zero ones. */
static void pages(struct w *w, const uint64_t *gpa, const bool *zero, unsigned int n, uint8_t fill)
{
	struct w b = { 0 };
	uint8_t page[4096];

	put_le(&b, n, 4);
	for (unsigned int i = 0; i < n; i++) {
		put_le(&b, gpa[i], 8);
		put_le(&b, zero[i] ? MIG_REC_ZERO : 0, 4);
		put_le(&b, 0, 4);
	}
	for (unsigned int i = 0; i < n; i++) {
		if (zero[i])
			continue;
		memset(page, fill + (int)i, sizeof(page));
		put(&b, page, sizeof(page));
	}
	msg(w, MIG_MSG_PAGES, &b);
	free(b.p);
}

static void small(struct w *w, uint32_t type, uint64_t v, unsigned int n)
{
	struct w b = { 0 };

	put_le(&b, v, n);
	msg(w, type, &b);
	free(b.p);
}

static void disk(struct w *w, uint32_t d, uint64_t off, uint32_t len, bool zero)
{
	struct w b = { 0 };
	uint8_t *data = malloc(len);

	put_le(&b, 1, 4);
	put_le(&b, d, 4);
	put_le(&b, zero ? MIG_REC_ZERO : 0, 4);
	put_le(&b, off, 8);
	put_le(&b, len, 4);
	put_le(&b, 0, 4);
	memset(data, 0xd5, len);
	if (!zero)
		put(&b, data, len);
	msg(w, MIG_MSG_DISK, &b);
	free(data);
	free(b.p);
}

static void state_end(struct w *w)
{
	struct w b = { 0 };

	put(&b, "STATE", 5);
	msg(w, MIG_MSG_STATE, &b);
	free(b.p);
	b = (struct w){ 0 };
	put_le(&b, MIG_F_VERIFY, 4);
	put_le(&b, 0x1122334455667788ULL, 8);
	put_le(&b, 3, 8);
	msg(w, MIG_MSG_END, &b);
	free(b.p);
}

/* The stream a source sends for a 1 MiB guest with one disk. */
static void good_stream(struct w *w)
{
	const uint64_t gpa[3] = { 0x1000, 0x5000, 0xff000 };
	const bool zero[3] = { false, true, false };
	struct w b = { 0 };

	hello(w, &good_hello);
	put_le(&b, 1, 4); /* HINT: one range */
	put_le(&b, 0x1000, 8);
	put_le(&b, 0x2000, 8);
	msg(w, MIG_MSG_HINT, &b);
	free(b.p);
	pages(w, gpa, zero, 3, 0x40);
	disk(w, 0, 4096, 8192, false);
	disk(w, 0, 0, 512, true);
	small(w, MIG_MSG_SYNC, 7, 4);
	state_end(w);
}

/* ---- the target side under test ---- */
struct t {
	uint8_t *ram;
	struct guest_mem gm;
	struct mig_rx rx;
	int events[16];
	unsigned int nev;
	uint64_t disk_writes, disk_zeros;
};

static int sink(void *ctx, uint32_t d, uint64_t off, const uint8_t *data, uint32_t len, bool zero)
{
	struct t *t = ctx;

	assert_int_equal(d, 0);
	assert_true(off + len <= DISK_SIZE);
	if (zero) {
		assert_null(data);
		t->disk_zeros += len;
	} else {
		assert_int_equal(data[0], 0xd5);
		t->disk_writes += len;
	}
	return 0;
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	t->ram = calloc(1, RAM);
	guest_mem_init_buf(&t->gm, t->ram, RAM);
	mig_rx_init(&t->rx, false);
	t->rx.disk_write = sink;
	t->rx.disk_ctx = t;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	mig_rx_free(&t->rx);
	free(t->ram);
	free(t);
	return 0;
}

/* Feed buf in chunks of `chunk` bytes; record events. Returns the last
 * result (an error, or MORE at the end). */
static int feed(struct t *t, const uint8_t *buf, size_t len, size_t chunk)
{
	size_t at = 0;

	while (at < len) {
		size_t n = len - at < chunk ? len - at : chunk, used = 0;

		while (used < n) {
			size_t u;
			int ev = mig_rx_feed(&t->rx, buf + at + used, n - used, &u);

			used += u;
			if (ev < 0)
				return ev;
			if (ev > 0) {
				if (t->nev < 16)
					t->events[t->nev++] = ev;
				if (ev == MIG_RX_HELLO)
					mig_rx_set_mem(&t->rx, &t->gm);
			}
		}
		at += n;
	}
	return MIG_RX_MORE;
}

static void check_good(struct t *t)
{
	static const int want[] = { MIG_RX_HELLO, MIG_RX_HINT, MIG_RX_PAGES, MIG_RX_DISK,
				    MIG_RX_DISK,  MIG_RX_SYNC, MIG_RX_STATE, MIG_RX_END };

	assert_int_equal(t->nev, sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < t->nev; i++)
		assert_int_equal(t->events[i], want[i]);
	assert_int_equal(t->ram[0x1000], 0x40);
	assert_int_equal(t->ram[0x1fff], 0x40);
	assert_int_equal(t->ram[0xff000], 0x42);
	assert_int_equal(t->ram[0x5000], 0);	/* the zero page was zeroed */
	assert_int_equal(t->ram[0x6000], 0x77); /* untouched */
	assert_int_equal(t->rx.pages, 2);
	assert_int_equal(t->rx.zero_pages, 1);
	assert_int_equal(t->disk_writes, 8192);
	assert_int_equal(t->disk_zeros, 512);
	assert_int_equal(t->rx.sync_round, 7);
	assert_int_equal(t->rx.end.flags, MIG_F_VERIFY);
	assert_int_equal(t->rx.end.memsum, 0x1122334455667788ULL);
	assert_int_equal(t->rx.end.pages, 3);
	assert_int_equal(t->rx.hello.ram_size, RAM);
	assert_int_equal(t->rx.hello.ncpus, 2);
	assert_string_equal(t->rx.hello.cpu.vendor, "GenuineIntel");
	assert_int_equal(t->rx.hello.ndisks, 1);
	assert_string_equal(t->rx.hello.disks[0].name, "d0.im");
	assert_int_equal(t->rx.hello.config_len, 3);
	assert_memory_equal(t->rx.hello.config, "cfg", 3);
}

/* A fresh receiver for the next stream of a test, and an empty stream. */
static void restart(struct t *t, struct w *w)
{
	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	*w = (struct w){ 0 };
}

static void test_good_stream_any_chunking(void **state)
{
	static const size_t chunks[] = { 1, 3, 7, 16, 4095, 4096, 65536, SIZE_MAX };
	struct t *t = *state;
	struct w w = { 0 };

	good_stream(&w);
	for (unsigned int c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		mig_rx_free(&t->rx);
		mig_rx_init(&t->rx, false);
		t->rx.disk_write = sink;
		t->rx.disk_ctx = t;
		t->nev = 0;
		t->disk_writes = t->disk_zeros = 0;
		memset(t->ram, 0x77, RAM);
		assert_int_equal(feed(t, w.p, w.len, chunks[c]), MIG_RX_MORE);
		check_good(t);
		assert_int_equal(t->rx.bytes, w.len);
	}
	free(w.p);
}

/* Every prefix is "more, please": never an error, never END early. */
static void test_truncated(void **state)
{
	struct t *t = *state;
	struct w w = { 0 };

	good_stream(&w);
	for (size_t cut = 0; cut < w.len; cut += 97) {
		mig_rx_free(&t->rx);
		mig_rx_init(&t->rx, false);
		t->rx.disk_write = sink;
		t->rx.disk_ctx = t;
		t->nev = 0;
		assert_int_equal(feed(t, w.p, cut, 4096), MIG_RX_MORE);
		for (unsigned int i = 0; i < t->nev; i++)
			assert_int_not_equal(t->events[i], MIG_RX_END);
	}
	free(w.p);
}

/* Flip one bit of the stream at `at`: refused with the given message. */
static void corrupt_at(struct t *t, size_t at, const char *want)
{
	struct w w = { 0 };

	good_stream(&w);
	w.p[at] ^= 0x08;
	assert_int_equal(feed(t, w.p, w.len, 1000), -EINVAL);
	assert_non_null(strstr(t->rx.err, want));
	/* Failed for good. */
	assert_int_equal(mig_rx_advance(&t->rx, 1), -EINVAL);
	free(w.p);
}

static void test_corrupt_crc_hello(void **state)
{
	corrupt_at(*state, 20, "checksum mismatch in a handshake");
}

static void test_corrupt_crc_pages(void **state)
{
	struct w w = { 0 };

	/* A byte of page data: after HELLO and HINT (8 + 20 + 4 bytes) come
	 * the PAGES header, count and 3 records; 100 bytes into the page. */
	hello(&w, &good_hello);
	corrupt_at(*state, w.len + 32 + 8 + 4 + 48 + 100, "checksum mismatch in a page batch");
	free(w.p);
}

static void test_corrupt_crc_state(void **state)
{
	struct w w = { 0 };

	good_stream(&w);
	/* "STATE" is 5 body bytes before the 4-byte CRC and the END message
	 * (8 + 20 + 4 bytes) at the end of the stream. */
	corrupt_at(*state, w.len - 32 - 4 - 3, "checksum mismatch in a message");
	free(w.p);
}

/* Inside TLS (no_crc) the target does not check the CRC, which the AEAD
 * tag makes redundant: a stream whose CRCs are all wrong parses whole. */
static void test_no_crc(void **state)
{
	struct t *t = *state;
	struct w w = { 0 };
	size_t at = 0;

	good_stream(&w);
	/* Each message's last 4 bytes: walk the headers {type, length}. */
	while (at + 8 <= w.len) {
		uint32_t len = (uint32_t)cv_get_le(w.p + at + 4, 4);

		w.p[at + 8 + len] ^= 0x08;
		at += 8 + len + 4;
	}
	assert_int_equal(at, w.len);
	t->rx.no_crc = true;
	memset(t->ram, 0x77, RAM);
	assert_int_equal(feed(t, w.p, w.len, 4096), MIG_RX_MORE);
	check_good(t);
	free(w.p);
}

static void expect_fail(struct t *t, const struct w *w, const char *want)
{
	assert_int_equal(feed(t, w->p, w->len, 4096), -EINVAL);
	if (!strstr(t->rx.err, want))
		fail_msg("error '%s' does not say '%s'", t->rx.err, want);
}

static void test_oversized_lengths(void **state)
{
	static const struct {
		uint32_t type, len;
		const char *want;
	} cases[] = {
		{ MIG_MSG_PAGES, MIG_MAX_PAGES_BODY + 1, "page batch of" },
		{ MIG_MSG_DISK, MIG_MAX_DISK_BODY + 1, "disk batch of" },
		{ MIG_MSG_STATE, MIG_MAX_STATE + 1, "state of" },
		{ MIG_MSG_STATE, 0xffffffffU, "state of" },
		{ MIG_MSG_SYNC, 5, "round marker" },
		{ MIG_MSG_END, 21, "end of 21 bytes" },
		{ MIG_MSG_HINT, 4 + 16 * (MIG_MAX_HINT_RANGES + 1), "memory hint" },
		{ 99, 0, "unknown message type 99" },
	};
	struct t *t = *state;

	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct w w = { 0 };

		mig_rx_free(&t->rx);
		mig_rx_init(&t->rx, false);
		t->nev = 0;
		hello(&w, &good_hello);
		/* Only the header: the parser must refuse before the body. */
		if (cases[i].type == MIG_MSG_END)
			small(&w, MIG_MSG_STATE, 1, 1);
		put_le(&w, cases[i].type, 4);
		put_le(&w, cases[i].len, 4);
		expect_fail(t, &w, cases[i].want);
		free(w.p);
	}
	/* A handshake claiming 4 GiB. */
	{
		struct w w = { 0 };

		mig_rx_free(&t->rx);
		mig_rx_init(&t->rx, false);
		put_le(&w, MIG_MSG_HELLO, 4);
		put_le(&w, 0xffffffffU, 4);
		expect_fail(t, &w, "handshake is corrupt (length");
		free(w.p);
	}
}

static void test_bad_records(void **state)
{
	static const uint64_t outside[1] = { RAM }, unaligned[1] = { 0x1001 };
	static const bool nz[1] = { false };
	struct t *t = *state;
	struct w w = { 0 };

	hello(&w, &good_hello);
	pages(&w, outside, nz, 1, 1);
	expect_fail(t, &w, "page 0x100000");
	free(w.p);

	restart(t, &w);
	hello(&w, &good_hello);
	pages(&w, unaligned, nz, 1, 1);
	expect_fail(t, &w, "page 0x1001");
	free(w.p);

	/* A disk range past the disk's end. */
	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	t->rx.disk_write = sink;
	t->rx.disk_ctx = t;
	w = (struct w){ 0 };
	hello(&w, &good_hello);
	disk(&w, 0, DISK_SIZE - 512, 1024, false);
	expect_fail(t, &w, "disk 0 range");
	free(w.p);

	/* A count beyond the batch limit. */
	restart(t, &w);
	hello(&w, &good_hello);
	{
		struct w b = { 0 };

		put_le(&b, MIG_BATCH_PAGES + 1, 4);
		for (unsigned int i = 0; i < (MIG_BATCH_PAGES + 1) * 16; i++)
			put_le(&b, 0, 1);
		msg(&w, MIG_MSG_PAGES, &b);
		free(b.p);
	}
	expect_fail(t, &w, "batch of 257 records");
	free(w.p);

	/* A body length that does not match the records. */
	restart(t, &w);
	hello(&w, &good_hello);
	{
		struct w b = { 0 };

		put_le(&b, 1, 4);
		put_le(&b, 0x1000, 8);
		put_le(&b, MIG_REC_ZERO, 4);
		put_le(&b, 0, 4);
		put_le(&b, 0, 4); /* 4 stray bytes */
		msg(&w, MIG_MSG_PAGES, &b);
		free(b.p);
	}
	expect_fail(t, &w, "page batch length");
	free(w.p);
}

static void test_order(void **state)
{
	static const uint64_t gpa[1] = { 0 };
	static const bool z[1] = { true };
	struct t *t = *state;
	struct w w = { 0 };

	/* Anything before the handshake: not a migration stream. */
	pages(&w, gpa, z, 1, 0);
	expect_fail(t, &w, "not a cvisor migration stream");
	free(w.p);
	/* END before STATE. */
	restart(t, &w);
	hello(&w, &good_hello);
	small(&w, MIG_MSG_END, 0, MIG_END_SIZE);
	expect_fail(t, &w, "ended before the guest state");
	free(w.p);
	/* Pages after the state. */
	restart(t, &w);
	hello(&w, &good_hello);
	small(&w, MIG_MSG_STATE, 1, 1);
	pages(&w, gpa, z, 1, 0);
	expect_fail(t, &w, "data after the state");
	free(w.p);
	/* Two handshakes. */
	restart(t, &w);
	hello(&w, &good_hello);
	hello(&w, &good_hello);
	expect_fail(t, &w, "a second handshake");
	free(w.p);
	/* Disk data without storage migration. */
	restart(t, &w);
	{
		struct hello_opts o = good_hello;

		o.flags = 0;
		o.ndisks = 0;
		hello(&w, &o);
	}
	disk(&w, 0, 0, 512, false);
	expect_fail(t, &w, "without storage migration");
	free(w.p);
	/* Garbage: not even our magic. */
	restart(t, &w);
	put(&w, "GET / HTTP/1.1\r\n\r\n", 18);
	expect_fail(t, &w, "not a cvisor migration stream");
	free(w.p);
}

static void test_versions(void **state)
{
	/* 1.0 had no nonce: its streams could be replayed. */
	static const struct {
		uint16_t major, minor;
		const char *msg;
	} bad[] = {
		{ 3, 0, "version 3.0 is not supported (this cvisor takes 2.0-2.1)" },
		{ 2, 2, "version 2.2 is not supported" },
		{ 1, 0, "version 1.0 is not supported" },
	};
	struct t *t = *state;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct hello_opts o = good_hello;
		struct w w = { 0 };

		restart(t, &w);
		o.major = bad[i].major;
		o.minor = bad[i].minor;
		hello(&w, &o);
		expect_fail(t, &w, bad[i].msg);
		free(w.p);
	}
}

/* 2.1 HELLO: each disk's format. A 2.0 stream's disks are raw; a bad
 * format or cluster size is refused with one line, before any file is
 * made. */
static void test_disk_formats(void **state)
{
	static const struct {
		uint8_t format, bits;
		const char *msg; /* NULL: accepted */
	} c[] = {
		{ MIG_DISK_QCOW2, 16, NULL },
		{ MIG_DISK_QCOW2, 9, NULL },
		{ MIG_DISK_RAW, 0, NULL },
		{ 2, 0, "corrupt (disk 0: format 2, cluster bits 0)" },
		{ 255, 16, "corrupt (disk 0: format 255" },
		{ MIG_DISK_QCOW2, 8, "corrupt (disk 0: format 1, cluster bits 8)" },
		{ MIG_DISK_QCOW2, 22, "cluster bits 22" },
		{ MIG_DISK_QCOW2, 0, "cluster bits 0" },
		{ MIG_DISK_RAW, 16, "corrupt (disk 0: format 0, cluster bits 16)" },
	};
	struct t *t = *state;
	struct w w = { 0 };
	size_t used;

	/* 2.0: raw. */
	restart(t, &w);
	hello(&w, &good_hello);
	assert_int_equal(mig_rx_feed(&t->rx, w.p, w.len, &used), MIG_RX_HELLO);
	assert_int_equal(t->rx.hello.disks[0].format, MIG_DISK_RAW);
	free(w.p);
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		struct hello_opts o = good_hello;

		restart(t, &w);
		o.minor = 1;
		o.format = c[i].format;
		o.cluster_bits = c[i].bits;
		hello(&w, &o);
		if (c[i].msg) {
			expect_fail(t, &w, c[i].msg);
		} else {
			assert_int_equal(mig_rx_feed(&t->rx, w.p, w.len, &used), MIG_RX_HELLO);
			assert_int_equal(t->rx.hello.disks[0].format, c[i].format);
			assert_int_equal(t->rx.hello.disks[0].cluster_bits, c[i].bits);
			assert_string_equal(t->rx.hello.disks[0].name, "d0.im");
		}
		free(w.p);
	}
}

static void test_hello_check(void **state)
{
	struct mig_local l = { .page_size = 4096, .max_cpus = 8 };
	struct cpu_model host = { .has_vendor = true };
	struct mig_hello h;
	struct w b = { 0 };
	char err[256];

	(void)state;
	hello_body(&b, &good_hello);
	assert_int_equal(mig_hello_parse(b.p, b.len, &h, err, sizeof(err)), 0);
	assert_int_equal(mig_hello_check(&h, &l, err, sizeof(err)), 0);
	/* 2.0 carries the target's nonce (target.c compares it). */
	assert_memory_equal(h.nonce, TEST_NONCE, MIG_NONCE_SIZE);
	/* The CPU from the wire against a host's (the wording of every kind
	 * of gap: test_migrate_helpers.c). */
	assert_true(h.cpu.has_vendor);
	memcpy(host.vendor, "GenuineIntel", 13);
	host.f7_ebx = 0x10 | 0x100;
	assert_int_equal(mig_cpu_check(&h.cpu, &host, err, sizeof(err)), 0);
	host.f7_ebx = 0x100;
	assert_int_equal(mig_cpu_check(&h.cpu, &host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "CPUID 7.ebx bits 0x10"));
	/* Page size, vCPUs. */
	l.page_size = 65536;
	assert_int_equal(mig_hello_check(&h, &l, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "page size 4096"));
	l.page_size = 4096;
	l.max_cpus = 1;
	assert_int_equal(mig_hello_check(&h, &l, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "2 vCPUs"));
	l.max_cpus = 8;
	/* Incompatible RAM: a layout another cvisor would not build. */
	h.regions[0].size = RAM / 2;
	assert_int_equal(mig_hello_check(&h, &l, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "RAM layout"));
	h.regions[0].size = RAM;
	h.ram_size = RAM + 1;
	assert_int_equal(mig_hello_check(&h, &l, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "RAM size"));
	h.ram_size = 0;
	assert_int_equal(mig_hello_check(&h, &l, err, sizeof(err)), -EINVAL);
	/* Above 3 GiB the RAM is split around the hole. */
	mig_ram_layout(4ULL << 30, &h);
	assert_int_equal(h.nregions, 2);
	assert_int_equal(h.regions[1].gpa, 4ULL << 30);
	assert_int_equal(h.regions[1].size, 1ULL << 30);
	assert_int_equal(mig_hello_check(&h, &l, err, sizeof(err)), 0);
	/* Truncated handshakes never parse. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(mig_hello_parse(b.p, n, &h, err, sizeof(err)), -EINVAL);
	/* A 1.0 source (no nonce: its streams could be replayed) is refused
	 * by its version. */
	{
		struct hello_opts o = good_hello;

		o.major = 1;
		b.len = 0;
		hello_body(&b, &o);
		assert_int_equal(mig_hello_parse(b.p, b.len, &h, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "version 1.0 is not supported"));
	}
	free(b.p);
}

static void test_replies(void **state)
{
	struct mig_rx rx;
	struct w w = { 0 }, b = { 0 };
	size_t used;

	(void)state;
	put(&b, TEST_NONCE, MIG_NONCE_SIZE);
	msg(&w, MIG_MSG_NONCE, &b);
	mig_rx_init(&rx, true);
	assert_int_equal(mig_rx_feed(&rx, w.p, w.len, &used), MIG_RX_NONCE);
	assert_memory_equal(rx.nonce, TEST_NONCE, MIG_NONCE_SIZE);
	mig_rx_free(&rx);
	/* A NONCE of another length is corrupt. */
	w.len = b.len = 0;
	put(&b, TEST_NONCE, 8);
	msg(&w, MIG_MSG_NONCE, &b);
	mig_rx_init(&rx, true);
	assert_int_equal(mig_rx_feed(&rx, w.p, w.len, &used), -EINVAL);
	mig_rx_free(&rx);
	w.len = b.len = 0;
	msg(&w, MIG_MSG_READY, NULL);
	small(&w, MIG_MSG_SYNC_ACK, 3, 4);
	put(&b, "disk full\n\x01", 11);
	msg(&w, MIG_MSG_ERROR, &b);
	msg(&w, MIG_MSG_RUNNING, NULL);
	mig_rx_init(&rx, true);
	assert_int_equal(mig_rx_feed(&rx, w.p, w.len, &used), MIG_RX_READY);
	assert_int_equal(used, 12);
	assert_int_equal(mig_rx_feed(&rx, w.p + 12, w.len - 12, &used), MIG_RX_SYNC_ACK);
	assert_int_equal(rx.sync_round, 3);
	assert_int_equal(mig_rx_feed(&rx, w.p + 28, w.len - 28, &used), MIG_RX_ERROR_MSG);
	assert_string_equal(rx.err, "disk full??"); /* one printable line */
	assert_int_equal(mig_rx_feed(&rx, w.p + 28 + used, w.len - 28 - used, &used),
			 MIG_RX_RUNNING);
	mig_rx_free(&rx);
	/* A source never takes stream messages as replies. */
	mig_rx_init(&rx, true);
	free(w.p);
	w = (struct w){ 0 };
	hello(&w, &good_hello);
	assert_int_equal(mig_rx_feed(&rx, w.p, w.len, &used), -EINVAL);
	assert_non_null(strstr(rx.err, "unknown reply"));
	mig_rx_free(&rx);
	free(w.p);
	free(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_stream_any_chunking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_crc_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_crc_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_crc_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_crc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_lengths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_formats, setup, teardown),
		cmocka_unit_test(test_hello_check),
		cmocka_unit_test(test_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
