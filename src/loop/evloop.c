/* evloop.c - epoll dispatch for the main thread. */
#include "cvisor/evloop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

int evloop_init(struct evloop *l)
{
	memset(l, 0, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -errno : 0;
}

void evloop_destroy(struct evloop *l)
{
	cv_close(&l->epfd);
}

static struct evloop_handler *find(struct evloop *l, int fd)
{
	for (unsigned int i = 0; i < EVLOOP_MAX_HANDLERS; i++)
		if (l->handlers[i].used && l->handlers[i].fd == fd)
			return &l->handlers[i];
	return NULL;
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque)
{
	struct evloop_handler *h = NULL;
	struct epoll_event ev = { .events = events };

	if (find(l, fd))
		return -EEXIST;
	for (unsigned int i = 0; i < EVLOOP_MAX_HANDLERS && !h; i++)
		if (!l->handlers[i].used && !l->handlers[i].zombie)
			h = &l->handlers[i];
	if (!h)
		return -ENOSPC;
	ev.data.ptr = h;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	*h = (struct evloop_handler){ .fd = fd, .fn = fn, .opaque = opaque, .used = true };
	return 0;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	struct evloop_handler *h = find(l, fd);
	struct epoll_event ev = { .events = events };

	if (!h)
		return -ENOENT;
	ev.data.ptr = h;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void evloop_del(struct evloop *l, int fd)
{
	struct evloop_handler *h = find(l, fd);

	if (!h)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* A later event in the same batch sees used == false and is skipped;
	 * the slot is not handed to a new fd before the batch ends, or that
	 * stale event would reach the new handler. */
	h->used = false;
	h->zombie = l->depth > 0;
	l->zombies += h->zombie;
	h->fd = -1;
}

void evloop_close_fds(struct evloop *l, int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (fds[i] < 0)
			continue;
		evloop_del(l, fds[i]);
		close(fds[i]);
		fds[i] = -1;
	}
}

int evloop_once(struct evloop *l, int timeout_ms)
{
	struct epoll_event evs[32];
	uint64_t round;
	int n = epoll_wait(l->epfd, evs, 32, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	round = ++l->rounds;
	l->depth++;
	for (int i = 0; i < n; i++) {
		struct evloop_handler *h = evs[i].data.ptr;

		if (h->used)
			h->fn(h->opaque, h->fd, evs[i].events);
		/* A handler ran rounds of its own (a migration pumps the loop):
		 * the rest of this batch is stale (an fd read meanwhile would
		 * block, a slot may be reused). Every fd is level-triggered, so
		 * what is still ready comes back at the next wait. */
		if (l->rounds != round)
			break;
	}
	/* No batch in progress reads its events any more once a nested round
	 * has ended (the outer one stops above): freed slots are free. */
	l->depth--;
	/* Most rounds free nothing: no walk of the whole table then. */
	for (unsigned int i = 0; l->zombies && i < EVLOOP_MAX_HANDLERS; i++)
		if (l->handlers[i].zombie) {
			l->handlers[i].zombie = false;
			l->zombies--;
		}
	return 0;
}

int evloop_timer_arm(int fd, uint64_t first_ns, uint64_t period_ns)
{
	struct itimerspec its = {
		.it_value = { (time_t)(first_ns / 1000000000ULL),
			      (long)(first_ns % 1000000000ULL) },
		.it_interval = { (time_t)(period_ns / 1000000000ULL),
				 (long)(period_ns % 1000000000ULL) },
	};

	return timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
}

int evloop_add_timer(struct evloop *l, uint64_t first_ns, uint64_t period_ns, evloop_fn fn,
		     void *opaque)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), r;

	if (fd < 0)
		return -errno;
	if ((r = evloop_timer_arm(fd, first_ns, period_ns)) ||
	    (r = evloop_add(l, fd, EPOLLIN, fn, opaque))) {
		close(fd);
		return r;
	}
	return fd;
}
