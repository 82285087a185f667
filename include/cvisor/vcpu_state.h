/* vcpu_state.h - the architectural state of a vCPU and of the VM's
 * in-kernel devices (irqchip, PIT, kvmclock), saved and loaded as explicit
 * little-endian fields for snapshots and live migration. */
#ifndef CVISOR_VCPU_STATE_H
#define CVISOR_VCPU_STATE_H

#include "cvisor/state.h"
#include "cvisor/util.h"

struct vcpu;
struct vm;

/* Save one vCPU. The vCPU must be out of KVM_RUN (paused) with any I/O it
 * exited for completed. Order, as the KVM selftests and Firecracker do:
 * MP state, REGS, SREGS, XSAVE, XCRS, LAPIC, MSRs, VCPU_EVENTS, DEBUGREGS. */
int vcpu_state_save(struct vcpu *vcpu, struct state_buf *out) CV_MUST;

/* Load into a freshly set-up vCPU (CPUID already set), in the order KVM
 * needs: REGS before VCPU_EVENTS, LAPIC after SREGS and before MSRs.
 * Validates every field it reads; -EINVAL on anything malformed. */
int vcpu_state_load(struct vcpu *vcpu, struct state_rd *in) CV_MUST;

/* The VM-wide in-kernel state: PIC, IOAPIC, PIT, kvmclock. Saving stops
 * kvmclock's view at this instant; loading sets the clock so that guest
 * time continues from it. */
int vm_kstate_save(struct vm *vm, struct state_buf *out) CV_MUST;
int vm_kstate_load(struct vm *vm, struct state_rd *in) CV_MUST;

#endif
