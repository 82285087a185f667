/* with_err.h - WITH_ERR(err, call): call a function that fills a struct
 * cv_error (named e_ in the call) and copy its line into the array err,
 * for tests that check the message; evaluates to the call's result. */
#ifndef TESTS_UNIT_WITH_ERR_H
#define TESTS_UNIT_WITH_ERR_H

#include <string.h>

#include "cvisor/error.h"

/* msg into the n bytes at dst, cut if it must be. */
static inline void copy_err(char *dst, size_t n, const char *msg)
{
	size_t k = strlen(msg) < n ? strlen(msg) : n - 1;

	memcpy(dst, msg, k);
	dst[k] = '\0';
}

#define WITH_ERR(err, ...)                            \
	({                                            \
		struct cv_error e_ = { 0 };           \
		int r_ = (__VA_ARGS__);               \
		copy_err((err), sizeof(err), e_.msg); \
		r_;                                   \
	})

#endif
