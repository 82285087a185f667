/* crt.S - the multiboot test kernels' start (in the manner of
 * kvm-unit-tests' x86/cstart.S, our own code): the multiboot header, a
 * flat GDT of our own (the loader's GDTR is not to be trusted, spec 3.2),
 * a stack, then mb_main(EAX magic, EBX info). Also the exception stubs
 * (vectors 0-31, each pushes its number and an error code if the CPU did
 * not), and the AP trampoline mb_main copies below 1 MiB: real mode at
 * CS = vector << 8, to flat 32-bit protected mode, to ap_main on a stack of
 * its own. */
#define MB_MAGIC 0x1BADB002
/* page-aligned modules, memory information; built with MB_AOUT, also the
 * a.out kludge (flag 16): the header's addresses say where the file goes,
 * and the kernel is a flat binary (objcopy -O binary). */
#ifdef MB_AOUT
#define MB_FLAGS 0x10003
#else
#define MB_FLAGS 0x3
#endif
#define CODE_SEL 0x08
#define DATA_SEL 0x10
#define STACK 4096
#define MAX_CPUS 16

	.section .text.multiboot, "ax"
	.code32
	.p2align 2
mb_header:
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
#ifdef MB_AOUT
	.long mb_header, __load_start, __load_end, __bss_end, _start
#endif

	.globl _start
_start:
	cli
	lgdt gdt_desc
	ljmp $CODE_SEL, $1f
1:	movw $DATA_SEL, %cx
	movw %cx, %ds
	movw %cx, %es
	movw %cx, %fs
	movw %cx, %gs
	movw %cx, %ss
	movl $stacks + STACK, %esp
	pushl %ebx
	pushl %eax
	call mb_main
2:	cli
	hlt
	jmp 2b

/* Vectors 0-31: a stub each, 16 bytes apart. */
	.p2align 4
	.globl exc_stubs
exc_stubs:
	vec = 0
	.rept 32
	.p2align 4
	.if (vec == 8 || (vec >= 10 && vec <= 14) || vec == 17)
	pushl $vec
	.else
	pushl $0
	pushl $vec
	.endif
	jmp exc_common
	vec = vec + 1
	.endr

exc_common:
	pusha
	pushl %esp			/* struct exc_frame * */
	call exc_handler
	addl $4, %esp
	popa
	addl $8, %esp			/* vector and error code */
	iret

/* The AP trampoline: position independent in real mode (its base from
 * CS), then absolute addresses in protected mode. */
	.code16
	.globl tramp_start, tramp_end
tramp_start:
	cli
	movw %cs, %ax
	movw %ax, %ds
	xorl %ebx, %ebx
	movw %ax, %bx
	shll $4, %ebx
	lgdtl (tramp_gdtr - tramp_start)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $CODE_SEL, $ap_start32
	.p2align 2
tramp_gdtr:
	.word gdt_end - gdt - 1
	.long gdt
tramp_end:

	.code32
ap_start32:
	movw $DATA_SEL, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %fs
	movw %ax, %gs
	movw %ax, %ss
	movl $1, %eax
	lock xaddl %eax, ap_next	/* this AP's stack: 1, 2, ... */
	cmpl $MAX_CPUS, %eax
	jae 2b
	incl %eax
	shll $12, %eax
	addl $stacks, %eax
	movl %eax, %esp
	call ap_main
	jmp 2b

	.data
	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	/* 0x08: code, flat, 32-bit */
	.quad 0x00cf93000000ffff	/* 0x10: data, flat */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
ap_next:
	.long 0

	.bss
	.p2align 12
stacks:
	.skip STACK * (MAX_CPUS + 1)

	.section .note.GNU-stack, "", @progbits
