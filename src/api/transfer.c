/* transfer.c - the endpoints that move a guest: vm.snapshot and
 * vm.restore (cvisor's snapshot files in a directory), vm.send-migration
 * and vm.receive-migration (cvisor's live migration over TCP). The guest
 * is saved, restored and received by the same code as `cvisor save`,
 * `cvisor restore` and `cvisor run --incoming`; restore and receive build
 * it through the monitor's one lifecycle (server.c). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api_priv.h"
#include "cvisor/snapshot.h"
#include "cvisor/vm.h"

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
void api_ep_snapshot(struct api *a, struct http_conn *c, struct http_request *req)
{
	static const char *const keys[] = { "destination_url", NULL };
	char path[4096], err[4200];
	struct json_object *o;
	uint64_t bytes;
	int r;

	if (!api_need_vm(a, c, "vm.snapshot") || !(o = api_body_object(c, req, "vm.snapshot")))
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
void api_ep_restore(struct api *a, struct http_conn *c, struct http_request *req)
{
	static const char *const keys[] = { "source_url", "prefault", NULL };
	char err[4200];
	struct json_object *o, *cfg;
	int r;

	if (a->state != API_NONE) {
		http_reply_error(c, 500, "vm.restore: a VM is already created (vm.delete first)");
		return;
	}
	if (!(o = api_body_object(c, req, "vm.restore")))
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
void api_ep_send_migration(struct api *a, struct http_conn *c, struct http_request *req)
{
	static const char *const keys[] = { "destination_url", "local", NULL };
	struct migrate_opts mo;
	struct json_object *o, *v;
	char dest[256], err[512];
	int r;

	if (!api_need_vm(a, c, "vm.send-migration") ||
	    !(o = api_body_object(c, req, "vm.send-migration")))
		return;
	if (!only_keys(c, o, "vm.send-migration", keys) ||
	    !tcp_url(c, o, "vm.send-migration", "destination_url", dest, sizeof(dest))) {
		json_object_put(o);
		return;
	}
	if (json_object_object_get_ex(o, "local", &v) &&
	    (!json_object_is_type(v, json_type_boolean) || json_object_get_boolean(v))) {
		json_object_put(o);
		http_reply_error(c, 400,
				 "vm.send-migration: local: only false (cvisor sends the "
				 "memory over the stream)");
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
void api_ep_receive_migration(struct api *a, struct http_conn *c, struct http_request *req)
{
	static const char *const keys[] = { "receiver_url", NULL };
	struct json_object *o;
	char err[512];

	if (a->state != API_NONE) {
		http_reply_error(c, 500, "vm.receive-migration: a VM is already created");
		return;
	}
	if (!(o = api_body_object(c, req, "vm.receive-migration")))
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
