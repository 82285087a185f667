/* commands.c - what each control request does to the guest (main thread). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cvisor/cpulist.h"
#include "cvisor/ctl.h"
#include "cvisor/migrate.h"
#include "cvisor/snapshot.h"
#include "cvisor/virtio_balloon.h"
#include "cvisor/virtio_net.h"
#include "cvisor/vm.h"

static int fail(char **reply, int r, const char *fmt, ...) CV_PRINTF(3, 4);
static int fail(char **reply, int r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*reply = ctl_reply_error(msg);
	return r;
}

static int ok(char **reply, struct json_object *data)
{
	*reply = ctl_reply_ok(data);
	return 0;
}

static struct json_object *str_or_null(const char *s)
{
	return s && s[0] ? json_object_new_string(s) : NULL;
}

static const char *state_name(struct vm *vm)
{
	if (atomic_load(&vm->stop))
		return "stopping";
	return vm_paused(vm) ? "paused" : "running";
}

static uint64_t total_exits(struct vm *vm)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < vm->ncpus; i++)
		n += atomic_load_explicit(&vm->vcpus[i].exits, memory_order_relaxed);
	return n;
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static struct json_object *vcpu_list(struct vm *vm)
{
	struct json_object *a = json_object_new_array();

	for (unsigned int i = 0; a && i < vm->ncpus; i++) {
		struct json_object *v = json_object_new_object();
		cpu_set_t set;
		char list[CPULIST_MAX_LEN + 1] = "";

		if (!v)
			break;
		add_u64(v, "id", i);
		if (vm->vcpus[i].started &&
		    pthread_getaffinity_np(vm->vcpus[i].thread, sizeof(set), &set) == 0 &&
		    cpulist_format(&set, list, sizeof(list)) == 0)
			json_object_object_add(v, "affinity", json_object_new_string(list));
		add_u64(v, "exits", atomic_load(&vm->vcpus[i].exits));
		json_object_array_add(a, v);
	}
	return a;
}

static void add_devices(struct json_object *a, const struct bus *bus, const char *kind)
{
	for (unsigned int i = 0; i < bus->nr; i++) {
		const struct bus_region *r = &bus->regions[i];
		struct json_object *d = json_object_new_object();
		char base[32];

		if (!d)
			return;
		snprintf(base, sizeof(base), "%#llx", (unsigned long long)r->base);
		json_object_object_add(d, "bus", json_object_new_string(kind));
		json_object_object_add(d, "name", json_object_new_string(r->name ? r->name : "?"));
		json_object_object_add(d, "base", json_object_new_string(base));
		add_u64(d, "len", r->len);
		json_object_array_add(a, d);
	}
}

/* The guest's memory statistics by tag (5.5.6.3). */
static const char *const balloon_tags[VIRTIO_BALLOON_S_NR] = {
	"swap_in",	    "swap_out",	    "major_faults",
	"minor_faults",	    "free_memory",  "total_memory",
	"available_memory", "disk_caches",  "hugetlb_allocations",
	"hugetlb_failures", "oom_kills",    "alloc_stalls",
	"async_scans",	    "direct_scans", "async_reclaims",
	"direct_reclaims",
};

/* What the balloon holds and has seen, and the guest's last statistics
 * (asked for every VIRTIO_BALLOON_STATS_INTERVAL_S), under "guest". */
static struct json_object *balloon_info(struct virtio_dev *d)
{
	struct virtio_balloon_stats st;
	struct json_object *o, *g;

	if (virtio_balloon_get_stats(d, &st) || !(o = json_object_new_object()))
		return NULL;
	add_u64(o, "target", (uint64_t)st.target_pages * VIRTIO_BALLOON_PAGE_SIZE);
	add_u64(o, "actual", (uint64_t)st.actual_pages * VIRTIO_BALLOON_PAGE_SIZE);
	add_u64(o, "inflated_pages", st.inflated_pages);
	add_u64(o, "deflated_pages", st.deflated_pages);
	add_u64(o, "reported_pages", st.reported_pages);
	add_u64(o, "invalid_pfns", st.invalid_pfns);
	if (st.updated_ns && (g = json_object_new_object())) {
		add_u64(g, "age_ms", (cv_now_ns() - st.updated_ns) / 1000000);
		for (unsigned int t = 0; t < VIRTIO_BALLOON_S_NR; t++)
			if (st.valid & (1u << t))
				add_u64(g, balloon_tags[t], st.values[t]);
		json_object_object_add(o, "guest", g);
	}
	return o;
}

