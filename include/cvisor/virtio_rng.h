/* virtio_rng.h - the entropy device (virtio 1.2 section 5.4): one request
 * queue whose device-writable buffers are filled from getrandom(2). No rate
 * limit; each request is bounded (VIRTIO_RNG_MAX_REQ bytes), so one kick
 * never makes the main thread produce more than queue_max * 64 KiB. */
#ifndef CVISOR_VIRTIO_RNG_H
#define CVISOR_VIRTIO_RNG_H

#include "cvisor/guest_mem.h"
#include "cvisor/util.h"
#include "cvisor/virtio.h"

#define VIRTIO_RNG_MAX_REQ (64u << 10) /* bytes written into one request */

/* Initialize d as a virtio-rng device over guest RAM mem (label
 * "virtio-rng"). The caller then sets d->transport. The device keeps no
 * allocation, so there is nothing to destroy. Returns 0. */
int virtio_rng_create(struct virtio_dev *d, const struct guest_mem *mem) CV_MUST;

/* The device table's create (devices.h): --rng. Returns 0. */
int virtio_rng_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
			     const struct virtio_env *env, struct cv_error *e) CV_MUST;

#endif
