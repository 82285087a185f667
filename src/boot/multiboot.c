/* multiboot.c - booting a multiboot (v1) kernel as QEMU's -kernel does
 * (the Multiboot Specification 0.6.96; QEMU hw/i386/multiboot.c): OS test
 * suites (kvm-unit-tests) and hobby kernels.
 *
 * What the kernel gets, and how it differs from QEMU:
 * - an ELF32 kernel is loaded by its program headers (p_paddr), its entry
 *   is e_entry (moved by p_paddr - p_vaddr when it lies in a segment whose
 *   two differ); with flag 16 set the header's a.out kludge addresses win,
 *   as in QEMU, whatever the file's format. ELF64 is refused, as QEMU
 *   does: kvm-unit-tests' x86_64 tests are objcopied to elf32-i386.
 * - everything loads at or above 1 MiB, in RAM below 4 GiB; QEMU's option
 *   ROM would also copy a kernel below 1 MiB, where cvisor keeps its boot
 *   data.
 * - modules follow the kernel, each page-aligned, in the order given; a
 *   module's string is "PATH ARGS" (QEMU's -initrd "PATH ARGS,PATH2").
 * - the information structure (flags: memory, boot device 0x8000ffff,
 *   command line, modules, memory map, loader name) is at 0x7000 and its
 *   strings at 0x8000, where QEMU puts them at 0x9500 and after the
 *   kernel: the spec lets the loader choose, and a kernel reads EBX.
 * - mem_lower and mem_upper come from cvisor's e820 map (mem_lower 639
 *   KiB, less on an emulating host that reserves the syscall shim's pages;
 *   mem_upper all RAM from 1 MiB to the PCI hole), where QEMU's come from
 *   SeaBIOS, which keeps the top 128 KiB of low RAM for itself.
 * - the video fields (flag 2) are ignored, as QEMU ignores them. */
#include "cvisor/boot.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#define MB_MAGIC 0x1BADB002u
#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_SEARCH 8192
#define MB_HEADER_LEN 32 /* up to entry_addr: the a.out kludge fields */
#define MB_HEADER_MAX 48 /* with the video fields: QEMU searches 8 KiB less this */
#define MB_FLAG_AOUT (1u << 16)
#define MBI_SIZE 88
#define MB_MOD_SIZE 16
#define MB_MMAP_SIZE 24 /* u32 size (20, itself excluded), u64 base, u64 len, u32 type */
#define MBI_MEMORY (1u << 0)
#define MBI_BOOTDEV (1u << 1)
#define MBI_CMDLINE (1u << 2)
#define MBI_MODS (1u << 3)
#define MBI_MMAP (1u << 6)
#define MBI_LOADER (1u << 9)
#define FOUR_GIB (1ULL << 32)
#define PAGE_UP(x) (((x) + 0xfffULL) & ~0xfffULL)

_Static_assert(LAYOUT_BOOT_PARAMS + MBI_SIZE <= LAYOUT_MB_MODS, "mbi overlaps its modules");
_Static_assert(LAYOUT_MB_MODS + BOOT_MAX_MODULES * MB_MOD_SIZE <= LAYOUT_PVH_MEMMAP,
	       "module list overlaps the memory map");
_Static_assert(LAYOUT_PVH_MEMMAP + E820_MAX * MB_MMAP_SIZE <= LAYOUT_CMDLINE,
	       "memory map overlaps the strings");

