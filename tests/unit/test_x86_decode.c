/* test_x86_decode.c - prefixes, ModRM/SIB forms and operand addresses of
 * the instructions cvisor completes for an emulating host. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/x86_decode.h"

static const uint64_t gpr[16] = { 0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000, 0x7000, 0x8000,
				  0x9000, 0xa000, 0xb000, 0xc000, 0xd000, 0xe000, 0xf000, 0x10000 };

static uint64_t addr_of(const uint8_t *b, size_t n, size_t want_len)
{
	struct x86_insn in;

	assert_int_equal(x86_decode_0f_modrm(b, n, &in), 0);
	assert_int_equal(in.len, want_len);
	return x86_operand_addr(&in, gpr, 0x100000, 0x111000000, 0x222000000);
}

static void test_forms(void **state)
{
	(void)state;
	/* ldmxcsr 0x4(%rsp): 0f ae 54 24 04 (the Debian kernel's) */
	static const uint8_t sib_disp8[] = { 0x0f, 0xae, 0x54, 0x24, 0x04 };
	/* stmxcsr (%rax): 0f ae 18 */
	static const uint8_t plain[] = { 0x0f, 0xae, 0x18 };
	/* ldmxcsr 0x10(%rip): 0f ae 15 10 00 00 00 */
	static const uint8_t riprel[] = { 0x0f, 0xae, 0x15, 0x10, 0x00, 0x00, 0x00 };
	/* ldmxcsr -0x8(%r13,%r9,4): 43 0f ae 54 8d f8 */
	static const uint8_t rex_sib[] = { 0x43, 0x0f, 0xae, 0x54, 0x8d, 0xf8 };
	/* stmxcsr %gs:0x1234 (disp32, no base): 65 0f ae 1c 25 34 12 00 00 */
	static const uint8_t gs_abs[] = { 0x65, 0x0f, 0xae, 0x1c, 0x25, 0x34, 0x12, 0x00, 0x00 };
	/* fxsave64 0x100(%rbx): 48 0f ae 83 00 01 00 00 */
	static const uint8_t disp32[] = { 0x48, 0x0f, 0xae, 0x83, 0x00, 0x01, 0x00, 0x00 };
	/* ldmxcsr (%r12) needs a SIB with index none: 41 0f ae 14 24 */
	static const uint8_t r12[] = { 0x41, 0x0f, 0xae, 0x14, 0x24 };
	/* 32-bit address size: 67 0f ae 10 with eax */
	static const uint8_t a32[] = { 0x67, 0x0f, 0xae, 0x10 };

	assert_int_equal(addr_of(sib_disp8, sizeof(sib_disp8), 5), 0x5000 + 4);
	assert_int_equal(addr_of(plain, sizeof(plain), 3), 0x1000);
	assert_int_equal(addr_of(riprel, sizeof(riprel), 7), 0x100000 + 7 + 0x10);
	assert_int_equal(addr_of(rex_sib, sizeof(rex_sib), 6), 0xe000 + 0xa000 * 4 - 8);
	assert_int_equal(addr_of(gs_abs, sizeof(gs_abs), 9), 0x222000000 + 0x1234);
	assert_int_equal(addr_of(disp32, sizeof(disp32), 8), 0x4000 + 0x100);
	assert_int_equal(addr_of(r12, sizeof(r12), 5), 0xd000);
	assert_int_equal(addr_of(a32, sizeof(a32), 4), 0x1000);
}

static void test_fields(void **state)
{
	static const uint8_t mfence[] = { 0x0f, 0xae, 0xf0 };
	static const uint8_t rdfsbase[] = { 0xf3, 0x48, 0x0f, 0xae, 0xc1 }; /* rdfsbase %rcx */
	struct x86_insn in;

	(void)state;
	assert_int_equal(x86_decode_0f_modrm(mfence, sizeof(mfence), &in), 0);
	assert_int_equal(in.mod, 3);
	assert_int_equal(in.reg, 6);
	assert_int_equal(x86_decode_0f_modrm(rdfsbase, sizeof(rdfsbase), &in), 0);
	assert_int_equal(in.rep, 0xf3);
	assert_int_equal(in.rex, 0x48);
	assert_int_equal(in.reg, 0);
	assert_int_equal(in.rm, 1);
}

