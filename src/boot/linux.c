/* linux.c - the Linux x86 boot protocol (Documentation/x86/boot.rst):
 * bzImage setup header, boot_params (zero page) with its e820 table,
 * cmdline and initrd. */
#include "cvisor/boot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Offsets in boot_params / the setup header (Documentation/x86/zero-page.rst). */
#define BP_ACPI_RSDP 0x070
#define BP_E820_ENTRIES 0x1e8
#define BP_SETUP_SECTS 0x1f1
#define BP_BOOT_FLAG 0x1fe
#define BP_JUMP_END 0x201
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_HEAP_END 0x224
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_KERNEL_ALIGNMENT 0x230
#define BP_RELOCATABLE 0x234
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_PREF_ADDRESS 0x258
#define BP_INIT_SIZE 0x260
#define BP_E820_TABLE 0x2d0
#define BP_SIZE 0x1000

#define HDRS_MAGIC 0x53726448 /* "HdrS" */
#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01

static int load_cmdline(const struct guest_mem *gm, const char *cmdline, uint32_t max, char *err,
			size_t errlen)
{
	size_t n = strlen(cmdline);

	if (max > LAYOUT_CMDLINE_MAX)
		max = LAYOUT_CMDLINE_MAX;
	if (n + 1 > max)
		return cv_errf(err, errlen, -E2BIG,
			       "command line is %zu bytes, the kernel takes %u", n, max - 1);
	if (guest_mem_write(gm, LAYOUT_CMDLINE, cmdline, n + 1))
		return cv_errf(err, errlen, -E2BIG, "guest memory too small for the command line");
	return 0;
}

/* What the setup header says, checked. */
struct bz_header {
	size_t setup_len, hdr_end;
	uint32_t cmdline_max;
	uint16_t version;
};

/* Check a bzImage's setup header (boot protocol 2.12 or later, 64-bit
 * entry, loads high). */
static int bz_check_header(const struct boot_image *img, struct bz_header *h, char *err,
			   size_t errlen)
{
	const uint8_t *k = img->kernel;
	unsigned int setup_sects;

	if (img->kernel_len < BP_INIT_SIZE + 4 || cv_le16(k + BP_BOOT_FLAG) != 0xaa55 ||
	    cv_le32(k + BP_HEADER) != HDRS_MAGIC)
		return cv_errf(err, errlen, -ENOEXEC,
			       "not a Linux bzImage nor an ELF kernel with a PVH entry note");
	h->version = cv_le16(k + BP_VERSION);
	/* 2.12 added xloadflags, which says whether the 64-bit entry exists. */
	if (h->version < 0x020c)
		return cv_errf(err, errlen, -ENOEXEC,
			       "boot protocol %u.%02u is too old (need 2.12)", h->version >> 8,
			       h->version & 0xff);
	if (!(k[BP_XLOADFLAGS] & XLF_KERNEL_64))
		return cv_errf(err, errlen, -ENOEXEC, "kernel has no 64-bit entry point");
	if (!(k[BP_LOADFLAGS] & LOADED_HIGH))
		return cv_errf(err, errlen, -ENOEXEC, "kernel is not a bzImage (zImage loads low)");
	setup_sects = k[BP_SETUP_SECTS] ? k[BP_SETUP_SECTS] : 4;
	h->setup_len = (setup_sects + 1) * 512;
	/* The byte at 0x201 is the jump's offset: the header ends there. */
	h->hdr_end = BP_HEADER + k[BP_JUMP_END];
	if (h->setup_len >= img->kernel_len || h->hdr_end > h->setup_len || h->hdr_end > BP_SIZE)
		return cv_errf(err, errlen, -ENOEXEC,
			       "bzImage setup header is truncated or corrupt");
	h->cmdline_max = h->version >= 0x0206 ? cv_le32(k + BP_CMDLINE_SIZE) + 1 : 256;
	return 0;
}

/* Copy the protected-mode kernel where it prefers (it then need not move
 * itself), else at 1 MiB, which a relocatable kernel accepts. */
