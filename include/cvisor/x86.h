/* x86.h - per-vCPU x86 setup (CPUID, MSRs, registers) and the completion of
 * instructions a host refuses to emulate. */
#ifndef CVISOR_X86_H
#define CVISOR_X86_H

#include <stdbool.h>
#include <stdint.h>

#include "cvisor/boot.h"
#include "cvisor/config.h"
#include "cvisor/util.h"

struct vm;
struct vcpu;
struct kvm_cpuid2;

/* Who a CPUID table is for: a guest that boots here, or one that was
 * saved or migrated with its own table (whose kernel already chose its
 * code by it; see QUIRK_SIMD_* in cpu.c). */
enum cpuid_for {
	CPUID_BOOT,
	CPUID_RESUME,
};

/* Read KVM_GET_SUPPORTED_CPUID into vm->cpuid and mask what the guest must
 * not use (see x86_quirk_cmdline): x86_cpuid_supported with the VM's
 * quirks, for use (CPUID_RESUME for a restored guest, whose saved table
 * check_cpu compares with this one). */
int x86_cpuid_init(struct vm *vm, enum cpuid_for use) CV_MUST;

/* The CPUID table this host gives a guest, before per-vCPU topology: KVM's
 * supported CPUID on kvm_fd (/dev/kvm), with the features an emulating
 * host cannot run masked when quirks is set (and, for CPUID_BOOT, those
 * that make Linux pick kernel-mode SIMD code). *out is malloc'd. 0 or
 * -errno. */
int x86_cpuid_supported(int kvm_fd, bool quirks, enum cpuid_for use,
			struct kvm_cpuid2 **out) CV_MUST;

/* Whether a VM of that --emulated-host mode works around an emulating host
 * (on, or auto on such a host): vm->quirks.active. */
bool x86_quirks_wanted(enum config_quirks mode);

/* Give one vCPU its CPUID (topology, APIC id), MSRs, FPU and LAPIC setup.
 * The boot vCPU also gets the entry registers, unless entry is NULL (a
 * vCPU whose state is loaded from a snapshot). */
int x86_vcpu_setup(struct vcpu *vcpu, const struct boot_entry *entry) CV_MUST;

/* Set one vCPU's CPUID from vm->cpuid plus its topology (APIC id = index).
 * Part of x86_vcpu_setup; called again when a snapshot brings its own
 * CPUID table (before the vCPU first runs). */
int x86_vcpu_set_cpuid(struct vcpu *vcpu) CV_MUST;

/* Kernel command-line words that keep a Linux guest off the instructions an
 * emulating host (PVM) cannot run; "" when not needed. */
const char *x86_quirk_cmdline(void);

/* True if /dev/kvm emulates guest code rather than running it on VT-x or
 * AMD-V (the kvm_pvm module). */
bool x86_host_emulates(void);

enum x86_emul_result {
	X86_EMUL_DONE,	 /* completed or reflected: run the vCPU again */
	X86_EMUL_FAILED, /* not handled: the message says which instruction */
};

/* Handle a KVM_EXIT_INTERNAL_ERROR with suberror EMULATION: complete the
 * instruction in user space or reflect it into the guest as the CPU would.
 * On failure writes "instruction <bytes> at RIP <rip>" into msg. */
enum x86_emul_result x86_emulate_refused(struct vcpu *vcpu, char *msg, size_t msglen);

/* A 64-bit linear address with bits 63..47 all equal (SDM 3.3.7.1). */
static inline bool x86_canonical(uint64_t v)
{
	return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}
#endif
