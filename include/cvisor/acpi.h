/* acpi.h - ACPI tables (RSDP, RSDT, XSDT, FADT, FACS, DSDT, MADT) for the guest. */
#ifndef CVISOR_ACPI_H
#define CVISOR_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "cvisor/util.h"

struct acpi_config {
	unsigned int ncpus;   /* APIC IDs 0..ncpus-1 */
	uint32_t lapic_addr;  /* 0xfee00000 */
	uint32_t ioapic_addr; /* 0xfec00000 */
	uint8_t ioapic_id;    /* the MP table's IOAPIC id, so both agree (see mptable.h) */
	bool no_pic;	      /* no 8259s (a split irqchip): the MADT does not claim them */
};

/* Build the RSDP, RSDT, XSDT, FADT, FACS, DSDT and MADT into buf, which the
 * guest sees at guest-physical address buf_gpa. The RSDP is at buf[0] (so
 * buf_gpa should be 16-byte aligned inside 0xE0000-0xFFFFF for the legacy
 * scan); the tables follow it, aligned in guest-physical terms (FACS to 64
 * bytes, the rest to 16). All checksums are filled in. The DSDT holds \_S5
 * and the PCI host bridge \_SB.PCI0 (pci.h: bus 0, every I/O port except
 * 0xcf8-0xcff, memory [PCI_MMIO_BASE, PCI_MMIO_END)), without which Linux
 * running with ACPI does not scan bus 0. *used gets the bytes needed, also
 * on -ENOSPC; nothing is written unless all of it fits.
 * Returns 0, -ENOSPC if buf_len is too small, -EINVAL for ncpus 0 or > 255
 * or for tables that would not lie below 4 GiB (the RSDT, FIRMWARE_CTRL and
 * DSDT pointers are 32-bit). */
int acpi_build(uint8_t *buf, size_t buf_len, uint64_t buf_gpa, const struct acpi_config *cfg,
	       size_t *used) CV_MUST;

/* Sum of bytes mod 256 (0 for a valid ACPI/MP structure). */
uint8_t acpi_checksum(const void *p, size_t len);

#endif
