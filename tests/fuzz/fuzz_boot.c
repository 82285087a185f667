/* fuzz_boot.c - libFuzzer target for the bzImage, PVH and multiboot
 * loaders: any file must load or be refused with a message, never read or
 * write outside the file or guest RAM. The first input byte picks the RAM
 * size, whether an initrd (the input's tail) is passed, and whether the
 * tail is also given as one or two multiboot modules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/boot.h"

#define MAX_RAM (40ULL << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	struct guest_mem gm;
	struct boot_entry entry;
	struct boot_image img = { .cmdline = "console=ttyS0" };
	struct boot_module mods[2];
	char err[256];
	uint64_t ram_size;

	if (size < 1)
		return 0;
	if (!ram)
		ram = malloc(MAX_RAM);
	ram_size = (16ULL << 20) + ((data[0] & 0x7) * (3ULL << 20));
	guest_mem_init_buf(&gm, ram, ram_size);
	img.kernel = data + 1;
	img.kernel_len = size - 1;
	if ((data[0] & 0x80) && size > 64) {
		img.initrd = data + size - 32;
		img.initrd_len = 32;
	}
	if ((data[0] & 0x30) && size > 64) {
		mods[0] = (struct boot_module){ data + size - 48, 48, "mod0 a b" };
		mods[1] = (struct boot_module){ data + 1, size - 1, "mod1" };
		img.modules = mods;
		img.nmodules = (data[0] & 0x30) == 0x30 ? 2 : 1;
	}
	if (boot_load(&gm, &img, &entry, err, sizeof(err)) == 0) {
		/* A loaded kernel's entry point lies in guest RAM. */
		if (!guest_mem_ptr(&gm, entry.rip, 1))
			abort();
	} else if (!err[0]) {
		abort(); /* every refusal explains itself */
	}
	return 0;
}
