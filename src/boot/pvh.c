/* pvh.c - booting an ELF kernel through its PVH entry (the Xen note
 * XEN_ELFNOTE_PHYS32_ENTRY) with struct hvm_start_info, as in Xen's
 * public/arch-x86/hvm/start_info.h. Skips a bzImage's decompressor. */
#include "cvisor/boot.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578
#define HVM_START_INFO_SIZE 56
#define HVM_MODLIST_ENTRY_SIZE 32
#define HVM_MEMMAP_ENTRY_SIZE 24
#define PVH_MAX_PHDRS 64

int boot_elf_phdr(const struct boot_image *img, const struct boot_elf *l, unsigned int i,
		  struct boot_phdr *ph)
{
	uint64_t off = l->phoff + (uint64_t)i * l->phentsize;

	if (l->is64) {
		Elf64_Phdr p;

		if (l->phentsize < sizeof(p) || l->phoff > img->kernel_len ||
		    off > img->kernel_len - sizeof(p))
			return -ENOEXEC;
		memcpy(&p, img->kernel + off, sizeof(p));
		*ph = (struct boot_phdr){ p.p_type,  p.p_offset, p.p_vaddr,
					  p.p_paddr, p.p_filesz, p.p_memsz };
	} else {
		Elf32_Phdr p;

		if (l->phentsize < sizeof(p) || l->phoff > img->kernel_len ||
		    off > img->kernel_len - sizeof(p))
			return -ENOEXEC;
		memcpy(&p, img->kernel + off, sizeof(p));
		*ph = (struct boot_phdr){ p.p_type,  p.p_offset, p.p_vaddr,
					  p.p_paddr, p.p_filesz, p.p_memsz };
	}
	if (ph->offset > img->kernel_len || ph->filesz > img->kernel_len - ph->offset)
		return -ENOEXEC;
	return 0;
}

/* Find the PVH entry in a PT_NOTE segment; 1 if found. Note records are
 * 4-byte aligned name and descriptor after a 12-byte header (ELF gABI). */
static int find_pvh_note(const uint8_t *p, uint64_t len, uint64_t *entry)
{
	uint64_t pos = 0;

	while (len - pos >= 12) {
		uint32_t namesz, descsz, type;
		uint64_t name_len, desc_len;

		memcpy(&namesz, p + pos, 4);
		memcpy(&descsz, p + pos + 4, 4);
		memcpy(&type, p + pos + 8, 4);
		name_len = ((uint64_t)namesz + 3) & ~3ULL;
		desc_len = ((uint64_t)descsz + 3) & ~3ULL;
		pos += 12;
		if (name_len > len - pos || desc_len > len - pos - name_len)
			return 0;
		if (namesz == 4 && !memcmp(p + pos, "Xen", 4) && type == XEN_ELFNOTE_PHYS32_ENTRY &&
		    (descsz == 4 || descsz == 8)) {
			uint64_t v = 0;

			memcpy(&v, p + pos + name_len, descsz);
			*entry = v;
			return 1;
		}
		pos += name_len + desc_len;
	}
	return 0;
}

