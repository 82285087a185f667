/* test_seccomp.c - the monitor's seccomp filters (src/sandbox/seccomp.c),
 * the very tables the product installs: for each thread class a helper
 * process enters the class's filter and makes one call outside it; the
 * helper must end with status 1 and the report line naming the thread
 * class and the call. A call inside the filter must go through, and the
 * log mode must let a refused call run. Prints each class's counts. */
#include <errno.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/sandbox.h"

/* What the helper does once in its filter; its return is its exit status
 * (if it lives). */
typedef int (*helper_fn)(void);

struct outcome {
	int status; /* the wait status */
	char err[512];
};

/* Fork a helper that enters class c's filter in mode and runs fn; collect
 * its status and stderr. */
static void run_helper(enum sandbox_class c, enum sandbox_mode mode, helper_fn fn,
		       struct outcome *o)
{
	int p[2];
	pid_t pid;
	ssize_t n;
	size_t len = 0;

	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cv_error e = { 0 };

		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		if (sandbox_init(mode, &e) || sandbox_enter(c))
			_exit(99);
		_exit(fn());
	}
	close(p[1]);
	while ((n = read(p[0], o->err + len, sizeof(o->err) - 1 - len)) > 0)
		len += (size_t)n;
	o->err[len] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &o->status, 0), pid);
}

static int inet_socket(void)
{
	return syscall(SYS_socket, AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 3;
}

static int netlink_socket(void)
{
	return syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0) >= 0 ? 0 : 3;
}

static int unix_socket(void)
{
	return syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0) >= 0 ? 0 : 3;
}

/* An ioctl request the main thread never makes once the guest runs. */
static int create_vm(void)
{
	syscall(SYS_ioctl, -1, KVM_CREATE_VM, 0);
	return 0;
}

static int allowed_calls(void)
{
	static const char hi[] = "still here\n";

	return syscall(SYS_getpid) > 0 && write(STDERR_FILENO, hi, sizeof(hi) - 1) > 0 ? 0 : 3;
}

static void assert_refused(const struct outcome *o, const char *cls, const char *call)
{
	char want[96];

	assert_true(WIFEXITED(o->status));
	assert_int_equal(WEXITSTATUS(o->status), 1);
	snprintf(want, sizeof(want), "cvisor: seccomp: %s thread (", cls);
	assert_non_null(strstr(o->err, want));
	snprintf(want, sizeof(want), ") made syscall %s: not allowed\n", call);
	assert_non_null(strstr(o->err, want));
}

/* Per class, one call outside its filter and the report it must give. */
static const struct refusal {
	enum sandbox_class c;
	helper_fn fn;
	const char *cls, *call;
} refusals[] = {
	{ SANDBOX_VCPU, inet_socket, "vcpu", "socket (41) family 2" },
	{ SANDBOX_MAIN, netlink_socket, "main", "socket (41) family 16" },
	{ SANDBOX_MAIN, create_vm, "main", "ioctl (16) request 0xae01" },
	{ SANDBOX_WORKER, unix_socket, "worker", "socket (41) family 1" },
};

static void test_each_class_refuses(void **state)
{
	struct outcome o;

	(void)state;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		run_helper(refusals[i].c, SANDBOX_ON, refusals[i].fn, &o);
		printf("# %s", o.err);
		assert_refused(&o, refusals[i].cls, refusals[i].call);
	}
}

/* The filters are not kill-everything: what they allow goes through. */
static void test_allowed_calls_run(void **state)
{
	struct outcome o;

	(void)state;
	for (int c = 0; c < SANDBOX_NCLASS; c++) {
		run_helper((enum sandbox_class)c, SANDBOX_ON, allowed_calls, &o);
		assert_true(WIFEXITED(o.status));
		assert_int_equal(WEXITSTATUS(o.status), 0);
		assert_string_equal(o.err, "still here\n");
	}
}

/* --seccomp log: the kernel logs the call and runs it. */
static void test_log_mode_runs_the_call(void **state)
{
	struct outcome o;

	(void)state;
	run_helper(SANDBOX_WORKER, SANDBOX_LOG, unix_socket, &o);
	assert_true(WIFEXITED(o.status));
	assert_int_equal(WEXITSTATUS(o.status), 0);
	assert_string_equal(o.err, "");
}

/* The counts the README and bench/RESULTS.md quote. */
static void test_counts(void **state)
{
	(void)state;
	for (int c = 0; c < SANDBOX_NCLASS; c++) {
		unsigned int ns, ni, nf;

		sandbox_class_counts((enum sandbox_class)c, &ns, &ni, &nf);
		printf("# seccomp: %s thread: %u system calls, %u ioctl requests, %u socket "
		       "families\n",
		       sandbox_class_name((enum sandbox_class)c), ns, ni, nf);
		assert_true(ns > 10 && ns < 150);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_class_refuses),
		cmocka_unit_test(test_allowed_calls_run),
		cmocka_unit_test(test_log_mode_runs_the_call),
		cmocka_unit_test(test_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
