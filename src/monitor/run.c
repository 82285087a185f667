/* run.c - one guest in this process: boot or restore it, serve its
 * control socket and console, run it until it stops (monitor_run), or
 * first fork away from the terminal (monitor_detach); the host-side
 * placement (cgroup limits, vCPU affinity) that every way in shares. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cvisor/console.h"
#include "cvisor/cpulist.h"
#include "cvisor/ctl_console.h"
#include "cvisor/monitor.h"
#include "cvisor/runloop.h"
#include "cvisor/snapshot.h"
#include "cvisor/virtio_balloon.h"
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

	if (!given)
		return 0;
	struct cv_error e = { 0 };

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
void monitor_isolate(const struct vm_config *cfg, struct cgroup *cg)
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
		snprintf(name, sizeof(name), "pid-%d", (int)getpid());
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

int monitor_open_log(const struct ctl_server *srv, char *path, size_t len)
{
	int fd;

	/* The socket path, which fit in 108 bytes, with .log for .sock. */
	snprintf(path, len, "%.*s.log", (int)(strlen(srv->sock_path) - strlen(".sock")),
		 srv->sock_path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		cv_err("%s: %s", path, strerror(errno));
	return fd;
}

/* A detached guest is running: the parent may go. From here on this
 * process's messages go to the log. */
void monitor_report_ready(int ready_fd, int log_fd)
{
	char one = 1;

	if (dup2(log_fd, STDERR_FILENO) < 0)
		cv_debug("stderr to the log: %s", strerror(errno));
	if (write(ready_fd, &one, 1) != 1)
		cv_debug("the parent went away before the guest started");
	close(ready_fd);
	if (chdir("/") < 0)
		cv_debug("chdir /: %s", strerror(errno));
}

/* `cvisor balloon NAME SIZE`: SIZE is what the balloon holds (memory taken
 * from the guest), as with --balloon. */
int monitor_balloon_set(void *ctx, uint64_t bytes)
{
	struct vm *vm = ctx;

	return vm->balloon ? virtio_balloon_set_target(vm->balloon, bytes) : -ENODEV;
}

/* The VM from the snapshot's CONFIG, RAM mapped from FILE.mem, then the
 * saved state. A state that does not load is the file's fault (status 2). */
static int restore_vm(struct vm *vm, const struct vm_config *cfg, const struct restore_src *rs,
		      struct cv_error *e)
{
	char err[512];
	int r;

	if ((r = vm_create_restore(vm, cfg, rs->mem_fd, e)))
		return r;
	if ((r = snapshot_state_load(vm, rs->payload, rs->len, err, sizeof(err))))
		cv_fail(e, r == -ENOMEM ? CV_EXIT_FAIL : CV_EXIT_USAGE, r, "snapshot %s: %s",
			rs->path, err);
	return r;
}

/* Build, run and tear down the guest. ready_fd >= 0 in a detached child;
 * rs: restore that snapshot rather than boot. */
