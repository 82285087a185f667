/* monitor_priv.h - private to src/monitor/: what run.c and incoming.c
 * share about setting a guest up on this host. */
#ifndef CVISOR_MONITOR_PRIV_H
#define CVISOR_MONITOR_PRIV_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/cgroup.h"
#include "cvisor/config.h"
#include "cvisor/ctl.h"
#include "cvisor/vm.h"

/* A cgroup for every named guest and for an unnamed one that asks for a
 * limit; failing is not fatal (one warning when a limit was asked for). */
void monitor_isolate(const struct vm_config *cfg, struct cgroup *cg);
/* Start the vCPUs on affinity's CPUs (NULL: anywhere). */
int monitor_start_vcpus(struct vm *vm, const cpu_set_t *affinity) CV_MUST;
/* A detached guest's console log, DIR/NAME.log; the fd, or -1 (said why). */
int monitor_open_log(const struct ctl_server *srv, char *path, size_t len);
/* Tell the waiting parent of a detached monitor that the guest runs. */
void monitor_report_ready(int ready_fd, int log_fd);
/* The control socket's balloon hook. */
int monitor_balloon_set(void *ctx, uint64_t bytes);

#endif
