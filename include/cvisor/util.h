/* util.h - logging, error helpers and small utilities shared by every module. */
#ifndef CVISOR_UTIL_H
#define CVISOR_UTIL_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

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

/* Monotonic time in nanoseconds. */
uint64_t cv_now_ns(void);

#endif
