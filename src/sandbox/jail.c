/* jail.c - `--jail` (see jail.h for the two steps and the keeper).
 *
 * The order in jail_enter follows Firecracker's jailer and minijail:
 * namespaces first (they need CAP_SYS_ADMIN), then the new root, then the
 * rlimits, then the groups, gid and uid, the capability sets last (the
 * bounding set needs CAP_SETPCAP, so it is dropped before the uid), and
 * no_new_privs. The seccomp filters come after, in monitor_go. */
#include "cvisor/jail.h"
#include "cvisor/qcow2.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cvisor/ramwalk.h"

#define BAD(...) cv_fail(e, CV_EXIT_USAGE, -EINVAL, __VA_ARGS__)

/* Keeper messages (one byte, SOCK_SEQPACKET; each answered with one byte):
 * the monitor's cgroup (followed by the struct), the jail is entered (no
 * cgroup is taken after it: the jailed side is not trusted), remove the
 * socket, remove the socket and the lock. */
enum { MSG_CGROUP = 'C', MSG_JAILED = 'J', MSG_UNLINK_SOCK = 'S', MSG_UNLINK_NAME = 'N' };

int jail_prepare(struct jail *j, const struct jail_config *cfg, const char *run_dir,
		 const char *name, struct cv_error *e)
{
	char top[PATH_MAX];
	struct stat st;

	memset(j, 0, sizeof(*j));
	j->netns_fd = j->keeper_fd = -1;
	if (!cfg->on) {
		if (cfg->dir || cfg->netns || cfg->uid || cfg->gid)
			return BAD("--%s needs --jail", cfg->dir     ? "jail-dir"
							: cfg->netns ? "netns"
							: cfg->uid   ? "uid"
								     : "gid");
		return 0;
	}
	if (geteuid() != 0)
		return BAD("--jail needs root (it makes namespaces and changes its uid); run "
			   "without --jail as an unprivileged user");
	j->on = true;
	j->uid = cfg->uid ? cfg->uid : JAIL_DEFAULT_UID;
	j->gid = cfg->gid ? cfg->gid : JAIL_DEFAULT_GID;
	snprintf(j->hostname, sizeof(j->hostname), "%s", name ? name : "cvisor");
	if (cfg->netns) {
		int fd = open(cfg->netns, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return cv_fail(e, CV_EXIT_USAGE, -errno, "--netns %s: %s", cfg->netns,
				       strerror(errno));
		if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
			close(fd);
			return BAD("--netns %s: not a network namespace (try /run/netns/NAME)",
				   cfg->netns);
		}
		j->netns_fd = fd;
	}
	if (cfg->dir) {
		if (stat(cfg->dir, &st) < 0 || !S_ISDIR(st.st_mode))
			return BAD("--jail-dir %s: %s", cfg->dir,
				   errno == ENOENT ? "no such directory" : "not a directory");
		if (!realpath(cfg->dir, j->dir))
			return cv_fail(e, CV_EXIT_USAGE, -errno, "--jail-dir %s: %s", cfg->dir,
				       strerror(errno));
		if (!strcmp(j->dir, "/"))
			return BAD("--jail-dir /: the jail cannot be the host's root");
		return 0;
	}
	/* RUN_DIR/jail/NAME: the run directory is root's and 0700 (made so
	 * here for an unnamed guest, which has no socket in it). */
	if ((size_t)snprintf(top, sizeof(top), "%s/jail", run_dir) >= sizeof(top) ||
	    (size_t)snprintf(j->dir, sizeof(j->dir), "%s/%s", top, name) >= sizeof(j->dir))
		return BAD("%s/jail/%s: path too long", run_dir, name);
	if ((mkdir(run_dir, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(top, 0700) < 0 && errno != EEXIST) ||
	    (mkdir(j->dir, 0700) < 0 && errno != EEXIST))
		return cv_fail(e, CV_EXIT_FAIL, -errno, "jail directory %s: %s", j->dir,
			       strerror(errno));
	j->made_dir = true;
	return 0;
}

/* ---- the keeper (outside, in the host's namespaces) ---- */

/* A monitor whose keeper is gone would leave its name behind, and nobody
 * would remove it: PR_SET_PDEATHSIG(SIGKILL), set at the fork and again
 * after the uid change (commit_creds clears it when the euid or egid
 * changes). A keeper that died before the prctl sent no signal, but its
 * end of the socketpair is closed (POLLHUP); getppid() cannot tell, the
 * keeper is outside the PID namespace (0). 0 or -errno. */
static int jail_tie_to_keeper(struct jail *j)
{
	struct pollfd p = { .fd = j->keeper_fd, .events = POLLIN };

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -errno;
	if (poll(&p, 1, 0) < 0)
		return -errno;
	return p.revents & (POLLHUP | POLLERR | POLLNVAL) ? -EPIPE : 0;
}

struct keeper {
	struct jail *j;
	const struct jail_keep *keep;
	struct cgroup cg;
	bool have_cg, jailed, sock_gone, name_gone;
	int lock_fd;
};

static void keeper_unlink(struct keeper *k, bool lock)
{
	if (!k->sock_gone && k->keep->sock_path && k->keep->sock_path[0])
		unlink(k->keep->sock_path);
	k->sock_gone = true;
	if (!lock || k->name_gone)
		return;
	if (k->keep->lock_path && k->keep->lock_path[0])
		unlink(k->keep->lock_path);
	cv_close(&k->lock_fd);
	k->name_gone = true;
	/* With the name: the next guest of this name makes it again (the
	 * monitor's mounts on it are its own namespace's). */
	if (k->j->made_dir && rmdir(k->j->dir) < 0)
		cv_debug("jail: rmdir %s: %s", k->j->dir, strerror(errno));
	k->j->made_dir = false;
}

/* One message from the monitor; false when the connection is gone. */
static bool keeper_message(struct keeper *k, int fd)
{
	struct {
		char type;
		struct cgroup cg;
	} msg;
	char ack = 1;
	ssize_t n = recv(fd, &msg, sizeof(msg), MSG_DONTWAIT);

	if (n <= 0)
		return n < 0 && (errno == EINTR || errno == EAGAIN);
	switch (msg.type) {
	case MSG_CGROUP:
		/* Only from a monitor not yet jailed, which is trusted. */
		if (!k->jailed && n == (ssize_t)sizeof(msg)) {
			k->cg = msg.cg;
			k->have_cg = msg.cg.ndirs <= CGROUP_MAX_DIRS;
		}
		break;
	case MSG_JAILED:
		k->jailed = true;
		break;
	case MSG_UNLINK_SOCK:
		keeper_unlink(k, false);
		break;
	case MSG_UNLINK_NAME:
		keeper_unlink(k, true);
		break;
	default:
		ack = 0;
	}
	/* Never wait on the jailed side: a monitor that does not read its
	 * acks is no longer served. */
	return send(fd, &ack, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1;
}

/* Forward the stop signals, serve the monitor's messages, wait for its
 * end: nothing but the child's end (or its being gone, ECHILD) ends the
 * loop, since what follows removes its name. */
static int keeper_run(struct keeper *k, pid_t child, int fd)
{
	sigset_t set;
	int sfd, ws = 0;
	bool talking = true;
	pid_t w;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	for (;;) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN },
				       { .fd = talking ? fd : -1, .events = POLLIN } };
		struct signalfd_siginfo si;

		if ((w = waitpid(child, &ws, WNOHANG)) == child)
			break;
		if (w < 0 && errno == ECHILD) {
			cv_debug("jail: the monitor is gone, its status unknown");
			ws = CV_EXIT_FAIL << 8;
			break;
		}
		if (poll(p, 2, sfd < 0 ? 100 : -1) < 0) {
			/* EINTR, or ENOMEM: try again, not too fast. */
			if (errno != EINTR)
				poll(NULL, 0, 100);
			continue;
		}
		if (p[1].revents && !keeper_message(k, fd))
			talking = false;
		if (p[0].revents && read(sfd, &si, sizeof(si)) == sizeof(si) &&
		    si.ssi_signo != SIGCHLD)
			kill(child, (int)si.ssi_signo);
	}
	if (sfd >= 0)
		close(sfd);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return WEXITSTATUS(ws);
}

