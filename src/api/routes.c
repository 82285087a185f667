/* routes.c - Cloud Hypervisor's endpoints (/api/v1/NAME) and what each
 * does to the VMM's state and the guest, through the same calls as the
 * control socket's verbs (vm_pause, vm_resume, the ACPI power button,
 * vm_request_stop, the balloon's target). A wrong method is 405, an
 * unknown endpoint 404, a bad body 400 and a request the VM's state does
 * not allow 500, as Cloud Hypervisor answers; each with a line saying why. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_priv.h"
#include "cvisor/acpi_pm.h"
#include "cvisor/snapshot.h"
#include "cvisor/virtio_balloon.h"
#include "cvisor/vm.h"

#define API_PREFIX "/api/v1/"

static void reply_json(struct http_conn *c, struct json_object *o)
{
	const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;

	if (!s)
		http_reply_error(c, 500, "out of memory");
	else
		http_reply(c, 200, s, strlen(s));
	json_object_put(o);
}

static const char *state_name(struct api *a)
{
	switch (a->state) {
	case API_CREATED:
		return "Created";
	case API_RUNNING:
		return a->vm && vm_paused(a->vm) ? "Paused" : "Running";
	case API_SHUTDOWN:
		return "Shutdown";
	default:
		return "NotCreated";
	}
}

/* The guest runs (or is paused): else a 500 naming the endpoint. */
static bool need_vm(struct api *a, struct http_conn *c, const char *what)
{
	if (a->vm && a->state == API_RUNNING && !atomic_load(&a->vm->stop))
		return true;
	http_reply_error(c, 500, "%s: the VM is not running (state %s)", what, state_name(a));
	return false;
}

/* A body that is one JSON object, or a 400. */
static struct json_object *body_object(struct http_conn *c, struct http_request *req,
				       const char *what)
{
	struct json_object *o = json_tokener_parse(req->body);

	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		http_reply_error(c, 400, "%s: the body must be a JSON object", what);
		return NULL;
	}
	return o;
}

/* ---- the VMM ---- */

static void ep_ping(struct api *a, struct http_conn *c, struct http_request *req)
{
	struct json_object *o = json_object_new_object();

	(void)req;
	if (o) {
		json_object_object_add(o, "build_version",
				       json_object_new_string(a->o->build_version));
		json_object_object_add(o, "version", json_object_new_string(API_CH_VERSION));
		json_object_object_add(o, "pid", json_object_new_int64(getpid()));
		json_object_object_add(o, "features", json_object_new_array());
	}
	reply_json(c, o);
}

static void ep_vmm_shutdown(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	a->quit = true;
	a->stop_conn = c; /* answered once the guest (if any) is gone */
	if (a->vm)
		vm_request_stop(a->vm, VM_STOP_POWEROFF, NULL);
}

/* ---- the VM's life ---- */

static void ep_create(struct api *a, struct http_conn *c, struct http_request *req)
{
	char err[512];
	int r;

	if (a->state != API_NONE) {
		http_reply_error(c, 500, "vm.create: a VM is already created (vm.delete first)");
		return;
	}
	config_free(&a->cfg);
	config_init(&a->cfg);
	r = api_vm_config(req->body, req->body_len, &a->cfg, &a->io, err, sizeof(err));
	if (!r && !(a->create_body = json_tokener_parse(req->body)))
		r = -ENOMEM, snprintf(err, sizeof(err), "vm.create: out of memory");
	if (r) {
		config_free(&a->cfg);
		config_init(&a->cfg);
		http_reply_error(c, r == -ENOMEM ? 500 : 400, "%s", err);
		return;
	}
	a->state = API_CREATED;
	http_reply(c, 204, NULL, 0);
}

static void ep_boot(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	if (a->state == API_NONE) {
		http_reply_error(c, 500, "vm.boot: no VM is created (vm.create first)");
		return;
	}
	if (a->state == API_RUNNING || a->boot_conn || a->boot) {
		http_reply_error(c, 500, "vm.boot: the VM is already booted");
		return;
	}
	/* The main loop builds it; the answer goes once the vCPUs exist. */
	a->boot = true;
	a->boot_conn = c;
}

/* vm.shutdown and vm.delete: the guest stops, the VMM stays; answered
 * when the guest is gone. */
