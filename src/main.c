/* main.c - argv -> subcommand. The only place that exits the process. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cvisor/cgroup.h"
#include "cvisor/config.h"
#include "cvisor/console.h"
#include "cvisor/cpulist.h"
#include "cvisor/ctl.h"
#include "cvisor/ctl_console.h"
#include "cvisor/migrate.h"
#include "cvisor/runloop.h"
#include "cvisor/snapshot.h"
#include "cvisor/virtio_balloon.h"
#include "cvisor/vm.h"

#define CVISOR_VERSION "0.1.0"

static const char usage_text[] =
	"usage: cvisor run --kernel FILE [--initrd FILE] [--cmdline STR] [--memory SIZE]\n"
	"                  [--cpus N] [--emulated-host auto|on|off] [--config FILE]\n"
	"                  [--name NAME [-d]] [--cpu-weight N] [--cpu-cap PERCENT]\n"
	"                  [--memory-limit SIZE] [--cpu-affinity CPULIST]\n"
	"                  [--disk PATH[,readonly][,serial=ID]]... [--net user[,...]|tap=NAME]...\n"
	"                  [--rng] [--balloon SIZE] [--vsock CID[,uds=PATH]] [--virtio pci|mmio]\n"
	"       cvisor ls [--json] | info NAME [--json] | stop NAME [--timeout S] | kill NAME\n"
	"       cvisor pause NAME | resume NAME | top [--once] [--json] | console NAME\n"
	"       cvisor balloon NAME SIZE | pin NAME VCPU CPULIST | ctl NAME JSON\n"
	"       cvisor save NAME FILE [--keep-running] | restore FILE [--name NAME [-d]] [PLACE]\n"
	"       cvisor run --incoming HOST:PORT [--storage-dir DIR] [--name NAME [-d]] [PLACE]\n"
	"       cvisor migrate NAME HOST:PORT [--downtime-ms N] [--with-storage] [--json] ...\n"
	"       cvisor version\n"
	"\n"
	"run boots a Linux bzImage or a PVH ELF kernel with a serial console on stdin/stdout.\n"
	"On a terminal, Ctrl-A x quits. --name serves a control socket in $CVISOR_RUN_DIR\n"
	"(default /run/cvisor) for the other commands; -d detaches (cvisor console NAME\n"
	"attaches, Ctrl-] detaches). Flags override the keys of a --config file.\n"
	"PLACE: --cpu-weight, --cpu-cap, --memory-limit, --cpu-affinity for this host; a\n"
	"restore keeps the saved ones otherwise, an incoming guest the source's limits\n"
	"but not its host CPUs.\n"
	"Exit status: 0 guest powered off or rebooted, 2 bad input, 3 guest crashed (triple\n"
	"fault), 4 unrecoverable emulation error, 128+N ended by signal N, 137 ended by\n"
	"cvisor kill or a cvisor stop that timed out.\n";

/* Read a --config file whole; its size is bounded before it is read. */
static int read_config_file(const char *path, char **text, size_t *len)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	*text = NULL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return -EFBIG;
	}
	*text = malloc((size_t)st.st_size + 1);
	if (!*text) {
		close(fd);
		return -ENOMEM;
	}
	*len = 0;
	while ((n = read(fd, *text + *len, (size_t)st.st_size - *len)) > 0)
		*len += (size_t)n;
	r = n < 0 ? -errno : 0;
	close(fd);
	(*text)[*len] = '\0';
	return r;
}

/* Flags, then the file they name (if any), then the flags again on top:
 * what is given on the command line overrides the file. */
static int parse_run_config(int argc, char **argv, struct vm_config *cfg)
{
	char err[512], *text;
	size_t len = 0;
	int r;

	config_init(cfg);
	r = config_apply_flags(argc, argv, cfg, err, sizeof(err));
	if (!r && cfg->config_file) {
		const char *file = cfg->config_file;

		if ((r = read_config_file(file, &text, &len))) {
			cv_err("--config %s: %s", file,
			       r == -EINVAL  ? "not a regular file"
			       : r == -EFBIG ? "larger than 1 MiB"
					     : strerror(-r));
			free(text);
			return CV_EXIT_USAGE;
		}
		config_init(cfg);
		r = config_apply_json(file, text, len, cfg, err, sizeof(err));
		free(text);
		if (!r)
			r = config_apply_flags(argc, argv, cfg, err, sizeof(err));
	}
	if (!r)
		r = config_check(cfg, err, sizeof(err));
	if (r) {
		cv_err("%s", err);
		config_free(cfg);
		return CV_EXIT_USAGE;
	}
	return 0;
}

/* The vCPU threads' host CPUs must exist here: checked before the VM is built. */
static int check_affinity(const char *list, cpu_set_t *set)
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

