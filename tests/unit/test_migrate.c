/* test_migrate.c - the migration stream's receive parser against streams
 * built here from the format at the top of src/migrate/proto.c: a good
 * stream fed in every chunking, truncated, corrupt, oversized, out of
 * order, foreign versions, incompatible machines; and the replies the
 * source parses. */
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

struct hello_opts {
	uint16_t major, minor;
	uint32_t page_size, ncpus, flags, ndisks;
	uint64_t ram;
	const char *vendor;
};

static void hello_body(struct w *b, const struct hello_opts *o)
{
	uint64_t low = o->ram < (3ULL << 30) ? o->ram : 3ULL << 30;

	put(b, "CVIMIGR", 8);
	put_le(b, o->major, 2);
	put_le(b, o->minor, 2);
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
		put_le(b, 5, 2);
		put(b, i ? "d1.im" : "d0.im", 5);
	}
	put_le(b, 3, 4); /* config: opaque to the parser */
	put(b, "cfg", 3);
}

static const struct hello_opts good_hello = {
	.major = 1,
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

	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	w = (struct w){ 0 };
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
	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	w = (struct w){ 0 };
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
	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	w = (struct w){ 0 };
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
	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	w = (struct w){ 0 };
	hello(&w, &good_hello);
	small(&w, MIG_MSG_END, 0, MIG_END_SIZE);
	expect_fail(t, &w, "ended before the guest state");
	free(w.p);
	/* Pages after the state. */
	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	w = (struct w){ 0 };
	hello(&w, &good_hello);
	small(&w, MIG_MSG_STATE, 1, 1);
	pages(&w, gpa, z, 1, 0);
	expect_fail(t, &w, "data after the state");
	free(w.p);
	/* Two handshakes. */
	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	w = (struct w){ 0 };
	hello(&w, &good_hello);
	hello(&w, &good_hello);
	expect_fail(t, &w, "a second handshake");
	free(w.p);
	/* Disk data without storage migration. */
	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	w = (struct w){ 0 };
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
	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	w = (struct w){ 0 };
	put(&w, "GET / HTTP/1.1\r\n\r\n", 18);
	expect_fail(t, &w, "not a cvisor migration stream");
	free(w.p);
}

static void test_versions(void **state)
{
	struct t *t = *state;
	struct hello_opts o = good_hello;
	struct w w = { 0 };

	o.major = 2;
	hello(&w, &o);
	expect_fail(t, &w, "version 2.0 is not supported (this cvisor takes 1.0-1.0)");
	free(w.p);
	mig_rx_free(&t->rx);
	mig_rx_init(&t->rx, false);
	w = (struct w){ 0 };
	o = good_hello;
	o.minor = 1;
	hello(&w, &o);
	expect_fail(t, &w, "version 1.1 is not supported");
	free(w.p);
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
	/* The CPU from the wire against a host's (cpu_compat.h). */
	assert_true(h.cpu.has_vendor);
	memcpy(host.vendor, "GenuineIntel", 13);
	host.f7_ebx = 0x10 | 0x100;
	assert_int_equal(mig_cpu_check(&h.cpu, &host, err, sizeof(err)), 0);
	/* A feature the target lacks. */
	host.f7_ebx = 0x100;
	assert_int_equal(mig_cpu_check(&h.cpu, &host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "CPUID 7.ebx bits 0x10"));
	host.f7_ebx = 0x10;
	memcpy(host.vendor, "AuthenticAMD", 13);
	assert_int_equal(mig_cpu_check(&h.cpu, &host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "vendor GenuineIntel differs"));
	memcpy(host.vendor, "GenuineIntel", 13);
	/* Leaves with an index and above 0x80000000 are named as such. */
	h.cpu.xsave1_eax = 0x8;
	assert_int_equal(mig_cpu_check(&h.cpu, &host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "CPUID 0xd.1.eax bits 0x8"));
	h.cpu.xsave1_eax = 0;
	h.cpu.e1_edx = 1U << 29;
	assert_int_equal(mig_cpu_check(&h.cpu, &host, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "CPUID 0x80000001.edx bits 0x20000000"));
	h.cpu.e1_edx = 0;
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
	free(b.p);
}

