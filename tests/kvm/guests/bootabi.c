/* bootabi - checks the PVH entry state against the boot ABI
 * (xen docs/misc/pvh.pandoc) and the start info the monitor passed:
 *   EBX -> hvm_start_info with magic 0x336ec578; CR0.PE = 1, CR0.PG = 0;
 *   CR4 = 0; EFLAGS.IF/TF/VM = 0; a memory map (version >= 1) whose RAM
 *   covers this image, 0x1000-0x9b000 (above it, up to the EBDA, an
 *   emulating host reserves the syscall shim's pages) and at least 16 MiB in all; an RSDP
 *   with a valid checksum at rsdp_paddr; .bss zeroed by the loader.
 * Expect: "bootabi: ok" (otherwise "bootabi: FAIL <what>" lines), status 0. */
#include "lib.h"

#define CR0_PE 0x1u
#define CR0_PG 0x80000000u

extern char __image_start[], __image_end[];
static volatile uint64_t bss_probe[256];
static int failures;

static void fail(const char *what)
{
	printf("bootabi: FAIL %s\n", what);
	failures++;
}

static bool ram_covers(const struct hvm_start_info *si, uint64_t start, uint64_t end)
{
	const struct hvm_memmap_table_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
	/* Walk forward: each RAM entry may extend the covered prefix. */
	for (bool progress = true; progress && start < end;) {
		progress = false;
		for (uint32_t i = 0; i < si->memmap_entries; i++) {
			if (e[i].type == HVM_MEMMAP_RAM && e[i].addr <= start && e[i].addr + e[i].size > start) {
				start = e[i].addr + e[i].size;
				progress = true;
			}
		}
	}
	return start >= end;
}

static void check_memmap(const struct hvm_start_info *si)
{
	if (si->version < 1) {
		fail("start info version 0 has no memory map");
		return;
	}
	if (!si->memmap_paddr || !si->memmap_entries || si->memmap_entries > 128 ||
	    si->memmap_paddr >= (1ull << 32)) {
		fail("memory map missing or implausible");
		return;
	}
	const struct hvm_memmap_table_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
	uint64_t ram = 0;
	printf("bootabi: memmap at 0x%lx, %u entries\n", (unsigned long)si->memmap_paddr, si->memmap_entries);
	for (uint32_t i = 0; i < si->memmap_entries; i++) {
		printf("bootabi:   0x%09lx-0x%09lx type %u\n", (unsigned long)e[i].addr,
		       (unsigned long)(e[i].addr + e[i].size - 1), e[i].type);
		if (e[i].type == HVM_MEMMAP_RAM)
			ram += e[i].size;
	}
	if (!ram_covers(si, (uintptr_t)__image_start, (uintptr_t)__image_end))
		fail("memory map: the kernel image is not in RAM");
	if (!ram_covers(si, 0x1000, 0x9b000))
		fail("memory map: 0x1000-0x9b000 is not RAM");
	if (ram < (16ull << 20))
		fail("memory map: less than 16 MiB of RAM");
}

static void check_rsdp(const struct hvm_start_info *si)
{
	const uint8_t *r = (const void *)(uintptr_t)si->rsdp_paddr;
	if (!si->rsdp_paddr || si->rsdp_paddr >= (1ull << 32)) {
		fail("rsdp_paddr is 0");
		return;
	}
	uint8_t sum = 0;
	for (int i = 0; i < 20; i++)
		sum += r[i];
	if (memcmp(r, "RSD PTR ", 8) || sum)
		fail("no valid RSDP at rsdp_paddr");
	else
		printf("bootabi: rsdp at 0x%lx revision %u\n", (unsigned long)si->rsdp_paddr, r[15]);
}

int main(void)
{
	printf("bootabi: ebx=0x%x cr0=0x%x cr4=0x%x eflags=0x%x cs=0x%x ds=0x%x\n", boot_entry_ebx,
	       boot_entry_cr0, boot_entry_cr4, boot_entry_eflags, boot_entry_cs, boot_entry_ds);
	if (!(boot_entry_cr0 & CR0_PE) || (boot_entry_cr0 & CR0_PG))
		fail("CR0: want PE=1 PG=0");
	if (boot_entry_cr4)
		fail("CR4: want all bits clear");
	if (boot_entry_eflags & (RFLAGS_IF | RFLAGS_TF | RFLAGS_VM))
		fail("EFLAGS: want IF=0 TF=0 VM=0");
	for (unsigned int i = 0; i < sizeof(bss_probe) / sizeof(bss_probe[0]); i++)
		if (bss_probe[i]) {
			fail(".bss not zeroed by the loader");
			break;
		}

	const struct hvm_start_info *si = start_info();
	if (!si) {
		fail("EBX does not point at hvm_start_info (magic)");
	} else {
		printf("bootabi: start info version %u flags 0x%x modules %u cmdline 0x%lx\n", si->version,
		       si->flags, si->nr_modules, (unsigned long)si->cmdline_paddr);
		check_memmap(si);
		check_rsdp(si);
	}
	if (!failures)
		puts("bootabi: ok\n");
	poweroff();
}
