/* events.c - the --event-monitor stream, as Cloud Hypervisor writes it:
 * one JSON object per event,
 *   {"timestamp":{"secs":S,"nanos":N},"source":"vm","event":"booted","properties":null}
 * the time counted from the VMM's start. libvirt 11.3 reads it from a FIFO
 * and never signals the VMM it daemonized: the reader's going away (the
 * domain destroyed, the daemon gone) ends the VMM, as it ends Cloud
 * Hypervisor.
 *
 * A FIFO's reader that closes its fd while one of its threads is blocked
 * reading it (libvirt 11.3's event thread, stopped at destroy and save)
 * keeps the FIFO open until that read returns: the VMM would never see it
 * go. So a FIFO gets a newline every EV_TICK_NS, white space between
 * events in the stream, which ends such a read; the reader's close then
 * shows as EPOLLERR (or EPIPE) within a tick. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "api_priv.h"
#include "cvisor/vm.h"

#include <sys/stat.h>

#define EV_TICK_NS 1000000000ULL

static uint64_t start_ns;

static void drop_tick(struct api *a, struct evloop *l)
{
	if (a->ev_tick < 0)
		return;
	evloop_del(l, a->ev_tick);
	cv_close(&a->ev_tick);
}

/* The reader went away: end the guest and the VMM. */
static void reader_gone(struct api *a)
{
	evloop_del(api_loop(a), a->ev_fd);
	cv_close(&a->ev_fd);
	drop_tick(a, api_loop(a));
	a->quit = true;
	if (a->vm)
		vm_request_stop(a->vm, VM_STOP_POWEROFF, "the event monitor's reader went away");
}

static void on_event_fd(void *opaque, int fd, uint32_t events)
{
	(void)fd;
	if (events & (EPOLLERR | EPOLLHUP))
		reader_gone(opaque);
}

static void on_tick(void *opaque, int fd, uint32_t events)
{
	struct api *a = opaque;
	uint64_t n;

	(void)events;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* the timer fired; nothing to read is fine */
	}
	/* A full FIFO (EAGAIN) has a reader that is not reading: fine. */
	if (a->ev_fd >= 0 && write(a->ev_fd, "\n", 1) < 0 && errno == EPIPE)
		reader_gone(a);
}

int api_events_open(struct api *a, const char *spec, char *err, size_t errlen)
{
	const char *path;
	struct stat st;
	int fd, r;

	start_ns = cv_now_ns();
	if (api_parse_target(spec, false, &path, &fd))
		return cv_errf(err, errlen, -EINVAL,
			       "--event-monitor %.200s: want path=FILE or fd=N", spec);
	if (path && (fd = open(path, O_WRONLY | O_CLOEXEC | O_CREAT | O_APPEND, 0600)) < 0)
		return cv_errf(err, errlen, -errno, "--event-monitor %.200s: %s", path,
			       strerror(errno));
	if (fcntl(fd, F_GETFL) < 0)
		return cv_errf(err, errlen, -EBADF, "--event-monitor fd=%d: not open", fd);
	/* An event the reader has no room for is dropped, never waited for. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = -errno;
		close(fd);
		return cv_errf(err, errlen, r, "--event-monitor: %s", strerror(-r));
	}
	a->ev_fd = fd;
	/* No events asked: EPOLLERR (a pipe's reader closed) comes anyway. A
	 * regular file is not pollable and has no reader to lose. */
	if (evloop_add(&a->loop, fd, 0, on_event_fd, a) == -EPERM)
		cv_debug("--event-monitor: not pollable (a file)");
	if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
		r = evloop_add_timer(&a->loop, EV_TICK_NS, EV_TICK_NS, on_tick, a);
		if (r < 0)
			return cv_errf(err, errlen, r, "--event-monitor: timer: %s", strerror(-r));
		a->ev_tick = r;
	}
	return 0;
}

void api_events_move(struct api *a, struct evloop *from, struct evloop *to)
{
	int r;

	if (a->ev_fd < 0)
		return;
	evloop_del(from, a->ev_fd);
	if ((r = evloop_add(to, a->ev_fd, 0, on_event_fd, a)) && r != -EPERM)
		cv_debug("--event-monitor: not watched on the guest's loop");
	if (a->ev_tick >= 0) {
		evloop_del(from, a->ev_tick);
		if (evloop_add(to, a->ev_tick, EPOLLIN, on_tick, a))
			cv_debug("--event-monitor: its keep-alive not on the guest's loop");
	}
}

void api_event(struct api *a, const char *source, const char *event)
{
	uint64_t ns = cv_now_ns() - start_ns;
	char buf[256];
	int n;

	if (a->ev_fd < 0)
		return;
	n = snprintf(buf, sizeof(buf),
		     "{\"timestamp\":{\"secs\":%llu,\"nanos\":%llu},\"source\":\"%s\","
		     "\"event\":\"%s\",\"properties\":null}\n",
		     (unsigned long long)(ns / 1000000000ULL),
		     (unsigned long long)(ns % 1000000000ULL), source, event);
	if (write(a->ev_fd, buf, (size_t)n) < 0 && errno == EPIPE)
		reader_gone(a);
}

void api_events_close(struct api *a)
{
	if (a->ev_fd >= 0)
		evloop_del(api_loop(a), a->ev_fd);
	cv_close(&a->ev_fd);
	drop_tick(a, api_loop(a));
}
