/* echo - reads COM1 and answers each line, for console input tests.
 * Prints "echo: ready", then "echo: LINE" for every line received (CR or
 * LF ends a line; lines longer than 63 bytes are cut). The line "off"
 * powers off. Polls the LSR: interrupts stay off. */
#include "lib.h"

#define UART_RBR 0
#define UART_LSR 5
#define UART_LSR_DR 0x01

int main(void)
{
	char line[64];
	unsigned int n = 0;

	printf("echo: ready\n");
	for (;;) {
		char c;

		while (!(inb(COM1 + UART_LSR) & UART_LSR_DR))
			cpu_relax();
		c = (char)inb(COM1 + UART_RBR);
		if (c != '\r' && c != '\n') {
			if (n + 1 < sizeof(line))
				line[n++] = c;
			continue;
		}
		if (!n)
			continue;
		line[n] = '\0';
		n = 0;
		if (!strncmp(line, "off", 4))
			poweroff();
		printf("echo: %s\n", line);
	}
}
