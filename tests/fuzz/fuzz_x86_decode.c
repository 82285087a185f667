/* fuzz_x86_decode.c - libFuzzer target for the instruction decoder: any
 * bytes decode or are refused, never read past n, and a decoded length
 * stays within the bytes given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/x86_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t gpr[16];
	struct x86_insn in;
	uint8_t *copy = malloc(size ? size : 1);

	/* A heap copy of exactly `size` bytes lets ASan catch over-reads. */
	memcpy(copy, data, size);
	if (x86_decode_0f_modrm(copy, size, &in) == 0) {
		if (in.len > size || in.len > 15 || !in.has_modrm)
			abort();
		if (in.mod != 3)
			(void)x86_operand_addr(&in, gpr, 0, 0, 0);
	}
	free(copy);
	return 0;
}
