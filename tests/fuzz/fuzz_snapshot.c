/* fuzz_snapshot.c - libFuzzer target for the snapshot sections a restore
 * reads before it builds a VM: the section index, CONFIG (strings, counts,
 * ranges) and MACHINE's RAM size, over any payload. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/config.h"
#include "cvisor/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_config cfg;
	char err[256];
	uint64_t ram;

	config_init(&cfg);
	if (snapshot_config_load(data, size, &cfg, err, sizeof(err)) == 0) {
		/* What the loader returned must be within the bounds it checks. */
		if (cfg.ncpus < 1 || cfg.ncpus > CONFIG_MAX_CPUS || cfg.devices.n > VM_MAX_VIRTIO ||
		    !memchr(cfg.cmdline, '\0', sizeof(cfg.cmdline)))
			abort();
		for (unsigned int i = 0; i < cfg.devices.n; i++)
			if (!cfg.devices.dev[i].spec || !cfg.devices.dev[i].type ||
			    devices_count(&cfg.devices, cfg.devices.dev[i].type) >
				    cfg.devices.dev[i].type->max)
				abort();
	}
	config_free(&cfg);
	if (snapshot_ram_size(data, size, &ram, err, sizeof(err)) == 0 && ram % 4096)
		abort();
	return 0;
}
