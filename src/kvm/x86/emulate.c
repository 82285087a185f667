/* emulate.c - instructions an emulating host (PVM) refuses.
 *
 * Such a host runs an unmodified guest kernel through KVM's instruction
 * emulator, which gives up on some instructions with
 * KVM_EXIT_INTERNAL_ERROR / KVM_INTERNAL_ERROR_EMULATION. cvisor completes
 * them here, or reflects them into the guest the way the CPU would, so the
 * guest goes on. On VT-x and AMD-V hosts these exits do not happen. */
#include "cvisor/x86.h"

#include "emulate_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cvisor/dirty.h"
#include "cvisor/kvm.h"
#include "cvisor/vm.h"
#include "cvisor/x86_decode.h"

#define RFLAGS_AC (1ULL << 18)
#define CR0_MP (1ULL << 1)
#define CR0_TS (1ULL << 3)
#define FSW_ES (1U << 7)
#define MXCSR_MASK 0xffffU
#define CR4_FSGSBASE (1ULL << 16)
#define MXCSR_DEFAULT 0x1f80U
#define PAGE_SIZE 4096ULL
#define EFER_LMA (1ULL << 10)

enum refused_kind {
	REFUSED_INT3,
	REFUSED_CLAC,
	REFUSED_STAC,
	REFUSED_UD2,
	REFUSED_CPL3_SMAP,
	REFUSED_FWAIT,
	REFUSED_LDMXCSR,
	REFUSED_STMXCSR,
	REFUSED_FXSAVE,
	REFUSED_FXRSTOR,
	REFUSED_CACHE_FENCE,
	REFUSED_FSGSBASE,
	REFUSED_LDMXCSR_DEFAULT,
	REFUSED_STMXCSR_DEFAULT,
	REFUSED_IRET,
	REFUSED_INT_N,
};

