/* crt0.S - tiny guest runtime: PVH entry, 32-bit -> long mode, GDT, IDT stubs.
 *
 * PVH entry state (xen docs/misc/pvh.pandoc): 32-bit protected mode, paging
 * off, flat CS/DS/ES/SS, EBX = hvm_start_info, IF = 0, no usable stack. We
 * record what we were given (for the bootabi guest), load our own GDT, map
 * the first 4 GiB with 2 MiB pages (static tables, no setup loop: the host
 * may emulate every instruction) and call main() in 64-bit mode.
 *
 * APs arrive at ap_entry32 from the smp trampoline (32-bit, flat, our GDT),
 * take a stack with lock xadd and call ap_main(). */
#include "gdt.h"
#include "pvh_note.h"

#define BOOT_STACK_SIZE 16384
#define AP_STACK_SIZE 8192
#define MAX_CPUS 32
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20

	PVH_NOTE _start

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	/* Record the entry state before touching it. */
	movl %ebx, boot_entry_ebx
	movl %esp, boot_entry_esp
	movl %cr0, %eax
	movl %eax, boot_entry_cr0
	movl %cr4, %eax
	movl %eax, boot_entry_cr4
	movl %cs, %eax
	movl %eax, boot_entry_cs
	movl %ds, %eax
	movl %eax, boot_entry_ds
	movl $boot_stack_top, %esp
	pushfl
	popl %eax
	movl %eax, boot_entry_eflags
	cli
	cld
	lgdt gdt_desc
	ljmp $SEL_CODE32, $1f
1:	LOAD_DATA_SEGS
	xorl %edi, %edi			/* 0: BSP */
	jmp enter_long_mode

	.globl ap_entry32
ap_entry32:
	cli
	cld
	movl $AP_STACK_SIZE, %eax
	lock xaddl %eax, ap_stack_off
	cmpl $(AP_STACK_SIZE * (MAX_CPUS - 1)), %eax
	jae 2f				/* more APs than stacks: park */
	addl $(ap_stacks + AP_STACK_SIZE), %eax
	movl %eax, %esp
	movl $1, %edi			/* 1: AP */
	jmp enter_long_mode
2:	hlt
	jmp 2b

/* %esp = stack, %edi = 0 for the BSP, 1 for an AP. */
enter_long_mode:
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $SEL_CODE64, $long_mode

	.code64
long_mode:
	LOAD_DATA_SEGS
	movl %esp, %esp			/* zero-extend: upper half is undefined */
	lidt idt_desc(%rip)
	testl %edi, %edi
	jnz 1f
	call runtime_init
	call main
	call poweroff
1:	call ap_main
2:	cli
	hlt
	jmp 2b

/* Exception and interrupt stubs: one per vector, all into isr_common,
 * which builds a struct trap_frame (lib.h) and calls trap_dispatch(). */
	.text
	.altmacro
.macro ISR vec
isr\vec:
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq $0			/* no CPU error code for this vector */
	.endif
	pushq $\vec
	jmp isr_common
.endm
.macro ISR_ADDR vec
	.quad isr\vec
.endm

	.set vec, 0
	.rept 256
	ISR %vec
	.set vec, vec + 1
	.endr

isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call trap_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp			/* vector, error code */
	iretq

/* int kjmp_set(struct kjmp *) / void kjmp_go(struct kjmp *, int):
 * setjmp/longjmp for ring 0, used to leave a trap handler for good. */
	.globl kjmp_set
kjmp_set:
	movq %rbx, 0(%rdi)
	movq %rbp, 8(%rdi)
	movq %r12, 16(%rdi)
	movq %r13, 24(%rdi)
	movq %r14, 32(%rdi)
	movq %r15, 40(%rdi)
	leaq 8(%rsp), %rax
	movq %rax, 48(%rdi)
	movq (%rsp), %rax
	movq %rax, 56(%rdi)
	xorl %eax, %eax
	ret

	.globl kjmp_go
kjmp_go:
	movq 0(%rdi), %rbx
	movq 8(%rdi), %rbp
	movq 16(%rdi), %r12
	movq 24(%rdi), %r13
	movq 32(%rdi), %r14
	movq 40(%rdi), %r15
	movq 48(%rdi), %rsp
	movl %esi, %eax
	testl %eax, %eax
	jnz 1f
	incl %eax
1:	jmp *56(%rdi)

	.section .rodata
	.p2align 3
	.globl isr_table
isr_table:
	.set vec, 0
	.rept 256
	ISR_ADDR %vec
	.set vec, vec + 1
	.endr
	.noaltmacro

	.data
	.p2align 4
	/* Layout shared with lib.h (SEL_*): STAR uses 0x08 for syscall and
	 * 0x18 as the sysret base (SS = 0x20|3, CS64 = 0x28|3). */
	.globl gdt
gdt:
	.quad 0				/* 0x00 null */
	.quad 0x00af9a000000ffff	/* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff	/* 0x10 kernel data */
	.quad 0x00cf9a000000ffff	/* 0x18 kernel code, 32-bit */
	.quad 0x00cff2000000ffff	/* 0x20 user data (DPL 3) */
	.quad 0x00affa000000ffff	/* 0x28 user code, 64-bit (DPL 3) */
	.quad 0, 0			/* 0x30 TSS, filled by tss_install() */
gdt_end:
	.if gdt_end - gdt != 64
	.error "smp_tramp.S hard-codes a GDT limit of 63"
	.endif
	.p2align 3
	/* The same pseudo-descriptor serves lgdt in 32- and 64-bit mode. */
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt
	.p2align 3
	.globl idt_desc
idt_desc:
	.word 256 * 16 - 1
	.quad idt
	.p2align 2
	.globl ap_stack_off
ap_stack_off:
	.long 0
	.globl boot_entry_ebx, boot_entry_esp, boot_entry_cr0, boot_entry_cr4
	.globl boot_entry_eflags, boot_entry_cs, boot_entry_ds
boot_entry_ebx:		.long 0
boot_entry_esp:		.long 0
boot_entry_cr0:		.long 0
boot_entry_cr4:		.long 0
boot_entry_eflags:	.long 0
boot_entry_cs:		.long 0
boot_entry_ds:		.long 0

	/* Identity map of 0-4 GiB with 2 MiB pages, user-accessible so the
	 * ring3 guest can run anywhere; 3-4 GiB (LAPIC, IOAPIC, MMIO holes)
	 * is uncached (PCD|PWT). */
	.section .data.pagetables, "aw"
	.p2align 12
	.globl pml4
pml4:
	.quad pdpt + 0x7
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + 0x7
	.quad pd + 0x1000 + 0x7
	.quad pd + 0x2000 + 0x7
	.quad pd + 0x3000 + 0x7
	.fill 508, 8, 0
pd:
	.set pg, 0
	.rept 2048
	.if pg >= 1536
	.quad (pg << 21) | 0x9f		/* P RW US PWT PCD PS */
	.else
	.quad (pg << 21) | 0x87		/* P RW US PS */
	.endif
	.set pg, pg + 1
	.endr

	.bss
	.p2align 12
	.globl idt
idt:
	.skip 256 * 16
	.p2align 4
boot_stack:
	.skip BOOT_STACK_SIZE
boot_stack_top:
	.p2align 4
ap_stacks:
	.skip AP_STACK_SIZE * (MAX_CPUS - 1)

	.section .note.GNU-stack, "", @progbits
