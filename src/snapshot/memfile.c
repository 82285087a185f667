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
#include "cvisor/ramwalk.h"
#include "cvisor/snapshot_format.h"
#include "cvisor/vm.h"

#include "snapshot_priv.h"

#define WRITE_RUN_MAX (1024 * 1024) /* bytes per pwrite */
#define PAGE RAMWALK_PAGE_SIZE

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

/* Pages [first, first + n) of the mapping to the same offsets in fd. */
static int write_run(const struct guest_mem *gm, int fd, uint64_t first, uint64_t n,
		     uint64_t *written)
{
	*written += n * PAGE;
	return pwrite_all(fd, gm->base + first * PAGE, n * PAGE, first * PAGE);
}

int snapshot_mem_write(const struct guest_mem *gm, int fd, uint64_t *written)
{
	struct ramwalk w;
	uint64_t first, n, run = 0, nrun = 0;
	int r = 0;

	*written = 0;
	/* Only the pages that may hold data are read (ramwalk.h); of those,
	 * the ones that are not all zeros are written, in runs. */
	ramwalk_begin(&w, gm);
	while (!r && ramwalk_next(&w, &first, &n)) {
		for (uint64_t pg = first; !r && pg < first + n; pg++) {
			bool data = !ramwalk_page_is_zero(gm->base + pg * PAGE);

			if (data && !nrun++)
				run = pg;
			if (nrun && (!data || nrun * PAGE >= WRITE_RUN_MAX)) {
				r = write_run(gm, fd, run, nrun, written);
				nrun = 0;
			}
		}
		/* The page after the walk's run holds no data. */
		if (!r && nrun)
			r = write_run(gm, fd, run, nrun, written);
		nrun = 0;
	}
	ramwalk_end(&w);
	if (!r && ftruncate(fd, (off_t)gm->ram_size) < 0)
		r = -errno;
	return r;
}

int snapshot_mem_file_write(struct vm *vm, struct cv_tmpfile *t, const char *mem, uint64_t *written)
{
	int r;

	if ((r = cv_tmpfile_open(t, mem)))
		return r;
	if ((r = snapshot_mem_write(&vm->mem, t->fd, written)))
		cv_tmpfile_abort(t);
	return r;
}

int snapshot_mem_file_open(const char *path, uint64_t ram, int *mem_fd, char *err, size_t errlen)
{
	char mem[PATH_MAX];
	struct stat st;
	const char *why;
	int fd, r;

	if ((size_t)snprintf(mem, sizeof(mem), "%s.mem", path) >= sizeof(mem))
		return cv_errf(err, errlen, -EINVAL, "file name too long");
	if ((r = cv_open_regular(mem, O_RDONLY, 0, &fd, &st, &why)))
		return cv_errf(err, errlen, r, "its memory file %s: %s", mem, why);
	if ((uint64_t)st.st_size != ram) {
		close(fd);
		return cv_errf(err, errlen, -EINVAL,
			       "its memory file %s is not a regular file of %llu bytes (truncated, "
			       "or from another snapshot?)",
			       mem, (unsigned long long)ram);
	}
	*mem_fd = fd;
	return 0;
}
