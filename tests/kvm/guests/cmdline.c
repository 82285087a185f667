/* cmdline - prints the kernel command line from hvm_start_info.
 * Expect: "cmdline: [<the string given to --cmdline>]" ("cmdline: none"
 * when cmdline_paddr is 0), exit status 0. Bytes outside printable ASCII
 * are shown as '?'. */
#include "lib.h"

int main(void)
{
	const struct hvm_start_info *si = start_info();
	if (!si) {
		printf("cmdline: bad start info (ebx=0x%x)\n", boot_entry_ebx);
		poweroff();
	}
	if (!si->cmdline_paddr) {
		puts("cmdline: none\n");
		poweroff();
	}
	puts("cmdline: [");
	for (const char *p = cmdline(); *p; p++)
		serial_putc(*p >= 0x20 && *p < 0x7f ? *p : '?');
	puts("]\n");
	poweroff();
}
