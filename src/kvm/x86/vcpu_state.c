/* vcpu_state.c - vCPU and in-kernel device state as explicit LE fields.
 * Format (version 1), per vCPU:
 *   u32 version, u32 mp_state,
 *   regs: 18 x u64 (rax rbx rcx rdx rsi rdi rsp rbp r8-r15 rip rflags),
 *   sregs: 8 segments (cs ds es fs gs ss tr ldt: u64 base, u32 limit,
 *          u16 selector, 8 x u8 type present dpl db s l g avl, u8 unusable),
 *          gdt and idt (u64 base, u16 limit), u64 cr0 cr2 cr3 cr4 cr8 efer
 *          apic_base, 4 x u64 interrupt_bitmap,
 *   u32 xsave_len + the XSAVE area (architectural layout, SDM 13.4),
 *   u32 nxcrs + (u32 xcr, u64 value) each,
 *   the LAPIC register page (1024 bytes, architectural layout),
 *   u32 nmsrs + (u32 index, u64 value) each,
 *   vcpu_events (fields below), debugregs (4 x u64 db, dr6, dr7). */
#include "cvisor/vcpu_state.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/kvm.h"
#include "cvisor/syscall_shim.h"
#include "cvisor/vm.h"

#define VCPU_STATE_VERSION 1
#define VM_KSTATE_VERSION 1
#define MAX_MSRS 512

static void put_seg(struct state_buf *b, const struct kvm_segment *s)
{
	state_put_u64(b, s->base);
	state_put_u32(b, s->limit);
	state_put_u16(b, s->selector);
	state_put_u8(b, s->type);
	state_put_u8(b, s->present);
	state_put_u8(b, s->dpl);
	state_put_u8(b, s->db);
	state_put_u8(b, s->s);
	state_put_u8(b, s->l);
	state_put_u8(b, s->g);
	state_put_u8(b, s->avl);
	state_put_u8(b, s->unusable);
}

static void get_seg(struct state_rd *r, struct kvm_segment *s)
{
	s->base = state_get_u64(r);
	s->limit = state_get_u32(r);
	s->selector = state_get_u16(r);
	s->type = state_get_u8(r);
	s->present = state_get_u8(r);
	s->dpl = state_get_u8(r);
	s->db = state_get_u8(r);
	s->s = state_get_u8(r);
	s->l = state_get_u8(r);
	s->g = state_get_u8(r);
	s->avl = state_get_u8(r);
	s->unusable = state_get_u8(r);
	/* Fields the hardware keeps in a few bits: anything larger is a
	 * corrupt file, not a state to hand to KVM. */
	if (s->type > 15 || s->present > 1 || s->dpl > 3 || s->db > 1 || s->s > 1 || s->l > 1 ||
	    s->g > 1 || s->avl > 1 || s->unusable > 1)
		r->err = -EINVAL;
}

static void put_regs(struct state_buf *b, const struct kvm_regs *g)
{
	const __u64 v[18] = { g->rax, g->rbx, g->rcx, g->rdx, g->rsi, g->rdi,
			      g->rsp, g->rbp, g->r8,  g->r9,  g->r10, g->r11,
			      g->r12, g->r13, g->r14, g->r15, g->rip, g->rflags };

	for (int i = 0; i < 18; i++)
		state_put_u64(b, v[i]);
}

static void get_regs(struct state_rd *r, struct kvm_regs *g)
{
	__u64 *v[18] = { &g->rax, &g->rbx, &g->rcx, &g->rdx, &g->rsi, &g->rdi,
			 &g->rsp, &g->rbp, &g->r8,  &g->r9,  &g->r10, &g->r11,
			 &g->r12, &g->r13, &g->r14, &g->r15, &g->rip, &g->rflags };

	for (int i = 0; i < 18; i++)
		*v[i] = state_get_u64(r);
}

static void put_sregs(struct state_buf *b, const struct kvm_sregs *s)
{
	const struct kvm_segment *segs[8] = { &s->cs, &s->ds, &s->es, &s->fs,
					      &s->gs, &s->ss, &s->tr, &s->ldt };

	for (int i = 0; i < 8; i++)
		put_seg(b, segs[i]);
	state_put_u64(b, s->gdt.base);
	state_put_u16(b, s->gdt.limit);
	state_put_u64(b, s->idt.base);
	state_put_u16(b, s->idt.limit);
	state_put_u64(b, s->cr0);
	state_put_u64(b, s->cr2);
	state_put_u64(b, s->cr3);
	state_put_u64(b, s->cr4);
	state_put_u64(b, s->cr8);
	state_put_u64(b, s->efer);
	state_put_u64(b, s->apic_base);
	for (int i = 0; i < 4; i++)
		state_put_u64(b, s->interrupt_bitmap[i]);
}

