/* memfile.c - FILE.mem, guest RAM beside a snapshot (format.c): written
 * as a sparse image of the RAM mapping, only the pages that hold data, and
 * opened again, checked, for a restore to map copy-on-write. */
#include "cvisor/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/crc32.h"
#include "cvisor/guest_mem.h"
#include "cvisor/ramwalk.h"
#include "cvisor/snapshot_format.h"
#include "cvisor/vm.h"

#include "snapshot_priv.h"

#define WRITE_RUN_MAX (1024 * 1024) /* bytes per pwrite */
/* Bytes per pread of the digest at restore: small, since each one stays
 * in the monitor's resident set (restore is measured by its peak RSS). */
#define DIGEST_READ (64 * 1024)
#define PAGE RAMWALK_PAGE_SIZE

/* Fold the page at offset off, which holds data, into d. */
static void digest_page(struct snapshot_mem_digest *d, const uint8_t *page, uint64_t off)
{
	uint8_t le[8];

	cv_put_le64(le, off);
	d->crc = cv_crc32(cv_crc32(d->crc, le, sizeof(le)), page, PAGE);
	d->pages++;
}

/* Pages [first, first + n) of the mapping to the same offsets in fd. */
static int write_run(const struct guest_mem *gm, int fd, uint64_t first, uint64_t n,
		     uint64_t *written)
{
	*written += n * PAGE;
	return cv_pwrite_all(fd, gm->base + first * PAGE, n * PAGE, first * PAGE);
}

int snapshot_mem_write(const struct guest_mem *gm, int fd, uint64_t *written,
		       struct snapshot_mem_digest *digest)
{
	struct ramwalk w;
	uint64_t first, n, run = 0, nrun = 0;
	int r = 0;

	*written = 0;
	*digest = (struct snapshot_mem_digest){ 0 };
	/* Only the pages that may hold data are read (ramwalk.h); of those,
	 * the ones that are not all zeros are written, in runs. */
	ramwalk_begin(&w, gm);
	while (!r && ramwalk_next(&w, &first, &n)) {
		for (uint64_t pg = first; !r && pg < first + n; pg++) {
			bool data = !ramwalk_page_is_zero(gm->base + pg * PAGE);

			if (data)
				digest_page(digest, gm->base + pg * PAGE, pg * PAGE);
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

/* Fold the pages of [off, end) of fd that hold data into d, a buffer of
 * DIGEST_READ bytes at a time. */
static int digest_extent(int fd, uint8_t *buf, uint64_t off, uint64_t end,
			 struct snapshot_mem_digest *d)
{
	while (off < end) {
		size_t want = end - off < DIGEST_READ ? (size_t)(end - off) : DIGEST_READ;
		ssize_t got = pread(fd, buf, want, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0 || got % PAGE)
			return got < 0 ? -errno : -EIO;
		for (ssize_t i = 0; i < got; i += PAGE)
			if (!ramwalk_page_is_zero(buf + i))
				digest_page(d, buf + i, off + (uint64_t)i);
		off += (uint64_t)got;
	}
	return 0;
}

int snapshot_mem_digest(int fd, struct snapshot_mem_digest *d)
{
	struct stat st;
	uint8_t *buf;
	off_t data, hole = 0;
	uint64_t done = 0, from;
	int r = 0;

	*d = (struct snapshot_mem_digest){ 0 };
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size % PAGE)
		return -EINVAL;
	if (!(buf = malloc(DIGEST_READ)))
		return -ENOMEM;
	/* Holes read as zeros, which the digest leaves out: only the data
	 * extents are read. */
	while (!r && hole < st.st_size) {
		if ((data = lseek(fd, hole, SEEK_DATA)) < 0) {
			r = errno == ENXIO ? 0 : -errno;
			break;
		}
		if ((hole = lseek(fd, data, SEEK_HOLE)) < 0) {
			r = -errno;
			break;
		}
		/* Whole pages, each once, whatever the filesystem's blocks. */
		from = (uint64_t)data & ~(uint64_t)(PAGE - 1);
		r = digest_extent(fd, buf, from > done ? from : done,
				  ((uint64_t)hole + PAGE - 1) & ~(uint64_t)(PAGE - 1), d);
		done = ((uint64_t)hole + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	}
	free(buf);
	return r;
}

int snapshot_mem_file_write(struct vm *vm, struct cv_tmpfile *t, const char *mem, uint64_t *written,
			    struct snapshot_mem_digest *digest)
{
	int r;

	if ((r = cv_tmpfile_open(t, mem)))
		return r;
	if ((r = snapshot_mem_write(&vm->mem, t->fd, written, digest)))
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

/* ---- a restored guest's FILE.mem, truncated under it ---- */

/* What the SIGBUS handler needs, set before it is installed. */
static struct {
	struct vm *vm;
	uint8_t *lo, *hi; /* the RAM mapping */
	uintptr_t page_mask;
	struct timespec mtime; /* the file's when it was mapped */
	char path[PATH_MAX];
	char msg[sizeof(((struct vm *)0)->stop_msg)]; /* the line, for the handler */
} guard;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	uint8_t *a = si->si_addr;
	struct vm *vm = guard.vm;
	int expected = VM_RUNNING;
	uint64_t one = 1;

	(void)uctx;
	if (!vm || si->si_code != BUS_ADRERR || a < guard.lo || a >= guard.hi) {
		/* Not ours: fatal as without a handler, once we return. */
		signal(sig, SIG_DFL);
		return;
	}
	/* Zeros where the lost page was: the access completes, the guest is
	 * stopped before it can make much of it. mmap is a plain system call,
	 * fine in a handler; the rest is an atomic, a copy and write(2). */
	if (mmap((void *)((uintptr_t)a & guard.page_mask), ~guard.page_mask + 1,
		 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		 -1, 0) == MAP_FAILED) {
		signal(sig, SIG_DFL);
		return;
	}
	if (atomic_compare_exchange_strong(&vm->stop, &expected, VM_STOP_MEMFILE)) {
		memcpy(vm->stop_msg, guard.msg, sizeof(guard.msg));
		if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
			/* The eventfd cannot be full after one write. */
		}
	}
}

int snapshot_mem_guard(struct vm *vm)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	char self[64];
	struct stat st;
	ssize_t n;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", vm->mem.file_fd);
	n = readlink(self, guard.path, sizeof(guard.path) - 1);
	guard.path[n > 0 ? n : 0] = '\0';
	if (fstat(vm->mem.file_fd, &st) < 0)
		return -errno;
	guard.mtime = st.st_mtim;
	guard.lo = vm->mem.base;
	guard.hi = vm->mem.base + vm->mem.map_size;
	guard.page_mask = ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
	(void)cv_errf(guard.msg, sizeof(guard.msg), 0,
		      "guest memory file %s was truncated under the guest", guard.path);
	guard.vm = vm;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

bool snapshot_mem_lost(const struct vm *vm, char *msg, size_t len)
{
	struct stat st;

	if (guard.vm != vm || fstat(vm->mem.file_fd, &st) < 0)
		return false;
	if ((uint64_t)st.st_size < vm->mem.map_size)
		snprintf(msg, len, "%s", guard.msg);
	else if (st.st_mtim.tv_sec != guard.mtime.tv_sec ||
		 st.st_mtim.tv_nsec != guard.mtime.tv_nsec)
		(void)cv_errf(msg, len, 0, "guest memory file %s was changed under the guest",
			      guard.path);
	else
		return false;
	return true;
}
