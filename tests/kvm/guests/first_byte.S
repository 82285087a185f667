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
	TINY_POWEROFF

	.section .note.GNU-stack, "", @progbits