/* Packets each virtio-net device moved and dropped. */
static struct json_object *net_info(struct vm *vm)
{
	struct json_object *a = json_object_new_array();

	for (unsigned int i = 0; a && i < vm->nvirtio; i++) {
		struct virtio_dev *d = &vm->virtio[i]->dev;
		struct virtio_net_stats st;
		struct json_object *n;

		if (d->ops != &virtio_net_ops || !(n = json_object_new_object()))
			continue;
		virtio_net_get_stats(d, &st);
		json_object_object_add(n, "device", json_object_new_string(d->label));
		add_u64(n, "rx_packets", st.rx_packets);
		add_u64(n, "rx_dropped", st.rx_dropped);
		add_u64(n, "tx_packets", st.tx_packets);
		add_u64(n, "tx_dropped", st.tx_dropped);
		json_object_array_add(a, n);
	}
	return a;
}

/* Each direction of the devices with rate limits (only v's when v is not
 * NULL): the limits in effect and how often they held I/O back. */
static struct json_object *limits_json(struct vm *vm, struct vm_virtio *only)
{
	struct json_object *a = json_object_new_array();

	for (unsigned int i = 0; a && i < vm->nvirtio; i++) {
		struct vm_virtio *v = vm->virtio[i];
		struct rate_status st[2];
		unsigned int n;
		char name[CTL_DEVICE_MAX];

		if ((only && v != only) || !v->dev.ops->rate_status)
			continue;
		snprintf(name, sizeof(name), "%s%u", v->type->key, v->index);
		n = v->dev.ops->rate_status(&v->dev, st, ARRAY_SIZE(st));
		for (unsigned int k = 0; k < n; k++) {
			struct json_object *o = json_object_new_object();

			if (!o)
				break;
			json_object_object_add(o, "device", json_object_new_string(name));
			json_object_object_add(o, "dir", json_object_new_string(st[k].dir));
			add_u64(o, "bytes_per_s", st[k].lim.bytes.rate);
			add_u64(o, "bytes_burst", rate_burst(&st[k].lim.bytes));
			add_u64(o, "ops_per_s", st[k].lim.ops.rate);
			add_u64(o, "ops_burst", rate_burst(&st[k].lim.ops));
			add_u64(o, "throttled", st[k].throttled);
			json_object_array_add(a, o);
		}
	}
	return a;
}

static int cmd_info(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		    char **reply)
{
	(void)c;
	(void)req;
	struct vm *vm = srv->vm;
	const struct vm_config *cfg = vm->cfg;
	struct json_object *o = json_object_new_object(), *dev = json_object_new_array();

	if (!o || !dev) {
		json_object_put(o);
		json_object_put(dev);
		return fail(reply, -ENOMEM, "out of memory");
	}
	json_object_object_add(o, "name", json_object_new_string(srv->name));
	add_u64(o, "pid", (uint64_t)srv->pid);
	json_object_object_add(o, "state", json_object_new_string(state_name(vm)));
	add_u64(o, "vcpus", vm->ncpus);
	add_u64(o, "uptime_ms", vm->start_ns ? (cv_now_ns() - vm->start_ns) / 1000000 : 0);
	/* memory, kernel, initrd, cmdline, cpu_weight, cpu_cap, memory_limit,
	 * cpu_affinity: config.c's field table says which and how. */
	if (config_to_json(cfg, NULL, CONFIG_VIEW_INFO, o)) {
		json_object_put(o);
		json_object_put(dev);
		return fail(reply, -ENOMEM, "out of memory");
	}
	json_object_object_add(o, "detached", json_object_new_boolean(srv->con != NULL));
	json_object_object_add(o, "jailed", json_object_new_boolean(srv->jailed));
	json_object_object_add(o, "log", str_or_null(srv->log_path));
	json_object_object_add(o, "cgroup", str_or_null(srv->cgroup));
	/* The pty slaves a user opens: --console pty, --serial pty. */
	json_object_object_add(o, "console_pty", str_or_null(vm_console_pty_path(vm)));
	json_object_object_add(o, "serial_pty", str_or_null(vm_serial_pty_path(vm)));
	json_object_object_add(o, "vcpu", vcpu_list(vm));
	add_devices(dev, &vm->pio, "pio");
	add_devices(dev, &vm->mmio, "mmio");
	json_object_object_add(o, "devices", dev);
	if (vm->balloon)
		json_object_object_add(o, "balloon", balloon_info(vm->balloon));
	json_object_object_add(o, "net", net_info(vm));
	json_object_object_add(o, "limits", limits_json(vm, NULL));
	return ok(reply, o);
}

