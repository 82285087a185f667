/* seccomp.c - the monitor's seccomp filters as data: what each thread class
 * may ask of the kernel, then the code that turns the tables into BPF
 * (libseccomp) and the SIGSYS report.
 *
 * A class's filter is the common rules plus its own: system calls allowed
 * outright or with one argument checked (mmap and mprotect never with
 * PROT_EXEC: the monitor maps no code once the guest runs), the ioctl
 * requests it may make (any fd: KVM's and the tap's numbers do not
 * collide) and the socket families it may open. Anything else is refused:
 * with --seccomp on the thread gets SIGSYS, whose handler writes one line
 * naming the thread and the call and ends the process with status 1 (what
 * was written to disk is the kernel's already); with --seccomp log the
 * kernel logs the call (dmesg: "audit: type=1326 ... comm=... syscall=N")
 * and runs it.
 *
 * Filters stack and threads inherit them, so each thread enters its own
 * from an unfiltered creator: vCPU threads and the workers are started by
 * the main thread before it enters its filter (see monitor_go). io_uring's
 * requests run in the kernel's workers and are not seen by seccomp; the
 * rings are set up before the filters. */
#include "cvisor/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

/* clang-format off */
/* One allowed system call: outright (arg < 0), or when
 * (args[arg] & mask) == val. */
struct sc_rule {
	int nr;
	int arg;
	uint64_t mask, val;
};

#define ALLOW(sc) { SCMP_SYS(sc), -1, 0, 0 }
#define NO_EXEC(sc) { SCMP_SYS(sc), 2, PROT_EXEC, 0 } /* mmap, mprotect: prot */
#define ARG_IS(sc, i, v) { SCMP_SYS(sc), i, 0xffffffffu, v }

/* Every thread: memory, locks, time, its own signals, the report (write)
 * and exit. */
static const struct sc_rule common_rules[] = {
	ALLOW(futex), ALLOW(write), ALLOW(exit), ALLOW(exit_group), ALLOW(rt_sigreturn),
	ALLOW(rt_sigprocmask), ALLOW(restart_syscall), ALLOW(gettid), ALLOW(getpid),
	ALLOW(clock_gettime), ALLOW(clock_nanosleep), ALLOW(nanosleep), ALLOW(sched_yield),
	ALLOW(brk), ALLOW(munmap), ALLOW(madvise), ALLOW(mremap), NO_EXEC(mmap), NO_EXEC(mprotect),
	ALLOW(close),
};

/* Every thread: isatty() (stdio asks before it buffers). */
static const unsigned long common_ioctls[] = { TCGETS };

/* vCPU threads: KVM_RUN and what an exit handler does on the spot (port
 * and MMIO devices, the syscall shim, the dirty ring, a virtio status
 * write that activates or resets a device). */
static const struct sc_rule vcpu_rules[] = {
	ALLOW(read), ALLOW(writev), ALLOW(pread64), ALLOW(pwrite64), ALLOW(io_uring_enter),
	ALLOW(tgkill), ALLOW(epoll_ctl), ALLOW(poll),
	/* a restored guest's lost memory file (snapshot/memfile.c's SIGBUS
	 * handler): fstat of the fd (never a path), zeros mapped in its place */
	ALLOW(fstat), ARG_IS(newfstatat, 3, AT_EMPTY_PATH), ALLOW(rt_sigaction),
};

static const unsigned long vcpu_ioctls[] = {
	KVM_RUN, KVM_KVMCLOCK_CTRL, KVM_GET_FPU, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS,
	KVM_SET_SREGS, KVM_TRANSLATE, KVM_GET_MSRS, KVM_SET_MSRS, KVM_GET_VCPU_EVENTS,
	KVM_SET_VCPU_EVENTS, KVM_RESET_DIRTY_RINGS, KVM_SET_USER_MEMORY_REGION, KVM_IRQ_LINE,
	KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IRQFD, KVM_IOEVENTFD, TUNSETOFFLOAD,
};