/* Where a restored or incoming guest runs on this host: the --cpu-weight,
 * --cpu-cap, --memory-limit and --cpu-affinity given to `restore` or
 * `run --incoming`, over what the snapshot or the source carried. */
struct placement {
	struct vm_config c; /* parsed by config.c's own setters */
	bool weight, cap, limit, affinity;
};

/* 1 when flag is a placement flag (applied), 0 when it is not, -EINVAL
 * with one line in err when its value is bad. */
static int placement_flag(struct placement *p, const char *flag, const char *val, char *err,
			  size_t errlen)
{
	char *av[] = { "cvisor", (char *)flag, (char *)val, NULL };
	bool *given = !strcmp(flag, "--cpu-weight")	? &p->weight
		      : !strcmp(flag, "--cpu-cap")	? &p->cap
		      : !strcmp(flag, "--memory-limit") ? &p->limit
		      : !strcmp(flag, "--cpu-affinity") ? &p->affinity
							: NULL;

	if (!given)
		return 0;
	if (!val)
		return snprintf(err, errlen, "%s needs a value", flag), -EINVAL;
	if (config_apply_flags(3, av, &p->c, err, errlen))
		return -EINVAL;
	*given = true;
	return 1;
}

static void placement_apply(const struct placement *p, struct vm_config *cfg)
{
	if (p->weight)
		cfg->cpu_weight = p->c.cpu_weight;
	if (p->cap)
		cfg->cpu_cap = p->c.cpu_cap;
	if (p->limit)
		cfg->memory_limit = p->c.memory_limit;
	if (p->affinity)
		cfg->cpu_affinity = p->c.cpu_affinity;
}

/* A cgroup for every named guest (so that weights compare guests), and for
 * an unnamed one that asks for a limit. Failing is not fatal: say so once
 * when the user asked for isolation. */
static void isolate(const struct vm_config *cfg, struct cgroup *cg)
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
static int start_vcpus(struct vm *vm, const cpu_set_t *affinity)
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

static int open_log(const struct ctl_server *srv, char *path, size_t len)
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
static void report_ready(int ready_fd, int log_fd)
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
static int balloon_set(void *ctx, uint64_t bytes)
{
	struct vm *vm = ctx;

	return vm->balloon ? virtio_balloon_set_target(vm->balloon, bytes) : -ENODEV;
}

/* A snapshot to restore instead of booting a kernel. */
struct restore_src {
	const char *path;
	uint8_t *payload;
	size_t len;
	int mem_fd;
};

/* The VM from the snapshot's CONFIG, RAM mapped from FILE.mem, then the
 * saved state. A state that does not load is the file's fault (status 2). */
static int restore_vm(struct vm *vm, const struct vm_config *cfg, const struct restore_src *rs,
		      bool *usage)
{
	char err[512];
	int r;

	if ((r = vm_create_restore(vm, cfg, rs->mem_fd, usage)))
		return r;
	if ((r = snapshot_state_load(vm, rs->payload, rs->len, err, sizeof(err)))) {
		cv_err("snapshot %s: %s", rs->path, err);
		*usage = r != -ENOMEM;
	}
	return r;
}

/* Build, run and tear down the guest. ready_fd >= 0 in a detached child;
 * rs: restore that snapshot rather than boot. */