/* Resident set size from /proc/self/statm (pages). */
static uint64_t rss_bytes(void)
{
	char buf[128];
	unsigned long long size, rss;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &rss) != 2)
		return 0;
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int cmd_stats(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		     char **reply)
{
	(void)c;
	(void)req;
	struct vm *vm = srv->vm;
	struct json_object *o = json_object_new_object();
	struct timespec cpu;

	if (!o)
		return fail(reply, -ENOMEM, "out of memory");
	/* The whole monitor: vCPU threads (where an emulating host spends the
	 * guest's time) and the device work on the main thread alike. */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	json_object_object_add(o, "name", json_object_new_string(srv->name));
	json_object_object_add(o, "state", json_object_new_string(state_name(vm)));
	add_u64(o, "vcpus", vm->ncpus);
	add_u64(o, "memory", vm->cfg->mem_size);
	add_u64(o, "time_ns", cv_now_ns());
	add_u64(o, "cpu_ns", (uint64_t)cpu.tv_sec * 1000000000ULL + (uint64_t)cpu.tv_nsec);
	add_u64(o, "exits", total_exits(vm));
	add_u64(o, "rss", rss_bytes());
	add_u64(o, "blk_read_bytes", atomic_load(&vm->stats.blk_read_bytes));
	add_u64(o, "blk_write_bytes", atomic_load(&vm->stats.blk_write_bytes));
	add_u64(o, "net_rx_bytes", atomic_load(&vm->stats.net_rx_bytes));
	add_u64(o, "net_tx_bytes", atomic_load(&vm->stats.net_tx_bytes));
	json_object_object_add(o, "limits", limits_json(vm, NULL));
	return ok(reply, o);
}

/* A device's rate limits, now; the VM's copy of its spec follows, so that
 * a snapshot or a migration carries them. */
static int cmd_set(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		   char **reply)
{
	struct vm *vm = srv->vm;
	struct vm_virtio *v = vm_device_find(vm, req->device);
	struct cv_error e = { 0 };
	struct json_object *o;
	char *spec;
	int r;

	(void)c;
	if (!v)
		return fail(reply, -ENODEV, "set: guest %s has no device %s (see cvisor info %s)",
			    srv->name, req->device, srv->name);
	if (!v->dev.ops->set_limits)
		return fail(reply, -EINVAL, "set: %s has no rate limits (disks and networks have)",
			    req->device);
	r = v->dev.ops->set_limits(&v->dev, req->device,
				   devices_spec(&vm->devcfg, v->type, v->index), req->limits, &spec,
				   &e);
	if (r)
		return fail(reply, r, "set: %s", e.msg[0] ? e.msg : strerror(-r));
	r = devices_set_spec(&vm->devcfg, v->type, v->index, spec);
	if (r) {
		free(spec);
		/* The device runs with the new limits; a snapshot would not. */
		return fail(reply, r, "set: %s: out of memory recording the new limits",
			    req->device);
	}
	if ((o = json_object_new_object())) {
		json_object_object_add(o, "device", json_object_new_string(req->device));
		json_object_object_add(o, "spec", json_object_new_string(spec));
		json_object_object_add(o, "limits", limits_json(vm, v));
	}
	free(spec);
	return ok(reply, o);
}

static int cmd_pause(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		     char **reply)
{
	struct json_object *o = json_object_new_object();

	(void)c;
	if (req->cmd == CTL_CMD_PAUSE)
		vm_pause(srv->vm);
	else
		vm_resume(srv->vm);
	if (o)
		json_object_object_add(o, "state", json_object_new_string(state_name(srv->vm)));
	return ok(reply, o);
}

/* A hard reset in place, as the guest's own reset does (--on-reboot
 * restart): the guest boots again in this monitor. */
