/* mptable.h - Intel MultiProcessor Specification 1.4 table. */
#ifndef CVISOR_MPTABLE_H
#define CVISOR_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "cvisor/util.h"

/* Build the MP floating pointer (at buf[0]) and the configuration table
 * after it, for ncpus processors (APIC IDs 0..ncpus-1, CPU 0 the BSP), one
 * IOAPIC and the ISA interrupts routed the way KVM's in-kernel irqchip
 * routes them by default (IRQ n -> IOAPIC pin n, as in the MADT). buf is
 * seen by the guest at buf_gpa (must lie in 0xF0000-0xFFFFF or the last KiB
 * of base memory for the guest's scan to find it). *used gets the bytes
 * needed, also on -ENOSPC; nothing is written unless all of it fits.
 * -EINVAL: ncpus 0 or > 254, ioapic_id < ncpus or 0xff (local and I/O APIC
 * IDs share one 8-bit space on the APIC bus and 0xff is broadcast, so
 * ncpus <= 254 leaves the IOAPIC an id: pass ioapic_id = ncpus or 0xfe), or
 * tables that would not lie below 4 GiB (MP pointers are 32-bit).
 * -ENOSPC if buf_len is too small. */
int mptable_build(uint8_t *buf, size_t buf_len, uint64_t buf_gpa, unsigned int ncpus,
		  uint32_t ioapic_addr, uint8_t ioapic_id, size_t *used) CV_MUST;

#endif
