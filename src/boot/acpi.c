/* acpi.c - ACPI tables for the guest: RSDP, RSDT, XSDT, FADT, FACS, DSDT, MADT.
 *
 * Section numbers refer to the ACPI Specification 6.5. Tables are written
 * field by field in little-endian into a zeroed byte buffer (no packed
 * struct casts); every offset below is the one in the spec's table.
 *
 * The machine is "fixed hardware" ACPI (not hardware-reduced): a PM1a event
 * and control block and a reset register (acpi_pm.h), an SCI on IRQ 9, no PM
 * timer, no GPE blocks and no SMI command port, so the OS finds the machine
 * already in ACPI mode (5.2.9 SMI_CMD; ACPICA acpi_hw_get_mode()).
 *
 * Interrupt routing. KVM's in-kernel irqchip routes GSI n to IOAPIC pin n
 * and, for n < 16, to PIC pin n (kvm_setup_default_irq_routing() in
 * arch/x86/kvm/irq_comm.c), and its PIT raises GSI 0 (pit_do_work() in
 * arch/x86/kvm/i8254.c). The PIT therefore reaches IOAPIC pin 0, not pin 2
 * as on a PC, so the MADT has no IRQ0->GSI2 override: Linux then identity
 * maps ISA IRQs 0-15 (mp_config_acpi_legacy_irqs()) and check_timer() finds
 * IRQ0 on pin 0 and passes on its first try. QEMU needs the override only
 * because it installs its own routing (GSI 0 -> IOAPIC pin 2). The one
 * override is the SCI: active high, level, as acpi_pm drives it. Whoever
 * calls KVM_SET_GSI_ROUTING must keep GSI n -> IOAPIC pin n for n < 24. */
#include "cvisor/acpi.h"

#include <errno.h>
#include <string.h>

#include "cvisor/acpi_pm.h"
#include "cvisor/pci.h"
#include "cvisor/rtc.h"

#define OEM_ID "CVISOR"		/* 6 bytes */
#define OEM_TABLE_ID "CVISOR  " /* 8 bytes */
#define CREATOR_ID "CVSR"	/* 4 bytes: the tool that built the table */

#define RSDP_LEN 36
#define SDT_HDR_LEN 36
#define FADT_LEN 276 /* revision 6 layout, up to Hypervisor Vendor Identity */
#define FACS_LEN 64
#define MADT_LAPIC_LEN 8
#define MADT_IOAPIC_LEN 12
#define MADT_ISO_LEN 10
#define MADT_LAPIC_NMI_LEN 6
#define MADT_LEN(n) \
	(SDT_HDR_LEN + 8 + (n)*MADT_LAPIC_LEN + MADT_IOAPIC_LEN + MADT_ISO_LEN + MADT_LAPIC_NMI_LEN)

/* 5.2.3.2 Generic Address Structure: address space ids and access sizes. */
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1
#define GAS_ACCESS_WORD 2

/* 5.2.9 FADT Fixed Feature Flags. */
#define FADT_WBINVD (1u << 0)
#define FADT_PROC_C1 (1u << 2)
#define FADT_SLP_BUTTON (1u << 5) /* set: no fixed-feature sleep button */
#define FADT_FIX_RTC (1u << 6)	  /* set: no RTC wake status in PM1 */
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_FORCE_APIC_PHYS (1u << 19)
/* 5.2.9.3 IA-PC Boot Architecture Flags. */
#define BOOT_LEGACY_DEVICES (1u << 0)
#define BOOT_8042 (1u << 1)
#define BOOT_VGA_NOT_PRESENT (1u << 2)

/* 5.2.12 MADT. */
#define MADT_PCAT_COMPAT (1u << 0)
#define MADT_TYPE_LAPIC 0
#define MADT_TYPE_IOAPIC 1
#define MADT_TYPE_ISO 2
#define MADT_TYPE_LAPIC_NMI 4
#define MADT_LAPIC_ENABLED (1u << 0)
/* 5.2.12.5 MPS INTI flags: polarity bits 0-1, trigger bits 2-3. */
#define MPS_INTI_ACTIVE_HIGH 0x1
#define MPS_INTI_LEVEL (0x3 << 2)

