/* ram.c - guest RAM on the sending side: a bitmap of pages sent as PAGES
 * batches, the round-0 hint, and the whole-RAM checksum both ends compute.
 * Which pages may hold data is src/mem/ramwalk.c's walk. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/ramwalk.h"

#include "migrate_priv.h"

static_assert(MIG_PAGE_SIZE == RAMWALK_PAGE_SIZE, "the stream's pages are the walk's");

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finalizer. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t migrate_memsum(const struct guest_mem *gm)
{
	struct ramwalk w;
	uint64_t first, n, sum = 0;

	/* Order-free: a sum over non-zero pages of a hash of (index, CRC),
	 * so untouched pages can be skipped on either end. */
	ramwalk_begin(&w, gm);
	while (ramwalk_next(&w, &first, &n))
		for (uint64_t i = first; i < first + n; i++) {
			const uint8_t *p = gm->base + i * MIG_PAGE_SIZE;

			if (!ramwalk_page_is_zero(p))
				sum += mix64((uint64_t)cv_crc32(0, p, MIG_PAGE_SIZE) << 32 ^ i);
		}
	ramwalk_end(&w);
	return sum;
}

/* The page at index i of the mapping: its guest-physical address. */
static uint64_t gpa_of(const struct guest_mem *gm, uint64_t i)
{
	const uint8_t *hva = gm->base + i * MIG_PAGE_SIZE;

	for (unsigned int k = 0; k < gm->nr; k++) {
		const struct guest_mem_region *g = &gm->regions[k];

		if (hva >= g->hva && hva < g->hva + g->size)
			return g->gpa + (uint64_t)(hva - g->hva);
	}
	return i * MIG_PAGE_SIZE;
}

int mig_send_bitmap(struct mig_tx *tx, const struct guest_mem *gm, uint64_t *todo,
		    int (*check)(void *ctx), void *ctx)
{
	uint64_t npages = gm->ram_size / MIG_PAGE_SIZE, nwords = (npages + 63) / 64;
	int r;

	for (uint64_t w = 0; w < nwords; w++) {
		uint64_t bits = todo[w];

		todo[w] = 0;
		while (bits) {
			uint64_t i = w * 64 + (uint64_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			if (i >= npages)
				break;
			mig_tx_page(tx, gpa_of(gm, i), gm->base + i * MIG_PAGE_SIZE);
		}
		/* Every 4096 pages: a dead link or a stopping guest ends it. */
		if ((w & 63) == 63 && (r = check(ctx)))
			return r;
	}
	mig_tx_flush(tx);
	return 0;
}

void mig_send_hint(struct mig_tx *tx, const struct guest_mem *gm, const uint64_t *todo)
{
	struct state_buf b = { 0 };
	uint32_t n = 0;

	state_put_u32(&b, 0);
	for (unsigned int k = 0; k < gm->nr; k++) {
		const struct guest_mem_region *g = &gm->regions[k];
		uint64_t first = (uint64_t)(g->hva - gm->base) / MIG_PAGE_SIZE;
		uint64_t end = first + g->size / MIG_PAGE_SIZE, i = first;

		while (i < end && n < MIG_MAX_HINT_RANGES) {
			uint64_t j;

			if (!(todo[i / 64] >> (i % 64) & 1)) {
				i = (i % 64 == 0 && !todo[i / 64]) ? i + 64 : i + 1;
				continue;
			}
			for (j = i; j < end && (todo[j / 64] >> (j % 64) & 1); j++)
				;
			state_put_u64(&b, g->gpa + (i - first) * MIG_PAGE_SIZE);
			state_put_u64(&b, (j - i) * MIG_PAGE_SIZE);
			n++;
			i = j;
		}
	}
	if (!b.err) {
		for (unsigned int i = 0; i < 4; i++)
			b.data[i] = (uint8_t)(n >> (8 * i));
		mig_tx_msg(tx, MIG_MSG_HINT, b.data, (uint32_t)b.len);
	}
	state_buf_free(&b);
}