int jail_fork(struct jail *j, const struct jail_keep *keep, int *status, struct cv_error *e)
{
	struct keeper k = { .j = j, .keep = keep, .lock_fd = keep->lock_fd };
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return cv_fail(e, CV_EXIT_FAIL, -errno, "jail: socketpair: %s", strerror(errno));
	/* Only this process's children go into the new namespace. */
	if (unshare(CLONE_NEWPID) < 0) {
		int r = -errno;

		close(sv[0]);
		close(sv[1]);
		return cv_fail(e, CV_EXIT_FAIL, r, "jail: new PID namespace: %s", strerror(-r));
	}
	/* An inherited SIG_IGN would have the kernel reap the monitor, and
	 * the keeper would never learn its status. */
	signal(SIGCHLD, SIG_DFL);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int r = -errno;

		close(sv[0]);
		close(sv[1]);
		return cv_fail(e, CV_EXIT_FAIL, r, "jail: fork: %s", strerror(-r));
	}
	if (pid == 0) {
		pid_t host;

		close(sv[0]);
		j->keeper_fd = sv[1];
		if (recv(sv[1], &host, sizeof(host), 0) != sizeof(host) || jail_tie_to_keeper(j))
			return cv_fail(e, CV_EXIT_FAIL, -EIO, "jail: the keeper went away");
		j->host_pid = host;
		return 0;
	}
	close(sv[1]);
	if (send(sv[0], &pid, sizeof(pid), MSG_NOSIGNAL) != sizeof(pid))
		cv_debug("jail: telling the monitor its pid: %s", strerror(errno));
	/* The keeper holds nothing the monitor serves: a detaching parent
	 * reads the monitor's stderr and ready byte, so ours go. */
	if (keep->ready_fd >= 0)
		close(keep->ready_fd);
	if (keep->listen_fd >= 0)
		close(keep->listen_fd);
	if (keep->log_fd >= 0 && dup2(keep->log_fd, STDERR_FILENO) < 0)
		cv_debug("jail: keeper's stderr: %s", strerror(errno));
	if (keep->log_fd >= 0)
		close(keep->log_fd);
	*status = keeper_run(&k, pid, sv[0]);
	close(sv[0]);
	keeper_unlink(&k, true);
	/* cgroup_leave moves cg.pid home first: the monitor's pid was its
	 * namespace's (1), which here is the host's init. The keeper is
	 * home already. */
	k.cg.pid = (int)getpid();
	if (k.have_cg)
		cgroup_leave(&k.cg);
	if (j->netns_fd >= 0)
		close(j->netns_fd);
	return 1;
}

