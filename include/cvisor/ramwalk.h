/* ramwalk.h - the walk of the guest RAM pages that may hold data, which
 * a snapshot's memory file (src/snapshot/memfile.c) and a live migration
 * (its round 0 and its RAM checksum, src/migrate/ram.c) share
 * (src/mem/ramwalk.c).
 *
 * A page may hold data when the monitor has it resident or swapped out
 * (/proc/self/pagemap, whose present and swapped bits any process may read
 * for itself), or, for RAM mapped from a snapshot's memory file, when that
 * file has data there. Any other page was never touched and reads as zero,
 * here and in a fresh VM alike. Without pagemap every page may hold data:
 * slower, the same result for a caller that skips zero pages. */
#ifndef CVISOR_RAMWALK_H
#define CVISOR_RAMWALK_H

#include <stdbool.h>
#include <stdint.h>

#include "cvisor/guest_mem.h"

#define RAMWALK_PAGE_SIZE 4096U
#define RAMWALK_CHUNK 1024 /* pagemap entries read at once */

struct ramwalk {
	const struct guest_mem *gm;
	uint64_t npages;
	uint64_t next;	    /* the first page not yet walked */
	int pagemap;	    /* -1: every page may hold data */
	bool own_pagemap;   /* opened by this walk (not the kept one) */
	uint64_t ent_first; /* ents[i] is the entry of page ent_first + i */
	uint64_t nents;
	uint64_t ext_start, ext_end; /* the file's data extent last found */
	uint64_t ents[RAMWALK_CHUNK];
};

/* Open /proc/self/pagemap now and let every later walk of this process
 * use it. Access is checked only at open, so a process that is about to
 * lose the right to open it keeps it (a uid change makes the process
 * non-dumpable, and its /proc files root's: jail.c). 0 or -errno. */
int ramwalk_keep_pagemap(void) CV_MUST;

/* Start a walk over gm's RAM mapping, page 0 (byte 0 of the mapping, not
 * guest-physical 0) first. Never fails: what cannot be read counts as
 * data. End it with ramwalk_end. */
void ramwalk_begin(struct ramwalk *w, const struct guest_mem *gm);

/* The next run of pages that may hold data, in mapping order: pages
 * [*first, *first + *count) of the mapping. false when no page is left. */
bool ramwalk_next(struct ramwalk *w, uint64_t *first, uint64_t *count);

/* Close what ramwalk_begin opened. */
void ramwalk_end(struct ramwalk *w);

/* The whole walk as a bitmap: bit i of bits set for each page i of the
 * mapping that may hold data (bits already set stay set). bits holds
 * (ram_size / RAMWALK_PAGE_SIZE + 63) / 64 words. */
void ramwalk_bitmap(const struct guest_mem *gm, uint64_t *bits);

/* True if the RAMWALK_PAGE_SIZE bytes at p are all zero: a page that may
 * hold data yet holds none. */
bool ramwalk_page_is_zero(const void *p);

#endif
