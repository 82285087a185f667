/* evloop.h - the monitor's event loop (epoll): console input, signals,
 * ioeventfds and device backends, the control socket, timers. It runs on
 * the main thread, so a vCPU thread never does device work. */
#ifndef CVISOR_EVLOOP_H
#define CVISOR_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "cvisor/util.h"

#define EVLOOP_MAX_HANDLERS 1024

/* Called with the epoll events that fired for fd. */
typedef void (*evloop_fn)(void *opaque, int fd, uint32_t events);

struct evloop_handler {
	int fd;
	evloop_fn fn;
	void *opaque;
	bool used;
	bool zombie; /* freed during the current batch: not reused until it ends */
};

struct evloop {
	int epfd;
	unsigned int depth;   /* evloop_once calls under way (they may nest) */
	uint64_t rounds;      /* evloop_once rounds begun: a handler's nested ones show */
	unsigned int zombies; /* slots freed in the current round */
	struct evloop_handler handlers[EVLOOP_MAX_HANDLERS];
};

int evloop_init(struct evloop *l) CV_MUST;
void evloop_destroy(struct evloop *l);

/* Watch fd for events (EPOLLIN, ...). -ENOSPC when full, -EEXIST if present. */
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque) CV_MUST;

/* Change the events watched on fd. */
int evloop_mod(struct evloop *l, int fd, uint32_t events) CV_MUST;

/* Stop watching fd (safe from inside a handler, also for fd itself). */
void evloop_del(struct evloop *l, int fd);

/* Stop watching and close each of fds[0..n) that is >= 0, and set it to
 * -1 (a device's or transport's eventfds, at its teardown). */
void evloop_close_fds(struct evloop *l, int *fds, unsigned int n);

/* One round: wait at most timeout_ms (< 0 blocks) and dispatch what is
 * ready; the caller loops (runloop.c, until the VM stops). A handler may
 * call it (nested rounds). 0, or -errno if epoll fails. */
int evloop_once(struct evloop *l, int timeout_ms) CV_MUST;

/* A periodic or one-shot timer (timerfd) calling fn; returns the fd or
 * -errno. first_ns 0: created disarmed. The handler reads the fd. */
int evloop_add_timer(struct evloop *l, uint64_t first_ns, uint64_t period_ns, evloop_fn fn,
		     void *opaque) CV_MUST;

/* (Re)arm such a timer: first after first_ns (0 disarms), then every
 * period_ns (0: once). 0 or -errno. */
int evloop_timer_arm(int fd, uint64_t first_ns, uint64_t period_ns) CV_MUST;

#endif
