/* boot.h - loading a Linux bzImage, a PVH ELF or a multiboot (v1) kernel
 * into guest memory. */
#ifndef CVISOR_BOOT_H
#define CVISOR_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/guest_mem.h"
#include "cvisor/util.h"

/* Fixed guest-physical layout below 1 MiB. 0x0-0x1000 stays zero (real-mode
 * IVT), the boot data sits in 0x6000-0x10000, the BIOS area holds the
 * firmware tables, and the kernel goes at 1 MiB or its own p_paddr. */
#define LAYOUT_GDT 0x6000
#define LAYOUT_BOOT_PARAMS 0x7000 /* Linux zero page, or hvm_start_info */
#define LAYOUT_PVH_MODLIST 0x7040
#define LAYOUT_PVH_MEMMAP 0x7100
#define LAYOUT_MB_MODS 0x7060 /* multiboot: mbi at BOOT_PARAMS, mmap at PVH_MEMMAP */
#define LAYOUT_CMDLINE 0x8000
#define LAYOUT_CMDLINE_MAX 0x1000
#define LAYOUT_PML4 0x9000 /* then the PDPT at 0xa000 and 4 PDs at 0xb000 */
#define LAYOUT_EBDA 0x9fc00
#define LAYOUT_BIOS 0xe0000 /* reserved up to 1 MiB */
#define LAYOUT_ACPI 0xe0000
#define LAYOUT_ACPI_MAX 0x10000
#define LAYOUT_MPTABLE 0xf0000
#define LAYOUT_MPTABLE_MAX 0x10000
#define LAYOUT_HIMEM 0x100000
#define LAYOUT_IOAPIC 0xfec00000U
#define LAYOUT_LAPIC 0xfee00000U

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX 8

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* How the first vCPU enters the guest. */
enum boot_mode {
	BOOT_LINUX64,	/* 64-bit boot protocol: long mode, RSI = boot_params */
	BOOT_PVH32,	/* PVH: 32-bit protected mode, paging off, EBX = start_info */
	BOOT_FIRMWARE,	/* the reset vector: real mode, CS F000 base FFFF0000, IP FFF0 */
	BOOT_MULTIBOOT, /* as PVH32, and EAX = 0x2BADB002 (multiboot 0.6.96, 3.2) */
};

/* Multiboot modules a kernel may be given (QEMU's -initrd "a,b"). */
#define BOOT_MAX_MODULES 8

struct boot_module {
	const uint8_t *data;
	size_t len;
	const char *cmdline; /* the module's string: "PATH ARGS", as QEMU gives */
};

struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t arg;
};

struct boot_image {
	const uint8_t *kernel;
	size_t kernel_len;
	const uint8_t *initrd; /* NULL if none */
	size_t initrd_len;
	const char *cmdline;
	uint64_t rsdp_gpa; /* 0 if no ACPI */
	/* A multiboot kernel's modules (initrd is then unused). */
	const struct boot_module *modules;
	unsigned int nmodules;
	/* RAM below the EBDA ends here, the rest up to the EBDA is reserved
	 * (the syscall shim's pages); 0 for LAYOUT_EBDA. */
	uint64_t low_ram_end;
};

/* The e820 map for this memory layout: RAM below low_ram_end (0 for the
 * EBDA) and reserved from there, the BIOS area reserved, RAM from 1 MiB,
 * and RAM above 4 GiB. Returns the entry count. */
unsigned int boot_e820(const struct guest_mem *gm, uint64_t low_ram_end, struct e820_entry *e,
		       unsigned int max);

/* Identity-map the first 4 GiB with 2 MiB pages at LAYOUT_PML4 and write a
 * flat GDT at LAYOUT_GDT (code 0x10 64-bit, code 0x08 32-bit, data 0x18). */
int boot_setup_tables(const struct guest_mem *gm) CV_MUST;

/* Load the kernel (a bzImage, or an ELF with a XEN_ELFNOTE_PHYS32_ENTRY
 * note), the initrd and the command line. Validates every header field it
 * uses against the file and the guest's RAM. On error returns -EINVAL,
 * -E2BIG or -ENOEXEC and writes one user-facing line into err. */
int boot_load(const struct guest_mem *gm, const struct boot_image *img, struct boot_entry *entry,
	      char *err, size_t errlen) CV_MUST;

/* The PVH half of boot_load: -ENOEXEC (and no message) if the file is not an
 * ELF with a PVH note. */
int boot_load_pvh(const struct guest_mem *gm, const struct boot_image *img,
		  struct boot_entry *entry, char *err, size_t errlen) CV_MUST;

/* The bzImage half of boot_load (linux.c), tried when the file is not a
 * PVH ELF: a message in err for anything it refuses. */
int boot_load_bzimage(const struct guest_mem *gm, const struct boot_image *img,
		      struct boot_entry *entry, char *err, size_t errlen) CV_MUST;

/* Whether the file is a multiboot (v1) kernel: the magic 0x1BADB002 in its
 * first 8 KiB, 4-byte aligned, and not a bzImage (QEMU's order). A header
 * with a wrong checksum counts, so that boot_load_multiboot refuses it. */
bool boot_is_multiboot(const uint8_t *kernel, size_t len);

/* The multiboot half of boot_load (multiboot.c): -ENOEXEC (and no message)
 * if the file is not multiboot. Loads an ELF32 kernel by its program
 * headers, or by its header's a.out kludge addresses (flag 16), places the
 * modules page-aligned after it, and writes the multiboot information
 * (memory, boot device, command lines, modules, memory map, loader name)
 * below 1 MiB. img->cmdline is given to the kernel as it is. */
int boot_load_multiboot(const struct guest_mem *gm, const struct boot_image *img,
			struct boot_entry *entry, char *err, size_t errlen) CV_MUST;

/* An ELF kernel's program headers (pvh.c), shared by the PVH and multiboot
 * loaders. */
struct boot_elf {
	bool is64;
	uint64_t entry;
	uint64_t phoff;
	uint16_t phentsize, phnum;
};

/* A program header, whatever the ELF class. */
struct boot_phdr {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

/* Check the ELF header of an x86 kernel: -ENOEXEC and no message when the
 * file is not ELF, -ENOEXEC with a message when it is not for x86 or its
 * program header count is out of range. */
int boot_elf_header(const struct boot_image *img, struct boot_elf *l, char *err,
		    size_t errlen) CV_MUST;

/* Program header i, checked to lie in the file. 0 or -ENOEXEC. */
int boot_elf_phdr(const struct boot_image *img, const struct boot_elf *l, unsigned int i,
		  struct boot_phdr *ph) CV_MUST;

/* Copy every PT_LOAD segment to its physical address, at or above 1 MiB
 * and inside guest RAM (below `limit`); *kernel_end is past the highest. */
int boot_elf_load(const struct guest_mem *gm, const struct boot_image *img,
		  const struct boot_elf *l, uint64_t limit, uint64_t *kernel_end, char *err,
		  size_t errlen) CV_MUST;

/* Place the initrd as high as possible below `limit` and above `floor`.
 * Returns its address, or 0 if it does not fit. */
uint64_t boot_place_initrd(const struct guest_mem *gm, size_t len, uint64_t floor, uint64_t limit);

#endif