static void test_bad(void **state)
{
	static const uint8_t not0f[] = { 0x90, 0x90, 0x90 };
	static const uint8_t rex_not_last[] = { 0x48, 0x66, 0x0f, 0xae, 0x10 };
	static const uint8_t full[] = { 0x0f, 0xae, 0x94, 0x24, 0x00, 0x01, 0x00, 0x00 };
	uint8_t prefixes[20];
	struct x86_insn in;

	(void)state;
	assert_int_equal(x86_decode_0f_modrm(not0f, sizeof(not0f), &in), -EINVAL);
	assert_int_equal(x86_decode_0f_modrm(rex_not_last, sizeof(rex_not_last), &in), -EINVAL);
	/* every truncation of a valid 8-byte form is refused */
	for (size_t n = 0; n < sizeof(full); n++)
		assert_int_equal(x86_decode_0f_modrm(full, n, &in), -EINVAL);
	assert_int_equal(x86_decode_0f_modrm(full, sizeof(full), &in), 0);
	/* more than 15 bytes of prefixes is not an instruction */
	memset(prefixes, 0x66, sizeof(prefixes));
	assert_int_equal(x86_decode_0f_modrm(prefixes, sizeof(prefixes), &in), -EINVAL);
}

/* 32-bit protected-mode code: the offset within the segment and the
 * segment (override, SS for ESP/EBP bases, else DS). */
static uint64_t addr32_of(const uint8_t *b, size_t n, size_t want_len, enum x86_seg want_seg)
{
	struct x86_insn in;

	assert_int_equal(x86_decode_0f_modrm32(b, n, &in), 0);
	assert_int_equal(in.len, want_len);
	assert_int_equal(x86_operand_seg(&in), want_seg);
	return x86_operand_addr(&in, gpr, 0x100000, 0x111000000, 0x222000000);
}

static void test_forms32(void **state)
{
	/* stmxcsr 0x12345678: 0f ae 1d disp32 (absolute, not RIP-relative) */
	static const uint8_t abs32[] = { 0x0f, 0xae, 0x1d, 0x78, 0x56, 0x34, 0x12 };
	/* stmxcsr (%esp): 0f ae 1c 24 */
	static const uint8_t esp[] = { 0x0f, 0xae, 0x1c, 0x24 };
	/* ldmxcsr 0x8(%ebp): 0f ae 55 08 */
	static const uint8_t ebp[] = { 0x0f, 0xae, 0x55, 0x08 };
	/* ldmxcsr %es:(%eax): 26 0f ae 10 */
	static const uint8_t es_eax[] = { 0x26, 0x0f, 0xae, 0x10 };
	/* ldmxcsr -0x1001(%eax): wraps below 0 within 32 bits */
	static const uint8_t wrap[] = { 0x0f, 0xae, 0x90, 0xff, 0xef, 0xff, 0xff };
	/* a 40-4f byte is inc/dec here, not REX: not a 0F instruction */
	static const uint8_t not_rex[] = { 0x41, 0x0f, 0xae, 0x10 };
	/* 16-bit addressing is not decoded */
	static const uint8_t a16[] = { 0x67, 0x0f, 0xae, 0x10 };
	struct x86_insn in;

	(void)state;
	assert_int_equal(addr32_of(abs32, sizeof(abs32), 7, X86_SEG_DS), 0x12345678);
	assert_int_equal(addr32_of(esp, sizeof(esp), 4, X86_SEG_SS), 0x5000);
	assert_int_equal(addr32_of(ebp, sizeof(ebp), 4, X86_SEG_SS), 0x6000 + 8);
	assert_int_equal(addr32_of(es_eax, sizeof(es_eax), 4, X86_SEG_ES), 0x1000);
	assert_int_equal(addr32_of(wrap, sizeof(wrap), 7, X86_SEG_DS), 0xffffffffULL);
	assert_int_equal(x86_decode_0f_modrm32(not_rex, sizeof(not_rex), &in), -EINVAL);
	assert_int_equal(x86_decode_0f_modrm32(a16, sizeof(a16), &in), -EINVAL);
	/* the same bytes in 64-bit mode: REX.B and RIP-relative */
	assert_int_equal(x86_decode_0f_modrm(not_rex, sizeof(not_rex), &in), 0);
	assert_int_equal(x86_decode_0f_modrm(abs32, sizeof(abs32), &in), 0);
	assert_true(in.rip_relative);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_forms32),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
