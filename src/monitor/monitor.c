/* monitor.c - one guest in this process, one lifecycle whatever builds it
 * (boot, restore or incoming; see monitor_priv.h): claim its name, build
 * it, run it until it stops and tear it down (monitor_run,
 * monitor_run_incoming), or first fork away from the terminal
 * (monitor_detach). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cvisor/console.h"
#include "cvisor/net_backend.h"
#include "cvisor/runloop.h"
#include "cvisor/sandbox.h"
#include "cvisor/snapshot.h"
#include "cvisor/virtio_balloon.h"
#include "monitor_priv.h"

int monitor_said(struct monitor *m, enum cv_exit status, int r)
{
	if (!m->err.code) {
		m->err.code = r;
		m->err.status = status;
	}
	return r;
}

/* A detached guest's console log, DIR/NAME.log, beside its socket. */
static int open_log(struct monitor *m)
{
	struct ctl_server *srv = &m->srv;

	/* The socket path, which fit in 108 bytes, with .log for .sock. */
	snprintf(srv->log_path, sizeof(srv->log_path), "%.*s.log",
		 (int)(strlen(srv->sock_path) - strlen(".sock")), srv->sock_path);
	m->log_fd = open(srv->log_path,
			 O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (m->log_fd < 0)
		return cv_fail(&m->err, CV_EXIT_FAIL, -errno, "%s: %s", srv->log_path,
			       strerror(errno));
	return 0;
}

/* Claim the name, check the vCPUs' host CPUs, open the log. */
static int monitor_setup(struct monitor *m)
{
	const struct placement *place = m->src->place;
	const char *cpus = m->src->kind != MONITOR_INCOMING ? m->cfg->cpu_affinity
			   : place->affinity		    ? place->c.cpu_affinity
							    : NULL;
	bool vsock = m->src->kind == MONITOR_INCOMING
			     ? m->src->in->vsock != NULL
			     : devices_count(&m->cfg->devices, devices_type("vsock")) > 0;
	char err[PATH_MAX + 128], name[32];
	int r;

	/* vsock's guest-initiated connections reach host unix sockets
	 * (PATH_PORT) that it connects to when they happen, and it unlinks
	 * its listening socket at the end: neither is visible in the jail. */
	if (vsock && m->cfg->jail.on)
		return cv_fail(&m->err, CV_EXIT_USAGE, -EINVAL,
			       "--vsock with --jail: the guest's connections go to host unix "
			       "sockets the jail cannot reach (drop one of them)");
	if (m->named) {
		r = ctl_server_bind(&m->srv, ctl_run_dir(), m->cfg->name, err, sizeof(err));
		if (r)
			return cv_fail(&m->err,
				       r == -EADDRINUSE || r == -ENAMETOOLONG || r == -EPERM
					       ? CV_EXIT_USAGE
					       : CV_EXIT_FAIL,
				       r, "%s", err);
		m->bound = true;
		if (m->cfg->ctl_group &&
		    (r = ctl_server_share(&m->srv, m->cfg->ctl_group, err, sizeof(err))))
			return cv_fail(&m->err, r == -ENOMEM ? CV_EXIT_FAIL : CV_EXIT_USAGE, r,
				       "%s", err);
	}
	if (cpus && (r = monitor_check_affinity(cpus, &m->affinity)))
		return monitor_said(m, CV_EXIT_USAGE, r);
	m->pinned = cpus != NULL;
	if (m->detach && (r = open_log(m)))
		return r;
	snprintf(name, sizeof(name), "pid-%d", (int)getpid());
	return jail_prepare(&m->jail, &m->cfg->jail, ctl_run_dir(), m->named ? m->cfg->name : name,
			    &m->err);
}

static int unlink_by_keeper(void *ctx, bool lock)
{
	return jail_unlink(ctx, lock);
}

/* --jail: into a new PID namespace (jail.h). 1 in the keeper, whose work
 * ends with the monitor's (its status in *status); 0 in the monitor. */
static int monitor_jail_fork(struct monitor *m, int *status)
{
	struct jail_keep keep = {
		.sock_path = m->bound ? m->srv.sock_path : NULL,
		.lock_path = m->bound ? m->srv.lock_path : NULL,
		.lock_fd = m->bound ? m->srv.lock_fd : -1,
		.listen_fd = m->bound ? m->srv.listen_fd : -1,
		.log_fd = m->log_fd,
		.ready_fd = m->ready_fd,
	};
	int r;

	if (!m->jail.on)
		return 0;
	if ((r = jail_fork(&m->jail, &keep, status, &m->err)) < 0)
		return r;
	if (r > 0)
		return 1;
	m->srv.pid = m->jail.host_pid;
	m->srv.jailed = true;
	m->srv.unlink_hook = unlink_by_keeper;
	m->srv.unlink_ctx = &m->jail;
	return 0;
}

/* One line on stderr with the consoles' pty paths, where a user (or a
 * script) finds them; also in `cvisor info`. */
static void monitor_say_ptys(const struct vm *vm)
{
	const char *con = vm_console_pty_path(vm), *ser = vm_serial_pty_path(vm);

	if (con && ser)
		cv_err("virtio-console on %s, serial on %s", con, ser);
	else if (con || ser)
		cv_err("%s on %s", con ? "virtio-console" : "serial", con ? con : ser);
}

int monitor_make(struct monitor *m, const struct vm_config *cfg)
{
	const struct restore_src *rs = m->src->rs;
	char err[512];
	int r;

	/* Under the API the client places the threads (libvirt's cgroups). */
	if (!m->src->hooks)
		monitor_isolate(cfg, &m->cg, m->jail.on ? m->jail.host_pid : (int)getpid());
	m->made = true;
	/* The jailed monitor cannot remove it: the keeper will. */
	if ((r = jail_tell_cgroup(&m->jail, &m->cg)))
		return cv_fail(&m->err, CV_EXIT_FAIL, r, "jail: telling the keeper the cgroup: %s",
			       strerror(-r));
	if (m->src->kind == MONITOR_BOOT)
		r = vm_create(&m->vm, cfg, &m->err);
	else /* RAM from the snapshot's FILE.mem, or zeroed for the stream */
		r = vm_create_restore(&m->vm, cfg, rs ? rs->mem_fd : -1, &m->err);
	if (r)
		return r;
	m->created = true;
	/* --on-reboot restart: the state a reset goes back to, taken before
	 * the guest's first instruction (a restored guest has none). */
	if (m->src->kind == MONITOR_BOOT && cfg->on_reboot == CONFIG_REBOOT_RESTART &&
	    (r = vm_reset_capture(&m->vm)))
		return cv_fail(&m->err, CV_EXIT_FAIL, r, "saving the boot state for resets: %s",
			       strerror(-r));
	monitor_say_ptys(&m->vm);
	/* A state that does not load is the file's fault (status 2). */
	if (rs && (r = snapshot_state_load(&m->vm, rs->payload, rs->len, err, sizeof(err))))
		return cv_fail(&m->err, r != -ENOMEM ? CV_EXIT_USAGE : CV_EXIT_FAIL, r,
			       "snapshot %s: %s", rs->path, err);
	if (m->detach) {
		if ((r = ctl_console_init(&m->con, m->log_fd)))
			return cv_fail(&m->err, CV_EXIT_FAIL, r, "console ring: %s", strerror(-r));
		m->log_fd = -1;
		m->have_con = true;
		m->vm.console_write = ctl_console_write;
		m->vm.console_ctx = &m->con;
	}
	return 0;
}

/* `cvisor balloon NAME SIZE`: SIZE is what the balloon holds (memory taken
 * from the guest), as with --balloon. */
static int balloon_set(void *ctx, uint64_t bytes)
{
	struct vm *vm = ctx;

	return vm->balloon ? virtio_balloon_set_target(vm->balloon, bytes) : -ENODEV;
}

int monitor_go(struct monitor *m)
{
	struct ctl_hooks hooks = { .balloon_set = balloon_set, .ctx = &m->vm };
	int r;

	if (m->named) {
		snprintf(m->srv.cgroup, sizeof(m->srv.cgroup), "%s", cgroup_path(&m->cg));
		r = ctl_server_start(&m->srv, &m->vm, &hooks, m->have_con ? &m->con : NULL);
		if (r)
			return cv_fail(&m->err, CV_EXIT_FAIL, r, "control socket: %s",
				       strerror(-r));
	}
	if (!m->detach)
		console_raw(STDIN_FILENO);
	/* Everything is open; no thread but this one runs yet (a jail entered
	 * by one thread of several would leave the others outside). */
	m->jail.resolv_conf = net_slirp_loaded();
	if ((r = jail_enter(&m->jail, m->vm.mem.ram_size, &m->err))) {
		vm_request_stop(&m->vm, VM_STOP_HOST, NULL);
		return r;
	}
	/* The vCPU threads enter their filter and wait (vm->held) until this
	 * thread is in its own: no guest instruction runs before both. */
	m->vm.held = true;
	/* Printed by vm_start or the affinity check. */
	if ((r = monitor_start_vcpus(&m->vm, m->pinned ? &m->affinity : NULL)))
		return monitor_said(m, CV_EXIT_FAIL, r);
	if ((r = sandbox_enter(SANDBOX_MAIN))) {
		vm_request_stop(&m->vm, VM_STOP_HOST, NULL);
		vm_release(&m->vm);
		return cv_fail(&m->err, CV_EXIT_FAIL, r, "seccomp: main thread: %s", strerror(-r));
	}
	/* Ready means every thread is filtered: what /proc shows from then
	 * on is what runs. */
	vm_wait_held(&m->vm);
	if (m->src->hooks && m->src->hooks->start_paused)
		vm_pause_request(&m->vm);
	vm_release(&m->vm);
	m->running = true;
	monitor_ready(m);
	return 0;
}

void monitor_ready(struct monitor *m)
{
	char one = 1;

	if (m->ready_fd < 0)
		return;
	/* From here on this process's messages go to the log. */
	if (dup2(m->have_con ? m->con.log_fd : m->log_fd, STDERR_FILENO) < 0)
		cv_debug("stderr to the log: %s", strerror(errno));
	if (write(m->ready_fd, &one, 1) != 1)
		cv_debug("the parent went away before the guest started");
	close(m->ready_fd);
	m->ready_fd = -1;
	if (chdir("/") < 0)
		cv_debug("chdir /: %s", strerror(errno));
}

void monitor_unmake(struct monitor *m)
{
	if (!m->made)
		return;
	if (m->created) {
		vm_request_stop(&m->vm, VM_STOP_HOST, NULL);
		vm_join(&m->vm);
	}
	vm_destroy(&m->vm);
	if (m->have_con)
		ctl_console_destroy(&m->con);
	cgroup_leave(&m->cg);
	m->made = m->created = m->running = m->have_con = false;
}

/* BUILD: the guest exists and its vCPUs run. */
static int monitor_build(struct monitor *m)
{
	int r;

	if (m->src->kind == MONITOR_INCOMING)
		return monitor_receive(m);
	if ((r = monitor_make(m, m->cfg)))
		return r;
	return monitor_go(m);
}

/* The guest ran and stopped: say why if it was not a plain stop. */
static int stopped_status(struct monitor *m, int signo)
{
	const char *msg = m->vm.stop_msg;

	if (msg[0]) {
		/* In the log, the message starts a line of its own. */
		if (m->have_con && ctl_console_last(&m->con) >= 0 &&
		    ctl_console_last(&m->con) != '\n')
			fputc('\n', stderr);
		cv_err("%s", msg);
	}
	if (m->named && ctl_server_killed(&m->srv))
		return 128 + SIGKILL;
	return signo ? 128 + signo : vm_exit_status(&m->vm);
}

/* Tear down whatever the lifecycle got to; the process's exit status. */
static int monitor_end(struct monitor *m, int signo)
{
	int status;

	if (m->running) {
		vm_join(&m->vm);
		if (m->named)
			ctl_server_shutdown(&m->srv);
	}
	console_restore();
	if (m->running)
		status = stopped_status(m, signo);
	else if (m->err.msg[0])
		status = cv_error_report(&m->err, NULL);
	else
		status = m->err.status ? (int)m->err.status : CV_EXIT_FAIL;
	if (m->killed)
		status = 128 + SIGKILL;
	monitor_unmake(m);
	monitor_receive_free(m);
	if (m->log_fd >= 0)
		close(m->log_fd);
	if (m->bound)
		ctl_server_close(&m->srv);
	return status;
}

/* The lifecycle. ready_fd >= 0 in a detached child. */
static int monitor_lifecycle(const struct vm_config *cfg, const struct monitor_src *src,
			     int ready_fd)
{
	/* Static: struct vm is large, and there is one guest per process. */
	static struct monitor m;
	const struct monitor_hooks *h = src->hooks;
	int signo = 0, status;

	/* Anew: the API builds a guest again after a reboot. */
	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.src = src;
	m.named = cfg->name != NULL;
	m.detach = cfg->detach;
	m.ready_fd = ready_fd;
	m.log_fd = -1;
	m.jail.keeper_fd = m.jail.netns_fd = -1;
	runloop_block_signals();
	if (!sandbox_init(cfg->seccomp, &m.err) && !monitor_setup(&m)) {
		int r = monitor_jail_fork(&m, &status);

		if (r > 0)
			return status; /* the keeper */
		if (!r && !monitor_build(&m)) {
			if (h)
				h->running(h->ctx, &m.vm);
			signo = runloop_run(&m.vm);
		}
	}
	if (h)
		h->ended(h->ctx, m.created ? &m.vm : NULL, m.running ? NULL : &m.err);
	return monitor_end(&m, signo);
}

static struct monitor_src src_of(const struct restore_src *rs, const struct migrate_incoming *in,
				 const struct placement *place)
{
	if (in)
		return (struct monitor_src){ .kind = MONITOR_INCOMING, .in = in, .place = place };
	return (struct monitor_src){ .kind = rs ? MONITOR_RESTORE : MONITOR_BOOT, .rs = rs };
}

int monitor_run(const struct vm_config *cfg, int ready_fd, const struct restore_src *rs)
{
	struct monitor_src src = src_of(rs, NULL, NULL);

	return monitor_lifecycle(cfg, &src, ready_fd);
}

int monitor_run_incoming(const struct vm_config *cli, const struct migrate_incoming *in,
			 const struct placement *place, int ready_fd)
{
	struct monitor_src src = src_of(NULL, in, place);

	return monitor_lifecycle(cli, &src, ready_fd);
}

int monitor_run_api(const struct vm_config *cfg, const struct restore_src *rs,
		    const struct migrate_incoming *in, const struct monitor_hooks *h)
{
	/* An incoming guest keeps the source's limits, none of this host's. */
	static struct placement none;
	struct monitor_src src = src_of(rs, in, &none);

	src.hooks = h;

	return monitor_lifecycle(cfg, &src, -1);
}

/* The parent of a detaching monitor: relay the child's stderr until it
 * closes it, then wait for the ready byte or the child's status. */
static int detach_parent(pid_t pid, int ready, int errp)
{
	char buf[1024], one;
	ssize_t n;
	int ws;

	/* The child closes its end of errp before it reports ready (or by
	 * exiting), so read errp to its end first: no deadlock on a full pipe. */
	while ((n = read(errp, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(STDERR_FILENO, buf, (size_t)n) < 0)
			break;
	}
	close(errp);
	do
		n = read(ready, &one, 1);
	while (n < 0 && errno == EINTR);
	close(ready);
	if (n == 1)
		return 0;
	if (waitpid(pid, &ws, 0) < 0)
		return CV_EXIT_FAIL;
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return WEXITSTATUS(ws) ? WEXITSTATUS(ws) : CV_EXIT_FAIL;
}

int monitor_spawn(const struct vm_config *cfg, const struct restore_src *rs,
		  const struct migrate_incoming *in, const struct placement *place,
		  const int *close_fds, unsigned int nclose, struct monitor_child *c)
{
	struct monitor_src src = src_of(rs, in, place);
	int ready[2], errp[2], null, r;
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(errp, O_CLOEXEC) < 0) {
		r = -errno;
		close(ready[0]);
		close(ready[1]);
		return r;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(ready[0]);
		close(ready[1]);
		close(errp[0]);
		close(errp[1]);
		return r;
	}
	if (pid > 0) {
		close(ready[1]);
		close(errp[1]);
		*c = (struct monitor_child){ .pid = pid, .ready_fd = ready[0], .err_fd = errp[0] };
		return 0;
	}
	close(ready[0]);
	close(errp[0]);
	/* The parent's pipes to its other children: not this monitor's. */
	for (unsigned int i = 0; i < nclose; i++)
		close(close_fds[i]);
	*c = (struct monitor_child){ .pid = 0, .ready_fd = -1, .err_fd = -1 };
	/* A parent starting many (restore --count) catches these. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	/* Out of the terminal's session: its hang-up must not stop the guest. */
	setsid();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0 ||
	    dup2(errp[1], STDERR_FILENO) < 0) {
		c->status = CV_EXIT_FAIL;
		return 1;
	}
	close(null);
	close(errp[1]);
	c->status = monitor_lifecycle(cfg, &src, ready[1]);
	return 1;
}

/* -d: KVM ties a VM to the process that created it, so the fork comes
 * before the VM. The child reports through two pipes: its stderr until the
 * guest runs (relayed here), and one byte once it does. */
int monitor_detach(const struct vm_config *cfg, const struct restore_src *rs,
		   const struct migrate_incoming *in, const struct placement *place)
{
	struct monitor_child c;
	int r = monitor_spawn(cfg, rs, in, place, NULL, 0, &c);

	if (r < 0) {
		cv_err("starting the monitor: %s", strerror(-r));
		return CV_EXIT_FAIL;
	}
	if (r > 0)
		return c.status;
	return detach_parent(c.pid, c.ready_fd, c.err_fd);
}