/* DSDT definition block (chapter 20, AML encoding), hand-assembled in
 * three pieces that build_dsdt() copies one after the other:
 *
 *   Name (\_S5, Package (0x04) { SLP_TYP, SLP_TYP, Zero, Zero })
 *   Device (\_SB.PCI0)
 *   {
 *       Name (_HID, EisaId ("PNP0A03"))
 *       Name (_UID, Zero)
 *       Name (_SEG, Zero)
 *       Name (_BBN, Zero)
 *       Name (_CRS, ResourceTemplate ()
 *       {
 *           WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
 *               0x0000, 0x0000, 0x0000, 0x0000, 0x0001)
 *           IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
 *           WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
 *               0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
 *           WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
 *               0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300)
 *           DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
 *               NonCacheable, ReadWrite, 0x00000000, PCI_MMIO_BASE,
 *               PCI_MMIO_END - 1, 0x00000000, PCI_MMIO_END - PCI_MMIO_BASE)
 *       })
 *   }
 *
 * Checked with `iasl -d`, which decompiles the table to exactly this, and
 * `iasl -oa` (no optimizations, which would drop the redundant '\'
 * prefixes), which recompiles it to these same bytes. */

/* OSPM writes SLP_TYPa/b from the first two elements into PM1a/b_CNT with
 * SLP_EN to enter soft-off (\_Sx objects, chapter 7; PM1 control, 4.8.3). */
_Static_assert(ACPI_S5_SLP_TYP >= 0 && ACPI_S5_SLP_TYP <= 7, "SLP_TYP is a 3-bit field");
/* The AML byte tables are laid out by hand, one byte group per line. */
/* clang-format off */
static const uint8_t dsdt_s5[] = {
	0x08,			/* NameOp */
	0x5c,			/* RootChar '\' */
	'_', 'S', '5', '_',	/* NameSeg "_S5_" */
	0x12,			/* PackageOp */
	0x08,			/* PkgLength: 1-byte form, counts itself + the 7 bytes after */
	0x04,			/* NumElements */
	0x0a, ACPI_S5_SLP_TYP,	/* BytePrefix, SLP_TYPa */
	0x0a, ACPI_S5_SLP_TYP,	/* BytePrefix, SLP_TYPb */
	0x00,			/* ZeroOp (reserved) */
	0x00,			/* ZeroOp (reserved) */
};
/* clang-format on */

/* The PCI host bridge (pci.h). Linux x86 with ACPI scans only the root
 * buses the namespace declares (acpi_pci_root_add() for PNP0A03), so
 * without this device it never looks at bus 0. _CRS gives the windows the
 * bridge forwards, the way QEMU's pc DSDT does: bus 0 alone, all I/O ports
 * except the configuration ports (the ISA devices at 0x60, 0x70, 0x3f8,
 * 0x600 sit behind the bridge, as on a PC, so the window covering them is
 * no conflict), and the MMIO window cvisor assigns BARs from. The small
 * IO() entry claims 0xcf8-0xcff for the bridge itself; x86 Linux drops it
 * from the windows (resource_is_pcicfg_ioport()). No _PRT: cvisor's PCI
 * devices report no INTx pin and use MSI-X. No _OSC: this is a
 * conventional PCI bridge (not PNP0A08) and Linux goes on without one. */
_Static_assert(PCI_MMIO_BASE < PCI_MMIO_END && PCI_MMIO_END <= 0x100000000ULL,
	       "DWordMemory holds a 32-bit window");

/* Little-endian bytes of a 16- or 32-bit constant, for the initializers. */
#define LE16(v) (uint8_t)((v)&0xff), (uint8_t)(((v) >> 8) & 0xff)
#define LE32(v) LE16((v)&0xffff), LE16(((v) >> 16) & 0xffff)

