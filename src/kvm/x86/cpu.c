/* cpu.c - x86 vCPU setup: CPUID with per-vCPU topology and the KVM
 * paravirtual leaves, MSRs, FPU, LAPIC LINT pins and entry registers; and
 * the CPUID this host offers a guest, which cpu_compat.c compares with the
 * CPU a saved or migrating guest was given. */
#include "cvisor/x86.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/kvm.h"
#include "cvisor/vm.h"

#define CPUID_MAX_ENTRIES 256
#define CPUID_LEAF1_ECX_HYPERVISOR (1U << 31)
#define CPUID_LEAF1_EDX_HTT (1U << 28)

/* Features an emulating host (PVM) cannot execute for the guest: each one
 * stopped a Linux guest with KVM_INTERNAL_ERROR_EMULATION here. The host
 * overrides some of leaf 1 whatever KVM_SET_CPUID2 says, so the kernel is
 * also told on its command line (x86_quirk_cmdline). */
#define QUIRK_LEAF1_ECX_CLEAR                                                          \
	((1U << 12) /* FMA */ | (1U << 13) /* CX16 */ | (1U << 22) /* MOVBE */ |       \
	 (1U << 23) /* POPCNT */ | (1U << 26) /* XSAVE */ | (1U << 27) /* OSXSAVE */ | \
	 (1U << 28) /* AVX */ | (1U << 29) /* F16C */ | (1U << 30) /* RDRAND */)
/* The SIMD extensions by which Linux picks kernel-mode SSE code. The
 * host's emulator runs no SSE arithmetic and hides the FPU state from
 * cvisor, so neither can complete such code: Debian's cloud kernel stopped
 * in its ChaCha self-test (SSSE3, `movd %ecx,%xmm15`); AES-NI, PCLMULQDQ,
 * SSE4.1/4.2 (crc32c-intel) and SHA select the same kind of code. Masked
 * for a guest that boots here, but a saved or migrating guest that has
 * them runs as it did (its kernel chose at its boot). SSE2 is part of
 * x86-64 and stays: kernel code that needs only SSE2 (md's xor and raid6)
 * still stops here. */
#define QUIRK_SIMD_LEAF1_ECX_CLEAR                                                     \
	((1U << 1) /* PCLMULQDQ */ | (1U << 9) /* SSSE3 */ | (1U << 19) /* SSE4.1 */ | \
	 (1U << 20) /* SSE4.2 */ | (1U << 25) /* AES */)
#define QUIRK_SIMD_LEAF7_EBX_CLEAR (1U << 29) /* SHA */
/* SMEP and SMAP too: such a host does not offer them, and with
 * `--emulated-host on` on a VT-x host the kernel must be able to run the
 * syscall shim's user page at CPL 0 (syscall_shim.c). And ERMS and FSRM:
 * the host emulates a `rep movsb`/`rep stosb` one byte per step, so without
 * them Linux copies and clears with `rep movsq`/`rep stosq`, 3.4 times
 * faster here (4 MiB from /dev/zero in 1.2 s instead of 4.1 s). */
#define QUIRK_LEAF7_EBX_CLEAR                                                     \
	((1U << 3) /* BMI1 */ | (1U << 5) /* AVX2 */ | (1U << 7) /* SMEP */ |     \
	 (1U << 8) /* BMI2 */ | (1U << 9) /* ERMS */ | (1U << 16) /* AVX512F */ | \
	 (1U << 18) /* RDSEED */ | (1U << 19) /* ADX */ | (1U << 20) /* SMAP */)
#define QUIRK_LEAF7_EDX_CLEAR (1U << 4) /* FSRM */
#define QUIRK_EXT1_ECX_CLEAR (1U << 5)	/* ABM (LZCNT) */
/* 5-level paging would move slot 509, where the syscall shim lives. */
#define QUIRK_LEAF7_ECX_CLEAR (1U << 16) /* LA57 */
/* KVM PV features whose hypercalls never return on such a host. */
#define QUIRK_KVM_FEATURES_CLEAR \
	((1U << 7) /* PV_UNHALT */ | (1U << 11) /* PV_SEND_IPI */ | (1U << 13) /* PV_SCHED_YIELD */)

/* X86_FEATURE_* numbers (arch/x86/include/asm/cpufeatures.h) of the bits
 * above. `nopti`: with page-table isolation, user mode runs on a second
 * root table that lacks the syscall shim's slot (syscall_shim.c).
 * `cryptomgr.notests`: a kernel with the crypto manager (Debian's) runs
 * the self-tests of every algorithm it registers, RSA and ECDSA among them,
 * in generic C at boot; emulated, Debian's cloud kernel spent over 30
 * minutes in them without reaching user space, and with them skipped ran
 * /init at guest time 678 s (bench/RESULTS.md). FIPS mode (`fips=1`) runs
 * them anyway. */
static const char quirk_cmdline[] = "noxsave "
				    "clearcpuid=129,137,140,141,147,148,150,151,153,154,156,157,"
				    "158,197,291,293,295,296,297,304,"
				    "306,307,308,317,580 "
				    "nopti cryptomgr.notests";