static void stop_guest(struct api *a, struct http_conn *c, bool delete)
{
	if (a->stop_conn) {
		http_reply_error(c, 500, "the VM is already shutting down");
		return;
	}
	a->stopping = true;
	a->deleting = delete;
	a->stop_conn = c;
	vm_request_stop(a->vm, VM_STOP_POWEROFF, NULL);
}

static void ep_shutdown(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	if (need_vm(a, c, "vm.shutdown"))
		stop_guest(a, c, false);
}

static void ep_delete(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	if (a->vm && a->state == API_RUNNING) {
		stop_guest(a, c, true);
		return;
	}
	if (a->state != API_NONE)
		api_event(a, "vm", "deleted");
	a->state = API_NONE;
	json_object_put(a->create_body);
	a->create_body = NULL;
	config_free(&a->cfg);
	config_init(&a->cfg);
	http_reply(c, 204, NULL, 0);
}

static void ep_reboot(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	if (!need_vm(a, c, "vm.reboot"))
		return;
	if (a->o->seccomp == SANDBOX_ON) {
		/* server.c can_build: this process cannot make a second VM. */
		http_reply_error(
			c, 500,
			"vm.reboot: cvisor rebuilds the guest to reboot it, which its "
			"seccomp filter forbids in this process (--seccomp false allows it)");
		return;
	}
	vm_request_stop(a->vm, VM_STOP_RESET, NULL);
	http_reply(c, 204, NULL, 0);
}

static void ep_power_button(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	if (!need_vm(a, c, "vm.power-button"))
		return;
	acpi_pm_power_button(&a->vm->pm);
	http_reply(c, 204, NULL, 0);
}

static void ep_pause(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	if (!need_vm(a, c, "vm.pause"))
		return;
	if (vm_paused(a->vm)) {
		http_reply_error(c, 500, "vm.pause: the VM is already paused");
		return;
	}
	api_event(a, "vm", "pausing");
	vm_pause(a->vm);
	api_event(a, "vm", "paused");
	http_reply(c, 204, NULL, 0);
}

static void ep_resume(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	if (!need_vm(a, c, "vm.resume"))
		return;
	if (!vm_paused(a->vm)) {
		http_reply_error(c, 500, "vm.resume: the VM is not paused");
		return;
	}
	api_event(a, "vm", "resuming");
	vm_resume(a->vm);
	api_event(a, "vm", "resumed");
	http_reply(c, 204, NULL, 0);
}

/* ---- what the VM is ---- */

/* SEAM (branch virtio-console): the pty slave paths come from
 * vm_console_pty_path() / vm_serial_pty_path() once that lands. Until
 * then a Pty serial or console is the 8250 on the VMM's stdout, and
 * vm.info gives no file (null), not a made-up path. */
static const char *pty_path(struct api *a, bool serial)
{
	(void)a;
	(void)serial;
	return NULL;
}

/* config.serial / config.console of vm.info: mode, and file (the pty). */
static void io_echo(struct api *a, struct json_object *cfg, const char *key, const char *mode)
{
	struct json_object *o = json_object_new_object();
	const char *file = NULL;

	if (!o)
		return;
	if (!strcmp(mode, "Pty"))
		file = pty_path(a, !strcmp(key, "serial"));
	else if (!strcmp(mode, "File"))
		file = a->io.serial_file;
	json_object_object_add(o, "mode", json_object_new_string(mode));
	json_object_object_add(o, "file", file ? json_object_new_string(file) : NULL);
	json_object_object_add(o, "iommu", json_object_new_boolean(false));
	json_object_object_add(cfg, key, o);
}

static void ep_info(struct api *a, struct http_conn *c, struct http_request *req)
{
	struct json_object *o, *cfg = NULL;
	uint64_t actual = a->cfg.mem_size;
	struct virtio_balloon_stats st;

	(void)req;
	if (a->state == API_NONE) {
		http_reply_error(c, 500, "vm.info: no VM is created");
		return;
	}
	o = json_object_new_object();
	if (o && json_object_deep_copy(a->create_body, &cfg, NULL) == 0) {
		io_echo(a, cfg, "serial", a->io.serial_mode);
		io_echo(a, cfg, "console", a->io.console_mode);
		json_object_object_add(o, "config", cfg);
	}
	if (a->vm && a->vm->balloon && !virtio_balloon_get_stats(a->vm->balloon, &st))
		actual -= (uint64_t)st.actual_pages * VIRTIO_BALLOON_PAGE_SIZE;
	if (o) {
		json_object_object_add(o, "state", json_object_new_string(state_name(a)));
		json_object_object_add(o, "memory_actual_size", json_object_new_uint64(actual));
	}
	reply_json(c, o);
}

