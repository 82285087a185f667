/* triple - loads a zero-length IDT and executes int3: #BP cannot be
 * delivered (#GP), nor can #GP (#DF), nor #DF: a triple fault, which ends
 * the monitor with status 3. Expect: "triple: int3 with an empty IDT",
 * and never "triple: still running". */
#include "lib.h"

int main(void)
{
	static const struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty = {0, 0};

	puts("triple: int3 with an empty IDT\n");
	__asm__ volatile("lidt %0\n\tint3" : : "m"(empty) : "memory");
	puts("triple: still running\n");
	halt_forever();
}
