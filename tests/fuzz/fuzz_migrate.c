/* fuzz_migrate.c - libFuzzer target for the migration receive parser (the
 * target's view of a source, and the source's view of the replies), fed
 * in chunks of varying size into a 1 MiB guest.
 *
 * Input: byte 0 selects the mode (bit 0: recompute every message's CRC so
 * that runs reach the bodies; bit 1: parse replies as the source does;
 * bits 2-7: chunk size, 0 = all at once), the rest is the stream. The
 * invariants: nothing is written outside guest RAM, events come in the
 * protocol's order, bounds hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/crc32.h"
#include "cvisor/migrate_proto.h"

#define RAM (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *ctx, uint32_t disk, uint64_t off, const uint8_t *p, uint32_t len, bool zero)
{
	const struct mig_rx *rx = ctx;

	if (disk >= rx->hello.ndisks || off + len > rx->hello.disks[disk].size || (!zero && !p) ||
	    !len || len > MIG_DISK_CHUNK)
		abort();
	return 0;
}

static uint64_t le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Walk the framing and put the right CRC after every whole message. */
static void fix_crcs(uint8_t *b, size_t n)
{
	size_t at = 0;

	while (n - at >= MIG_HDR_SIZE) {
		uint64_t len = le(b + at + 4, 4);
		uint32_t c;

		if (len > n - at - MIG_HDR_SIZE || n - at - MIG_HDR_SIZE - len < 4)
			return;
		c = cv_crc32(0, b + at, MIG_HDR_SIZE + len);
		memcpy(b + at + MIG_HDR_SIZE + len, &c, 4);
		at += MIG_HDR_SIZE + len + 4;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	static struct guest_mem gm;
	struct mig_local local = { .page_size = MIG_PAGE_SIZE, .max_cpus = 64 };
	struct mig_rx rx;
	size_t chunk, at = 0;
	uint8_t *buf, mode;
	char err[256];
	bool state = false;

	if (size < 1)
		return 0;
	if (!ram) {
		ram = calloc(1, RAM);
		guest_mem_init_buf(&gm, ram, RAM);
	}
	mode = data[0];
	buf = malloc(size);
	memcpy(buf, data + 1, size - 1);
	size--;
	if (mode & 1)
		fix_crcs(buf, size);
	chunk = mode >> 2 ? (size_t)(mode >> 2) * 37 : size;
	mig_rx_init(&rx, mode & 2);
	rx.disk_write = sink;
	rx.disk_ctx = &rx;
	while (at < size) {
		size_t n = size - at < chunk ? size - at : chunk, used;
		int ev = mig_rx_feed(&rx, buf + at, n, &used);

		at += used;
		if (ev < 0)
			break;
		if (ev == MIG_RX_HELLO) {
			if (!rx.got_hello || rx.hello.major != MIG_MAJOR)
				abort();
			if (mig_hello_check(&rx.hello, &local, err, sizeof(err)) ||
			    rx.hello.ram_size != RAM)
				break;
			mig_rx_set_mem(&rx, &gm);
		} else if (ev == MIG_RX_HINT) {
			for (uint32_t i = 0; i < rx.nhint; i++)
				if (!guest_mem_ptr(&gm, rx.hint[i].gpa, rx.hint[i].len))
					abort();
		} else if (ev == MIG_RX_STATE) {
			if (state || !rx.body || rx.body_len > MIG_MAX_STATE)
				abort();
			state = true;
		} else if (ev == MIG_RX_END) {
			if (!state)
				abort();
		} else if (ev == MIG_RX_PAGES && !rx.mem) {
			abort();
		}
	}
	mig_rx_free(&rx);
	free(buf);
	return 0;
}
