/* pvh_note.h - the ELF note that makes a guest bootable through the Xen PVH
 * entry (xen/include/public/elfnote.h: XEN_ELFNOTE_PHYS32_ENTRY = 18, name
 * "Xen", desc = 32-bit physical address of the 32-bit protected-mode entry).
 * Assembler only: included by crt0.S and the stand-alone .S guests. */
#ifndef TINY_PVH_NOTE_H
#define TINY_PVH_NOTE_H

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* QEMU's loader reads the desc as a size_t (8 bytes), so an empty note
 * (namesz = descsz = type = 0) follows: it zeroes the upper half for QEMU
 * and is still a well-formed note for any loader that walks the list. */
.macro PVH_NOTE entry
	.pushsection .note.pvh, "a", @note
	.p2align 2
	.long 4, 4, XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long \entry
	.long 0, 0, 0
	.popsection
.endm

/* PM1a_CNT: SLP_TYP = 5 (the \_S5 value the monitor's DSDT advertises)
 * with SLP_EN (ACPI 6.5 4.8.3.2.1). */
#define TINY_PM1A_CNT_PORT 0x604
#define TINY_PM1A_POWEROFF ((5 << 10) | (1 << 13))

/* Power off through PM1a_CNT; should the write return, halt for good. */
.macro TINY_POWEROFF
	movw $TINY_PM1A_CNT_PORT, %dx
	movw $TINY_PM1A_POWEROFF, %ax
	outw %ax, %dx
1:	cli
	hlt
	jmp 1b
.endm

#endif
