/* boot_fixture.h - what the kernel loaders' tests share (test_boot.c,
 * test_multiboot.c): a 64 MiB guest in a plain buffer (no KVM) and a
 * kernel file buffer of KSIZE bytes. Header-only; include after
 * <cmocka.h>. */
#ifndef CVISOR_TEST_BOOT_FIXTURE_H
#define CVISOR_TEST_BOOT_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>

#include "cvisor/boot.h"

#define RAM (64ULL << 20)
#define KSIZE 0x4000

struct fx {
	uint8_t *ram;
	struct guest_mem gm;
	uint8_t k[KSIZE];
	char err[256];
	struct boot_entry entry;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || !(f->ram = calloc(1, RAM))) {
		free(f);
		return -1;
	}
	guest_mem_init_buf(&f->gm, f->ram, RAM);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	free(f->ram);
	free(f);
	return 0;
}

#endif