/* ---- the monitor's side ---- */

/* One request to the keeper and its ack. The main thread and the
 * incoming waiter's thread (a kill's unlink) may both ask: one at a time,
 * or their acks could cross. */
static int keeper_call(struct jail *j, const void *msg, size_t len)
{
	static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;
	char ack = 0;
	int r = 0;

	if (j->keeper_fd < 0)
		return -ENOTCONN;
	pthread_mutex_lock(&one);
	errno = 0; /* a recv at EOF sets none */
	if (send(j->keeper_fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len ||
	    recv(j->keeper_fd, &ack, 1, 0) != 1)
		r = errno ? -errno : -EIO;
	pthread_mutex_unlock(&one);
	return r ? r : ack ? 0 : -EINVAL;
}

int jail_tell_cgroup(struct jail *j, const struct cgroup *cg)
{
	struct {
		char type;
		struct cgroup cg;
	} msg = { MSG_CGROUP, *cg };

	if (!j->on)
		return 0;
	return j->entered ? -EPERM : keeper_call(j, &msg, sizeof(msg));
}

int jail_unlink(struct jail *j, bool lock)
{
	char type = lock ? MSG_UNLINK_NAME : MSG_UNLINK_SOCK;

	return keeper_call(j, &type, 1);
}

/* The largest regular file the monitor has open (disks, a restored
 * guest's FILE.mem, the log): RLIMIT_FSIZE applies to writes through fds
 * opened before it, so it must not be below any of them, nor below what a
 * qcow2 disk may grow to as the guest fills it. */
static uint64_t largest_open_file(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	uint64_t max = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct stat st;
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && fd != dirfd(d) && fstat(fd, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			uint64_t size = (uint64_t)st.st_size, grow = qcow2_max_file_size(fd);

			size = grow > size ? grow : size;
			max = size > max ? size : max;
		}
	}
	closedir(d);
	return max;
}

