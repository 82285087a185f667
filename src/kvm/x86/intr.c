/* intr.c - software interrupts and iret outside 64-bit mode, which an
 * emulating host refuses.
 *
 * Such a host emulates a guest's kernel code and gives up on int n (cd)
 * and iret (cf) when the guest is not in 64-bit mode: a 32-bit
 * protected-mode kernel's system calls and its return from every
 * interrupt, or real-mode code's (firmware). cvisor completes iret here as
 * the SDM describes IRET (vol. 2A), with the descriptor checks of a return
 * to the same or an outer privilege level (vol. 3A 5.8.5 and 6.14) and the
 * faults they raise; int n it checks against the gate's DPL and hands to
 * the host's own interrupt delivery. What it does not do is refused with a
 * message: a task return (EFLAGS.NT), virtual-8086 mode and IA-32e mode. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cvisor/kvm.h"
#include "cvisor/vm.h"
#include "emulate_priv.h"

#define CR0_PE (1ULL << 0)
#define EFER_LMA (1ULL << 10)
#define EFLAGS_NT (1U << 14)
#define EFLAGS_VM (1U << 17)
#define EFLAGS_IF (1U << 9)
#define EFLAGS_IOPL (3U << 12)
#define EFLAGS_VIF_VIP (3U << 19)
/* What an iret may load: CF PF AF ZF SF TF IF DF OF IOPL NT RF AC VIF VIP
 * ID (not VM, which only a CPL-0 return to virtual-8086 mode sets). */
#define EFLAGS_LOADABLE 0x3d7fd5U
#define EFLAGS_FIXED 0x2U

/* The stack an iret pops from: SS's base, the stack pointer, and whether
 * it is ESP (SS.B set) or SP. */
struct stack {
	uint64_t base;
	uint32_t sp;
	uint32_t limit; /* protected mode: a pop past it is #SS(0) (expand-up SS) */
	bool big;
};

/* Pop size (2 or 4) bytes, zero-extended into *v. 0, 1 (a #PF was
 * reflected) or -errno. */
static int pop(struct vcpu *vcpu, struct kvm_sregs *sregs, struct stack *s, unsigned int size,
	       uint32_t *v)
{
	uint32_t off = s->big ? s->sp : (s->sp & 0xffffU);
	int r;

	*v = 0;
	if ((uint64_t)off + size - 1 > s->limit) {
		r = x86_inject_exception(vcpu, VEC_SS, true, 0);
		return r ? r : 1;
	}
	r = x86_linear_rw(vcpu, sregs, s->base + off, v, size, false);
	if (s->big)
		s->sp += size;
	else
		s->sp = (s->sp & 0xffff0000U) | ((s->sp + size) & 0xffffU);
	return r;
}

/* Segment descriptor d (SDM vol. 3A 3.4.5) as KVM's segment state, with
 * the accessed bit set as loading it does. */
static void desc_to_seg(uint64_t d, uint16_t sel, struct kvm_segment *s)
{
	uint32_t limit = (uint32_t)(d & 0xffffU) | (uint32_t)((d >> 32) & 0xf0000U);

	memset(s, 0, sizeof(*s));
	s->base = ((d >> 16) & 0xffffffU) | ((d >> 32) & 0xff000000U);
	s->g = (d >> 55) & 1;
	s->limit = s->g ? (limit << 12) | 0xfffU : limit;
	s->selector = sel;
	s->type = (uint8_t)(((d >> 40) & 0xf) | 1);
	s->s = (d >> 44) & 1;
	s->dpl = (d >> 45) & 3;
	s->present = (d >> 47) & 1;
	s->avl = (d >> 52) & 1;
	s->l = (d >> 53) & 1;
	s->db = (d >> 54) & 1;
}

/* Read selector sel's descriptor from the GDT or LDT into *seg. 0; 1 if
 * an exception was reflected (#GP(sel) past the table's limit, or a #PF);
 * or -errno. */
