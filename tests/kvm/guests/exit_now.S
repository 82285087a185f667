/* exit_now - powers off at its first instruction (startup benchmark).
 * Expect: no output, exit status 0. No stack, no long mode: nothing runs
 * before the PM1a_CNT write but the PVH entry itself. */
#include "pvh_note.h"

	PVH_NOTE _start
	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	TINY_POWEROFF

	.section .note.GNU-stack, "", @progbits
