/* placement.c - where a guest runs on this host, whatever built it: the
 * placement flags of restore and run --incoming over the guest's own, its
 * cgroup (limits, weight) and its vCPUs' host CPUs. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/cpulist.h"
#include "cvisor/monitor.h"
#include "monitor_priv.h"

/* The vCPU threads' host CPUs must exist here: checked before the VM is built. */
int monitor_check_affinity(const char *list, cpu_set_t *set)
{
	cpu_set_t host;
	char have[CPULIST_MAX_LEN + 1] = "?";
	int cpu;

	if (cpulist_parse(list, set) || sched_getaffinity(0, sizeof(host), &host) < 0)
		return -EINVAL;
	cpu = cpulist_first_missing(set, &host);
	if (cpu < 0)
		return 0;
	if (cpulist_format(&host, have, sizeof(have))) {
		/* keep "?" */
	}
	cv_err("--cpu-affinity %s: CPU %d is not available on this host (CPUs %s)", list, cpu,
	       have);
	return -EINVAL;
}

/* 1 when flag is a placement flag (applied), 0 when it is not, -EINVAL
 * with one line in err when its value is bad. */
int placement_flag(struct placement *p, const char *flag, const char *val, char *err, size_t errlen)
{
	char *av[] = { "cvisor", (char *)flag, (char *)val, NULL };
	bool *given = !strcmp(flag, "--cpu-weight")	? &p->weight
		      : !strcmp(flag, "--cpu-cap")	? &p->cap
		      : !strcmp(flag, "--memory-limit") ? &p->limit
		      : !strcmp(flag, "--cpu-affinity") ? &p->affinity
							: NULL;

	struct cv_error e = { 0 };

	if (!given)
		return 0;
	if (!val)
		return snprintf(err, errlen, "%s needs a value", flag), -EINVAL;
	if (config_apply_flags(3, av, &p->c, &e))
		return snprintf(err, errlen, "%s", e.msg), -EINVAL;
	*given = true;
	return 1;
}

int placement_apply(const struct placement *p, struct vm_config *cfg)
{
	if (p->weight)
		cfg->cpu_weight = p->c.cpu_weight;
	if (p->cap)
		cfg->cpu_cap = p->c.cpu_cap;
	if (p->limit)
		cfg->memory_limit = p->c.memory_limit;
	return p->affinity ? config_set_string(&cfg->cpu_affinity, p->c.cpu_affinity) : 0;
}

/* A cgroup for every named guest (so that weights compare guests), and for
 * an unnamed one that asks for a limit. Failing is not fatal: say so once
 * when the user asked for isolation. */
void monitor_isolate(const struct vm_config *cfg, struct cgroup *cg, int host_pid)
{
	struct cgroup_limits lim = { cfg->cpu_weight, cfg->cpu_cap, cfg->memory_limit };
	bool asked =
		cfg->cpu_weight != CONFIG_DEFAULT_CPU_WEIGHT || cfg->cpu_cap || cfg->memory_limit;
	char name[CTL_NAME_MAX + 16], why[PATH_MAX + 128];

	if (!cfg->name && !asked)
		return;
	if (cfg->name)
		snprintf(name, sizeof(name), "%s", cfg->name);
	else
		snprintf(name, sizeof(name), "pid-%d", host_pid);
	if (cgroup_enter(cg, name, &lim, why, sizeof(why)) == 0)
		return;
	if (asked)
		cv_warn("cgroups unavailable: %s; running without isolation", why);
	else
		cv_debug("no cgroup: %s", why);
}

/* Start the vCPUs on the --cpu-affinity CPUs: threads inherit the affinity
 * of the thread that creates them, so no vCPU ever runs elsewhere. */
int monitor_start_vcpus(struct vm *vm, const cpu_set_t *affinity)
{
	cpu_set_t saved;
	int r;

	if (!affinity)
		return vm_start(vm);
	if (sched_getaffinity(0, sizeof(saved), &saved) < 0 ||
	    sched_setaffinity(0, sizeof(*affinity), affinity) < 0) {
		cv_err("--cpu-affinity: %s", strerror(errno));
		vm_request_stop(vm, VM_STOP_HOST, NULL);
		return -errno;
	}
	r = vm_start(vm);
	if (sched_setaffinity(0, sizeof(saved), &saved) < 0)
		cv_debug("restoring the main thread's affinity: %s", strerror(errno));
	return r;
}
