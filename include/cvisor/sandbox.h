/* sandbox.h - the monitor's seccomp filters, one per thread class (the
 * filters themselves, as data, are in src/sandbox/seccomp.c).
 *
 * The main thread calls sandbox_init once, before it starts any thread
 * that enters the sandbox; each thread then calls sandbox_enter for its
 * class before it touches anything the guest controls. A process that
 * never calls sandbox_init (tests, benchmarks' harnesses) runs unfiltered:
 * sandbox_enter does nothing there. */
#ifndef CVISOR_SANDBOX_H
#define CVISOR_SANDBOX_H

#include "cvisor/error.h"

/* --seccomp: the order of the names "on", "log", "off" (on is 0, the
 * default of a zeroed config). */
enum sandbox_mode {
	SANDBOX_ON,  /* a call outside the filter ends the process (status 1) */
	SANDBOX_LOG, /* the kernel logs the call (SECCOMP_RET_LOG) and runs it */
	SANDBOX_OFF,
};

/* The thread classes, each with its own filter. */
enum sandbox_class {
	SANDBOX_VCPU,	/* a vCPU thread: KVM_RUN and exit handling */
	SANDBOX_MAIN,	/* the main thread: event loop, devices, control, migration */
	SANDBOX_WORKER, /* helper threads: the incoming waiter, the prefault thread */
	SANDBOX_NCLASS,
};

/* Build the filters of every class for mode and install the SIGSYS
 * handler that names a refused call ("cvisor: seccomp: THREAD made syscall
 * NAME (NR): not allowed") and ends the process with status 1. Nothing
 * for SANDBOX_OFF. Once per process, on the main thread. 0, or -errno
 * with e filled. */
int sandbox_init(enum sandbox_mode mode, struct cv_error *e) CV_MUST;

/* Put the calling thread under class c's filter (with no_new_privs, and
 * SIGSYS unblocked so that the report is not lost). 0 and nothing done
 * when sandbox_init did not run or the mode is off; otherwise 0 or
 * -errno. */
int sandbox_enter(enum sandbox_class c) CV_MUST;

/* The class's name as the report and the README say it: "vcpu", "main",
 * "worker". */
const char *sandbox_class_name(enum sandbox_class c);

/* What class c allows: distinct system calls (nsyscalls), ioctl request
 * numbers (nioctls) and socket families (nfamilies). */
void sandbox_class_counts(enum sandbox_class c, unsigned int *nsyscalls, unsigned int *nioctls,
			  unsigned int *nfamilies);

#endif