static void add_counter(struct json_object *o, const char *key, _Atomic uint64_t *v)
{
	json_object_object_add(o, key, json_object_new_uint64(atomic_load(v)));
}

/* The guest's I/O totals (cvisor counts them per guest, not per device). */
static void ep_counters(struct api *a, struct http_conn *c, struct http_request *req)
{
	struct json_object *o, *blk, *net;

	(void)req;
	if (!need_vm(a, c, "vm.counters"))
		return;
	o = json_object_new_object();
	blk = json_object_new_object();
	net = json_object_new_object();
	if (o && blk && net) {
		add_counter(blk, "read_bytes", &a->vm->stats.blk_read_bytes);
		add_counter(blk, "write_bytes", &a->vm->stats.blk_write_bytes);
		add_counter(net, "rx_bytes", &a->vm->stats.net_rx_bytes);
		add_counter(net, "tx_bytes", &a->vm->stats.net_tx_bytes);
		json_object_object_add(o, "disks", blk);
		json_object_object_add(o, "net", net);
	} else {
		json_object_put(blk);
		json_object_put(net);
		json_object_put(o);
		o = NULL;
	}
	reply_json(c, o);
}

/* vm.resize: desired_ram through the balloon (what it holds is the boot
 * memory less desired_ram); desired_vcpus only at the boot count. */
static void ep_resize(struct api *a, struct http_conn *c, struct http_request *req)
{
	struct json_object *o;
	uint64_t mem = a->cfg.mem_size;
	int64_t ram = -1;
	int r;

	if (!need_vm(a, c, "vm.resize") || !(o = body_object(c, req, "vm.resize")))
		return;
	json_object_object_foreach(o, k, val)
	{
		if (!strcmp(k, "desired_ram") && json_object_is_type(val, json_type_int)) {
			ram = json_object_get_int64(val);
		} else if (!strcmp(k, "desired_vcpus") && json_object_is_type(val, json_type_int)) {
			if (json_object_get_int64(val) != a->vm->ncpus) {
				json_object_put(o);
				http_reply_error(c, 400,
						 "vm.resize: desired_vcpus: CPU hotplug "
						 "unsupported");
				return;
			}
		} else {
			json_object_put(o);
			http_reply_error(c, 400, "vm.resize: %s: unsupported or not an integer", k);
			return;
		}
	}
	json_object_put(o);
	if (ram < 0) {
		http_reply(c, 204, NULL, 0);
		return;
	}
	if ((uint64_t)ram > mem || (uint64_t)ram < CONFIG_MIN_MEM) {
		http_reply_error(c, 400,
				 "vm.resize: desired_ram %lld: from %llu to %llu (no memory "
				 "hotplug; the balloon takes the rest)",
				 (long long)ram, CONFIG_MIN_MEM, (unsigned long long)mem);
		return;
	}
	if (!a->vm->balloon) {
		http_reply_error(c, 500,
				 "vm.resize: desired_ram needs a balloon (vm.create with "
				 "balloon)");
		return;
	}
	if ((r = virtio_balloon_set_target(a->vm->balloon, mem - (uint64_t)ram))) {
		http_reply_error(c, 500, "vm.resize: %s", strerror(-r));
		return;
	}
	http_reply(c, 204, NULL, 0);
}

/* "file:///DIR" (an existing directory) of body key `key`: DIR/FILE into
 * path. false with a 400 sent when not. */
static bool file_url(struct http_conn *c, struct json_object *o, const char *what, const char *key,
		     char *path, size_t len)
{
	struct json_object *v;
	const char *url;
	struct stat st;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string)) {
		http_reply_error(c, 400, "%s: %s: a string \"file:///DIR\" is needed", what, key);
		return false;
	}
	url = json_object_get_string(v);
	if (strncmp(url, "file:///", 8) || stat(url + 7, &st) || !S_ISDIR(st.st_mode)) {
		http_reply_error(c, 400,
				 "%s: %s \"%.200s\": want file:///DIR, an existing directory", what,
				 key, url);
		return false;
	}
	if ((size_t)snprintf(path, len, "%s/%s", url + 7, API_SNAPSHOT_FILE) >= len) {
		http_reply_error(c, 400, "%s: %s: path too long", what, key);
		return false;
	}
	return true;
}

