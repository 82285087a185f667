/* irq.c - GSI routing, irqfd and ioeventfd (KVM API 4.75, 4.59, 4.60). */
#include "cvisor/irq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cvisor/kvm.h"

static void add_chip_route(struct irq_router *r, uint32_t gsi, uint32_t chip, uint32_t pin)
{
	struct kvm_irq_routing_entry *e = &r->entries[r->nr++];

	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

void irq_router_init(struct irq_router *r, int vm_fd, bool split)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = vm_fd;
	pthread_mutex_init(&r->lock, NULL);
	r->next_gsi = IRQ_IOAPIC_PINS;
	/* A split irqchip has no PIC or IOAPIC in KVM to route to (KVM refuses
	 * such routes): its pins' routes are MSIs, from irq_set_pin. */
	for (uint32_t i = 0; !split && i < IRQ_IOAPIC_PINS; i++) {
		if (i < 8)
			add_chip_route(r, i, KVM_IRQCHIP_PIC_MASTER, i);
		else if (i < 16)
			add_chip_route(r, i, KVM_IRQCHIP_PIC_SLAVE, i - 8);
		add_chip_route(r, i, KVM_IRQCHIP_IOAPIC, i);
	}
}

static int commit(struct irq_router *r)
{
	size_t sz = sizeof(struct kvm_irq_routing) + r->nr * sizeof(struct kvm_irq_routing_entry);
	struct kvm_irq_routing *t = calloc(1, sz);
	int ret = 0;

	if (!t)
		return -ENOMEM;
	t->nr = r->nr;
	memcpy(t->entries, r->entries, r->nr * sizeof(r->entries[0]));
	if (kvm_ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t) < 0)
		ret = -errno;
	free(t);
	return ret;
}

int irq_alloc_msi(struct irq_router *r, uint32_t *gsi)
{
	struct kvm_irq_routing_entry *e;
	int ret;

	pthread_mutex_lock(&r->lock);
	if (r->nr == IRQ_MAX_ROUTES) {
		pthread_mutex_unlock(&r->lock);
		return -ENOSPC;
	}
	e = &r->entries[r->nr++];
	memset(e, 0, sizeof(*e));
	e->gsi = r->next_gsi++;
	e->type = KVM_IRQ_ROUTING_MSI;
	*gsi = e->gsi;
	ret = commit(r);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_set_msi(struct irq_router *r, uint32_t gsi, uint64_t addr, uint32_t data)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&r->lock);
	for (unsigned int i = 0; i < r->nr; i++) {
		struct kvm_irq_routing_entry *e = &r->entries[i];

		if (e->gsi != gsi || e->type != KVM_IRQ_ROUTING_MSI)
			continue;
		if (e->u.msi.address_lo == (uint32_t)addr &&
		    e->u.msi.address_hi == (uint32_t)(addr >> 32) && e->u.msi.data == data) {
			ret = 0;
			break;
		}
		struct kvm_irq_routing_entry old = *e;

		e->u.msi.address_lo = (uint32_t)addr;
		e->u.msi.address_hi = (uint32_t)(addr >> 32);
		e->u.msi.data = data;
		ret = commit(r);
		if (ret)
			*e = old; /* so that the same write tries again */
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_set_pin(struct irq_router *r, uint32_t gsi, bool present, uint64_t addr, uint32_t data)
{
	struct kvm_irq_routing_entry *e = NULL, old;
	unsigned int i;
	int ret = 0;

	if (gsi >= IRQ_IOAPIC_PINS)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->nr && !e; i++)
		if (r->entries[i].gsi == gsi)
			e = &r->entries[i];
	if (!present && !e)
		goto out;
	if (present && e && e->u.msi.address_lo == (uint32_t)addr &&
	    e->u.msi.address_hi == (uint32_t)(addr >> 32) && e->u.msi.data == data)
		goto out;
	if (!present) {
		/* Removing: the last entry takes its place. */
		old = *e;
		*e = r->entries[--r->nr];
		if ((ret = commit(r))) {
			r->entries[r->nr++] = *e;
			*e = old;
		}
		goto out;
	}
	if (!e) {
		if (r->nr == IRQ_MAX_ROUTES) {
			ret = -ENOSPC;
			goto out;
		}
		e = &r->entries[r->nr++];
		memset(e, 0, sizeof(*e));
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_MSI;
		old.type = 0; /* marks "was absent" */
	} else {
		old = *e;
	}
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = (uint32_t)(addr >> 32);
	e->u.msi.data = data;
	if ((ret = commit(r))) {
		if (old.type)
			*e = old;
		else
			r->nr--;
	}
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_irqfd(int vm_fd, uint32_t gsi)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), r;
	struct kvm_irqfd irqfd = { .gsi = gsi };

	if (fd < 0)
		return -errno;
	irqfd.fd = (uint32_t)fd;
	if (kvm_ioctl(vm_fd, KVM_IRQFD, &irqfd) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

void irq_eventfd_signal(int fd)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: the interrupt is
	 * pending anyway. */
	if (write(fd, &one, sizeof(one)) < 0) {
	}
}

int irq_ioeventfd(int vm_fd, uint64_t addr, uint32_t len, bool match, uint64_t data, bool pio)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), r;
	struct kvm_ioeventfd io = {
		.datamatch = data,
		.addr = addr,
		.len = len,
		.flags = (match ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
			 (pio ? KVM_IOEVENTFD_FLAG_PIO : 0),
	};

	if (fd < 0)
		return -errno;
	io.fd = fd;
	if (kvm_ioctl(vm_fd, KVM_IOEVENTFD, &io) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int irq_ioeventfd_move(int vm_fd, int fd, uint64_t old, uint64_t new_addr, uint32_t len)
{
	struct kvm_ioeventfd io = {
		.addr = old, .len = len, .fd = fd, .flags = KVM_IOEVENTFD_FLAG_DEASSIGN
	};

	if (kvm_ioctl(vm_fd, KVM_IOEVENTFD, &io) < 0)
		return -errno;
	io.addr = new_addr;
	io.flags = 0;
	return kvm_ioctl(vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}
