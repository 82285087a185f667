/* console.c - the host terminal of the serial console (the monitor's and
 * `cvisor console`'s): raw mode, restored on every exit, and the escape filter. */
#include "cvisor/console.h"

#include <signal.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
static int saved_fd = -1;

void console_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSANOW, &saved);
		saved_fd = -1;
	}
}

static void restore_and_reraise(int sig)
{
	console_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

void console_raw(int fd)
{
	struct termios t;

	if (!isatty(fd) || tcgetattr(fd, &saved) < 0)
		return;
	t = saved;
	/* Raw input, so the guest gets every key (Ctrl-C included); keep
	 * output processing off too: the guest sends its own CR LF. */
	cfmakeraw(&t);
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return;
	saved_fd = fd;
	atexit(console_restore);
	/* A crash of cvisor itself must not leave the terminal raw. */
	signal(SIGSEGV, restore_and_reraise);
	signal(SIGBUS, restore_and_reraise);
	signal(SIGABRT, restore_and_reraise);
}

size_t console_filter(struct console_input *ci, const uint8_t *in, size_t len, uint8_t *out,
		      bool *quit)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (ci->escape_pending) {
			ci->escape_pending = false;
			if (c == 'x' || c == 'X') {
				*quit = true;
				return n;
			}
			if (c != CONSOLE_ESCAPE)
				out[n++] = CONSOLE_ESCAPE;
			out[n++] = c;
		} else if (c == CONSOLE_ESCAPE) {
			ci->escape_pending = true;
		} else {
			out[n++] = c;
		}
	}
	return n;
}
