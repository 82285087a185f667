/* smp_tramp.S - AP start-up code, copied by the smp guest to a free 4 KiB
 * page below 1 MiB whose page number is the SIPI vector. The AP starts in
 * real mode at CS = page << 8, IP = 0 (SDM 8.4.4.1/10.6.1). Position
 * independent: it finds its base from CS. Loads the runtime's GDT and jumps
 * to ap_entry32 in crt0.S in flat 32-bit protected mode. */
#include "gdt.h"

	.text
	.code16
	.globl smp_tramp_start, smp_tramp_end
smp_tramp_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	xorl %ebx, %ebx
	movw %ax, %bx
	shll $4, %ebx
	leal (tramp_pm32 - smp_tramp_start)(%ebx), %eax
	movl %eax, (tramp_farptr - smp_tramp_start)
	lgdtl (tramp_gdtr - smp_tramp_start)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl *(tramp_farptr - smp_tramp_start)

	.code32
tramp_pm32:
	LOAD_DATA_SEGS
	movl $ap_entry32, %eax
	jmp *%eax

	.p2align 2
tramp_farptr:
	.long 0				/* offset, filled in above */
	.word SEL_CODE32
	.p2align 2
tramp_gdtr:
	.word 63			/* crt0.S checks the GDT is 64 bytes */
	.long gdt
smp_tramp_end:

	.section .note.GNU-stack, "", @progbits