/* Only the keys named (NULL-ended), or a 400 naming the other. */
static bool only_keys(struct http_conn *c, struct json_object *o, const char *what,
		      const char *const *keys)
{
	json_object_object_foreach(o, k, v)
	{
		bool known = false;

		(void)v;
		for (const char *const *p = keys; *p; p++)
			known |= !strcmp(k, *p);
		if (!known) {
			http_reply_error(c, 400, "%s: %s: not supported by cvisor", what, k);
			return false;
		}
	}
	return true;
}

/* vm.snapshot {destination_url: "file:///DIR"}: the paused guest to
 * DIR/cvisor.snapshot and its .mem (cvisor's single-file snapshot and its
 * memory file, not Cloud Hypervisor's layout); it stays paused. */
static void ep_snapshot(struct api *a, struct http_conn *c, struct http_request *req)
{
	static const char *const keys[] = { "destination_url", NULL };
	char path[4096], err[4200];
	struct json_object *o;
	uint64_t bytes;
	int r;

	if (!need_vm(a, c, "vm.snapshot") || !(o = body_object(c, req, "vm.snapshot")))
		return;
	if (!only_keys(c, o, "vm.snapshot", keys) ||
	    !file_url(c, o, "vm.snapshot", "destination_url", path, sizeof(path))) {
		json_object_put(o);
		return;
	}
	json_object_put(o);
	if (!vm_paused(a->vm)) {
		http_reply_error(c, 500, "vm.snapshot: the VM must be paused (vm.pause first)");
		return;
	}
	api_event(a, "vm", "snapshotting");
	if ((r = snapshot_save(a->vm, path, &bytes, err, sizeof(err)))) {
		http_reply_error(c, 500, "vm.snapshot: %s", err);
		return;
	}
	/* The devices were quiesced for the save; the guest stays paused. */
	snapshot_devices_resume(a->vm);
	api_event(a, "vm", "snapshotted");
	http_reply(c, 204, NULL, 0);
}

void api_restore_drop(struct api *a)
{
	free(a->rs.payload);
	a->rs.payload = NULL;
	cv_close(&a->rs.mem_fd);
	a->restoring = false;
	a->state = API_NONE;
	json_object_put(a->create_body);
	a->create_body = NULL;
	config_free(&a->cfg);
	config_init(&a->cfg);
}

/* vm.info's config for a restored VM, in the VmConfig's shape: what the
 * snapshot's CONFIG says of the vCPUs, memory and kernel. */
struct json_object *api_config_echo(const struct vm_config *cfg)
{
	struct json_object *o = json_object_new_object(), *cpus = json_object_new_object(),
			   *mem = json_object_new_object(), *pl = json_object_new_object();

	if (!o || !cpus || !mem || !pl) {
		json_object_put(o);
		json_object_put(cpus);
		json_object_put(mem);
		json_object_put(pl);
		return NULL;
	}
	json_object_object_add(cpus, "boot_vcpus", json_object_new_int64(cfg->ncpus));
	json_object_object_add(cpus, "max_vcpus", json_object_new_int64(cfg->ncpus));
	json_object_object_add(mem, "size", json_object_new_uint64(cfg->mem_size));
	json_object_object_add(pl, "kernel",
			       cfg->kernel ? json_object_new_string(cfg->kernel) : NULL);
	json_object_object_add(pl, "cmdline", json_object_new_string(cfg->cmdline));
	json_object_object_add(pl, "initramfs",
			       cfg->initrd ? json_object_new_string(cfg->initrd) : NULL);
	json_object_object_add(o, "cpus", cpus);
	json_object_object_add(o, "memory", mem);
	json_object_object_add(o, "payload", pl);
	return o;
}

/* vm.restore {source_url: "file:///DIR"}: a VMM with no VM builds one
 * from DIR/cvisor.snapshot, paused (vm.resume runs it), as Cloud
 * Hypervisor does. */
