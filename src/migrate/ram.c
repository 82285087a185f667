/* ram.c - guest RAM on the sending side: which pages were ever
 * touched, sending a bitmap of pages and the round-0 hint, and the whole-RAM
 * checksum both ends compute. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate_priv.h"

bool mig_page_is_zero(const void *p)
{
	const uint64_t *w = p;

	/* Data pages differ from zero in their first words; a zero page is
	 * read whole, 64 bytes per step. */
	for (unsigned int i = 0; i < MIG_PAGE_SIZE / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	return true;
}

int mig_pages_present(const uint8_t *base, uint64_t npages, uint64_t *bits)
{
	enum { CHUNK = 4096 };
	uint64_t *ent = malloc(CHUNK * sizeof(*ent));
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t first = (uint64_t)(uintptr_t)base / MIG_PAGE_SIZE;

	if (fd < 0 || !ent) {
		int e = fd < 0 ? -errno : -ENOMEM;

		if (fd >= 0)
			close(fd);
		free(ent);
		return e;
	}
	for (uint64_t i = 0; i < npages; i += CHUNK) {
		uint64_t n = npages - i < CHUNK ? npages - i : CHUNK;
		ssize_t got = pread(fd, ent, n * 8, (off_t)((first + i) * 8));

		if (got != (ssize_t)(n * 8)) {
			close(fd);
			free(ent);
			return -EIO;
		}
		/* Documentation/admin-guide/mm/pagemap.rst: bit 63 present,
		 * bit 62 swapped. Neither: never touched, reads as zero. */
		for (uint64_t k = 0; k < n; k++)
			if (ent[k] & (3ULL << 62))
				bits[(i + k) / 64] |= 1ULL << ((i + k) % 64);
	}
	close(fd);
	free(ent);
	return 0;
}

int mig_pages_with_data(const struct guest_mem *gm, uint64_t *bits)
{
	uint64_t npages = gm->ram_size / MIG_PAGE_SIZE, off = 0;
	int r = mig_pages_present(gm->base, npages, bits);

	if (r)
		return r;
	/* A restored guest maps its snapshot's memory file copy-on-write:
	 * pages it has not touched are not present, yet hold the file's
	 * data (offset = position in the mapping). */
	while (gm->file_backed && off < gm->ram_size) {
		off_t d = lseek(gm->file_fd, (off_t)off, SEEK_DATA), h;

		if (d < 0)
			return errno == ENXIO ? 0 : -errno;
		h = lseek(gm->file_fd, d, SEEK_HOLE);
		if (h < 0)
			return -errno;
		for (uint64_t i = (uint64_t)d / MIG_PAGE_SIZE;
		     i < npages && i * MIG_PAGE_SIZE < (uint64_t)h; i++)
			bits[i / 64] |= 1ULL << (i % 64);
		off = (uint64_t)h;
	}
	return 0;
}

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
	uint64_t npages = gm->ram_size / MIG_PAGE_SIZE, sum = 0;
	uint64_t *present = calloc((npages + 63) / 64 + 1, 8);
	bool all = !present || mig_pages_with_data(gm, present);

	/* Order-free: a sum over non-zero pages of a hash of (index, CRC),
	 * so untouched pages can be skipped on either end. */
	for (uint64_t i = 0; i < npages; i++) {
		const uint8_t *p = gm->base + i * MIG_PAGE_SIZE;

		if (!all && !(present[i / 64] >> (i % 64) & 1))
			continue;
		if (mig_page_is_zero(p))
			continue;
		sum += mix64((uint64_t)cv_crc32(0, p, MIG_PAGE_SIZE) << 32 ^ i);
	}
	free(present);
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
