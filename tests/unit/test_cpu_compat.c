/* test_cpu_compat.c - the one CPU compatibility check (src/kvm/x86/
 * cpu_compat.c) that a snapshot restore and a migration target run: the
 * model read from a CPUID table, and every kind of gap between a guest's
 * CPU and a host's (vendor, a missing vendor leaf, a missing feature bit
 * in each register compared), while what is not a feature (leaf 1 ebx,
 * the signature, leaves not compared) never refuses a host. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <linux/kvm.h>

#include "cvisor/cpu_compat.h"

#define MAX_ENT 16

struct table {
	struct kvm_cpuid2 hdr;
	struct kvm_cpuid_entry2 e[MAX_ENT];
};

static void add(struct table *t, uint32_t fn, uint32_t index, uint32_t eax, uint32_t ebx,
		uint32_t ecx, uint32_t edx)
{
	assert_true(t->hdr.nent < MAX_ENT);
	t->e[t->hdr.nent++] = (struct kvm_cpuid_entry2){
		.function = fn, .index = index, .eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx
	};
}

/* An Intel-like table: "GenuineIntel" is ebx "Genu", edx "ineI", ecx "ntel". */
static void intel(struct table *t)
{
	memset(t, 0, sizeof(*t));
	add(t, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69);
	add(t, 1, 0, 0x906ea, 0x00010800, 0xfeda3203, 0x178bfbff);
	add(t, 7, 0, 0, 0x029c67af, 0x00000004, 0xbc000400);
	add(t, 7, 1, 0, 0, 0, 0);
	add(t, 0xd, 0, 0x7, 0x340, 0x340, 0);
	add(t, 0xd, 1, 0xf, 0, 0, 0);
	add(t, 0x80000001, 0, 0, 0, 0x121, 0x2c100800);
}

static void test_model_from_cpuid(void **state)
{
	struct table t;
	struct cpu_model m;

	(void)state;
	intel(&t);
	add(&t, 1, 0, 0, 0, 0xffffffff, 0xffffffff); /* a second leaf 1: ignored */
	cpu_model_from_cpuid(&t.hdr, &m);
	assert_true(m.has_vendor);
	assert_string_equal(m.vendor, "GenuineIntel");
	assert_int_equal(m.signature, 0x906ea);
	assert_int_equal(m.f1_ecx, 0xfeda3203);
	assert_int_equal(m.f1_edx, 0x178bfbff);
	assert_int_equal(m.f7_ebx, 0x029c67af); /* 7.0, not 7.1 */
	assert_int_equal(m.f7_ecx, 0x4);
	assert_int_equal(m.f7_edx, 0xbc000400);
	assert_int_equal(m.xsave0_eax, 0x7);
	assert_int_equal(m.xsave0_edx, 0);
	assert_int_equal(m.xsave1_eax, 0xf);
	assert_int_equal(m.e1_ecx, 0x121);
	assert_int_equal(m.e1_edx, 0x2c100800);
	/* No table, or one without leaf 0: no vendor, no features. */
	cpu_model_from_cpuid(NULL, &m);
	assert_false(m.has_vendor);
	assert_int_equal(m.f1_ecx, 0);
}

static void test_same_and_subset(void **state)
{
	struct table t;
	struct cpu_model guest, host;
	struct cpu_gap gap;

	(void)state;
	intel(&t);
	cpu_model_from_cpuid(&t.hdr, &guest);
	host = guest;
	assert_int_equal(cpu_compat_check(&guest, &host, &gap), 0);
	/* A host with more features, another model and APIC id: fine. */
	t.e[1].eax = 0xa0671;
	t.e[1].ebx = 0x07010800;
	t.e[1].ecx |= 1U << 30;
	t.e[2].ecx |= 1U << 8;
	add(&t, 0x80000008, 0, 0x3027, 0, 0, 0);
	cpu_model_from_cpuid(&t.hdr, &host);
	assert_int_equal(cpu_compat_check(&guest, &host, &gap), 0);
}