static void ep_restore(struct api *a, struct http_conn *c, struct http_request *req)
{
	static const char *const keys[] = { "source_url", "prefault", NULL };
	char err[4200];
	struct json_object *o, *cfg;
	int r;

	if (a->state != API_NONE) {
		http_reply_error(c, 500, "vm.restore: a VM is already created (vm.delete first)");
		return;
	}
	if (!(o = body_object(c, req, "vm.restore")))
		return;
	if (!only_keys(c, o, "vm.restore", keys) ||
	    !file_url(c, o, "vm.restore", "source_url", a->rs_path, sizeof(a->rs_path))) {
		json_object_put(o);
		return;
	}
	json_object_put(o);
	config_free(&a->cfg);
	config_init(&a->cfg);
	a->rs = (struct restore_src){ .path = a->rs_path, .mem_fd = -1 };
	r = snapshot_open(a->rs_path, &a->cfg, &a->rs.payload, &a->rs.len, &a->rs.mem_fd, err,
			  sizeof(err));
	if (r || !(cfg = api_config_echo(&a->cfg))) {
		http_reply_error(c, r == -EINVAL ? 400 : 500, "vm.restore: %s",
				 r ? err : "out of memory");
		api_restore_drop(a);
		return;
	}
	json_object_put(a->create_body);
	a->create_body = cfg;
	a->io = (struct api_vm_io){ .serial_mode = "Tty", .console_mode = "Off" };
	a->state = API_CREATED;
	a->restoring = a->boot = true;
	a->boot_conn = c;
}

/* "tcp:HOST:PORT" of body key `key` into out (HOST:PORT); else a 400. */
static bool tcp_url(struct http_conn *c, struct json_object *o, const char *what, const char *key,
		    char *out, size_t len)
{
	struct json_object *v;
	const char *url;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||
	    strncmp(url = json_object_get_string(v), "tcp:", 4) || !strchr(url + 4, ':') ||
	    strlen(url + 4) >= len) {
		http_reply_error(c, 400,
				 "%s: %s: want \"tcp:HOST:PORT\" (cvisor migrates over TCP)", what,
				 key);
		return false;
	}
	snprintf(out, len, "%s", url + 4);
	return true;
}

/* The migration's pump: the guest's loop goes on (devices, the API: only
 * what reads is served meanwhile, api_handle). */
static void migrate_pump(void *ctx)
{
	struct api *a = ctx;

	if (a->vm && evloop_once(&a->vm->loop, 0))
		cv_debug("migration: the event loop failed a round");
}

/* vm.send-migration {destination_url: "tcp:HOST:PORT"}: cvisor's live
 * migration (src/migrate/, as `cvisor migrate`) to a VMM that took
 * vm.receive-migration; answered when it is over. The guest then runs
 * there, and this VMM ends, as Cloud Hypervisor's does. */
static void ep_send_migration(struct api *a, struct http_conn *c, struct http_request *req)
{
	static const char *const keys[] = { "destination_url", "local", NULL };
	struct migrate_opts mo;
	struct json_object *o, *v;
	char dest[256], err[512];
	int r;

	if (!need_vm(a, c, "vm.send-migration") || !(o = body_object(c, req, "vm.send-migration")))
		return;
	if (!only_keys(c, o, "vm.send-migration", keys) ||
	    !tcp_url(c, o, "vm.send-migration", "destination_url", dest, sizeof(dest))) {
		json_object_put(o);
		return;
	}
	if (json_object_object_get_ex(o, "local", &v) && json_object_get_boolean(v)) {
		json_object_put(o);
		http_reply_error(c, 400,
				 "vm.send-migration: local: not supported by cvisor (the "
				 "memory goes over the stream)");
		return;
	}
	json_object_put(o);
	migrate_opts_init(&mo);
	mo.dest = dest;
	mo.ops = &migrate_snapshot_source_ops;
	mo.pump = migrate_pump;
	mo.pump_ctx = a;
	a->migrating = true;
	r = migrate_send(a->vm, &mo, NULL, NULL, err, sizeof(err));
	a->migrating = false;
	if (r) {
		http_reply_error(c, 500, "vm.send-migration: %s%s", err,
				 atomic_load(&a->vm->stop) ? "" : "; the VM keeps running here");
		return;
	}
	http_reply(c, 204, NULL, 0);
	a->quit = true;
	vm_request_stop(a->vm, VM_STOP_POWEROFF, NULL);
}

