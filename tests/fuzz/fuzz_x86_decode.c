/* fuzz_x86_decode.c - libFuzzer target for the instruction decoder, in
 * 64-bit and 32-bit mode: any bytes decode or are refused, never read past
 * n, a decoded length stays within the bytes given, and a 32-bit operand's
 * offset fits 32 bits. */
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
	for (int mode32 = 0; mode32 < 2; mode32++) {
		int r = mode32 ? x86_decode_0f_modrm32(copy, size, &in)
			       : x86_decode_0f_modrm(copy, size, &in);

		if (r)
			continue;
		if (in.len > size || in.len > 15 || !in.has_modrm)
			abort();
		if (in.mod != 3 && x86_operand_addr(&in, gpr, 0, 0, 0) > 0xffffffffULL && mode32)
			abort(); /* a 32-bit offset */
		if (mode32)
			(void)x86_operand_seg(&in);
	}
	free(copy);
	return 0;
}
