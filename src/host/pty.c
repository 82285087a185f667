/* pty.c - a guest console's pseudo-terminal (see pty.h): the master on the
 * event loop, output through a bounded ring that never blocks the writer,
 * input paused while the consumer has no room. */
#include "cvisor/pty.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

/* The master's events: input unless paused, room while output waits. */
static void pty_watch(struct pty *p)
{
	uint32_t ev = (p->in_paused ? 0 : EPOLLIN) | (p->out_watched ? EPOLLOUT : 0);

	if (p->master >= 0 && evloop_mod(p->loop, p->master, ev))
		cv_warn("%s pty: cannot watch %s", p->label, p->path);
}

/* Write out what the ring holds, as far as the master takes it. Called
 * with p->lock held. */
static void pty_flush_locked(struct pty *p)
{
	while (p->out_len) {
		size_t n = PTY_OUT_BUF - p->out_head < p->out_len ? PTY_OUT_BUF - p->out_head
								  : p->out_len;
		ssize_t w = write(p->master, p->out + p->out_head, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {
			/* EIO and the like: the output has nowhere to go. */
			p->dropped += p->out_len;
			p->out_len = 0;
			return;
		}
		p->out_head = (p->out_head + (size_t)w) % PTY_OUT_BUF;
		p->out_len -= (size_t)w;
	}
}

void pty_write(struct pty *p, const uint8_t *buf, size_t len)
{
	bool wake;

	if (p->master < 0 || !len)
		return;
	pthread_mutex_lock(&p->lock);
	/* Nothing waiting: straight to the master, in order. */
	while (!p->out_len && len) {
		ssize_t w = write(p->master, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		buf += w;
		len -= (size_t)w;
	}
	wake = len && !p->out_len;
	/* Only the last PTY_OUT_BUF bytes can be kept. */
	if (len > PTY_OUT_BUF) {
		p->dropped += len - PTY_OUT_BUF;
		buf += len - PTY_OUT_BUF;
		len = PTY_OUT_BUF;
	}
	if (p->out_len + len > PTY_OUT_BUF) {
		size_t drop = p->out_len + len - PTY_OUT_BUF;

		p->dropped += drop;
		p->out_head = (p->out_head + drop) % PTY_OUT_BUF;
		p->out_len -= drop;
	}
	for (size_t i = 0; i < len;) {
		size_t tail = (p->out_head + p->out_len) % PTY_OUT_BUF;
		size_t n = PTY_OUT_BUF - tail < len - i ? PTY_OUT_BUF - tail : len - i;

		memcpy(p->out + tail, buf + i, n);
		p->out_len += n;
		i += n;
	}
	pthread_mutex_unlock(&p->lock);
	if (wake) {
		uint64_t one = 1;

		if (write(p->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			cv_debug("%s pty: eventfd: %s", p->label, strerror(errno));
	}
}

ssize_t pty_read(struct pty *p, uint8_t *buf, size_t len)
{
	ssize_t n;

	if (p->master < 0)
		return -EBADF;
	do
		n = read(p->master, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	return n;
}

/* Write out what waits, and watch the master for room while some is left. */
static void pty_drain(struct pty *p)
{
	bool waiting;

	pthread_mutex_lock(&p->lock);
	pty_flush_locked(p);
	waiting = p->out_len != 0;
	pthread_mutex_unlock(&p->lock);
	if (waiting != p->out_watched) {
		p->out_watched = waiting;
		pty_watch(p);
	}
}

/* Output waits: a writer on any thread put it in the ring. */
static void pty_woken(void *opaque, int fd, uint32_t events)
{
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		cv_debug("eventfd read: %s", strerror(errno));
	pty_drain(opaque);
}

static void pty_event(void *opaque, int fd, uint32_t events)
{
	struct pty *p = opaque;

	(void)fd;
	if (events & EPOLLOUT)
		pty_drain(p);
	if (events & EPOLLIN)
		p->readable(p->ctx);
	else if (events & (EPOLLHUP | EPOLLERR)) {
		/* Not expected while the slave is held; never spin on it. */
		cv_warn("%s pty %s: hung up; console input stopped", p->label, p->path);
		p->in_paused = true;
		pty_watch(p);
	}
}

static void pty_retry(void *opaque, int fd, uint32_t events)
{
	struct pty *p = opaque;
	uint64_t ticks;

	(void)events;
	if (read(fd, &ticks, sizeof(ticks)) < 0) {
		/* the timer fired; nothing to read is fine */
	}
	pty_input_resume(p);
	p->readable(p->ctx);
}

void pty_input_pause(struct pty *p, uint64_t retry_ns)
{
	if (retry_ns && p->retry_fd < 0) {
		p->retry_fd = evloop_add_timer(p->loop, retry_ns, 0, pty_retry, p);
		if (p->retry_fd < 0)
			return; /* keep watching input: busier, never stuck */
	} else if (retry_ns && evloop_timer_arm(p->retry_fd, retry_ns, 0)) {
		return;
	}
	if (!p->in_paused) {
		p->in_paused = true;
		pty_watch(p);
	}
}

void pty_input_resume(struct pty *p)
{
	if (p->retry_fd >= 0 && evloop_timer_arm(p->retry_fd, 0, 0))
		cv_debug("%s pty: timer: %s", p->label, strerror(errno));
	if (p->in_paused) {
		p->in_paused = false;
		pty_watch(p);
	}
}

const char *pty_path(const struct pty *p)
{
	return p->path;
}

/* The slave in raw mode: the guest's bytes pass unchanged, no echo. */
static int pty_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return -errno;
	cfmakeraw(&t);
	return tcsetattr(fd, TCSANOW, &t) < 0 ? -errno : 0;
}

/* The fds of a new pty into p; on failure the step that failed in *step
 * and -errno (what was opened is left for the caller to close). */
static int pty_make(struct pty *p, const char **step)
{
	*step = "posix_openpt";
	if ((p->master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) < 0)
		return -errno;
	*step = "grantpt";
	if (grantpt(p->master) < 0)
		return -errno;
	*step = "unlockpt";
	if (unlockpt(p->master) < 0)
		return -errno;
	*step = "ptsname";
	if (ptsname_r(p->master, p->path, sizeof(p->path)))
		return -ENAMETOOLONG;
	*step = p->path;
	if ((p->slave = open(p->path, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		return -errno;
	*step = "raw mode";
	return pty_raw(p->slave);
}

int pty_open(struct pty *p, struct evloop *loop, const char *label, void (*readable)(void *ctx),
	     void *ctx, struct cv_error *e)
{
	const char *step = "";
	bool master_on = false;
	int r;

	memset(p, 0, sizeof(*p));
	p->master = p->slave = p->wake_fd = p->retry_fd = -1;
	p->loop = loop;
	p->label = label;
	p->readable = readable;
	p->ctx = ctx;
	pthread_mutex_init(&p->lock, NULL);
	if (!(r = pty_make(p, &step)))
		step = "";
	if (!r && (p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		r = -errno, step = "eventfd";
	if (!r && !(r = evloop_add(loop, p->master, EPOLLIN, pty_event, p)))
		master_on = true;
	if (!r)
		r = evloop_add(loop, p->wake_fd, EPOLLIN, pty_woken, p);
	if (!r)
		return 0;
	if (!step[0])
		step = "event loop";
	if (master_on)
		evloop_del(loop, p->master);
	if (p->master >= 0)
		close(p->master);
	if (p->slave >= 0)
		close(p->slave);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	p->master = p->slave = p->wake_fd = -1;
	pthread_mutex_destroy(&p->lock);
	return cv_fail(e, CV_EXIT_FAIL, r, "%s: cannot make a pty: %s: %s", label, step,
		       strerror(-r));
}

void pty_close(struct pty *p)
{
	if (p->master < 0)
		return;
	if (p->dropped)
		cv_debug("%s pty %s: %llu bytes of output dropped (not read)", p->label, p->path,
			 (unsigned long long)p->dropped);
	evloop_del(p->loop, p->master);
	evloop_del(p->loop, p->wake_fd);
	if (p->retry_fd >= 0) {
		evloop_del(p->loop, p->retry_fd);
		close(p->retry_fd);
	}
	close(p->master);
	close(p->slave);
	close(p->wake_fd);
	p->master = p->slave = p->wake_fd = p->retry_fd = -1;
	pthread_mutex_destroy(&p->lock);
}
