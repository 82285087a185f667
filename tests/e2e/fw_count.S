/* fw_count.S - a boot sector for tests/e2e/firmware.sh (assembled there:
 * as --32, linked at 0x7c00 as a flat binary): SeaBIOS loads it from the
 * disk; it prints "cvisor-mbr: counting", then "count N" (N from 0) about
 * twice a second, waiting on the BIOS timer ticks (0x46c, IRQ 0) with hlt,
 * and keeps N at 0x7e00 too. At N = RESET_AT (--defsym) it says
 * "cvisor-mbr: resetting" and resets the machine through the i8042. A
 * guest saved, restored or migrated on the way counts on from where it
 * was. */
	.code16
	.globl _start
_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %ss
	mov $0x7c00, %sp
	mov $hello, %si
	call puts
	xor %bx, %bx
next:
	mov $count, %si
	call puts
	mov %bx, %ax
	call putdec
	mov $nl, %si
	call puts
	mov %bx, 0x7e00		/* the count in RAM too */
	cmp $RESET_AT, %bx
	je reset
	inc %bx
	mov 0x46c, %cx		/* the BIOS's timer ticks (18.2 Hz, IRQ 0) */
	sti
wait:
	hlt
	mov 0x46c, %ax
	sub %cx, %ax
	cmp $9, %ax
	jb wait
	cli
	jmp next
reset:
	mov $bye, %si
	call puts
	mov $0xfe, %al		/* the i8042's reset line */
	out %al, $0x64
1:	hlt
	jmp 1b

/* puts: the NUL-terminated string at %si to COM1 */
puts:
	mov $0x3f8, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, (%dx)
	jmp 1b
2:	ret

/* putdec: %ax in decimal to COM1 */
putdec:
	mov $10, %cx
	xor %di, %di
1:	xor %dx, %dx
	div %cx
	push %dx
	inc %di
	test %ax, %ax
	jnz 1b
	mov $0x3f8, %dx
2:	pop %ax
	add $'0', %al
	out %al, (%dx)
	dec %di
	jnz 2b
	ret

hello:	.asciz "cvisor-mbr: counting\n"
count:	.asciz "count "
nl:	.asciz "\n"
bye:	.asciz "cvisor-mbr: resetting\n"
	.org 510
	.byte 0x55, 0xaa
