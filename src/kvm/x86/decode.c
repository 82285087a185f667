/* decode.c - prefixes, 0F opcodes and ModRM/SIB operands (SDM vol. 2,
 * sections 2.1-2.2, tables 2-2 and 2-3), in 64-bit mode and in 32-bit
 * protected mode with 32-bit addressing. */
#include "cvisor/x86_decode.h"

#include <errno.h>
#include <string.h>

#define X86_MAX_INSN 15

/* Legacy prefixes, in any order, then (64-bit mode) REX, which must come
 * right before the opcode (2.2.1). Returns the offset of the opcode. */
static size_t decode_prefixes(const uint8_t *b, size_t n, struct x86_insn *in)
{
	size_t i = 0;

	for (; i < n; i++) {
		switch (b[i]) {
		case 0x26:
		case 0x2e:
		case 0x36:
		case 0x3e: /* ignored in 64-bit mode */
			if (in->mode32)
				in->seg = b[i] == 0x26	 ? X86_SEG_ES
					  : b[i] == 0x2e ? X86_SEG_CS
					  : b[i] == 0x36 ? X86_SEG_SS
							 : X86_SEG_DS;
			continue;
		case 0x64:
			in->seg = X86_SEG_FS;
			continue;
		case 0x65:
			in->seg = X86_SEG_GS;
			continue;
		case 0x66:
			in->opsize = true;
			continue;
		case 0x67:
			in->addr32 = true;
			continue;
		case 0xf0:
			in->lock = true;
			continue;
		case 0xf2:
		case 0xf3:
			in->rep = b[i];
			continue;
		}
		break;
	}
	if (!in->mode32 && i < n && (b[i] & 0xf0) == 0x40)
		in->rex = b[i++];
	return i;
}

/* ModRM at b[i], then the SIB and displacement it calls for (tables 2-2
 * and 2-3). Sets in->len, or returns -EINVAL when the bytes run out. */
static int decode_modrm(const uint8_t *b, size_t n, size_t i, struct x86_insn *in)
{
	uint8_t modrm, sib;
	uint32_t d;

	if (i >= n)
		return -EINVAL;
	modrm = b[i++];
	in->has_modrm = true;
	in->mod = modrm >> 6;
	in->reg = (uint8_t)(((modrm >> 3) & 7) | ((in->rex & 4) << 1));
	in->rm = (uint8_t)((modrm & 7) | ((in->rex & 1) << 3));
	if (in->mod != 3 && (modrm & 7) == 4) {
		if (i >= n)
			return -EINVAL;
		sib = b[i++];
		in->has_sib = true;
		in->scale = sib >> 6;
		in->index = (uint8_t)(((sib >> 3) & 7) | ((in->rex & 2) << 2));
		in->base = (uint8_t)((sib & 7) | ((in->rex & 1) << 3));
		if ((sib & 7) == 5 && in->mod == 0)
			in->no_base = true;
	}
	if (in->mod == 0 && (modrm & 7) == 5) {
		/* RIP-relative in 64-bit mode, an absolute disp32 otherwise */
		if (in->mode32)
			in->no_base = true;
		else
			in->rip_relative = true;
	}
	if (in->mod == 1) {
		if (i >= n)
			return -EINVAL;
		in->disp = (int8_t)b[i++];
	} else if (in->mod == 2 || in->rip_relative || in->no_base) {
		if (i + 4 > n)
			return -EINVAL;
		memcpy(&d, b + i, 4);
		in->disp = (int32_t)d;
		i += 4;
	}
	in->len = i;
	return 0;
}

static int decode_0f_modrm(const uint8_t *b, size_t n, bool mode32, struct x86_insn *in)
{
	size_t i;

	memset(in, 0, sizeof(*in));
	in->mode32 = mode32;
	if (n > X86_MAX_INSN)
		n = X86_MAX_INSN;
	i = decode_prefixes(b, n, in);
	if (i + 2 > n || b[i] != 0x0f || (mode32 && in->addr32))
		return -EINVAL;
	in->opcode[0] = 0x0f;
	in->opcode[1] = b[i + 1];
	in->opcode_len = 2;
	return decode_modrm(b, n, i + 2, in);
}

int x86_decode_0f_modrm(const uint8_t *b, size_t n, struct x86_insn *in)
{
	return decode_0f_modrm(b, n, false, in);
}

int x86_decode_0f_modrm32(const uint8_t *b, size_t n, struct x86_insn *in)
{
	return decode_0f_modrm(b, n, true, in);
}

uint64_t x86_operand_addr(const struct x86_insn *in, const uint64_t gpr[16], uint64_t rip,
			  uint64_t fs_base, uint64_t gs_base)
{
	uint64_t a;

	if (in->rip_relative) {
		/* Relative to the next instruction (2.2.1.6). */
		a = rip + in->len + (uint64_t)(int64_t)in->disp;
	} else {
		a = in->no_base ? 0 : gpr[in->has_sib ? in->base : in->rm];
		/* Index 100b (without REX.X) means no index. */
		if (in->has_sib && in->index != 4)
			a += gpr[in->index] << in->scale;
		a += (uint64_t)(int64_t)in->disp;
	}
	if (in->addr32 || in->mode32)
		a &= 0xffffffffULL;
	if (in->mode32)
		return a;
	if (in->seg == X86_SEG_FS)
		a += fs_base;
	else if (in->seg == X86_SEG_GS)
		a += gs_base;
	return a;
}

enum x86_seg x86_operand_seg(const struct x86_insn *in)
{
	uint8_t base = in->has_sib ? in->base : in->rm;

	if (in->seg != X86_SEG_DEFAULT)
		return in->seg;
	return !in->no_base && (base == 4 || base == 5) ? X86_SEG_SS : X86_SEG_DS;
}