static int cmd_reboot(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		      char **reply)
{
	(void)c;
	(void)req;
	if (!srv->vm->boot_state.len)
		return fail(reply, -EINVAL,
			    "this guest has no boot state to reset to: start it with --on-reboot "
			    "restart (a restored or migrated guest has none)");
	vm_request_reset(srv->vm);
	return ok(reply, NULL);
}

static void on_stop_timeout(void *opaque, int fd, uint32_t events)
{
	struct ctl_server *srv = opaque;
	char msg[128];
	uint64_t ticks;

	(void)events;
	if (read(fd, &ticks, sizeof(ticks)) < 0) {
		/* a one-shot timer: nothing more to read */
	}
	if (atomic_load(&srv->vm->stop))
		return;
	snprintf(msg, sizeof(msg), "the guest did not power off in time after cvisor stop: killed");
	srv->killed = true;
	vm_request_stop(srv->vm, VM_STOP_SIGNAL, msg);
}

static int cmd_stop(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		    char **reply)
{
	unsigned int timeout_s = req->timeout_s;
	struct vm *vm = srv->vm;
	uint64_t deadline = cv_now_ns() + (uint64_t)timeout_s * 1000000000ULL;
	uint64_t ns = (uint64_t)timeout_s * 1000000000ULL;

	if (!atomic_load(&vm->stop)) {
		/* A paused guest cannot see the button. */
		vm_resume(vm);
		acpi_pm_power_button(&vm->pm);
		if (srv->stop_timer < 0) {
			int fd = evloop_add_timer(&vm->loop, ns, 0, on_stop_timeout, srv);

			if (fd < 0)
				return fail(reply, fd, "stop: cannot arm the timeout: %s",
					    strerror(-fd));
			srv->stop_timer = fd;
			srv->stop_deadline_ns = deadline;
		} else if (deadline < srv->stop_deadline_ns &&
			   !evloop_timer_arm(srv->stop_timer, ns, 0)) {
			srv->stop_deadline_ns = deadline;
		}
	}
	c->waiting = true;
	*reply = NULL;
	return 0;
}

static int cmd_kill(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		    char **reply)
{
	(void)req;
	if (!atomic_load(&srv->vm->stop)) {
		srv->killed = true;
		vm_request_stop(srv->vm, VM_STOP_SIGNAL, "killed by cvisor kill");
	}
	c->waiting = true;
	*reply = NULL;
	return 0;
}

static int cmd_balloon(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		       char **reply)
{
	uint64_t bytes = req->bytes;

	(void)c;
	struct json_object *o;
	int r;

	if (!srv->hooks.balloon_set)
		return fail(reply, -ENODEV, "guest %s has no balloon device", srv->name);
	if (bytes > srv->vm->cfg->mem_size)
		return fail(reply, -EINVAL, "balloon: %lluM is more than the guest's %lluM",
			    (unsigned long long)(bytes >> 20),
			    (unsigned long long)(srv->vm->cfg->mem_size >> 20));
	if ((r = srv->hooks.balloon_set(srv->hooks.ctx, bytes)) == -ENODEV)
		return fail(reply, r, "guest %s has no balloon device (start it with --balloon)",
			    srv->name);
	if (r)
		return fail(reply, r, "balloon: %s", strerror(-r));
	o = json_object_new_object();
	if (o)
		add_u64(o, "bytes", bytes);
	return ok(reply, o);
}

static int cmd_pin(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		   char **reply)
{
	(void)c;
	struct vm *vm = srv->vm;
	char host[CPULIST_MAX_LEN + 1] = "?", list[CPULIST_MAX_LEN + 1] = "?";
	struct json_object *o;
	int cpu, r;

	if (req->vcpu >= vm->ncpus)
		return fail(reply, -EINVAL, "pin: guest %s has no vCPU %u (vCPUs 0-%u)", srv->name,
			    req->vcpu, vm->ncpus - 1);
	cpu = cpulist_first_missing(&req->cpus, &srv->host_cpus);
	if (cpu >= 0) {
		if (cpulist_format(&srv->host_cpus, host, sizeof(host))) {
			/* keep "?" */
		}
		return fail(reply, -EINVAL, "pin: CPU %d is not available on this host (CPUs %s)",
			    cpu, host);
	}
	if (!vm->vcpus[req->vcpu].started)
		return fail(reply, -ESRCH, "pin: vCPU %u is not running", req->vcpu);
	r = pthread_setaffinity_np(vm->vcpus[req->vcpu].thread, sizeof(req->cpus), &req->cpus);
	if (r)
		return fail(reply, -r, "pin: %s", strerror(r));
	o = json_object_new_object();
	if (o && cpulist_format(&req->cpus, list, sizeof(list)) == 0) {
		add_u64(o, "vcpu", req->vcpu);
		json_object_object_add(o, "cpus", json_object_new_string(list));
	}
	return ok(reply, o);
}

