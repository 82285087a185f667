/* idle - prints "idle" once, then halts with interrupts off for good: a
 * guest that costs its host nothing but memory (the density benchmark's
 * tiny guest; `ls` and `top` at many guests). Never exits by itself. */
#include "pvh_note.h"

	PVH_NOTE _start
	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	movw $0x3f8, %dx
	movl $msg, %esi
1:	lodsb
	testb %al, %al
	jz 2f
	outb %al, %dx
	jmp 1b
2:	cli
	hlt
	jmp 2b

	.section .rodata
msg:	.asciz "idle\n"

	.section .note.GNU-stack, "", @progbits
