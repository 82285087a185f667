/* cgroup.h - a cgroup per guest for performance isolation: CPU weight (like
 * Xen's credit weight), CPU cap and memory limit, on cgroup v2 or v1. */
#ifndef CVISOR_CGROUP_H
#define CVISOR_CGROUP_H

#include <limits.h>
#include <stdint.h>

#include "cvisor/util.h"

#define CGROUP_FS "/sys/fs/cgroup"
/* cpu.cfs_period_us / the period of cpu.max: the cap is enforced per 100 ms. */
#define CGROUP_CPU_PERIOD_US 100000

struct cgroup_limits {
	unsigned int weight; /* 1..10000, 100 = the default share */
	unsigned int cap;    /* percent of one host CPU, 0 = none */
	uint64_t memory;     /* bytes, 0 = none */
};

#define CGROUP_MAX_DIRS 2

struct cgroup {
	int version; /* 0: not in a cgroup of ours; 1 or 2 */
	int pid;
	unsigned int ndirs;
	char dir[CGROUP_MAX_DIRS][PATH_MAX];  /* the guest's cgroup, per hierarchy */
	char home[CGROUP_MAX_DIRS][PATH_MAX]; /* where the process was before */
};

/* Create the guest's cgroup `name` under fsroot, set lim and move process
 * pid (every thread of it) in. v2 (fsroot has cgroup.controllers): the
 * cgroup is fsroot/cvisor/NAME. v1: fsroot/cpu/<the process's current
 * cgroup>/cvisor/NAME, and the same under fsroot/memory when lim has a
 * memory limit, so that a monitor started inside a limited cgroup stays
 * within its limits. self_cgroup is the text of
 * /proc/self/cgroup. Returns 0, or -errno with the reason in why (the
 * cgroup is then left as it was). */
int cgroup_enter_at(struct cgroup *cg, const char *fsroot, const char *self_cgroup,
		    const char *name, const struct cgroup_limits *lim, int pid, char *why,
		    size_t whylen) CV_MUST;

/* cgroup_enter_at for this process, under CGROUP_FS. */
int cgroup_enter(struct cgroup *cg, const char *name, const struct cgroup_limits *lim, char *why,
		 size_t whylen) CV_MUST;

/* Move the process back where it was and remove the guest's cgroup.
 * Idempotent; a no-op when cgroup_enter failed. */
void cgroup_leave(struct cgroup *cg);

/* This process's cgroup directory for controller ctrl ("pids", ...):
 * CGROUP_FS/CTRL/PATH on v1, CGROUP_FS/PATH on v2 (where it may lack the
 * controller). Returns 0, -ENOENT (no such hierarchy) or -errno. */
int cgroup_self_dir(const char *ctrl, char *dir, size_t len) CV_MUST;

/* The guest's cgroup directory ("" when none), for `cvisor info`. */
const char *cgroup_path(const struct cgroup *cg);

#endif
