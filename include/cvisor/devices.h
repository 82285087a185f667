/* devices.h - the VM's paravirtual devices: the device table (one row per
 * device type, src/devices.c), which devices the user asked for, and
 * attaching them to the chosen transport (virtio-pci or virtio-mmio).
 *
 * The table drives the command-line flags (--disk, --net, ...), the config
 * file's keys, the usage text, the creation order, the snapshot's CONFIG
 * (through config.c) and DEVICE sections (their names). Adding a device is
 * its file plus one row (README: "Adding a device"). */
#ifndef CVISOR_DEVICES_H
#define CVISOR_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/device.h"
#include "cvisor/error.h"
#include "cvisor/irq.h"
#include "cvisor/pci.h"
#include "cvisor/ratelimit.h"
#include "cvisor/util.h"
#include "cvisor/virtio.h"
#include "cvisor/virtio_mmio.h"
#include "cvisor/virtio_pci.h"

#define VM_MAX_VIRTIO 16
/* virtio-mmio devices: 4 KiB apart from here, with ISA interrupts that no
 * emulated device uses. */
#define VIRTIO_MMIO_BASE 0xd8000000ULL
#define VIRTIO_MMIO_STRIDE 0x1000

enum virtio_transport_kind {
	VIRTIO_TRANSPORT_PCI,  /* any stock kernel finds these */
	VIRTIO_TRANSPORT_MMIO, /* microVM kernels, announced on the command line */
};

/* One row of the device table. */
struct device_type {
	const char *key;   /* "disk": the flag --disk and the config key "disk" */
	const char *arg;   /* the value's syntax in usage; NULL: a flag without value */
	unsigned int max;  /* 1: given once, a later value replaces it; >1: repeatable */
	bool size_value;   /* a config file may give a number (MiB), as for sizes */
	bool path;	   /* the spec starts with a file name, made absolute */
	const char *label; /* "virtio-blk", numbered "virtio-blk 0" when repeatable:
			      log lines and the snapshot's DEVICE section */
	/* Checked when the flag or key is read (NULL: when the device is
	 * created); `what` names it ("--balloon", "FILE: balloon"). -EINVAL
	 * with e filled. */
	int (*check)(const char *what, const char *spec, struct cv_error *e);
	/* Create the index-th device of this type from spec (a bool flag's
	 * spec is "") into d: virtio_dev_init done, transport not yet.
	 * One contract for every device: 0, or -errno with e filled
	 * (CV_EXIT_USAGE when the spec or a file it names is at fault) and
	 * nothing left to free. */
	int (*create)(struct virtio_dev *d, const char *spec, unsigned int index,
		      const struct virtio_env *env, struct cv_error *e);
	/* The rate limits its spec takes and `cvisor set` changes (the
	 * device's ops then have set_limits), nrate directions; NULL: none. */
	const struct rate_keys *rate;
	unsigned int nrate;
};

/* One device the user asked for: its type and its spec (owned), and a
 * file descriptor that came with it (owned: a tap passed with the API's
 * vm.add-net; -1: none). A copy of the config holds a dup of the fd, each
 * holder closes its own, and the device built from it dups what it keeps.
 * The fd is this process's alone: a snapshot or a migration cannot carry
 * it (devices_check_portable). */
struct device_spec {
	const struct device_type *type;
	char *spec;
	int fd;
};

/* What the user asked for, as given on the command line, in the config
 * file or in a snapshot's CONFIG; each spec is parsed by its device when
 * the VM is built. */
struct devices_config {
	enum virtio_transport_kind transport;
	struct device_spec dev[VM_MAX_VIRTIO];
	unsigned int n;
};

/* The device table: *n rows, in creation order. */
const struct device_type *devices_table(unsigned int *n);

/* The row whose key is key ("disk"), or NULL. */
const struct device_type *devices_type(const char *key);

/* The row and index a device name KEY INDEX ("disk0", "net1") gives:
 * the row, or NULL when name is not of that form. */