#define FAIL(what) cv_fail(e, CV_EXIT_FAIL, -errno, "jail: %s: %s", what, strerror(errno))

/* libslirp answers the guest's DNS (10.0.2.3) from the host's
 * /etc/resolv.conf, which it reads again (stat, then open) whenever it
 * may have changed, so it must stay visible: bound read-only on an empty
 * file made in the jail's tmpfs, as the file was when the guest started
 * (a host that replaces it by a rename is not followed). A host without
 * one needs nothing bound: libslirp does as it would outside. */
static int bind_resolv_conf(struct jail *j, struct cv_error *e)
{
	char etc[PATH_MAX + 8], file[PATH_MAX + 24];
	struct stat st;
	int fd;

	if (stat("/etc/resolv.conf", &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	snprintf(etc, sizeof(etc), "%s/etc", j->dir);
	snprintf(file, sizeof(file), "%s/resolv.conf", etc);
	if (mkdir(etc, 0555) < 0)
		return FAIL("mkdir etc");
	if ((fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444)) < 0)
		return FAIL("etc/resolv.conf");
	close(fd);
	if (mount("/etc/resolv.conf", file, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, file, NULL,
		  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return FAIL("binding /etc/resolv.conf");
	return 0;
}

/* The mounts: a private copy of the host's, a small read-only tmpfs on the
 * jail directory as the root (so the jail is empty whatever the
 * directory holds), the PID namespace's own /proc (only its processes,
 * no /proc/sys: subset=pid). */
static int jail_root(struct jail *j, struct cv_error *e)
{
	char proc[PATH_MAX + 8];
	int r;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return FAIL("making the mounts private");
	if (mount("cvisor-jail", j->dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=16k,nr_inodes=8,mode=0755") < 0)
		return FAIL("tmpfs on the jail directory");
	snprintf(proc, sizeof(proc), "%s/proc", j->dir);
	if (mkdir(proc, 0555) < 0)
		return FAIL("mkdir proc");
	if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "hidepid=invisible,subset=pid") < 0) {
		/* Linux before 5.8: a whole /proc (its processes still only). */
		cv_warn("jail: proc without subset=pid (%s): the jail's /proc shows /proc/sys "
			"and the host's other top-level files",
			strerror(errno));
		if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			return FAIL("mounting proc");
	}
	if (j->resolv_conf && (r = bind_resolv_conf(j, e)))
		return r;
	if (chdir(j->dir) < 0)
		return FAIL("chdir to the jail");
	/* pivot_root(".", "."): the old root ends up on top of the new one,
	 * and is detached at once (pivot_root(2), NOTES). */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return FAIL("pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return FAIL("detaching the host's root");
	if (chdir("/") < 0)
		return FAIL("chdir /");
	if (mount(NULL, "/", NULL,
		  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return FAIL("read-only root");
	return 0;
}

static int set_limit(int res, uint64_t v)
{
	struct rlimit rl = { .rlim_cur = v, .rlim_max = v };

	return setrlimit(res, &rl);
}

/* /proc/self/pagemap (which pages a save or a migration sends: ramwalk.h),
 * kept open from here: the uid change makes the process non-dumpable and
 * its /proc files root's, and access is checked only at open. Opened with
 * CAP_SYS_ADMIN out of the effective set, so that it shows no physical
 * page frames (pagemap.rst: they need CAP_SYS_ADMIN of the opener). */
static int keep_pagemap(struct cv_error *e)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct c[2];
	int r;

	if (syscall(SYS_capget, &h, c) < 0)
		return FAIL("capget");
	c[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
	if (syscall(SYS_capset, &h, c) < 0)
		return FAIL("capset");
	if ((r = ramwalk_keep_pagemap()))
		return cv_fail(e, CV_EXIT_FAIL, r, "jail: /proc/self/pagemap: %s", strerror(-r));
	return 0;
}

/* Every capability set empty: bounding and ambient while we may, then the
 * ids (which clear the effective and permitted sets), then capset for the
 * inheritable set, which a uid change keeps. */
static int drop_privileges(struct jail *j, struct cv_error *e)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct none[2] = { 0 };
	int r;

	if ((r = keep_pagemap(e)))
		return r;
	for (int c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return FAIL("dropping the bounding set");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return FAIL("clearing the ambient set");
	if (setgroups(0, NULL) < 0)
		return FAIL("setgroups");
	if (setresgid(j->gid, j->gid, j->gid) < 0)
		return FAIL("setresgid");
	if (setresuid(j->uid, j->uid, j->uid) < 0)
		return FAIL("setresuid");
	if (syscall(SYS_capset, &h, none) < 0)
		return FAIL("capset");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return FAIL("no_new_privs");
	/* After the last change of ids: it cleared the parent-death signal. */
	if ((r = jail_tie_to_keeper(j)))
		return cv_fail(e, CV_EXIT_FAIL, r, "jail: the keeper went away");
	/* Non-dumpable (the uid change made it so; say it): no process of
	 * the host with uid 64000 may ptrace it, process_vm_writev into it or
	 * take its root-opened fds (pidfd_getfd), and it leaves no core. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return FAIL("dumpable");
	if (getuid() != j->uid || geteuid() != j->uid || getgid() != j->gid)
		return cv_fail(e, CV_EXIT_FAIL, -EPERM, "jail: the uid did not change");
	return 0;
}

int jail_enter(struct jail *j, uint64_t fsize, struct cv_error *e)
{
	char type = MSG_JAILED;
	uint64_t biggest;
	int r;

	if (!j->on || j->entered)
		return 0;
	biggest = largest_open_file();
	fsize = fsize > biggest ? fsize : biggest;
	fsize = fsize > JAIL_FSIZE_MIN ? fsize : JAIL_FSIZE_MIN;
	if ((r = keeper_call(j, &type, 1)))
		return cv_fail(e, CV_EXIT_FAIL, r, "jail: the keeper: %s", strerror(-r));
	j->entered = true;
	/* Its own session, without a controlling terminal: a foreground
	 * monitor's stdin is root's terminal, and TIOCSTI on a controlling
	 * terminal would type into root's shell (with --seccomp off or log).
	 * The console reads and writes the fds, which needs no controlling
	 * terminal; the keeper stays in the terminal's session and forwards
	 * its SIGHUP and SIGINT. */
	if (getsid(0) != getpid() && setsid() < 0)
		return FAIL("setsid");
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		return FAIL("new mount, IPC and UTS namespaces");
	if (j->netns_fd >= 0 && setns(j->netns_fd, CLONE_NEWNET) < 0)
		return FAIL("entering the network namespace");
	cv_close(&j->netns_fd);
	if (sethostname(j->hostname, strlen(j->hostname)) < 0)
		return FAIL("sethostname");
	if ((r = jail_root(j, e)))
		return r;
	/* Over the limit a write fails (EFBIG) rather than killing the guest. */
	signal(SIGXFSZ, SIG_IGN);
	if (set_limit(RLIMIT_NOFILE, JAIL_NOFILE) < 0 || set_limit(RLIMIT_NPROC, JAIL_NPROC) < 0 ||
	    set_limit(RLIMIT_FSIZE, fsize) < 0 || set_limit(RLIMIT_CORE, 0) < 0)
		return FAIL("rlimits");
	return drop_privileges(j, e);
}
