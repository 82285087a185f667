/* powerbtn - honours the ACPI power button, for `cvisor stop`.
 * Enables PWRBTN_EN in PM1_EN, says "powerbtn: waiting", polls PWRBTN_STS
 * in PM1_STS (interrupts stay off: no SCI handler needed), acknowledges
 * it (write-1-to-clear), says "powerbtn: pressed" and powers off (S5).
 * Never powers off by itself: a test must press the button. */
#include "lib.h"

#define PM1_STS ACPI_PM1A_EVT
#define PM1_EN (ACPI_PM1A_EVT + 2)
#define PWRBTN (1 << 8) /* PWRBTN_STS and PWRBTN_EN: ACPI 6.5 4.8.3.1 */

int main(void)
{
	outw(PM1_EN, inw(PM1_EN) | PWRBTN);
	printf("powerbtn: waiting\n");
	while (!(inw(PM1_STS) & PWRBTN))
		spin_delay(1000);
	outw(PM1_STS, PWRBTN);
	printf("powerbtn: pressed\n");
	poweroff();
}
