/* pty.h - a pseudo-terminal the VMM holds for a guest console (the
 * virtio-console's, or the 8250's with --serial pty): the master is served
 * on the main thread's event loop, the slave's path (/dev/pts/N) is what
 * a user or libvirt opens (`screen /dev/pts/N`, `virsh console`).
 *
 * The slave is in raw mode (cfmakeraw: no echo, no line editing, no
 * translation), so the guest's bytes pass unchanged both ways. The VMM
 * keeps a slave fd open itself: the master then never sees a hangup when
 * a user's terminal closes, and a user may come and go.
 *
 * Output never blocks its writer: what the master does not take at once
 * waits in a ring of PTY_OUT_BUF bytes, written out when the master has
 * room; when nobody reads the slave, the ring fills and the oldest bytes
 * are dropped (the kernel's own pty buffer keeps the first few KiB, the
 * ring the latest 64 KiB). Input is read by the consumer when the master
 * is readable, and paused while the consumer has no room. */
#ifndef CVISOR_PTY_H
#define CVISOR_PTY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cvisor/error.h"
#include "cvisor/evloop.h"
#include "cvisor/util.h"

#define PTY_OUT_BUF (64 * 1024)
#define PTY_PATH_MAX 64

struct pty {
	int master; /* O_NONBLOCK; served on loop */
	int slave;  /* held open (see above) */
	char path[PTY_PATH_MAX];
	struct evloop *loop;
	const char *label; /* "virtio-console", "serial": log lines */
	/* The consumer: called on the main thread when input is there. */
	void (*readable)(void *ctx);
	void *ctx;

	pthread_mutex_t lock; /* the output ring, from any thread */
	uint8_t out[PTY_OUT_BUF];
	size_t out_head, out_len;
	uint64_t dropped; /* output bytes dropped, ring full */
	int wake_fd;	  /* eventfd: output waits, watch for room */

	/* Main thread only. */
	bool out_watched; /* EPOLLOUT on the master */
	bool in_paused;	  /* EPOLLIN off: the consumer has no room */
	int retry_fd;	  /* timer calling readable again while paused, or -1 */
};

/* Open a new pty (posix_openpt, grantpt, unlockpt, ptsname), the slave
 * in raw mode, and serve the master on loop: readable(ctx) is called on
 * the main thread when input is there. label names it in log lines.
 * 0, or -errno with e filled; nothing is left open on failure. */
int pty_open(struct pty *p, struct evloop *loop, const char *label, void (*readable)(void *ctx),
	     void *ctx, struct cv_error *e) CV_MUST;

/* Stop serving and close both ends (main thread). Does nothing on a pty
 * already closed or whose pty_open failed (master is -1 then). */
void pty_close(struct pty *p);

/* The slave's path, e.g. "/dev/pts/3". */
const char *pty_path(const struct pty *p);

/* Queue len bytes of guest output. Any thread, any lock held: never
 * blocks, never calls the event loop (a wake-up eventfd does). */
void pty_write(struct pty *p, const uint8_t *buf, size_t len);

/* Read up to len bytes of input (main thread): the count, 0 when there is
 * none now, or -errno. */
ssize_t pty_read(struct pty *p, uint8_t *buf, size_t len) CV_MUST;

/* The consumer has no room (main thread): stop watching input. With
 * retry_ns, readable() is called again after that long (for a consumer
 * that cannot say when room appears, like the 8250); with 0 it waits for
 * pty_input_resume. */
void pty_input_pause(struct pty *p, uint64_t retry_ns);

/* Room again (main thread): watch input again. */
void pty_input_resume(struct pty *p);

#endif
