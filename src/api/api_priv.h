/* api_priv.h - private to src/api/: the VMM's state between requests.
 *
 *   server.c   the process: sockets, the pre-boot loop, the guest's boots
 *              through the monitor's lifecycle (monitor_run_api)
 *   routes.c   the endpoint table and what each endpoint does
 *   transfer.c vm.snapshot, vm.restore, vm.send-migration, vm.receive-migration
 *   devices.c  vm.add-net, vm.counters and the devices' ids
 *   events.c   the --event-monitor stream
 *   vmconfig.c vm.create's body to a struct vm_config
 *   chflags.c  Cloud Hypervisor's direct VM flags to a vm.create body */
#ifndef CVISOR_API_PRIV_H
#define CVISOR_API_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "cvisor/api.h"
#include "cvisor/ctl.h"
#include "cvisor/evloop.h"
#include "cvisor/http.h"
#include "cvisor/migrate.h"
#include "cvisor/monitor.h"

struct json_object;
struct vm;

/* Cloud Hypervisor's VM states (vm.info's "state"). */
enum api_state {
	API_NONE,     /* no vm.create yet (or vm.delete) */
	API_CREATED,  /* configured, not booted */
	API_RUNNING,  /* booted: Running or Paused as the guest is */
	API_SHUTDOWN, /* booted once, stopped by vm.shutdown */
};

struct api {
	const struct api_opts *o;
	char name[CTL_NAME_MAX + 1]; /* the guest's cvisor name */
	struct evloop loop;	     /* the VMM's own, while no guest runs */
	struct http_server *http;
	struct ctl_server gate; /* the control socket's access rules (access.c) */
	int sfd;		/* signalfd while no guest runs */
	int ev_fd;		/* --event-monitor, or -1 */
	int ev_tick;		/* its keep-alive timer (a FIFO's), or -1 */
	int stdout_fd;		/* the VMM's stdout as it started */

	enum api_state state;
	struct vm_config cfg;		 /* vm.create's */
	struct api_vm_io io;		 /* its serial and console */
	struct json_object *create_body; /* echoed by vm.info */
	struct vm *vm;			 /* while the guest runs */
	bool built_once;		 /* a guest ran: the main thread is filtered */
	bool restoring;			 /* vm.restore: the next build restores rs */
	struct restore_src rs;		 /* its snapshot, opened (mem_fd -1: none) */
	bool incoming;			 /* vm.receive-migration: the next build receives */
	struct migrate_incoming in;	 /* where it listens */
	char listen[256];
	bool migrating; /* vm.send-migration runs (the loop is pumped from it) */
	char rs_path[4096];

	/* What the main loop does next, set by handlers. */
	bool boot;	/* vm.boot or a reboot: build the guest */
	bool quit;	/* end the VMM (vmm.shutdown, SIGTERM, events reader gone) */
	bool rebooting; /* the guest is built again after a reset */
	bool stopping;	/* the guest stops by vm.shutdown or vm.delete (the VMM stays) */
	bool deleting;	/* vm.delete: the config goes too */
	int stop_why;	/* enum vm_stop: why the last guest stopped */
	struct http_conn *boot_conn; /* vm.boot / vm.reboot waiting */
	struct http_conn *stop_conn; /* vm.shutdown / vmm.shutdown waiting */
	char boot_err[CV_ERROR_MAX]; /* why the last build failed */
	int status;		     /* the process's exit status */
};

/* The snapshot file vm.snapshot writes in its destination directory
 * (FILE, and FILE.mem beside it: cvisor's format, src/snapshot/), and
 * vm.restore reads from its source directory. */
#define API_SNAPSHOT_FILE "cvisor.snapshot"

/* routes.c: the http_handler_fn. */
void api_handle(void *opaque, struct http_conn *c, struct http_request *req);

/* routes.c: answer 200 with o (taken; NULL: out of memory, a 500). */
void api_reply_json(struct http_conn *c, struct json_object *o);

/* routes.c: vm.create's work: body (len bytes, NUL-terminated) to the VM
 * config, echo and state Created. 0, or -EINVAL / -ENOMEM with err (no VM
 * then). */
int api_vm_create(struct api *a, const char *body, size_t len, char *err, size_t errlen) CV_MUST;

/* routes.c: the guest runs (or is paused): else a 500 naming the
 * endpoint `what`, and false. */
bool api_need_vm(struct api *a, struct http_conn *c, const char *what);

/* The guest's RAM size: the running guest's own (an incoming guest's comes
 * from its source), else the created config's. */
uint64_t api_mem_size(const struct api *a);

/* routes.c: a body that is one JSON object (the caller puts it), or a 400
 * and NULL. */
struct json_object *api_body_object(struct http_conn *c, struct http_request *req,
				    const char *what);

/* transfer.c: the endpoints that move a guest (see there). */
void api_ep_snapshot(struct api *a, struct http_conn *c, struct http_request *req);
void api_ep_restore(struct api *a, struct http_conn *c, struct http_request *req);
void api_ep_send_migration(struct api *a, struct http_conn *c, struct http_request *req);
void api_ep_receive_migration(struct api *a, struct http_conn *c, struct http_request *req);

/* devices.c: vm.add-net (a NIC joins a created VM's config) and
 * vm.counters (each disk's and NIC's, by id). */
void api_ep_add_net(struct api *a, struct http_conn *c, struct http_request *req);
void api_ep_counters(struct api *a, struct http_conn *c, struct http_request *req);

/* devices.c: vm.info's config names every disk and NIC by its id (as
 * Cloud Hypervisor's fills them in): the ids vm.create's body left out. */
void api_echo_ids(struct api *a);

/* server.c: may this process build a guest (again)? Not once a guest ran
 * under the main thread's seccomp filter. */
bool api_can_build(const struct api *a);

/* transfer.c: forget a vm.restore that will not be (its snapshot closed,
 * no VM). */
void api_restore_drop(struct api *a);

/* transfer.c: vm.info's config for a guest vm.create did not describe (a
 * restored or received one): its vCPUs, memory and kernel in VmConfig's
 * shape. NULL when out of memory. */
struct json_object *api_config_echo(const struct vm_config *cfg);

/* server.c: the guest's loop when it runs, the VMM's otherwise. */
struct evloop *api_loop(struct api *a);

/* events.c: open --event-monitor's target (path=P: open for writing, a
 * FIFO's reader being there; fd=N), watched on loop for its reader's
 * going away (a->quit). 0 or -errno with err. */
int api_events_open(struct api *a, const char *spec, char *err, size_t errlen) CV_MUST;
/* Watch the event fd on another loop (the guest's and back). */
void api_events_move(struct api *a, struct evloop *from, struct evloop *to);
/* Write one event: source "vm" or "vmm", event "booted", "shutdown", ... */
void api_event(struct api *a, const char *source, const char *event);
void api_events_close(struct api *a);

#endif
