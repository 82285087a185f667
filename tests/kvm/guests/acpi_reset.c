/* acpi_reset - resets the machine through the FADT reset register (write
 * 0x01 to I/O port 0x606). Expect: "acpi_reset: writing reset register",
 * exit status 0. */
#include "lib.h"

int main(void)
{
	puts("acpi_reset: writing reset register\n");
	acpi_reset();
}