/* vm.receive-migration {receiver_url: "tcp:HOST:PORT"}: a VMM with no VM
 * listens there and runs the guest a vm.send-migration sends (as `cvisor
 * run --incoming`); answered once it runs. The API is not served while
 * the VMM waits for the source. */
static void ep_receive_migration(struct api *a, struct http_conn *c, struct http_request *req)
{
	static const char *const keys[] = { "receiver_url", NULL };
	struct json_object *o;
	char err[512];

	if (a->state != API_NONE) {
		http_reply_error(c, 500, "vm.receive-migration: a VM is already created");
		return;
	}
	if (!(o = body_object(c, req, "vm.receive-migration")))
		return;
	if (!only_keys(c, o, "vm.receive-migration", keys) ||
	    !tcp_url(c, o, "vm.receive-migration", "receiver_url", a->listen, sizeof(a->listen))) {
		json_object_put(o);
		return;
	}
	json_object_put(o);
	memset(&a->in, 0, sizeof(a->in));
	if (migrate_incoming_flag(&a->in, "--incoming", a->listen, err, sizeof(err)) < 0 ||
	    migrate_incoming_check(&a->in, err, sizeof(err))) {
		migrate_incoming_free(&a->in);
		http_reply_error(c, 400, "vm.receive-migration: %s", err);
		return;
	}
	config_free(&a->cfg);
	config_init(&a->cfg);
	json_object_put(a->create_body);
	a->create_body = NULL;
	a->io = (struct api_vm_io){ .serial_mode = "Tty", .console_mode = "Off" };
	a->state = API_CREATED;
	a->incoming = a->boot = true;
	a->boot_conn = c;
}

/* ---- the table ---- */

static const struct route {
	const char *name;
	enum http_method method;
	void (*fn)(struct api *a, struct http_conn *c, struct http_request *req);
} routes[] = {
	{ "vmm.ping", HTTP_M_GET, ep_ping },
	{ "vmm.shutdown", HTTP_M_PUT, ep_vmm_shutdown },
	{ "vm.create", HTTP_M_PUT, ep_create },
	{ "vm.boot", HTTP_M_PUT, ep_boot },
	{ "vm.shutdown", HTTP_M_PUT, ep_shutdown },
	{ "vm.delete", HTTP_M_PUT, ep_delete },
	{ "vm.reboot", HTTP_M_PUT, ep_reboot },
	{ "vm.power-button", HTTP_M_PUT, ep_power_button },
	{ "vm.pause", HTTP_M_PUT, ep_pause },
	{ "vm.resume", HTTP_M_PUT, ep_resume },
	{ "vm.info", HTTP_M_GET, ep_info },
	{ "vm.counters", HTTP_M_GET, ep_counters },
	{ "vm.resize", HTTP_M_PUT, ep_resize },
	{ "vm.snapshot", HTTP_M_PUT, ep_snapshot },
	{ "vm.restore", HTTP_M_PUT, ep_restore },
	{ "vm.send-migration", HTTP_M_PUT, ep_send_migration },
	{ "vm.receive-migration", HTTP_M_PUT, ep_receive_migration },
};

void api_handle(void *opaque, struct http_conn *c, struct http_request *req)
{
	struct api *a = opaque;
	const char *name = req->path;

	if (strncmp(name, API_PREFIX, strlen(API_PREFIX))) {
		http_reply_error(c, 404,
				 "unknown endpoint %.200s (the API is under " API_PREFIX ")",
				 req->path);
		return;
	}
	name += strlen(API_PREFIX);
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		if (strcmp(routes[i].name, name))
			continue;
		/* A migration pumps the loop: only what reads is served. */
		if (a->migrating && routes[i].method != HTTP_M_GET) {
			http_reply_error(c, 500, "%s: the VM is migrating", name);
			return;
		}
		if (req->method != routes[i].method) {
			http_reply_error(c, 405, "%s: method %.20s not allowed (use %s)", name,
					 req->method_name,
					 routes[i].method == HTTP_M_GET ? "GET" : "PUT");
			return;
		}
		routes[i].fn(a, c, req);
		return;
	}
	http_reply_error(c, 404, "unknown endpoint %.200s (not in cvisor's API: see README)", name);
}