static int cmd_console(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		       char **reply)
{
	(void)c;
	(void)req;
	unsigned int n = 0;

	if (!srv->con)
		return fail(reply, -ENOTTY,
			    "guest %s was started without -d: its console is the terminal that "
			    "started it",
			    srv->name);
	for (unsigned int i = 0; i < CTL_MAX_CONNS; i++)
		n += srv->conns[i].fd >= 0 && srv->conns[i].console;
	if (n >= CTL_MAX_CONSOLES)
		return fail(reply, -EBUSY, "guest %s has %d consoles attached already", srv->name,
			    CTL_MAX_CONSOLES);
	return ok(reply, NULL);
}

/* Pause, write the snapshot, then end the guest (the reply comes when it
 * is gone, like stop) or let it run on. A failure leaves it running. */
static int cmd_save(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		    char **reply)
{
	struct vm *vm = srv->vm;
	bool was_paused = vm_paused(vm);
	struct json_object *o;
	char err[PATH_MAX + 128];
	uint64_t bytes;
	int r;

	if (atomic_load(&vm->stop))
		return fail(reply, -ESRCH, "save: guest %s is stopping", srv->name);
	vm_pause(vm);
	if (atomic_load(&vm->stop))
		return fail(reply, -ESRCH, "save: guest %s stopped", srv->name);
	if (c->fds_now && c->nfds == 2)
		r = snapshot_save_fds(vm, req->path, c->fds[0], c->fds[1], &bytes, err,
				      sizeof(err));
	else if (srv->jailed || !c->owner)
		r = cv_errf(err, sizeof(err), -EPERM,
			    "%s: pass the files over the control socket (cvisor save does)",
			    srv->jailed ? "this guest is jailed and sees no host path"
					: "only the guest's owner may name a host path");
	else
		r = snapshot_save(vm, req->path, &bytes, err, sizeof(err));
	/* Ours are closed now: the client renames the files next. */
	if (c->fds_now)
		ctl_conn_drop_fds(c);
	if (r) {
		if (!was_paused)
			vm_resume(vm);
		return fail(reply, r, "save: %s", err);
	}
	if (!req->keep_running) {
		vm_request_stop(vm, VM_STOP_SAVED, NULL);
		c->waiting = true;
		*reply = NULL;
		return 0;
	}
	snapshot_devices_resume(vm);
	if (!was_paused)
		vm_resume(vm);
	o = json_object_new_object();
	if (o) {
		json_object_object_add(o, "path", json_object_new_string(req->path));
		add_u64(o, "mem_bytes", bytes);
	}
	return ok(reply, o);
}

/* Guest RAM through the checked translation; racy with running vCPUs by
 * design (a debugging and test aid). */
static int cmd_peek(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		    char **reply)
{
	(void)c;
	static const char digits[] = "0123456789abcdef";
	uint8_t buf[CTL_PEEK_MAX];
	char hex[2 * CTL_PEEK_MAX + 1];
	struct json_object *o;
	uint64_t value = 0;

	if (req->len < 1 || req->len > CTL_PEEK_MAX ||
	    guest_mem_read(&srv->vm->mem, req->gpa, buf, req->len))
		return fail(reply, -EFAULT, "peek: %#llx+%u is not guest RAM",
			    (unsigned long long)req->gpa, req->len);
	for (unsigned int i = 0; i < req->len; i++) {
		hex[2 * i] = digits[buf[i] >> 4];
		hex[2 * i + 1] = digits[buf[i] & 15];
		if (i < 8)
			value |= (uint64_t)buf[i] << (8 * i);
	}
	hex[2 * req->len] = '\0';
	o = json_object_new_object();
	if (o) {
		add_u64(o, "gpa", req->gpa);
		json_object_object_add(o, "hex", json_object_new_string(hex));
		if (req->len <= 8)
			add_u64(o, "value", value);
	}
	return ok(reply, o);
}

