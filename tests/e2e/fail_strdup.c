/* fail_strdup.c - an LD_PRELOAD shim for tests/e2e/chapi.sh: strdup(S)
 * fails with ENOMEM, as when memory runs out, while the file named by
 * $FAIL_STRDUP_ARMED exists and S is $FAIL_STRDUP_OF. The test arms it
 * at the moment it wants a copy of that string (the guest's name) to
 * fail, e.g. the one a reboot makes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *strdup(const char *s)
{
	static char *(*real)(const char *);
	const char *of = getenv("FAIL_STRDUP_OF"), *armed = getenv("FAIL_STRDUP_ARMED");

	if (of && armed && !strcmp(s, of) && !access(armed, F_OK)) {
		errno = ENOMEM;
		return NULL;
	}
	if (!real)
		real = (char *(*)(const char *))dlsym(RTLD_NEXT, "strdup");
	return real(s);
}