struct mb_header {
	size_t off; /* in the file */
	uint32_t flags;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

static bool is_bzimage(const uint8_t *k, size_t len)
{
	return len >= 0x206 && !memcmp(k + 0x202, "HdrS", 4);
}

/* The first header in the search window whose checksum is right, as
 * QEMU's load_multiboot looks for it (a magic with a wrong checksum is
 * passed over: the search goes on to the window's end, 8 KiB less the
 * longest header). -1 if none; then *bad is the first magic passed over,
 * or -1. */
static long find_magic(const uint8_t *k, size_t len, long *bad)
{
	size_t end = len < MB_SEARCH ? len : MB_SEARCH;

	*bad = -1;
	if (is_bzimage(k, len))
		return -1;
	for (size_t i = 0; i + 12 <= end && i < MB_SEARCH - MB_HEADER_MAX; i += 4) {
		if (cv_le32(k + i) != MB_MAGIC)
			continue;
		if ((uint32_t)(MB_MAGIC + cv_le32(k + i + 4) + cv_le32(k + i + 8)) == 0)
			return (long)i;
		if (*bad < 0)
			*bad = (long)i;
	}
	return -1;
}

bool boot_is_multiboot(const uint8_t *kernel, size_t len)
{
	long bad;

	return find_magic(kernel, len, &bad) >= 0;
}

static int read_header(const struct boot_image *img, struct mb_header *h, char *err, size_t errlen)
{
	long bad, at = find_magic(img->kernel, img->kernel_len, &bad);
	const uint8_t *p;

	/* Only a bad header: not another kind of kernel, a damaged one. */
	if (at < 0 && bad >= 0)
		return cv_errf(err, errlen, -ENOEXEC,
			       "multiboot header at offset %#lx has a wrong checksum (and no "
			       "other header in the first 8 KiB)",
			       (unsigned long)bad);
	if (at < 0)
		return -ENOEXEC;
	h->off = (size_t)at;
	p = img->kernel + h->off;
	h->flags = cv_le32(p + 4);
	if (!(h->flags & MB_FLAG_AOUT))
		return 0;
	if (img->kernel_len - h->off < MB_HEADER_LEN)
		return cv_errf(err, errlen, -ENOEXEC,
			       "multiboot header at offset %#zx is cut short by the file's end",
			       h->off);
	h->header_addr = cv_le32(p + 12);
	h->load_addr = cv_le32(p + 16);
	h->load_end_addr = cv_le32(p + 20);
	h->bss_end_addr = cv_le32(p + 24);
	h->entry_addr = cv_le32(p + 28);
	return 0;
}

/* Flag 16: the file from header_addr's offset back to load_addr goes to
 * load_addr, up to load_end_addr (or the file's end), then zeros to
 * bss_end_addr. */
static int load_aout(const struct guest_mem *gm, const struct boot_image *img,
		     const struct mb_header *h, uint64_t *kernel_end, uint64_t *entry, char *err,
		     size_t errlen)
{
	uint64_t back = (uint64_t)h->header_addr - h->load_addr, load_len, mem_len;
	size_t text_off;
	uint8_t *dst;

	if (h->header_addr < h->load_addr || back > h->off)
		return cv_errf(err, errlen, -ENOEXEC,
			       "multiboot header_addr %#x and load_addr %#x do not fit the file",
			       h->header_addr, h->load_addr);
	text_off = h->off - back;
	if (h->load_end_addr) {
		if (h->load_end_addr < h->load_addr ||
		    h->load_end_addr - h->load_addr > img->kernel_len - text_off)
			return cv_errf(err, errlen, -ENOEXEC,
				       "multiboot load_end_addr %#x is past the file's end",
				       h->load_end_addr);
		load_len = h->load_end_addr - h->load_addr;
	} else {
		load_len = img->kernel_len - text_off;
	}
	mem_len = load_len;
	if (h->bss_end_addr) {
		if (h->bss_end_addr < h->load_addr + load_len)
			return cv_errf(err, errlen, -ENOEXEC,
				       "multiboot bss_end_addr %#x is below the loaded end",
				       h->bss_end_addr);
		mem_len = h->bss_end_addr - h->load_addr;
	}
	if (!mem_len)
		return cv_errf(err, errlen, -ENOEXEC, "multiboot kernel has nothing to load");
	dst = guest_mem_ptr(gm, h->load_addr, mem_len);
	if (h->load_addr < LAYOUT_HIMEM || !dst || h->load_addr + mem_len > FOUR_GIB)
		return cv_errf(err, errlen, -E2BIG,
			       "multiboot kernel at %#x+%#llx is outside guest memory (or below "
			       "1 MiB, where the boot data lives)",
			       h->load_addr, (unsigned long long)mem_len);
	memcpy(dst, img->kernel + text_off, load_len);
	memset(dst + load_len, 0, mem_len - load_len);
	*kernel_end = h->load_addr + mem_len;
	*entry = h->entry_addr;
	return 0;
}

static int load_elf32(const struct guest_mem *gm, const struct boot_image *img,
		      uint64_t *kernel_end, uint64_t *entry, char *err, size_t errlen)
{
	struct boot_elf l;
	struct boot_phdr ph;
	int r = boot_elf_header(img, &l, err, errlen);

	if (r == -ENOEXEC && !err[0])
		return cv_errf(
			err, errlen, -ENOEXEC,
			"multiboot kernel is neither ELF nor has the a.out kludge (flag 16)");
	if (r)
		return r;
	if (l.is64)
		return cv_errf(err, errlen, -ENOEXEC,
			       "multiboot kernel is ELF64: give a 32-bit one (objcopy -O "
			       "elf32-i386), as QEMU asks");
	if ((r = boot_elf_load(gm, img, &l, FOUR_GIB, kernel_end, err, errlen)))
		return r;
	*entry = l.entry;
	for (unsigned int i = 0; i < l.phnum; i++) {
		if (boot_elf_phdr(img, &l, i, &ph) || ph.type != PT_LOAD)
			continue;
		if (l.entry >= ph.vaddr && l.entry - ph.vaddr < ph.memsz) {
			*entry = ph.paddr + (l.entry - ph.vaddr);
			break;
		}
	}
	return 0;
}

/* A NUL-terminated string into the string area; its address, 0 if full. */
static uint32_t put_string(const struct guest_mem *gm, uint64_t *at, const char *s)
{
	size_t n = strlen(s) + 1;
	uint64_t where = *at;

	if (n > LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX - where || guest_mem_write(gm, where, s, n))
		return 0;
	*at += n;
	return (uint32_t)where;
}

/* The modules, page-aligned from `from`, and their list entries. */
static int place_modules(const struct guest_mem *gm, const struct boot_image *img, uint64_t from,
			 uint64_t *strings, char *err, size_t errlen)
{
	uint64_t at = PAGE_UP(from),
		 top = gm->regions[0].size < FOUR_GIB ? gm->regions[0].size : FOUR_GIB;

	if (img->nmodules > BOOT_MAX_MODULES)
		return cv_errf(err, errlen, -E2BIG, "%u multiboot modules: at most %d",
			       img->nmodules, BOOT_MAX_MODULES);
	for (unsigned int i = 0; i < img->nmodules; i++) {
		const struct boot_module *m = &img->modules[i];
		uint8_t ent[MB_MOD_SIZE] = { 0 };
		uint32_t str = put_string(gm, strings, m->cmdline);

		if (!str)
			return cv_errf(err, errlen, -E2BIG,
				       "command lines (kernel and modules) longer than %d bytes",
				       LAYOUT_CMDLINE_MAX - 1);
		if (at > top || m->len > top - at)
			return cv_errf(
				err, errlen, -E2BIG,
				"module %s (%zu bytes) does not fit in guest memory after the "
				"kernel (try a larger --memory)",
				m->cmdline, m->len);
		if (m->len && guest_mem_write(gm, at, m->data, m->len))
			return -E2BIG;
		cv_put_le32(ent, (uint32_t)at);
		cv_put_le32(ent + 4, (uint32_t)(at + m->len));
		cv_put_le32(ent + 8, str);
		if (guest_mem_write(gm, LAYOUT_MB_MODS + i * MB_MOD_SIZE, ent, sizeof(ent)))
			return -E2BIG;
		at = PAGE_UP(at + m->len);
	}
	return 0;
}

static int write_mbi(const struct guest_mem *gm, const struct boot_image *img, uint32_t cmdline,
		     uint32_t loader)
{
	uint8_t mbi[MBI_SIZE] = { 0 }, mmap[E820_MAX * MB_MMAP_SIZE] = { 0 };
	struct e820_entry e820[E820_MAX];
	unsigned int n = boot_e820(gm, img->low_ram_end, e820, E820_MAX);
	uint64_t upper = 0;

	for (unsigned int i = 0; i < n; i++) {
		uint8_t *m = mmap + i * MB_MMAP_SIZE;

		cv_put_le32(m, MB_MMAP_SIZE - 4);
		cv_put_le64(m + 4, e820[i].addr);
		cv_put_le64(m + 12, e820[i].size);
		cv_put_le32(m + 20, e820[i].type);
		if (e820[i].addr == LAYOUT_HIMEM && e820[i].type == E820_RAM)
			upper = e820[i].size;
	}
	cv_put_le32(mbi, MBI_MEMORY | MBI_BOOTDEV | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_LOADER);
	cv_put_le32(mbi + 4, (uint32_t)(e820[0].size >> 10));
	cv_put_le32(mbi + 8, (uint32_t)(upper >> 10));
	cv_put_le32(mbi + 12, 0x8000ffff); /* BIOS drive 0x80, as QEMU says */
	cv_put_le32(mbi + 16, cmdline);
	cv_put_le32(mbi + 20, img->nmodules);
	cv_put_le32(mbi + 24, LAYOUT_MB_MODS);
	cv_put_le32(mbi + 44, n * MB_MMAP_SIZE);
	cv_put_le32(mbi + 48, LAYOUT_PVH_MEMMAP);
	cv_put_le32(mbi + 64, loader);
	if (guest_mem_write(gm, LAYOUT_PVH_MEMMAP, mmap, n * MB_MMAP_SIZE) ||
	    guest_mem_write(gm, LAYOUT_BOOT_PARAMS, mbi, sizeof(mbi)))
		return -E2BIG;
	return 0;
}

int boot_load_multiboot(const struct guest_mem *gm, const struct boot_image *img,
			struct boot_entry *entry, char *err, size_t errlen)
{
	struct mb_header h = { 0 };
	uint64_t kernel_end = 0, rip = 0, strings = LAYOUT_CMDLINE;
	uint32_t cmdline, loader;
	int r;

