/* runloop.c - main thread: console input, signals, and the stop event. */
#include "cvisor/runloop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cvisor/console.h"
#include "cvisor/vm.h"

#define CONSOLE_RETRY_MS 10

static sigset_t stop_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	return set;
}

void runloop_block_signals(void)
{
	sigset_t set = stop_signals();

	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* A console reader that goes away must not kill the guest. */
	signal(SIGPIPE, SIG_IGN);
}

/* Move what the user typed to the UART; false at end of input. */
static bool console_input(struct vm *vm, struct console_input *ci)
{
	uint8_t in[256], out[2 * sizeof(in)];
	size_t room = serial8250_rx_room(&vm->uart), n;
	bool quit = false;
	ssize_t r;

	/* The escape filter may emit one byte more than it reads (a held
	 * Ctrl-A and the key after it), so leave room for that. */
	if (room <= 1)
		return true;
	room--;
	if (room > sizeof(in))
		room = sizeof(in);
	r = read(STDIN_FILENO, in, room);
	if (r < 0)
		return errno == EINTR || errno == EAGAIN;
	if (r == 0)
		return false;
	n = console_filter(ci, in, (size_t)r, out, &quit);
	serial8250_rx(&vm->uart, out, n);
	if (quit)
		vm_request_stop(vm, VM_STOP_POWEROFF, "quit from the console");
	return true;
}

int runloop_run(struct vm *vm)
{
	sigset_t set = stop_signals();
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	struct console_input ci = { 0 };
	bool stdin_open = true;
	int signo = 0;

	while (!atomic_load(&vm->stop)) {
		struct pollfd p[3] = {
			{ .fd = vm->stop_fd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = STDIN_FILENO, .events = POLLIN },
		};
		bool rx_full = serial8250_rx_room(&vm->uart) <= 1;
		nfds_t n = stdin_open && !rx_full ? 3 : 2;

		/* While the guest has not drained its receive buffer, look again
		 * soon instead of reading input we would have to drop. */
		if (poll(p, n, stdin_open && rx_full ? CONSOLE_RETRY_MS : -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				signo = (int)si.ssi_signo;
				vm_request_stop(vm, VM_STOP_SIGNAL, NULL);
			}
		}
		if (n == 3 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
			stdin_open = console_input(vm, &ci);
	}
	if (sfd >= 0)
		close(sfd);
	return signo;
}
