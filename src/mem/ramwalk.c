/* ramwalk.c - which pages of guest RAM may hold data (see ramwalk.h): the
 * one walk behind a snapshot's sparse memory file and a migration's round 0
 * and RAM checksum, which each used to have a copy of it. */
#include "cvisor/ramwalk.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Documentation/admin-guide/mm/pagemap.rst: bit 63 present, bit 62
 * swapped. Neither: never touched (or dropped by MADV_DONTNEED), reads as
 * zero. */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)

/* The process's pagemap kept open (ramwalk_keep_pagemap), -1: each walk
 * opens its own. Process-wide, as /proc/self/pagemap is. */
static int kept_pagemap = -1;

int ramwalk_keep_pagemap(void)
{
	if (kept_pagemap >= 0)
		return 0;
	kept_pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	return kept_pagemap < 0 ? -errno : 0;
}

void ramwalk_begin(struct ramwalk *w, const struct guest_mem *gm)
{
	w->gm = gm;
	w->npages = gm->ram_size / RAMWALK_PAGE_SIZE;
	w->next = 0;
	w->ent_first = w->nents = 0;
	w->ext_start = w->ext_end = 0;
	w->own_pagemap = kept_pagemap < 0;
	w->pagemap =
		w->own_pagemap ? open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) : kept_pagemap;
}

void ramwalk_end(struct ramwalk *w)
{
	if (w->own_pagemap)
		cv_close(&w->pagemap);
	w->pagemap = -1;
}

/* For RAM mapped from a memory file: is offset off inside one of the
 * file's data extents? ext_start and ext_end cache the extent at or after
 * the last offset asked; offsets only grow during a walk. */
static bool in_file_data(struct ramwalk *w, uint64_t off)
{
	if (off >= w->ext_end &&
	    cv_data_extent(w->gm->file_fd, off, UINT64_MAX, &w->ext_start, &w->ext_end))
		w->ext_start = w->ext_end = UINT64_MAX; /* no data past off */
	return off >= w->ext_start && off < w->ext_end;
}

/* Whether pagemap says page i is resident or swapped out, reading the
 * entries from i on when i is not among those read last. */
static bool page_in_memory(struct ramwalk *w, uint64_t i)
{
	if (i - w->ent_first >= w->nents) {
		uint64_t n = w->npages - i < RAMWALK_CHUNK ? w->npages - i : RAMWALK_CHUNK;
		uint64_t vpage = (uint64_t)(uintptr_t)w->gm->base / RAMWALK_PAGE_SIZE + i;

		if (pread(w->pagemap, w->ents, n * 8, (off_t)(vpage * 8)) != (ssize_t)(n * 8)) {
			/* Unreadable now: every page from here may hold data. */
			ramwalk_end(w);
			return true;
		}
		w->ent_first = i;
		w->nents = n;
	}
	return (w->ents[i - w->ent_first] & (PM_PRESENT | PM_SWAPPED)) != 0;
}

static bool may_hold_data(struct ramwalk *w, uint64_t i)
{
	if (w->pagemap < 0 || page_in_memory(w, i))
		return true;
	/* A restored guest maps its snapshot's memory file copy-on-write:
	 * pages it has not touched are not present, yet hold the file's data
	 * (offset = position in the mapping). */
	return w->gm->file_backed && in_file_data(w, i * RAMWALK_PAGE_SIZE);
}

bool ramwalk_next(struct ramwalk *w, uint64_t *first, uint64_t *count)
{
	while (w->next < w->npages && !may_hold_data(w, w->next))
		w->next++;
	if (w->next == w->npages)
		return false;
	*first = w->next;
	while (w->next < w->npages && may_hold_data(w, w->next))
		w->next++;
	*count = w->next - *first;
	return true;
}

void ramwalk_bitmap(const struct guest_mem *gm, uint64_t *bits)
{
	struct ramwalk w;
	uint64_t first, n;

	ramwalk_begin(&w, gm);
	while (ramwalk_next(&w, &first, &n))
		for (uint64_t i = first; i < first + n; i++)
			bits[i / 64] |= 1ULL << (i % 64);
	ramwalk_end(&w);
}

bool ramwalk_page_is_zero(const void *p)
{
	const uint64_t *w = p;

	/* Data pages differ from zero in their first words; a zero page is
	 * read whole, 64 bytes per step. */
	for (unsigned int i = 0; i < RAMWALK_PAGE_SIZE / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	return true;
}
