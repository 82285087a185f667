/* monitor_priv.h - private to src/monitor/: the one lifecycle of a guest
 * in this process (monitor.c) and the steps its build kinds share.
 *
 *   setup    claim the name (control socket, lock), check the vCPUs' host
 *            CPUs, open a detached guest's log
 *   build    boot:     make (vm_create), then go
 *            restore:  make (vm_create_restore, the snapshot's state), go
 *            incoming: wait for the source and receive (incoming.c); the
 *                      migration calls make and go from its hooks
 *   run      the run loop (runloop.c) until the guest stops
 *   end      join, shut the control socket, report, unmake, release
 *
 * make: cgroup, the VM, the console ring of a detached guest.
 * go:   serve the control socket, raw terminal, enter the jail (--jail),
 *       start the vCPUs, report ready to a detaching parent.
 *
 * With --jail, setup ends by forking into a new PID namespace (jail.h):
 * the child goes on with build, run and end; the parent is the keeper. */
#ifndef CVISOR_MONITOR_PRIV_H
#define CVISOR_MONITOR_PRIV_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/cgroup.h"
#include "cvisor/config.h"
#include "cvisor/ctl.h"
#include "cvisor/ctl_console.h"
#include "cvisor/error.h"
#include "cvisor/jail.h"
#include "cvisor/migrate.h"
#include "cvisor/monitor.h"
#include "cvisor/vm.h"

/* The build kinds: how the guest comes to exist. */
enum monitor_kind {
	MONITOR_BOOT,
	MONITOR_RESTORE,
	MONITOR_INCOMING,
};

/* What the guest is built from. */
struct monitor_src {
	enum monitor_kind kind;
	const struct restore_src *rs;	   /* restore */
	const struct migrate_incoming *in; /* incoming */
	const struct placement *place;	   /* incoming: this host's flags */
	const struct monitor_hooks *hooks; /* the API's (boot), else NULL */
};

/* Incoming: the thread that answers the control socket until the guest
 * has arrived, and what it shares with the main thread. */
struct monitor_waiter {
	pthread_t thread;
	bool started;
	int wake_fd;   /* eventfd: the main thread ends the waiter */
	int cancel_fd; /* eventfd: a kill ends migrate_receive's wait */
	/* The source's connection while the guest arrives (-1 before and
	 * after): a kill shuts it down to end the transfer. */
	pthread_mutex_t lock;
	int conn_fd;
	bool source; /* a source connected */
	_Atomic bool killed;
};

/* One guest's monitor (one per process). */
struct monitor {
	const struct vm_config *cfg; /* the command line's */
	const struct monitor_src *src;
	struct vm vm;
	struct ctl_server srv;
	struct ctl_console con;
	struct cgroup cg;
	struct jail jail;	   /* --jail: how far it got, the keeper's socket */
	cpu_set_t affinity;	   /* with pinned */
	struct cv_error err;	   /* why the guest did not run */
	struct monitor_waiter wt;  /* incoming */
	struct migrate_target tgt; /* incoming: what the guest's config lives in */
	bool named, detach, bound, pinned;
	bool have_con; /* con is the console (a detached guest) */
	bool made;     /* vm (and cg, con) need undoing */
	bool created;  /* vm_create* succeeded */
	bool running;  /* the vCPUs started */
	bool killed;   /* incoming: `cvisor kill` ended the wait */
	bool received; /* incoming: tgt holds the guest's config */
	int ready_fd;  /* a detaching parent's pipe, -1 once told (or none) */
	int log_fd;    /* a detached guest's log until the console ring owns it */
};

/* Make the guest's VM from cfg as m's build kind says (the one place that
 * calls vm_create and vm_create_restore), in its cgroup, with a detached
 * guest's console ring. 0, or -errno with m->err filled. */
int monitor_make(struct monitor *m, const struct vm_config *cfg) CV_MUST;

/* Serve the control socket, start the vCPUs and tell a detaching parent.
 * 0, or -errno with m->err filled. */
int monitor_go(struct monitor *m) CV_MUST;

/* Fail with r and status, the failing callee having printed why (no
 * message of our own). Returns r. */
int monitor_said(struct monitor *m, enum cv_exit status, int r);

/* Undo monitor_make (stopping the vCPUs first if they run); idempotent. */
void monitor_unmake(struct monitor *m);

/* Tell a detaching parent that it may go (once; nothing if none waits). */
void monitor_ready(struct monitor *m);

/* incoming.c, the incoming build: answer the control socket from a
 * waiter thread, wait for the source and receive the guest, which then
 * runs. 0, or -errno with m->err filled (m->killed: by `cvisor kill`). */
int monitor_receive(struct monitor *m) CV_MUST;

/* incoming.c: free what monitor_receive kept for the guest, after the VM
 * is destroyed. */
void monitor_receive_free(struct monitor *m);

/* placement.c: a cgroup for every named guest and for an unnamed one that
 * asks for a limit; failing is not fatal (one warning when a limit was
 * asked for). */
void monitor_isolate(const struct vm_config *cfg, struct cgroup *cg, int host_pid);
/* placement.c: start the vCPUs on affinity's CPUs (NULL: anywhere). */
int monitor_start_vcpus(struct vm *vm, const cpu_set_t *affinity) CV_MUST;

#endif
