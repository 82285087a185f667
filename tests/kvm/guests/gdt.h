/* gdt.h - the selectors of the runtime's GDT (laid out in crt0.S), for C
 * and assembly; in assembly also LOAD_DATA_SEGS. */
#ifndef TINY_GDT_H
#define TINY_GDT_H

#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18
#define SEL_UDATA (0x20 | 3)
#define SEL_UCODE64 (0x28 | 3)
#define SEL_TSS 0x30

#ifdef __ASSEMBLER__
/* DS, ES, SS, FS and GS: the flat data segment (clobbers %eax). */
.macro LOAD_DATA_SEGS
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
.endm
#endif

#endif
