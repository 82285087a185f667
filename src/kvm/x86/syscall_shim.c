/* syscall_shim.c - system calls for a guest's user space on a host that
 * emulates guest kernel code (PVM; the measured facts are in
 * ../shared/pvm-host.md).
 *
 * Such a host emulates a ring-3 `syscall` only halfway: RIP = LSTAR, RCX,
 * R11 and the SFMASK-masked RFLAGS are set, but CS and SS are not loaded
 * from STAR and the CPL stays 3. Linux's entry page is supervisor-only, so
 * every process dies at its first system call. The host does give us two
 * things: a store to a guest-physical page with no memslot exits as
 * KVM_EXIT_MMIO, and new CS/SS at DPL 0 are accepted through the vCPU's
 * registers. The shim joins them:
 *
 * 1. At boot, SYSCALL_SHIM_LEN bytes below the EBDA are E820-reserved.
 * 2. The guest's RDMSR and WRMSR of LSTAR, and its WRMSR of STAR, exit here
 *    (an MSR filter). When the guest writes LSTAR in 4-level long mode, the
 *    shim's top-level entry goes into slot 509 of the current root table.
 *    Linux writes LSTAR in syscall_init() on swapper_pg_dir before any
 *    process exists, and pgd_ctor() copies the kernel half of that table
 *    into every new mm, so every process inherits the slot. KVM's LSTAR
 *    becomes the shim's address; the guest keeps reading its own value.
 * 3. Slot 509 maps two pages: the shim page (present, user, read-only,
 *    executable) holding `movb $0, trap(%rip)` then `ud2` and int3 filler,
 *    and the trap page (present, user, writable, NX) at a guest-physical
 *    address with no memslot and no device.
 * 4. A ring-3 `syscall` lands on the store, which exits. If RIP is just past
 *    the store and RFLAGS.IF is clear (SFMASK clears it, and user code
 *    cannot), the vCPU continues at the guest's LSTAR with CS = STAR[47:32]
 *    and SS = CS + 8 at DPL 0: what the CPU would have done. RCX, R11 and
 *    RFLAGS are as the host set them. With IF set a process jumped into the
 *    shim by itself: it goes on to the ud2 and gets #UD (SIGILL).
 *
 * Every non-leaf entry is 0x67 (present, writable, user, accessed, dirty):
 * Linux's p?d_bad() ignore the user bit and find _KERNPG_TABLE, so its own
 * page-table walkers see a good table. Nothing the guest writes is trusted:
 * the trap acts only on the exact store, the pages are rewritten whenever a
 * vCPU arms, and a guest that damages them only faults itself.
 *
 * Cost: one exit per system call. With KVM_CAP_SYNC_REGS the registers
 * travel in the kvm_run page, so the round trip needs no ioctl.
 *
 * Only `syscall` is covered: a ring-3 `int $0x80` raises #UD on this host
 * with no exit, so 32-bit system calls stay unavailable (SIGILL). */
#include "cvisor/syscall_shim.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "cvisor/dirty.h"
#include "cvisor/kvm.h"
#include "cvisor/vm.h"
#include "cvisor/x86.h"

#define MSR_STAR 0xc0000081U
#define MSR_LSTAR 0xc0000082U
#define RFLAGS_IF (1ULL << 9)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define CR4_LA57 (1ULL << 12)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)
#define CR3_ROOT_MASK 0x000ffffffffff000ULL

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_NX (1ULL << 63)
#define PTE_TABLE (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D) /* 0x67 */
#define PAGE 0x1000ULL

/* The shim's pages, in SYSCALL_SHIM_GPA order. */
#define SHIM_PDPT (SYSCALL_SHIM_GPA + 0 * PAGE)
#define SHIM_PD (SYSCALL_SHIM_GPA + 1 * PAGE)
#define SHIM_PT (SYSCALL_SHIM_GPA + 2 * PAGE)
#define SHIM_CODE (SYSCALL_SHIM_GPA + 3 * PAGE)
static_assert(SYSCALL_SHIM_LEN == 4 * PAGE, "four shim pages");

/* movb $0, 0xff9(%rip): 7 bytes, the target is SHIM_VA + 7 + 0xff9, the
 * trap page. ud2 follows. */
static const uint8_t shim_code[] = { 0xc6, 0x05, 0xf9, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x0b };
#define SHIM_STORE_END (SYSCALL_SHIM_VA + 7)
#define SHIM_TRAP_VA (SYSCALL_SHIM_VA + PAGE)

