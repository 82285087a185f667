/* test_host_limits.c - which host limit a resource error names
 * (src/host/limits.c): the open-file limit for EMFILE with this process's
 * own RLIMIT_NOFILE, nothing for errors that are not about a resource.
 * The task and memory limits depend on the host's state: tests/e2e/
 * clones.sh hits a pids cgroup on purpose and checks that line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "cvisor/host_limits.h"

static void emfile_names_rlimit_nofile(void **state)
{
	struct rlimit old, low;
	char buf[CV_ERROR_MAX];

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 77 < old.rlim_max ? 77 : old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	host_limit_hint(-EMFILE, buf, sizeof(buf));
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	if (low.rlim_cur == 77)
		assert_non_null(strstr(buf, "may open 77 files, RLIMIT_NOFILE"));
	assert_true(buf[0] == ' ' && buf[strlen(buf) - 1] == ')');
}

static void other_errors_say_nothing(void **state)
{
	char buf[CV_ERROR_MAX] = "x";

	(void)state;
	host_limit_hint(-EINVAL, buf, sizeof(buf));
	assert_string_equal(buf, "");
	host_limit_hint(-ENOENT, buf, sizeof(buf));
	assert_string_equal(buf, "");
	host_limit_hint(0, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void explain_appends_within_the_message(void **state)
{
	struct cv_error e = { 0 };

	(void)state;
	memset(e.msg, 'a', sizeof(e.msg) - 1);
	e.code = -EMFILE;
	host_limit_explain(&e); /* full: stays as it was, terminated */
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
	e = (struct cv_error){ 0 };
	(void)cv_fail(&e, 1, -EMFILE, "control socket: Too many open files");
	host_limit_explain(&e);
	assert_true(strncmp(e.msg, "control socket: Too many open files (", 37) == 0);
	e = (struct cv_error){ 0 };
	(void)cv_fail(&e, 1, -EINVAL, "bad");
	host_limit_explain(&e);
	assert_string_equal(e.msg, "bad");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(emfile_names_rlimit_nofile),
		cmocka_unit_test(other_errors_say_nothing),
		cmocka_unit_test(explain_appends_within_the_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
