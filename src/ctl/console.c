/* console.c - the detached console's ring buffer and log file. */
#include "cvisor/ctl_console.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int ctl_console_init(struct ctl_console *c, int log_fd)
{
	memset(c, 0, sizeof(*c));
	c->log_fd = log_fd;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0)
		return -errno;
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

void ctl_console_destroy(struct ctl_console *c)
{
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->log_fd >= 0)
		close(c->log_fd);
	c->wake_fd = c->log_fd = -1;
	pthread_mutex_destroy(&c->lock);
}

void ctl_console_write(void *ctx, const uint8_t *buf, size_t len)
{
	struct ctl_console *c = ctx;
	uint64_t one = 1;

	/* Only the newest CTL_CONSOLE_RING bytes can be kept anyway. */
	if (len > CTL_CONSOLE_RING) {
		pthread_mutex_lock(&c->lock);
		c->head += len - CTL_CONSOLE_RING;
		pthread_mutex_unlock(&c->lock);
		buf += len - CTL_CONSOLE_RING;
		len = CTL_CONSOLE_RING;
	}
	pthread_mutex_lock(&c->lock);
	while (len) {
		size_t at = (size_t)(c->head % CTL_CONSOLE_RING);
		size_t n = CTL_CONSOLE_RING - at < len ? CTL_CONSOLE_RING - at : len;

		memcpy(c->ring + at, buf, n);
		c->head += n;
		buf += n;
		len -= n;
	}
	pthread_mutex_unlock(&c->lock);
	/* The 8250 hands over a byte at a time: one eventfd write per batch
	 * the main thread has not picked up yet, not one per byte. */
	if (!atomic_exchange(&c->wake_pending, true) && write(c->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, the loop will wake. */
	}
}

size_t ctl_console_read(struct ctl_console *c, uint64_t *pos, uint8_t *buf, size_t len,
			uint64_t *lost)
{
	size_t done = 0;

	pthread_mutex_lock(&c->lock);
	if (c->head > CTL_CONSOLE_RING && *pos < c->head - CTL_CONSOLE_RING) {
		if (lost)
			*lost += c->head - CTL_CONSOLE_RING - *pos;
		*pos = c->head - CTL_CONSOLE_RING;
	}
	if (*pos > c->head)
		*pos = c->head;
	while (done < len && *pos < c->head) {
		size_t at = (size_t)(*pos % CTL_CONSOLE_RING);
		size_t n = CTL_CONSOLE_RING - at;

		if (n > len - done)
			n = len - done;
		if (n > c->head - *pos)
			n = (size_t)(c->head - *pos);
		memcpy(buf + done, c->ring + at, n);
		done += n;
		*pos += n;
	}
	pthread_mutex_unlock(&c->lock);
	return done;
}

uint64_t ctl_console_tail(struct ctl_console *c)
{
	uint64_t t;

	pthread_mutex_lock(&c->lock);
	t = c->head > CTL_CONSOLE_RING ? c->head - CTL_CONSOLE_RING : 0;
	pthread_mutex_unlock(&c->lock);
	return t;
}

int ctl_console_last(struct ctl_console *c)
{
	int b = -1;

	pthread_mutex_lock(&c->lock);
	if (c->head)
		b = c->ring[(c->head - 1) % CTL_CONSOLE_RING];
	pthread_mutex_unlock(&c->lock);
	return b;
}

void ctl_console_ack(struct ctl_console *c)
{
	uint64_t n;

	/* Read first, then clear: a writer that finds the flag still set
	 * wrote its bytes before the clear, so the drain that follows sees
	 * them; one that finds it clear signals the eventfd anew. */
	if (read(c->wake_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing was pending. */
	}
	atomic_store(&c->wake_pending, false);
}

void ctl_console_flush_log(struct ctl_console *c)
{
	uint8_t buf[4096];
	uint64_t lost = 0;
	size_t n;

	if (c->log_fd < 0)
		return;
	while ((n = ctl_console_read(c, &c->log_pos, buf, sizeof(buf), &lost)) > 0) {
		if (c->log_bytes >= CTL_CONSOLE_LOG_MAX)
			continue; /* the note below was written once */
		if (c->log_bytes + n >= CTL_CONSOLE_LOG_MAX) {
			static const char note[] = "\n[cvisor: console log limit reached; "
						   "further output only in the ring buffer]\n";

			/* Errors ignored here and below: a full disk must not
			 * stop the guest. */
			(void)!cv_write_all(c->log_fd, note, sizeof(note) - 1);
			c->log_bytes = CTL_CONSOLE_LOG_MAX;
			continue;
		}
		c->log_bytes += n;
		if (lost) {
			char msg[96];
			int m = snprintf(msg, sizeof(msg),
					 "\n[cvisor: %llu bytes of console output lost]\n",
					 (unsigned long long)lost);

			(void)!cv_write_all(c->log_fd, msg, (size_t)m);
			lost = 0;
		}
		(void)!cv_write_all(c->log_fd, buf, n);
	}
}
