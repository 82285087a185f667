/* server.c - the VMM process of the API mode: the API socket and the
 * --event-monitor stream, served on the VMM's own event loop while no
 * guest runs; each vm.boot builds the guest through the monitor's one
 * lifecycle (monitor_run_api), which serves the API on the guest's loop
 * until the guest stops. The guest gets a cvisor name (its control
 * socket), so that `cvisor ls/info/console/...` reach it too. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api_priv.h"
#include "cvisor/monitor.h"
#include "cvisor/runloop.h"
#include "cvisor/vm.h"

struct evloop *api_loop(struct api *a)
{
	return a->vm ? &a->vm->loop : &a->loop;
}

int api_parse_target(const char *val, bool plain_ok, const char **path, int *fd)
{
	uint64_t n;

	*path = NULL;
	*fd = -1;
	if (!val || !*val)
		return -EINVAL;
	if (!strncmp(val, "fd=", 3)) {
		if (cv_parse_uint(val + 3, 0, INT32_MAX, &n))
			return -EINVAL;
		*fd = (int)n;
		return 0;
	}
	if (!strncmp(val, "path=", 5))
		val += 5;
	else if (!plain_ok && strchr(val, '='))
		return -EINVAL;
	if (!*val)
		return -EINVAL;
	*path = val;
	return 0;
}

/* --api-socket PATH (made here, removed at the end) or fd=N (the client's
 * listening socket). The listening fd, or -errno with err. */
static int api_listen(const char *spec, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path;
	struct stat st;
	int fd, on = 0, r;
	socklen_t len = sizeof(on);

	if (api_parse_target(spec, true, &path, &fd))
		return cv_errf(err, errlen, -EINVAL, "--api-socket %.200s: want PATH or fd=N",
			       spec);
	if (fd >= 0) {
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) || !on)
			return cv_errf(err, errlen, -EINVAL,
				       "--api-socket fd=%d: not a listening socket", fd);
		return fd;
	}
	if (strlen(path) >= sizeof(sa.sun_path))
		return cv_errf(err, errlen, -ENAMETOOLONG, "--api-socket %.200s: path too long",
			       path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* A stale socket from a VMM that died is replaced; a live one (it
	 * takes a connection) and anything else are not. */
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode)) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;

		if (probe >= 0)
			close(probe);
		if (live)
			return cv_errf(err, errlen, -EADDRINUSE,
				       "--api-socket %.200s: another VMM serves it", path);
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return cv_errf(err, errlen, -errno, "--api-socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(path, 0600) || listen(fd, 64)) {
		r = -errno;
		close(fd);
		return cv_errf(err, errlen, r, "--api-socket %s: %s", path, strerror(-r));
	}
	return fd;
}

/* The control socket's rules (access.c): root or the VMM's owner. A
 * refused peer is told why in the 403's JSON body. */
static bool api_admit(void *opaque, int fd, char *body, size_t len)
{
	struct api *a = opaque;
	char why[128];

	if (ctl_server_check(&a->gate, fd, why, sizeof(why)) == CTL_PEER_OWNER)
		return true;
	/* why is one line of cvisor's own, without quotes or backslashes */
	snprintf(body, len, "{\"error\":\"%s\"}", why);
	return false;
}

static void on_signal(void *opaque, int fd, uint32_t events)
{
	struct api *a = opaque;
	struct signalfd_siginfo si;

	(void)events;
	if (read(fd, &si, sizeof(si)) == sizeof(si)) {
		a->quit = true;
		a->status = 128 + (int)si.ssi_signo;
	}
}

static int api_signals(struct api *a)
{
	sigset_t set;

	runloop_block_signals();
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	a->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->sfd < 0)
		return -errno;
	return evloop_add(&a->loop, a->sfd, EPOLLIN, on_signal, a);
}

/* ---- a guest's life, through the monitor ---- */

/* A reset in place (vm.reboot, or the guest's own): Cloud Hypervisor's
 * events, "rebooting" then "rebooted", with no shutdown between. */
static void on_reset(void *ctx, bool done)
{
	api_event(ctx, "vm", done ? "rebooted" : "rebooting");
}

static void on_running(void *ctx, struct vm *vm)
{
	struct api *a = ctx;

	a->built_once = true;
	if (a->http && http_server_move(a->http, &vm->loop)) {
		cv_err("API socket: cannot serve it on the guest's loop");
		vm_request_stop(vm, VM_STOP_HOST, "the API socket could not follow the guest");
		return;
	}
	api_events_move(a, &a->loop, &vm->loop);
	a->vm = vm;
	a->state = API_RUNNING;
	vm->reset_hook = on_reset;
	vm->reset_ctx = a;
	/* Cloud Hypervisor's restored VM waits, paused, for vm.resume (its
	 * vCPUs were released parked: this waits for them to be). */
	if (a->restoring)
		vm_pause(vm);
	/* Every vCPU thread exists and is named vcpuN (monitor_go waited for
	 * each to be held): libvirt reads them when this reply arrives. */
	if (a->boot_conn)
		http_reply(a->boot_conn, 204, NULL, 0);
	a->boot_conn = NULL;
	if (a->incoming) {
		/* vm.info's config: what the source sent. */
		json_object_put(a->create_body);
		a->create_body = api_config_echo(vm->cfg);
	} else {
		api_event(a, "vm",
			  a->restoring	 ? "restored"
			  : a->rebooting ? "rebooted"
					 : "booted");
	}
	a->rebooting = false;
}