static int bz_place_kernel(const struct guest_mem *gm, const struct boot_image *img,
			   const struct bz_header *h, uint64_t *load, uint64_t *kernel_end,
			   char *err, size_t errlen)
{
	const uint8_t *k = img->kernel;
	uint64_t init_size = cv_le32(k + BP_INIT_SIZE);

	if (init_size < img->kernel_len - h->setup_len)
		init_size = img->kernel_len - h->setup_len;
	*load = cv_le64(k + BP_PREF_ADDRESS);
	if (*load < LAYOUT_HIMEM || *load % 0x1000 || !guest_mem_ptr(gm, *load, init_size)) {
		/* Only a relocatable kernel may run from somewhere else. */
		if (!k[BP_RELOCATABLE] && *load >= LAYOUT_HIMEM)
			return cv_errf(err, errlen, -E2BIG,
				       "kernel needs %llu MiB at %#llx (try a larger --memory)",
				       (unsigned long long)(init_size >> 20) + 1,
				       (unsigned long long)*load);
		*load = LAYOUT_HIMEM;
	}
	if (__builtin_add_overflow(*load, init_size, kernel_end) ||
	    !guest_mem_ptr(gm, *load, init_size))
		return cv_errf(err, errlen, -E2BIG, "kernel needs %llu MiB, more than guest memory",
			       (unsigned long long)((*load + init_size) >> 20) + 1);
	if (guest_mem_write(gm, *load, k + h->setup_len, img->kernel_len - h->setup_len))
		return cv_errf(err, errlen, -E2BIG, "kernel does not fit in guest memory");
	return 0;
}

/* The initrd after the kernel, below what the header allows; its place in
 * the boot parameters bp. */
static int bz_place_initrd(const struct guest_mem *gm, const struct boot_image *img,
			   const struct bz_header *h, uint64_t kernel_end, uint8_t *bp, char *err,
			   size_t errlen)
{
	uint64_t initrd_max = cv_le32(img->kernel + BP_INITRD_ADDR_MAX), at;

	if (h->version < 0x0203 || !initrd_max)
		initrd_max = 0x37ffffff;
	at = boot_place_initrd(gm, img->initrd_len, kernel_end, initrd_max + 1);
	if (!at || img->initrd_len > UINT32_MAX)
		return cv_errf(err, errlen, -E2BIG,
			       "initrd (%zu bytes) does not fit in guest memory below %#llx "
			       "after the kernel (try a larger --memory)",
			       img->initrd_len, (unsigned long long)initrd_max);
	if (guest_mem_write(gm, at, img->initrd, img->initrd_len))
		return -E2BIG;
	cv_put_le32(bp + BP_RAMDISK_IMAGE, (uint32_t)at);
	cv_put_le32(bp + BP_RAMDISK_SIZE, (uint32_t)img->initrd_len);
	return 0;
}

/* The E820 map and the RSDP's address into the boot parameters. */
static void bz_fill_tables(const struct guest_mem *gm, const struct boot_image *img, uint8_t *bp)
{
	struct e820_entry e820[E820_MAX];
	unsigned int n = boot_e820(gm, img->low_ram_end, e820, E820_MAX);

	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned int i = 0; i < n; i++) {
		uint8_t *p = bp + BP_E820_TABLE + 20 * i;

		cv_put_le64(p, e820[i].addr);
		cv_put_le64(p + 8, e820[i].size);
		cv_put_le32(p + 16, e820[i].type);
	}
	cv_put_le64(bp + BP_ACPI_RSDP, img->rsdp_gpa);
}

int boot_load_bzimage(const struct guest_mem *gm, const struct boot_image *img,
		      struct boot_entry *entry, char *err, size_t errlen)
{
	uint8_t *bp = guest_mem_ptr(gm, LAYOUT_BOOT_PARAMS, BP_SIZE);
	struct bz_header h = { 0 };
	uint64_t load = 0, kernel_end = 0;
	int r;

	if ((r = bz_check_header(img, &h, err, errlen)) ||
	    (r = bz_place_kernel(gm, img, &h, &load, &kernel_end, err, errlen)))
		return r;
	if (!bp)
		return cv_errf(err, errlen, -E2BIG, "guest memory too small");
	memset(bp, 0, BP_SIZE);
	memcpy(bp + BP_SETUP_SECTS, img->kernel + BP_SETUP_SECTS, h.hdr_end - BP_SETUP_SECTS);
	bp[BP_TYPE_OF_LOADER] = 0xff; /* undefined boot loader */
	bp[BP_LOADFLAGS] = (uint8_t)(bp[BP_LOADFLAGS] | CAN_USE_HEAP);
	cv_put_le16(bp + BP_HEAP_END, 0xfe00);
	if (load_cmdline(gm, img->cmdline, h.cmdline_max, err, errlen))
		return -E2BIG;
	cv_put_le32(bp + BP_CMD_LINE_PTR, LAYOUT_CMDLINE);
	if (img->initrd && (r = bz_place_initrd(gm, img, &h, kernel_end, bp, err, errlen)))
		return r;
	bz_fill_tables(gm, img, bp);
	entry->mode = BOOT_LINUX64;
	entry->rip = load + 0x200; /* startup_64 is 512 bytes into the image */
	entry->arg = LAYOUT_BOOT_PARAMS;
	return 0;
}
