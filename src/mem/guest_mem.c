/* guest_mem.c - guest RAM layout and the checked gpa -> hva translation. */
#include "cvisor/guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void guest_mem_layout(struct guest_mem *gm, uint8_t *base, uint64_t ram_size)
{
	uint64_t low = ram_size < GUEST_MEM_LOW_LIMIT ? ram_size : GUEST_MEM_LOW_LIMIT;

	gm->base = base;
	gm->ram_size = ram_size;
	gm->regions[0] = (struct guest_mem_region){ 0, low, base };
	gm->nr = 1;
	if (ram_size > low) {
		gm->regions[1] = (struct guest_mem_region){ GUEST_MEM_HIGH_BASE, ram_size - low,
							    base + low };
		gm->nr = 2;
	}
}

int guest_mem_init(struct guest_mem *gm, uint64_t ram_size)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	memset(gm, 0, sizeof(*gm));
	if (!ram_size || ram_size % (uint64_t)page)
		return -EINVAL;
	/* MAP_NORESERVE: untouched guest memory costs the host nothing. */
	p = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	(void)madvise(p, ram_size, MADV_DONTDUMP);
	guest_mem_layout(gm, p, ram_size);
	gm->map_size = ram_size;
	return 0;
}

int guest_mem_init_file(struct guest_mem *gm, int fd, uint64_t ram_size)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	memset(gm, 0, sizeof(*gm));
	if (!ram_size || ram_size % (uint64_t)page)
		return -EINVAL;
	/* MAP_PRIVATE: the guest's writes go to private copies, the file is
	 * never written, and every guest mapping the same file shares the
	 * page-cache pages it has not written. A read-only fd is enough. */
	gm->file_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (gm->file_fd < 0)
		return -errno;
	p = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		int r = -errno;

		close(gm->file_fd);
		return r;
	}
	(void)madvise(p, ram_size, MADV_DONTDUMP);
	guest_mem_layout(gm, p, ram_size);
	gm->map_size = ram_size;
	gm->file_backed = true;
	return 0;
}

void guest_mem_init_buf(struct guest_mem *gm, uint8_t *buf, uint64_t ram_size)
{
	memset(gm, 0, sizeof(*gm));
	guest_mem_layout(gm, buf, ram_size);
}

int guest_mem_mergeable(struct guest_mem *gm)
{
	return madvise(gm->base, gm->map_size, MADV_MERGEABLE) < 0 ? -errno : 0;
}

void guest_mem_destroy(struct guest_mem *gm)
{
	if (gm->map_size)
		munmap(gm->base, gm->map_size);
	if (gm->file_backed)
		close(gm->file_fd);
	memset(gm, 0, sizeof(*gm));
}

void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t end;

	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	for (unsigned int i = 0; i < gm->nr; i++) {
		const struct guest_mem_region *r = &gm->regions[i];

		if (gpa >= r->gpa && end <= r->gpa + r->size)
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = guest_mem_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = guest_mem_ptr(gm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}