static int load_desc(struct vcpu *vcpu, struct kvm_sregs *sregs, uint16_t sel,
		     struct kvm_segment *seg)
{
	uint64_t base = sregs->gdt.base, limit = sregs->gdt.limit, d = 0;
	int r;

	if (sel & 4) {
		base = sregs->ldt.base;
		limit = sregs->ldt.present && !sregs->ldt.unusable ? sregs->ldt.limit : 0;
	}
	if ((uint64_t)(sel | 7U) > limit) {
		r = x86_inject_exception(vcpu, VEC_GP, true, sel & 0xfffcU);
		return r ? r : 1;
	}
	r = x86_linear_rw(vcpu, sregs, base + (sel & ~7U), &d, sizeof(d), false);
	if (!r)
		desc_to_seg(d, sel, seg);
	return r;
}

/* Reflect vector with error code sel (its RPL bits cleared); 1 or -errno. */
static int fault(struct vcpu *vcpu, uint8_t vector, uint16_t sel)
{
	int r = x86_inject_exception(vcpu, vector, true, sel & 0xfffcU);

	return r ? r : 1;
}

/* The return CS of a protected-mode iret at cpl (SDM IRET, "RETURN FROM
 * PROTECTED MODE"): 0 and *cs loaded, 1 if a fault was reflected, -errno. */
static int check_cs(struct vcpu *vcpu, struct kvm_sregs *sregs, uint16_t sel, unsigned int cpl,
		    struct kvm_segment *cs)
{
	unsigned int rpl = sel & 3U;
	int r;

	if (!(sel & ~3U))
		return fault(vcpu, VEC_GP, 0);
	if ((r = load_desc(vcpu, sregs, sel, cs)))
		return r;
	if (!cs->s || !(cs->type & 8) || rpl < cpl)
		return fault(vcpu, VEC_GP, sel);
	if ((cs->type & 4) ? cs->dpl > rpl : cs->dpl != rpl)
		return fault(vcpu, VEC_GP, sel);
	if (!cs->present)
		return fault(vcpu, VEC_NP, sel);
	return 0;
}

/* The SS of a return to outer level rpl. */
static int check_ss(struct vcpu *vcpu, struct kvm_sregs *sregs, uint16_t sel, unsigned int rpl,
		    struct kvm_segment *ss)
{
	int r;

	if (!(sel & ~3U))
		return fault(vcpu, VEC_GP, 0);
	if ((sel & 3U) != rpl)
		return fault(vcpu, VEC_GP, sel);
	if ((r = load_desc(vcpu, sregs, sel, ss)))
		return r;
	if (!ss->s || (ss->type & 8) || !(ss->type & 2) || ss->dpl != rpl)
		return fault(vcpu, VEC_GP, sel);
	if (!ss->present)
		return fault(vcpu, VEC_SS, sel);
	return 0;
}

/* After a return to an outer level, a data segment (or non-conforming
 * code) more privileged than the new CPL becomes null. */
static void null_privileged(struct kvm_segment *s, unsigned int cpl)
{
	bool conforming_code = (s->type & 0xc) == 0xc;

	if (s->s && !conforming_code && s->dpl < cpl && !s->unusable) {
		memset(s, 0, sizeof(*s));
		s->unusable = 1;
	}
}

/* The EFLAGS an iret leaves: tmp's loadable bits where the CPL (old, cpl)
 * and IOPL allow, the rest as they were; a 16-bit iret loads FLAGS only. */
static uint32_t new_eflags(uint32_t old, uint32_t tmp, unsigned int cpl, bool op32)
{
	uint32_t mask = EFLAGS_LOADABLE;

	if (cpl > 0)
		mask &= ~(EFLAGS_IOPL | EFLAGS_VIF_VIP);
	if (cpl > ((old & EFLAGS_IOPL) >> 12))
		mask &= ~EFLAGS_IF;
	if (!op32)
		mask &= 0xffffU;
	return (old & ~mask) | (tmp & mask) | EFLAGS_FIXED;
}

