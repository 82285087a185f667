/* emulate.c - instructions an emulating host (PVM) refuses.
 *
 * Such a host runs an unmodified guest kernel through KVM's instruction
 * emulator, which gives up on some instructions with
 * KVM_EXIT_INTERNAL_ERROR / KVM_INTERNAL_ERROR_EMULATION. cvisor completes
 * them here, or reflects them into the guest the way the CPU would, so the
 * guest goes on. On VT-x and AMD-V hosts these exits do not happen. */
#include "cvisor/x86.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cvisor/kvm.h"
#include "cvisor/vm.h"

#define RFLAGS_AC (1ULL << 18)
#define VEC_BP 3
#define VEC_UD 6
#define VEC_NM 7
#define VEC_MF 16
#define CR0_MP (1ULL << 1)
#define CR0_TS (1ULL << 3)
#define FSW_ES (1U << 7)

enum refused_kind {
	REFUSED_INT3,
	REFUSED_CLAC,
	REFUSED_STAC,
	REFUSED_UD2,
	REFUSED_CPL3_SMAP,
	REFUSED_FWAIT,
};

static const char *const refused_what[] = {
	[REFUSED_INT3] = "int3: reflected as #BP",
	[REFUSED_CLAC] = "clac: completed (RFLAGS.AC cleared)",
	[REFUSED_STAC] = "stac: completed (RFLAGS.AC set)",
	[REFUSED_UD2] = "ud2: reflected as #UD",
	[REFUSED_CPL3_SMAP] = "clac/stac in user mode: reflected as #UD",
	[REFUSED_FWAIT] = "fwait: completed",
};

static void log_once(struct vm *vm, enum refused_kind k)
{
	uint32_t bit = 1U << k;

	if (!(atomic_fetch_or(&vm->quirks.logged, bit) & bit))
		cv_warn("the host refused a guest instruction, %s (logged once)", refused_what[k]);
}

/* Fetch up to 15 bytes at the faulting RIP: from the exit when the kernel
 * supplies them, else through the guest's page tables (KVM_TRANSLATE). */
static size_t fetch_insn(struct vcpu *vcpu, uint64_t rip, uint64_t cs_base, uint8_t *buf)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_translation tr = { .linear_address = cs_base + rip };
	size_t n = 0;

	if (run->emulation_failure.ndata >= 3 &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		n = run->emulation_failure.insn_size;
		if (n > 15)
			n = 15;
		memcpy(buf, run->emulation_failure.insn_bytes, n);
		if (n)
			return n;
	}
	/* Byte by byte: the instruction may cross a page boundary. */
	for (n = 0; n < 15; n++) {
		const uint8_t *p;

		tr.linear_address = cs_base + rip + n;
		if (kvm_ioctl(vcpu->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
			break;
		p = guest_mem_ptr(&vcpu->vm->mem, tr.physical_address, 1);
		if (!p)
			break;
		buf[n] = *p;
	}
	return n;
}

static int inject_exception(struct vcpu *vcpu, uint8_t vector)
{
	struct kvm_vcpu_events ev;

	if (kvm_ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	ev.exception.injected = 1;
	ev.exception.nr = vector;
	ev.exception.has_error_code = 0;
	ev.exception.error_code = 0;
	ev.flags = 0;
	return kvm_ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 ? -errno : 0;
}

/* SDM WAIT/FWAIT: #NM when CR0.MP and CR0.TS are set, #MF when an unmasked
 * x87 exception is pending (FSW.ES), else nothing happens. */
static int complete_fwait(struct vcpu *vcpu, struct kvm_regs *regs, const struct kvm_sregs *sregs)
{
	struct kvm_fpu fpu;

	if ((sregs->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
		return inject_exception(vcpu, VEC_NM);
	if (kvm_ioctl(vcpu->fd, KVM_GET_FPU, &fpu) < 0)
		return -errno;
	if (fpu.fsw & FSW_ES)
		return inject_exception(vcpu, VEC_MF);
	regs->rip += 1;
	return kvm_ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0 ? -errno : 0;
}

enum x86_emul_result x86_emulate_refused(struct vcpu *vcpu, char *msg, size_t msglen)
{
	struct vm *vm = vcpu->vm;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t b[15];
	size_t n, off;
	int r = 0;
	unsigned int cpl;

	if (kvm_ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(msg, msglen, "cannot read vCPU %u registers: %s", vcpu->id,
			 strerror(errno));
		return X86_EMUL_FAILED;
	}
	cpl = sregs.cs.dpl;
	n = fetch_insn(vcpu, regs.rip, sregs.cs.base, b);

	if (n >= 1 && b[0] == 0xcc) {
		/* A trap: the #BP frame holds the address after the int3. */
		log_once(vm, REFUSED_INT3);
		regs.rip += 1;
		if (kvm_ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
			r = -errno;
		else
			r = inject_exception(vcpu, VEC_BP);
	} else if (n >= 3 && b[0] == 0x0f && b[1] == 0x01 && (b[2] == 0xca || b[2] == 0xcb)) {
		if (cpl != 0) {
			/* SDM: CLAC/STAC raise #UD outside ring 0. */
			log_once(vm, REFUSED_CPL3_SMAP);
			r = inject_exception(vcpu, VEC_UD);
		} else {
			log_once(vm, b[2] == 0xca ? REFUSED_CLAC : REFUSED_STAC);
			if (b[2] == 0xca)
				regs.rflags &= ~RFLAGS_AC;
			else
				regs.rflags |= RFLAGS_AC;
			regs.rip += 3;
			if (kvm_ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
				r = -errno;
		}
	} else if (n >= 1 && b[0] == 0x9b) {
		log_once(vm, REFUSED_FWAIT);
		r = complete_fwait(vcpu, &regs, &sregs);
	} else if (n >= 2 && b[0] == 0x0f && b[1] == 0x0b) {
		/* A fault: RIP stays on the ud2. */
		log_once(vm, REFUSED_UD2);
		r = inject_exception(vcpu, VEC_UD);
	} else {
		off = (size_t)snprintf(msg, msglen, "vCPU %u: the host refused instruction",
				       vcpu->id);
		for (size_t i = 0; i < n && off < msglen; i++)
			off += (size_t)snprintf(msg + off, msglen - off, " %02x", b[i]);
		if (!n && off < msglen)
			off += (size_t)snprintf(msg + off, msglen - off, " (bytes unreadable)");
		if (off < msglen)
			snprintf(msg + off, msglen - off, " at RIP %#llx (CPL %u)",
				 (unsigned long long)regs.rip, cpl);
		return X86_EMUL_FAILED;
	}
	if (r) {
		snprintf(msg, msglen, "vCPU %u: completing a refused instruction at RIP %#llx: %s",
			 vcpu->id, (unsigned long long)regs.rip, strerror(-r));
		return X86_EMUL_FAILED;
	}
	return X86_EMUL_DONE;
}
