/* console.c - virtio-console (virtio 1.2 section 5.3) with one port, on a
 * pty (see include/cvisor/virtio_console.h).
 *
 * Threads: queue kicks and pty input run on the main thread with d->lock
 * held; activate and reset come from vCPU threads and touch no event loop
 * state (activate re-kicks the queues through the transport). A request is
 * never held across event-loop rounds: an rx buffer popped when no input
 * is there is given back (virtq_unpop), so a save finds nothing in flight
 * and the device needs no quiesce. */
#include "cvisor/virtio_console.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/pty.h"

#define CON_QUEUE_MAX 256
#define RXQ 0 /* receiveq0 (5.3.2) */
#define TXQ 1 /* transmitq0 */
/* 5.3.4: cols, rows (F_SIZE), max_nr_ports (F_MULTIPORT), emerg_wr
 * (F_EMERG_WRITE). None is offered: the guest reads zeros. */
#define CON_CONFIG_LEN 12
#define CON_STATE_VERSION 1
#define CON_CHUNK 4096 /* bytes moved per copy */

struct vcon {
	struct virtio_dev *d;
	struct pty pty;
	struct virtq_elem elem; /* the request being served (too big for the stack) */
	uint8_t buf[CON_CHUNK];
};

static bool con_running(const struct vcon *c)
{
	return c->d->active && !(c->d->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* Fill the guest's receive buffers with what the pty has (d->lock held).
 * With no buffer left, input waits in the pty until the driver kicks
 * receiveq0 again. */
static void con_rx(struct vcon *c)
{
	struct virtq *q = &c->d->vqs[RXQ];
	unsigned int budget = q->size; /* then the loop calls again: input is level-triggered */
	bool pushed = false;

	if (!con_running(c) || !q->ready) {
		pty_input_pause(&c->pty, 0); /* until the driver is back and kicks */
		return;
	}
	while (budget--) {
		int r = virtq_pop(q, &c->elem);
		ssize_t n;

		if (r < 0) {
			virtio_dev_fault(c->d, "malformed buffer on receiveq0");
			pty_input_pause(&c->pty, 0);
			break;
		}
		if (r == 0) {
			if (virtq_enable_notify(q, true))
				continue;
			pty_input_pause(&c->pty, 0);
			break;
		}
		if (!c->elem.in_len) {
			/* 5.3.6.1: receive buffers are device-writable; a chain
			 * with none is returned empty. */
			virtq_push(q, &c->elem, 0);
			pushed = true;
			continue;
		}
		n = pty_read(&c->pty, c->buf,
			     c->elem.in_len < sizeof(c->buf) ? (size_t)c->elem.in_len
							     : sizeof(c->buf));
		if (n <= 0) {
			virtq_unpop(q);
			if (n < 0) {
				cv_warn("%s: pty %s: %s; console input stopped", c->d->label,
					pty_path(&c->pty), strerror((int)-n));
				pty_input_pause(&c->pty, 0);
			}
			break;
		}
		(void)virtq_elem_write(&c->elem, 0, c->buf, (size_t)n);
		virtq_push(q, &c->elem, (uint32_t)n);
		pushed = true;
	}
	if (pushed)
		virtio_dev_used(c->d, RXQ);
}

/* One transmit request: its device-readable bytes to the pty. False when
 * the chain is larger than any driver sends. */
static bool con_tx_one(struct vcon *c)
{
	const struct virtq_elem *e = &c->elem;

	if (e->out_len > VIRTIO_CONSOLE_TX_MAX)
		return false;
	for (uint64_t off = 0; off < e->out_len;) {
		size_t n = virtq_elem_read(e, off, c->buf, sizeof(c->buf));

		if (!n)
			break;
		pty_write(&c->pty, c->buf, n);
		off += n;
	}
	return true;
}

static void con_tx(struct vcon *c)
{
	struct virtq *q = &c->d->vqs[TXQ];
	unsigned int budget = q->size; /* then yield to the event loop */
	bool pushed = false;
	int r = 0;

	do {
		while (budget && (r = virtq_pop(q, &c->elem)) == 1) {
			budget--;
			if (!con_tx_one(c)) {
				virtio_dev_fault(c->d, "transmit chain larger than 64 KiB");
				r = 0;
				budget = 0;
				break;
			}
			virtq_push(q, &c->elem, 0);
			pushed = true;
		}
		if (r < 0) {
			virtio_dev_fault(c->d, "malformed buffer on transmitq0");
			break;
		}
		if (!budget) {
			if (con_running(c))
				virtio_dev_rekick(c->d, TXQ);
			break;
		}
	} while (virtq_enable_notify(q, true));
	if (pushed)
		virtio_dev_used(c->d, TXQ);
}

static void con_notify(struct virtio_dev *d, unsigned int q)
{
	struct vcon *c = d->priv;

	if (q == TXQ) {
		con_tx(c);
		return;
	}
	/* New receive buffers: take input again. */
	pty_input_resume(&c->pty);
	con_rx(c);
}

/* The pty has input (main thread). */
static void con_readable(void *ctx)
{
	struct vcon *c = ctx;

	pthread_mutex_lock(&c->d->lock);
	con_rx(c);
	pthread_mutex_unlock(&c->d->lock);
}

/* vCPU thread: look at both queues once the device runs (a driver may have
 * filled receiveq0 and kicked before DRIVER_OK). */
static int con_activate(struct virtio_dev *d)
{
	virtio_dev_rekick(d, RXQ);
	virtio_dev_rekick(d, TXQ);
	return 0;
}

static int con_save(struct virtio_dev *d, struct state_buf *out)
{
	(void)d;
	state_put_u32(out, CON_STATE_VERSION);
	return out->err;
}

/* Nothing but the version: the queues are the core's, and the pty is this
 * host's (a new one, made by create). */
static int con_load(struct virtio_dev *d, struct state_rd *in)
{
	(void)d;
	return state_get_u32(in) == CON_STATE_VERSION && !in->err ? 0 : -EINVAL;
}

static void con_destroy(struct virtio_dev *d)
{
	struct vcon *c = d->priv;

	if (!c)
		return;
	pty_close(&c->pty);
	free(c);
	d->priv = NULL;
}

static const struct virtio_dev_ops con_ops = {
	.name = "virtio-console",
	.device_id = VIRTIO_ID_CONSOLE,
	.num_queues = 2, /* no F_MULTIPORT: receiveq0, transmitq0 only */
	.queue_max = CON_QUEUE_MAX,
	.config_len = CON_CONFIG_LEN,
	.activate = con_activate,
	.notify = con_notify,
	.save = con_save,
	.load = con_load,
	.destroy = con_destroy,
};

int virtio_console_check(const char *what, const char *spec, struct cv_error *e)
{
	if (strcmp(spec, "pty"))
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s %.80s: must be pty", what, spec);
	return 0;
}

int virtio_console_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
				 const struct virtio_env *env, struct cv_error *e)
{
	struct vcon *c;
	int r;

	(void)index;
	if ((r = virtio_console_check("--console", spec, e)))
		return r;
	if (!(c = calloc(1, sizeof(*c))))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "virtio-console: out of memory");
	c->d = d;
	virtio_dev_init(d, &con_ops, c, env->mem, "virtio-console");
	if ((r = pty_open(&c->pty, env->loop, "virtio-console", con_readable, c, e))) {
		pthread_mutex_destroy(&d->lock);
		free(c);
		d->priv = NULL;
		return r;
	}
	return 0;
}

const char *virtio_console_pty_path(const struct virtio_dev *d)
{
	const struct vcon *c = d->priv;

	return c ? pty_path(&c->pty) : NULL;
}
