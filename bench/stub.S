/* stub.S - the benchmark stub guest: one byte on COM1, then exit at once.
 * QEMU exits through isa-debug-exit (port 0xf4, ignored by cvisor as an
 * unclaimed port); cvisor through ACPI PM1a_CNT S5 (port 0x604). */
	.section .note.Xen, "a"
	.align 4
	.long 4, 4, 18
	.asciz "Xen"
	.long start
	.text
	.code32
	.globl start
start:
	mov $0x3f8, %dx
	mov $'!', %al
	out %al, %dx
	mov $0xf4, %dx      /* QEMU isa-debug-exit */
	xor %eax, %eax
	out %al, %dx
	mov $0x604, %dx     /* ACPI PM1a_CNT: S5 */
	mov $(5<<10 | 1<<13), %ax
	out %ax, %dx
1:	hlt
	jmp 1b
