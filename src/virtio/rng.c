/* rng.c - virtio-rng (virtio 1.2 section 5.4): every device-writable buffer
 * the driver queues is filled with bytes from getrandom(2). */
#include "cvisor/virtio_rng.h"

#include <errno.h>
#include <sys/random.h>

#define RNG_QUEUE_MAX 256
#define RNG_STATE_VERSION 1

/* Fill up to `want` bytes of the chain's writable buffers; returns how many
 * were written. getrandom never blocks once the pool is initialized, and
 * may return short (signals, > 32 MiB): we loop, and stop on an error. */
static uint32_t rng_fill(const struct virtq_elem *e, uint32_t want)
{
	uint32_t done = 0;

	for (unsigned int i = e->out_num; i < e->out_num + e->in_num && done < want; i++) {
		uint8_t *p = e->iov[i].iov_base;
		size_t len = e->iov[i].iov_len, off = 0;

		if (len > want - done)
			len = want - done;
		while (off < len) {
			ssize_t n = getrandom(p + off, len - off, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return done + (uint32_t)off;
			off += (size_t)n;
		}
		done += (uint32_t)len;
	}
	return done;
}

static void rng_notify(struct virtio_dev *d, unsigned int qi)
{
	struct virtq *q = &d->vqs[qi];
	struct virtq_elem e;
	unsigned int budget = q->size; /* then yield to the event loop */
	bool pushed = false;
	int r = 0;

	/* Drain, then re-enable notifications and look again (EVENT_IDX). */
	do {
		while (budget && (r = virtq_pop(q, &e)) == 1) {
			budget--;
			/* 5.4.6.2: the driver queues device-writable buffers only;
			 * readable ones are not touched. */
			virtq_push(q, &e, rng_fill(&e, VIRTIO_RNG_MAX_REQ));
			pushed = true;
		}
		if (r < 0) {
			virtio_dev_fault(d, "malformed request on the request queue");
			break;
		}
		if (!budget) {
			/* A guest that keeps refilling the queue gets served
			 * again after everything else the main thread does. */
			virtio_dev_rekick(d, qi);
			break;
		}
	} while (virtq_enable_notify(q, true));
	if (pushed)
		virtio_dev_used(d, qi);
}

/* No device-specific state; the version field keeps the format extensible. */
static int rng_save(struct virtio_dev *d, struct state_buf *out)
{
	(void)d;
	state_put_u32(out, RNG_STATE_VERSION);
	return out->err;
}

static int rng_load(struct virtio_dev *d, struct state_rd *in)
{
	(void)d;
	return state_get_u32(in) == RNG_STATE_VERSION && !in->err ? 0 : -EINVAL;
}

static const struct virtio_dev_ops rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.num_queues = 1,
	.queue_max = RNG_QUEUE_MAX,
	.config_len = 0, /* 5.4.4: no configuration */
	.notify = rng_notify,
	.save = rng_save,
	.load = rng_load,
};

int virtio_rng_create(struct virtio_dev *d, const struct guest_mem *mem)
{
	virtio_dev_init(d, &rng_ops, NULL, mem, "virtio-rng");
	return 0;
}

int virtio_rng_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
			     const struct virtio_env *env, struct cv_error *e)
{
	(void)spec;
	(void)index;
	(void)e;
	return virtio_rng_create(d, env->mem);
}
