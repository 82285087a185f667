/* ioapic.c - the I/O APIC of a split irqchip (see ioapic.h).
 *
 * Register interface and entry layout: Intel 82093AA I/O APIC datasheet
 * (290566-001), 3.0-3.2. Version 0x11 as KVM's and QEMU's: no directed
 * EOI register, so Linux clears a stuck remote IRR by switching the entry
 * to edge and back (io_apic.c __eoi_ioapic_pin), which clears it here too.
 * A guest can program anything: an entry whose delivery cannot be carried
 * out (ExtINT with no PIC, a reserved mode, a vector below 16) raises
 * nothing and is logged once per pin (until it is deliverable again; at
 * most IOAPIC_MAX_WARNINGS lines in all). */
#include "cvisor/ioapic.h"

#include <errno.h>
#include <string.h>

#include "cvisor/util.h"

#define REG_ID 0x00
#define REG_VER 0x01
#define REG_ARB 0x02
#define REG_REDIR 0x10 /* pin n: 0x10 + 2n (low dword), 0x11 + 2n (high) */

#define OFF_IOREGSEL 0x00
#define OFF_IOWIN 0x10

#define RO_BITS (IOAPIC_RE_DELIVS | IOAPIC_RE_REMOTE_IRR)
/* Bits 17-55 are reserved (read as 0); the destination is bits 56-63. */
#define RW_BITS ((0xffffull & ~RO_BITS) | IOAPIC_RE_MASK | (0xffull << IOAPIC_RE_DEST_SHIFT))

enum { DM_FIXED = 0, DM_LOWEST = 1, DM_SMI = 2, DM_NMI = 4, DM_INIT = 5, DM_EXTINT = 7 };

void ioapic_entry_msi(uint64_t e, uint64_t *addr, uint32_t *data)
{
	uint64_t dest = (e >> IOAPIC_RE_DEST_SHIFT) & 0xff;

	*addr = 0xfee00000ull | dest << 12 | (e & IOAPIC_RE_DESTMODE ? 1ull << 2 : 0);
	*data = (uint32_t)(e & IOAPIC_RE_VECTOR) |
		(uint32_t)((e >> IOAPIC_RE_DELMODE_SHIFT) & 7) << 8 |
		(e & IOAPIC_RE_LEVEL ? 1u << 15 : 0);
}

/* Whether an entry describes an interrupt a local APIC can take. */
static bool entry_deliverable(struct ioapic *io, unsigned int pin)
{
	uint64_t e = io->redir[pin];
	unsigned int dm = (e >> IOAPIC_RE_DELMODE_SHIFT) & 7;
	const char *why = NULL;

	if (dm == DM_EXTINT)
		why = "ExtINT, and there is no PIC";
	else if (dm != DM_FIXED && dm != DM_LOWEST && dm != DM_SMI && dm != DM_NMI && dm != DM_INIT)
		why = "a reserved delivery mode";
	else if ((dm == DM_FIXED || dm == DM_LOWEST) && (e & IOAPIC_RE_VECTOR) < 16)
		why = "a vector below 16";
	if (!why) {
		io->logged &= ~(1u << pin);
		return true;
	}
	/* Once per pin until it is deliverable again, and a few lines in all:
	 * a guest that rewrites bad entries in a loop cannot fill the log. */
	if (!(io->logged & 1u << pin) && io->warnings < IOAPIC_MAX_WARNINGS)
		cv_warn("IOAPIC pin %u: the guest programmed %s (entry %#llx): not delivered%s",
			pin, why, (unsigned long long)e,
			++io->warnings == IOAPIC_MAX_WARNINGS ? " (no more such lines)" : "");
	io->logged |= 1u << pin;
	return false;
}

/* Install, change or drop pin's route. A masked pin keeps its route while
 * its remote IRR waits for an EOI: KVM reports the EOI of a level vector
 * only for the routes it knows (kvm_scan_ioapic_routes). */