/* 6.4 resource descriptors. Address space descriptors (6.4.3.5): the
 * general flags 0x0c are bit 3 _MAF and bit 2 _MIF (max and min fixed),
 * bit 1 _DEC clear (positive decode), bit 0 clear (producer: the bridge
 * hands the range on to its children). */
#define RES_GENERAL_FLAGS 0x0c
/* clang-format off */
static const uint8_t pci0_crs[] = {
	/* 6.4.3.5.3 Word Address Space Descriptor: bus numbers 0-0. */
	0x88,			/* large item, Word Address Space Descriptor */
	LE16(0x000d),		/* length of the rest */
	0x02,			/* resource type: bus number range */
	RES_GENERAL_FLAGS,	/* producer, min/max fixed, positive decode */
	0x00,			/* type-specific flags: none for bus numbers */
	LE16(0x0000),		/* _GRA granularity */
	LE16(0x0000),		/* _MIN */
	LE16(0x0000),		/* _MAX */
	LE16(0x0000),		/* _TRA translation offset */
	LE16(0x0001),		/* _LEN: one bus */

	/* 6.4.2.5 I/O Port Descriptor: the configuration ports. */
	0x47,			/* small item 0x08, length 7 */
	0x01,			/* information: bit 0 _DEC, 16-bit decode */
	LE16(PCI_CONFIG_ADDR),	/* _MIN */
	LE16(PCI_CONFIG_ADDR),	/* _MAX */
	0x01,			/* _ALN */
	0x08,			/* _LEN: 0xcf8-0xcff */

	/* 6.4.3.5.3 Word Address Space Descriptor: I/O below the config ports. */
	0x88,			/* large item, Word Address Space Descriptor */
	LE16(0x000d),		/* length of the rest */
	0x01,			/* resource type: I/O range */
	RES_GENERAL_FLAGS,	/* producer, min/max fixed, positive decode */
	0x03,			/* I/O flags: bits 1-0 _RNG 3, ISA and non-ISA ranges */
	LE16(0x0000),		/* _GRA */
	LE16(0x0000),		/* _MIN */
	LE16(PCI_CONFIG_ADDR - 1), /* _MAX 0x0cf7 */
	LE16(0x0000),		/* _TRA */
	LE16(PCI_CONFIG_ADDR),	/* _LEN 0x0cf8 */

	/* 6.4.3.5.3 Word Address Space Descriptor: I/O above them, from the
	 * next 256-byte boundary, as in QEMU's DSDT. */
	0x88,			/* large item, Word Address Space Descriptor */
	LE16(0x000d),		/* length of the rest */
	0x01,			/* resource type: I/O range */
	RES_GENERAL_FLAGS,	/* producer, min/max fixed, positive decode */
	0x03,			/* I/O flags: bits 1-0 _RNG 3, ISA and non-ISA ranges */
	LE16(0x0000),		/* _GRA */
	LE16(0x0d00),		/* _MIN */
	LE16(0xffff),		/* _MAX */
	LE16(0x0000),		/* _TRA */
	LE16(0x10000 - 0x0d00),	/* _LEN 0xf300 */

	/* 6.4.3.5.2 DWord Address Space Descriptor: the BAR window. */
	0x87,			/* large item, DWord Address Space Descriptor */
	LE16(0x0017),		/* length of the rest */
	0x00,			/* resource type: memory range */
	RES_GENERAL_FLAGS,	/* producer, min/max fixed, positive decode */
	0x01,			/* memory flags: bit 0 _RW read/write; bits 2-1 _MEM 0
				 * non-cacheable; bits 4-3 _MTP 0 AddressRangeMemory;
				 * bit 5 _TTP 0 TypeStatic */
	LE32(0x00000000),	/* _GRA */
	LE32(PCI_MMIO_BASE),	/* _MIN */
	LE32(PCI_MMIO_END - 1),	/* _MAX */
	LE32(0x00000000),	/* _TRA */
	LE32(PCI_MMIO_END - PCI_MMIO_BASE), /* _LEN */

	/* 6.4.2.9 End Tag. */
	0x79,			/* small item 0x0f, length 1 */
	0x00,			/* checksum 0: "treated as if the checksum operation succeeded" */
};
/* clang-format on */

