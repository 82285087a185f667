/* irq.h - interrupt plumbing to the in-kernel irqchip: the GSI routing
 * table (IOAPIC and PIC pins, plus MSI routes for MSI-X vectors), irqfds
 * that devices write to raise an interrupt, and ioeventfds through which
 * KVM reports guest notifications without an exit to user space. */
#ifndef CVISOR_IRQ_H
#define CVISOR_IRQ_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvisor/util.h"

#define IRQ_IOAPIC_PINS 24
#define IRQ_MAX_ROUTES 512

struct irq_router {
	int vm_fd;
	pthread_mutex_t lock;
	uint32_t next_gsi; /* first free GSI above the IOAPIC pins */
	unsigned int nr;
	struct kvm_irq_routing_entry entries[IRQ_MAX_ROUTES];
};

/* The default routes KVM starts with: GSI n to IOAPIC pin n, and GSIs
 * 0-15 also to the PICs. Installed again with every MSI change, because
 * KVM_SET_GSI_ROUTING replaces the whole table. With split (a split
 * irqchip: the IOAPIC is cvisor's), no routes: see irq_set_pin. */
void irq_router_init(struct irq_router *r, int vm_fd, bool split);

/* Split irqchip: GSI gsi (an IOAPIC pin, below IRQ_IOAPIC_PINS) routed
 * as the MSI (addr, data), or not routed at all (present false), as the
 * guest programmed the pin. Commits only a change. -errno from KVM, and
 * then the table is as before. */
int irq_set_pin(struct irq_router *r, uint32_t gsi, bool present, uint64_t addr,
		uint32_t data) CV_MUST;

/* A new GSI for an MSI route (initially masked: address 0). -ENOSPC. */
int irq_alloc_msi(struct irq_router *r, uint32_t *gsi) CV_MUST;

/* Point an MSI GSI at (address, data), as the guest programmed the vector. */
int irq_set_msi(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data) CV_MUST;

/* An eventfd that raises gsi when written (KVM_IRQFD). Returns the fd or -errno. */
int irq_irqfd(int vm_fd, uint32_t gsi) CV_MUST;

/* Signal an irqfd (or any eventfd). */
void irq_eventfd_signal(int fd);

/* An eventfd that KVM signals when the guest writes `len` bytes at `addr`
 * (with datamatch if match is true) in MMIO (or port I/O if pio). Returns
 * the fd, or -errno (then the caller handles the exit itself). */
int irq_ioeventfd(int vm_fd, uint64_t addr, uint32_t len, bool match, uint64_t data,
		  bool pio) CV_MUST;

/* Move the MMIO ioeventfd fd (made by irq_ioeventfd without datamatch)
 * of len bytes from old to new_addr: a BAR the guest moved. 0, or -errno
 * with the fd no longer at new_addr (the caller takes those kicks as MMIO
 * exits). */
int irq_ioeventfd_move(int vm_fd, int fd, uint64_t old, uint64_t new_addr, uint32_t len) CV_MUST;

#endif