static void get_sregs(struct state_rd *r, struct kvm_sregs *s)
{
	struct kvm_segment *segs[8] = { &s->cs, &s->ds, &s->es, &s->fs,
					&s->gs, &s->ss, &s->tr, &s->ldt };

	for (int i = 0; i < 8; i++)
		get_seg(r, segs[i]);
	s->gdt.base = state_get_u64(r);
	s->gdt.limit = state_get_u16(r);
	s->idt.base = state_get_u64(r);
	s->idt.limit = state_get_u16(r);
	s->cr0 = state_get_u64(r);
	s->cr2 = state_get_u64(r);
	s->cr3 = state_get_u64(r);
	s->cr4 = state_get_u64(r);
	s->cr8 = state_get_u64(r);
	s->efer = state_get_u64(r);
	s->apic_base = state_get_u64(r);
	for (int i = 0; i < 4; i++)
		s->interrupt_bitmap[i] = state_get_u64(r);
}

static void put_events(struct state_buf *b, const struct kvm_vcpu_events *e)
{
	state_put_u8(b, e->exception.injected);
	state_put_u8(b, e->exception.nr);
	state_put_u8(b, e->exception.has_error_code);
	state_put_u8(b, e->exception.pending);
	state_put_u32(b, e->exception.error_code);
	state_put_u8(b, e->interrupt.injected);
	state_put_u8(b, e->interrupt.nr);
	state_put_u8(b, e->interrupt.soft);
	state_put_u8(b, e->interrupt.shadow);
	state_put_u8(b, e->nmi.injected);
	state_put_u8(b, e->nmi.pending);
	state_put_u8(b, e->nmi.masked);
	state_put_u32(b, e->sipi_vector);
	state_put_u32(b, e->flags);
	state_put_u8(b, e->smi.smm);
	state_put_u8(b, e->smi.pending);
	state_put_u8(b, e->smi.smm_inside_nmi);
	state_put_u8(b, e->smi.latched_init);
	state_put_u8(b, e->exception_has_payload);
	state_put_u64(b, e->exception_payload);
}

static void get_events(struct state_rd *r, struct kvm_vcpu_events *e)
{
	memset(e, 0, sizeof(*e));
	e->exception.injected = state_get_u8(r);
	e->exception.nr = state_get_u8(r);
	e->exception.has_error_code = state_get_u8(r);
	e->exception.pending = state_get_u8(r);
	e->exception.error_code = state_get_u32(r);
	e->interrupt.injected = state_get_u8(r);
	e->interrupt.nr = state_get_u8(r);
	e->interrupt.soft = state_get_u8(r);
	e->interrupt.shadow = state_get_u8(r);
	e->nmi.injected = state_get_u8(r);
	e->nmi.pending = state_get_u8(r);
	e->nmi.masked = state_get_u8(r);
	e->sipi_vector = state_get_u32(r);
	e->flags = state_get_u32(r);
	e->smi.smm = state_get_u8(r);
	e->smi.pending = state_get_u8(r);
	e->smi.smm_inside_nmi = state_get_u8(r);
	e->smi.latched_init = state_get_u8(r);
	e->exception_has_payload = state_get_u8(r);
	e->exception_payload = state_get_u64(r);
	if (e->exception.nr > 31)
		r->err = -EINVAL;
}

/* Every MSR KVM lists that this vCPU can read. KVM_GET_MSRS stops at the
 * first MSR it cannot read, so go on past each one it refuses. */