/* The main thread: the event loop (devices' backends, console, timers,
 * signals), the control socket, snapshots, the migration source. */
static const struct sc_rule main_rules[] = {
	ALLOW(read), ALLOW(readv), ALLOW(pread64), ALLOW(preadv), ALLOW(preadv2), ALLOW(writev),
	ALLOW(pwrite64), ALLOW(pwritev), ALLOW(pwritev2), ALLOW(lseek), ALLOW(openat), ALLOW(fstat),
	ALLOW(newfstatat), ALLOW(statx), ALLOW(fcntl), ALLOW(dup), ALLOW(dup2), ALLOW(dup3),
	ALLOW(pipe2), ALLOW(epoll_wait), ALLOW(epoll_pwait), ALLOW(epoll_ctl), ALLOW(eventfd2),
	ALLOW(timerfd_create), ALLOW(timerfd_settime), ALLOW(timerfd_gettime), ALLOW(poll),
	ALLOW(ppoll), ALLOW(accept), ALLOW(accept4), ALLOW(connect), ALLOW(bind), ALLOW(listen),
	ALLOW(getsockname), ALLOW(getpeername), ALLOW(getsockopt), ALLOW(setsockopt), ALLOW(shutdown),
	ALLOW(sendto), ALLOW(recvfrom), ALLOW(sendmsg), ALLOW(recvmsg),
	ARG_IS(socketpair, 0, AF_UNIX), ALLOW(unlink), ALLOW(unlinkat), ALLOW(rename),
	ALLOW(renameat), ALLOW(renameat2), ALLOW(ftruncate), ALLOW(fallocate), ALLOW(fsync),
	ALLOW(fdatasync), ALLOW(flock), ALLOW(fchmod), ALLOW(io_uring_enter), ALLOW(getrandom),
	ALLOW(sched_getaffinity), ALLOW(sched_setaffinity), ALLOW(tgkill), ALLOW(chdir),
	ALLOW(getcwd), ALLOW(readlink), ALLOW(readlinkat), ALLOW(mkdir), ALLOW(mkdirat),
	ALLOW(getdents64), ALLOW(fstatfs), ALLOW(getuid), ALLOW(geteuid), ALLOW(getgid),
	ALLOW(getegid), ALLOW(uname), ALLOW(sysinfo), ALLOW(getrusage), ALLOW(times),
	ALLOW(memfd_create), ALLOW(fadvise64), ALLOW(wait4), ALLOW(rmdir), ALLOW(linkat),
	ALLOW(umask), ALLOW(access), ALLOW(faccessat), ALLOW(faccessat2), ALLOW(sync_file_range),
	ALLOW(epoll_create1), ALLOW(signalfd4), ALLOW(rt_sigaction),
};

static const unsigned long main_ioctls[] = {
	/* pause, save, the migration source (state, dirty pages) */
	KVM_GET_MSR_INDEX_LIST, KVM_GET_SUPPORTED_CPUID, KVM_CHECK_EXTENSION, KVM_GET_TSC_KHZ,
	KVM_ENABLE_CAP,
	KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_MSRS, KVM_SET_MSRS,
	KVM_GET_FPU, KVM_SET_FPU, KVM_GET_XSAVE, KVM_SET_XSAVE, KVM_GET_XCRS, KVM_SET_XCRS,
	KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_GET_MP_STATE,
	KVM_SET_MP_STATE, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, KVM_GET_CLOCK, KVM_SET_CLOCK,
	KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, KVM_GET_PIT2, KVM_SET_PIT2, KVM_GET_DIRTY_LOG,
	KVM_CLEAR_DIRTY_LOG, KVM_RESET_DIRTY_RINGS, KVM_SET_USER_MEMORY_REGION, KVM_KVMCLOCK_CTRL,
	/* interrupts and notifications of the devices */
	KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IRQFD, KVM_IOEVENTFD,
	/* the tap (offloads follow the driver), the console, the control socket */
	TUNSETOFFLOAD, TCSETS, TCSETSW, TCSETSF, FIONREAD, FIONBIO,
};

