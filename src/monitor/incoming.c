/* incoming.c - `cvisor run --incoming`: a monitor that listens for a live
 * migration, answers its control socket from a waiter thread while the
 * guest arrives, then builds, loads and runs it (monitor_run_incoming). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvisor/console.h"
#include "cvisor/cpulist.h"
#include "cvisor/ctl_console.h"
#include "cvisor/migrate.h"
#include "cvisor/monitor.h"
#include "cvisor/runloop.h"
#include "monitor_priv.h"

/* `run --incoming`: what the target's build/start/destroy hooks set up,
 * as a normal run would (name, log, console, cgroup, control socket). */
struct incoming_ctx {
	pthread_t waiter;
	int wake[2]; /* stops the waiter; wake[0] < 0: no waiter */
	struct vm *vm;
	struct ctl_server *srv;
	struct ctl_console *con;
	struct cgroup *cg;
	const char *name;
	const struct placement *place;
	cpu_set_t affinity; /* with place->affinity */
	bool detach, named, have_con, built;
	int ready_fd, log_fd;
	/* The source's connection while RAM arrives (-1 before and after):
	 * a kill then aborts the transfer instead of the process. */
	pthread_mutex_t conn_lock;
	int conn_fd;
	_Atomic bool killed;
};

/* Until the guest exists, a thread answers the control socket: info (so
 * that scripts find the monitor's pid) and kill; other requests wait for
 * the guest. */
static void waiter_serve(struct incoming_ctx *x, int fd)
{
	char buf[4096], reply[PATH_MAX + 1024];
	size_t len = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (len < sizeof(buf) - 1 && !memchr(buf, '\n', len) && poll(&p, 1, 1000) > 0) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (strstr(buf, "\"kill\"")) {
		snprintf(reply, sizeof(reply), "{\"ok\":true,\"outcome\":\"killed\"}\n");
		pthread_mutex_lock(&x->conn_lock);
		if (x->conn_fd >= 0) {
			/* A transfer runs: end it, and the receive removes what it
			 * made (disk images, the half-built guest) and exits. The
			 * name is free before the answer, as for any kill (the main
			 * thread reads these paths only after joining us). */
			atomic_store(&x->killed, true);
			shutdown(x->conn_fd, SHUT_RDWR);
			pthread_mutex_unlock(&x->conn_lock);
			unlink(x->srv->sock_path);
			unlink(x->srv->lock_path);
			x->srv->sock_path[0] = x->srv->lock_path[0] = '\0';
			if (send(fd, reply, strlen(reply), MSG_NOSIGNAL) < 0) {
				/* the client went away */
			}
			return;
		}
		pthread_mutex_unlock(&x->conn_lock);
		/* No source yet: nothing was made but the name, so the one exit
		 * outside main.c ends the process here, from this thread. */
		unlink(x->srv->sock_path);
		unlink(x->srv->lock_path);
		if (send(fd, reply, strlen(reply), MSG_NOSIGNAL) < 0) {
			/* exiting anyway */
		}
		_exit(128 + SIGKILL);
	}
	if (strstr(buf, "\"info\"") || strstr(buf, "\"stats\""))
		snprintf(reply, sizeof(reply),
			 "{\"ok\":true,\"name\":\"%s\",\"pid\":%d,\"state\":\"incoming\","
			 "\"vcpus\":0,\"memory\":0,\"uptime_ms\":0,\"detached\":%s,\"log\":%s%s%s}"
			 "\n",
			 x->srv->name, (int)getpid(), x->detach ? "true" : "false",
			 x->srv->log_path[0] ? "\"" : "",
			 x->srv->log_path[0] ? x->srv->log_path : "null",
			 x->srv->log_path[0] ? "\"" : "");
	else
		snprintf(reply, sizeof(reply),
			 "{\"ok\":false,\"error\":\"guest %s is waiting for an incoming "
			 "migration\"}\n",
			 x->srv->name);
	if (send(fd, reply, strlen(reply), MSG_NOSIGNAL) < 0) {
		/* the client went away */
	}
}

