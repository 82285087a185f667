/* monitor.h - running one guest in this process (src/monitor/): one
 * lifecycle (monitor.c) whose build step boots the guest, restores it from
 * a snapshot or receives it from a live migration (incoming.c), with or
 * without detaching first. main.c parses argv and calls these; each returns
 * the process's exit status (CV_EXIT_*, or 128 + a signal). */
#ifndef CVISOR_MONITOR_H
#define CVISOR_MONITOR_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cvisor/config.h"
#include "cvisor/util.h"

struct migrate_incoming;

/* A snapshot to restore instead of booting a kernel. */
struct restore_src {
	const char *path;
	uint8_t *payload;
	size_t len;
	int mem_fd;
};

/* Where a restored or incoming guest runs on this host: the --cpu-weight,
 * --cpu-cap, --memory-limit and --cpu-affinity given to `restore` or
 * `run --incoming`, over what the snapshot or the source carried. */
struct placement {
	struct vm_config c; /* parsed by config.c's own setters */
	bool weight, cap, limit, affinity;
};

/* 1 when flag is a placement flag (applied), 0 when it is not, -EINVAL
 * with one line in err when its value is bad. */
int placement_flag(struct placement *p, const char *flag, const char *val, char *err,
		   size_t errlen) CV_MUST;

/* Put the flags that were given over cfg's. 0 or -ENOMEM. */
int placement_apply(const struct placement *p, struct vm_config *cfg) CV_MUST;

/* The vCPU threads' host CPUs must exist here: parse list into set; one
 * line on stderr and -EINVAL when it names a CPU this host lacks. */
int monitor_check_affinity(const char *list, cpu_set_t *set) CV_MUST;

/* Build, run and tear down the guest. ready_fd >= 0 in a detached child;
 * rs: restore that snapshot rather than boot. */
int monitor_run(const struct vm_config *cfg, int ready_fd, const struct restore_src *rs);

/* `run --incoming`: listen, receive the guest, run it (place: this host's
 * placement flags over the source's). */
int monitor_run_incoming(const struct vm_config *cli, const struct migrate_incoming *in,
			 const struct placement *place, int ready_fd);

/* A monitor forked by monitor_spawn: in the parent its pid and the read
 * ends of its two pipes (its stderr until the guest runs; one byte once
 * it runs, EOF if it never will); in the child, pid 0 and the exit status
 * of its guest's lifecycle. */
struct monitor_child {
	pid_t pid;
	int ready_fd, err_fd;
	int status;
};

/* -d without the wait: fork a detached monitor for the guest (booted,
 * restored or incoming). In the parent 0 with c filled and nothing
 * waited for; in the child, once its guest has ended, 1 with c->status
 * (return it to main). The child first closes the parent's fds in
 * close_fds[0..nclose) (pipes to other children). -errno (nothing
 * started) if the pipes or the fork fail. */
int monitor_spawn(const struct vm_config *cfg, const struct restore_src *rs,
		  const struct migrate_incoming *in, const struct placement *place,
		  const int *close_fds, unsigned int nclose, struct monitor_child *c) CV_MUST;

/* `restore FILE --count N --name BASE -d [--cid FIRST]` (cfg: the
 * snapshot's config with BASE as its name): N detached guests BASE-1 ..
 * BASE-N, each with its own vsock CID (FIRST + K - 1; FIRST 0: the
 * snapshot's + 1) and MACs (src/monitor/clones.c), all started or none.
 * Prints one line on failure; returns the exit status (in a clone's
 * monitor, once its guest has ended, that guest's). */
#define CLONES_MAX 65535 /* the MAC's two bytes for the clone's number */
struct clone_opts {
	unsigned int count;
	uint64_t first_cid;
};
int monitor_clones(struct vm_config *cfg, const struct restore_src *rs, const struct clone_opts *o);

/* The Cloud Hypervisor API's view of a guest it has the lifecycle build
 * (src/api/): running once every vCPU thread exists and is named vcpuN
 * (vm is the guest's, its event loop serving from then on); ended when
 * the run loop has stopped or the build failed (err: why; NULL when the
 * guest ran), before anything is torn down. Called on the main thread. */
struct vm;
struct monitor_hooks {
	bool start_paused; /* the vCPUs released parked (a restore waits for a resume) */
	void (*running)(void *ctx, struct vm *vm);
	void (*ended)(void *ctx, struct vm *vm, const struct cv_error *err);
	void *ctx;
};

/* Boot cfg's guest (rs: restore that snapshot instead; in: receive it
 * from a migration source) through the one lifecycle for the API: no
 * terminal, no cgroup of cvisor's (the client places the threads), h told
 * of its stages. Returns the exit status the guest's end gives. */
int monitor_run_api(const struct vm_config *cfg, const struct restore_src *rs,
		    const struct migrate_incoming *in, const struct monitor_hooks *h);

/* -d: fork, run the guest (booted, restored or incoming) in the child,
 * return once it runs, or with the child's status if it never did. */
int monitor_detach(const struct vm_config *cfg, const struct restore_src *rs,
		   const struct migrate_incoming *in, const struct placement *place);

#endif
