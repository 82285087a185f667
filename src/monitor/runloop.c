/* runloop.c - what the main thread serves while the guest runs: console
 * input, signals and the stop event, on the VM's event loop. */
#include "cvisor/runloop.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cvisor/console.h"
#include "cvisor/evloop.h"
#include "cvisor/vm.h"

#define CONSOLE_RETRY_NS (10 * 1000000ULL)

struct runloop {
	struct vm *vm;
	struct console_input ci;
	int sfd;
	int retry_fd; /* timer while the guest has not drained its input */
	int signo;
};

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

static void on_stdin(void *opaque, int fd, uint32_t events);

/* Stop reading input the guest has no room for; look again a little later
 * instead of dropping it. */
static void throttle(struct runloop *rl, bool on)
{
	struct evloop *l = &rl->vm->loop;

	if (on && rl->retry_fd < 0) {
		evloop_del(l, STDIN_FILENO);
		rl->retry_fd =
			evloop_add_timer(l, CONSOLE_RETRY_NS, CONSOLE_RETRY_NS, on_stdin, rl);
	} else if (!on && rl->retry_fd >= 0) {
		evloop_del(l, rl->retry_fd);
		close(rl->retry_fd);
		rl->retry_fd = -1;
		if (evloop_add(l, STDIN_FILENO, EPOLLIN, on_stdin, rl))
			cv_warn("console input stopped: cannot watch stdin");
	}
}

static void on_stdin(void *opaque, int fd, uint32_t events)
{
	struct runloop *rl = opaque;
	struct vm *vm = rl->vm;
	uint8_t in[256], out[sizeof(in) + 1];
	size_t room = serial8250_rx_room(&vm->uart), n;
	bool quit = false;
	ssize_t r;

	(void)events;
	if (fd == rl->retry_fd) {
		uint64_t ticks;

		if (read(fd, &ticks, sizeof(ticks)) < 0) {
			/* the timer fired; nothing to read is fine */
		}
		if (room > 1)
			throttle(rl, false);
		return;
	}
	/* The escape filter may emit one byte more than it reads (a held
	 * Ctrl-A and the key after it), so leave room for that. */
	if (room <= 1) {
		throttle(rl, true);
		return;
	}
	room--;
	if (room > sizeof(in))
		room = sizeof(in);
	r = read(STDIN_FILENO, in, room);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r <= 0) {
		/* End of input: the guest runs on without a console. */
		evloop_del(&vm->loop, STDIN_FILENO);
		return;
	}
	n = console_filter(&rl->ci, in, (size_t)r, out, &quit);
	serial8250_rx(&vm->uart, out, n);
	if (quit)
		vm_request_stop(vm, VM_STOP_POWEROFF, "quit from the console");
}

static void on_signal(void *opaque, int fd, uint32_t events)
{
	struct runloop *rl = opaque;
	struct signalfd_siginfo si;

	(void)events;
	if (read(fd, &si, sizeof(si)) == sizeof(si)) {
		rl->signo = (int)si.ssi_signo;
		vm_request_stop(rl->vm, VM_STOP_SIGNAL, NULL);
	}
}

/* The loop below ends once vm->stop is set; a reset in place is done
 * here (the same eventfd wakes the loop for it). */
static void on_stop(void *opaque, int fd, uint32_t events)
{
	uint64_t n;

	(void)events;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* Nothing to read is fine: the wake-up was seen already. */
	}
	vm_reset_run(opaque);
}

int runloop_run(struct vm *vm)
{
	sigset_t set = stop_signals();
	struct runloop rl = { .vm = vm, .retry_fd = -1 };
	int r;

	rl.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (rl.sfd < 0)
		r = -errno;
	else if (!(r = evloop_add(&vm->loop, rl.sfd, EPOLLIN, on_signal, &rl)))
		r = evloop_add(&vm->loop, vm->stop_fd, EPOLLIN, on_stop, vm);
	if (r) {
		cv_err("event loop setup: %s", strerror(-r));
		vm_request_stop(vm, VM_STOP_HOST, NULL);
		return 0;
	}
	/* stdin may be /dev/null or a file, which epoll refuses: then there is
	 * simply no console input. */
	if (evloop_add(&vm->loop, STDIN_FILENO, EPOLLIN, on_stdin, &rl))
		cv_debug("console input not watched (stdin is not pollable)");
	while (!atomic_load(&vm->stop)) {
		r = evloop_once(&vm->loop, -1);
		if (r) {
			cv_err("event loop: %s", strerror(-r));
			vm_request_stop(vm, VM_STOP_HOST, NULL);
		}
	}
	evloop_del(&vm->loop, STDIN_FILENO);
	evloop_del(&vm->loop, rl.sfd);
	evloop_del(&vm->loop, vm->stop_fd);
	if (rl.retry_fd >= 0) {
		evloop_del(&vm->loop, rl.retry_fd);
		close(rl.retry_fd);
	}
	close(rl.sfd);
	return rl.signo;
}