static const char *const refused_what[] = {
	[REFUSED_INT3] = "int3: reflected as #BP",
	[REFUSED_CLAC] = "clac: completed (RFLAGS.AC cleared)",
	[REFUSED_STAC] = "stac: completed (RFLAGS.AC set)",
	[REFUSED_UD2] = "ud2: reflected as #UD",
	[REFUSED_CPL3_SMAP] = "clac/stac in user mode: reflected as #UD",
	[REFUSED_FWAIT] = "fwait: completed",
	[REFUSED_LDMXCSR] = "ldmxcsr: completed",
	[REFUSED_STMXCSR] = "stmxcsr: completed",
	[REFUSED_FXSAVE] = "fxsave: completed",
	[REFUSED_FXRSTOR] = "fxrstor: completed",
	[REFUSED_CACHE_FENCE] = "a fence or cache flush: completed as a no-op",
	[REFUSED_FSGSBASE] = "rd/wrfsbase or rd/wrgsbase: completed",
	[REFUSED_LDMXCSR_DEFAULT] = "ldmxcsr of the default MXCSR: completed as a no-op "
				    "(this host gives no access to the vCPU's FPU state)",
	[REFUSED_STMXCSR_DEFAULT] = "stmxcsr: stored the default MXCSR "
				    "(this host gives no access to the vCPU's FPU state)",
	[REFUSED_IRET] = "iret outside 64-bit mode: completed",
	[REFUSED_INT_N] = "int n: delivered through the guest's IDT",
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

int x86_inject_exception(struct vcpu *vcpu, uint8_t vector, bool has_code, uint32_t code)
{
	struct kvm_vcpu_events ev;

	if (kvm_ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	ev.exception.injected = 1;
	ev.exception.nr = vector;
	ev.exception.has_error_code = has_code;
	ev.exception.error_code = code;
	ev.flags = 0;
	return kvm_ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 ? -errno : 0;
}

static int inject_exception(struct vcpu *vcpu, uint8_t vector)
{
	return x86_inject_exception(vcpu, vector, false, 0);
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

int x86_linear_rw(struct vcpu *vcpu, struct kvm_sregs *sregs, uint64_t la, void *buf, size_t len,
		  bool write)
{
	uint8_t *p = buf;

	while (len) {
		/* Outside IA-32e mode linear addresses wrap at 4 GiB (a page
		 * boundary, so per chunk). */
		struct kvm_translation tr = { .linear_address = (sregs->efer & EFER_LMA)
									? la
									: (uint32_t)la };
		size_t chunk = PAGE_SIZE - (la & (PAGE_SIZE - 1));
		uint8_t *h;

		if (chunk > len)
			chunk = len;
		if (kvm_ioctl(vcpu->fd, KVM_TRANSLATE, &tr) < 0)
			return -errno;
		h = tr.valid ? guest_mem_ptr(&vcpu->vm->mem, tr.physical_address, chunk) : NULL;
		if (!tr.valid || (write && !tr.writeable)) {
			sregs->cr2 = tr.linear_address;
			if (kvm_ioctl(vcpu->fd, KVM_SET_SREGS, sregs) < 0)
				return -errno;
			/* error code: present if mapped, W for writes */
			int e = x86_inject_exception(vcpu, VEC_PF, true,
						     (tr.valid ? 1U : 0U) | (write ? 2U : 0U));

			return e ? e : 1;
		}
		if (!h)
			return -EFAULT; /* MMIO or outside RAM: not supported here */
		if (write) {
			memcpy(h, p, chunk);
			dirty_note(h, chunk); /* a store KVM did not see */
		} else
			memcpy(p, h, chunk);
		la += chunk;
		p += chunk;
		len -= chunk;
	}
	return 0;
}

static void gpr_array(const struct kvm_regs *r, uint64_t g[16])
{
	const uint64_t v[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
				 r->r8,	 r->r9,	 r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };

	memcpy(g, v, sizeof(v));
}

static void set_gpr(struct kvm_regs *r, unsigned int i, uint64_t v)
{
	__u64 *dst[16] = { &r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
			   &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15 };

	*dst[i & 15] = v;
}

/* The vCPU's FPU state, if the host gives it out (see vcpu_set_fpu). */
static bool fpu_state(struct vcpu *vcpu, struct kvm_fpu *fpu)
{
	memset(fpu, 0, sizeof(*fpu));
	if (vcpu->vm->quirks.fpu_hidden)
		return false;
	return kvm_ioctl(vcpu->fd, KVM_GET_FPU, fpu) == 0;
}

/* FXSAVE image <-> struct kvm_fpu (SDM vol. 1, table 10-2, 64-bit form). */
static void fx_from_fpu(const struct kvm_fpu *f, uint8_t *img)
{
	memset(img, 0, 512);
	memcpy(img + 0, &f->fcw, 2);
	memcpy(img + 2, &f->fsw, 2);
	img[4] = f->ftwx;
	memcpy(img + 6, &f->last_opcode, 2);
	memcpy(img + 8, &f->last_ip, 8);
	memcpy(img + 16, &f->last_dp, 8);
	memcpy(img + 24, &f->mxcsr, 4);
	{
		uint32_t mask = MXCSR_MASK;

		memcpy(img + 28, &mask, 4);
	}
	for (int i = 0; i < 8; i++)
		memcpy(img + 32 + 16 * i, f->fpr[i], 16);
	for (int i = 0; i < 16; i++)
		memcpy(img + 160 + 16 * i, f->xmm[i], 16);
}

static void fx_to_fpu(const uint8_t *img, struct kvm_fpu *f)
{
	memcpy(&f->fcw, img + 0, 2);
	memcpy(&f->fsw, img + 2, 2);
	f->ftwx = img[4];
	memcpy(&f->last_opcode, img + 6, 2);
	memcpy(&f->last_ip, img + 8, 8);
	memcpy(&f->last_dp, img + 16, 8);
	memcpy(&f->mxcsr, img + 24, 4);
	for (int i = 0; i < 8; i++)
		memcpy(f->fpr[i], img + 32 + 16 * i, 16);
	for (int i = 0; i < 16; i++)
		memcpy(f->xmm[i], img + 160 + 16 * i, 16);
}

/* What a 0F AE completion did, besides -errno: done (step past it), not
 * one of the instructions completed here, or done with RIP left where it
 * is (an exception was injected or a #PF reflected). */
enum { AE_ADVANCE = 0, AE_NOT_OURS = 1, AE_STAY = 2 };

/* An injection (0 or -errno) as a completion. */
static int ae_stay(int r)
{
	return r ? r : AE_STAY;
}

/* linear_rw's result (1: a #PF was reflected) as a completion. */
static int ae_access(int r)
{
	return r < 0 ? r : r ? AE_STAY : AE_ADVANCE;
}

/* 0F AE with a register operand: fences, and FSGSBASE (F3 prefix). */
static int complete_0fae_reg(struct vcpu *vcpu, const struct x86_insn *in, struct kvm_regs *regs,
			     struct kvm_sregs *sregs)
{
	struct kvm_segment *seg = (in->reg & 1) ? &sregs->gs : &sregs->fs;
	uint64_t g[16], base;

	if (!in->rep && (in->reg & 7) >= 5) {
		log_once(vcpu->vm, REFUSED_CACHE_FENCE); /* lfence, mfence, sfence */
		return AE_ADVANCE;
	}
	if (in->rep != 0xf3 || (in->reg & 7) > 3)
		return AE_NOT_OURS;
	if (in->mode32) /* FSGSBASE is 64-bit mode only */
		return ae_stay(inject_exception(vcpu, VEC_UD));
	/* rdfsbase, rdgsbase, wrfsbase, wrgsbase (REX.W: 64-bit).
	 * SDM: #UD unless CR4.FSGSBASE; a non-canonical base is #GP(0). */
	if (!(sregs->cr4 & CR4_FSGSBASE))
		return ae_stay(inject_exception(vcpu, VEC_UD));
	log_once(vcpu->vm, REFUSED_FSGSBASE);
	gpr_array(regs, g);
	if ((in->reg & 7) <= 1) {
		set_gpr(regs, in->rm, (in->rex & 8) ? seg->base : (uint32_t)seg->base);
		return AE_ADVANCE;
	}
	base = (in->rex & 8) ? g[in->rm] : (uint32_t)g[in->rm];
	if (!x86_canonical(base))
		return ae_stay(x86_inject_exception(vcpu, VEC_GP, true, 0));
	seg->base = base;
	return kvm_ioctl(vcpu->fd, KVM_SET_SREGS, sregs) < 0 ? -errno : AE_ADVANCE;
}

/* fxsave (store) or fxrstor of the 512-byte image at la. */
static int complete_fxsave(struct vcpu *vcpu, struct kvm_sregs *sregs, uint64_t la, bool store)
{
	struct kvm_fpu fpu;
	uint8_t img[512];
	uint32_t v;
	int r;

	if (la & 15)
		return ae_stay(x86_inject_exception(vcpu, VEC_GP, true, 0));
	if (!fpu_state(vcpu, &fpu))
		return AE_NOT_OURS;
	if (store) {
		log_once(vcpu->vm, REFUSED_FXSAVE);
		fx_from_fpu(&fpu, img);
		return ae_access(x86_linear_rw(vcpu, sregs, la, img, sizeof(img), true));
	}
	log_once(vcpu->vm, REFUSED_FXRSTOR);
	if ((r = x86_linear_rw(vcpu, sregs, la, img, sizeof(img), false)))
		return ae_access(r);
	memcpy(&v, img + 24, 4);
	if (v & ~MXCSR_MASK)
		return ae_stay(x86_inject_exception(vcpu, VEC_GP, true, 0));
	fx_to_fpu(img, &fpu);
	return kvm_ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : AE_ADVANCE;
}

/* ldmxcsr (load) or stmxcsr of the 4 bytes at la. Without access to the
 * FPU state, loading the default (as Linux's kernel_fpu_begin does) is
 * taken as already done, and a store reads the default. */
static int complete_mxcsr(struct vcpu *vcpu, struct kvm_sregs *sregs, uint64_t la, bool load)
{
	struct kvm_fpu fpu;
	bool have_fpu = fpu_state(vcpu, &fpu);
	uint32_t v;
	int r;

	if (!load) {
		log_once(vcpu->vm, have_fpu ? REFUSED_STMXCSR : REFUSED_STMXCSR_DEFAULT);
		v = have_fpu ? fpu.mxcsr : MXCSR_DEFAULT;
		return ae_access(x86_linear_rw(vcpu, sregs, la, &v, 4, true));
	}
	r = x86_linear_rw(vcpu, sregs, la, &v, 4, false);
	if (!r && (v & ~MXCSR_MASK))
		return ae_stay(x86_inject_exception(vcpu, VEC_GP, true, 0));
	if (!r && have_fpu) {
		fpu.mxcsr = v;
		if (kvm_ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
			return -errno;
	} else if (!r && v != MXCSR_DEFAULT) {
		return AE_NOT_OURS; /* cannot set it on this host */
	}
	log_once(vcpu->vm, have_fpu ? REFUSED_LDMXCSR : REFUSED_LDMXCSR_DEFAULT);
	return ae_access(r);
}

/* The segment register an override or default names. */
static const struct kvm_segment *seg_of(const struct kvm_sregs *sregs, enum x86_seg sg)
{
	switch (sg) {
	case X86_SEG_ES:
		return &sregs->es;
	case X86_SEG_CS:
		return &sregs->cs;
	case X86_SEG_SS:
		return &sregs->ss;
	case X86_SEG_FS:
		return &sregs->fs;
	case X86_SEG_GS:
		return &sregs->gs;
	default:
		return &sregs->ds;
	}
}

/* 0F AE with a memory operand. Only completed for the guest kernel:
 * KVM_TRANSLATE walks the page tables without the user/supervisor and
 * write checks a CPL 3 access needs, so a user process gets the #UD it
 * would get from a CPU without the instruction, never access to kernel
 * memory. */
static int complete_0fae_mem(struct vcpu *vcpu, const struct x86_insn *in, struct kvm_regs *regs,
			     struct kvm_sregs *sregs)
{
	unsigned int op = in->reg & 7;
	uint64_t gpr[16], la;

	if (sregs->cs.dpl != 0)
		return ae_stay(inject_exception(vcpu, VEC_UD));
	gpr_array(regs, gpr);
	la = x86_operand_addr(in, gpr, regs->rip, sregs->fs.base, sregs->gs.base);
	if (in->mode32) {
		/* SDM: an operand past its segment's limit is #GP(0), #SS(0) in
		 * SS (expand-up segments; an expand-down one is not done here). */
		enum x86_seg sg = x86_operand_seg(in);
		const struct kvm_segment *seg = seg_of(sregs, sg);
		uint64_t last = la + (op <= 1 ? 511 : op <= 3 ? 3 : 0);

		bool store = op == 0 || op == 3; /* fxsave, stmxcsr */

		if (seg->unusable || (store && ((seg->type & 8) || !(seg->type & 2))))
			return ae_stay(x86_inject_exception(
				vcpu, sg == X86_SEG_SS ? VEC_SS : VEC_GP, true, 0));
		if (!seg->s || (seg->type & 0xc) == 0x4)
			return AE_NOT_OURS; /* a system or expand-down segment */
		if (last > seg->limit)
			return ae_stay(x86_inject_exception(
				vcpu, sg == X86_SEG_SS ? VEC_SS : VEC_GP, true, 0));
		la = seg->base + la;
	} else if (op <= 3) {
		/* SDM: a memory operand that is not canonical, first byte to
		 * last, is #GP(0) (FXSAVE/FXRSTOR 512 bytes, LDMXCSR/STMXCSR 4). */
		uint64_t last = la + (op <= 1 ? 511 : 3);

		if (last < la || !x86_canonical(la) || !x86_canonical(last))
			return ae_stay(x86_inject_exception(vcpu, VEC_GP, true, 0));
	}
	switch (op) {
	case 0: /* fxsave */
	case 1: /* fxrstor */
		if (in->rep || in->opsize)
			return AE_NOT_OURS;
		return complete_fxsave(vcpu, sregs, la, op == 0);
	case 2: /* ldmxcsr */
	case 3: /* stmxcsr */
		if (in->rep || in->opsize)
			return AE_NOT_OURS;
		return complete_mxcsr(vcpu, sregs, la, op == 2);
	case 6: /* clwb (66) */
	case 7: /* clflush, clflushopt (66) */
		if (in->rep || (op == 6 && !in->opsize))
			return AE_NOT_OURS;
		log_once(vcpu->vm, REFUSED_CACHE_FENCE);
		return AE_ADVANCE;
	default:
		return AE_NOT_OURS;
	}
}

/* The 0F AE group: MXCSR loads and stores, FXSAVE/FXRSTOR, fences, cache
 * flushes and FSGSBASE. Returns 0 when completed (or an exception was
 * reflected), 1 if it is not one of these, or -errno. */
static int complete_0fae(struct vcpu *vcpu, const struct x86_insn *in, struct kvm_regs *regs,
			 struct kvm_sregs *sregs)
{
	int r = in->mod == 3 ? complete_0fae_reg(vcpu, in, regs, sregs)
			     : complete_0fae_mem(vcpu, in, regs, sregs);

	if (r != AE_ADVANCE)
		return r == AE_STAY ? 0 : r;
	regs->rip += in->len;
	return kvm_ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0 ? -errno : 0;
}

/* Decode a 0F instruction in 64-bit mode or 32-bit protected mode; real
 * mode, 16-bit and compat code with 16-bit segments are not decoded. */
static int decode_0f(const struct kvm_sregs *sregs, const uint8_t *b, size_t n, struct x86_insn *in)
{
	if ((sregs->efer & EFER_LMA) && sregs->cs.l)
		return x86_decode_0f_modrm(b, n, in);
	if ((sregs->cr0 & 1) && sregs->cs.db)
		return x86_decode_0f_modrm32(b, n, in);
	return -EINVAL;
}

/* xsave, xrstor, xsaveopt (0f ae /4-/6), xrstors, xsavec, xsaves (0f c7
 * /3-/5), memory forms without a 66 or f3 prefix (66 0f ae /6 is clwb),
 * and xgetbv, xsetbv: an XSAVE-enabled kernel, which `noxsave`
 * (x86_quirk_cmdline) avoids. */
static bool xsave_family(const struct kvm_sregs *sregs, const uint8_t *b, size_t n)
{
	struct x86_insn in;

	if (n >= 3 && b[0] == 0x0f && b[1] == 0x01 && (b[2] == 0xd0 || b[2] == 0xd1))
		return true;
	if (decode_0f(sregs, b, n, &in) || in.mod == 3 || in.rep || in.opsize)
		return false;
	if (in.opcode[1] == 0xae)
		return (in.reg & 7) >= 4 && (in.reg & 7) <= 6;
	return in.opcode[1] == 0xc7 && (in.reg & 7) >= 3 && (in.reg & 7) <= 5;
}

enum x86_emul_result x86_emulate_refused(struct vcpu *vcpu, char *msg, size_t msglen)
{
	struct vm *vm = vcpu->vm;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct x86_insn insn;
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
	} else if (decode_0f(&sregs, b, n, &insn) == 0 && insn.opcode[1] == 0xae &&
		   (r = complete_0fae(vcpu, &insn, &regs, &sregs)) != 1) {
		/* completed, reflected, or r < 0 */
	} else if (!(sregs.efer & EFER_LMA) &&
		   ((n >= 1 && b[0] == 0xcf) || (n >= 2 && b[0] == 0x66 && b[1] == 0xcf))) {
		log_once(vm, REFUSED_IRET);
		r = x86_complete_iret(vcpu, &regs, &sregs, b, n, msg, msglen);
		if (r == -ENOTSUP)
			return X86_EMUL_FAILED;
	} else if (n >= 2 && b[0] == 0xcd) {
		log_once(vm, REFUSED_INT_N);
		r = x86_complete_int_n(vcpu, &regs, &sregs, b[1]);
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
			off += (size_t)snprintf(msg + off, msglen - off, " at RIP %#llx (CPL %u)",
						(unsigned long long)regs.rip, cpl);
		if (off < msglen && xsave_family(&sregs, b, n))
			snprintf(msg + off, msglen - off,
				 ": XSAVE, refused here; a kernel booted by its own loader "
				 "needs the options `cvisor host` prints");
		return X86_EMUL_FAILED;
	}
	if (r) {
		snprintf(msg, msglen, "vCPU %u: completing a refused instruction at RIP %#llx: %s",
			 vcpu->id, (unsigned long long)regs.rip, strerror(-r));
		return X86_EMUL_FAILED;
	}
	return X86_EMUL_DONE;
}
