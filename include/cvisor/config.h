/* config.h - the guest's configuration, from argv and an optional JSON file
 * (pure, fuzzable: reading the file is the caller's job). */
#ifndef CVISOR_CONFIG_H
#define CVISOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/devices.h"
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

enum config_quirks {
	CONFIG_QUIRKS_AUTO, /* detect a host that emulates guest code (PVM) */
	CONFIG_QUIRKS_ON,
	CONFIG_QUIRKS_OFF,
};

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem_size;
	unsigned int ncpus;
	enum config_quirks quirks;

	/* Toolstack (see README: named guests). */
	const char *name;	  /* control socket $CVISOR_RUN_DIR/NAME.sock */
	bool detach;		  /* -d: console to a log file and ring buffer */
	unsigned int cpu_weight;  /* cgroup cpu.weight, 1..10000, default 100 */
	unsigned int cpu_cap;	  /* percent of one host CPU, 0 = no cap */
	uint64_t memory_limit;	  /* cgroup memory.max in bytes, 0 = none */
	const char *cpu_affinity; /* host CPU list for every vCPU, NULL = any */
	const char *config_file;  /* --config FILE, as given */
	void *json;		  /* the parsed file; owns its strings above */
	char *strings;		  /* snapshot_config_load: owns its strings */

	/* Paravirtual devices (--disk, --net, --rng, --balloon, --vsock,
	 * --virtio), parsed by devices_parse_flag. */
	struct devices_config devices;
};

/* The defaults: 256M, one vCPU, weight 100, no name. */
void config_init(struct vm_config *cfg);

/* Apply the arguments of `cvisor run` (argv[0] is "run") over cfg. --config
 * FILE is only recorded in cfg->config_file. On error returns -EINVAL and
 * writes one user-facing line (no "cvisor: " prefix) into err. Only syntax
 * and ranges are checked; files and host limits are checked later. */
int config_apply_flags(int argc, char **argv, struct vm_config *cfg, char *err,
		       size_t errlen) CV_MUST;

/* Apply a JSON config file's text[0..len) over cfg. Its keys are the long
 * flags with '_' for '-' (see README); unknown keys are errors. file names
 * the file in messages: "FILE:LINE:COL: ..." for syntax, "FILE: KEY ..."
 * for a value. cfg keeps the parsed tree until config_free(). */
int config_apply_json(const char *file, const char *text, size_t len, struct vm_config *cfg,
		      char *err, size_t errlen) CV_MUST;

/* Checks across keys once everything is applied (a kernel, -d needs a
 * name, ...). */
int config_check(const struct vm_config *cfg, char *err, size_t errlen) CV_MUST;

/* Release what config_apply_json or snapshot_config_load kept. Idempotent. */
void config_free(struct vm_config *cfg);

#endif
