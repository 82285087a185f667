/* counter - counts forever, for pause/resume and snapshot tests.
 *
 * Contract (tests depend on it):
 *   COUNTER_ADDR  0x5000: u64, little-endian: the current count N. It is
 *                 stored just before "count N" is printed, so once that line
 *                 is out the value is >= N; it only ever increases by 1.
 *   COUNTER_MAGIC_ADDR 0x5008: u64 COUNTER_MAGIC (0x72746e756f435643,
 *                 "CVCountr"), written before the first count: tells a test
 *                 reading guest memory that the counter guest is running.
 *   Period: one line "count N" (N = 1, 2, 3, ...) after every `spin`
 *   iterations of a pause loop; spin defaults to COUNTER_SPIN (20000:
 *   measured ~0.1 s per line on the PVM development host, i.e. ~10 lines/s;
 *   about 1 ms on VT-x) and can be set with "spin=N" on the command line.
 * It never exits by itself: the monitor must be stopped from outside. */
#include "lib.h"

#define COUNTER_ADDR 0x5000ull
#define COUNTER_MAGIC_ADDR 0x5008ull
#define COUNTER_MAGIC 0x72746e756f435643ull
#define COUNTER_SPIN 20000

int main(void)
{
	uint64_t spin = cmdline_u64("spin", COUNTER_SPIN);
	volatile uint64_t *count = (volatile uint64_t *)COUNTER_ADDR;

	*count = 0;
	*(volatile uint64_t *)COUNTER_MAGIC_ADDR = COUNTER_MAGIC;
	printf("counter: spin %lu, count at 0x%lx\n", (unsigned long)spin, (unsigned long)COUNTER_ADDR);
	for (uint64_t n = 1;; n++) {
		spin_delay(spin);
		*count = n;
		printf("count %lu\n", (unsigned long)n);
	}
}
