/* config.h - the guest's configuration: one field table (src/config.c)
 * drives the `cvisor run` flags, the config file's keys, the usage
 * synopsis, the snapshot's CONFIG section and the config part of `cvisor
 * info`; the device table (devices.h) adds the device flags and keys. */
#ifndef CVISOR_CONFIG_H
#define CVISOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/devices.h"
#include "cvisor/sandbox.h"
#include "cvisor/error.h"
#include "cvisor/jail.h"
#include "cvisor/util.h"

#define CONFIG_MAX_CPUS 64
#define CONFIG_DEFAULT_MEM (256ULL << 20)
#define CONFIG_MIN_MEM (16ULL << 20)
#define CONFIG_DEFAULT_CPU_WEIGHT 100
#define CONFIG_MAX_CPU_WEIGHT 10000
/* --cpu-cap: percent of one host CPU, so 100 * CONFIG_MAX_CPUS at most. */
#define CONFIG_MAX_CPU_CAP (100 * CONFIG_MAX_CPUS)
/* A config file larger than this is refused before it is read. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* The kernel command line, with its NUL. */
#define CONFIG_CMDLINE_MAX 4096

struct json_object;

enum config_quirks {
	CONFIG_QUIRKS_AUTO, /* detect a host that emulates guest code (PVM) */
	CONFIG_QUIRKS_ON,
	CONFIG_QUIRKS_OFF,
};

/* --pit: KVM's in-kernel i8254 timer, or none. Each in-kernel PIT is a
 * kernel worker thread, and destroying one waits for two SRCU grace
 * periods (about 25 ms here); a guest with a local APIC timer and a known
 * TSC rate (Linux with kvmclock, the tiny guests) does not need it. auto
 * (the default) is on with the kernel irqchip and off with a split one,
 * which has no in-kernel PIT to drive. */
enum config_pit {
	CONFIG_PIT_AUTO,
	CONFIG_PIT_ON,
	CONFIG_PIT_OFF,
};

/* --irqchip: KVM's PIC, IOAPIC and LAPICs (kernel), or only the LAPICs
 * in KVM and cvisor's own IOAPIC, with no PIC and no PIT (split,
 * KVM_CAP_SPLIT_IRQCHIP). Destroying KVM's PIC and IOAPIC costs two SRCU
 * grace periods at teardown (12-18 ms here); the split irqchip does not. */
enum config_irqchip {
	CONFIG_IRQCHIP_KERNEL,
	CONFIG_IRQCHIP_SPLIT,
};

/* --serial: where the 8250 (COM1) console goes. tty: the monitor's
 * stdout and stdin, or with -d the log and `cvisor console`; pty: a new
 * pty (its slave path in `cvisor info`), and with -d also the log and
 * `cvisor console`; off: output dropped, no input. */
enum config_serial {
	CONFIG_SERIAL_TTY,
	CONFIG_SERIAL_PTY,
	CONFIG_SERIAL_OFF,
};

/* --on-reboot: what a guest's reset (i8042 or ACPI reset, `cvisor reboot`,
 * the API's vm.reboot) does. exit: the monitor ends with status 0, as
 * Firecracker does; restart: the same process resets the machine in
 * place and boots the kernel (or firmware) again, as a PC does and QEMU
 * does by default. A restored or incoming guest has no boot state to go
 * back to: its reset ends it, with a line that says so. */
enum config_reboot {
	CONFIG_REBOOT_EXIT,
	CONFIG_REBOOT_RESTART,
};

/* The config owns every string in it (copies, freed by config_free):
 * nothing points into argv, a parsed file or a snapshot buffer. Set a
 * string field with config_set_string. */
struct vm_config {
	char *kernel;
	char *firmware; /* --firmware: a BIOS image instead of --kernel */
	char *initrd;
	char cmdline[CONFIG_CMDLINE_MAX];
	uint64_t mem_size;
	unsigned int ncpus;
	enum config_quirks quirks;
	enum config_pit pit;	      /* --pit auto|on|off; see config_pit_on */
	enum config_irqchip irqchip;  /* --irqchip kernel|split (default kernel) */
	enum config_serial serial;    /* --serial tty|pty|off (default tty) */
	enum config_reboot on_reboot; /* --on-reboot exit|restart (default exit) */

	/* Toolstack (see README: named guests). */
	char *name;		   /* control socket $CVISOR_RUN_DIR/NAME.sock */
	bool detach;		   /* -d: console to a log file and ring buffer */
	unsigned int cpu_weight;   /* cgroup cpu.weight, 1..10000, default 100 */
	unsigned int cpu_cap;	   /* percent of one host CPU, 0 = no cap */
	uint64_t memory_limit;	   /* cgroup memory.max in bytes, 0 = none */
	char *cpu_affinity;	   /* host CPU list for every vCPU, NULL = any */
	char *ctl_group;	   /* --ctl-group: its members may use the control socket */
	char *config_file;	   /* --config FILE, as given */
	enum sandbox_mode seccomp; /* --seccomp on|log|off (default on) */
	struct jail_config jail;   /* --jail, --jail-dir, --netns, --uid, --gid */
	bool ksm;		   /* --ksm: guest RAM MADV_MERGEABLE */

