/* console.h - the host side of the serial console: the terminal (raw mode,
 * restored on every exit path) and the escape sequence. */
#ifndef CVISOR_CONSOLE_H
#define CVISOR_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/util.h"

/* Ctrl-A, then 'x' quits; Ctrl-A twice sends one Ctrl-A to the guest. */
#define CONSOLE_ESCAPE 0x01

struct console_input {
	bool escape_pending;
};

/* Put the terminal on fd into raw mode if it is a tty; remembers the old
 * mode for console_restore(), which also runs at exit. */
void console_raw(int fd);

/* Restore the terminal; idempotent and async-signal-safe. */
void console_restore(void);

/* Filter input bytes through the escape sequence: bytes for the guest are
 * written to out (at most len bytes), *quit is set when the user asked to
 * quit. Returns the number of bytes for the guest. */
size_t console_filter(struct console_input *ci, const uint8_t *in, size_t len, uint8_t *out,
		      bool *quit);

#endif