static int run_guest(const struct vm_config *cfg, int ready_fd, const struct restore_src *rs)
{
	static struct vm vm;
	static struct ctl_server srv;
	static struct ctl_console con;
	struct ctl_hooks hooks = { .balloon_set = balloon_set, .ctx = &vm };
	struct cgroup cg = { 0 };
	cpu_set_t affinity;
	char err[PATH_MAX + 128];
	bool usage = false, named = cfg->name != NULL, have_con = false;
	int status = CV_EXIT_FAIL, signo = 0, r, log_fd = -1;

	runloop_block_signals();
	if (named && (r = ctl_server_bind(&srv, ctl_run_dir(), cfg->name, err, sizeof(err)))) {
		cv_err("%s", err);
		return r == -EADDRINUSE || r == -ENAMETOOLONG ? CV_EXIT_USAGE : CV_EXIT_FAIL;
	}
	if (cfg->cpu_affinity && check_affinity(cfg->cpu_affinity, &affinity)) {
		status = CV_EXIT_USAGE;
		goto out;
	}
	if (cfg->detach && (log_fd = open_log(&srv, srv.log_path, sizeof(srv.log_path))) < 0)
		goto out;
	isolate(cfg, &cg);
	if (rs ? restore_vm(&vm, cfg, rs, &usage) : vm_create(&vm, cfg, &usage)) {
		status = usage ? CV_EXIT_USAGE : CV_EXIT_FAIL;
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
	if (start_vcpus(&vm, cfg->cpu_affinity ? &affinity : NULL) == 0) {
		if (ready_fd >= 0)
			report_ready(ready_fd, con.log_fd);
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
	bool usage = false;
	int r;

	cfg->name = x->name;
	cfg->detach = x->detach;
	/* The source's host CPUs mean nothing here: only ours count. */
	cfg->cpu_affinity = NULL;
	placement_apply(x->place, cfg);
	isolate(cfg, x->cg);
	x->built = true;
	if ((r = vm_create_restore(x->vm, cfg, -1, &usage))) {
		snprintf(err, errlen, "building the guest: %s", strerror(-r));
		return r;
	}
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
	struct ctl_hooks hooks = { .balloon_set = balloon_set, .ctx = x->vm };
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
	r = start_vcpus(vm, x->place->affinity ? &x->affinity : NULL);
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
		report_ready(x->ready_fd, x->log_fd);
		x->ready_fd = -1;
	}
}

/* The target of a live migration: listen, take the guest from the
 * stream, then run it like any other. */
static int run_incoming(const struct vm_config *cli, const struct migrate_incoming *in_cli,
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
	if (cli->detach && (x.log_fd = open_log(&srv, srv.log_path, sizeof(srv.log_path))) < 0)
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

/* -d: KVM ties a VM to the process that created it, so the fork comes
 * before the VM. The child reports through two pipes: its stderr until the
 * guest runs (relayed here), and one byte once it does. */
static int run_detached(const struct vm_config *cfg, const struct restore_src *rs,
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
		return in ? run_incoming(cfg, in, place, ready[1]) : run_guest(cfg, ready[1], rs);
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

/* A detached monitor leaves the current directory: keep the files' full
 * names (also what `cvisor info` shows). A file that does not resolve is
 * left as given, for vm_create to report. */
static void absolute_paths(struct vm_config *cfg)
{
	static char kernel[PATH_MAX], initrd[PATH_MAX];

	if (realpath(cfg->kernel, kernel))
		cfg->kernel = kernel;
	if (cfg->initrd && realpath(cfg->initrd, initrd))
		cfg->initrd = initrd;
}

/* Disk images by their full names, in every run: a snapshot records them
 * for a restore started from another directory. */
static void absolute_disks(struct devices_config *dc)
{
	static char disks[DEVICES_MAX_DISKS][PATH_MAX + 256];

	for (unsigned int i = 0; i < dc->ndisks; i++) {
		const char *spec = dc->disks[i], *opts = strchr(spec, ',');
		size_t n = opts ? (size_t)(opts - spec) : strlen(spec);
		char path[PATH_MAX], real[PATH_MAX];

		if (n >= sizeof(path))
			continue;
		memcpy(path, spec, n);
		path[n] = '\0';
		if (!realpath(path, real) ||
		    (size_t)snprintf(disks[i], sizeof(disks[i]), "%s%s", real, opts ? opts : "") >=
			    sizeof(disks[i]))
			continue;
		dc->disks[i] = disks[i];
	}
}

/* cvisor run --incoming HOST:PORT [--storage-dir DIR] [--name NAME] [-d]
 *     [--cpu-weight N] [--cpu-cap P] [--memory-limit SIZE] [--cpu-affinity L] */
static int cmd_run_incoming(int argc, char **argv)
{
	static struct vm_config cfg;
	static char storage[PATH_MAX];
	static struct placement place;
	struct migrate_incoming in = { 0 };
	cpu_set_t set;
	const char *name = NULL;
	char err[512];
	bool detach = false;
	int status, r;

	config_init(&place.c);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '='), *val = NULL;
		char flag[64];

		if (!strcmp(a, "-d") || !strcmp(a, "--detach")) {
			detach = true;
			continue;
		}
		if (a[0] == '-' && a[1] == '-' && eq && (size_t)(eq - a) < sizeof(flag)) {
			memcpy(flag, a, (size_t)(eq - a));
			flag[eq - a] = '\0';
			val = eq + 1;
		} else {
			snprintf(flag, sizeof(flag), "%s", a);
			if (i + 1 < argc)
				val = argv[i + 1];
		}
		if (!strcmp(flag, "--name")) {
			name = val;
		} else if ((r = placement_flag(&place, flag, val, err, sizeof(err))) < 0) {
			cv_err("run: %s", err);
			return CV_EXIT_USAGE;
		} else if (r == 1) {
			/* applied */
		} else if ((r = migrate_incoming_flag(&in, flag, val, err, sizeof(err))) < 0) {
			cv_err("%s", err);
			return CV_EXIT_USAGE;
		} else if (r == 0) {
			cv_err("run --incoming: unexpected argument %s (the guest's configuration "
			       "comes from the source)",
			       a);
			return CV_EXIT_USAGE;
		}
		if (!eq && val)
			i++;
		else if (!val) {
			cv_err("run: %s needs a value", flag);
			return CV_EXIT_USAGE;
		}
	}
	if (name && !ctl_name_valid(name)) {
		cv_err("run: --name %.80s: names are 1 to %d letters, digits, '_', '.' or '-', "
		       "not starting with '.' or '-'",
		       name, CTL_NAME_MAX);
		return CV_EXIT_USAGE;
	}
	if (detach && !name) {
		cv_err("run: -d needs --name NAME (a detached guest is reached by its name)");
		return CV_EXIT_USAGE;
	}
	if (!in.listen) {
		cv_err("run: --incoming needs HOST:PORT to listen on");
		return CV_EXIT_USAGE;
	}
	if (place.affinity && check_affinity(place.c.cpu_affinity, &set))
		return CV_EXIT_USAGE;
	/* A detached monitor leaves the current directory. */
	if (in.storage_dir && realpath(in.storage_dir, storage))
		in.storage_dir = storage;
	config_init(&cfg);
	cfg.name = name;
	cfg.detach = detach;
	status = detach ? run_detached(&cfg, NULL, &in, &place)
			: run_incoming(&cfg, &in, &place, -1);
	config_free(&cfg);
	return status;
}

static int cmd_run(int argc, char **argv)
{
	static struct vm_config cfg;
	int status;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--incoming") || !strncmp(argv[i], "--incoming=", 11))
			return cmd_run_incoming(argc, argv);
	if ((status = parse_run_config(argc, argv, &cfg)))
		return status;
	if (cfg.detach)
		absolute_paths(&cfg);
	absolute_disks(&cfg.devices);
	status = cfg.detach ? run_detached(&cfg, NULL, NULL, NULL) : run_guest(&cfg, -1, NULL);
	config_free(&cfg);
	return status;
}

/* cvisor restore FILE [--name NAME] [-d] [--cpu-weight N] [--cpu-cap P]
 *     [--memory-limit SIZE] [--cpu-affinity L] */
static int cmd_restore(int argc, char **argv)
{
	static struct vm_config cfg;
	static struct placement place;
	struct restore_src rs = { .mem_fd = -1 };
	const char *name = NULL;
	char err[PATH_MAX + 256];
	bool detach = false;
	int status, r;

	config_init(&place.c);
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '='), *val = i + 1 < argc ? argv[i + 1] : NULL;
		int len = eq ? (int)(eq - argv[i]) : (int)strlen(argv[i]);
		char flag[32];

		/* --flag VALUE or --flag=VALUE */
		snprintf(flag, sizeof(flag), "%.*s", len, argv[i]);
		if ((r = placement_flag(&place, flag, eq ? eq + 1 : val, err, sizeof(err))) < 0) {
			cv_err("restore: %s", err);
			return CV_EXIT_USAGE;
		} else if (r == 1) {
			i += !eq;
			continue;
		}
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(argv[i], "-d") || !strcmp(argv[i], "--detach")) {
			detach = true;
		} else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
			name = argv[++i];
		} else if (!strncmp(argv[i], "--name=", 7)) {
			name = argv[i] + 7;
		} else if (argv[i][0] == '-' || rs.path) {
			cv_err("restore: unexpected argument %s (see cvisor help)", argv[i]);
			return CV_EXIT_USAGE;
		} else {
			rs.path = argv[i];
		}
	}
	if (!rs.path) {
		cv_err("restore: needs a snapshot FILE (written by cvisor save)");
		return CV_EXIT_USAGE;
	}
	if (name && !ctl_name_valid(name)) {
		cv_err("restore: --name %.80s: names are 1 to %d letters, digits, '_', '.' or '-', "
		       "not starting with '.' or '-'",
		       name, CTL_NAME_MAX);
		return CV_EXIT_USAGE;
	}
	if (detach && !name) {
		cv_err("restore: -d needs --name NAME (a detached guest is reached by its name)");
		return CV_EXIT_USAGE;
	}
	config_init(&cfg);
	r = snapshot_open(rs.path, &cfg, &rs.payload, &rs.len, &rs.mem_fd, err, sizeof(err));
	if (r) {
		cv_err("snapshot %s: %s", rs.path, err);
		return r == -ENOMEM ? CV_EXIT_FAIL : CV_EXIT_USAGE;
	}
	cfg.name = name;
	cfg.detach = detach;
	placement_apply(&place, &cfg);
	status = detach ? run_detached(&cfg, &rs, NULL, NULL) : run_guest(&cfg, -1, &rs);
	close(rs.mem_fd);
	free(rs.payload);
	config_free(&cfg);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return CV_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (ctl_client_verb(argv[1]))
		return ctl_client_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("cvisor %s\n", CVISOR_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	fprintf(stderr, "cvisor: unknown command %s (try cvisor help)\n", argv[1]);
	return CV_EXIT_USAGE;
}
