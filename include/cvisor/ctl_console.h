/* ctl_console.h - a detached guest's console output: a ring buffer filled
 * by the vCPU threads (vm->console_write) and drained on the main thread
 * into the log file and to the attached `cvisor console` readers. */
#ifndef CVISOR_CTL_CONSOLE_H
#define CVISOR_CTL_CONSOLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/util.h"

/* The output a newly attached reader is shown first. */
#define CTL_CONSOLE_RING (64 * 1024)

struct ctl_console {
	pthread_mutex_t lock;
	uint8_t ring[CTL_CONSOLE_RING];
	uint64_t head; /* bytes ever written; ring[head % size] is the next */
	int wake_fd;   /* eventfd: readable when output arrived since the last ack */
	atomic_bool wake_pending;
	int log_fd;	    /* -1: no log */
	uint64_t log_pos;   /* stream position written to the log so far */
	uint64_t log_bytes; /* written to the log file; capped at CTL_CONSOLE_LOG_MAX */
};

/* A guest printing in a loop must not fill the host's disk: past this the
 * log keeps a note and drops output (the ring buffer still has the tail). */
#define CTL_CONSOLE_LOG_MAX (64ULL << 20)

/* Set up an empty ring; log_fd (may be -1) is owned from now on. */
int ctl_console_init(struct ctl_console *c, int log_fd) CV_MUST;
void ctl_console_destroy(struct ctl_console *c);

/* The vm->console_write hook. Runs on vCPU threads with the UART lock
 * held: copies into the ring and wakes the main thread at most once per
 * batch, never blocks on I/O. */
void ctl_console_write(void *ctx, const uint8_t *buf, size_t len);

/* Copy up to len bytes of the stream from *pos into buf and advance *pos.
 * A position the ring has already overwritten first skips to the oldest
 * byte held; the count skipped is added to *lost (may be NULL). */
size_t ctl_console_read(struct ctl_console *c, uint64_t *pos, uint8_t *buf, size_t len,
			uint64_t *lost);

/* The oldest stream position still held (where a new reader starts). */
uint64_t ctl_console_tail(struct ctl_console *c);

/* The last byte written, or -1 before any output. */
int ctl_console_last(struct ctl_console *c);

/* Main thread: clear the wake event before draining, so that output
 * written during the drain wakes the loop again. */
void ctl_console_ack(struct ctl_console *c);

/* Main thread: append what the log has not seen yet. */
void ctl_console_flush_log(struct ctl_console *c);

#endif
