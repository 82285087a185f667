/* unknown_insn - an instruction the monitor does not complete when an
 * emulating host (PVM) refuses it: `lock cmpxchg16b`. On VT-x/SVM the CPU
 * runs it and the guest prints "unknown_insn: cmpxchg16b ok" and powers
 * off. On an emulating host the monitor must stop with status 4 and one
 * line naming the instruction bytes (f0 48 0f c7 ...) and the RIP, which
 * the guest prints first as "unknown_insn: rip 0x...". */
#include "lib.h"

static volatile uint64_t slot[2] __attribute__((aligned(16))) = { 1, 2 };

int main(void)
{
	uint64_t lo = 1, hi = 2, new_lo = 3, new_hi = 4, at;

	__asm__ volatile("leaq 1f(%%rip), %0" : "=r"(at));
	printf("unknown_insn: rip 0x%lx\n", (unsigned long)at);
	__asm__ volatile("1:\tlock cmpxchg16b %2"
			 : "+a"(lo), "+d"(hi), "+m"(*slot)
			 : "b"(new_lo), "c"(new_hi)
			 : "memory", "cc");
	if (slot[0] == 3 && slot[1] == 4)
		puts("unknown_insn: cmpxchg16b ok\n");
	else
		puts("unknown_insn: cmpxchg16b FAIL\n");
	poweroff();
}
