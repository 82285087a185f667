/* ioapic.h - an I/O APIC (82093AA) in user space, for a split irqchip:
 * KVM keeps the local APICs, cvisor the IOAPIC, and there is no PIC.
 *
 * Every pin's redirection entry becomes an MSI (address, data) that the
 * owner installs as GSI n's route (KVM_SET_GSI_ROUTING), so an irqfd on
 * GSI n keeps raising the pin's vector; lines raised by cvisor's own
 * devices (ioapic_set_irq) are delivered here, with the remote IRR of
 * level-triggered pins kept until the guest's EOI (KVM_EXIT_IOAPIC_EOI). */
#ifndef CVISOR_IOAPIC_H
#define CVISOR_IOAPIC_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvisor/bus.h"

#define IOAPIC_PINS 24
#define IOAPIC_MAX_WARNINGS 16 /* bad-entry lines per IOAPIC (ioapic.c) */
#define IOAPIC_VERSION 0x11    /* 82093AA: no EOI register (that is 0x20) */
#define IOAPIC_MMIO_LEN 0x1000

/* Redirection entry bits (82093AA datasheet 3.2.4). */
#define IOAPIC_RE_VECTOR 0xffull
#define IOAPIC_RE_DELMODE_SHIFT 8 /* 3 bits: 0 fixed, 1 lowest, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT */
#define IOAPIC_RE_DESTMODE (1ull << 11)	  /* logical */
#define IOAPIC_RE_DELIVS (1ull << 12)	  /* delivery status, read-only */
#define IOAPIC_RE_POLARITY (1ull << 13)	  /* active low */
#define IOAPIC_RE_REMOTE_IRR (1ull << 14) /* read-only */
#define IOAPIC_RE_LEVEL (1ull << 15)	  /* trigger mode */
#define IOAPIC_RE_MASK (1ull << 16)
#define IOAPIC_RE_DEST_SHIFT 56

/* What the IOAPIC asks of its owner. Called with the IOAPIC's lock held:
 * they must not call back into it. */
struct ioapic_ops {
	/* Deliver one interrupt now (KVM_SIGNAL_MSI). */
	void (*deliver)(void *ctx, uint64_t addr, uint32_t data);
	/* Pin's GSI route: present with (addr, data), or none (a masked pin
	 * with no EOI to wait for: an irqfd on it then raises nothing). */
	void (*route)(void *ctx, unsigned int pin, bool present, uint64_t addr, uint32_t data);
};

struct ioapic {
	pthread_mutex_t lock;
	uint32_t ioregsel;
	uint8_t id;		     /* register 0 bits 27:24 */
	uint32_t irr;		     /* line level of each pin (1 asserted) */
	uint64_t redir[IOAPIC_PINS]; /* as the guest reads them */
	uint32_t routed;	     /* pins whose route is installed */
	uint32_t logged;	     /* bit per pin: a bad entry was logged */
	unsigned int warnings;	     /* lines logged, at most IOAPIC_MAX_WARNINGS */
	const struct ioapic_ops *ops;
	void *ctx;
};

/* Reset state: every pin masked, edge, vector 0; ID id. */
void ioapic_init(struct ioapic *io, uint8_t id, const struct ioapic_ops *ops, void *ctx);

void ioapic_destroy(struct ioapic *io);

/* Set pin's line level (0 low, else asserted; polarity is not applied,
 * as KVM's own IOAPIC does not). An out-of-range pin is ignored. Any
 * thread. */
void ioapic_set_irq(struct ioapic *io, unsigned int pin, int level);

/* The guest's EOI of vector on a local APIC, for a level-triggered
 * interrupt: clears the remote IRR of the pins with that vector and
 * delivers again a line still asserted. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

/* The MSI a redirection entry sends: address 0xfee00000 | dest << 12 |
 * dest_mode << 2, data vector | delivery_mode << 8 | trigger << 15. */
void ioapic_entry_msi(uint64_t entry, uint64_t *addr, uint32_t *data);

/* Saved state in the form of KVM's own (struct kvm_ioapic_state, as the
 * snapshot's KSTATE carries it). set validates what it loads (a base
 * other than base, read-only bits are recomputed) and reinstalls every
 * pin's route; -EINVAL and nothing changed on a bad state. */
void ioapic_get_state(struct ioapic *io, uint64_t base, struct kvm_ioapic_state *s);
int ioapic_set_state(struct ioapic *io, uint64_t base, const struct kvm_ioapic_state *s);

/* IOREGSEL at offset 0, IOWIN at 0x10, 32-bit accesses; struct ioapic as
 * opaque. */
extern const struct bus_ops ioapic_bus_ops;

#endif
