/* x86_decode.h - just enough x86 instruction decoding to complete the
 * instructions an emulating host refuses: legacy and REX prefixes, a 0F
 * opcode, and a ModRM/SIB memory operand (SDM vol. 2, chapter 2), in
 * 64-bit mode and in 32-bit protected mode (32-bit addressing). Pure:
 * unit-tested and fuzzed. */
#ifndef CVISOR_X86_DECODE_H
#define CVISOR_X86_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/util.h"

enum x86_seg {
	X86_SEG_DEFAULT,
	X86_SEG_FS,
	X86_SEG_GS,
	/* overrides that count outside 64-bit mode only */
	X86_SEG_ES,
	X86_SEG_CS,
	X86_SEG_SS,
	X86_SEG_DS,
};

struct x86_insn {
	bool mode32; /* decoded as 32-bit protected-mode code */
	size_t len;  /* whole instruction */
	uint8_t rex; /* 0 when absent */
	bool opsize; /* 0x66 */
	bool addr32; /* 0x67 */
	bool lock;   /* 0xf0 */
	uint8_t rep; /* 0xf2 / 0xf3, or 0 */
	enum x86_seg seg;
	uint8_t opcode[3];
	unsigned int opcode_len;
	bool has_modrm;
	uint8_t mod, reg, rm; /* reg and rm with REX.R / REX.B applied */
	bool has_sib;
	uint8_t scale, index, base; /* index/base with REX.X / REX.B; index 4 = none */
	bool rip_relative;
	bool no_base; /* SIB base 101 with mod 00: disp32 only */
	int32_t disp;
};

/* Decode a 64-bit-mode instruction whose opcode is 0F xx followed by a
 * ModRM byte (the forms cvisor completes). Returns 0, or -EINVAL if the
 * bytes are not such an instruction or are truncated (n bytes given). */
int x86_decode_0f_modrm(const uint8_t *b, size_t n, struct x86_insn *in) CV_MUST;

/* The same for code in 32-bit protected mode (CS.D set): no REX (40-4f are
 * opcodes there), ES/CS/SS/DS overrides, mod 00 r/m 101 an absolute
 * disp32. 16-bit addressing (a 67 prefix) is refused with -EINVAL. */
int x86_decode_0f_modrm32(const uint8_t *b, size_t n, struct x86_insn *in) CV_MUST;

/* The linear address of the memory operand. gpr[] holds RAX..R15 in
 * encoding order, rip the address of the instruction, fs/gs_base the
 * segment bases. Requires mod != 3. For an instruction decoded as 32-bit
 * code, the 32-bit offset within the segment x86_operand_seg names (the
 * caller adds its base and checks its limit). */
uint64_t x86_operand_addr(const struct x86_insn *in, const uint64_t gpr[16], uint64_t rip,
			  uint64_t fs_base, uint64_t gs_base);

/* The segment of a 32-bit instruction's memory operand: its override, else
 * SS when the base register is ESP or EBP, else DS. */
enum x86_seg x86_operand_seg(const struct x86_insn *in);

#endif
