/* first_byte - writes '!' to the COM1 data register at its first
 * instruction, then powers off (time-to-first-output benchmark).
 * Expect: output "!", exit status 0. */
#include "pvh_note.h"

	PVH_NOTE _start
	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	movw $0x3f8, %dx
	movb $'!', %al
	outb %al, %dx
	movw $TINY_PM1A_CNT_PORT, %dx
	movw $TINY_PM1A_POWEROFF, %ax
	outw %ax, %dx
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