static int refuse_migrating(struct ctl_server *srv, char **reply)
{
	return fail(reply, -EBUSY, "guest %s is migrating: try again when it ends (or cvisor kill)",
		    srv->name);
}

/* The server's side of each request of the protocol (ctl_proto.h): its
 * handler, and whether it is served while a migration runs. The event loop
 * is pumped from inside a migration: the guest's devices and the console go
 * on, and so do requests that only read; kill ends the migration (the
 * source then stops). Whatever would change the guest under the migration
 * waits for its end. A new request is one row here and one in proto.c. */
static const struct {
	int (*fn)(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		  char **reply);
	bool while_migrating;
} handlers[CTL_CMD_COUNT] = {
	[CTL_CMD_INFO] = { cmd_info, true },	    [CTL_CMD_STATS] = { cmd_stats, true },
	[CTL_CMD_PAUSE] = { cmd_pause, false },	    [CTL_CMD_RESUME] = { cmd_pause, false },
	[CTL_CMD_STOP] = { cmd_stop, false },	    [CTL_CMD_KILL] = { cmd_kill, true },
	[CTL_CMD_BALLOON] = { cmd_balloon, false }, [CTL_CMD_PIN] = { cmd_pin, true },
	[CTL_CMD_CONSOLE] = { cmd_console, true },  [CTL_CMD_SAVE] = { cmd_save, false },
	[CTL_CMD_PEEK] = { cmd_peek, true },	    [CTL_CMD_SET] = { cmd_set, false },
	[CTL_CMD_REBOOT] = { cmd_reboot, false },
};

int ctl_command(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		char **reply)
{
	if ((unsigned int)req->cmd >= CTL_CMD_COUNT || !handlers[req->cmd].fn)
		return fail(reply, -EINVAL, "unknown command");
	if (srv->migrating && !handlers[req->cmd].while_migrating)
		return refuse_migrating(srv, reply);
	return handlers[req->cmd].fn(srv, c, req, reply);
}

/* migrate: progress lines go straight to the requesting client while the
 * main thread is busy with the migration. */
struct migrate_ctx {
	int fd;
	struct migrate_progress done;
	bool have_done;
};

static void migrate_progress_cb(void *opaque, const struct migrate_progress *p)
{
	struct migrate_ctx *m = opaque;
	char line[1024];
	size_t n;

	if (p->event == MIGRATE_EV_DONE) {
		m->done = *p;
		m->done.dest = NULL;
		m->have_done = true;
		return;
	}
	if (migrate_progress_json(p, line, sizeof(line) - 1))
		return;
	n = strlen(line);
	line[n++] = '\n';
	if (send(m->fd, line, n, MSG_NOSIGNAL | (p->event == MIGRATE_EV_TICK ? MSG_DONTWAIT : 0)) <
	    0) {
		/* the client went away: the migration goes on */
	}
}

/* The migration's pump: one non-blocking round of the event loop. */
static void migrate_pump(void *opaque)
{
	struct ctl_server *srv = opaque;

	if (evloop_once(&srv->vm->loop, 0))
		cv_debug("migration: the event loop failed a round");
}

/* The connection a migrate request came with: the client's TCP socket,
 * or its end of the TLS relay (src/migrate/link.c). The monitor does no
 * TLS, so a request naming key files is refused whatever it brings; a
 * request without a connection may still ask for a plain stream (the
 * monitor connects, the address checked in migrate_send as the client
 * would), as older clients and scripts do. Sets o->fd. 0 or -errno with
 * one line in err. */
