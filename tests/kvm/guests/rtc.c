/* rtc - reads the date from the CMOS clock (ports 0x70/0x71, BCD, with
 * the century at 0x32) the way Linux's rtc-cmos does, on the vCPU thread
 * and so inside its seccomp filter, and powers off.
 * Expect: "rtc: YYYY-MM-DD" (the host's UTC date), exit status 0. */
#include "lib.h"

static unsigned int cmos(uint8_t reg)
{
	uint8_t v;

	outb(0x70, reg);
	v = inb(0x71);
	return (v >> 4) * 10 + (v & 15);
}

int main(void)
{
	unsigned int year = cmos(0x32) * 100 + cmos(0x09);

	printf("rtc: %u-%u%u-%u%u\n", year, cmos(0x08) / 10, cmos(0x08) % 10, cmos(0x07) / 10,
	       cmos(0x07) % 10);
	poweroff();
}
