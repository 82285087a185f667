/* syscall_shim.h - guest system calls on a host that emulates guest kernel
 * code (PVM), where a ring-3 `syscall` jumps to LSTAR without leaving ring 3.
 *
 * The monitor points the vCPU's LSTAR at a user-accessible shim page whose
 * one store exits to the monitor; there the vCPU is moved to the guest
 * kernel's real LSTAR at CPL 0, as the CPU would have done. The design, its
 * cost and what the guest sees are at the top of src/kvm/x86/syscall_shim.c.
 * Never active on VT-x or AMD-V hosts. */
#ifndef CVISOR_SYSCALL_SHIM_H
#define CVISOR_SYSCALL_SHIM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvisor/util.h"

struct vm;
struct vcpu;

/* Guest-physical pages the shim owns when it is on: E820-reserved below
 * the EBDA (page-table pages for the slot, then the shim's code page). */
#define SYSCALL_SHIM_GPA 0x9b000ULL
#define SYSCALL_SHIM_LEN 0x4000ULL
/* The trap page: no memslot and no device behind it, so the shim's store
 * exits as KVM_EXIT_MMIO. */
#define SYSCALL_SHIM_TRAP_GPA 0xfe800000ULL
/* Top-level page-table slot 509 (0xfffffe8000000000), a hole in Linux's
 * 4-level layout between the CPU entry area and the ESPFIX stacks. */
#define SYSCALL_SHIM_SLOT 509
#define SYSCALL_SHIM_VA 0xfffffe8000000000ULL

/* The VM's side. `on`: this VM runs the shim (emulating host); `area`: the
 * guest's E820 reserves the shim pages (set at boot, or by a snapshot). */
struct syscall_shim {
	bool on;
	bool area;
	bool sync_regs;		 /* KVM_CAP_SYNC_REGS: the trap needs no ioctl */
	pthread_mutex_t lock;	 /* the shim's pages and the slot, while arming */
	_Atomic uint32_t logged; /* one bit per message logged once */
};

/* One vCPU's side: the guest's LSTAR and STAR as it wrote them (KVM holds
 * the shim's address instead of LSTAR once armed). */
struct syscall_shim_vcpu {
	uint64_t lstar;
	uint64_t star;
	bool armed;
};

/* Turn the shim on for a new VM (before any vCPU exists): route the guest's
 * RDMSR/WRMSR of LSTAR and WRMSR of STAR to user space, and make a stray
 * `vmcall` a #UD instead of a hang. -errno (with one line printed) when
 * the host lacks what the shim needs. */
int syscall_shim_init(struct vm *vm) CV_MUST;

/* Per-vCPU setup before its first KVM_RUN (KVM_CAP_SYNC_REGS). */
void syscall_shim_vcpu_init(struct vcpu *vcpu);

/* KVM_EXIT_MMIO: true if this exit was the shim's trap (handled: the vCPU
 * continues at the kernel's entry point or, for a user process that jumped
 * into the shim, at its ud2); false for any other MMIO access. */
bool syscall_shim_mmio(struct vcpu *vcpu);

/* KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR (only the filtered MSRs exit). */
void syscall_shim_msr(struct vcpu *vcpu, bool write);

/* The value of MSR `index` for the guest's saved state: the guest's own
 * LSTAR instead of the shim's address; anything else unchanged. */
uint64_t syscall_shim_saved_msr(const struct vcpu *vcpu, uint32_t index, uint64_t value);

/* After a vCPU's state was loaded (restore, migration target): take the
 * loaded LSTAR and STAR as the guest's and arm the shim again. */
int syscall_shim_vcpu_loaded(struct vcpu *vcpu) CV_MUST;

#endif