/* user networking (libslirp), migration, vsock and the control socket */
static const int main_families[] = { AF_UNIX, AF_INET, AF_INET6 };

/* Workers: the incoming waiter (the control socket until the guest
 * arrives: accept, one request, one reply; `cvisor kill` unlinks the name)
 * and the incoming prefault thread (madvise). */
static const struct sc_rule worker_rules[] = {
	ALLOW(read), ALLOW(poll), ALLOW(ppoll), ALLOW(accept4), ALLOW(sendto), ALLOW(recvfrom),
	ALLOW(shutdown), ALLOW(unlink),
	ALLOW(getrandom), /* json-c seeds its hash tables */
};

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* The sanitizers' runtimes (the hostile suite's ASan cvisor): their
 * allocator and error reports. Not in the product. */
static const struct sc_rule sanitizer_rules[] = {
	ALLOW(sigaltstack), ALLOW(prctl), ALLOW(sched_getaffinity), ALLOW(openat), ALLOW(read),
	ALLOW(readlink), ALLOW(newfstatat), ALLOW(getrusage),
};
#else
static const struct sc_rule sanitizer_rules[1];
#endif
/* clang-format on */

#define LIST(a) a, ARRAY_SIZE(a)

static const struct class_filter {
	const char *name;
	const struct sc_rule *rules;
	unsigned int nrules;
	const unsigned long *ioctls;
	unsigned int nioctls;
	const int *families;
	unsigned int nfamilies;
} classes[SANDBOX_NCLASS] = {
	[SANDBOX_VCPU] = { "vcpu", LIST(vcpu_rules), LIST(vcpu_ioctls), NULL, 0 },
	[SANDBOX_MAIN] = { "main", LIST(main_rules), LIST(main_ioctls), LIST(main_families) },
	[SANDBOX_WORKER] = { "worker", LIST(worker_rules), NULL, 0, NULL, 0 },
};

/* ---- the filters ---- */

static struct sock_fprog progs[SANDBOX_NCLASS];
static bool active;

/* The names of the system calls, resolved before any filter: the SIGSYS
 * handler may not allocate. */
#define SYSCALL_NAMES 512
static char *names[SYSCALL_NAMES];

/* The trapped thread's class and name, for the report. */
static _Thread_local const char *thread_class;
static _Thread_local char thread_name[16];

const char *sandbox_class_name(enum sandbox_class c)
{
	return classes[c].name;
}

static int add_rule(scmp_filter_ctx ctx, const struct sc_rule *r)
{
	if (r->arg < 0)
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
	return seccomp_rule_add(
		ctx, SCMP_ACT_ALLOW, r->nr, 1,
		SCMP_CMP((unsigned int)r->arg, SCMP_CMP_MASKED_EQ, r->mask, r->val));
}

/* ioctl's request is an unsigned int to the kernel: compare the low 32
 * bits whatever the caller's sign extension. */
static int add_ioctls(scmp_filter_ctx ctx, const unsigned long *req, unsigned int n)
{
	int r = 0;

	for (unsigned int i = 0; i < n && !r; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, req[i]));
	return r;
}

static int add_class(scmp_filter_ctx ctx, const struct class_filter *f)
{
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(common_rules) && !r; i++)
		r = add_rule(ctx, &common_rules[i]);
	for (unsigned int i = 0; i < f->nrules && !r; i++)
		r = add_rule(ctx, &f->rules[i]);
	for (size_t i = 0; i < ARRAY_SIZE(sanitizer_rules) && !r; i++)
		if (sanitizer_rules[i].nr)
			r = add_rule(ctx, &sanitizer_rules[i]);
	if (!r)
		r = add_ioctls(ctx, common_ioctls, ARRAY_SIZE(common_ioctls));
	if (!r)
		r = add_ioctls(ctx, f->ioctls, f->nioctls);
	for (unsigned int i = 0; i < f->nfamilies && !r; i++)
		r = seccomp_rule_add(
			ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, (uint64_t)f->families[i]));
	return r;
}