static int save_msrs(struct vcpu *vcpu, struct state_buf *b)
{
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + MAX_MSRS * sizeof(__u32));
	struct kvm_msrs *m = calloc(1, sizeof(*m) + MAX_MSRS * sizeof(struct kvm_msr_entry));
	struct kvm_msr_entry *saved = calloc(MAX_MSRS, sizeof(*saved));
	uint32_t n = 0;
	int r = 0;

	if (!list || !m || !saved) {
		r = -ENOMEM;
		goto out;
	}
	list->nmsrs = MAX_MSRS;
	if (kvm_ioctl(vcpu->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		r = -errno;
		goto out;
	}
	for (uint32_t i = 0; i < list->nmsrs;) {
		int got;

		m->nmsrs = list->nmsrs - i;
		for (uint32_t j = 0; j < m->nmsrs; j++)
			m->entries[j] = (struct kvm_msr_entry){ .index = list->indices[i + j] };
		got = kvm_ioctl(vcpu->fd, KVM_GET_MSRS, m);
		if (got < 0) {
			r = -errno;
			goto out;
		}
		memcpy(saved + n, m->entries, (size_t)got * sizeof(*saved));
		n += (uint32_t)got;
		i += (uint32_t)got + 1; /* skip the one it refused */
	}
	state_put_u32(b, n);
	for (uint32_t i = 0; i < n; i++) {
		state_put_u32(b, saved[i].index);
		/* The guest's LSTAR, not the syscall shim's (emulating hosts). */
		state_put_u64(b, syscall_shim_saved_msr(vcpu, saved[i].index, saved[i].data));
	}
out:
	free(list);
	free(m);
	free(saved);
	return r;
}

static int load_msrs(struct vcpu *vcpu, struct state_rd *rd)
{
	uint32_t n = state_get_u32(rd);
	struct kvm_msrs *m;
	int r = 0, set;

	if (rd->err || n > MAX_MSRS)
		return -EINVAL;
	m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
	if (!m)
		return -ENOMEM;
	m->nmsrs = n;
	for (uint32_t i = 0; i < n; i++) {
		m->entries[i].index = state_get_u32(rd);
		m->entries[i].data = state_get_u64(rd);
	}
	if (rd->err) {
		free(m);
		return -EINVAL;
	}
	set = kvm_ioctl(vcpu->fd, KVM_SET_MSRS, m);
	if (set < 0)
		r = -errno;
	else if ((uint32_t)set < n)
		/* A host that cannot take an MSR the source had: not fatal for
		 * most (feature MSRs), so say which and go on. */
		cv_warn("vCPU %u: the host refused MSR %#x of the saved state", vcpu->id,
			m->entries[set].index);
	free(m);
	return r;
}

int vcpu_state_save(struct vcpu *vcpu, struct state_buf *b)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave *xs = calloc(1, sizeof(*xs));
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_debugregs dbg;
	int r = 0;

	if (!xs)
		return -ENOMEM;
	if (kvm_ioctl(vcpu->fd, KVM_GET_MP_STATE, &mp) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_GET_XSAVE, xs) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_GET_XCRS, &xcrs) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ev) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_GET_DEBUGREGS, &dbg) < 0) {
		r = -errno;
		goto out;
	}
	state_put_u32(b, VCPU_STATE_VERSION);
	state_put_u32(b, mp.mp_state);
	put_regs(b, &regs);
	put_sregs(b, &sregs);
	state_put_u32(b, sizeof(xs->region));
	for (size_t i = 0; i < sizeof(xs->region) / 4; i++)
		state_put_u32(b, xs->region[i]);
	state_put_u32(b, xcrs.nr_xcrs);
	for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
		state_put_u32(b, xcrs.xcrs[i].xcr);
		state_put_u64(b, xcrs.xcrs[i].value);
	}
	state_put_bytes(b, lapic.regs, sizeof(lapic.regs));
	if ((r = save_msrs(vcpu, b)))
		goto out;
	put_events(b, &ev);
	for (int i = 0; i < 4; i++)
		state_put_u64(b, dbg.db[i]);
	state_put_u64(b, dbg.dr6);
	state_put_u64(b, dbg.dr7);
	r = b->err;
out:
	free(xs);
	return r;
}