static void test_replies(void **state)
{
	struct mig_rx rx;
	struct w w = { 0 }, b = { 0 };
	size_t used;

	(void)state;
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

static void test_decide(void **state)
{
	struct migrate_converge c = {
		.remaining = 4 << 20,
		.bandwidth = 1000 << 20,
		.downtime_ms = 50,
		.overhead_us = 1000,
		.round = 1,
		.max_rounds = 30,
		.force = true,
	};
	uint64_t exp;

	(void)state;
	/* 4 MiB at 1000 MiB/s: 4 ms + 1 ms: stop. */
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_STOP);
	assert_int_equal(exp, 5000);
	/* 100 MiB: 100 ms: another round. */
	c.remaining = 100 << 20;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_CONTINUE);
	assert_int_equal(exp, 101000);
	/* Bandwidth unknown yet: continue unless nothing is left. */
	c.bandwidth = 0;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_CONTINUE);
	assert_int_equal(exp, UINT64_MAX);
	c.remaining = 0;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_STOP);
	/* Out of rounds: stop anyway, or give up. */
	c.remaining = 100 << 20;
	c.bandwidth = 1000 << 20;
	c.round = 30;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_STOP);
	c.force = false;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_GIVE_UP);
	/* Not converging (dirtied as fast as sent): the same, earlier. */
	c.round = 3;
	c.stalled = MIGRATE_STALL_ROUNDS;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_GIVE_UP);
	c.stalled = MIGRATE_STALL_ROUNDS - 1;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_CONTINUE);
	/* Even when stalled, a remainder that fits stops. */
	c.stalled = 99;
	c.remaining = 1 << 20;
	assert_int_equal(migrate_decide(&c, &exp), MIGRATE_STOP);
	/* Stall counting: less than 10% progress counts. */
	assert_int_equal(migrate_stall_count(0, 100, 95), 1);
	assert_int_equal(migrate_stall_count(1, 100, 120), 2);
	assert_int_equal(migrate_stall_count(2, 100, 89), 0);
}