const struct device_type *devices_type_of(const char *name, unsigned int *index);

/* Record one device of type t (spec "" for a flag without value): a type
 * given once replaces its earlier spec, a repeatable one is added, up to
 * t->max. The spec is copied. -EINVAL (CV_EXIT_USAGE) or -ENOMEM with e
 * filled; `what` names the flag or key in messages ("--disk"). */
int devices_add(struct devices_config *dc, const struct device_type *t, const char *what,
		const char *spec, struct cv_error *e) CV_MUST;

/* devices_add for a device whose spec comes with a file descriptor,
 * which dc takes in every case (closed here on a failure). */
int devices_add_fd(struct devices_config *dc, const struct device_type *t, const char *what,
		   const char *spec, int fd, struct cv_error *e) CV_MUST;

/* Where the index-th device of type t comes in creation order (table
 * order, then index): with virtio-pci its slot on bus 0 less one (the
 * host bridge is 00.0), with virtio-mmio its window. -1 if dc has no
 * such device. */
int devices_order(const struct devices_config *dc, const struct device_type *t, unsigned int index);

/* Can dc be written into a snapshot or sent to another process? Not when
 * a device holds a passed file descriptor: -ENOTSUP with one line in err
 * naming the device. */
int devices_check_portable(const struct devices_config *dc, char *err, size_t errlen) CV_MUST;

/* How many devices of type t dc holds. */
unsigned int devices_count(const struct devices_config *dc, const struct device_type *t);

/* The i-th spec of type t in dc, or NULL. */
const char *devices_spec(const struct devices_config *dc, const struct device_type *t,
			 unsigned int i);

/* Replace the i-th spec of type t (absolute paths, config.c). 0, -ENOENT
 * or -ENOMEM. */
int devices_set_spec(struct devices_config *dc, const struct device_type *t, unsigned int i,
		     const char *spec) CV_MUST;

/* dst = a copy of src, with dups of its fds (dst holds nothing before).
 * 0, -ENOMEM or -EMFILE (dst empty). */
int devices_config_copy(struct devices_config *dst, const struct devices_config *src) CV_MUST;

/* Free the specs and close their fds; dc is empty (transport kept).
 * Idempotent. */
void devices_config_free(struct devices_config *dc);

/* A virtio device the VM owns, with its transport. */
struct vm_virtio {
	struct virtio_dev dev;
	const struct device_type *type; /* its row of the device table */
	unsigned int index;		/* the index-th of its type: "disk1" */
	union {
		struct virtio_pci pci;
		struct virtio_mmio mmio;
	} t;
	bool mmio; /* which member of t */
};

struct vm;

/* The PCI bus and the interrupt router; before any device is attached. */
int vm_devices_init(struct vm *vm) CV_MUST;

/* Create every device dc asks for, in table order, and attach it. 0, or
 * -errno with e filled (CV_EXIT_USAGE when the user's spec or a file it
 * names is at fault); nothing is printed. */
int vm_devices_create(struct vm *vm, const struct devices_config *dc, struct cv_error *e) CV_MUST;

/* Attach an initialized device to the VM's transport; the VM owns v from
 * now on (freed by vm_devices_destroy). */
int vm_attach_virtio(struct vm *vm, struct vm_virtio *v) CV_MUST;

/* Every device whose state a snapshot holds, in a fixed order, into out
 * (max entries): the platform devices, the PCI host bridge (virtio-pci
 * machines), then the virtio devices by label. Returns the count. */
unsigned int vm_devices_list(struct vm *vm, struct device *out, unsigned int max);

/* Words for the kernel command line (virtio-mmio announcements), or "". */
const char *vm_devices_cmdline(const struct vm *vm);

/* The device named KEY INDEX ("disk0", "net1": the index-th --KEY), or
 * NULL. */
struct vm_virtio *vm_device_find(struct vm *vm, const char *name);

/* Destroy and free every virtio device. */
void vm_devices_destroy(struct vm *vm);

#endif