/* IRET unblocks NMIs. */
static int unblock_nmi(struct vcpu *vcpu)
{
	struct kvm_vcpu_events ev;

	if (kvm_ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	if (!ev.nmi.masked)
		return 0;
	ev.nmi.masked = 0;
	ev.flags = 0;
	return kvm_ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 ? -errno : 0;
}

static int unsupported(char *msg, size_t msglen, const char *what)
{
	snprintf(msg, msglen, "iret %s is not completed by cvisor on this host", what);
	return -ENOTSUP;
}

/* Pop EIP, CS and EFLAGS (and for an outer return ESP and SS), check, and
 * load them: protected mode. 0, 1 (a fault reflected) or -errno. */
static int iret_protected(struct vcpu *vcpu, struct kvm_regs *regs, struct kvm_sregs *sregs,
			  bool op32, struct stack *st)
{
	unsigned int size = op32 ? 4 : 2, cpl = sregs->cs.selector & 3U;
	uint32_t eip, cs_sel, fl, esp, ss_sel;
	struct kvm_segment cs, ss;
	int r;

	if ((r = pop(vcpu, sregs, st, size, &eip)) || (r = pop(vcpu, sregs, st, size, &cs_sel)) ||
	    (r = pop(vcpu, sregs, st, size, &fl)))
		return r;
	/* At CPL 0 a popped EFLAGS.VM would mean a return to virtual-8086
	 * mode, with a different frame. */
	if (op32 && cpl == 0 && (fl & EFLAGS_VM))
		return -ENOTSUP;
	if ((r = check_cs(vcpu, sregs, (uint16_t)cs_sel, cpl, &cs)))
		return r;
	if ((cs_sel & 3U) > cpl) {
		if ((r = pop(vcpu, sregs, st, size, &esp)) ||
		    (r = pop(vcpu, sregs, st, size, &ss_sel)))
			return r;
		if ((r = check_ss(vcpu, sregs, (uint16_t)ss_sel, cs_sel & 3U, &ss)))
			return r;
	}
	/* the return address within the new CS's limit */
	if (eip > cs.limit)
		return fault(vcpu, VEC_GP, 0);
	regs->rflags = new_eflags((uint32_t)regs->rflags, fl, cpl, op32);
	regs->rip = op32 ? eip : (eip & 0xffffU);
	sregs->cs = cs;
	if ((cs_sel & 3U) > cpl) {
		unsigned int outer = cs_sel & 3U;

		sregs->ss = ss;
		regs->rsp = ss.db ? esp : ((regs->rsp & ~0xffffULL) | (esp & 0xffffU));
		null_privileged(&sregs->ds, outer);
		null_privileged(&sregs->es, outer);
		null_privileged(&sregs->fs, outer);
		null_privileged(&sregs->gs, outer);
	} else {
		regs->rsp = st->big ? st->sp : ((regs->rsp & ~0xffffULL) | (st->sp & 0xffffU));
	}
	return 0;
}

/* Real mode: IP (EIP), CS as a paragraph, FLAGS (EFLAGS but VM, VIF and
 * VIP). */
static int iret_real(struct vcpu *vcpu, struct kvm_regs *regs, struct kvm_sregs *sregs, bool op32,
		     struct stack *st)
{
	unsigned int size = op32 ? 4 : 2;
	uint32_t eip, cs_sel, fl, mask = op32 ? (EFLAGS_LOADABLE & ~EFLAGS_VIF_VIP) : 0x7fd5U;
	int r;

	if ((r = pop(vcpu, sregs, st, size, &eip)) || (r = pop(vcpu, sregs, st, size, &cs_sel)) ||
	    (r = pop(vcpu, sregs, st, size, &fl)))
		return r;
	if (eip > 0xffffU)
		return fault(vcpu, VEC_GP, 0);
	sregs->cs.selector = (uint16_t)cs_sel;
	sregs->cs.base = (uint64_t)(cs_sel & 0xffffU) << 4;
	regs->rip = eip;
	regs->rflags = (regs->rflags & ~(uint64_t)mask) | (fl & mask) | EFLAGS_FIXED;
	regs->rsp = (regs->rsp & ~0xffffULL) | (st->sp & 0xffffU);
	return 0;
}

int x86_complete_iret(struct vcpu *vcpu, struct kvm_regs *regs, struct kvm_sregs *sregs,
		      const uint8_t *b, size_t n, char *msg, size_t msglen)
{
	bool real = !(sregs->cr0 & CR0_PE), op32;
	struct stack st = { .base = sregs->ss.base, .sp = (uint32_t)regs->rsp };
	int r;

	if (n >= 2 && b[0] == 0x66 && b[1] == 0xcf)
		op32 = real; /* 66 flips the default operand size */
	else if (n >= 1 && b[0] == 0xcf)
		op32 = !real && sregs->cs.db;
	else
		return -EINVAL;
	if (sregs->efer & EFER_LMA)
		return unsupported(msg, msglen, "in IA-32e mode");
	if (regs->rflags & EFLAGS_VM)
		return unsupported(msg, msglen, "in virtual-8086 mode");
	if (!real && (regs->rflags & EFLAGS_NT))
		return unsupported(msg, msglen, "to a task (EFLAGS.NT)");
	/* Only the guest kernel's: KVM_TRANSLATE does not check the U/S bit,
	 * so a user-mode iret completed here could pop kernel memory. */
	if (!real && (sregs->cs.selector & 3U))
		return unsupported(msg, msglen, "in user mode");
	st.big = !real && sregs->ss.db;
	st.limit = real ? 0xffffU : sregs->ss.limit;
	r = real ? iret_real(vcpu, regs, sregs, op32, &st)
		 : iret_protected(vcpu, regs, sregs, op32, &st);
	if (r == -ENOTSUP)
		return unsupported(msg, msglen, "to virtual-8086 mode");
	if (r)
		return r > 0 ? 0 : r;
	if (kvm_ioctl(vcpu->fd, KVM_SET_SREGS, sregs) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0)
		return -errno;
	return unblock_nmi(vcpu);
}

int x86_complete_int_n(struct vcpu *vcpu, struct kvm_regs *regs, struct kvm_sregs *sregs,
		       uint8_t vector)
{
	unsigned int cpl = sregs->cs.selector & 3U, size = (sregs->efer & EFER_LMA) ? 16 : 8;
	uint64_t gate = 0;
	struct kvm_vcpu_events ev;
	int r;

	/* INT n checks the gate's DPL against the CPL (an external interrupt,
	 * as which the host delivers it below, would not): #GP(vector * 8 + 2)
	 * (IDT, EXT clear). Past the IDT's limit is #GP too. */
	if (!(sregs->cr0 & CR0_PE))
		size = 4; /* the real-mode vector table: no gates, no DPL */
	if ((uint64_t)vector * size + size - 1 > sregs->idt.limit) {
		/* Real mode pushes no error code. */
		r = x86_inject_exception(vcpu, VEC_GP, (sregs->cr0 & CR0_PE) != 0,
					 (uint32_t)vector * 8 + 2);
		return r;
	}
	if (size > 4) {
		r = x86_linear_rw(vcpu, sregs, sregs->idt.base + (uint64_t)vector * size, &gate,
				  sizeof(gate), false);
		if (r)
			return r > 0 ? 0 : r;
	}
	if (size > 4 && ((gate >> 45) & 3) < cpl)
		return x86_inject_exception(vcpu, VEC_GP, true, (uint32_t)vector * 8 + 2);
	/* The frame's return address is the next instruction. */
	regs->rip += 2;
	if (kvm_ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	ev.interrupt.injected = 1;
	ev.interrupt.nr = vector;
	ev.interrupt.soft = 0;
	ev.flags = 0;
	return kvm_ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 ? -errno : 0;
}
