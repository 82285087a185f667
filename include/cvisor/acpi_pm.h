/* acpi_pm.h - ACPI fixed-hardware PM1a event/control blocks and reset register. */
#ifndef CVISOR_ACPI_PM_H
#define CVISOR_ACPI_PM_H

#include <pthread.h>
#include <stdint.h>

#include "cvisor/bus.h"
#include "cvisor/device.h"

/* I/O ports, also written into the FADT by acpi_build(). */
#define ACPI_PM_BASE 0x600
#define ACPI_PM1A_EVT_PORT 0x600 /* PM1_STS (2 bytes) then PM1_EN (2 bytes) */
#define ACPI_PM1A_CNT_PORT 0x604 /* PM1_CNT, 2 bytes */
#define ACPI_RESET_PORT 0x606	 /* FADT RESET_REG, 1 byte */
#define ACPI_RESET_VALUE 0x01
#define ACPI_PM_LEN 8
#define ACPI_SCI_IRQ 9
/* Sleep type the DSDT's \_S5 package advertises for soft-off. */
#define ACPI_S5_SLP_TYP 5

enum acpi_pm_event {
	ACPI_PM_POWEROFF, /* SLP_EN written with SLP_TYP == S5 */
	ACPI_PM_RESET,	  /* RESET_VALUE written to the reset register */
};

struct acpi_pm {
	pthread_mutex_t lock;
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	bool sci_level;
	/* called with the lock held */
	void (*event)(void *ctx, enum acpi_pm_event ev);
	void (*set_irq)(void *ctx, int level); /* drives the SCI line */
	void *ctx;
};

void acpi_pm_init(struct acpi_pm *pm, void (*event)(void *, enum acpi_pm_event),
		  void (*set_irq)(void *, int), void *ctx);

/* Press the power button: set PWRBTN_STS and raise the SCI if enabled. The
 * guest's ACPI driver then shuts down (used by `cvisor stop`). */
void acpi_pm_power_button(struct acpi_pm *pm);

/* Port handlers for [ACPI_PM_BASE, ACPI_PM_BASE + ACPI_PM_LEN). */
extern const struct bus_ops acpi_pm_bus_ops;
extern const struct device_ops acpi_pm_device_ops;

#endif