/* 20.2.4 PkgLength in its 2-byte form: bits 7-6 of the lead byte = 1
 * (one byte follows), bits 3-0 the low nibble, the next byte bits 11-4.
 * The length counts the PkgLength bytes themselves. */
#define PKGLEN2(n) (uint8_t)(0x40 | ((n)&0x0f)), (uint8_t)((n) >> 4)
#define PCI0_HEAD_LEN 52 /* sizeof(pci0_head), checked below */
/* Buffer: PkgLength (2) + BufferSize (BytePrefix, 1 byte) + the template. */
#define CRS_BUF_PKGLEN (2 + 2 + sizeof(pci0_crs))
/* Device: everything after ExtOpPrefix DeviceOp. */
#define PCI0_PKGLEN (PCI0_HEAD_LEN - 2 + sizeof(pci0_crs))
_Static_assert(sizeof(pci0_crs) <= 0xff, "BufferSize is a BytePrefix byte");
_Static_assert(CRS_BUF_PKGLEN >= 64 && PCI0_PKGLEN >= 64 && PCI0_PKGLEN <= 0xfff,
	       "2-byte PkgLength encodings");

/* clang-format off */
static const uint8_t pci0_head[] = {
	0x5b, 0x82,		/* ExtOpPrefix DeviceOp */
	PKGLEN2(PCI0_PKGLEN),	/* PkgLength: to the end of _CRS */
	0x5c,			/* RootChar '\' */
	0x2e,			/* DualNamePrefix */
	'_', 'S', 'B', '_',	/* NameSeg "_SB_" */
	'P', 'C', 'I', '0',	/* NameSeg "PCI0" */

	0x08, '_', 'H', 'I', 'D', /* NameOp "_HID" */
	0x0c,			/* DWordPrefix: EisaId ("PNP0A03") */
	0x41, 0xd0,		/* "PNP" compressed, 3 x 5 bits, big-endian */
	0x0a, 0x03,		/* product number 0x0a03 */

	0x08, '_', 'U', 'I', 'D', /* NameOp "_UID" */
	0x00,			/* ZeroOp */

	0x08, '_', 'S', 'E', 'G', /* NameOp "_SEG": PCI segment group 0 */
	0x00,			/* ZeroOp */

	0x08, '_', 'B', 'B', 'N', /* NameOp "_BBN": base bus number 0 */
	0x00,			/* ZeroOp */

	0x08, '_', 'C', 'R', 'S', /* NameOp "_CRS" */
	0x11,			/* BufferOp */
	PKGLEN2(CRS_BUF_PKGLEN), /* PkgLength: to the end of the template */
	0x0a, sizeof(pci0_crs),	/* BufferSize: BytePrefix, byte count */
	/* pci0_crs follows */
};
/* clang-format on */
_Static_assert(sizeof(pci0_head) == PCI0_HEAD_LEN, "PCI0_HEAD_LEN is stale");

#define DSDT_AML_LEN (sizeof(dsdt_s5) + sizeof(pci0_head) + sizeof(pci0_crs))

/* Byte offsets of each table inside buf. */
struct acpi_layout {
	size_t rsdt, xsdt, fadt, facs, dsdt, madt, end;
};

uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return sum;
}

/* Make the len bytes at p sum to zero through the byte at p[at]. */
static void fix_checksum(uint8_t *p, size_t len, size_t at)
{
	p[at] = 0;
	p[at] = (uint8_t)(0x100 - acpi_checksum(p, len));
}

/* Smallest offset >= off whose guest address gpa + offset is a multiple of
 * align (a power of two). */
static size_t align_gpa(uint64_t gpa, size_t off, size_t align)
{
	uint64_t a = (gpa + off + align - 1) & ~(uint64_t)(align - 1);

	return (size_t)(a - gpa);
}