const char *x86_quirk_cmdline(void)
{
	return quirk_cmdline;
}

bool x86_host_emulates(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

bool x86_quirks_wanted(enum config_quirks mode)
{
	return mode == CONFIG_QUIRKS_ON || (mode == CONFIG_QUIRKS_AUTO && x86_host_emulates());
}

int x86_cpuid_supported(int kvm_fd, bool quirks, enum cpuid_for use, struct kvm_cpuid2 **out)
{
	bool boot = use == CPUID_BOOT;

	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));

	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (kvm_ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int r = -errno;

		free(c);
		return r;
	}
	for (unsigned int i = 0; quirks && i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1)
			e->ecx &=
				~(QUIRK_LEAF1_ECX_CLEAR | (boot ? QUIRK_SIMD_LEAF1_ECX_CLEAR : 0));
		else if (e->function == 7 && e->index == 0) {
			e->ebx &=
				~(QUIRK_LEAF7_EBX_CLEAR | (boot ? QUIRK_SIMD_LEAF7_EBX_CLEAR : 0));
			e->ecx &= ~QUIRK_LEAF7_ECX_CLEAR;
			e->edx &= ~QUIRK_LEAF7_EDX_CLEAR;
		} else if (e->function == 0x80000001)
			e->ecx &= ~QUIRK_EXT1_ECX_CLEAR;
		else if (e->function == 0x40000001)
			e->eax &= ~QUIRK_KVM_FEATURES_CLEAR;
		else if (e->function == 0xd)
			e->eax = e->ebx = e->ecx = e->edx = 0;
	}
	*out = c;
	return 0;
}

int x86_cpuid_init(struct vm *vm, enum cpuid_for use)
{
	return x86_cpuid_supported(vm->kvm_fd, vm->quirks.active, use, &vm->cpuid);
}

static unsigned int order_base_2(unsigned int n)
{
	unsigned int o = 0;

	while ((1U << o) < n)
		o++;
	return o;
}

/* One package, ncpus cores, one thread each; APIC id = vCPU index. */
int x86_vcpu_set_cpuid(struct vcpu *vcpu)
{
	const struct kvm_cpuid2 *sup = vcpu->vm->cpuid;
	unsigned int ncpus = vcpu->vm->ncpus, id = vcpu->id, n = 0;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (sup->nent + 2) * sizeof(c->entries[0]));
	int r = 0;

	if (!c)
		return -ENOMEM;
	for (unsigned int i = 0; i < sup->nent; i++) {
		struct kvm_cpuid_entry2 e = sup->entries[i];

		switch (e.function) {
		case 1:
			e.ebx = (e.ebx & 0xffff) | (id << 24) | ((ncpus & 0xff) << 16);
			e.ecx |= CPUID_LEAF1_ECX_HYPERVISOR;
			if (ncpus > 1)
				e.edx |= CPUID_LEAF1_EDX_HTT;
			break;
		case 4:
			/* cores per package - 1 in 31:26; caches shared by all at L3 */
			e.eax &= 0x3fff;
			if (e.eax & 0x1f) {
				e.eax |= (ncpus - 1) << 26;
				if (((e.eax >> 5) & 7) == 3)
					e.eax |= (ncpus - 1) << 14;
			}
			break;
		case 0xb:
		case 0x1f:
			continue; /* replaced below */
		}
		c->entries[n++] = e;
	}
	/* Leaf 0xB: SMT level (1 thread), then core level (ncpus cores). */
	c->entries[n++] = (struct kvm_cpuid_entry2){
		.function = 0xb,
		.index = 0,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = 0,
		.ebx = 1,
		.ecx = (1 << 8),
		.edx = id,
	};
	c->entries[n++] = (struct kvm_cpuid_entry2){
		.function = 0xb,
		.index = 1,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = order_base_2(ncpus),
		.ebx = ncpus,
		.ecx = (2 << 8) | 1,
		.edx = id,
	};
	c->nent = n;
	if (kvm_ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0)
		r = -errno;
	free(c);
	return r;
}

static int vcpu_set_msrs(struct vcpu *vcpu)
{
	static const struct {
		uint32_t index;
		uint64_t data;
	} init[] = {
		{ 0x1a0, 1 },	  /* IA32_MISC_ENABLE: fast strings */
		{ 0x2ff, 0x806 }, /* MTRRdefType: MTRRs on, default write-back */
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[ARRAY_SIZE(init)];
	} m = { .hdr.nmsrs = ARRAY_SIZE(init) };

	for (unsigned int i = 0; i < ARRAY_SIZE(init); i++) {
		m.e[i].index = init[i].index;
		m.e[i].data = init[i].data;
	}
	/* Returns how many were set; a host that refuses one is not fatal. */
	if (kvm_ioctl(vcpu->fd, KVM_SET_MSRS, &m.hdr) < 0)
		return -errno;
	return 0;
}

