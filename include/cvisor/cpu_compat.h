/* cpu_compat.h - can this host run a guest that was given some CPU? The one
 * check (src/kvm/x86/cpu_compat.c) that a snapshot restore runs on the
 * MACHINE section and a migration target runs at the handshake, against
 * what this host offers (x86_cpuid_supported): the same vendor, and every
 * feature bit the guest may use. The callers word the answer. */
#ifndef CVISOR_CPU_COMPAT_H
#define CVISOR_CPU_COMPAT_H

#include <stdbool.h>
#include <stdint.h>

#include "cvisor/util.h"

struct kvm_cpuid2;

/* A CPU as far as compatibility goes: its vendor and the feature registers
 * of the CPUID leaves a guest may rely on (a leaf the table lacks reads as
 * zeros: no feature). */
struct cpu_model {
	bool has_vendor;		 /* the table had leaf 0 */
	char vendor[13];		 /* leaf 0 ebx, edx, ecx, NUL-terminated */
	uint32_t signature;		 /* leaf 1 eax: family, model (not compared) */
	uint32_t f1_ecx, f1_edx;	 /* leaf 1 */
	uint32_t f7_ebx, f7_ecx, f7_edx; /* leaf 7.0 */
	uint32_t xsave0_eax, xsave0_edx; /* leaf 0xd.0: XSAVE state components */
	uint32_t xsave1_eax;		 /* leaf 0xd.1: XSAVEOPT, XSAVEC, XSAVES... */
	uint32_t e1_ecx, e1_edx;	 /* leaf 0x80000001 */
};

/* The model of a CPUID table (NULL: all zeros, no vendor). Where the table
 * holds a leaf twice, the first entry counts. */
void cpu_model_from_cpuid(const struct kvm_cpuid2 *c, struct cpu_model *m);

/* The CPU this host gives a guest: KVM's supported CPUID with, when
 * emulated (x86_quirks_wanted), the features an emulating host masks.
 * Opens /dev/kvm. 0 or -errno. */
int cpu_model_host(bool emulated, struct cpu_model *m) CV_MUST;

/* What keeps a guest off a host. */
struct cpu_gap {
	enum {
		CPU_GAP_NO_VENDOR, /* either side lacks the vendor leaf */
		CPU_GAP_VENDOR,	   /* another vendor */
		CPU_GAP_FEATURES,  /* a feature the host lacks */
	} kind;
	char guest_vendor[13], host_vendor[13]; /* printable ('?' for others) */
	uint32_t fn, index;			/* the CPUID leaf of the features... */
	const char *reg;			/* ...its register ("ecx")... */
	uint32_t missing;			/* ...and the bits the host lacks */
};

/* Can a host of model host run a guest given model guest? 0, or -EINVAL
 * with the first gap found in *gap (vendor first, then the leaves in the
 * order of struct cpu_model). Pure. */
int cpu_compat_check(const struct cpu_model *guest, const struct cpu_model *host,
		     struct cpu_gap *gap) CV_MUST;

#endif
