/* sandbox.c - puts a thread under its class's seccomp filter and reports
 * a refused call. The filters are the tables of src/sandbox/seccomp.c,
 * compiled into BPF when cvisor is built (scripts/seccomp-bpf.c writes
 * build/gen/seccomp_bpf.h): a start compiles nothing and links no
 * libseccomp. */
#include "sandbox_priv.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include "cvisor/util.h"
#include "seccomp_bpf.h"

/* The sanitizers' runtimes need the extra rules (sandbox_sanitizer_rules). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZERS 1
#endif
#endif
#ifndef SANITIZERS
#define SANITIZERS 0
#endif

/* The programs this process installs (NULL: none, --seccomp off). */
static const struct sandbox_bpf *progs;

/* The trapped thread's class and name, for the report. */
static _Thread_local const char *thread_class;
static _Thread_local char thread_name[16];

/* ---- the report ---- */

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

/* v in base (10 or 16, with 0x). */
static size_t put_uint(char *buf, size_t at, size_t cap, uint64_t v, unsigned int base)
{
	char d[24];
	int n = 0;

	do
		d[n++] = "0123456789abcdef"[v % base];
	while ((v /= base) && n < (int)sizeof(d));
	if (base == 16)
		at = put(buf, at, cap, "0x");
	while (n > 0 && at < cap)
		buf[at++] = d[--n];
	return at;
}

/* The argument the filter looked at, for the calls it checks one of. */
static size_t put_arg(char *buf, size_t n, size_t cap, unsigned int nr, const ucontext_t *uc)
{
	const greg_t *g = uc->uc_mcontext.gregs;

	if (nr == SYS_ioctl)
		return put_uint(buf, put(buf, n, cap, " request "), cap,
				(uint64_t)g[REG_RSI] & 0xffffffffu, 16);
	if (nr == SYS_socket || nr == SYS_socketpair)
		return put_uint(buf, put(buf, n, cap, " family "), cap, (uint64_t)g[REG_RDI], 10);
	if (nr == SYS_mmap || nr == SYS_mprotect)
		return put_uint(buf, put(buf, n, cap, " prot "), cap, (uint64_t)g[REG_RDX], 16);
	return n;
}

/* Async-signal-safe: one write, then the process ends with status 1. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	unsigned int nr = (unsigned int)si->si_syscall;
	const char *name =
		nr < ARRAY_SIZE(sandbox_syscall_names) ? sandbox_syscall_names[nr] : NULL;
	char line[200];
	size_t n = 0, cap = sizeof(line) - 1;

	(void)sig;
	n = put(line, n, cap, "cvisor: seccomp: ");
	n = put(line, n, cap, thread_class ? thread_class : "unknown");
	n = put(line, n, cap, " thread (");
	n = put(line, n, cap, thread_name);
	n = put(line, n, cap, ") made syscall ");
	n = put(line, n, cap, name ? name : "?");
	n = put(line, n, cap, " (");
	n = put_uint(line, n, cap, nr, 10);
	n = put(line, n, cap, ")");
	n = put_arg(line, n, cap, nr, uc);
	n = put(line, n, cap, ": not allowed\n");
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to say it */
	}
	syscall(SYS_exit_group, 1);
}

int sandbox_init(enum sandbox_mode mode, struct cv_error *e)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };

	if (mode == SANDBOX_OFF || progs)
		return 0;
	sigfillset(&sa.sa_mask);
	if (mode == SANDBOX_ON && sigaction(SIGSYS, &sa, NULL) < 0)
		return cv_fail(e, CV_EXIT_FAIL, -errno, "seccomp: SIGSYS handler: %s",
			       strerror(errno));
	progs = sandbox_bpf[SANITIZERS][mode == SANDBOX_LOG];
	return 0;
}

int sandbox_enter(enum sandbox_class c)
{
	struct sock_fprog prog;
	sigset_t sys;

	if (!progs)
		return 0;
	thread_class = sandbox_classes[c].name;
	if (prctl(PR_GET_NAME, thread_name, 0, 0, 0) < 0)
		thread_name[0] = '\0';
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	/* A blocked SIGSYS would kill without the report. */
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	/* The kernel copies the program; it never writes through the pointer. */
	prog.len = progs[c].len;
	prog.filter = (struct sock_filter *)(uintptr_t)progs[c].insns;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return -errno;
	return 0;
}
