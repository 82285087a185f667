/* util.c - logging and parsing helpers. */
#include "cvisor/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cvisor/error.h"

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	/* One write so that lines from vCPU threads do not interleave. */
	fprintf(stderr, "cvisor: %s%s\n", prefix, line);
}

void cv_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void cv_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap);
	va_end(ap);
}

void cv_debug(const char *fmt, ...)
{
	static int enabled = -1;
	va_list ap;

	if (enabled < 0)
		enabled = getenv("CVISOR_DEBUG") != NULL;
	if (!enabled)
		return;
	va_start(ap, fmt);
	vlog("debug: ", fmt, ap);
	va_end(ap);
}

/* The decimal digits s starts with (no sign, no space): 0, -EINVAL or
 * -ERANGE; *end is past them. */
static int leading_decimal(const char *s, unsigned long long *v, char **end)
{
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno == ERANGE ? -ERANGE : 0;
}

int cv_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int r = leading_decimal(s, &v, &end);

	if (r)
		return r;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int cv_parse_size(const char *s, int default_mib, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = default_mib ? 20 : 0;
	int r = leading_decimal(s, &v, &end);

	if (r)
		return r;
	if (*end) {
		switch (tolower((unsigned char)*end)) {
		case 'b':
			shift = 0;
			break;
		case 'k':
			shift = 10;
			break;
		case 'm':
			shift = 20;
			break;
		case 'g':
			shift = 30;
			break;
		case 't':
			shift = 40;
			break;
		default:
			return -EINVAL;
		}
		end++;
		if (shift && tolower((unsigned char)*end) == 'i')
			end++;
		if (shift && tolower((unsigned char)*end) == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

uint64_t cv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void cv_vformat_line(char *buf, size_t len, const char *fmt, va_list ap)
{
	vsnprintf(buf, len, fmt, ap);
	for (char *p = buf; len && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

int cv_errf(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cv_vformat_line(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

int cv_fail(struct cv_error *e, enum cv_exit status, int r, const char *fmt, ...)
{
	va_list ap;

	if (!e || e->code)
		return r;
	e->code = r;
	e->status = status;
	va_start(ap, fmt);
	cv_vformat_line(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return r;
}

int cv_error_report(const struct cv_error *e, const char *context)
{
	if (e->msg[0])
		cv_err("%s", e->msg);
	else
		cv_err("%s: %s", context, strerror(e->code < 0 ? -e->code : EIO));
	return e->status ? (int)e->status : CV_EXIT_FAIL;
}

static int errno_why(const char **why)
{
	int en = errno;

	*why = strerror(en);
	return -en;
}

/* Why the file open at f may not be read as a user-named input: 0 or
 * -errno with *why set (cv_open_regular). */
static int check_regular(int f, unsigned int opts, struct stat *st, const char **why)
{
	int fl;

	if (fstat(f, st) < 0 || (fl = fcntl(f, F_GETFL)) < 0)
		return errno_why(why);
	if (S_ISDIR(st->st_mode)) {
		*why = "is a directory";
		return -EISDIR;
	}
	if (!S_ISREG(st->st_mode) && !(S_ISBLK(st->st_mode) && (opts & CV_OPEN_BLOCKDEV))) {
		*why = opts & CV_OPEN_BLOCKDEV ? "not a regular file or block device"
					       : "not a regular file";
		return -EINVAL;
	}
	if ((opts & CV_OPEN_NONEMPTY) && S_ISREG(st->st_mode) && st->st_size == 0) {
		*why = "file is empty";
		return -ENODATA;
	}
	/* Reads from here on may wait, as for any file. */
	return fcntl(f, F_SETFL, fl & ~O_NONBLOCK) < 0 ? errno_why(why) : 0;
}

int cv_open_regular(const char *path, int flags, unsigned int opts, int *fd, struct stat *st,
		    const char **why)
{
	int f = open(path, flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC), r;

	*fd = -1;
	if (f < 0)
		return errno_why(why);
	if ((r = check_regular(f, opts, st, why))) {
		close(f);
		return r;
	}
	*fd = f;
	return 0;
}

/* A name for a temporary beside the file it replaces: hidden, random. */
static void tmp_name(char *name, size_t len)
{
	uint64_t rnd = 0;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd ^= cv_now_ns() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	snprintf(name, len, ".cvisor-%016llx.tmp", (unsigned long long)rnd);
}

/* The directory part of path, opened; its last part in *base. */
static int open_parent(const char *path, int *dirfd, const char **base)
{
	char copy[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return -ENAMETOOLONG;
	*base = slash ? slash + 1 : path;
	if (!**base)
		return -EISDIR;
	*dirfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return *dirfd < 0 ? -errno : 0;
}

int cv_tmpfile_open(struct cv_tmpfile *t, const char *path)
{
	const char *base;
	int r;

	t->fd = -1;
	t->name[0] = '\0';
	if ((r = open_parent(path, &t->dirfd, &base)))
		return r;
	t->fd = openat(t->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	/* Filesystems without O_TMPFILE: a name nobody can have taken. */
	for (int i = 0;
	     t->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EEXIST) && i < 100;
	     i++) {
		tmp_name(t->name, sizeof(t->name));
		t->fd = openat(t->dirfd, t->name,
			       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (t->fd < 0) {
		r = -errno;
		t->name[0] = '\0';
		close(t->dirfd);
		return r;
	}
	return 0;
}

/* Give an O_TMPFILE file a fresh name in its directory. */
static int tmpfile_link(struct cv_tmpfile *t)
{
	char self[64];

	snprintf(self, sizeof(self), "/proc/self/fd/%d", t->fd);
	for (int i = 0; i < 100; i++) {
		tmp_name(t->name, sizeof(t->name));
		/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc does not. */
		if (!linkat(t->fd, "", t->dirfd, t->name, AT_EMPTY_PATH) ||
		    (errno != EEXIST &&
		     !linkat(AT_FDCWD, self, t->dirfd, t->name, AT_SYMLINK_FOLLOW)))
			return 0;
		if (errno != EEXIST)
			break;
	}
	t->name[0] = '\0';
	return -errno;
}

int cv_tmpfile_name(struct cv_tmpfile *t)
{
	return t->name[0] ? 0 : tmpfile_link(t);
}

int cv_tmpfile_commit(struct cv_tmpfile *t, const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	int r = 0;

	if (fsync(t->fd) < 0 || (!t->name[0] && (r = tmpfile_link(t))) ||
	    renameat(t->dirfd, t->name, t->dirfd, base) < 0)
		return r ? r : -errno;
	t->name[0] = '\0';
	if (fsync(t->dirfd) < 0)
		cv_debug("fsync of the directory of %s: %s", path, strerror(errno));
	if (close(t->fd) < 0)
		r = -errno;
	close(t->dirfd);
	t->fd = t->dirfd = -1;
	return r;
}

void cv_tmpfile_abort(struct cv_tmpfile *t)
{
	if (t->fd < 0)
		return;
	if (t->name[0])
		unlinkat(t->dirfd, t->name, 0);
	close(t->fd);
	close(t->dirfd);
	t->fd = t->dirfd = -1;
	t->name[0] = '\0';
}

void cv_tmpfile_keep(struct cv_tmpfile *t)
{
	if (t->fd < 0)
		return;
	close(t->fd);
	close(t->dirfd);
	t->fd = t->dirfd = -1;
}

enum write_how { WRITE_PLAIN, WRITE_SEND, WRITE_AT };

/* The loop of cv_write_all, cv_send_all and cv_pwrite_all: retried on
 * EINTR and short writes. */
static int write_loop(int fd, const void *p, size_t n, enum write_how how, uint64_t off)
{
	const char *b = p;

	while (n) {
		ssize_t w = how == WRITE_AT	? pwrite(fd, b, n, (off_t)off)
			    : how == WRITE_SEND ? send(fd, b, n, MSG_NOSIGNAL)
						: write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EPIPE;
		b += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int cv_write_all(int fd, const void *p, size_t n)
{
	return write_loop(fd, p, n, WRITE_PLAIN, 0);
}

int cv_send_all(int fd, const void *p, size_t n)
{
	return write_loop(fd, p, n, WRITE_SEND, 0);
}

int cv_pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	return off > INT64_MAX ? -EINVAL : write_loop(fd, p, n, WRITE_AT, off);
}

int cv_data_extent(int fd, uint64_t off, uint64_t size, uint64_t *start, uint64_t *end)
{
	off_t d, h;

	if (off >= size || off > INT64_MAX)
		return -ENXIO;
	d = lseek(fd, (off_t)off, SEEK_DATA);
	if (d < 0 && errno == ENXIO)
		return -ENXIO;
	if (d < 0) {
		*start = off;
		*end = size;
		return 0;
	}
	if ((uint64_t)d >= size)
		return -ENXIO;
	h = lseek(fd, d, SEEK_HOLE);
	*start = (uint64_t)d;
	*end = h < 0 || (uint64_t)h > size ? size : (uint64_t)h;
	return 0;
}

int cv_pread_full(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *b = p;

	if (off > INT64_MAX)
		return -EINVAL;
	while (n) {
		ssize_t r = pread(fd, b, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (!r) {
			memset(b, 0, n);
			return 0;
		}
		b += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int cv_send_fds(int sock, const void *p, size_t n, const int *fds, unsigned int nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CV_PASS_FDS_MAX)];
	} u = { 0 };
	struct iovec iov = { .iov_base = (void *)p, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t w;

	if (!n || !nfds || nfds > CV_PASS_FDS_MAX)
		return -EINVAL;
	mh.msg_control = u.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	u.h.cmsg_level = SOL_SOCKET;
	u.h.cmsg_type = SCM_RIGHTS;
	u.h.cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(&u.h), fds, sizeof(int) * nfds);
	do
		w = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w != 1)
		return w < 0 ? -errno : -EPIPE;
	return cv_send_all(sock, (const char *)p + 1, n - 1);
}

long cv_recv_fds(int sock, void *p, size_t n, struct cv_passed_fds *fds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CV_PASS_FDS_MAX)];
	} u;
	struct iovec iov = { .iov_base = p, .iov_len = n };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	ssize_t r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

	fds->n = 0;
	fds->truncated = false;
	if (r < 0)
		return -errno;
	fds->truncated = (mh.msg_flags & MSG_CTRUNC) != 0;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
		size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (fds->n < CV_PASS_FDS_MAX)
				fds->fd[fds->n++] = fd;
			else
				close(fd);
		}
	}
	return r;
}

void cv_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}
