/* acpi_pm.c - ACPI PM1a event/control blocks and reset register (see
 * include/cvisor/acpi_pm.h).
 *
 * Layout of the 8-byte port block (the FADT points at these offsets):
 *   +0 PM1_STS (16 bits, write-1-to-clear)   +2 PM1_EN (16 bits)
 *   +4 PM1_CNT (16 bits)                      +6 RESET_REG (8 bits)   +7 reserved
 * Bit definitions are the ACPI specification's "PM1 Status Registers",
 * "PM1 Enable Registers" and "PM1 Control Registers" tables (ACPI 6.0,
 * 4.8.3.1 and 4.8.3.2); the reset register is FADT RESET_REG (4.8.3.6).
 * Any access of 1, 2, 4 or 8 bytes at any offset reads and writes the bytes
 * it covers, as the registers would on an I/O bus. */
#include "cvisor/acpi_pm.h"

#include <errno.h>
#include <string.h>

#define STS_TMR 0x0001
#define STS_BM 0x0010
#define STS_GBL 0x0020
#define STS_PWRBTN 0x0100
#define STS_SLPBTN 0x0200
#define STS_RTC 0x0400
#define STS_WAK 0x8000
/* The status bits this model can ever set. */
#define STS_MASK (STS_PWRBTN | STS_WAK)

#define EN_TMR 0x0001
#define EN_GBL 0x0020
#define EN_PWRBTN 0x0100
#define EN_SLPBTN 0x0200
#define EN_RTC 0x0400
#define EN_PCIEXP_WAKE_DIS 0x4000
/* Defined enable bits; reserved ones read as 0. */
#define EN_MASK (EN_TMR | EN_GBL | EN_PWRBTN | EN_SLPBTN | EN_RTC | EN_PCIEXP_WAKE_DIS)
/* Status bits that raise the SCI while their enable bit is set. */
#define SCI_SOURCES STS_PWRBTN

#define CNT_SCI_EN 0x0001
#define CNT_BM_RLD 0x0002
#define CNT_GBL_RLS 0x0004 /* write-only, no BIOS to notify */
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP 0x1c00
#define CNT_SLP_EN 0x2000 /* write-only */
/* Bits that hold a value; SCI_EN is fixed at 1 (the machine has no legacy
 * mode to switch from, and the FADT's SMI_CMD is 0). */
#define CNT_STORED (CNT_SCI_EN | CNT_BM_RLD | CNT_SLP_TYP)

#define OFF_STS 0
#define OFF_EN 2
#define OFF_CNT 4
#define OFF_RESET 6

#define ACPI_PM_STATE_VERSION 1

/* The SCI is a level-triggered, shared interrupt (FADT SCI_INT, ACPI 6.0
 * 5.2.9), asserted while any enabled status bit is set. */
static void acpi_pm_update(struct acpi_pm *pm)
{
	bool level = (pm->pm1_sts & pm->pm1_en & SCI_SOURCES) != 0;

	if (level != pm->sci_level) {
		pm->sci_level = level;
		if (pm->set_irq)
			pm->set_irq(pm->ctx, level);
	}
}

static void acpi_pm_reset_locked(struct acpi_pm *pm)
{
	pm->pm1_sts = 0;
	pm->pm1_en = 0;
	pm->pm1_cnt = CNT_SCI_EN;
	acpi_pm_update(pm);
}

void acpi_pm_init(struct acpi_pm *pm, void (*event)(void *, enum acpi_pm_event),
		  void (*set_irq)(void *, int), void *ctx)
{
	memset(pm, 0, sizeof(*pm));
	pthread_mutex_init(&pm->lock, NULL);
	pm->event = event;
	pm->set_irq = set_irq;
	pm->ctx = ctx;
	acpi_pm_reset_locked(pm);
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts |= STS_PWRBTN;
	acpi_pm_update(pm);
	pthread_mutex_unlock(&pm->lock);
}

static void acpi_pm_event(struct acpi_pm *pm, enum acpi_pm_event ev)
{
	if (pm->event)
		pm->event(pm->ctx, ev);
}

/* Byte `off` of the block as the guest reads it. */
static uint8_t acpi_pm_read_byte(const struct acpi_pm *pm, unsigned int off)
{
	uint16_t reg;

	switch (off & ~1u) {
	case OFF_STS:
		reg = pm->pm1_sts;
		break;
	case OFF_EN:
		reg = pm->pm1_en;
		break;
	case OFF_CNT:
		/* SLP_EN and GBL_RLS are write-only and read as 0. */
		reg = pm->pm1_cnt | CNT_SCI_EN;
		break;
	default:
		return 0; /* the reset register reads as 0; +7 is reserved */
	}
	return (uint8_t)(reg >> (8 * (off & 1)));
}