static int write_start_info(const struct guest_mem *gm, const struct boot_image *img,
			    uint64_t initrd_at)
{
	uint8_t *si = guest_mem_ptr(gm, LAYOUT_BOOT_PARAMS, HVM_START_INFO_SIZE);
	uint8_t *mod = guest_mem_ptr(gm, LAYOUT_PVH_MODLIST, HVM_MODLIST_ENTRY_SIZE);
	uint8_t *mm = guest_mem_ptr(gm, LAYOUT_PVH_MEMMAP, E820_MAX * HVM_MEMMAP_ENTRY_SIZE);
	struct e820_entry e820[E820_MAX];
	unsigned int n = boot_e820(gm, img->low_ram_end, e820, E820_MAX);

	if (!si || !mod || !mm)
		return -E2BIG;
	memset(si, 0, HVM_START_INFO_SIZE);
	cv_put_le32(si, HVM_START_MAGIC);
	cv_put_le32(si + 4, 1); /* version 1: has the memory map */
	if (img->initrd) {
		memset(mod, 0, HVM_MODLIST_ENTRY_SIZE);
		cv_put_le64(mod, initrd_at);
		cv_put_le64(mod + 8, img->initrd_len);
		cv_put_le32(si + 12, 1);
		cv_put_le64(si + 16, LAYOUT_PVH_MODLIST);
	}
	cv_put_le64(si + 24, LAYOUT_CMDLINE);
	cv_put_le64(si + 32, img->rsdp_gpa);
	cv_put_le64(si + 40, LAYOUT_PVH_MEMMAP);
	cv_put_le32(si + 48, n);
	for (unsigned int i = 0; i < n; i++) {
		uint8_t *e = mm + i * HVM_MEMMAP_ENTRY_SIZE;

		cv_put_le64(e, e820[i].addr);
		cv_put_le64(e + 8, e820[i].size);
		cv_put_le32(e + 16, e820[i].type);
		cv_put_le32(e + 20, 0);
	}
	return 0;
}

int boot_elf_header(const struct boot_image *img, struct boot_elf *l, char *err, size_t errlen)
{
	const uint8_t *k = img->kernel;
	uint16_t machine;

	if (img->kernel_len < sizeof(Elf64_Ehdr) || memcmp(k, ELFMAG, SELFMAG) ||
	    (k[EI_CLASS] != ELFCLASS64 && k[EI_CLASS] != ELFCLASS32) || k[EI_DATA] != ELFDATA2LSB)
		return -ENOEXEC;
	l->is64 = k[EI_CLASS] == ELFCLASS64;
	if (l->is64) {
		Elf64_Ehdr eh;

		memcpy(&eh, k, sizeof(eh));
		l->phoff = eh.e_phoff, l->phentsize = eh.e_phentsize, l->phnum = eh.e_phnum;
		machine = eh.e_machine;
		l->entry = eh.e_entry;
	} else {
		Elf32_Ehdr eh;

		memcpy(&eh, k, sizeof(eh));
		l->phoff = eh.e_phoff, l->phentsize = eh.e_phentsize, l->phnum = eh.e_phnum;
		machine = eh.e_machine;
		l->entry = eh.e_entry;
	}
	if (machine != EM_X86_64 && machine != EM_386)
		return cv_errf(err, errlen, -ENOEXEC, "ELF kernel is not for x86 (e_machine %u)",
			       machine);
	if (!l->phnum || l->phnum > PVH_MAX_PHDRS)
		return cv_errf(err, errlen, -ENOEXEC, "ELF kernel has %u program headers",
			       l->phnum);
	return 0;
}

/* The PVH entry point from the kernel's XEN_ELFNOTE_PHYS32_ENTRY note. */
static int pvh_entry_point(const struct boot_image *img, const struct boot_elf *l,
			   uint64_t *pvh_entry, char *err, size_t errlen)
{
	struct boot_phdr ph;

	*pvh_entry = 0;
	for (unsigned int i = 0; i < l->phnum; i++) {
		if (boot_elf_phdr(img, l, i, &ph))
			return cv_errf(err, errlen, -ENOEXEC, "ELF kernel is truncated or corrupt");
		if (ph.type == PT_NOTE && !*pvh_entry)
			find_pvh_note(img->kernel + ph.offset, ph.filesz, pvh_entry);
	}
	if (!*pvh_entry)
		return cv_errf(err, errlen, -ENOEXEC,
			       "ELF kernel has no PVH entry note (build it with CONFIG_PVH=y)");
	if (*pvh_entry >= 1ULL << 32)
		return cv_errf(err, errlen, -ENOEXEC, "PVH entry %#llx is above 4 GiB",
			       (unsigned long long)*pvh_entry);
	return 0;
}