enum shim_log {
	LOG_SLOT_BUSY,
	LOG_MODE,
	LOG_NO_AREA,
	LOG_STRAY,
	LOG_ROOT,
};

static void log_once(struct vm *vm, enum shim_log what, const char *msg)
{
	uint32_t bit = 1U << what;

	if (!(atomic_fetch_or(&vm->shim.logged, bit) & bit))
		cv_warn("%s", msg);
}

static int set_msr(struct vcpu *vcpu, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e = { .index = index, .data = value } };
	int n = kvm_ioctl(vcpu->fd, KVM_SET_MSRS, &m.hdr);

	return n == 1 ? 0 : n < 0 ? -errno : -EINVAL;
}

static int get_msr(struct vcpu *vcpu, uint32_t index, uint64_t *value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e = { .index = index } };
	int n = kvm_ioctl(vcpu->fd, KVM_GET_MSRS, &m.hdr);

	if (n != 1)
		return n < 0 ? -errno : -EINVAL;
	*value = m.e.data;
	return 0;
}

int syscall_shim_init(struct vm *vm)
{
	struct {
		struct kvm_msr_filter f;
	} filter = { 0 };
	/* One bit per MSR of a range; 0 denies, and a denied access exits. */
	static uint8_t deny[1] = { 0 };
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_USER_SPACE_MSR,
				      .args = { KVM_MSR_EXIT_REASON_FILTER } };
	int quirks = kvm_cap(vm->vm_fd, KVM_CAP_DISABLE_QUIRKS2);
	int sync = kvm_cap(vm->vm_fd, KVM_CAP_SYNC_REGS);

	if (!kvm_cap(vm->vm_fd, KVM_CAP_X86_USER_SPACE_MSR) ||
	    !kvm_cap(vm->vm_fd, KVM_CAP_X86_MSR_FILTER)) {
		cv_err("this host emulates guest code but offers no MSR filter: guest user space "
		       "could not make system calls (use --emulated-host off to run anyway)");
		return -ENOTSUP;
	}
	if (kvm_ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		cv_err("KVM_CAP_X86_USER_SPACE_MSR: %s", strerror(errno));
		return -errno;
	}
	filter.f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	filter.f.ranges[0] = (struct kvm_msr_filter_range){
		.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
		.nmsrs = 1,
		.base = MSR_LSTAR,
		.bitmap = deny,
	};
	filter.f.ranges[1] = (struct kvm_msr_filter_range){
		.flags = KVM_MSR_FILTER_WRITE,
		.nmsrs = 1,
		.base = MSR_STAR,
		.bitmap = deny,
	};
	if (kvm_ioctl(vm->vm_fd, KVM_X86_SET_MSR_FILTER, &filter.f) < 0) {
		cv_err("KVM_X86_SET_MSR_FILTER: %s", strerror(errno));
		return -errno;
	}
	/* A `vmcall` never returns on this host; without the quirk that
	 * rewrites it, the guest gets the #UD a CPU without it would give. */
	if (quirks & KVM_X86_QUIRK_FIX_HYPERCALL_INSN) {
		struct kvm_enable_cap q = { .cap = KVM_CAP_DISABLE_QUIRKS2,
					    .args = { KVM_X86_QUIRK_FIX_HYPERCALL_INSN } };

		if (kvm_ioctl(vm->vm_fd, KVM_ENABLE_CAP, &q) < 0)
			cv_debug("disabling KVM_X86_QUIRK_FIX_HYPERCALL_INSN: %s", strerror(errno));
	}
	vm->shim.sync_regs = (sync & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) ==
			     (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
	pthread_mutex_init(&vm->shim.lock, NULL);
	vm->shim.on = true;
	return 0;
}

void syscall_shim_vcpu_init(struct vcpu *vcpu)
{
	if (vcpu->vm->shim.on && vcpu->vm->shim.sync_regs)
		vcpu->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
}

/* The vCPU's registers at this exit, and their write-back. */
static int regs_get(struct vcpu *vcpu, struct kvm_regs **regs, struct kvm_sregs **sregs,
		    struct kvm_regs *rbuf, struct kvm_sregs *sbuf)
{
	if (vcpu->vm->shim.sync_regs) {
		*regs = &vcpu->run->s.regs.regs;
		*sregs = &vcpu->run->s.regs.sregs;
		return 0;
	}
	if (kvm_ioctl(vcpu->fd, KVM_GET_REGS, rbuf) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_GET_SREGS, sbuf) < 0)
		return -errno;
	*regs = rbuf;
	*sregs = sbuf;
	return 0;
}