	/* Paravirtual devices (--virtio and the device table's flags). */
	struct devices_config devices;
};

/* How config_to_json writes the fields out. */
enum config_view {
	/* The config file's form, for the snapshot's CONFIG section: the
	 * keys a restore needs (not the name, -d or --config), sizes as
	 * exact strings, unset fields left out; config_apply_json reads it
	 * back. */
	CONFIG_VIEW_SNAPSHOT,
	/* The config part of `cvisor info`: sizes in bytes, unset strings
	 * null (see src/ctl/proto.c). */
	CONFIG_VIEW_INFO,
};

/* The defaults: 256M, one vCPU, weight 100, no name. cfg holds nothing
 * to free before (config_free first to reuse one). */
void config_init(struct vm_config *cfg);

/* Replace the string *field with a copy of value (NULL clears it). 0 or
 * -ENOMEM (the field unchanged). */
int config_set_string(char **field, const char *value) CV_MUST;

/* Apply the arguments of `cvisor run` (argv[0] is "run") over cfg. --config
 * FILE is only recorded in cfg->config_file. -EINVAL with e filled
 * (CV_EXIT_USAGE). Only syntax and ranges are checked; files and host
 * limits are checked later. Pure. */
int config_apply_flags(int argc, char **argv, struct vm_config *cfg, struct cv_error *e) CV_MUST;

/* Apply a JSON config file's text[0..len) over cfg. Its keys are the long
 * flags with '_' for '-' (see README); unknown keys are errors. file names
 * the file in messages: "FILE:LINE:COL: ..." for syntax, "FILE: KEY ..."
 * for a value. -EINVAL with e filled. Pure. */
int config_apply_json(const char *file, const char *text, size_t len, struct vm_config *cfg,
		      struct cv_error *e) CV_MUST;

/* Checks across keys once everything is applied (a kernel, -d needs a
 * name, ...). -EINVAL with e filled. */
int config_check(const struct vm_config *cfg, struct cv_error *e) CV_MUST;

/* --irqchip split with --pit on: a split irqchip has no in-kernel PIT
 * (KVM's PIT raises its interrupt on KVM's PIC and IOAPIC). Part of
 * config_check; also checked when a VM is built from a snapshot's or a
 * migration's CONFIG. -EINVAL with e filled (CV_EXIT_USAGE). */
int config_check_irqchip(const struct vm_config *cfg, struct cv_error *e) CV_MUST;

/* Whether the guest gets KVM's in-kernel PIT: --pit on, or auto with the
 * kernel irqchip. */
bool config_pit_on(const struct vm_config *cfg);

/* What `cvisor run ARGS` runs (argv[0] is "run"; src/config_load.c, the
 * part that reads files): the flags, then the
 * --config file they name (if any) with the flags again on top (the
 * command line overrides the file), config_check, then the files' full
 * names: disk images always (a snapshot records them for a restore from
 * another directory), the kernel and initrd with -d (a detached monitor
 * leaves the current directory). A file that does not resolve is left as
 * given, for vm_create to report. 0, or -errno with e filled. */
int config_load_run(int argc, char **argv, struct vm_config *cfg, struct cv_error *e) CV_MUST;

/* Add cfg's fields to the JSON object o in the given view, with the
 * devices of dc (a running VM's, which `cvisor set` changes; NULL: cfg's
 * own). 0 or -ENOMEM. */
int config_to_json(const struct vm_config *cfg, const struct devices_config *dc,
		   enum config_view view, struct json_object *o) CV_MUST;

/* The `cvisor run` synopsis, from the field and device tables: lines of at
 * most 92 columns, the first starting "usage: cvisor run", into buf.
 * Returns buf. */
const char *config_usage(char *buf, size_t len);

/* The host's choices that a snapshot does not carry (--seccomp, the
 * jail's flags, --ctl-group, --ksm): from src over dst's. 0 or -ENOMEM. */
int config_copy_host(struct vm_config *dst, const struct vm_config *src) CV_MUST;

/* Release the strings cfg owns. Idempotent. */
void config_free(struct vm_config *cfg);

/* Set the field `key` of the field table from a flag's value (`flag`
 * names it in messages), as `cvisor run` would: for the commands that take
 * some of run's flags (restore, run --incoming). 0, or -EINVAL / -ENOMEM
 * with e filled (-ENOENT: no such key). */
int config_set_field(struct vm_config *cfg, const char *key, const char *flag, const char *val,
		     struct cv_error *e) CV_MUST;

#endif