int vcpu_state_load(struct vcpu *vcpu, struct state_rd *rd)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave *xs = calloc(1, sizeof(*xs));
	struct kvm_xcrs xcrs = { 0 };
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_debugregs dbg = { 0 };
	uint32_t xlen;
	int r = -EINVAL;

	if (!xs)
		return -ENOMEM;
	if (state_get_u32(rd) != VCPU_STATE_VERSION)
		goto out;
	mp.mp_state = state_get_u32(rd);
	get_regs(rd, &regs);
	get_sregs(rd, &sregs);
	xlen = state_get_u32(rd);
	if (rd->err || xlen != sizeof(xs->region) || mp.mp_state > KVM_MP_STATE_AP_RESET_HOLD)
		goto out;
	for (size_t i = 0; i < sizeof(xs->region) / 4; i++)
		xs->region[i] = state_get_u32(rd);
	xcrs.nr_xcrs = state_get_u32(rd);
	if (xcrs.nr_xcrs > KVM_MAX_XCRS)
		goto out;
	for (uint32_t i = 0; i < xcrs.nr_xcrs; i++) {
		xcrs.xcrs[i].xcr = state_get_u32(rd);
		xcrs.xcrs[i].value = state_get_u64(rd);
	}
	state_get_bytes(rd, lapic.regs, sizeof(lapic.regs));
	if (rd->err)
		goto out;
	/* The order KVM needs: SREGS (mode, APIC base) before the LAPIC,
	 * the LAPIC before MSRs (TSC deadline), REGS before VCPU_EVENTS. */
	if (kvm_ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_SET_XSAVE, xs) < 0 ||
	    (xcrs.nr_xcrs && kvm_ioctl(vcpu->fd, KVM_SET_XCRS, &xcrs) < 0) ||
	    kvm_ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0) {
		r = -errno;
		goto out;
	}
	if ((r = load_msrs(vcpu, rd)))
		goto out;
	get_events(rd, &ev);
	for (int i = 0; i < 4; i++)
		dbg.db[i] = state_get_u64(rd);
	dbg.dr6 = state_get_u64(rd);
	dbg.dr7 = state_get_u64(rd);
	if (rd->err) {
		r = -EINVAL;
		goto out;
	}
	ev.flags &= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
		    KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
	if (kvm_ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_SET_DEBUGREGS, &dbg) < 0 ||
	    kvm_ioctl(vcpu->fd, KVM_SET_MP_STATE, &mp) < 0) {
		r = -errno;
		goto out;
	}
	/* The loaded LSTAR is the guest's: the shim takes it over again. */
	r = syscall_shim_vcpu_loaded(vcpu);
out:
	free(xs);
	return r;
}

/* The 8259 state: 16 byte-wide fields of struct kvm_pic_state. */
static const size_t pic_fields[] = {
	offsetof(struct kvm_pic_state, last_irr),
	offsetof(struct kvm_pic_state, irr),
	offsetof(struct kvm_pic_state, imr),
	offsetof(struct kvm_pic_state, isr),
	offsetof(struct kvm_pic_state, priority_add),
	offsetof(struct kvm_pic_state, irq_base),
	offsetof(struct kvm_pic_state, read_reg_select),
	offsetof(struct kvm_pic_state, poll),
	offsetof(struct kvm_pic_state, special_mask),
	offsetof(struct kvm_pic_state, init_state),
	offsetof(struct kvm_pic_state, auto_eoi),
	offsetof(struct kvm_pic_state, rotate_on_auto_eoi),
	offsetof(struct kvm_pic_state, special_fully_nested_mode),
	offsetof(struct kvm_pic_state, init4),
	offsetof(struct kvm_pic_state, elcr),
	offsetof(struct kvm_pic_state, elcr_mask),
};

static void put_chip(struct state_buf *b, const struct kvm_irqchip *c)
{
	state_put_u32(b, c->chip_id);
	if (c->chip_id == KVM_IRQCHIP_IOAPIC) {
		const struct kvm_ioapic_state *io = &c->chip.ioapic;

		state_put_u64(b, io->base_address);
		state_put_u32(b, io->ioregsel);
		state_put_u32(b, io->id);
		state_put_u32(b, io->irr);
		for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
			state_put_u64(b, io->redirtbl[i].bits);
	} else {
		const uint8_t *p = (const uint8_t *)&c->chip.pic;

		for (size_t i = 0; i < ARRAY_SIZE(pic_fields); i++)
			state_put_u8(b, p[pic_fields[i]]);
	}
}

static void get_chip(struct state_rd *r, struct kvm_irqchip *c)
{
	if (c->chip_id == KVM_IRQCHIP_IOAPIC) {
		struct kvm_ioapic_state *io = &c->chip.ioapic;

		io->base_address = state_get_u64(r);
		io->ioregsel = state_get_u32(r);
		io->id = state_get_u32(r);
		io->irr = state_get_u32(r);
		for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
			io->redirtbl[i].bits = state_get_u64(r);
	} else {
		uint8_t *p = (uint8_t *)&c->chip.pic;

		for (size_t i = 0; i < ARRAY_SIZE(pic_fields); i++)
			p[pic_fields[i]] = state_get_u8(r);
	}
}

