/* snapshot_file.c - `cvisor save` and `cvisor restore` files: FILE, the
 * snapfile container with the state sections (snapshot.c), and FILE.mem,
 * guest RAM as a sparse image: byte N of the RAM mapping (regions in the
 * order and at the offsets MACHINE lists) is byte N of the file, pages
 * never touched are holes, and the file's size is the RAM size. A restore
 * maps it copy-on-write. */
#include "cvisor/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/config.h"
#include "cvisor/guest_mem.h"
#include "cvisor/snapfile.h"
#include "cvisor/vm.h"

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

/* Make the renames durable too. */
static void sync_dir(const char *path)
{
	char copy[PATH_MAX];
	int fd;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0)
			cv_debug("fsync of the directory of %s: %s", path, strerror(errno));
		close(fd);
	}
}

static int write_mem_file(struct vm *vm, const char *tmp, uint64_t *written)
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

int snapshot_save(struct vm *vm, const char *path, uint64_t *mem_written, char *err, size_t errlen)
{
	char mem[PATH_MAX], tmp[PATH_MAX];
	struct state_buf b = { 0 };
	int r;

	*mem_written = 0;
	if ((size_t)snprintf(mem, sizeof(mem), "%s.mem", path) >= sizeof(mem) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.mem.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: file name too long", path);
		return -ENAMETOOLONG;
	}
	if ((r = snapshot_devices_quiesce(vm, err, errlen)))
		return r;
	if ((r = snapshot_state_save(vm, &b))) {
		snprintf(err, errlen, "saving the guest's state: %s", strerror(-r));
		goto fail;
	}
	if ((r = write_mem_file(vm, tmp, mem_written))) {
		snprintf(err, errlen, "%s: %s", mem, strerror(-r));
		goto fail;
	}
	if ((r = snap_file_write(path, &b))) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto fail;
	}
	if (rename(tmp, mem) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", mem, strerror(errno));
		unlink(path);
		goto fail;
	}
	sync_dir(path);
	state_buf_free(&b);
	return 0;
fail:
	unlink(tmp);
	state_buf_free(&b);
	snapshot_devices_resume(vm);
	return r;
}

int snapshot_open(const char *path, struct vm_config *cfg, uint8_t **payload, size_t *len,
		  int *mem_fd, char *err, size_t errlen)
{
	char mem[PATH_MAX];
	uint64_t ram;
	struct stat st;
	size_t plen = strlen(path);
	int r, fd;

	*payload = NULL;
	*mem_fd = -1;
	if ((r = snap_file_read(path, payload, len, err, errlen))) {
		/* The caller names the file: drop snapfile's "PATH: ". */
		if (!strncmp(err, path, plen) && err[plen] == ':' && err[plen + 1] == ' ')
			memmove(err, err + plen + 2, strlen(err + plen + 2) + 1);
		return r;
	}
	if ((r = snapshot_config_load(*payload, *len, cfg, err, errlen)) ||
	    (r = snapshot_ram_size(*payload, *len, &ram, err, errlen)))
		goto fail;
	r = -EINVAL;
	if (ram != cfg->mem_size) {
		snprintf(err, errlen, "CONFIG (%lluM) and MACHINE (%lluM) disagree on the RAM size",
			 (unsigned long long)(cfg->mem_size >> 20),
			 (unsigned long long)(ram >> 20));
		goto fail;
	}
	if ((size_t)snprintf(mem, sizeof(mem), "%s.mem", path) >= sizeof(mem)) {
		snprintf(err, errlen, "file name too long");
		goto fail;
	}
	fd = open(mem, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "its memory file %s: %s", mem, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != ram) {
		snprintf(err, errlen,
			 "its memory file %s is not a regular file of %llu bytes (truncated, or "
			 "from another snapshot?)",
			 mem, (unsigned long long)ram);
		close(fd);
		goto fail;
	}
	*mem_fd = fd;
	return 0;
fail:
	free(*payload);
	*payload = NULL;
	config_free(cfg);
	return r;
}
