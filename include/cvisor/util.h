/* util.h - logging, error helpers and small utilities shared by every module. */
#ifndef CVISOR_UTIL_H
#define CVISOR_UTIL_H

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define CV_MUST __attribute__((warn_unused_result))
#define CV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Process exit statuses of `cvisor run`; documented in README.md. */
enum cv_exit {
	CV_EXIT_OK = 0,		 /* guest powered off or rebooted */
	CV_EXIT_FAIL = 1,	 /* host-side failure after start (I/O, KVM) */
	CV_EXIT_USAGE = 2,	 /* bad input: flags, files, sizes */
	CV_EXIT_GUEST_CRASH = 3, /* triple fault / shutdown exit */
	CV_EXIT_INTERNAL = 4,	 /* unrecoverable KVM internal or emulation error */
	CV_EXIT_MEMFILE = 5,	 /* a restored guest's FILE.mem was truncated under it */
};

/* Print "cvisor: <msg>" to stderr. One line, the user-facing form. */
void cv_err(const char *fmt, ...) CV_PRINTF(1, 2);
/* Print "cvisor: warning: <msg>" to stderr. */
void cv_warn(const char *fmt, ...) CV_PRINTF(1, 2);
/* Print "cvisor: <msg>" only when CVISOR_DEBUG is set in the environment. */
void cv_debug(const char *fmt, ...) CV_PRINTF(1, 2);

/* Parse a size such as "512", "192M", "4G", "64k" (binary units, case
 * insensitive, optional trailing "iB"/"B"). Plain numbers are MiB when
 * default_mib is nonzero, else bytes. Returns 0 or -EINVAL / -ERANGE. */
int cv_parse_size(const char *s, int default_mib, uint64_t *out) CV_MUST;

/* Parse a non-negative decimal integer in [min, max]. 0 or -EINVAL/-ERANGE. */
int cv_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out) CV_MUST;

/* Close *fd if it is open and mark it closed (-1). */
void cv_close(int *fd);

/* Write all n bytes of p to fd, retried on EINTR and short writes. 0, or
 * -errno (-EPIPE when nothing moves). */
int cv_write_all(int fd, const void *p, size_t n) CV_MUST;

/* The same on a socket, without SIGPIPE when the peer is gone. */
int cv_send_all(int fd, const void *p, size_t n) CV_MUST;

/* The same at file offset off (pwrite). */
int cv_pwrite_all(int fd, const void *p, size_t n, uint64_t off) CV_MUST;

/* n bytes at file offset off, retried on EINTR and short reads; what lies
 * past the end of the file reads as zeros (a disk image whose last block
 * is short). 0 or -errno. */
int cv_pread_full(int fd, void *p, size_t n, uint64_t off) CV_MUST;

/* The data extent of file fd at or after off, cut at size (SEEK_DATA,
 * SEEK_HOLE): 0 with [*start, *end), start < size; -ENXIO if only holes
 * are left before size. Where the file system cannot tell, all of [off,
 * size) is data. */
int cv_data_extent(int fd, uint64_t off, uint64_t size, uint64_t *start, uint64_t *end) CV_MUST;

/* The most files cv_send_fds passes, and cv_recv_fds takes, at once. */
#define CV_PASS_FDS_MAX 16 /* the REST API's bound (HTTP_FDS_MAX) */

/* Send the n (>= 1) bytes at p on a unix socket with the files
 * fds[0..nfds) (SCM_RIGHTS, nfds <= CV_PASS_FDS_MAX): the files go with
 * the first byte, in one sendmsg; the rest as cv_send_all. 0 or -errno. */
int cv_send_fds(int sock, const void *p, size_t n, const int *fds, unsigned int nfds) CV_MUST;

/* Files passed with what one recvmsg read (cv_recv_fds). */
struct cv_passed_fds {
	int fd[CV_PASS_FDS_MAX]; /* close-on-exec, the caller's to close */
	unsigned int n;
	bool truncated; /* the kernel dropped some (MSG_CTRUNC): too many */
};

/* recvmsg(2) of up to n bytes into p on a unix socket, with the files
 * passed along (the stream stops after the byte that carried them, so
 * they came with the last byte read). The bytes read or -errno. */
