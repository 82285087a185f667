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
#include <unistd.h>

#include "api_priv.h"
#include "cvisor/acpi_pm.h"
#include "cvisor/virtio_balloon.h"
#include "cvisor/vm.h"

#define API_PREFIX "/api/v1/"

void api_reply_json(struct http_conn *c, struct json_object *o)
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
bool api_need_vm(struct api *a, struct http_conn *c, const char *what)
{
	if (a->vm && a->state == API_RUNNING && !atomic_load(&a->vm->stop))
		return true;
	http_reply_error(c, 500, "%s: the VM is not running (state %s)", what, state_name(a));
	return false;
}

/* A body that is one JSON object, or a 400. */
struct json_object *api_body_object(struct http_conn *c, struct http_request *req, const char *what)
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
	api_reply_json(c, o);
}

uint64_t api_mem_size(const struct api *a)
{
	return a->vm ? a->vm->cfg->mem_size : a->cfg.mem_size;
}

static void ep_vmm_shutdown(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	if (a->stop_conn) {
		/* One stop at a time: the pending one keeps its connection. */
		http_reply_error(c, 500, "the VM is already shutting down");
		return;
	}
	a->quit = true;
	a->stop_conn = c; /* answered once the guest (if any) is gone */
	if (a->vm)
		vm_request_stop(a->vm, VM_STOP_POWEROFF, NULL);
}

/* ---- the VM's life ---- */

int api_vm_create(struct api *a, const char *body, size_t len, char *err, size_t errlen)
{
	int r;

	config_free(&a->cfg);
	config_init(&a->cfg);
	r = api_vm_config(body, len, &a->cfg, &a->io, err, errlen);
	if (!r && !(a->create_body = json_tokener_parse(body)))
		r = -ENOMEM, snprintf(err, errlen, "vm.create: out of memory");
	if (r) {
		config_free(&a->cfg);
		config_init(&a->cfg);
		return r;
	}
	a->state = API_CREATED;
	api_echo_ids(a);
	return 0;
}

static void ep_create(struct api *a, struct http_conn *c, struct http_request *req)
{
	char err[512];
	int r;

	if (a->state != API_NONE) {
		http_reply_error(c, 500, "vm.create: a VM is already created (vm.delete first)");
		return;
	}
	if ((r = api_vm_create(a, req->body, req->body_len, err, sizeof(err)))) {
		http_reply_error(c, r == -ENOMEM ? 500 : 400, "%s", err);
		return;
	}
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
	if (api_need_vm(a, c, "vm.shutdown"))
		stop_guest(a, c, false);
}

static void ep_delete(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	if (a->boot || a->boot_conn) {
		http_reply_error(c, 500, "vm.delete: a boot is in progress");
		return;
	}
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
	if (!api_need_vm(a, c, "vm.reboot"))
		return;
	/* A booted guest resets in place (src/vm_reset.c); a restored or
	 * received one has no boot state and is built anew, which the
	 * main thread's seccomp filter forbids (server.c api_can_build). */
	if (!a->vm->boot_state.len && a->o->seccomp != SANDBOX_OFF) {
		http_reply_error(c, 500,
				 "vm.reboot: this guest was restored or received, so it has no "
				 "boot state to reset to, and the seccomp filter forbids "
				 "building it anew (--seccomp false allows it)");
		return;
	}
	vm_request_reset(a->vm);
	http_reply(c, 204, NULL, 0);
}

static void ep_power_button(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	if (!api_need_vm(a, c, "vm.power-button"))
		return;
	acpi_pm_power_button(&a->vm->pm);
	http_reply(c, 204, NULL, 0);
}

/* vm.pause and vm.resume: the control core's pause, with the events a
 * Cloud Hypervisor client reads. */
static void pause_or_resume(struct api *a, struct http_conn *c, bool pause)
{
	const char *what = pause ? "vm.pause" : "vm.resume";

	if (!api_need_vm(a, c, what))
		return;
	if (vm_paused(a->vm) == pause) {
		http_reply_error(c, 500, "%s: the VM is %s", what,
				 pause ? "already paused" : "not paused");
		return;
	}
	api_event(a, "vm", pause ? "pausing" : "resuming");
	if (pause)
		vm_pause(a->vm);
	else
		vm_resume(a->vm);
	api_event(a, "vm", pause ? "paused" : "resumed");
	http_reply(c, 204, NULL, 0);
}

static void ep_pause(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	pause_or_resume(a, c, true);
}

static void ep_resume(struct api *a, struct http_conn *c, struct http_request *req)
{
	(void)req;
	pause_or_resume(a, c, false);
}

/* ---- what the VM is ---- */

/* The pty slave a client opens (libvirt's virsh console): the running
 * guest's; null before boot and after the guest ends. */
static const char *pty_path(struct api *a, bool serial)
{
	if (!a->vm)
		return NULL;
	return serial ? vm_serial_pty_path(a->vm) : vm_console_pty_path(a->vm);
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
	uint64_t actual = api_mem_size(a);
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
	api_reply_json(c, o);
}

/* vm.resize: desired_ram through the balloon (what it holds is the boot
 * memory less desired_ram); desired_vcpus only at the boot count. */
static void ep_resize(struct api *a, struct http_conn *c, struct http_request *req)
{
	struct json_object *o;
	uint64_t mem = api_mem_size(a);
	int64_t ram = -1;
	int r;

	if (!api_need_vm(a, c, "vm.resize") || !(o = api_body_object(c, req, "vm.resize")))
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
	{ "vm.counters", HTTP_M_GET, api_ep_counters },
	{ "vm.add-net", HTTP_M_PUT, api_ep_add_net },
	{ "vm.resize", HTTP_M_PUT, ep_resize },
	{ "vm.snapshot", HTTP_M_PUT, api_ep_snapshot },
	{ "vm.restore", HTTP_M_PUT, api_ep_restore },
	{ "vm.send-migration", HTTP_M_PUT, api_ep_send_migration },
	{ "vm.receive-migration", HTTP_M_PUT, api_ep_receive_migration },
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
		/* HEAD is GET without the body (RFC 9110 9.3.2; http.c drops
		 * it). */
		if (req->method != routes[i].method &&
		    !(routes[i].method == HTTP_M_GET && !strcmp(req->method_name, "HEAD"))) {
			const char *allow = routes[i].method == HTTP_M_GET ? "GET, HEAD" : "PUT";

			http_reply_not_allowed(c, allow, "%s: method %.20s not allowed (use %s)",
					       name, req->method_name, allow);
			return;
		}
		routes[i].fn(a, c, req);
		return;
	}
	http_reply_error(c, 404, "unknown endpoint %.200s (not in cvisor's API: see README)", name);
}
