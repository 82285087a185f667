/* seccomp.c - the monitor's seccomp filters as data: what each thread class
 * may ask of the kernel. make compiles these tables into BPF programs at
 * build time (scripts/seccomp-bpf.c, through libseccomp); src/sandbox/
 * sandbox.c installs them and reports a refused call.
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
#include "sandbox_priv.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "cvisor/util.h"

/* clang-format off */
#define ALLOW(sc) { __NR_##sc, -1, 0, 0 }
#define NO_EXEC(sc) { __NR_##sc, 2, PROT_EXEC, 0 } /* mmap, mprotect: prot */
#define ARG_IS(sc, i, v) { __NR_##sc, i, 0xffffffffu, v }

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
 * arrives: accept, the peer's credentials, one request, one reply;
 * `cvisor kill` unlinks the name) and the incoming prefault thread
 * (madvise). */
static const struct sc_rule worker_rules[] = {
	ALLOW(read), ALLOW(poll), ALLOW(ppoll), ALLOW(accept4), ALLOW(sendto), ALLOW(recvfrom),
	ALLOW(shutdown), ALLOW(unlink),
	ALLOW(getsockopt), /* SO_PEERCRED, SO_PEERGROUPS: ctl/access.c */
	ALLOW(getrandom), /* json-c seeds its hash tables */
};

/* The sanitizers' runtimes (the hostile suite's ASan cvisor, the TSan
 * tests): their allocator and error reports. Only in those builds. */
static const struct sc_rule sanitizer_rules[] = {
	ALLOW(sigaltstack), ALLOW(prctl), ALLOW(sched_getaffinity), ALLOW(openat), ALLOW(read),
	ALLOW(readlink), ALLOW(newfstatat), ALLOW(getrusage),
};

#define LIST(a) { a, ARRAY_SIZE(a) }
/* clang-format on */

const struct sc_rules sandbox_common_rules = LIST(common_rules);
const struct sc_ulongs sandbox_common_ioctls = LIST(common_ioctls);
const struct sc_rules sandbox_sanitizer_rules = LIST(sanitizer_rules);

const struct class_filter sandbox_classes[SANDBOX_NCLASS] = {
	[SANDBOX_VCPU] = { "vcpu", LIST(vcpu_rules), LIST(vcpu_ioctls), { NULL, 0 } },
	[SANDBOX_MAIN] = { "main", LIST(main_rules), LIST(main_ioctls), LIST(main_families) },
	[SANDBOX_WORKER] = { "worker", LIST(worker_rules), { NULL, 0 }, { NULL, 0 } },
};

const char *sandbox_class_name(enum sandbox_class c)
{
	return sandbox_classes[c].name;
}

void sandbox_class_counts(enum sandbox_class c, unsigned int *nsyscalls, unsigned int *nioctls,
			  unsigned int *nfamilies)
{
	const struct class_filter *f = &sandbox_classes[c];
	const struct sc_rules *all[2] = { &sandbox_common_rules, &f->rules };
	int seen[128];
	unsigned int n = 0;

	for (int k = 0; k < 2; k++)
		for (unsigned int i = 0; i < all[k]->n; i++) {
			unsigned int j = 0;

			while (j < n && seen[j] != all[k]->v[i].nr)
				j++;
			if (j == n && n < ARRAY_SIZE(seen))
				seen[n++] = all[k]->v[i].nr;
		}
	/* ioctl, and socket when a family is allowed */
	*nsyscalls = n + 1 + (f->families.n > 0);
	*nioctls = sandbox_common_ioctls.n + f->ioctls.n;
	*nfamilies = f->families.n;
}