int vm_kstate_save(struct vm *vm, struct state_buf *b)
{
	struct kvm_irqchip chips[3] = { { .chip_id = KVM_IRQCHIP_PIC_MASTER },
					{ .chip_id = KVM_IRQCHIP_PIC_SLAVE },
					{ .chip_id = KVM_IRQCHIP_IOAPIC } };
	struct kvm_pit_state2 pit = { 0 }; /* all zero without a PIT (--pit off) */
	struct kvm_clock_data clock = { 0 };

	/* A split irqchip: no PICs (saved as zeros) and cvisor's IOAPIC, in
	 * the form of KVM's, so the section's layout is the same. */
	if (vm->cfg->irqchip == CONFIG_IRQCHIP_SPLIT)
		ioapic_get_state(&vm->ioapic, LAYOUT_IOAPIC, &chips[2].chip.ioapic);
	for (int i = 0; vm->cfg->irqchip == CONFIG_IRQCHIP_KERNEL && i < 3; i++)
		if (kvm_ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chips[i]) < 0)
			return -errno;
	if ((config_pit_on(vm->cfg) && kvm_ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0) ||
	    kvm_ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return -errno;
	state_put_u32(b, VM_KSTATE_VERSION);
	for (int i = 0; i < 3; i++)
		put_chip(b, &chips[i]);
	for (int i = 0; i < 3; i++) {
		const struct kvm_pit_channel_state *c = &pit.channels[i];

		state_put_u32(b, c->count);
		state_put_u16(b, c->latched_count);
		state_put_u8(b, c->count_latched);
		state_put_u8(b, c->status_latched);
		state_put_u8(b, c->status);
		state_put_u8(b, c->read_state);
		state_put_u8(b, c->write_state);
		state_put_u8(b, c->write_latch);
		state_put_u8(b, c->rw_mode);
		state_put_u8(b, c->mode);
		state_put_u8(b, c->bcd);
		state_put_u8(b, c->gate);
		state_put_u64(b, (uint64_t)c->count_load_time);
	}
	state_put_u32(b, pit.flags);
	state_put_u64(b, clock.clock);
	return b->err;
}

int vm_kstate_load(struct vm *vm, struct state_rd *rd)
{
	struct kvm_irqchip chips[3];
	struct kvm_pit_state2 pit = { 0 };
	struct kvm_clock_data clock = { 0 };

	if (state_get_u32(rd) != VM_KSTATE_VERSION)
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		memset(&chips[i], 0, sizeof(chips[i]));
		chips[i].chip_id = state_get_u32(rd);
		if (chips[i].chip_id != (uint32_t)i)
			return -EINVAL;
		get_chip(rd, &chips[i]);
	}
	for (int i = 0; i < 3; i++) {
		struct kvm_pit_channel_state *c = &pit.channels[i];

		c->count = state_get_u32(rd);
		c->latched_count = state_get_u16(rd);
		c->count_latched = state_get_u8(rd);
		c->status_latched = state_get_u8(rd);
		c->status = state_get_u8(rd);
		c->read_state = state_get_u8(rd);
		c->write_state = state_get_u8(rd);
		c->write_latch = state_get_u8(rd);
		c->rw_mode = state_get_u8(rd);
		c->mode = state_get_u8(rd);
		c->bcd = state_get_u8(rd);
		c->gate = state_get_u8(rd);
		c->count_load_time = (int64_t)state_get_u64(rd);
		/* KVM leaves a channel the guest never programmed at mode 0xff
		 * (kvm_pit_reset). */
		if ((c->mode > 5 && c->mode != 0xff) || c->rw_mode > 3 || c->bcd > 1 || c->gate > 1)
			return -EINVAL;
	}
	pit.flags = state_get_u32(rd);
	clock.clock = state_get_u64(rd);
	if (rd->err)
		return -EINVAL;
	if (vm->cfg->irqchip == CONFIG_IRQCHIP_SPLIT) {
		/* The PICs' bytes are whatever the file holds: there is no PIC. */
		if (ioapic_set_state(&vm->ioapic, LAYOUT_IOAPIC, &chips[2].chip.ioapic))
			return -EINVAL;
	}
	for (int i = 0; vm->cfg->irqchip == CONFIG_IRQCHIP_KERNEL && i < 3; i++)
		if (kvm_ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0)
			return -errno;
	/* kvmclock continues from the saved instant: the guest does not see
	 * the time it spent saved or in flight. */
	if ((config_pit_on(vm->cfg) && kvm_ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0) ||
	    kvm_ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return -errno;
	return 0;
}