static int regs_put(struct vcpu *vcpu, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	if (vcpu->vm->shim.sync_regs) {
		vcpu->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
		return 0;
	}
	if (kvm_ioctl(vcpu->fd, KVM_SET_SREGS, sregs) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0)
		return -errno;
	return 0;
}

/* The four pages as they must be. Written only where they differ, leaf
 * first, so a vCPU running through the shim meanwhile never sees a
 * half-built table. */
static int write_pages(struct vm *vm)
{
	static uint8_t want[SYSCALL_SHIM_LEN];
	uint8_t *p = guest_mem_ptr(&vm->mem, SYSCALL_SHIM_GPA, SYSCALL_SHIM_LEN);

	if (!p)
		return -EFAULT;
	memset(want, 0, sizeof(want));
	cv_put_le64(want + 0 * PAGE, SHIM_PD | PTE_TABLE);
	cv_put_le64(want + 1 * PAGE, SHIM_PT | PTE_TABLE);
	cv_put_le64(want + 2 * PAGE, SHIM_CODE | PTE_P | PTE_US | PTE_A);
	cv_put_le64(want + 2 * PAGE + 8,
		    SYSCALL_SHIM_TRAP_GPA | PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D | PTE_NX);
	memset(want + 3 * PAGE, 0xcc, PAGE);
	memcpy(want + 3 * PAGE, shim_code, sizeof(shim_code));
	for (int page = 3; page >= 0; page--) {
		uint8_t *dst = p + page * PAGE;
		const uint8_t *src = want + page * PAGE;

		if (memcmp(dst, src, PAGE)) {
			memcpy(dst, src, PAGE);
			dirty_note(dst, PAGE);
		}
	}
	return 0;
}

/* Put the shim's entry into slot 509 of the root table CR3 points at.
 * 0, or -EBUSY when the guest uses that slot itself, -EFAULT when the
 * root is not in RAM. */
static int install_slot(struct vm *vm, uint64_t cr3)
{
	uint64_t root = cr3 & CR3_ROOT_MASK, want = SHIM_PDPT | PTE_TABLE, cur;
	uint64_t *e = guest_mem_ptr(&vm->mem, root + SYSCALL_SHIM_SLOT * 8, 8);

	if (!e)
		return -EFAULT;
	cur = __atomic_load_n(e, __ATOMIC_RELAXED);
	if (cur == want)
		return 0;
	if (cur & PTE_P)
		return -EBUSY;
	__atomic_store_n(e, want, __ATOMIC_RELAXED);
	dirty_note(e, 8);
	return 0;
}

/* Arm the shim on this vCPU: true when KVM's LSTAR may point at it. */
static bool arm(struct vcpu *vcpu, const struct kvm_sregs *s)
{
	struct vm *vm = vcpu->vm;
	bool ok = false;
	int r;

	if (!vm->shim.area) {
		log_once(vm, LOG_NO_AREA,
			 "this guest was started without the syscall shim's reserved pages (a "
			 "snapshot from a host with VT-x or AMD-V, or from an older cvisor): its "
			 "processes cannot make system calls on this host");
		return false;
	}
	if (!(s->cr0 & CR0_PG) || !(s->cr4 & CR4_PAE) || (s->cr4 & CR4_LA57) ||
	    !(s->efer & EFER_LMA) || !(s->efer & EFER_NXE)) {
		log_once(vm, LOG_MODE,
			 "the guest set up system calls outside 4-level long mode with NX: its "
			 "processes cannot make system calls on this host");
		return false;
	}
	pthread_mutex_lock(&vm->shim.lock);
	r = write_pages(vm);
	if (!r)
		r = install_slot(vm, s->cr3);
	pthread_mutex_unlock(&vm->shim.lock);
	if (r == -EBUSY)
		log_once(vm, LOG_SLOT_BUSY,
			 "slot 509 of the guest's top-level page table is in use: no syscall "
			 "shim, its processes cannot make system calls on this host");
	else if (r)
		log_once(vm, LOG_ROOT,
			 "the guest's page table root is outside its RAM: no syscall shim");
	else
		ok = true;
	return ok;
}

/* The guest wrote LSTAR: keep its value, point KVM's at the shim when it
 * can be armed. */
