/* prot32 - a 32-bit protected-mode guest with its own GDT and IDT that
 * takes exceptions and returns from them with a 32-bit iret (opcode cf):
 * int3 (#BP, a trap), ud2 (#UD, a fault: the handler steps over it), a
 * divide by zero (#DE, likewise), a software interrupt (int $0x40) and an
 * iret that pops a changed EFLAGS (DF set, then checked), and an iret to
 * ring 3 (an outer level: SS:ESP popped too, DS nulled) whose ud2 comes
 * back to ring 0 through the TSS's stack; with CR4.OSFXSR, stmxcsr to
 * memory (absolute and through ESP, the SS default) reads the default
 * MXCSR 0x1f80, ldmxcsr loads it, and mfence runs. Paging stays off, as
 * the PVH entry leaves it. Each handler counts; the guest checks
 * the counts and prints "prot32: ok", or "prot32: FAIL" and the failing
 * check's letter, and an unexpected vector prints "prot32: vector N".
 * Expect: output "prot32: ok", exit status 0. */
#include "pvh_note.h"

#define COM1 0x3f8
#define CODE_SEL 0x08
#define DATA_SEL 0x10
#define USER_CS (0x18 | 3)
#define USER_SS (0x20 | 3)
#define TSS_SEL 0x28
#define SW_VEC 0x40

	PVH_NOTE _start
	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	cli
	lgdt gdt_desc
	ljmp $CODE_SEL, $1f
1:	movw $DATA_SEL, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	movl $stack_top, %esp

	/* every vector to the catch-all, then the ones the test takes */
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $4, %eax			/* each stub is 16 bytes */
	addl $unexpected_stubs, %eax
	call set_gate
	incl %ecx
	cmpl $256, %ecx
	jne 2b
	movl $0, %ecx
	movl $on_de, %eax
	call set_gate
	movl $3, %ecx
	movl $on_bp, %eax
	call set_gate
	movl $6, %ecx
	movl $on_ud, %eax
	call set_gate
	movl $SW_VEC, %ecx
	movl $on_sw, %eax
	call set_gate
	lidt idt_desc

	/* the TSS descriptor (type 9, limit 103) and the ring-0 stack */
	movl $tss, %eax
	movw %ax, gdt + TSS_SEL + 2
	shrl $16, %eax
	movb %al, gdt + TSS_SEL + 4
	movb %ah, gdt + TSS_SEL + 7
	movl $kstack_top, tss + 4	/* ESP0 */
	movl $DATA_SEL, tss + 8		/* SS0 */
	movw $TSS_SEL, %ax
	ltr %ax

	int3
	ud2
	xorl %edx, %edx
	movl $1, %eax
	xorl %ecx, %ecx
	divl %ecx			/* f7 f1: two bytes */
	int $SW_VEC
	int $SW_VEC

	/* an iret with EFLAGS changed: the handler sets DF in the frame */
	cld
	movl $1, want_df
	int $SW_VEC
	pushfl
	popl %eax
	cld
	movl $'D', %ebx
	testl $0x400, %eax
	jz fail

	/* to ring 3 and back: the ud2 there comes to on_ud at ring 0 */
	pushl $USER_SS
	pushl $ustack_top
	pushfl
	pushl $USER_CS
	pushl $user_code
	iret
back_from_user:
	movl $'R', %ebx
	cmpl $1, count_user
	jne fail
	movl $'N', %ebx			/* DS was nulled on the way out */
	cmpl $0, user_ds
	jne fail

	/* MXCSR through memory: 32-bit ModRM forms */
	movl %cr4, %eax
	orl $0x600, %eax		/* OSFXSR, OSXMMEXCPT */
	movl %eax, %cr4
	stmxcsr mxcsr_abs		/* 0f ae 1d disp32 */
	subl $4, %esp
	stmxcsr (%esp)			/* 0f ae 1c 24: SS */
	popl %eax
	movl $'M', %ebx
	cmpl $0x1f80, mxcsr_abs
	jne fail
	cmpl $0x1f80, %eax
	jne fail
	ldmxcsr mxcsr_abs
	mfence

	movl $'B', %ebx
	cmpl $1, count_bp
	jne fail
	movl $'U', %ebx
	cmpl $1, count_ud
	jne fail
	movl $'Z', %ebx
	cmpl $1, count_de
	jne fail
	movl $'S', %ebx
	cmpl $3, count_sw
	jne fail
	movl $'E', %ebx			/* the stack is where it was */
	cmpl $stack_top, %esp
	jne fail
	movl $msg_ok, %esi
	call puts
	TINY_POWEROFF