static void acpi_layout(uint64_t gpa, unsigned int ncpus, struct acpi_layout *l)
{
	l->rsdt = align_gpa(gpa, RSDP_LEN, 16);
	l->xsdt = align_gpa(gpa, l->rsdt + SDT_HDR_LEN + 2 * 4, 16);
	l->fadt = align_gpa(gpa, l->xsdt + SDT_HDR_LEN + 2 * 8, 16);
	l->facs = align_gpa(gpa, l->fadt + FADT_LEN, 64); /* 5.2.10: 64-byte aligned */
	l->dsdt = align_gpa(gpa, l->facs + FACS_LEN, 16);
	l->madt = align_gpa(gpa, l->dsdt + SDT_HDR_LEN + DSDT_AML_LEN, 16);
	l->end = l->madt + MADT_LEN(ncpus);
}

/* 5.2.6 System Description Table Header; the checksum is fixed later. */
static void put_sdt_header(uint8_t *p, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(p, sig, 4);
	cv_put_le32(p + 4, len);
	p[8] = rev;
	memcpy(p + 10, OEM_ID, 6);
	memcpy(p + 16, OEM_TABLE_ID, 8);
	cv_put_le32(p + 24, 1); /* OEM Revision */
	memcpy(p + 28, CREATOR_ID, 4);
	cv_put_le32(p + 32, 1); /* Creator Revision */
}

/* 5.2.3.2 Generic Address Structure (12 bytes). */
static void put_gas(uint8_t *p, uint8_t space, uint8_t bit_width, uint8_t access, uint64_t addr)
{
	p[0] = space;
	p[1] = bit_width;
	p[2] = 0; /* Register Bit Offset */
	p[3] = access;
	cv_put_le64(p + 4, addr);
}

/* 5.2.5.3 RSDP (revision 2: ACPI 2.0 and later). */
static void build_rsdp(uint8_t *p, uint32_t rsdt_gpa, uint64_t xsdt_gpa)
{
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, OEM_ID, 6);
	p[15] = 2; /* Revision */
	cv_put_le32(p + 16, rsdt_gpa);
	cv_put_le32(p + 20, RSDP_LEN);
	cv_put_le64(p + 24, xsdt_gpa);
	fix_checksum(p, 20, 8);	       /* covers the ACPI 1.0 part only */
	fix_checksum(p, RSDP_LEN, 32); /* Extended Checksum, whole structure */
}

/* 5.2.7 RSDT (32-bit entries) and 5.2.8 XSDT (64-bit entries). */
static void build_rsdt(uint8_t *p, uint32_t fadt_gpa, uint32_t madt_gpa)
{
	put_sdt_header(p, "RSDT", SDT_HDR_LEN + 2 * 4, 1);
	cv_put_le32(p + 36, fadt_gpa);
	cv_put_le32(p + 40, madt_gpa);
	fix_checksum(p, SDT_HDR_LEN + 2 * 4, 9);
}

static void build_xsdt(uint8_t *p, uint64_t fadt_gpa, uint64_t madt_gpa)
{
	put_sdt_header(p, "XSDT", SDT_HDR_LEN + 2 * 8, 1);
	cv_put_le64(p + 36, fadt_gpa);
	cv_put_le64(p + 44, madt_gpa);
	fix_checksum(p, SDT_HDR_LEN + 2 * 8, 9);
}

