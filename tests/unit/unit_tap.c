/* unit_tap.c - linked into every unit test binary, which the Makefile links
 * with -Wl,--wrap=_cmocka_run_group_tests: when the runner's timeout ends
 * a test that hangs (SIGTERM), the test is named in cmocka's TAP, as
 * "not ok N - NAME # timed out", instead of the binary going silent.
 *
 * cmocka tells nobody which test runs; each test's setup is routed through
 * enter(), which finds its test from the initial state it is given, then
 * hands the test its own initial state and setup. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

int __real__cmocka_run_group_tests(const char *group_name, const struct CMUnitTest *tests,
				   size_t num_tests, CMFixtureFunction group_setup,
				   CMFixtureFunction group_teardown);
int __wrap__cmocka_run_group_tests(const char *group_name, const struct CMUnitTest *tests,
				   size_t num_tests, CMFixtureFunction group_setup,
				   CMFixtureFunction group_teardown);

static const struct CMUnitTest *group;
static volatile sig_atomic_t current = -1; /* index in group */

static void put(const char *s)
{
	ssize_t r = write(STDOUT_FILENO, s, strlen(s));

	(void)r;
}

static void on_term(int sig)
{
	char num[24], *p = num + sizeof(num) - 1;
	unsigned int n = (unsigned int)current + 1;

	if (current >= 0) {
		*p = '\0';
		do
			*--p = (char)('0' + n % 10);
		while (n /= 10);
		put("\nnot ok ");
		put(p);
		put(" - ");
		put(group[current].name);
		put(" # timed out\n");
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static int enter(void **state)
{
	const struct CMUnitTest *t = *state;

	current = t - group;
	*state = t->initial_state;
	return t->setup_func ? t->setup_func(state) : 0;
}

int __wrap__cmocka_run_group_tests(const char *group_name, const struct CMUnitTest *tests,
				   size_t num_tests, CMFixtureFunction group_setup,
				   CMFixtureFunction group_teardown)
{
	struct CMUnitTest *shadow;
	int r;

	/* A group setup's state replaces every initial state: no routing. */
	if (group_setup || !(shadow = calloc(num_tests, sizeof(*shadow))))
		return __real__cmocka_run_group_tests(group_name, tests, num_tests, group_setup,
						      group_teardown);
	for (size_t i = 0; i < num_tests; i++) {
		shadow[i] = tests[i];
		shadow[i].setup_func = enter;
		shadow[i].initial_state = (void *)&tests[i];
	}
	group = tests;
	signal(SIGTERM, on_term);
	r = __real__cmocka_run_group_tests(group_name, shadow, num_tests, NULL, group_teardown);
	free(shadow);
	return r;
}
