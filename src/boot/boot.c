/* boot.c - what every kernel format shares: the dispatch between
 * multiboot (multiboot.c), PVH (pvh.c) and bzImage (linux.c), the e820
 * map, the initrd's place, and the identity page tables and GDT for the
 * 64-bit entry. */
#include "cvisor/boot.h"

#include <errno.h>
#include <string.h>

unsigned int boot_e820(const struct guest_mem *gm, uint64_t low_ram_end, struct e820_entry *e,
		       unsigned int max)
{
	unsigned int n = 0;
	const struct guest_mem_region *low = &gm->regions[0];

	if (max < 4)
		return 0;
	if (!low_ram_end || low_ram_end > LAYOUT_EBDA)
		low_ram_end = LAYOUT_EBDA;
	e[n++] = (struct e820_entry){ 0, low_ram_end, E820_RAM };
	/* The EBDA (and what the monitor reserved below it), and the BIOS
	 * area that holds the ACPI and MP tables. */
	e[n++] = (struct e820_entry){ low_ram_end, 0xa0000 - low_ram_end, E820_RESERVED };
	e[n++] = (struct e820_entry){ LAYOUT_BIOS, LAYOUT_HIMEM - LAYOUT_BIOS, E820_RESERVED };
	if (low->size > LAYOUT_HIMEM)
		e[n++] = (struct e820_entry){ LAYOUT_HIMEM, low->size - LAYOUT_HIMEM, E820_RAM };
	for (unsigned int i = 1; i < gm->nr && n < max; i++)
		e[n++] = (struct e820_entry){ gm->regions[i].gpa, gm->regions[i].size, E820_RAM };
	return n;
}

int boot_setup_tables(const struct guest_mem *gm)
{
	uint64_t *pml4 = guest_mem_ptr(gm, LAYOUT_PML4, 0x1000);
	uint64_t *pdpt = guest_mem_ptr(gm, LAYOUT_PML4 + 0x1000, 0x1000);
	uint64_t *pd = guest_mem_ptr(gm, LAYOUT_PML4 + 0x2000, 4 * 0x1000);
	uint64_t *gdt = guest_mem_ptr(gm, LAYOUT_GDT, 4 * sizeof(uint64_t));

	if (!pml4 || !pdpt || !pd || !gdt)
		return -EFAULT;
	memset(pml4, 0, 0x1000);
	memset(pdpt, 0, 0x1000);
	pml4[0] = (LAYOUT_PML4 + 0x1000) | 0x3; /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PML4 + 0x2000 + i * 0x1000) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
	/* The boot protocol's __BOOT_CS (0x10) and __BOOT_DS (0x18); 0x08 is
	 * the flat 32-bit code segment PVH entry uses. */
	gdt[0] = 0;
	gdt[1] = 0x00cf9b000000ffffULL;
	gdt[2] = 0x00af9b000000ffffULL;
	gdt[3] = 0x00cf93000000ffffULL;
	return 0;
}

uint64_t boot_place_initrd(const struct guest_mem *gm, size_t len, uint64_t floor, uint64_t limit)
{
	uint64_t top = gm->regions[0].size, addr;

	if (limit < top)
		top = limit;
	if (!len || len > top)
		return 0;
	addr = (top - len) & ~0xfffULL;
	if (addr < floor)
		return 0;
	return addr;
}

int boot_load(const struct guest_mem *gm, const struct boot_image *img, struct boot_entry *entry,
	      char *err, size_t errlen)
{
	int r;

	err[0] = '\0';
	if (!guest_mem_ptr(gm, 0, LAYOUT_HIMEM))
		return cv_errf(err, errlen, -E2BIG, "guest memory too small");
	if (boot_setup_tables(gm))
		return cv_errf(err, errlen, -E2BIG, "guest memory too small for page tables");
	r = boot_load_multiboot(gm, img, entry, err, errlen);
	if (r != -ENOEXEC || err[0])
		return r;
	r = boot_load_pvh(gm, img, entry, err, errlen);
	if (r != -ENOEXEC || err[0])
		return r;
	return boot_load_bzimage(gm, img, entry, err, errlen);
}
