/* error.h - the one error value of the build path (config, devices, VM,
 * snapshot load, migration target): filled by the function that failed,
 * printed by one place (main), which maps it to the exit status.
 *
 * A function that fills a cv_error does not print; a function that prints
 * does not return an error. `e` may be NULL where the caller only wants the
 * -errno (tests, best-effort paths). */
#ifndef CVISOR_ERROR_H
#define CVISOR_ERROR_H

#include "cvisor/util.h"

#define CV_ERROR_MAX 320

struct cv_error {
	int code;	     /* -errno; 0 while nothing failed */
	enum cv_exit status; /* what `cvisor` exits with for it */
	char msg[CV_ERROR_MAX];
};

/* Fill e (if not already filled: the first, deepest failure wins) with
 * status, code r and one formatted line (control characters become
 * spaces); return r. Usage: `return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
 * "--disk %s: no such file", path);` */
int cv_fail(struct cv_error *e, enum cv_exit status, int r, const char *fmt, ...) CV_PRINTF(4, 5);

/* Print e as "cvisor: MSG" (or "cvisor: CONTEXT: strerror" when no message
 * was given) and return its exit status: main's one place. */
int cv_error_report(const struct cv_error *e, const char *context);

#endif