/* Class f's filter as a BPF program, through a memfd (libseccomp 2.5
 * exports to a file descriptor only). */
static int compile(const struct class_filter *f, uint32_t deflt, struct sock_fprog *out)
{
	scmp_filter_ctx ctx = seccomp_init(deflt);
	int fd = -1, r;
	off_t len;

	if (!ctx)
		return -ENOMEM;
	if ((r = add_class(ctx, f)))
		goto out;
	fd = memfd_create("cvisor-seccomp", MFD_CLOEXEC);
	if (fd < 0 || (r = seccomp_export_bpf(ctx, fd))) {
		r = fd < 0 ? -errno : r;
		goto out;
	}
	len = lseek(fd, 0, SEEK_END);
	out->len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
	out->filter = malloc((size_t)len);
	if (len <= 0 || len % (off_t)sizeof(struct sock_filter) || !out->filter)
		r = -ENOMEM;
	else if (pread(fd, out->filter, (size_t)len, 0) != len)
		r = -EIO;
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return r;
}

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
	char line[200];
	size_t n = 0, cap = sizeof(line) - 1;

	(void)sig;
	n = put(line, n, cap, "cvisor: seccomp: ");
	n = put(line, n, cap, thread_class ? thread_class : "unknown");
	n = put(line, n, cap, " thread (");
	n = put(line, n, cap, thread_name);
	n = put(line, n, cap, ") made syscall ");
	n = put(line, n, cap, nr < SYSCALL_NAMES && names[nr] ? names[nr] : "?");
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

static int install_handler(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };

	sigfillset(&sa.sa_mask);
	for (int nr = 0; nr < SYSCALL_NAMES; nr++)
		if (!names[nr])
			names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

int sandbox_init(enum sandbox_mode mode, struct cv_error *e)
{
	uint32_t deflt = mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	int r;

	if (mode == SANDBOX_OFF || active)
		return 0;
	if (mode == SANDBOX_ON && (r = install_handler()))
		return cv_fail(e, CV_EXIT_FAIL, r, "seccomp: SIGSYS handler: %s", strerror(-r));
	for (int c = 0; c < SANDBOX_NCLASS; c++) {
		if ((r = compile(&classes[c], deflt, &progs[c])))
			return cv_fail(e, CV_EXIT_FAIL, r,
				       "seccomp: building the %s thread filter: %s (try --seccomp "
				       "off)",
				       classes[c].name, strerror(-r));
	}
	active = true;
	return 0;
}

int sandbox_enter(enum sandbox_class c)
{
	sigset_t sys;

	if (!active)
		return 0;
	thread_class = classes[c].name;
	if (prctl(PR_GET_NAME, thread_name, 0, 0, 0) < 0)
		thread_name[0] = '\0';
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	/* A blocked SIGSYS would kill without the report. */
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[c]) < 0)
		return -errno;
	return 0;
}

void sandbox_class_counts(enum sandbox_class c, unsigned int *nsyscalls, unsigned int *nioctls,
			  unsigned int *nfamilies)
{
	const struct class_filter *f = &classes[c];
	const struct sc_rule *all[2] = { common_rules, f->rules };
	unsigned int nall[2] = { ARRAY_SIZE(common_rules), f->nrules };
	int seen[128];
	unsigned int n = 0;

	for (int k = 0; k < 2; k++)
		for (unsigned int i = 0; i < nall[k]; i++) {
			unsigned int j = 0;

			while (j < n && seen[j] != all[k][i].nr)
				j++;
			if (j == n && n < ARRAY_SIZE(seen))
				seen[n++] = all[k][i].nr;
		}
	/* ioctl, and socket when a family is allowed */
	*nsyscalls = n + 1 + (f->nfamilies > 0);
	*nioctls = ARRAY_SIZE(common_ioctls) + f->nioctls;
	*nfamilies = f->nfamilies;
}