static int migrate_link_check(struct ctl_server *srv, struct ctl_conn *c, struct migrate_opts *o,
			      char *err, size_t errlen)
{
	int type = 0;
	socklen_t len = sizeof(type);

	if (atomic_load(&srv->vm->stop))
		return cv_errf(err, errlen, -ESRCH, "migrate: guest %s is stopping", srv->name);
	if (o->tls.psk_file || o->tls.creds_dir)
		return cv_errf(err, errlen, -EINVAL,
			       "migrate: the monitor does no TLS and reads no key files: `cvisor "
			       "migrate --tls-psk|--tls-creds` makes the session and passes the "
			       "connection with the request");
	if (!c->fds_now)
		return o->encrypted || o->linked ? cv_errf(err, errlen, -EINVAL,
							   "migrate: \"%s\" needs the connection "
							   "passed with the request",
							   o->encrypted ? "tls" : "link")
						 : 0;
	if (!o->linked)
		return cv_errf(
			err, errlen, -EINVAL,
			"migrate: a connection passed with the request needs \"link\": true");
	if (c->nfds != 1 || getsockopt(c->fds[0], SOL_SOCKET, SO_TYPE, &type, &len) ||
	    type != SOCK_STREAM)
		return cv_errf(err, errlen, -EINVAL,
			       "migrate: pass one file with the request: a stream socket connected "
			       "to the target");
	o->fd = c->fds[0];
	return 0;
}

static int cmd_migrate(struct ctl_server *srv, struct ctl_conn *c, const char *line, size_t len,
		       char **reply)
{
	struct vm *vm = srv->vm;
	struct migrate_opts o;
	struct migrate_ctx m = { .fd = c->fd };
	char err[512], msg[256], buf[2048], *owned = NULL, *out;
	int r;

	if (migrate_req_parse(line, len, &o, &owned, err, sizeof(err))) {
		free(owned);
		return fail(reply, -EINVAL, "%s", err);
	}
	if ((r = migrate_link_check(srv, c, &o, err, sizeof(err)))) {
		free(owned);
		migrate_tls_free(&o.tls);
		return fail(reply, r, "%s", err);
	}
	o.ops = &migrate_snapshot_source_ops;
	o.pump = migrate_pump;
	o.pump_ctx = srv;
	/* This client's own events wait: the pump must not serve (or close)
	 * the client whose request is running. on_client watches it again
	 * when the reply is queued. */
	ctl_conn_watch(c, 0);
	srv->migrating = true;
	r = migrate_send(vm, &o, migrate_progress_cb, &m, err, sizeof(err));
	srv->migrating = false;
	/* Closed before the reply: the client's relay ends on it. */
	if (c->fds_now)
		ctl_conn_drop_fds(c);
	migrate_tls_free(&o.tls);
	if (r) {
		r = fail(reply, r, "migration to %s failed: %s%s", o.dest, err,
			 atomic_load(&vm->stop) ? "" : "; the guest keeps running here");
		free(owned);
		return r;
	}
	snprintf(msg, sizeof(msg), "migrated to %s", o.dest);
	free(owned);
	if (m.have_done && migrate_progress_json(&m.done, buf, sizeof(buf) - 2) == 0) {
		strcat(buf, "\n");
		out = strdup(buf);
	} else {
		out = ctl_reply_ok(NULL);
	}
	*reply = out;
	/* The guest runs on the target now: end it here, never resume it. */
	vm_request_stop(vm, VM_STOP_POWEROFF, msg);
	return 0;
}

static int cmd_memsum(struct ctl_server *srv, char **reply)
{
	char hex[32];
	struct json_object *o = json_object_new_object();

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)migrate_memsum(&srv->vm->mem));
	if (o)
		json_object_object_add(o, "memsum", json_object_new_string(hex));
	return ok(reply, o);
}

int ctl_command_raw(struct ctl_server *srv, struct ctl_conn *c, const char *line, size_t len,
		    char **reply)
{
	struct json_object *o, *v;
	const char *desc, *name;
	size_t off;
	int r = 0;

	if (len > CTL_REQUEST_MAX || ctl_json_parse(line, len, true, &o, &off, &desc))
		return 0;
	if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "cmd", &v) &&
	    json_object_is_type(v, json_type_string)) {
		name = json_object_get_string(v);
		r = !strcmp(name, "migrate") || !strcmp(name, "memsum");
		/* Both are long: a second migration, or a scan of all RAM,
		 * wait for the running one like the other changes. */
		if (r && srv->migrating) {
			refuse_migrating(srv, reply);
		} else if (!strcmp(name, "migrate")) {
			cmd_migrate(srv, c, line, len, reply);
		} else if (!strcmp(name, "memsum")) {
			if (json_object_object_length(o) != 1)
				fail(reply, -EINVAL,
				     "malformed request: memsum takes no arguments");
			else
				cmd_memsum(srv, reply);
		}
	}
	json_object_put(o);
	return r;
}