/* 5.2.9 FADT, revision 6 minor 5. */
static void build_fadt(uint8_t *p, uint32_t facs_gpa, uint32_t dsdt_gpa, unsigned int ncpus)
{
	uint32_t flags =
		FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC | FADT_RESET_REG_SUP;

	/* Flat logical destination mode addresses 8 xAPICs at most. */
	if (ncpus > 8)
		flags |= FADT_FORCE_APIC_PHYS;

	put_sdt_header(p, "FACP", FADT_LEN, 6);
	cv_put_le32(p + 36, facs_gpa); /* FIRMWARE_CTRL; X_FIRMWARE_CTRL stays 0 */
	cv_put_le32(p + 40, dsdt_gpa); /* DSDT */
	/* 45 Preferred_PM_Profile 0: unspecified. */
	cv_put_le16(p + 46, ACPI_SCI_IRQ); /* SCI_INT */
	/* 48 SMI_CMD, 52 ACPI_ENABLE, 53 ACPI_DISABLE all 0: no mode switch. */
	cv_put_le32(p + 56, ACPI_PM1A_EVT_PORT); /* PM1a_EVT_BLK */
	cv_put_le32(p + 64, ACPI_PM1A_CNT_PORT); /* PM1a_CNT_BLK */
	/* 76 PM_TMR_BLK, 80 GPE0_BLK, 84 GPE1_BLK: none. */
	p[88] = 4;		     /* PM1_EVT_LEN: PM1_STS + PM1_EN */
	p[89] = 2;		     /* PM1_CNT_LEN */
	cv_put_le16(p + 96, 0x0fff); /* P_LVL2_LAT > 100: no C2 */
	cv_put_le16(p + 98, 0x0fff); /* P_LVL3_LAT > 1000: no C3 */
	p[108] = RTC_CENTURY;	     /* the CMOS register that holds the century */
	cv_put_le16(p + 109, BOOT_LEGACY_DEVICES | BOOT_8042 | BOOT_VGA_NOT_PRESENT);
	cv_put_le32(p + 112, flags);
	/* 4.8.3.6 Reset Register: 8 bits wide at offset 0. */
	put_gas(p + 116, GAS_SYSTEM_IO, 8, GAS_ACCESS_BYTE, ACPI_RESET_PORT);
	p[128] = ACPI_RESET_VALUE;
	p[131] = 5;			/* FADT Minor Version */
	cv_put_le64(p + 140, dsdt_gpa); /* X_DSDT, same table as DSDT */
	/* The X_ blocks repeat the 32-bit ones with matching widths, as ACPICA
	 * would synthesize them (tbfadt.c acpi_tb_convert_fadt()). */
	put_gas(p + 148, GAS_SYSTEM_IO, 32, GAS_ACCESS_WORD, ACPI_PM1A_EVT_PORT);
	put_gas(p + 172, GAS_SYSTEM_IO, 16, GAS_ACCESS_WORD, ACPI_PM1A_CNT_PORT);
	memcpy(p + 268, "CVISOR\0\0", 8); /* Hypervisor Vendor Identity */
	fix_checksum(p, FADT_LEN, 9);
}

/* 5.2.10 FACS. Not checksummed. It holds the global lock and
 * the waking vector; ACPICA expects one unless the FADT is hardware-reduced. */
static void build_facs(uint8_t *p)
{
	memcpy(p, "FACS", 4);
	cv_put_le32(p + 4, FACS_LEN);
	p[32] = 2; /* Version */
}

static void build_dsdt(uint8_t *p)
{
	uint32_t len = SDT_HDR_LEN + DSDT_AML_LEN;
	uint8_t *aml = p + SDT_HDR_LEN;

	put_sdt_header(p, "DSDT", len, 2); /* revision 2: 64-bit AML integers */
	memcpy(aml, dsdt_s5, sizeof(dsdt_s5));
	aml += sizeof(dsdt_s5);
	memcpy(aml, pci0_head, sizeof(pci0_head));
	aml += sizeof(pci0_head);
	memcpy(aml, pci0_crs, sizeof(pci0_crs));
	fix_checksum(p, len, 9);
}