static int write_lstar(struct vcpu *vcpu, uint64_t value, const struct kvm_sregs *s)
{
	struct syscall_shim_vcpu *sv = &vcpu->shim;

	sv->lstar = value;
	sv->armed = value && arm(vcpu, s);
	if (sv->armed)
		cv_debug("vCPU %u: LSTAR %#llx, system calls through the shim", vcpu->id,
			 (unsigned long long)value);
	return set_msr(vcpu, MSR_LSTAR, sv->armed ? SYSCALL_SHIM_VA : value);
}

void syscall_shim_msr(struct vcpu *vcpu, bool write)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_regs rbuf, *regs;
	struct kvm_sregs sbuf, *sregs;
	uint64_t v = run->msr.data;

	run->msr.error = 0;
	if (!write && run->msr.index == MSR_LSTAR) {
		run->msr.data = vcpu->shim.lstar;
	} else if (write && run->msr.index == MSR_LSTAR) {
		/* SDM WRMSR: a non-canonical LSTAR is #GP(0). */
		if (!x86_canonical(v) || regs_get(vcpu, &regs, &sregs, &rbuf, &sbuf) ||
		    write_lstar(vcpu, v, sregs))
			run->msr.error = 1;
	} else if (write && run->msr.index == MSR_STAR) {
		if (set_msr(vcpu, MSR_STAR, v))
			run->msr.error = 1;
		else
			vcpu->shim.star = v;
	} else {
		/* Not an MSR the filter routes here: what KVM would do. */
		run->msr.error = 1;
	}
}

bool syscall_shim_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_regs rbuf, *regs;
	struct kvm_sregs sbuf, *sregs;
	uint16_t cs;

	if (!vcpu->vm->shim.on || (run->mmio.phys_addr & ~(PAGE - 1)) != SYSCALL_SHIM_TRAP_GPA)
		return false;
	/* Anything but the shim's one-byte store reads all-ones and writes
	 * nothing, as an empty bus would. */
	if (!run->mmio.is_write || run->mmio.len != 1 ||
	    run->mmio.phys_addr != SYSCALL_SHIM_TRAP_GPA) {
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
		return true;
	}
	if (regs_get(vcpu, &regs, &sregs, &rbuf, &sbuf)) {
		log_once(vcpu->vm, LOG_STRAY, "syscall shim: cannot read the vCPU's registers");
		return true;
	}
	/* From the store right after a syscall, and only from there: RIP just
	 * past it, IF clear. Anything else resumes as is (the ud2 follows). */
	if (regs->rip != SHIM_STORE_END || (regs->rflags & RFLAGS_IF) || !vcpu->shim.armed)
		return true;
	cs = (uint16_t)(vcpu->shim.star >> 32) & 0xfffc;
	/* SDM SYSCALL: flat 64-bit code and data segments at DPL 0. */
	sregs->cs = (struct kvm_segment){ .selector = cs,
					  .limit = 0xffffffff,
					  .type = 0xb,
					  .present = 1,
					  .s = 1,
					  .l = 1,
					  .g = 1 };
	sregs->ss = (struct kvm_segment){ .selector = (uint16_t)(cs + 8),
					  .limit = 0xffffffff,
					  .type = 0x3,
					  .present = 1,
					  .s = 1,
					  .db = 1,
					  .g = 1 };
	regs->rip = vcpu->shim.lstar;
	if (regs_put(vcpu, regs, sregs))
		log_once(vcpu->vm, LOG_STRAY, "syscall shim: cannot set the vCPU's registers");
	return true;
}

uint64_t syscall_shim_saved_msr(const struct vcpu *vcpu, uint32_t index, uint64_t value)
{
	return vcpu->vm->shim.on && index == MSR_LSTAR ? vcpu->shim.lstar : value;
}

int syscall_shim_vcpu_loaded(struct vcpu *vcpu)
{
	struct kvm_sregs s;
	uint64_t lstar = 0;
	int r;

	if (!vcpu->vm->shim.on)
		return 0;
	if ((r = get_msr(vcpu, MSR_LSTAR, &lstar)) ||
	    (r = get_msr(vcpu, MSR_STAR, &vcpu->shim.star)))
		return r;
	if (kvm_ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	/* An application processor the guest never started has LSTAR 0 and
	 * arms later, when it writes its own. */
	if (!lstar || !(s.efer & EFER_LMA)) {
		vcpu->shim.lstar = lstar;
		vcpu->shim.armed = false;
		return 0;
	}
	return write_lstar(vcpu, lstar, &s);
}