int boot_elf_load(const struct guest_mem *gm, const struct boot_image *img,
		  const struct boot_elf *l, uint64_t limit, uint64_t *kernel_end, char *err,
		  size_t errlen)
{
	struct boot_phdr ph;

	*kernel_end = 0;
	for (unsigned int i = 0; i < l->phnum; i++) {
		uint8_t *dst;
		uint64_t end;

		if (boot_elf_phdr(img, l, i, &ph))
			return cv_errf(err, errlen, -ENOEXEC, "ELF kernel is truncated or corrupt");
		if (ph.type != PT_LOAD || !ph.memsz)
			continue;
		if (ph.filesz > ph.memsz)
			return cv_errf(err, errlen, -ENOEXEC, "ELF segment %u is corrupt", i);
		dst = guest_mem_ptr(gm, ph.paddr, ph.memsz);
		if (ph.paddr < LAYOUT_HIMEM || !dst ||
		    __builtin_add_overflow(ph.paddr, ph.memsz, &end) || end > limit)
			return cv_errf(err, errlen, -E2BIG,
				       "ELF segment %u at %#llx+%#llx is outside guest memory "
				       "(or below 1 MiB, where the boot data lives)",
				       i, (unsigned long long)ph.paddr,
				       (unsigned long long)ph.memsz);
		memcpy(dst, img->kernel + ph.offset, ph.filesz);
		memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
		if (end > *kernel_end)
			*kernel_end = end;
	}
	if (!*kernel_end)
		return cv_errf(err, errlen, -ENOEXEC, "ELF kernel has nothing to load");
	return 0;
}

/* The command line at LAYOUT_CMDLINE and the initrd after the kernel. */
static int place_cmdline_initrd(const struct guest_mem *gm, const struct boot_image *img,
				uint64_t kernel_end, uint64_t *initrd_at, char *err, size_t errlen)
{
	size_t n = strlen(img->cmdline);

	if (n + 1 > LAYOUT_CMDLINE_MAX)
		return cv_errf(err, errlen, -E2BIG, "command line longer than %d bytes",
			       LAYOUT_CMDLINE_MAX - 1);
	if (guest_mem_write(gm, LAYOUT_CMDLINE, img->cmdline, n + 1))
		return -E2BIG;
	*initrd_at = 0;
	if (!img->initrd)
		return 0;
	*initrd_at = boot_place_initrd(gm, img->initrd_len, kernel_end, 1ULL << 32);
	if (!*initrd_at)
		return cv_errf(err, errlen, -E2BIG,
			       "initrd (%zu bytes) does not fit in guest memory after the kernel "
			       "(try a larger --memory)",
			       img->initrd_len);
	if (guest_mem_write(gm, *initrd_at, img->initrd, img->initrd_len))
		return -E2BIG;
	return 0;
}

int boot_load_pvh(const struct guest_mem *gm, const struct boot_image *img,
		  struct boot_entry *entry, char *err, size_t errlen)
{
	struct boot_elf l;
	uint64_t pvh_entry = 0, kernel_end = 0, initrd_at = 0;
	int r;

	if ((r = boot_elf_header(img, &l, err, errlen)) ||
	    (r = pvh_entry_point(img, &l, &pvh_entry, err, errlen)) ||
	    (r = boot_elf_load(gm, img, &l, UINT64_MAX, &kernel_end, err, errlen)))
		return r;
	if (!guest_mem_ptr(gm, pvh_entry, 1))
		return cv_errf(err, errlen, -ENOEXEC, "PVH entry %#llx is outside guest memory",
			       (unsigned long long)pvh_entry);
	if ((r = place_cmdline_initrd(gm, img, kernel_end, &initrd_at, err, errlen)))
		return r;
	if (write_start_info(gm, img, initrd_at))
		return cv_errf(err, errlen, -E2BIG, "guest memory too small");
	entry->mode = BOOT_PVH32;
	entry->rip = pvh_entry;
	entry->arg = LAYOUT_BOOT_PARAMS;
	return 0;
}
