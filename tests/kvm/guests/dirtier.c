/* dirtier - writes guest memory fast, for live migration tests and the
 * migration benchmark.
 *
 * Contract (tests and bench/migrate.sh depend on it):
 *   "mb=N"    working set: N MiB from DIRTIER_BASE (16 MiB) up (default 64;
 *             the guest needs 16 + N MiB of RAM).
 *   "fill=1"  write every page of the working set once, print "dirtier:
 *             filled N MiB", store DIRTIER_DONE at 0x5010 and halt: an idle
 *             guest with N MiB of data.
 *   "full=1"  write whole pages (rep stosq of the page's word), not just
 *             the first word of each: data that no zero-block trick shrinks.
 *   otherwise rewrite every page of the working set, pass after pass,
 *             forever: a guest that dirties memory as fast as it can.
 *   COUNTER_ADDR 0x5000: u64 passes completed (0, 1, 2, ...) and
 *   COUNTER_MAGIC_ADDR 0x5008: the counter guest's magic, so the tests'
 *   memory readers treat both guests alike. A line "pass N" every
 *   "every=K" passes (default 1).
 * Each page gets (pass << 32 | page index) + 1 in its first word (every
 * word with full=1): never zero, and a page that missed a migration round
 * reads back wrong. */
#include "lib.h"

#define COUNTER_ADDR 0x5000ull
#define COUNTER_MAGIC_ADDR 0x5008ull
#define COUNTER_MAGIC 0x72746e756f435643ull
#define DONE_ADDR 0x5010ull
#define DIRTIER_DONE 0x656e6f4472696444ull /* "DdirDone" */
#define DIRTIER_BASE (16ull << 20)

int main(void)
{
	uint64_t mb = cmdline_u64("mb", 64), fill = cmdline_u64("fill", 0);
	uint64_t every = cmdline_u64("every", 1), full = cmdline_u64("full", 0);
	uint64_t pages = (mb << 20) / 4096;
	volatile uint64_t *count = (volatile uint64_t *)COUNTER_ADDR;

	*count = 0;
	*(volatile uint64_t *)COUNTER_MAGIC_ADDR = COUNTER_MAGIC;
	printf("dirtier: %lu MiB at 0x%lx, %s\n", (unsigned long)mb,
	       (unsigned long)DIRTIER_BASE, fill ? "fill once" : "loop");
	for (uint64_t pass = 1;; pass++) {
		for (uint64_t i = 0; i < pages; i++) {
			uint64_t v = (pass << 32 | i) + 1, *p = (uint64_t *)(DIRTIER_BASE + i * 4096);

			if (full) {
				/* The whole page, with a word that differs per page
				 * (one instruction per page: fast even emulated). */
				uint64_t n = 512;

				__asm__ volatile("rep stosq" : "+D"(p), "+c"(n) : "a"(v) : "memory");
			} else {
				*(volatile uint64_t *)p = v;
			}
		}
		*count = pass;
		if (fill) {
			printf("dirtier: filled %lu MiB\n", (unsigned long)mb);
			*(volatile uint64_t *)DONE_ADDR = DIRTIER_DONE;
			for (;;)
				__asm__ volatile("cli; hlt");
		}
		if (every && pass % every == 0)
			printf("pass %lu\n", (unsigned long)pass);
	}
}
