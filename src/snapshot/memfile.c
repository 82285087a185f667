/* memfile.c - FILE.mem, guest RAM beside a snapshot (format.c): written
 * as a sparse image of the RAM mapping, only the pages that hold data, and
 * opened again, checked, for a restore to map copy-on-write. */
#include "cvisor/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/guest_mem.h"
#include "cvisor/snapshot_format.h"
#include "cvisor/vm.h"

#include "snapshot_priv.h"

#define PAGEMAP_CHUNK 512	    /* entries read at once */
#define WRITE_RUN_MAX (1024 * 1024) /* bytes per pwrite */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static bool page_is_zero(const uint8_t *p, size_t n)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;

	for (size_t i = 0; i < n / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* For RAM mapped from a memory file: is offset off inside one of the
 * file's data extents? start and end cache the extent at or after off. */
static bool in_file_data(int fd, uint64_t off, uint64_t *start, uint64_t *end)
{
	if (off >= *end) {
		off_t d = lseek(fd, (off_t)off, SEEK_DATA);
		off_t h = d >= 0 ? lseek(fd, d, SEEK_HOLE) : -1;

		/* ENXIO: no data past off. Another failure: say "data". */
		if (d < 0 && errno == ENXIO)
			*start = *end = UINT64_MAX;
		else if (d < 0 || h < 0)
			*start = 0, *end = UINT64_MAX;
		else
			*start = (uint64_t)d, *end = (uint64_t)h;
	}
	return off >= *start && off < *end;
}

int snapshot_mem_write(const struct guest_mem *gm, int fd, uint64_t *written)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t npages = gm->ram_size / page, ext_start = 0, ext_end = 0, run = 0, nrun = 0;
	uint64_t ents[PAGEMAP_CHUNK];
	/* Which pages may hold data: present or swapped out in this process
	 * (/proc/self/pagemap, readable without privileges for these bits),
	 * or data in the file a restored guest maps. Without pagemap every
	 * page is read: slower, same result. */
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), r = 0;

	*written = 0;
	for (uint64_t i = 0; !r && i < npages; i += PAGEMAP_CHUNK) {
		uint64_t chunk = npages - i < PAGEMAP_CHUNK ? npages - i : PAGEMAP_CHUNK;
		uint64_t vpage = ((uintptr_t)gm->base) / page + i;
		bool have_pm = pm >= 0 && pread(pm, ents, chunk * 8, (off_t)(vpage * 8)) ==
						  (ssize_t)(chunk * 8);

		for (uint64_t j = 0; !r && j < chunk; j++) {
			uint64_t pg = i + j;
			const uint8_t *p = gm->base + pg * page;
			bool maybe = !have_pm || (ents[j] & (PM_PRESENT | PM_SWAPPED)) ||
				     (gm->file_backed &&
				      in_file_data(gm->file_fd, pg * page, &ext_start, &ext_end));
			bool data = maybe && !page_is_zero(p, page);

			if (data && !nrun++)
				run = pg;
			if (nrun && (!data || nrun * page >= WRITE_RUN_MAX)) {
				r = pwrite_all(fd, gm->base + run * page, nrun * page, run * page);
				*written += nrun * page;
				nrun = 0;
			}
		}
	}
	if (!r && nrun) {
		r = pwrite_all(fd, gm->base + run * page, nrun * page, run * page);
		*written += nrun * page;
	}
	if (pm >= 0)
		close(pm);
	if (!r && ftruncate(fd, (off_t)gm->ram_size) < 0)
		r = -errno;
	return r;
}

int snapshot_mem_file_write(struct vm *vm, const char *tmp, uint64_t *written)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r;

	if (fd < 0)
		return -errno;
	r = snapshot_mem_write(&vm->mem, fd, written);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	return r;
}

int snapshot_mem_file_open(const char *path, uint64_t ram, int *mem_fd, char *err, size_t errlen)
{
	char mem[PATH_MAX];
	struct stat st;
	int fd;

	if ((size_t)snprintf(mem, sizeof(mem), "%s.mem", path) >= sizeof(mem))
		return cv_errf(err, errlen, -EINVAL, "file name too long");
	fd = open(mem, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cv_errf(err, errlen, -errno, "its memory file %s: %s", mem, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != ram) {
		close(fd);
		return cv_errf(err, errlen, -EINVAL,
			       "its memory file %s is not a regular file of %llu bytes (truncated, "
			       "or from another snapshot?)",
			       mem, (unsigned long long)ram);
	}
	*mem_fd = fd;
	return 0;
}