fail:	movl $msg_fail, %esi
	call puts
	movl %ebx, %eax
	call putc
	movb $'\n', %al
	call putc
	TINY_POWEROFF

/* IDT entry %ecx: a 32-bit interrupt gate (type 0xe, present, DPL 0) to
 * the handler at %eax. Clobbers %edx. */
set_gate:
	leal idt(, %ecx, 8), %edx
	movw %ax, (%edx)
	movw $CODE_SEL, 2(%edx)
	movw $0x8e00, 4(%edx)
	shrl $16, %eax
	movw %ax, 6(%edx)
	ret

putc:	pushl %edx
	movw $COM1, %dx
	outb %al, %dx
	popl %edx
	ret

/* The NUL-terminated string at %esi. */
puts:	lodsb
	testb %al, %al
	jz 1f
	call putc
	jmp puts
1:	ret

on_bp:	incl count_bp		/* a trap: the frame's EIP is past the int3 */
	iret
on_ud:	testl $3, 4(%esp)	/* from ring 3? */
	jnz 1f
	incl count_ud
	addl $2, (%esp)		/* a fault: step over the ud2 */
	iret
1:	movl %ds, %eax		/* the frame is on kstack (TSS.ESP0) */
	movw $DATA_SEL, %dx
	movw %dx, %ds
	movw %dx, %es
	movl %eax, user_ds
	movl $'K', %ebx
	cmpl $kstack_top - 20, %esp	/* EIP CS EFLAGS ESP SS */
	jne fail
	movl $'P', %ebx
	cmpl $ustack_top, 12(%esp)	/* the user's ESP */
	jne fail
	incl count_user
	movl $stack_top, %esp
	jmp back_from_user

user_code:
	ud2
on_de:	incl count_de
	addl $2, (%esp)		/* step over the divl */
	iret
on_sw:	incl count_sw
	cmpl $0, want_df
	je 1f
	orl $0x400, 8(%esp)	/* EFLAGS in the frame: EIP, CS, EFLAGS */
1:	iret

/* Stub N pushes N and jumps to the report; 16 bytes each. */
	.p2align 4
unexpected_stubs:
	.set vec, 0
	.rept 256
	pushl $vec
	jmp unexpected
	.p2align 4
	.set vec, vec + 1
	.endr

/* Print "prot32: vector N" (N in decimal) and power off. */
unexpected:
	movl $msg_vec, %esi
	call puts
	popl %eax
	movl $10, %ecx
	xorl %ebx, %ebx		/* digits pushed */
1:	xorl %edx, %edx
	divl %ecx
	pushl %edx
	incl %ebx
	testl %eax, %eax
	jnz 1b
2:	popl %eax
	addb $'0', %al
	call putc
	decl %ebx
	jnz 2b
	movb $'\n', %al
	call putc
	TINY_POWEROFF

	.section .rodata
msg_ok:	.asciz "prot32: ok\n"
msg_fail:
	.asciz "prot32: FAIL "
msg_vec:
	.asciz "prot32: vector "

	.data	/* the GDT is written: the TSS's base, its busy bit */
	.p2align 3
gdt:	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: code, 32-bit, flat, DPL 0 */
	.quad 0x00cf92000000ffff	/* 0x10: data, flat, DPL 0 */
	.quad 0x00cffa000000ffff	/* 0x18: code, 32-bit, flat, DPL 3 */
	.quad 0x00cff2000000ffff	/* 0x20: data, flat, DPL 3 */
	.quad 0x0000890000000067	/* 0x28: TSS, base set at run time */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
idt_desc:
	.word 256 * 8 - 1
	.long idt

count_bp:
	.long 0
count_ud:
	.long 0
count_de:
	.long 0
count_sw:
	.long 0
want_df:
	.long 0
count_user:
	.long 0
user_ds:
	.long 0xffff
mxcsr_abs:
	.long 0

	.bss
	.p2align 3
idt:	.skip 256 * 8
	.p2align 4
	.skip 4096
stack_top:
	.skip 4096
kstack_top:
	.skip 4096
ustack_top:
	.p2align 4
tss:	.skip 104

	.section .note.GNU-stack, "", @progbits
