/* burn - keeps one vCPU busy without `pause` (which a host may turn into a
 * yield), for CPU cap and weight tests. Prints "burn: N" after every
 * `iters` loop iterations ("iters=N" on the command line, default 1000000)
 * and never stops by itself. */
#include "lib.h"

int main(void)
{
	uint64_t iters = cmdline_u64("iters", 1000000);
	volatile uint64_t sink = 0;

	printf("burn: running\n");
	for (uint64_t n = 1;; n++) {
		for (uint64_t i = 0; i < iters; i++)
			sink += i;
		printf("burn: %lu\n", (unsigned long)n);
	}
}