static void acpi_pm_write_cnt(struct acpi_pm *pm, uint16_t val, uint16_t mask)
{
	uint16_t cnt = (uint16_t)((pm->pm1_cnt & ~mask) | (val & mask));
	unsigned int slp_typ = (cnt & CNT_SLP_TYP) >> CNT_SLP_TYP_SHIFT;

	pm->pm1_cnt = (cnt & CNT_STORED) | CNT_SCI_EN;
	if (!(val & mask & CNT_SLP_EN))
		return;
	if (slp_typ == ACPI_S5_SLP_TYP) {
		acpi_pm_event(pm, ACPI_PM_POWEROFF);
		return;
	}
	/* A sleep state we cannot enter: the OS spins on WAK_STS after
	 * setting SLP_EN (ACPI 6.0 chapter 16, entering S1-S3), so
	 * report an immediate wake rather than hang it. The DSDT only offers
	 * \_S5, so a correct guest never gets here. */
	pm->pm1_sts |= STS_WAK;
}

/* The 16-bit registers see one write with a byte mask, so a 2- or 4-byte
 * access writes SLP_TYP and SLP_EN together and a byte write to the high
 * half of PM1_CNT uses the stored low half. */
static void acpi_pm_write(struct acpi_pm *pm, unsigned int off, const uint8_t *data, uint32_t len)
{
	uint16_t val[3] = { 0 }, mask[3] = { 0 };

	for (uint32_t i = 0; i < len && off + i < ACPI_PM_LEN; i++) {
		unsigned int o = off + i;

		if (o == OFF_RESET) {
			/* FADT RESET_REG: the value the FADT names resets. */
			if (data[i] == ACPI_RESET_VALUE)
				acpi_pm_event(pm, ACPI_PM_RESET);
			continue;
		}
		if (o > OFF_RESET)
			continue;
		val[o / 2] |= (uint16_t)(data[i] << (8 * (o & 1)));
		mask[o / 2] |= (uint16_t)(0xff << (8 * (o & 1)));
	}
	/* PM1_STS bits clear when written with 1; 0 leaves them alone. */
	pm->pm1_sts &= (uint16_t) ~(val[0] & mask[0]);
	pm->pm1_en = (uint16_t)(((pm->pm1_en & ~mask[1]) | (val[1] & mask[1])) & EN_MASK);
	if (mask[2])
		acpi_pm_write_cnt(pm, val[2], mask[2]);
	acpi_pm_update(pm);
}

static void acpi_pm_bus_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct acpi_pm *pm = opaque;

	memset(data, 0, len);
	if (offset >= ACPI_PM_LEN)
		return;
	pthread_mutex_lock(&pm->lock);
	for (uint32_t i = 0; i < len && offset + i < ACPI_PM_LEN; i++)
		data[i] = acpi_pm_read_byte(pm, (unsigned int)offset + i);
	pthread_mutex_unlock(&pm->lock);
}

static void acpi_pm_bus_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct acpi_pm *pm = opaque;

	if (offset >= ACPI_PM_LEN)
		return;
	pthread_mutex_lock(&pm->lock);
	acpi_pm_write(pm, (unsigned int)offset, data, len);
	pthread_mutex_unlock(&pm->lock);
}

const struct bus_ops acpi_pm_bus_ops = {
	.read = acpi_pm_bus_read,
	.write = acpi_pm_bus_write,
};

static void acpi_pm_dev_reset(void *dev)
{
	struct acpi_pm *pm = dev;

	pthread_mutex_lock(&pm->lock);
	acpi_pm_reset_locked(pm);
	pthread_mutex_unlock(&pm->lock);
}

/* State format, version 1, all little-endian:
 *   u32 version, u16 pm1_sts, u16 pm1_en, u16 pm1_cnt
 * The SCI level is derived and recomputed on load. */
static int acpi_pm_dev_save(void *dev, struct state_buf *out)
{
	struct acpi_pm *pm = dev;

	pthread_mutex_lock(&pm->lock);
	state_put_u32(out, ACPI_PM_STATE_VERSION);
	state_put_u16(out, pm->pm1_sts);
	state_put_u16(out, pm->pm1_en);
	state_put_u16(out, pm->pm1_cnt);
	pthread_mutex_unlock(&pm->lock);
	return out->err;
}

static int acpi_pm_dev_load(void *dev, struct state_rd *in)
{
	struct acpi_pm *pm = dev;
	uint16_t sts, en, cnt;

	if (state_get_u32(in) != ACPI_PM_STATE_VERSION)
		return -EINVAL;
	sts = state_get_u16(in);
	en = state_get_u16(in);
	cnt = state_get_u16(in);
	if (in->err)
		return -EINVAL;
	/* Only values the registers can hold: SCI_EN set, write-only bits clear. */
	if (sts & ~STS_MASK || en & ~EN_MASK || cnt & ~CNT_STORED || !(cnt & CNT_SCI_EN))
		return -EINVAL;

	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts = sts;
	pm->pm1_en = en;
	pm->pm1_cnt = cnt;
	acpi_pm_update(pm);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

const struct device_ops acpi_pm_device_ops = {
	.name = "acpi_pm",
	.reset = acpi_pm_dev_reset,
	.save = acpi_pm_dev_save,
	.load = acpi_pm_dev_load,
};
