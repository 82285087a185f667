/* api.h - Cloud Hypervisor's REST API over cvisor's control core
 * (src/api/): what `cvisor --api-socket ...` (or cvisor invoked as
 * `cloud-hypervisor`) runs. The VMM serves the API with no guest until
 * vm.create and vm.boot; the guest is then built, run and torn down by the
 * one monitor lifecycle (monitor.h), with a cvisor name so that the
 * `cvisor` verbs reach it too. */
#ifndef CVISOR_API_H
#define CVISOR_API_H

#include <stdbool.h>
#include <stddef.h>

#include "cvisor/config.h"
#include "cvisor/sandbox.h"
#include "cvisor/util.h"

/* The Cloud Hypervisor release whose API this follows (its OpenAPI file,
 * vmm/src/api/openapi/cloud-hypervisor.yaml): what `cloud-hypervisor
 * --version` prints. libvirt picks the payload form of vm.create at >= 28
 * and vm.add-net with fds at >= 22. */
#define API_CH_VERSION "v38.0.0"

/* The command line of the API mode, parsed by main.c. */
struct api_opts {
	const char *socket; /* --api-socket PATH, or fd=N (a listening socket) */
	const char *events; /* --event-monitor path=FILE or fd=N, or NULL */
	const char *name;   /* the guest's cvisor name; NULL: $CVISOR_CH_NAME or ch-PID */
	enum sandbox_mode seccomp;
	const char *build_version; /* vmm.ping's build_version: cvisor's own */
	const char *create_body;   /* the direct VM flags' vm.create body: created
				    * and booted at once; NULL: none */
};

/* Cloud Hypervisor's direct VM flags (src/api/chflags.c): --kernel,
 * --cmdline, --initramfs, --cpus, --memory, --disk, --net, --rng,
 * --balloon, --vsock, --serial, --console, in its syntax, gathered into
 * the vm.create body they stand for (start zeroed). */
struct json_object;
struct api_vm_flags {
	struct json_object *body; /* the body so far; NULL: no VM flag yet */
	unsigned int seen;	  /* the one-value flags given */
};

/* Is argv[*i] a VM flag? 0: not one (argv[*i] is untouched); 1: taken
 * with its values (*i is left on the last: --disk and --net take every
 * value up to the next flag); -EINVAL (a flag cvisor refuses, a value
 * that is malformed) or -ENOMEM with one line in err naming the flag. */
int api_vm_flag(struct api_vm_flags *f, int argc, char **argv, int *i, char *err,
		size_t errlen) CV_MUST;

/* After the last flag: the vm.create body as JSON text in *out (malloc'd;
 * NULL when no VM flag was given), checked by api_vm_config (a value
 * cvisor cannot give is refused here, its message under the flag's name;
 * flags without --kernel are refused). 0, or -errno with err. */
int api_vm_flags_body(struct api_vm_flags *f, char **out, char *err, size_t errlen) CV_MUST;

/* Free what api_vm_flag gathered. */
void api_vm_flags_free(struct api_vm_flags *f);

/* Parse the value of --api-socket or --event-monitor: "fd=N" into *fd
 * (and *path NULL), "path=P" or a plain P into *path (and *fd -1). 0 or
 * -EINVAL. */
int api_parse_target(const char *val, bool plain_ok, const char **path, int *fd) CV_MUST;

/* Serve the API until vmm.shutdown, SIGTERM, the event reader's going
 * away or the guest's poweroff. Returns the process's exit status; prints
 * one line on a failure to start. */
int api_main(const struct api_opts *o);

/* A vm.create body (JSON, VmConfig of the OpenAPI file) to cfg (from
 * config_init), through config.c's setters and the device table's specs.
 * Every field is honoured or refused: an unknown key, a type that is not
 * the schema's, a value cvisor cannot give (CPU hotplug, virtio-fs, VFIO
 * devices, ...) or a contradiction (0 vCPUs, too little memory, no
 * kernel) gives -EINVAL (-ENOMEM) and one line in err naming the field.
 * serial's and console's modes (the schema's names: Off, Pty, Tty, File,
 * Null; defaults Null and Tty as Cloud Hypervisor's) and serial's file go
 * to io, for the caller to wire up. Pure: no file is opened. */
#define API_ID_MAX 64 /* a device id with its NUL */

/* A device id the client gave (DiskConfig's and NetConfig's "id") to
 * cvisor's device `name` ("disk0", "net1"). */
struct api_dev_id {
	char name[16];
	char id[API_ID_MAX];
};

struct api_vm_io {
	char serial_mode[8], console_mode[8];
	char serial_file[4096];
	struct api_dev_id ids[VM_MAX_VIRTIO];
	unsigned int nids;
};
int api_vm_config(const char *body, size_t len, struct vm_config *cfg, struct api_vm_io *io,
		  char *err, size_t errlen) CV_MUST;

/* A vm.add-net body (NetConfig) that came with nfds descriptors, for the
 * index-th NIC: the device table's spec of it into spec ("tapfd,..." for
 * one descriptor, "tap=NAME,..." for none) and the id the client gave
 * into id ("" if none; one io holds already is refused). More than one
 * descriptor, fields cvisor cannot honour, or neither a descriptor nor a
 * tap name: -EINVAL with one line in err naming what. Pure. */
int api_net_config(const char *body, size_t len, unsigned int nfds, unsigned int index,
		   const struct api_vm_io *io, char *spec, size_t speclen, char id[API_ID_MAX],
		   char *err, size_t errlen) CV_MUST;

/* The id of cvisor's device `name` ("net0"): the one the client gave, else
 * Cloud Hypervisor's form of cvisor's name ("_net0"), in buf. Returns the id. */
const char *api_dev_id(const struct api_vm_io *io, const char *name, char buf[API_ID_MAX]);

/* Record that the client calls device `name` id (replacing an earlier
 * one of name). -ENOSPC when io is full. */
int api_dev_id_set(struct api_vm_io *io, const char *name, const char *id) CV_MUST;

#endif