static void update_route(struct ioapic *io, unsigned int pin)
{
	uint64_t e = io->redir[pin], addr = 0;
	uint32_t data = 0;
	bool present =
		(!(e & IOAPIC_RE_MASK) || (e & IOAPIC_RE_REMOTE_IRR)) && entry_deliverable(io, pin);

	if (present)
		ioapic_entry_msi(e, &addr, &data);
	if (!present && !(io->routed & 1u << pin))
		return;
	io->ops->route(io->ctx, pin, present, addr, data);
	if (present)
		io->routed |= 1u << pin;
	else
		io->routed &= ~(1u << pin);
}

static void deliver(struct ioapic *io, unsigned int pin)
{
	uint64_t addr;
	uint32_t data;

	if (!entry_deliverable(io, pin))
		return;
	/* Both callers deliver only unmasked pins, whose route update_route
	 * already installed: KVM knows the vector, and reports its EOI. */
	if (io->redir[pin] & IOAPIC_RE_LEVEL)
		io->redir[pin] |= IOAPIC_RE_REMOTE_IRR;
	ioapic_entry_msi(io->redir[pin], &addr, &data);
	io->ops->deliver(io->ctx, addr, data);
}

/* A level pin asserted, unmasked and not waiting for an EOI fires. */
static void service_level(struct ioapic *io, unsigned int pin)
{
	uint64_t e = io->redir[pin];

	if ((e & IOAPIC_RE_LEVEL) && (io->irr & 1u << pin) && !(e & IOAPIC_RE_MASK) &&
	    !(e & IOAPIC_RE_REMOTE_IRR))
		deliver(io, pin);
}

void ioapic_init(struct ioapic *io, uint8_t id, const struct ioapic_ops *ops, void *ctx)
{
	memset(io, 0, sizeof(*io));
	pthread_mutex_init(&io->lock, NULL);
	io->id = id & 0xf;
	io->ops = ops;
	io->ctx = ctx;
	for (unsigned int i = 0; i < IOAPIC_PINS; i++)
		io->redir[i] = IOAPIC_RE_MASK;
}

void ioapic_destroy(struct ioapic *io)
{
	pthread_mutex_destroy(&io->lock);
}

void ioapic_set_irq(struct ioapic *io, unsigned int pin, int level)
{
	uint32_t bit;

	if (pin >= IOAPIC_PINS)
		return;
	bit = 1u << pin;
	pthread_mutex_lock(&io->lock);
	if (!level) {
		io->irr &= ~bit;
	} else if (io->redir[pin] & IOAPIC_RE_LEVEL) {
		io->irr |= bit;
		service_level(io, pin);
	} else {
		/* Edge: a rising edge on an unmasked pin. One while masked is
		 * lost, as on the 82093AA. */
		bool rising = !(io->irr & bit);

		io->irr |= bit;
		if (rising && !(io->redir[pin] & IOAPIC_RE_MASK))
			deliver(io, pin);
	}
	pthread_mutex_unlock(&io->lock);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	pthread_mutex_lock(&io->lock);
	for (unsigned int pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->redir[pin];

		if ((e & IOAPIC_RE_VECTOR) != vector || !(e & IOAPIC_RE_REMOTE_IRR))
			continue;
		io->redir[pin] &= ~IOAPIC_RE_REMOTE_IRR;
		if (io->redir[pin] & IOAPIC_RE_MASK)
			update_route(io, pin); /* nothing more to wait for */
		service_level(io, pin);
	}
	pthread_mutex_unlock(&io->lock);
}