static int vcpu_set_fpu(struct vcpu *vcpu)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 }, back = { 0 };

	if (kvm_ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	/* An emulating host (PVM) accepts KVM_SET_FPU but reads back zeros:
	 * the refused-instruction code must not rely on FPU state then. */
	if (kvm_ioctl(vcpu->fd, KVM_GET_FPU, &back) < 0 || back.mxcsr != fpu.mxcsr ||
	    back.fcw != fpu.fcw)
		vcpu->vm->quirks.fpu_hidden = true;
	return 0;
}

/* LINT0 as ExtINT and LINT1 as NMI, as a PC BIOS leaves them (MP spec 3.6.2). */
static int vcpu_set_lint(struct vcpu *vcpu)
{
	struct kvm_lapic_state l;
	uint32_t v;

	if (kvm_ioctl(vcpu->fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	memcpy(&v, &l.regs[0x350], 4);
	v = (v & ~0x700U) | (7 << 8);
	memcpy(&l.regs[0x350], &v, 4);
	memcpy(&v, &l.regs[0x360], 4);
	v = (v & ~0x700U) | (4 << 8);
	memcpy(&l.regs[0x360], &v, 4);
	return kvm_ioctl(vcpu->fd, KVM_SET_LAPIC, &l) < 0 ? -errno : 0;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool l, bool db)
{
	*s = (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = db,
		.s = 1,
		.l = l,
		.g = 1,
	};
}

/* A real-mode segment as the reset leaves it (SDM vol. 3, 9.1.4). */
static void seg_real(struct kvm_segment *s, uint16_t sel, uint64_t base, uint8_t type)
{
	*s = (struct kvm_segment){
		.base = base, .limit = 0xffff, .selector = sel, .type = type, .present = 1, .s = 1
	};
}

/* The processor's state after RESET (SDM vol. 3, table 9-1): the first
 * fetch is at FFFFFFF0, the firmware image's last 16 bytes. */
static int vcpu_set_reset(struct vcpu *vcpu, struct kvm_sregs *s)
{
	struct kvm_regs regs = { .rflags = 2, .rip = 0xfff0, .rdx = 0x600 };

	seg_real(&s->cs, 0xf000, 0xffff0000, 11);
	seg_real(&s->ds, 0, 0, 3);
	s->es = s->fs = s->gs = s->ss = s->ds;
	s->gdt.base = s->idt.base = 0;
	s->gdt.limit = s->idt.limit = 0xffff;
	s->cr0 = 0x60000010; /* CD NW ET */
	s->cr2 = s->cr3 = s->cr4 = s->efer = 0;
	if (kvm_ioctl(vcpu->fd, KVM_SET_SREGS, s) < 0)
		return -errno;
	return kvm_ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0 ? -errno : 0;
}

static int vcpu_set_entry(struct vcpu *vcpu, const struct boot_entry *entry)
{
	struct kvm_sregs s;
	struct kvm_regs regs = { .rflags = 2, .rip = entry->rip };

	if (kvm_ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	if (entry->mode == BOOT_FIRMWARE)
		return vcpu_set_reset(vcpu, &s);
	s.gdt.base = LAYOUT_GDT;
	s.gdt.limit = 4 * 8 - 1;
	seg_flat(&s.ds, 0x18, 3, false, true);
	s.es = s.fs = s.gs = s.ss = s.ds;
	if (entry->mode == BOOT_LINUX64) {
		/* Documentation/x86/boot.rst, 64-bit boot protocol. */
		seg_flat(&s.cs, 0x10, 11, true, false);
		s.cr0 = 0x80000033; /* PG NE ET MP PE */
		s.cr3 = LAYOUT_PML4;
		s.cr4 = 0x20;	/* PAE */
		s.efer = 0x500; /* LME LMA */
		regs.rsi = entry->arg;
	} else {
		/* PVH: 32-bit flat protected mode, paging off, EBX = start_info;
		 * multiboot the same with its magic in EAX (spec 3.2: A20 on,
		 * IF and VM clear, the GDTR the kernel's to set). */
		seg_flat(&s.cs, 0x08, 11, false, true);
		s.cr0 = 0x11; /* ET PE */
		s.cr3 = s.cr4 = s.efer = 0;
		regs.rbx = entry->arg;
		if (entry->mode == BOOT_MULTIBOOT)
			regs.rax = 0x2BADB002;
	}
	if (kvm_ioctl(vcpu->fd, KVM_SET_SREGS, &s) < 0)
		return -errno;
	return kvm_ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0 ? -errno : 0;
}

int x86_vcpu_setup(struct vcpu *vcpu, const struct boot_entry *entry)
{
	int r;

	if ((r = x86_vcpu_set_cpuid(vcpu)) || (r = vcpu_set_msrs(vcpu)) ||
	    (r = vcpu_set_fpu(vcpu)) || (r = vcpu_set_lint(vcpu)))
		return r;
	/* Application processors wait for INIT/SIPI from the guest; a
	 * restored vCPU gets its registers from the snapshot (entry NULL). */
	if (vcpu->id == 0 && entry)
		return vcpu_set_entry(vcpu, entry);
	return 0;
}