	if ((r = read_header(img, &h, err, errlen)))
		return r;
	r = (h.flags & MB_FLAG_AOUT) ? load_aout(gm, img, &h, &kernel_end, &rip, err, errlen)
				     : load_elf32(gm, img, &kernel_end, &rip, err, errlen);
	if (r)
		return r;
	if (rip >= FOUR_GIB || !guest_mem_ptr(gm, rip, 1))
		return cv_errf(err, errlen, -ENOEXEC,
			       "multiboot entry %#llx is outside guest memory",
			       (unsigned long long)rip);
	if (!(cmdline = put_string(gm, &strings, img->cmdline)))
		return cv_errf(err, errlen, -E2BIG, "command line longer than %d bytes",
			       LAYOUT_CMDLINE_MAX - 1);
	if ((r = place_modules(gm, img, kernel_end, &strings, err, errlen)))
		return r;
	if (!(loader = put_string(gm, &strings, "cvisor")) || write_mbi(gm, img, cmdline, loader))
		return cv_errf(err, errlen, -E2BIG,
			       "command lines (kernel and modules) longer than %d bytes",
			       LAYOUT_CMDLINE_MAX - 1);
	*entry = (struct boot_entry){ .mode = BOOT_MULTIBOOT,
				      .rip = rip,
				      .arg = LAYOUT_BOOT_PARAMS };
	return 0;
}
