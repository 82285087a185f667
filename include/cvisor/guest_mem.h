/* guest_mem.h - guest RAM: layout, mapping and the one checked gpa->hva helper. */
#ifndef CVISOR_GUEST_MEM_H
#define CVISOR_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/util.h"

/* RAM below this address is placed at 0; the rest goes above 4 GiB so that
 * [3 GiB, 4 GiB) stays free for the LAPIC, IOAPIC and device MMIO. */
#define GUEST_MEM_LOW_LIMIT (3ULL << 30)
#define GUEST_MEM_HIGH_BASE (4ULL << 30)
#define GUEST_MEM_MAX_REGIONS 2

struct guest_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned int nr;
	uint64_t ram_size; /* total bytes of RAM */
	uint8_t *base;	   /* one host mapping that backs every region */
	size_t map_size;
	bool file_backed; /* mapped from a snapshot's memory file */
	int file_fd;	  /* that file (valid only when file_backed) */
};

/* Map ram_size bytes of anonymous MAP_NORESERVE memory and lay it out as
 * above. Returns 0, -EINVAL for a size of 0 or not page aligned, -ENOMEM. */
int guest_mem_init(struct guest_mem *gm, uint64_t ram_size) CV_MUST;

/* Map ram_size bytes of the file fd (a snapshot's FILE.mem: the RAM
 * mapping's image, offset = position in the mapping) copy-on-write
 * (MAP_PRIVATE) and lay it out as above. The caller checks the file's size
 * and may close fd afterwards (a duplicate is kept, to find the file's data
 * when this RAM is saved again). 0, -EINVAL for a bad size, or -errno. */
int guest_mem_init_file(struct guest_mem *gm, int fd, uint64_t ram_size) CV_MUST;

/* Lay out regions over caller-provided memory (unit tests, fuzzers). */
void guest_mem_init_buf(struct guest_mem *gm, uint8_t *buf, uint64_t ram_size);

/* --ksm: let the kernel's samepage merging scan guest RAM and share the
 * pages whose contents are equal (MADV_MERGEABLE; for a restored guest,
 * the pages it has written). 0 or -errno. */
int guest_mem_mergeable(struct guest_mem *gm) CV_MUST;

/* Unmap what guest_mem_init mapped. Safe on a zeroed struct. */
void guest_mem_destroy(struct guest_mem *gm);

/* The checked translation: a host pointer to [gpa, gpa+len) if that whole
 * range lies inside one RAM region, else NULL. Overflow of gpa+len is
 * rejected (Solo5 hvt_checked_gpa_p). Every guest-supplied address goes
 * through here. */
void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy to/from guest memory; -EFAULT if the range is not all RAM. */
int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *src,
		    uint64_t len) CV_MUST;
int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len) CV_MUST;

#endif