long cv_recv_fds(int sock, void *p, size_t n, struct cv_passed_fds *fds) CV_MUST;

/* Monotonic time in nanoseconds. */
uint64_t cv_now_ns(void);

/* One line from fmt into buf: control characters, which a quoted input
 * value may carry, become spaces. */
void cv_vformat_line(char *buf, size_t len, const char *fmt, va_list ap) CV_PRINTF(3, 0);

/* Format one line into err (control characters, which a quoted input
 * value may carry, become spaces) and return r: the error helpers of the
 * parsers and loaders, `return cv_errf(err, errlen, -EINVAL, ...)`. */
int cv_errf(char *err, size_t errlen, int r, const char *fmt, ...) CV_PRINTF(4, 5);

/* What cv_open_regular accepts besides a regular file, and refuses. */
#define CV_OPEN_BLOCKDEV 1u /* a block device too (disk images) */
#define CV_OPEN_NONEMPTY 2u /* refuse a file of 0 bytes */

/* Open a file the user named (kernel, initrd, --config, snapshot, FILE.mem,
 * disk image) with flags (O_RDONLY or O_RDWR; O_CLOEXEC is added) without
 * blocking on it: a FIFO would wait for a writer forever, so the open is
 * O_NONBLOCK (cleared again after), and what was opened must be a regular
 * file (or a block device with CV_OPEN_BLOCKDEV) before anyone reads it.
 * 0 with *fd and its *st; else -errno with *why the phrase to print after
 * "PATH: ": -EISDIR "is a directory", -EINVAL "not a regular file",
 * -ENODATA "file is empty" (CV_OPEN_NONEMPTY), or open(2)'s strerror. */
int cv_open_regular(const char *path, int flags, unsigned int opts, int *fd, struct stat *st,
		    const char **why) CV_MUST;

/* A new file that replaces another when complete: the snapshot's files. */
struct cv_tmpfile {
	int fd;	       /* write here */
	int dirfd;     /* the directory of the file it replaces */
	char name[64]; /* its name in dirfd once it has one, else "" */
};

/* Create t's file in the directory of path, so that nobody can have
 * planted it there (a symlink named like it, in a world-writable
 * directory, would send root's data elsewhere): O_TMPFILE, nameless until
 * cv_tmpfile_commit; where the filesystem lacks O_TMPFILE, a random name
 * created O_EXCL, which never follows a symlink. 0 or -errno. */
int cv_tmpfile_open(struct cv_tmpfile *t, const char *path) CV_MUST;

/* fsync t's file, give it a fresh name (linkat, which never replaces
 * anything) if it has none, rename it over path, fsync the directory and
 * close. On failure t is left uncommitted: cv_tmpfile_abort or
 * cv_tmpfile_keep it. 0 or -errno. */
int cv_tmpfile_commit(struct cv_tmpfile *t, const char *path) CV_MUST;

/* Give t's file a fresh name now if it has none (linkat, as commit
 * would): a file another process fills survives this one. 0 or -errno. */
int cv_tmpfile_name(struct cv_tmpfile *t) CV_MUST;

/* Drop an uncommitted t: close it and remove its name if it has one. */
void cv_tmpfile_abort(struct cv_tmpfile *t);

/* Close an uncommitted t and leave its file under its name (t->name, in
 * the directory of the path it was for): data nobody else holds. */
void cv_tmpfile_keep(struct cv_tmpfile *t);

/* Little-endian fields of n bytes (n <= 8) in byte buffers: firmware
 * tables, boot structures, file and wire formats. */
static inline void cv_put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t cv_get_le(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline void cv_put_le16(uint8_t *p, uint16_t v)
{
	cv_put_le(p, v, 2);
}

static inline void cv_put_le32(uint8_t *p, uint32_t v)
{
	cv_put_le(p, v, 4);
}

static inline void cv_put_le64(uint8_t *p, uint64_t v)
{
	cv_put_le(p, v, 8);
}

static inline uint16_t cv_le16(const uint8_t *p)
{
	return (uint16_t)cv_get_le(p, 2);
}

static inline uint32_t cv_le32(const uint8_t *p)
{
	return (uint32_t)cv_get_le(p, 4);
}

static inline uint64_t cv_le64(const uint8_t *p)
{
	return cv_get_le(p, 8);
}

#endif