static void *waiter_main(void *opaque)
{
	struct incoming_ctx *x = opaque;

	for (;;) {
		struct pollfd p[2] = { { .fd = x->srv->listen_fd, .events = POLLIN },
				       { .fd = x->wake[0], .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(x->srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		waiter_serve(x, fd);
		close(fd);
	}
	return NULL;
}

static void waiter_stop(struct incoming_ctx *x)
{
	char one = 1;

	if (x->wake[0] < 0)
		return;
	if (write(x->wake[1], &one, 1) != 1)
		cv_debug("waking the control thread: %s", strerror(errno));
	pthread_join(x->waiter, NULL);
	close(x->wake[0]);
	close(x->wake[1]);
	x->wake[0] = x->wake[1] = -1;
}

static int incoming_build(void *opaque, struct vm_config *cfg, struct vm **out, char *err,
			  size_t errlen)
{
	struct incoming_ctx *x = opaque;
	struct cv_error e = { 0 };
	int r;

	cfg->detach = x->detach;
	/* The source's host CPUs mean nothing here: only ours count. */
	if (config_set_string(&cfg->name, x->name) || config_set_string(&cfg->cpu_affinity, NULL) ||
	    placement_apply(x->place, cfg))
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	monitor_isolate(cfg, x->cg);
	x->built = true;
	if ((r = vm_create_restore(x->vm, cfg, -1, &e)))
		return cv_errf(err, errlen, r, "building the guest: %s",
			       e.msg[0] ? e.msg : strerror(-r));
	if (x->detach) {
		if ((r = ctl_console_init(x->con, x->log_fd))) {
			snprintf(err, errlen, "console ring: %s", strerror(-r));
			return r;
		}
		x->log_fd = -1;
		x->have_con = true;
		x->vm->console_write = ctl_console_write;
		x->vm->console_ctx = x->con;
	}
	*out = x->vm;
	return 0;
}

/* The state is loaded: the monitor's own control server takes over from
 * the waiter (which kept answering while RAM arrived), then the vCPUs run. */
static int incoming_start(void *opaque, struct vm *vm, char *err, size_t errlen)
{
	struct incoming_ctx *x = opaque;
	struct ctl_hooks hooks = { .balloon_set = monitor_balloon_set, .ctx = x->vm };
	int r;

	waiter_stop(x);
	/* Joined: no kill can come in after this check. One that came while
	 * the last bytes were read must not leave the guest running here. */
	if (atomic_load(&x->killed)) {
		snprintf(err, errlen, "killed by cvisor kill");
		return -ECANCELED;
	}
	if (x->named) {
		snprintf(x->srv->cgroup, sizeof(x->srv->cgroup), "%s", cgroup_path(x->cg));
		if ((r = ctl_server_start(x->srv, x->vm, &hooks, x->have_con ? x->con : NULL))) {
			snprintf(err, errlen, "control socket: %s", strerror(-r));
			return r;
		}
	}
	r = monitor_start_vcpus(vm, x->place->affinity ? &x->affinity : NULL);
	if (r)
		snprintf(err, errlen, "starting the vCPUs: %s", strerror(-r));
	return r;
}

static void incoming_destroy(void *opaque, struct vm *vm)
{
	struct incoming_ctx *x = opaque;

	(void)vm;
	if (!x->built)
		return;
	vm_request_stop(x->vm, VM_STOP_HOST, NULL);
	vm_join(x->vm);
	vm_destroy(x->vm);
	if (x->have_con)
		ctl_console_destroy(x->con);
	x->have_con = false;
	cgroup_leave(x->cg);
	x->built = false;
}

static void incoming_connected(void *opaque, int fd)
{
	struct incoming_ctx *x = opaque;

	pthread_mutex_lock(&x->conn_lock);
	x->conn_fd = fd;
	pthread_mutex_unlock(&x->conn_lock);
}

static void incoming_listening(void *opaque, const char *addr)
{
	struct incoming_ctx *x = opaque;

	(void)addr;
	if (x->ready_fd >= 0) {
		monitor_report_ready(x->ready_fd, x->log_fd);
		x->ready_fd = -1;
	}
}

/* The target of a live migration: listen, take the guest from the
 * stream, then run it like any other. */
int monitor_run_incoming(const struct vm_config *cli, const struct migrate_incoming *in_cli,
			 const struct placement *place, int ready_fd)
{
	static struct vm vm;
	static struct ctl_server srv;
	static struct ctl_console con;
	struct cgroup cg = { 0 };
	struct incoming_ctx x = { .vm = &vm,
				  .srv = &srv,
				  .con = &con,
				  .cg = &cg,
				  .name = cli->name,
				  .detach = cli->detach,
				  .named = cli->name != NULL,
				  .place = place,
				  .ready_fd = ready_fd,
				  .log_fd = -1,
				  .conn_lock = PTHREAD_MUTEX_INITIALIZER,
				  .conn_fd = -1,
				  .wake = { -1, -1 } };
	struct migrate_target_ops ops = migrate_default_target_ops;
	struct migrate_incoming in = *in_cli;
	struct migrate_target t = { 0 };
	char err[PATH_MAX + 256];
	int status = CV_EXIT_FAIL, signo = 0, r;

	if (place->affinity && cpulist_parse(place->c.cpu_affinity, &x.affinity))
		return CV_EXIT_USAGE; /* checked by cmd_run_incoming */
	runloop_block_signals();
	if (x.named && (r = ctl_server_bind(&srv, ctl_run_dir(), cli->name, err, sizeof(err)))) {
		cv_err("%s", err);
		return r == -EADDRINUSE || r == -ENAMETOOLONG ? CV_EXIT_USAGE : CV_EXIT_FAIL;
	}
	if (cli->detach &&
	    (x.log_fd = monitor_open_log(&srv, srv.log_path, sizeof(srv.log_path))) < 0)
		goto out;
	if (x.named) {
		if (pipe2(x.wake, O_CLOEXEC) < 0) {
			cv_err("pipe: %s", strerror(errno));
			goto out;
		}
		if ((r = pthread_create(&x.waiter, NULL, waiter_main, &x))) {
			cv_err("control thread: %s", strerror(r));
			close(x.wake[0]);
			close(x.wake[1]);
			x.wake[0] = x.wake[1] = -1;
			goto out;
		}
	}
	ops.build = incoming_build;
	ops.start = incoming_start;
	ops.destroy = incoming_destroy;
	ops.listening = incoming_listening;
	ops.connected = incoming_connected;
	in.ops = &ops;
	in.ctx = &x;
	if (migrate_receive(&in, &t, err, sizeof(err))) {
		waiter_stop(&x);
		if (atomic_load(&x.killed)) {
			cv_err("incoming migration on %s: killed by cvisor kill", in.listen);
			status = 128 + SIGKILL;
		} else {
			cv_err("incoming migration on %s: %s", in.listen, err);
		}
		goto out;
	}
	if (!cli->detach)
		console_raw(STDIN_FILENO);
	signo = runloop_run(&vm);
	vm_join(&vm);
	if (x.named)
		ctl_server_shutdown(&srv);
	console_restore();
	if (vm.stop_msg[0]) {
		if (x.have_con && ctl_console_last(&con) >= 0 && ctl_console_last(&con) != '\n')
			fputc('\n', stderr);
		cv_err("%s", vm.stop_msg);
	}
	status = signo ? 128 + signo : vm_exit_status(&vm);
	if (x.named && ctl_server_killed(&srv))
		status = 128 + SIGKILL;
	vm_destroy(&vm);
	if (x.have_con)
		ctl_console_destroy(&con);
	cgroup_leave(&cg);
	migrate_target_free(&t);
out:
	if (x.log_fd >= 0)
		close(x.log_fd);
	if (x.named)
		ctl_server_close(&srv);
	return status;
}