static void on_ended(void *ctx, struct vm *vm, const struct cv_error *err)
{
	struct api *a = ctx;

	if (a->vm) {
		a->stop_why = atomic_load(&vm->stop);
		if (a->http && http_server_move(a->http, &a->loop))
			cv_err("API socket: cannot serve it after the guest");
		api_events_move(a, &vm->loop, &a->loop);
		a->vm = NULL;
	}
	if (err)
		snprintf(a->boot_err, sizeof(a->boot_err), "%s",
			 err->msg[0] ? err->msg
				     : "the guest could not be built (the VMM's log says why)");
}

/* The main thread's seccomp filter, once entered, forbids making another
 * VM in this process; in log mode it stays too, and the new vCPU threads
 * would inherit it (a log line per exit) under one more filter per build. */
bool api_can_build(const struct api *a)
{
	return !a->built_once || a->o->seccomp == SANDBOX_OFF;
}

/* Where the 8250's output goes: the guest's serial mode (Tty: the VMM's
 * stdout, which libvirt logs; File: that file; Off and Null: nowhere).
 * Pty and Off/Null are the 8250's own modes (--serial pty|off, set from
 * vm.create); stdout stays the VMM's for those.
 * 0, or -errno with err. */
static int wire_serial(struct api *a, char *err, size_t errlen)
{
	const char *m = a->io.serial_mode;
	int fd = -1, r = 0;

	if (!strcmp(m, "File"))
		fd = open(a->io.serial_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	else if (!strcmp(m, "Off") || !strcmp(m, "Null"))
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	else
		fd = dup(a->stdout_fd);
	if (fd < 0)
		return cv_errf(err, errlen, -errno, "serial %s: %s", m, strerror(errno));
	if (dup2(fd, STDOUT_FILENO) < 0)
		r = cv_errf(err, errlen, -errno, "serial %s: %s", m, strerror(errno));
	close(fd);
	return r;
}

static void run_guest(struct api *a)
{
	bool restore = a->restoring;
	struct monitor_hooks h = {
		.start_paused = restore, .running = on_running, .ended = on_ended, .ctx = a
	};
	int status;

	if (!api_can_build(a)) {
		if (a->boot_conn)
			http_reply_error(
				a->boot_conn, 500,
				"%s: a guest already ran in this VMM, whose seccomp filter "
				"forbids building another (start a new VMM, or --seccomp "
				"false)",
				restore ? "vm.restore" : "vm.boot");
		a->boot_conn = NULL;
		a->quit = a->rebooting; /* a reboot that cannot be: the guest ends */
		if (restore)
			api_restore_drop(a);
		return;
	}
	a->boot_err[0] = '\0';
	a->stop_why = 0;
	if (wire_serial(a, a->boot_err, sizeof(a->boot_err))) {
		if (a->boot_conn)
			http_reply_error(a->boot_conn, 500, "vm.boot: %s", a->boot_err);
		else if (a->o->create_body) /* the direct flags' boot: no client to tell */
			cv_err("%s", a->boot_err);
		a->quit |= a->rebooting || (!a->boot_conn && a->o->create_body);
		if (a->quit && !a->status)
			a->status = CV_EXIT_FAIL;
		a->boot_conn = NULL;
		return;
	}
	a->cfg.seccomp = a->o->seccomp;
	/* A reboot is a reset in place (src/vm_reset.c), as in Cloud
	 * Hypervisor: the same process, pid and vCPU threads. */
	a->cfg.on_reboot = CONFIG_REBOOT_RESTART;
	if (config_set_string(&a->cfg.name, a->name)) {
		http_reply_error(a->boot_conn, 500, "vm.boot: out of memory");
		a->boot_conn = NULL;
		a->quit |= a->rebooting; /* no VM is left to wait for */
		return;
	}
	status = monitor_run_api(&a->cfg, a->restoring ? &a->rs : NULL, a->incoming ? &a->in : NULL,
				 &h);
	if (a->incoming) {
		a->incoming = false;
		migrate_incoming_free(&a->in);
	}
	if (restore) {
		a->restoring = false;
		cv_close(&a->rs.mem_fd);
		free(a->rs.payload);
		a->rs.payload = NULL;
	}
	if (a->boot_conn) { /* never ran */
		http_reply_error(a->boot_conn, 500, "%s: %s", restore ? "vm.restore" : "vm.boot",
				 a->boot_err);
		a->boot_conn = NULL;
		/* A restore or a receive that failed leaves no VM; a boot, the
		 * created one. */
		a->state = API_CREATED;
		if (restore || a->create_body == NULL)
			api_restore_drop(a);
		a->quit |= a->rebooting;
		a->rebooting = false;
		return;
	}
	if (a->state != API_RUNNING) /* a reboot whose build failed */
		return (void)(a->quit = true, a->status = status);
	a->state = API_SHUTDOWN;
	if (!a->quit && !a->stopping && a->stop_why == VM_STOP_RESET && api_can_build(a)) {
		/* The reset of a restored or received guest, which has no
		 * boot state to reset to in place: built anew from its config
		 * (--seccomp false only; the event stream says rebooting, then
		 * rebooted; no shutdown between). */
		a->rebooting = a->boot = true;
		a->state = API_CREATED;
		api_event(a, "vm", "rebooting");
		return;
	}
	api_event(a, "vm", "shutdown");
	if (a->quit) {
		a->status = a->status ? a->status : status;
	} else if (a->stopping) {
		/* vm.shutdown or vm.delete: the VMM stays. */
		a->stopping = false;
		if (a->deleting) {
			a->state = API_NONE;
			api_event(a, "vm", "deleted");
			json_object_put(a->create_body);
			a->create_body = NULL;
			config_free(&a->cfg);
			config_init(&a->cfg);
		}
		a->deleting = false;
		if (a->stop_conn)
			http_reply(a->stop_conn, 204, NULL, 0);
		a->stop_conn = NULL;
	} else {
		/* The guest powered off (or crashed, or reset where it cannot be
		 * rebuilt): the VMM ends, as Cloud Hypervisor's does. */
		a->quit = true;
		a->status = status;
	}
}

/* ---- the process ---- */

static void api_name(struct api *a)
{
	const char *n = a->o->name ? a->o->name : getenv("CVISOR_CH_NAME");

	if (n)
		snprintf(a->name, sizeof(a->name), "%s", n);
	else
		snprintf(a->name, sizeof(a->name), "ch-%d", (int)getpid());
}

static int api_setup(struct api *a, char *err, size_t errlen)
{
	int fd = -1, r;

	api_name(a);
	if (!ctl_name_valid(a->name))
		return cv_errf(err, errlen, -EINVAL,
			       "guest name %.80s: names are 1 to %d letters, digits, '_', '.' or "
			       "'-', not starting with '.' or '-'",
			       a->name, CTL_NAME_MAX);
	if ((r = evloop_init(&a->loop)))
		return cv_errf(err, errlen, r, "event loop: %s", strerror(-r));
	if ((r = api_signals(a)))
		return cv_errf(err, errlen, r, "signals: %s", strerror(-r));
	/* The direct VM flags may come without an API socket. */
	if (a->o->socket && (fd = api_listen(a->o->socket, err, errlen)) < 0)
		return fd;
	a->gate.owner = geteuid();
	if (a->o->socket &&
	    (r = http_server_start(&a->http, &a->loop, fd, api_handle, api_admit, a)))
		return cv_errf(err, errlen, r, "API socket: %s", strerror(-r));
	if (a->o->events && (r = api_events_open(a, a->o->events, err, errlen)))
		return r;
	return 0;
}

int api_main(const struct api_opts *o)
{
	static struct api a;
	char err[512] = "";
	const char *path;
	bool up = false;
	int fd;

	a.o = o;
	a.sfd = a.ev_fd = a.ev_tick = a.rs.mem_fd = -1;
	/* The VMM's own stdout, for a serial in mode Tty after one elsewhere. */
	a.stdout_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	config_init(&a.cfg);
	if (api_setup(&a, err, sizeof(err))) {
		cv_err("%s", err);
		a.status = CV_EXIT_USAGE;
		a.quit = true;
	} else {
		up = true;
		api_event(&a, "vmm", "starting");
	}
	/* The direct VM flags: created and booted as vm.create and vm.boot
	 * would (main checked the body: only memory can fail here). */
	if (up && o->create_body) {
		if (api_vm_create(&a, o->create_body, strlen(o->create_body), err, sizeof(err))) {
			cv_err("%s", err);
			a.status = CV_EXIT_FAIL;
			a.quit = true;
		}
		a.boot = true;
	}
	while (!a.quit) {
		if (a.boot) {
			a.boot = false;
			run_guest(&a);
			continue;
		}
		if (evloop_once(&a.loop, -1)) {
			cv_err("event loop: %s", strerror(errno));
			a.status = CV_EXIT_FAIL;
			break;
		}
	}
	if (up) {
		api_event(&a, "vmm", "shutdown");
		if (a.stop_conn)
			http_reply(a.stop_conn, 204, NULL, 0);
		/* Let the last reply go out before the connections close. */
		for (int i = 0; i < 5 && !evloop_once(&a.loop, 10);)
			i++;
	}
	http_server_free(a.http);
	api_events_close(&a);
	if (!api_parse_target(o->socket, true, &path, &fd) && path && a.http)
		unlink(path);
	cv_close(&a.sfd);
	cv_close(&a.stdout_fd);
	evloop_destroy(&a.loop);
	json_object_put(a.create_body);
	config_free(&a.cfg);
	return a.status;
}
