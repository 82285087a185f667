/* mptable.c - Intel MultiProcessor Specification 1.4 tables.
 *
 * Section numbers refer to MP spec 1.4 chapter 4. Fields are written one by
 * one in little-endian into a zeroed byte buffer. The table describes the
 * same machine as the MADT (acpi.c): ISA IRQ n on IOAPIC pin n, because
 * KVM's default routing sends GSI n to IOAPIC pin n and its PIT raises
 * GSI 0 (see the top of acpi.c), and the SCI (IRQ 9) level/active high.
 * No IMCR: the machine is in virtual wire mode, with the PIC's output on
 * every LAPIC's LINT0 (ExtINT) and NMI on LINT1, as kvmtool describes it. */
#include "cvisor/mptable.h"

#include <errno.h>
#include <string.h>

#include "cvisor/acpi.h"
#include "cvisor/acpi_pm.h"

#define MPF_LEN 16	 /* 4.1 floating pointer structure */
#define MPC_HDR_LEN 44	 /* 4.2 configuration table header */
#define MPC_CPU_LEN 20	 /* 4.3.1 */
#define MPC_BUS_LEN 8	 /* 4.3.2 */
#define MPC_IOAPIC_LEN 8 /* 4.3.3 */
#define MPC_INT_LEN 8	 /* 4.3.4 and 4.3.5 */
#define ISA_IRQS 16
#define MPC_ENTRIES(n) ((n) + 1 + 1 + ISA_IRQS + 2)
#define MPC_LEN(n)                                                      \
	(MPC_HDR_LEN + (n)*MPC_CPU_LEN + MPC_BUS_LEN + MPC_IOAPIC_LEN + \
	 (ISA_IRQS + 2) * MPC_INT_LEN)

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_IOINTR, MP_LINTR }; /* entry types, 4.3 */
enum { MP_INT, MP_NMI, MP_SMI, MP_EXTINT };		       /* interrupt types, 4.3.4 */

#define CPU_ENABLED 0x01
#define CPU_BSP 0x02
#define LAPIC_VERSION 0x14		     /* integrated xAPIC, as KVM's lapic.c APIC_VERSION */
#define IOAPIC_VERSION 0x11		     /* KVM's ioapic.h IOAPIC_VERSION_ID */
#define CPU_SIGNATURE 0x600		     /* family 6, model 0, stepping 0 */
#define CPU_FEATURES ((1u << 0) | (1u << 9)) /* CPUID.1:EDX FPU | APIC */
#define LAPIC_ADDR 0xfee00000u
#define ISA_BUS_ID 0
#define ALL_LAPICS 0xff
/* 4.3.4 I/O interrupt entry flags: PO bits 0-1, EL bits 2-3. */
#define INTI_CONFORMING 0x0
#define INTI_ACTIVE_HIGH_LEVEL (0x1 | (0x3 << 2))

static void fix_checksum(uint8_t *p, size_t len, size_t at)
{
	p[at] = 0;
	p[at] = (uint8_t)(0x100 - acpi_checksum(p, len));
}

/* 4.3.4 I/O Interrupt Assignment and 4.3.5 Local Interrupt Assignment
 * entries share one layout; dst is the IOAPIC or LAPIC id. */
static uint8_t *put_intr(uint8_t *e, uint8_t type, uint8_t irqtype, uint16_t flags, uint8_t src_irq,
			 uint8_t dst, uint8_t dst_pin)
{
	e[0] = type;
	e[1] = irqtype;
	cv_put_le16(e + 2, flags);
	e[4] = ISA_BUS_ID;
	e[5] = src_irq;
	e[6] = dst;
	e[7] = dst_pin;
	return e + MPC_INT_LEN;
}

