/* jail.h - `--jail`: the monitor in its own PID, mount, IPC and UTS
 * namespaces (and optionally a given network namespace), pivot_root'ed into
 * an empty per-guest directory, as an unprivileged uid and gid with no
 * capabilities, no_new_privs and rlimits (src/sandbox/jail.c).
 *
 * Two steps, because KVM ties a VM to the process that created it and the
 * VM must be built from host paths:
 *
 *   jail_fork   before the VM (after the control socket, lock and log):
 *               fork into a new PID namespace. The child (PID 1 there)
 *               goes on to build and run the guest; the parent stays
 *               outside as the keeper: it forwards signals, removes the
 *               socket and lock when the child asks (the jailed child can
 *               no longer reach them), and after the child's end the jail
 *               directory and the cgroup, then exits with its status.
 *   jail_enter  after the VM is built (every file, /dev/kvm, the tap and
 *               the sockets open), before the vCPU threads start and the
 *               seccomp filters go on. */
#ifndef CVISOR_JAIL_H
#define CVISOR_JAIL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cvisor/cgroup.h"
#include "cvisor/error.h"
#include "cvisor/util.h"

/* The default --uid and --gid: no account's, so they own no host file
 * (nobody, 65534, is shared with NFS and other daemons). Guests share it,
 * each in its own PID namespace: one cannot see, signal or ptrace another. */
#define JAIL_DEFAULT_UID 64000
#define JAIL_DEFAULT_GID 64000
/* RLIMIT_NOFILE of a jailed monitor (the control socket's 16 clients,
 * libslirp's sockets, a migration). */
#define JAIL_NOFILE 1024
/* RLIMIT_NPROC: counted per uid over the whole host, and the default uid
 * is every jailed guest's, so room for many guests' vCPU threads; the
 * seccomp filters allow no fork or clone once the guest runs. */
#define JAIL_NPROC 4096
/* RLIMIT_FSIZE is at least this (the console log, a save's state file);
 * more when a disk or the guest's RAM (a save's FILE.mem) is larger. */
#define JAIL_FSIZE_MIN (1ULL << 30)

/* The flags (config.c's table). uid and gid 0: the defaults. */
struct jail_config {
	bool on;	  /* --jail */
	char *dir;	  /* --jail-dir DIR: must exist; NULL: RUN_DIR/jail/NAME */
	char *netns;	  /* --netns PATH, e.g. /run/netns/X; NULL: the host's */
	unsigned int uid; /* --uid N */
	unsigned int gid; /* --gid N */
};

struct jail {
	bool on;
	char dir[PATH_MAX];
	bool made_dir; /* ours to remove */
	int netns_fd;
	uid_t uid;
	gid_t gid;
	char hostname[65];
	int keeper_fd;	  /* the socketpair between the keeper and the monitor */
	pid_t host_pid;	  /* the monitor's pid outside its namespace */
	bool resolv_conf; /* show the host's /etc/resolv.conf (libslirp's DNS) */
	bool entered;
};

/* Check the flags (one line, status 2: --uid without --jail, a missing
 * --jail-dir or --netns, not root) and open what the jail needs from the
 * host: the network namespace, the jail directory (made 0700 if it is the
 * default, RUN_DIR/jail/NAME). Nothing when cfg->on is false (but the
 * jail flags are refused). 0 or -errno with e filled. */
int jail_prepare(struct jail *j, const struct jail_config *cfg, const char *run_dir,
		 const char *name, struct cv_error *e) CV_MUST;

/* What the keeper undoes once the monitor has ended: the socket and lock
 * (unless the monitor had them removed), and it closes the fds it keeps
 * (listen, log). */
struct jail_keep {
	const char *sock_path, *lock_path;
	int lock_fd;
	int listen_fd;
	int log_fd;   /* a detached guest's: the keeper's stderr */
	int ready_fd; /* a detaching parent's: closed in the keeper */
};

/* Fork into a new PID namespace. In the child: 0, with j->host_pid set.
 * In the parent: run the keeper until the child ends, undo what it made,
 * and return 1 with *status the child's exit status. -errno with e filled
 * when the fork failed. */
int jail_fork(struct jail *j, const struct jail_keep *keep, int *status,
	      struct cv_error *e) CV_MUST;

/* The child's cgroup, for the keeper to remove at the end (before
 * jail_enter; the jailed monitor cannot, and is not trusted to name one).
 * 0 (also without --jail) or -errno: -EPERM once jailed, else the
 * keeper could not be told (it would leave the cgroup behind). */
int jail_tell_cgroup(struct jail *j, const struct cgroup *cg) CV_MUST;

/* Enter the jail: new mount, IPC and UTS namespaces (and the network
 * namespace), a tmpfs on the jail directory as the new root with the
 * PID namespace's /proc, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_FSIZE (at
 * least fsize), RLIMIT_CORE 0, /proc/self/pagemap kept open for ramwalk,
 * the uid and gid, no capabilities in any set, no_new_privs, not
 * dumpable, and the parent-death signal set again.
 * Single-threaded callers only. 0 or -errno with e filled. */
int jail_enter(struct jail *j, uint64_t fsize, struct cv_error *e) CV_MUST;

/* Ask the keeper to remove the control socket (and with lock the lock
 * file too, which frees the name): the jailed monitor cannot reach them.
 * Returns once done. 0 or -errno. */
int jail_unlink(struct jail *j, bool lock) CV_MUST;

#endif