static void test_addr_and_args(void **state)
{
	char host[64], port[8], err[256];
	struct migrate_cli c;
	char *argv[16];

	(void)state;
	assert_int_equal(migrate_parse_addr("10.0.0.2:4444", host, sizeof(host), port, sizeof(port),
					    err, sizeof(err)),
			 0);
	assert_string_equal(host, "10.0.0.2");
	assert_string_equal(port, "4444");
	assert_int_equal(migrate_parse_addr("[::1]:80", host, sizeof(host), port, sizeof(port), err,
					    sizeof(err)),
			 0);
	assert_string_equal(host, "::1");
	assert_int_equal(migrate_parse_addr("host", host, sizeof(host), port, sizeof(port), err,
					    sizeof(err)),
			 -EINVAL);
	assert_int_equal(
		migrate_parse_addr("h:0", host, sizeof(host), port, sizeof(port), err, sizeof(err)),
		-EINVAL);
	assert_int_equal(migrate_parse_addr("::1:80", host, sizeof(host), port, sizeof(port), err,
					    sizeof(err)),
			 -EINVAL);
	assert_int_equal(
		migrate_parse_addr(":80", host, sizeof(host), port, sizeof(port), err, sizeof(err)),
		-EINVAL);

	argv[0] = "migrate";
	argv[1] = "web";
	argv[2] = "10.200.0.2:4444";
	argv[3] = "--downtime-ms";
	argv[4] = "20";
	argv[5] = "--with-storage";
	argv[6] = "--json";
	argv[7] = "--no-force";
	argv[8] = "--max-bandwidth=100M";
	argv[9] = "--max-rounds=5";
	argv[10] = "--verify";
	assert_int_equal(migrate_parse_args(11, argv, &c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "web");
	assert_string_equal(c.opts.dest, "10.200.0.2:4444");
	assert_int_equal(c.opts.downtime_ms, 20);
	assert_true(c.opts.with_storage && c.json && !c.opts.force && c.opts.verify);
	assert_int_equal(c.opts.max_bandwidth, 100ULL << 20);
	assert_int_equal(c.opts.max_rounds, 5);
	/* Defaults. */
	assert_int_equal(migrate_parse_args(3, argv, &c, err, sizeof(err)), 0);
	assert_int_equal(c.opts.downtime_ms, 50);
	assert_true(c.opts.force && !c.opts.with_storage && !c.json);
	/* Bad ones. */
	argv[3] = "--downtime-ms";
	argv[4] = "0";
	assert_int_equal(migrate_parse_args(5, argv, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--downtime-ms 0"));
	argv[3] = "--bogus";
	assert_int_equal(migrate_parse_args(4, argv, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown flag --bogus"));
	assert_int_equal(migrate_parse_args(2, argv, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "usage"));
	argv[1] = "../x";
	assert_int_equal(migrate_parse_args(3, argv, &c, err, sizeof(err)), -EINVAL);
	argv[1] = "web";
	argv[2] = "nowhere";
	assert_int_equal(migrate_parse_args(3, argv, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "HOST:PORT"));
}

static void test_request_roundtrip(void **state)
{
	struct migrate_opts o, back;
	char buf[512], err[256], *owned;

	(void)state;
	migrate_opts_init(&o);
	o.dest = "[fe80::1]:4444";
	o.downtime_ms = 25;
	o.max_rounds = 7;
	o.force = false;
	o.with_storage = true;
	o.verify = true;
	o.max_bandwidth = 123456789;
	assert_int_equal(migrate_req_format(&o, buf, sizeof(buf)), 0);
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)), 0);
	assert_string_equal(back.dest, o.dest);
	assert_int_equal(back.downtime_ms, 25);
	assert_int_equal(back.max_rounds, 7);
	assert_true(!back.force && back.with_storage && back.verify);
	assert_int_equal(back.max_bandwidth, 123456789);
	free(owned);
	assert_int_equal(migrate_req_format(&o, buf, 10), -ENOSPC);
	/* Unknown keys, wrong types, missing dest. */
	strcpy(buf, "{\"cmd\":\"migrate\",\"dest\":\"h:1\",\"speed\":1}");
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "unknown key \"speed\""));
	assert_null(owned);
	strcpy(buf, "{\"cmd\":\"migrate\",\"dest\":\"h:1\",\"downtime_ms\":-5}");
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)),
			 -EINVAL);
	strcpy(buf, "{\"cmd\":\"migrate\"}");
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "needs \"dest\""));
	strcpy(buf, "{\"cmd\":\"migrate\",\"dest\":\"h:1\",\"force\":1}");
	assert_int_equal(migrate_req_parse(buf, strlen(buf), &back, &owned, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(migrate_req_parse("[1", 2, &back, &owned, err, sizeof(err)), -EINVAL);
}

static void test_progress_lines(void **state)
{
	struct migrate_progress p = {
		.event = MIGRATE_EV_ROUND, .phase = MIGRATE_PRECOPY, .round = 2,
		.elapsed_ns = 1500000000, .bytes = 12345678, .ram_bytes = 1 << 30,
		.pages = 3000, .zero_pages = 10, .remaining = 40960, .rate = 800000000,
		.dirty_rate = 1000000, .expected_downtime_us = 1234,
	}, q;
	char line[1024];

	(void)state;
	assert_int_equal(migrate_progress_json(&p, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "{\"progress\":{\"event\":\"round\""));
	assert_int_equal(migrate_progress_parse(line, strlen(line), &q), 1);
	assert_int_equal(q.event, MIGRATE_EV_ROUND);
	assert_int_equal(q.phase, MIGRATE_PRECOPY);
	assert_int_equal(q.round, 2);
	assert_int_equal(q.bytes, 12345678);
	assert_int_equal(q.remaining, 40960);
	assert_int_equal(q.expected_downtime_us, 1234);
	p.expected_downtime_us = UINT64_MAX;
	assert_int_equal(migrate_progress_json(&p, line, sizeof(line)), 0);
	assert_int_equal(migrate_progress_parse(line, strlen(line), &q), 1);
	assert_int_equal(q.expected_downtime_us, UINT64_MAX);
	migrate_progress_bar(&p, line, sizeof(line));
	assert_true(line[0] == '\r' && !strchr(line, '\n'));
	p.event = MIGRATE_EV_DONE;
	p.phase = MIGRATE_DONE;
	p.downtime_us = 4321;
	p.throughput = 900000000;
	p.forced = true;
	p.downtime_target_ms = 50;
	p.dest = "10.200.0.2:4444";
	assert_int_equal(migrate_progress_json(&p, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "{\"ok\":true,\"migrated\":{"));
	assert_int_equal(migrate_progress_parse(line, strlen(line), &q), 2);
	assert_int_equal(q.downtime_us, 4321);
	assert_int_equal(q.round, 2);
	assert_true(q.forced);
	migrate_summary_line(&p, line, sizeof(line));
	assert_non_null(strstr(line, "migrated to 10.200.0.2:4444 in 1.500 s"));
	assert_non_null(strstr(line, "3 rounds, downtime 4.321 ms (target 50 ms)"));
	assert_non_null(strstr(line, "forced"));
	assert_int_equal(migrate_progress_parse("{\"ok\":false}", 12, &q), 0);
	assert_int_equal(migrate_progress_parse("nope", 4, &q), -EINVAL);
}

static void test_incoming_flags(void **state)
{
	struct migrate_incoming in = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(migrate_incoming_flag(&in, "--incoming", "0.0.0.0:4444", err, sizeof(err)),
			 1);
	assert_string_equal(in.listen, "0.0.0.0:4444");
	assert_int_equal(migrate_incoming_flag(&in, "--storage-dir", "/srv", err, sizeof(err)), 1);
	assert_string_equal(in.storage_dir, "/srv");
	assert_int_equal(migrate_incoming_flag(&in, "--name", "x", err, sizeof(err)), 0);
	assert_int_equal(migrate_incoming_flag(&in, "--incoming", "4444", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "--incoming 4444"));
	assert_int_equal(migrate_incoming_flag(&in, "--incoming", NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(migrate_incoming_flag(&in, "--storage-dir", "", err, sizeof(err)),
			 -EINVAL);
}

static void test_memsum(void **state)
{
	struct t *t = *state;
	uint64_t a, b;

	memset(t->ram, 0, RAM);
	assert_int_equal(migrate_memsum(&t->gm), 0); /* zero pages count as absent */
	t->ram[0x3000] = 1;
	a = migrate_memsum(&t->gm);
	assert_int_not_equal(a, 0);
	/* The same byte in another page is another sum. */
	t->ram[0x3000] = 0;
	t->ram[0x4000] = 1;
	b = migrate_memsum(&t->gm);
	assert_int_not_equal(a, b);
	t->ram[0x4000] = 0;
	t->ram[0x3000] = 1;
	assert_int_equal(migrate_memsum(&t->gm), a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_stream_any_chunking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_crc_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_crc_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_crc_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_lengths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test(test_hello_check),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_addr_and_args),
		cmocka_unit_test(test_request_roundtrip),
		cmocka_unit_test(test_progress_lines),
		cmocka_unit_test(test_incoming_flags),
		cmocka_unit_test_setup_teardown(test_memsum, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