static void build_mpc(uint8_t *p, unsigned int ncpus, uint32_t ioapic_addr, uint8_t ioapic_id)
{
	uint8_t *e = p + MPC_HDR_LEN;

	/* 4.2 configuration table header. */
	memcpy(p, "PCMP", 4);
	cv_put_le16(p + 4, MPC_LEN(ncpus)); /* base table length */
	p[6] = 4;			    /* spec revision 1.4 */
	memcpy(p + 8, "CVISOR  ", 8);	    /* OEM ID */
	memcpy(p + 16, "CVISOR VM   ", 12); /* product ID */
	cv_put_le16(p + 34, MPC_ENTRIES(ncpus));
	cv_put_le32(p + 36, LAPIC_ADDR);
	/* OEM table, extended table: none. */

	/* Entries appear sorted by type, as 4.3 requires. */
	for (unsigned int i = 0; i < ncpus; i++, e += MPC_CPU_LEN) {
		e[0] = MP_PROCESSOR;
		e[1] = (uint8_t)i; /* local APIC id */
		e[2] = LAPIC_VERSION;
		e[3] = CPU_ENABLED | (i == 0 ? CPU_BSP : 0);
		cv_put_le32(e + 4, CPU_SIGNATURE);
		cv_put_le32(e + 8, CPU_FEATURES);
	}

	e[0] = MP_BUS;
	e[1] = ISA_BUS_ID;
	memcpy(e + 2, "ISA   ", 6); /* 4.3.2 bus type string */
	e += MPC_BUS_LEN;

	e[0] = MP_IOAPIC;
	e[1] = ioapic_id;
	e[2] = IOAPIC_VERSION;
	e[3] = 0x01; /* enabled */
	cv_put_le32(e + 4, ioapic_addr);
	e += MPC_IOAPIC_LEN;

	/* Identity ISA routing; IRQ 2 included, as Linux adds it for the MADT
	 * too (mp_config_acpi_legacy_irqs()); nothing raises it. */
	for (uint8_t irq = 0; irq < ISA_IRQS; irq++) {
		uint16_t flags = irq == ACPI_SCI_IRQ ? INTI_ACTIVE_HIGH_LEVEL : INTI_CONFORMING;

		e = put_intr(e, MP_IOINTR, MP_INT, flags, irq, ioapic_id, irq);
	}

	e = put_intr(e, MP_LINTR, MP_EXTINT, INTI_CONFORMING, 0, ALL_LAPICS, 0);
	put_intr(e, MP_LINTR, MP_NMI, INTI_CONFORMING, 0, ALL_LAPICS, 1);

	fix_checksum(p, MPC_LEN(ncpus), 7);
}

/* 4.1 MP floating pointer structure. */
static void build_mpf(uint8_t *p, uint32_t mpc_gpa)
{
	memcpy(p, "_MP_", 4);
	cv_put_le32(p + 4, mpc_gpa);
	p[8] = MPF_LEN / 16; /* length in 16-byte units */
	p[9] = 4;	     /* spec revision 1.4 */
	/* Feature byte 1 = 0: a configuration table is present. Feature
	 * byte 2 bit 7 (IMCRP) = 0: virtual wire mode, no IMCR to program. */
	fix_checksum(p, MPF_LEN, 10);
}

int mptable_build(uint8_t *buf, size_t buf_len, uint64_t buf_gpa, unsigned int ncpus,
		  uint32_t ioapic_addr, uint8_t ioapic_id, size_t *used)
{
	size_t len;

	/* Processors take APIC ids 0..ncpus-1, the IOAPIC one above them and
	 * 0xff is broadcast: so ncpus <= 254 (the id rule implies it too). */
	if (ncpus == 0 || ncpus > 254 || ioapic_id < ncpus || ioapic_id == 0xff)
		return -EINVAL;
	len = MPF_LEN + MPC_LEN(ncpus);
	if (buf_gpa > UINT32_MAX || buf_gpa + len > (uint64_t)UINT32_MAX + 1)
		return -EINVAL;
	*used = len;
	if (buf_len < len)
		return -ENOSPC;

	memset(buf, 0, len);
	build_mpf(buf, (uint32_t)(buf_gpa + MPF_LEN));
	build_mpc(buf + MPF_LEN, ncpus, ioapic_addr, ioapic_id);
	return 0;
}
