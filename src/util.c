/* util.c - logging and parsing helpers. */
#include "cvisor/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* One line from fmt into buf: control characters, which a quoted input
 * value may carry, become spaces. */
static void vformat_line(char *buf, size_t len, const char *fmt, va_list ap)
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
	vformat_line(err, errlen, fmt, ap);
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
	vformat_line(e->msg, sizeof(e->msg), fmt, ap);
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
