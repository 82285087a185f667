/* server.c - a guest's control socket, served on the monitor's event loop
 * (main thread): connections, framing, the console stream. The requests
 * themselves are in commands.c; the protocol in proto.c; the name it is
 * bound on in name.c. */
#include "cvisor/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/ctl_console.h"
#include "cvisor/vm.h"

static void on_client(void *opaque, int fd, uint32_t events);
static void on_listen(void *opaque, int fd, uint32_t events);

void ctl_conn_watch(struct ctl_conn *c, uint32_t events)
{
	struct evloop *l = &c->srv->vm->loop;

	if (events == c->events)
		return;
	if (c->events == 0 && evloop_add(l, c->fd, events, on_client, c) == 0)
		c->events = events;
	else if (events == 0) {
		evloop_del(l, c->fd);
		c->events = 0;
	} else if (evloop_mod(l, c->fd, events) == 0)
		c->events = events;
}

void ctl_conn_drop_fds(struct ctl_conn *c)
{
	for (unsigned int i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
	c->fds_refused = c->fds_now = false;
}

/* read(2) that also takes the files a client passes with a request line
 * (save's). They came with the last byte read (cv_recv_fds), so they
 * belong to the line that byte is in. Too many, or a second set before
 * the first was used, refuse that line. */
static ssize_t conn_read(struct ctl_conn *c, char *p, size_t room)
{
	struct cv_passed_fds in;
	long r = cv_recv_fds(c->fd, p, room, &in);
	uint64_t line = c->lines;
	bool refuse;

	if (r <= 0 || (!in.n && !in.truncated))
		return r;
	/* The lines complete before that byte: held ones, then this read's. */
	for (size_t i = c->in.start; i < c->in.len; i++)
		line += c->in.buf[i] == '\n';
	for (long i = 0; i < r - 1; i++)
		line += p[i] == '\n';
	refuse = in.truncated || in.n > CTL_MAX_FDS || c->nfds || c->fds_refused;
	ctl_conn_drop_fds(c);
	for (unsigned int i = 0; i < in.n; i++)
		if (refuse)
			close(in.fd[i]);
		else
			c->fds[c->nfds++] = in.fd[i];
	c->fds_refused = refuse;
	c->fds_line = line;
	return r;
}

void ctl_conn_close(struct ctl_conn *c)
{
	struct ctl_server *srv = c->srv;

	if (c->fd < 0)
		return;
	if (c->events)
		evloop_del(&srv->vm->loop, c->fd);
	close(c->fd);
	ctl_conn_drop_fds(c);
	ctl_linebuf_free(&c->in);
	free(c->out);
	*c = (struct ctl_conn){ .fd = -1 };
	/* A slot is free again: take the connections waiting in the backlog. */
	if (!srv->accepting && srv->listen_fd >= 0 &&
	    evloop_add(&srv->vm->loop, srv->listen_fd, EPOLLIN, on_listen, srv) == 0)
		srv->accepting = true;
}

/* A client the idle timeout applies to: connected, and not a console
 * reader, a stop or kill waiting for the end, or a request under way. */
static bool conn_may_idle(const struct ctl_conn *c)
{
	return c->fd >= 0 && !c->console && !c->waiting && !c->busy;
}

/* A client that has sent nothing the server has not answered: no reply
 * pending, and no unread bytes in its socket (a request that has arrived
 * is not dropped). */
static bool conn_silent(const struct ctl_conn *c)
{
	int unread = 0;

	if (!conn_may_idle(c) || c->out ||
	    cv_now_ns() - c->idle_since < CTL_EVICT_GRACE_MS * 1000000ULL)
		return false;
	return ioctl(c->fd, FIONREAD, &unread) == 0 && unread == 0;
}

/* A slot for a new connection: a free one, else the one of the client
 * that has been silent longest, which is closed (NULL if every client is
 * busy, waiting or a console). Idle clients cannot lock out kill. */
static struct ctl_conn *free_slot(struct ctl_server *srv)
{
	struct ctl_conn *old = NULL;

	for (unsigned int i = 0; i < CTL_MAX_CONNS; i++) {
		struct ctl_conn *c = &srv->conns[i];

		if (c->fd < 0)
			return c;
		if (conn_silent(c) && (!old || c->idle_since < old->idle_since))
			old = c;
	}
	if (old) {
		cv_debug("control: every slot taken; closing the longest idle client");
		ctl_conn_close(old);
	}
	return old;
}

/* Arm the idle timer for the earliest deadline of the clients it covers,
 * or disarm it when there are none. Deadlines only move later, so a timer
 * that fires early just sweeps again. */
static void idle_arm(struct ctl_server *srv)
{
	uint64_t first = UINT64_MAX, now = cv_now_ns(), ns = 0;
	int r;

	if (srv->idle_timer < 0)
		return;
	for (unsigned int i = 0; i < CTL_MAX_CONNS; i++) {
		const struct ctl_conn *c = &srv->conns[i];

		if (conn_may_idle(c) && c->idle_since < first)
			first = c->idle_since;
	}
	if (first != UINT64_MAX) {
		ns = first + srv->idle_timeout_ns > now ? first + srv->idle_timeout_ns - now : 0;
		/* Not accepting (every slot taken): look again when the youngest
		 * silent client's grace ends, to make room then. */
		if (!srv->accepting && ns > CTL_EVICT_GRACE_MS * 1000000ULL)
			ns = CTL_EVICT_GRACE_MS * 1000000ULL;
		/* 0 would disarm: at least 1 ms */
		ns = ns < 1000000 ? 1000000 : ns;
	}
	if ((r = evloop_timer_arm(srv->idle_timer, ns, 0)))
		cv_debug("control: idle timer: %s", strerror(-r));
}

/* The idle timer: close the clients that have sent no complete request
 * within the idle timeout (a partial line does not count: a client that
 * trickles bytes is as idle as a silent one). */
static void on_idle(void *opaque, int fd, uint32_t events)
{
	struct ctl_server *srv = opaque;
	uint64_t ticks, now = cv_now_ns();

	(void)events;
	if (read(fd, &ticks, sizeof(ticks)) < 0) {
		/* nothing to read: a timer re-armed since it fired */
	}
	for (unsigned int i = 0; i < CTL_MAX_CONNS; i++) {
		struct ctl_conn *c = &srv->conns[i];

		if (conn_may_idle(c) && now - c->idle_since >= srv->idle_timeout_ns) {
			cv_debug("control: closing a client idle for %llu ms",
				 (unsigned long long)(srv->idle_timeout_ns / 1000000));
			ctl_conn_close(c);
		}
	}
	/* Still not accepting: a client past its grace may now give way. */
	if (!srv->accepting && srv->listen_fd >= 0 && free_slot(srv) && !srv->accepting &&
	    evloop_add(&srv->vm->loop, srv->listen_fd, EPOLLIN, on_listen, srv) == 0)
		srv->accepting = true;
	idle_arm(srv);
}

static void on_listen(void *opaque, int fd, uint32_t events)
{
	struct ctl_server *srv = opaque;
	struct ctl_conn *c = free_slot(srv);
	int cfd, peer;

	(void)events;
	if (!c) {
		/* Every client busy: leave the rest in the backlog until a
		 * slot frees. */
		evloop_del(&srv->vm->loop, fd);
		srv->accepting = false;
		idle_arm(srv);
		return;
	}
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	if (!(peer = ctl_server_admit(srv, cfd))) {
		close(cfd);
		return;
	}
	*c = (struct ctl_conn){
		.srv = srv, .fd = cfd, .idle_since = cv_now_ns(), .owner = peer == CTL_PEER_OWNER
	};
	if (ctl_linebuf_init(&c->in, CTL_REQUEST_MAX)) {
		close(cfd);
		c->fd = -1;
		return;
	}
	ctl_conn_watch(c, EPOLLIN);
	if (!c->events) {
		close(cfd);
		ctl_linebuf_free(&c->in);
		c->fd = -1;
		return;
	}
	idle_arm(srv);
}

/* Send what is pending of the current reply; false if the client broke. */
bool ctl_conn_flush(struct ctl_conn *c)
{
	while (c->out && c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return true;
		if (w <= 0)
			return false;
		c->out_off += (size_t)w;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return true;
}

static void queue_reply(struct ctl_conn *c, char *line)
{
	if (!line) {
		/* Out of memory: a reply the client can still parse. */
		line = strdup("{\"ok\":false,\"error\":\"out of memory\"}\n");
		if (!line) {
			c->close_after = true;
			return;
		}
	}
	free(c->out);
	c->out = line;
	c->out_len = strlen(line);
	c->out_off = 0;
}

/* True when the client has closed its end for good (or shut down both
 * directions): it will never read a reply. A half-close (SHUT_WR) is not
 * this; poll reports POLLHUP only once neither direction is left. */
static bool peer_gone(const struct ctl_conn *c)
{
	struct pollfd p = { .fd = c->fd };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

/* Carry out the request line for c, its reply queued. */
static void serve_request(struct ctl_conn *c, char *line, size_t len)
{
	struct ctl_request req;
	char err[256];
	int r;

	if (ctl_command_raw(c->srv, c, line, len, &line)) {
		queue_reply(c, line);
		return;
	}
	if (ctl_request_parse(line, len, &req, err, sizeof(err))) {
		queue_reply(c, ctl_reply_error(err));
		return;
	}
	r = ctl_command(c->srv, c, &req, &line);
	if (c->waiting)
		return;
	queue_reply(c, line);
	if (req.cmd == CTL_CMD_CONSOLE && r == 0)
		ctl_console_attach(c);
}

/* Take the next complete line of c's buffer and carry it out, its reply
 * queued. 0 when no complete line waits. */
static int serve_one(struct ctl_conn *c)
{
	char err[64], *line;
	size_t len;
	uint64_t idx;
	int r = ctl_linebuf_take(&c->in, &line, &len);

	if (r == 0)
		return 0;
	c->idle_since = cv_now_ns();
	/* A client that gave up (a cvisor kill that timed out, say) must
	 * not have its request carried out behind its back, late. */
	if (peer_gone(c)) {
		cv_debug("control: dropping the requests of a client that hung up");
		c->close_after = true;
		return 1;
	}
	if (r < 0) {
		snprintf(err, sizeof(err), "request larger than %d bytes", CTL_REQUEST_MAX);
		queue_reply(c, ctl_reply_error(err));
		c->close_after = true;
		return 1;
	}
	idx = c->lines++;
	if ((c->nfds || c->fds_refused) && c->fds_line < idx)
		ctl_conn_drop_fds(c); /* a line not served (too long) */
	c->fds_now = (c->nfds || c->fds_refused) && c->fds_line == idx;
	if (c->fds_now && c->fds_refused) {
		snprintf(err, sizeof(err), "at most %d files may come with a request", CTL_MAX_FDS);
		queue_reply(c, ctl_reply_error(err));
		ctl_conn_drop_fds(c);
		return 1;
	}
	/* The idle timer and a full server leave a running request alone
	 * (migrate runs the event loop from inside it). */
	c->busy = true;
	serve_request(c, line, len);
	c->busy = false;
	/* The files were this request's, used or not. */
	if (c->fds_now)
		ctl_conn_drop_fds(c);
	c->idle_since = cv_now_ns();
	return 1;
}

/* Serve every complete line in c's buffer, in order, each reply sent
 * before the next request is taken: one read may bring several requests
 * (pipelined, or followed by a half-close), and no further input event
 * would come for the ones left behind. Stops when a reply has to wait for
 * EPOLLOUT, a request waits for the guest's end (stop, kill), the
 * connection turns into a console stream, or no complete line is left.
 * False when the client broke. */
static bool serve_lines(struct ctl_conn *c)
{
	for (;;) {
		if (c->out) {
			if (!ctl_conn_flush(c))
				return false;
			if (!c->out)
				c->idle_since = cv_now_ns();
		}
		if (c->out || c->waiting || c->close_after || c->console)
			return true;
		if (!serve_one(c))
			return true;
	}
}

static void on_client(void *opaque, int fd, uint32_t events)
{
	struct ctl_conn *c = opaque;
	uint32_t ev = 0;

	(void)fd;
	if (c->console) {
		ctl_console_event(c, events);
		return;
	}
	if (!c->out && !c->eof && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		char *p;
		size_t room = ctl_linebuf_room(&c->in, &p);
		ssize_t r = room ? conn_read(c, p, room) : 0;

		if (r > 0)
			ctl_linebuf_added(&c->in, (size_t)r);
		else if (room && (r == 0 || (errno != EAGAIN && errno != EINTR)))
			c->eof = true;
	}
	if (!serve_lines(c)) {
		ctl_conn_close(c);
		return;
	}
	if (c->console) {
		ctl_console_event(c, EPOLLOUT);
		return;
	}
	if (!c->out && (c->close_after || (c->eof && !c->waiting))) {
		ctl_conn_close(c);
		return;
	}
	if (c->out)
		ev = EPOLLOUT;
	else if (!c->eof && !c->waiting)
		ev = EPOLLIN;
	/* A client waiting for stop/kill is only written to at the end. */
	if (!ev) {
		if (c->events)
			evloop_del(&c->srv->vm->loop, c->fd);
		c->events = 0;
		return;
	}
	ctl_conn_watch(c, ev);
}

int ctl_server_start(struct ctl_server *srv, struct vm *vm, const struct ctl_hooks *hooks,
		     struct ctl_console *con)
{
	int r;

	srv->vm = vm;
	srv->con = con;
	if (hooks)
		srv->hooks = *hooks;
	if (sched_getaffinity(0, sizeof(srv->host_cpus), &srv->host_cpus) < 0)
		return -errno;
	if ((r = evloop_add(&vm->loop, srv->listen_fd, EPOLLIN, on_listen, srv)))
		return r;
	srv->accepting = true;
	/* Disarmed until a client connects. */
	if ((r = evloop_add_timer(&vm->loop, 0, 0, on_idle, srv)) < 0)
		return r;
	srv->idle_timer = r;
	if (con && (r = evloop_add(&vm->loop, con->wake_fd, EPOLLIN, ctl_console_wake, srv)))
		return r;
	return 0;
}

static const char *outcome_of(struct ctl_server *srv)
{
	if (srv->killed)
		return "killed";
	switch (atomic_load(&srv->vm->stop)) {
	case VM_STOP_POWEROFF:
		return "poweroff";
	case VM_STOP_RESET:
		return "reset";
	case VM_STOP_SAVED:
		return "saved";
	case VM_STOP_CRASH:
		return "crash";
	case VM_STOP_SIGNAL:
		return "signal";
	case VM_STOP_GUEST_EXIT:
		return "guest-exit"; /* isa-debug-exit */
	default:
		return "error";
	}
}

static void drop_timer(struct evloop *l, int *fd)
{
	if (*fd >= 0) {
		evloop_del(l, *fd);
		close(*fd);
		*fd = -1;
	}
}

void ctl_server_shutdown(struct ctl_server *srv)
{
	struct evloop *l;

	if (!srv->vm || srv->outcome)
		return;
	l = &srv->vm->loop;
	srv->outcome = outcome_of(srv);
	if (srv->listen_fd >= 0) {
		if (srv->accepting)
			evloop_del(l, srv->listen_fd);
		close(srv->listen_fd);
		srv->listen_fd = -1;
		srv->accepting = false;
	}
	ctl_server_unlink(srv, false);
	if (srv->con) {
		evloop_del(l, srv->con->wake_fd);
		ctl_console_flush_log(srv->con);
	}
	drop_timer(l, &srv->stop_timer);
	drop_timer(l, &srv->retry_fd);
	drop_timer(l, &srv->idle_timer);
	for (unsigned int i = 0; i < CTL_MAX_CONNS; i++) {
		struct ctl_conn *c = &srv->conns[i];

		if (c->fd < 0)
			continue;
		/* Readers get the guest's last words; the others are done. */
		if (c->console && ctl_conn_flush(c))
			ctl_console_pump(c);
		if (!c->waiting)
			ctl_conn_close(c);
		else if (c->events) {
			evloop_del(l, c->fd);
			c->events = 0;
		}
	}
}

void ctl_server_close(struct ctl_server *srv)
{
	struct json_object *o;

	cv_close(&srv->listen_fd);
	cv_close(&srv->idle_timer);
	/* Release the name before answering, so that a script's next
	 * `cvisor run --name` after `cvisor stop` finds it free. */
	ctl_server_unlink(srv, srv->lock_fd >= 0);
	cv_close(&srv->lock_fd);
	for (unsigned int i = 0; i < CTL_MAX_CONNS; i++) {
		struct ctl_conn *c = &srv->conns[i];

		if (c->fd < 0)
			continue;
		if (c->waiting) {
			o = json_object_new_object();
			if (o)
				json_object_object_add(o, "outcome",
						       json_object_new_string(srv->outcome
										      ? srv->outcome
										      : "error"));
			queue_reply(c, ctl_reply_ok(o));
			ctl_conn_flush(c);
		}
		close(c->fd);
		ctl_conn_drop_fds(c);
		ctl_linebuf_free(&c->in);
		free(c->out);
		*c = (struct ctl_conn){ .fd = -1 };
	}
}

bool ctl_server_killed(const struct ctl_server *srv)
{
	return srv->killed;
}
