/* fuzz_virtio_balloon.c - libFuzzer target for virtio-balloon.
 *
 * Input: an 8-byte header, a program of up to 64 op bytes, then a guest
 * memory image (rings, descriptors, PFN arrays, stats, report ranges).
 *   header[0]  driver features: bit 0 STATS_VQ, bit 1 PAGE_REPORTING,
 *              bit 2 INDIRECT_DESC, bit 3 EVENT_IDX
 *   header[1..4]  log2 of each queue's size (& 15: may be invalid)
 *   header[5]  number of op bytes
 *   ops: 0x00-0x7f kick queue op & 3; 0x80-0x9f set_target (op & 31) pages;
 *        0xa0-0xbf request stats; 0xc0-0xdf save -> load into a fresh
 *        device -> save again: identical; 0xe0-0xff reset and restart.
 * The device must never crash, read or write outside guest RAM (ASan), or
 * report impossible counters. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cvisor/virtio_balloon.h"
#include "fuzz_virtio.h"

#define RAM_SIZE (64u << 10)
#define MAX_OPS 64

static uint8_t *ram;

static void start(struct virtio_dev *d, const uint8_t *h)
{
	uint64_t f = 0;

	f |= (h[0] & 1) ? 1ULL << VIRTIO_BALLOON_F_STATS_VQ : 0;
	f |= (h[0] & 2) ? 1ULL << VIRTIO_BALLOON_F_PAGE_REPORTING : 0;
	fuzz_virtio_start_hdr(d, h, f, 4);
}

static void roundtrip(struct virtio_dev *d, const struct guest_mem *mem)
{
	struct virtio_dev *t = calloc(1, sizeof(*t));
	struct state_buf a = { 0 }, b = { 0 };
	struct state_rd r;

	if (!t || virtio_balloon_create(t, mem, NULL, 0))
		abort();
	if (virtio_dev_save(d, &a))
		abort();
	state_rd_init(&r, a.data, a.len);
	/* A device stopped by a fault saves a state that may not activate;
	 * anything else must load and save back identically. */
	if (!virtio_dev_load(t, &r)) {
		if (r.pos != a.len || virtio_dev_save(t, &b) || a.len != b.len ||
		    memcmp(a.data, b.data, a.len))
			abort();
	} else if (d->active) {
		abort();
	}
	state_buf_free(&a);
	state_buf_free(&b);
	virtio_balloon_destroy(t);
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_dev d;
	struct guest_mem mem;
	struct virtio_balloon_stats st;
	const uint8_t *ops;
	size_t nops;

	if (size < FUZZ_HDR)
		return 0;
	if (!ram) {
		ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			   0);
		if (ram == MAP_FAILED)
			abort();
	}
	nops = fuzz_split(data, size, MAX_OPS, ram, RAM_SIZE);
	ops = data + FUZZ_HDR;
	guest_mem_init_buf(&mem, ram, RAM_SIZE);
	if (virtio_balloon_create(&d, &mem, NULL, 4096))
		abort();
	start(&d, data);
	for (size_t i = 0; i < nops; i++) {
		uint8_t op = ops[i];

		if (op < 0x80) {
			virtio_dev_notify(&d, op & 3);
		} else if (op < 0xa0) {
			uint64_t bytes = (uint64_t)(op & 31) << 12;
			int r = virtio_balloon_set_target(&d, bytes);

			if (r != (bytes > RAM_SIZE ? -ERANGE : 0))
				abort();
		} else if (op < 0xc0) {
			(void)!virtio_balloon_request_stats(&d);
		} else if (op < 0xe0) {
			roundtrip(&d, &mem);
		} else {
			vqd_dev_status(&d, 0);
			start(&d, data);
		}
		if (virtio_balloon_get_stats(&d, &st) ||
		    st.target_pages > RAM_SIZE / VIRTIO_BALLOON_PAGE_SIZE ||
		    st.inflated_pages + st.invalid_pfns > 4096u * 1024 * (i + 1) ||
		    st.reported_pages > (uint64_t)RAM_SIZE / 4096 * 260 * 1024 * (i + 1) ||
		    (st.valid >> VIRTIO_BALLOON_S_NR))
			abort();
	}
	virtio_balloon_destroy(&d);
	return 0;
}