static uint32_t reg_read(struct ioapic *io)
{
	uint32_t sel = io->ioregsel;

	switch (sel) {
	case REG_ID:
	case REG_ARB: /* arbitration ID: the APIC ID after a reset */
		return (uint32_t)io->id << 24;
	case REG_VER:
		return IOAPIC_VERSION | (IOAPIC_PINS - 1) << 16;
	}
	if (sel >= REG_REDIR && sel < REG_REDIR + 2 * IOAPIC_PINS) {
		uint64_t e = io->redir[(sel - REG_REDIR) / 2];

		return (sel & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
	}
	return 0; /* unimplemented registers read as zero (QEMU, KVM) */
}

static void entry_write(struct ioapic *io, unsigned int pin, bool high, uint32_t v)
{
	uint64_t old = io->redir[pin], e;

	e = high ? (old & 0xffffffffull) | (uint64_t)v << 32 : (old & 0xffffffff00000000ull) | v;
	e = (e & RW_BITS) | (old & RO_BITS);
	/* An edge entry has no remote IRR: switching to edge clears it. */
	if (!(e & IOAPIC_RE_LEVEL))
		e &= ~IOAPIC_RE_REMOTE_IRR;
	io->redir[pin] = e;
	update_route(io, pin);
	/* A level line held while masked fires when unmasked. */
	service_level(io, pin);
}

static void reg_write(struct ioapic *io, uint32_t v)
{
	uint32_t sel = io->ioregsel;

	if (sel == REG_ID)
		io->id = (v >> 24) & 0xf;
	else if (sel >= REG_REDIR && sel < REG_REDIR + 2 * IOAPIC_PINS)
		entry_write(io, (sel - REG_REDIR) / 2, sel & 1, v);
	/* version and arbitration are read-only */
}

static void bus_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct ioapic *io = opaque;
	uint32_t v = 0;

	pthread_mutex_lock(&io->lock);
	if (off == OFF_IOREGSEL)
		v = io->ioregsel;
	else if (off == OFF_IOWIN)
		v = reg_read(io);
	pthread_mutex_unlock(&io->lock);
	/* Only 32-bit accesses are defined (3.1); a narrower read gets the
	 * low bytes, a wider one zeros above. */
	memset(data, 0, len);
	memcpy(data, &v, len < 4 ? len : 4);
}

static void bus_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct ioapic *io = opaque;
	uint32_t v = 0;

	memcpy(&v, data, len < 4 ? len : 4);
	pthread_mutex_lock(&io->lock);
	if (off == OFF_IOREGSEL)
		io->ioregsel = v & 0xff;
	else if (off == OFF_IOWIN && len == 4)
		reg_write(io, v);
	pthread_mutex_unlock(&io->lock);
}

const struct bus_ops ioapic_bus_ops = {
	.read = bus_read,
	.write = bus_write,
};

void ioapic_get_state(struct ioapic *io, uint64_t base, struct kvm_ioapic_state *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&io->lock);
	s->base_address = base;
	s->ioregsel = io->ioregsel;
	s->id = io->id;
	s->irr = io->irr;
	for (unsigned int i = 0; i < IOAPIC_PINS; i++)
		s->redirtbl[i].bits = io->redir[i];
	pthread_mutex_unlock(&io->lock);
}

int ioapic_set_state(struct ioapic *io, uint64_t base, const struct kvm_ioapic_state *s)
{
	static_assert(KVM_IOAPIC_NUM_PINS == IOAPIC_PINS, "KVM's IOAPIC state has our pins");

	if (s->base_address != base || s->ioregsel > 0xff || s->id > 0xf || (s->irr >> IOAPIC_PINS))
		return -EINVAL;
	pthread_mutex_lock(&io->lock);
	io->ioregsel = s->ioregsel;
	io->id = (uint8_t)s->id;
	io->irr = s->irr;
	io->logged = 0;
	for (unsigned int i = 0; i < IOAPIC_PINS; i++) {
		uint64_t e = s->redirtbl[i].bits & (RW_BITS | IOAPIC_RE_REMOTE_IRR);

		if (!(e & IOAPIC_RE_LEVEL))
			e &= ~IOAPIC_RE_REMOTE_IRR;
		io->redir[i] = e;
	}
	/* Every route, even one already believed installed: this can be a
	 * fresh VM whose routing table is empty. */
	io->routed = (1u << IOAPIC_PINS) - 1;
	for (unsigned int i = 0; i < IOAPIC_PINS; i++)
		update_route(io, i);
	pthread_mutex_unlock(&io->lock);
	return 0;
}