int monitor_run(const struct vm_config *cfg, int ready_fd, const struct restore_src *rs)
{
	static struct vm vm;
	static struct ctl_server srv;
	static struct ctl_console con;
	struct ctl_hooks hooks = { .balloon_set = monitor_balloon_set, .ctx = &vm };
	struct cgroup cg = { 0 };
	cpu_set_t affinity;
	char err[PATH_MAX + 128];
	struct cv_error e = { 0 };
	bool named = cfg->name != NULL, have_con = false;
	int status = CV_EXIT_FAIL, signo = 0, r, log_fd = -1;

	runloop_block_signals();
	if (named && (r = ctl_server_bind(&srv, ctl_run_dir(), cfg->name, err, sizeof(err)))) {
		cv_err("%s", err);
		return r == -EADDRINUSE || r == -ENAMETOOLONG ? CV_EXIT_USAGE : CV_EXIT_FAIL;
	}
	if (cfg->cpu_affinity && monitor_check_affinity(cfg->cpu_affinity, &affinity)) {
		status = CV_EXIT_USAGE;
		goto out;
	}
	if (cfg->detach &&
	    (log_fd = monitor_open_log(&srv, srv.log_path, sizeof(srv.log_path))) < 0)
		goto out;
	monitor_isolate(cfg, &cg);
	if (rs ? restore_vm(&vm, cfg, rs, &e) : vm_create(&vm, cfg, &e)) {
		status = cv_error_report(&e, "building the guest");
		goto out_vm;
	}
	if (cfg->detach) {
		if ((r = ctl_console_init(&con, log_fd))) {
			cv_err("console ring: %s", strerror(-r));
			goto out_vm;
		}
		log_fd = -1;
		have_con = true;
		vm.console_write = ctl_console_write;
		vm.console_ctx = &con;
	}
	if (named) {
		snprintf(srv.cgroup, sizeof(srv.cgroup), "%s", cgroup_path(&cg));
		if ((r = ctl_server_start(&srv, &vm, &hooks, have_con ? &con : NULL))) {
			cv_err("control socket: %s", strerror(-r));
			goto out_vm;
		}
	}
	if (!cfg->detach)
		console_raw(STDIN_FILENO);
	if (monitor_start_vcpus(&vm, cfg->cpu_affinity ? &affinity : NULL) == 0) {
		if (ready_fd >= 0)
			monitor_report_ready(ready_fd, con.log_fd);
		signo = runloop_run(&vm);
	}
	vm_join(&vm);
	if (named)
		ctl_server_shutdown(&srv);
	console_restore();
	if (vm.stop_msg[0]) {
		/* In the log, the message starts a line of its own. */
		if (have_con && ctl_console_last(&con) >= 0 && ctl_console_last(&con) != '\n')
			fputc('\n', stderr);
		cv_err("%s", vm.stop_msg);
	}
	status = signo ? 128 + signo : vm_exit_status(&vm);
	if (named && ctl_server_killed(&srv))
		status = 128 + SIGKILL;
out_vm:
	vm_destroy(&vm);
	if (have_con)
		ctl_console_destroy(&con);
	cgroup_leave(&cg);
out:
	if (log_fd >= 0)
		close(log_fd);
	if (named)
		ctl_server_close(&srv);
	return status;
}

/* -d: KVM ties a VM to the process that created it, so the fork comes
 * before the VM. The child reports through two pipes: its stderr until the
 * guest runs (relayed here), and one byte once it does. */
int monitor_detach(const struct vm_config *cfg, const struct restore_src *rs,
		   const struct migrate_incoming *in, const struct placement *place)
{
	int ready[2], errp[2], ws, null;
	char buf[1024], one;
	ssize_t n;
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		cv_err("pipe: %s", strerror(errno));
		return CV_EXIT_FAIL;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		cv_err("fork: %s", strerror(errno));
		return CV_EXIT_FAIL;
	}
	if (pid == 0) {
		close(ready[0]);
		close(errp[0]);
		/* Out of the terminal's session: its hang-up must not stop the guest. */
		setsid();
		null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0 ||
		    dup2(errp[1], STDERR_FILENO) < 0)
			return CV_EXIT_FAIL;
		close(null);
		close(errp[1]);
		return in ? monitor_run_incoming(cfg, in, place, ready[1])
			  : monitor_run(cfg, ready[1], rs);
	}
	close(ready[1]);
	close(errp[1]);
	/* The child closes its end of errp before it reports ready (or by
	 * exiting), so read errp to its end first: no deadlock on a full pipe. */
	while ((n = read(errp[0], buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(STDERR_FILENO, buf, (size_t)n) < 0)
			break;
	}
	close(errp[0]);
	do
		n = read(ready[0], &one, 1);
	while (n < 0 && errno == EINTR);
	close(ready[0]);
	if (n == 1)
		return 0;
	if (waitpid(pid, &ws, 0) < 0)
		return CV_EXIT_FAIL;
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return WEXITSTATUS(ws) ? WEXITSTATUS(ws) : CV_EXIT_FAIL;
}
