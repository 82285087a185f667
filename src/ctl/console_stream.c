/* console_stream.c - the server side of `cvisor console`: attached
 * readers get the ring buffer, then live output; their keys go to the
 * guest's UART. Runs on the monitor's event loop (main thread). */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvisor/ctl.h"
#include "cvisor/ctl_console.h"
#include "cvisor/vm.h"

/* How often throttled input looks for room in the UART again. */
#define CONSOLE_RETRY_NS (10 * 1000000ULL)

/* Send console output from the client's position until the socket is
 * full. A reader more than the ring behind has lost that output: the ring
 * moves on without it rather than stall the guest. */
bool ctl_console_pump(struct ctl_conn *c)
{
	uint8_t buf[4096];

	while (!c->out) {
		uint64_t pos = c->con_pos, start;
		size_t n = ctl_console_read(c->srv->con, &pos, buf, sizeof(buf), NULL);
		ssize_t w;

		if (!n)
			break;
		start = pos - n;
		w = send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			c->con_pos = start;
			c->out_blocked = true;
			return true;
		}
		if (w <= 0)
			return false;
		c->con_pos = start + (uint64_t)w;
		if ((size_t)w < n) {
			c->out_blocked = true;
			return true;
		}
	}
	c->out_blocked = false;
	return true;
}

static void on_retry(void *opaque, int fd, uint32_t events);

/* Keys typed on an attached console go to the UART as it has room. */
static bool console_input(struct ctl_conn *c)
{
	struct ctl_server *srv = c->srv;
	uint8_t buf[256];
	size_t room = serial8250_rx_room(&srv->vm->uart);
	ssize_t r;

	if (room == 0) {
		c->throttled = true;
		if (srv->retry_fd < 0)
			srv->retry_fd = evloop_add_timer(&srv->vm->loop, CONSOLE_RETRY_NS,
							 CONSOLE_RETRY_NS, on_retry, srv);
		return true;
	}
	r = read(c->fd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (r <= 0)
		return false;
	serial8250_rx(&srv->vm->uart, buf, (size_t)r);
	return true;
}

static void console_update(struct ctl_conn *c)
{
	uint32_t ev = 0;

	if (!c->throttled && !c->eof)
		ev |= EPOLLIN;
	if (c->out || c->out_blocked)
		ev |= EPOLLOUT;
	/* Keep a registration so that a hang-up is still noticed. */
	ctl_conn_watch(c, ev ? ev : EPOLLRDHUP);
}

static void on_retry(void *opaque, int fd, uint32_t events)
{
	struct ctl_server *srv = opaque;
	uint64_t ticks;
	bool any = false;

	(void)events;
	if (read(fd, &ticks, sizeof(ticks)) < 0) {
		/* nothing to read is fine */
	}
	for (unsigned int i = 0; i < CTL_MAX_CONNS; i++) {
		struct ctl_conn *c = &srv->conns[i];

		if (c->fd < 0 || !c->throttled)
			continue;
		if (serial8250_rx_room(&srv->vm->uart) > 0) {
			c->throttled = false;
			console_update(c);
		} else {
			any = true;
		}
	}
	if (!any) {
		evloop_del(&srv->vm->loop, fd);
		close(fd);
		srv->retry_fd = -1;
	}
}

void ctl_console_event(struct ctl_conn *c, uint32_t events)
{
	bool ok = true;

	if (events & EPOLLOUT) {
		ok = ctl_conn_flush(c);
		if (ok)
			ok = ctl_console_pump(c);
	}
	if (ok && (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)))
		ok = console_input(c);
	if (!ok) {
		ctl_conn_close(c);
		return;
	}
	console_update(c);
}

void ctl_console_wake(void *opaque, int fd, uint32_t events)
{
	struct ctl_server *srv = opaque;

	(void)fd;
	(void)events;
	ctl_console_ack(srv->con);
	ctl_console_flush_log(srv->con);
	for (unsigned int i = 0; i < CTL_MAX_CONNS; i++) {
		struct ctl_conn *c = &srv->conns[i];

		if (c->fd < 0 || !c->console || c->out_blocked)
			continue;
		if (!ctl_console_pump(c))
			ctl_conn_close(c);
		else
			console_update(c);
	}
}

/* The request on a connection switches it to the console stream: the reply
 * line first, then the ring from its oldest byte. Bytes the client sent
 * after the request line are its first keys. */
void ctl_console_attach(struct ctl_conn *c)
{
	const char *rest;
	size_t n = ctl_linebuf_rest(&c->in, &rest);
	size_t room = serial8250_rx_room(&c->srv->vm->uart);

	c->console = true;
	c->con_pos = ctl_console_tail(c->srv->con);
	/* More typed ahead than the UART holds is dropped, as a terminal
	 * would when nobody reads. */
	if (n)
		serial8250_rx(&c->srv->vm->uart, (const uint8_t *)rest, n < room ? n : room);
	ctl_linebuf_free(&c->in);
}
