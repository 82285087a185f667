/* emulate_priv.h - what the completions of refused instructions share
 * (src/kvm/x86/emulate.c, intr.c): guest-linear memory access and
 * exception reflection. */
#ifndef CVISOR_EMULATE_PRIV_H
#define CVISOR_EMULATE_PRIV_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vcpu;

#define VEC_BP 3
#define VEC_UD 6
#define VEC_NM 7
#define VEC_NP 11
#define VEC_SS 12
#define VEC_GP 13
#define VEC_PF 14
#define VEC_MF 16

/* Reflect exception vector into the guest at its next entry, with an
 * error code when has_code (#GP, #PF, #NP, #SS). 0 or -errno. */
int x86_inject_exception(struct vcpu *vcpu, uint8_t vector, bool has_code, uint32_t code);

/* Read or write guest-linear memory page by page through the guest's page
 * tables. A page that is not mapped (or not writable for a write) gets a
 * #PF reflected with CR2 set, as the CPU would raise; returns 1 then.
 * Otherwise 0, or -errno (-EFAULT: the page is not RAM). */
int x86_linear_rw(struct vcpu *vcpu, struct kvm_sregs *sregs, uint64_t la, void *buf, size_t len,
		  bool write);

/* Complete an iret outside 64-bit mode (opcode cf, with or without 66):
 * real mode, and protected mode to the same or an outer privilege level
 * (SDM vol. 2A, IRET). regs and sregs are the vCPU's, b/n the instruction
 * bytes at RIP. 0 when completed or an exception was reflected; -ENOTSUP
 * with msg filled for what is not done here (a task return through NT,
 * virtual-8086 mode, a 16-bit stack in protected mode, IA-32e mode);
 * else -errno. */
int x86_complete_iret(struct vcpu *vcpu, struct kvm_regs *regs, struct kvm_sregs *sregs,
		      const uint8_t *b, size_t n, char *msg, size_t msglen);

/* Complete int n (cd nn) of a guest kernel: #GP if the gate's DPL is
 * below the CPL, else the interrupt delivered through the guest's IDT
 * with the next instruction as the return address. 0 or -errno. */
int x86_complete_int_n(struct vcpu *vcpu, struct kvm_regs *regs, struct kvm_sregs *sregs,
		       uint8_t vector);

#endif
