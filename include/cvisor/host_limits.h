/* host_limits.h - which host limit a resource error ran into. Starting a
 * guest takes a process, threads (and KVM's own worker tasks), files and
 * memory; when one runs out the user is told which limit of the host was
 * reached and how to raise it, not "Resource temporarily unavailable"
 * alone (README, "Host limits"). */
#ifndef CVISOR_HOST_LIMITS_H
#define CVISOR_HOST_LIMITS_H

#include <stddef.h>

#include "cvisor/error.h"

/* For r (-errno): " (LIMIT ...: raise it ...)" naming the limit that is
 * reached, looked up now: tasks (a pids cgroup, kernel.pid_max,
 * kernel.threads-max, RLIMIT_NPROC) for -EAGAIN and -ENOMEM, memory (the
 * host's, a memory cgroup's, vm.max_map_count) for -ENOMEM, RLIMIT_NOFILE
 * for -EMFILE and fs.file-max for -ENFILE. "" when r is none of these or
 * no limit is found at its end. */
void host_limit_hint(int r, char *buf, size_t len);

/* Append host_limit_hint(e->code) to e's message (as room allows). */
void host_limit_explain(struct cv_error *e);

#endif
