/* server.c - a guest's control socket, served on the monitor's event loop
 * (main thread): connections, framing, the console stream. The requests
 * themselves are in commands.c; the protocol in proto.c. */
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
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cvisor/ctl_console.h"
#include "cvisor/vm.h"

#define LISTEN_BACKLOG 64

/* mkdir -p, the last level 0700: sockets in it are for this user only. */
static int make_run_dir(const char *dir)
{
	char p[PATH_MAX];

	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The run directory holds our sockets, locks and logs, which root opens
 * by name: a directory another user owns or may write to could have them
 * replaced or turned into symlinks, so it is refused. */
static int check_run_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		int r = -errno;

		if (fd >= 0)
			close(fd);
		return cv_errf(err, errlen, r, "%s: %s", dir, strerror(-r));
	}
	close(fd);
	if (st.st_uid != geteuid())
		return cv_errf(err, errlen, -EPERM,
			       "run directory %s belongs to uid %u, not to this user (%u): remove "
			       "it or set CVISOR_RUN_DIR",
			       dir, (unsigned int)st.st_uid, (unsigned int)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return cv_errf(err, errlen, -EPERM,
			       "run directory %s is writable by group or others (mode %03o): "
			       "chmod go-w it or set CVISOR_RUN_DIR",
			       dir, (unsigned int)(st.st_mode & 0777));
	return 0;
}

/* Lock DIR/NAME.lock for the monitor's life. The file is unlinked on exit,
 * so a lock taken on a file that has just been unlinked is retried: only
 * the file the path names counts. */
static int take_lock(struct ctl_server *srv)
{
	for (int tries = 0; tries < 10; tries++) {
		struct stat a, b;
		int fd = open(srv->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int r = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;

			close(fd);
			return r;
		}
		if (fstat(fd, &a) == 0 && stat(srv->lock_path, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev) {
			srv->lock_fd = fd;
			return 0;
		}
		close(fd);
	}
	return -EAGAIN;
}

/* With the lock held, a socket file left behind is stale (its monitor was
 * killed with SIGKILL or crashed). A monitor that still answers on it
 * would be one that holds no lock: refuse rather than steal its name. */
static int replace_stale_socket(struct ctl_server *srv, const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		r = -EADDRINUSE;
	else if (errno == ECONNREFUSED)
		cv_debug("removing the stale socket %s", srv->sock_path);
	close(fd);
	if (!r && unlink(srv->sock_path) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

int ctl_server_bind(struct ctl_server *srv, const char *dir, const char *name, char *err,
		    size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char real[PATH_MAX];
	mode_t old;
	int r;

	memset(srv, 0, sizeof(*srv));
	srv->lock_fd = srv->listen_fd = srv->stop_timer = srv->retry_fd = srv->idle_timer = -1;
	srv->idle_timeout_ns = CTL_IDLE_TIMEOUT_S * 1000000000ULL;
	srv->owner = geteuid();
	for (unsigned int i = 0; i < CTL_MAX_CONNS; i++)
		srv->conns[i].fd = -1;
	snprintf(srv->name, sizeof(srv->name), "%s", name);
	srv->pid = getpid();
	if ((r = make_run_dir(dir)) || !realpath(dir, real)) {
		r = r ? r : -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	if ((r = check_run_dir(real, err, errlen)))
		return r;
	snprintf(srv->dir, sizeof(srv->dir), "%s", real);
	if ((size_t)snprintf(srv->sock_path, sizeof(srv->sock_path), "%s/%s.sock", real, name) >=
	    sizeof(srv->sock_path)) {
		snprintf(err, errlen, "%s/%s.sock: longer than a socket path may be (%zu bytes)",
			 real, name, sizeof(srv->sock_path) - 1);
		return -ENAMETOOLONG;
	}
	/* Shorter than the socket path, which fit. */
	snprintf(srv->lock_path, sizeof(srv->lock_path), "%.*s.lock",
		 (int)(strlen(srv->sock_path) - strlen(".sock")), srv->sock_path);
	memcpy(sa.sun_path, srv->sock_path, sizeof(srv->sock_path));
	r = take_lock(srv);
	if (!r)
		r = replace_stale_socket(srv, &sa);
	if (r == -EADDRINUSE) {
		snprintf(err, errlen, "guest %s is already running (socket %s)", name,
			 srv->sock_path);
		goto fail;
	}
	if (r) {
		snprintf(err, errlen, "%s: %s", srv->lock_path, strerror(-r));
		goto fail;
	}
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	/* Created 0600 from the start: still single-threaded here, so the
	 * process-wide umask is safe to borrow. */
	old = umask(0177);
	r = bind(srv->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old);
	if (!r && listen(srv->listen_fd, LISTEN_BACKLOG) < 0) {
		r = -errno;
		unlink(srv->sock_path);
	}
	if (r) {
		snprintf(err, errlen, "%s: %s", srv->sock_path, strerror(-r));
		goto fail;
	}
	return 0;
fail:
	cv_close(&srv->listen_fd);
	cv_close(&srv->lock_fd);
	srv->sock_path[0] = srv->lock_path[0] = '\0';
	return r;
}

void ctl_server_unlink(struct ctl_server *srv, bool lock)
{
	bool any = srv->sock_path[0] || (lock && srv->lock_path[0]);

	if (any && srv->unlink_hook) {
		if (srv->unlink_hook(srv->unlink_ctx, lock))
			cv_debug("control: the keeper did not remove %s", srv->sock_path);
	} else if (any) {
		if (srv->sock_path[0])
			unlink(srv->sock_path);
		if (lock && srv->lock_path[0])
			unlink(srv->lock_path);
	}
	srv->sock_path[0] = '\0';
	if (lock)
		srv->lock_path[0] = '\0';
}

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
	struct itimerspec its = { 0 };
	uint64_t first = UINT64_MAX, now = cv_now_ns(), ns;

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
		/* it_value 0 would disarm: at least 1 ms */
		ns = ns < 1000000 ? 1000000 : ns;
		its.it_value.tv_sec = (time_t)(ns / 1000000000ULL);
		its.it_value.tv_nsec = (long)(ns % 1000000000ULL);
	}
	if (timerfd_settime(srv->idle_timer, 0, &its, NULL) < 0)
		cv_debug("control: idle timer: %s", strerror(errno));
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
	int cfd;

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
	if (!ctl_server_admit(srv, cfd)) {
		close(cfd);
		return;
	}
	*c = (struct ctl_conn){ .srv = srv, .fd = cfd, .idle_since = cv_now_ns() };
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
