/* config.h - the guest's configuration, parsed from argv (pure, fuzzable). */
#ifndef CVISOR_CONFIG_H
#define CVISOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/util.h"

#define CONFIG_MAX_CPUS 64
#define CONFIG_DEFAULT_MEM (256ULL << 20)
#define CONFIG_MIN_MEM (16ULL << 20)

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
};

/* Parse the arguments of `cvisor run` (argv[0] is "run"). On error returns
 * -EINVAL and writes one user-facing line (no "cvisor: " prefix) into err.
 * Only syntax and ranges are checked here; files and host limits are
 * checked when the VM is built. */
int config_parse_run(int argc, char **argv, struct vm_config *cfg, char *err,
		     size_t errlen) CV_MUST;

#endif
