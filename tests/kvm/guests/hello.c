/* hello - prints one line and powers off through ACPI PM1a_CNT.
 * Expect: "hello from cvisor tiny guest", exit status 0. */
#include "lib.h"

int main(void)
{
	puts("hello from cvisor tiny guest\n");
	poweroff();
}