/* 5.2.12 MADT. */
static void build_madt(uint8_t *p, const struct acpi_config *cfg)
{
	uint32_t len = MADT_LEN(cfg->ncpus);
	uint8_t *e = p + SDT_HDR_LEN + 8;

	put_sdt_header(p, "APIC", len, 5);
	cv_put_le32(p + 36, cfg->lapic_addr);
	/* PCAT_COMPAT: there are 8259s (KVM's in-kernel PIC). Without it Linux
	 * probes for them (probe_8259A) and, reading 0xff, uses none; with
	 * it, Linux 6.9 and later skip the probe and trust the flag. */
	cv_put_le32(p + 40, cfg->no_pic ? 0 : MADT_PCAT_COMPAT);

	/* 5.2.12.2 Processor Local APIC: UID and APIC ID both the CPU index. */
	for (unsigned int i = 0; i < cfg->ncpus; i++, e += MADT_LAPIC_LEN) {
		e[0] = MADT_TYPE_LAPIC;
		e[1] = MADT_LAPIC_LEN;
		e[2] = (uint8_t)i; /* ACPI Processor UID */
		e[3] = (uint8_t)i; /* APIC ID */
		cv_put_le32(e + 4, MADT_LAPIC_ENABLED);
	}

	/* 5.2.12.3 I/O APIC: one, GSIs 0-23 on pins 0-23. */
	e[0] = MADT_TYPE_IOAPIC;
	e[1] = MADT_IOAPIC_LEN;
	e[2] = cfg->ioapic_id;
	cv_put_le32(e + 4, cfg->ioapic_addr);
	cv_put_le32(e + 8, 0); /* Global System Interrupt Base */
	e += MADT_IOAPIC_LEN;

	/* 5.2.12.5 Interrupt Source Override: only the SCI (see top of file). */
	e[0] = MADT_TYPE_ISO;
	e[1] = MADT_ISO_LEN;
	e[2] = 0; /* Bus: ISA */
	e[3] = ACPI_SCI_IRQ;
	cv_put_le32(e + 4, ACPI_SCI_IRQ);
	cv_put_le16(e + 8, MPS_INTI_ACTIVE_HIGH | MPS_INTI_LEVEL);
	e += MADT_ISO_LEN;

	/* 5.2.12.7 Local APIC NMI: LINT1 of every processor, as in the MP table. */
	e[0] = MADT_TYPE_LAPIC_NMI;
	e[1] = MADT_LAPIC_NMI_LEN;
	e[2] = 0xff;	       /* all processors */
	cv_put_le16(e + 3, 0); /* flags: conforming */
	e[5] = 1;	       /* LINT# */

	fix_checksum(p, len, 9);
}

int acpi_build(uint8_t *buf, size_t buf_len, uint64_t buf_gpa, const struct acpi_config *cfg,
	       size_t *used)
{
	struct acpi_layout l;

	/* MADT Processor Local APIC entries hold 8-bit APIC IDs; 0xff is the
	 * xAPIC broadcast ID, so at most IDs 0..254. */
	if (cfg->ncpus == 0 || cfg->ncpus > 255)
		return -EINVAL;
	/* RSDT, FIRMWARE_CTRL and DSDT are 32-bit pointers: keep it all below 4 GiB. */
	if (buf_gpa > UINT32_MAX)
		return -EINVAL;
	acpi_layout(buf_gpa, cfg->ncpus, &l);
	if (buf_gpa + l.end > (uint64_t)UINT32_MAX + 1)
		return -EINVAL;
	*used = l.end;
	if (buf_len < l.end)
		return -ENOSPC;

	memset(buf, 0, l.end); /* reserved fields and padding are zero */
	build_rsdp(buf, (uint32_t)(buf_gpa + l.rsdt), buf_gpa + l.xsdt);
	build_rsdt(buf + l.rsdt, (uint32_t)(buf_gpa + l.fadt), (uint32_t)(buf_gpa + l.madt));
	build_xsdt(buf + l.xsdt, buf_gpa + l.fadt, buf_gpa + l.madt);
	build_fadt(buf + l.fadt, (uint32_t)(buf_gpa + l.facs), (uint32_t)(buf_gpa + l.dsdt),
		   cfg->ncpus);
	build_facs(buf + l.facs);
	build_dsdt(buf + l.dsdt);
	build_madt(buf + l.madt, cfg);
	return 0;
}