static void test_vendor(void **state)
{
	struct cpu_model guest = { .has_vendor = true }, host = { .has_vendor = true };
	struct cpu_gap gap;

	(void)state;
	memcpy(guest.vendor, "GenuineIntel", 13);
	memcpy(host.vendor, "AuthenticAMD", 13);
	assert_int_equal(cpu_compat_check(&guest, &host, &gap), -EINVAL);
	assert_int_equal(gap.kind, CPU_GAP_VENDOR);
	assert_string_equal(gap.guest_vendor, "GenuineIntel");
	assert_string_equal(gap.host_vendor, "AuthenticAMD");
	/* The vendor decides before any feature, and is shown printable. */
	memcpy(host.vendor, "Genuine\x01ntel", 13);
	guest.f1_ecx = 1;
	assert_int_equal(cpu_compat_check(&guest, &host, &gap), -EINVAL);
	assert_int_equal(gap.kind, CPU_GAP_VENDOR);
	assert_string_equal(gap.host_vendor, "Genuine?ntel");
	/* Either side without the vendor leaf. */
	memcpy(host.vendor, "GenuineIntel", 13);
	host.has_vendor = false;
	assert_int_equal(cpu_compat_check(&guest, &host, &gap), -EINVAL);
	assert_int_equal(gap.kind, CPU_GAP_NO_VENDOR);
	host.has_vendor = true;
	guest.has_vendor = false;
	assert_int_equal(cpu_compat_check(&guest, &host, &gap), -EINVAL);
	assert_int_equal(gap.kind, CPU_GAP_NO_VENDOR);
}

/* Each register compared: a bit the guest has and the host lacks is
 * named by its leaf, subleaf and register; the first one found counts. */
static void test_every_feature_register(void **state)
{
	static const struct {
		size_t off;
		uint32_t fn, index;
		const char *reg;
	} regs[] = {
		{ offsetof(struct cpu_model, f1_ecx), 1, 0, "ecx" },
		{ offsetof(struct cpu_model, f1_edx), 1, 0, "edx" },
		{ offsetof(struct cpu_model, f7_ebx), 7, 0, "ebx" },
		{ offsetof(struct cpu_model, f7_ecx), 7, 0, "ecx" },
		{ offsetof(struct cpu_model, f7_edx), 7, 0, "edx" },
		{ offsetof(struct cpu_model, xsave0_eax), 0xd, 0, "eax" },
		{ offsetof(struct cpu_model, xsave0_edx), 0xd, 0, "edx" },
		{ offsetof(struct cpu_model, xsave1_eax), 0xd, 1, "eax" },
		{ offsetof(struct cpu_model, e1_ecx), 0x80000001, 0, "ecx" },
		{ offsetof(struct cpu_model, e1_edx), 0x80000001, 0, "edx" },
	};
	struct cpu_model guest = { .has_vendor = true }, host = { .has_vendor = true };
	struct cpu_gap gap;

	(void)state;
	memcpy(guest.vendor, "AuthenticAMD", 13);
	memcpy(host.vendor, "AuthenticAMD", 13);
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		uint32_t *g = (uint32_t *)(void *)((char *)&guest + regs[i].off);
		uint32_t *h = (uint32_t *)(void *)((char *)&host + regs[i].off);

		*g = 0x30, *h = 0x10;
		assert_int_equal(cpu_compat_check(&guest, &host, &gap), -EINVAL);
		assert_int_equal(gap.kind, CPU_GAP_FEATURES);
		assert_int_equal(gap.fn, regs[i].fn);
		assert_int_equal(gap.index, regs[i].index);
		assert_string_equal(gap.reg, regs[i].reg);
		assert_int_equal(gap.missing, 0x20);
		*h = 0x30; /* now the host has it: on to the next register */
	}
	assert_int_equal(cpu_compat_check(&guest, &host, &gap), 0);
	/* The signature is not compared. */
	guest.signature = 0x906ea;
	assert_int_equal(cpu_compat_check(&guest, &host, &gap), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_from_cpuid),
		cmocka_unit_test(test_same_and_subset),
		cmocka_unit_test(test_vendor),
		cmocka_unit_test(test_every_feature_register),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
