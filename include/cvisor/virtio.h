/* virtio.h - the transport-independent virtio device (virtio 1.2 section 2
 * and 3): status, feature negotiation, queues, interrupts, reset, and the
 * ops table every device implements (kvmtool's virtio_ops with the
 * activate/reset/save/load lifecycle of Firecracker and Cloud Hypervisor).
 *
 * Threads: transports call in from vCPU threads (register accesses) under
 * dev->lock; queue notifications and device backends run on the main
 * thread's event loop. A device never trusts what the guest wrote: queues
 * are validated before activate(), and a malformed request fails that
 * request or puts the device in DEVICE_NEEDS_RESET (virtio_dev_fault). */
#ifndef CVISOR_VIRTIO_H
#define CVISOR_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvisor/error.h"
#include "cvisor/guest_mem.h"
#include "cvisor/state.h"
#include "cvisor/util.h"
#include "cvisor/virtq.h"

/* Device types (virtio 1.2 section 5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* ISR bits (4.1.4.5, 4.2.2). */
#define VIRTIO_ISR_QUEUE 1
#define VIRTIO_ISR_CONFIG 2

#define VIRTIO_MAX_QUEUES 16
#define VIRTIO_NO_VECTOR 0xffff

struct virtio_dev;
struct evloop;
struct rate_status;

struct virtio_dev_ops {
	const char *name;
	uint32_t device_id;
	unsigned int num_queues;
	uint16_t queue_max; /* largest size offered for each queue */
	size_t config_len;  /* bytes of device-specific configuration */
	/* Features the device offers, VIRTIO_F_VERSION_1 and the ring features
	 * are added by the core. */
	uint64_t (*features)(struct virtio_dev *d);
	/* Device config space, read and write: the core clamps off + len to
	 * config_len before the call (virtio_dev_config_read/_write), so a
	 * device copies without checking again. */
	void (*config_read)(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len);
	void (*config_write)(struct virtio_dev *d, uint32_t off, const uint8_t *data, uint32_t len);
	/* DRIVER_OK: the negotiated features are in d->driver_features and
	 * every ready queue passed virtq_validate. Non-zero -> NEEDS_RESET. */
	int (*activate)(struct virtio_dev *d);
	/* The guest kicked queue q (main thread, d->lock held: a reset from a
	 * vCPU cannot race the queue walk). Work that completes later (I/O
	 * backends) takes d->lock around virtq_push and virtio_dev_used. */
	void (*notify)(struct virtio_dev *d, unsigned int q);
	/* Back to the state before activate (called with dev->lock held). */
	void (*reset)(struct virtio_dev *d);
	/* Device-specific state beyond the common part (may be NULL). */
	int (*save)(struct virtio_dev *d, struct state_buf *out);
	int (*load)(struct virtio_dev *d, struct state_rd *in);
	/* Before a save (main thread, vCPUs paused): finish the I/O in flight
	 * and take no new requests, so that save finds nothing in flight;
	 * resume undoes it. NULL: the device never has I/O in flight. */
	int (*quiesce)(struct virtio_dev *d);
	void (*resume)(struct virtio_dev *d);
	/* Free what create made (main thread, transport detached); NULL:
	 * nothing to free. */
	void (*destroy)(struct virtio_dev *d);
	/* Rate limits (ratelimit.h); NULL: the device has none. set_limits
	 * (`cvisor set`, main thread): apply `changes` ("KEY=VALUE,...", rate
	 * options only) at once, all or nothing, and give the device's spec
	 * (now `spec`) with them as *new_spec (malloc'd); -EINVAL with e
	 * filled naming `what`, or -ENOMEM. rate_status: each direction's
	 * limits and throttle count into out[0..max); returns how many. */
	int (*set_limits)(struct virtio_dev *d, const char *what, const char *spec,
			  const char *changes, char **new_spec, struct cv_error *e);
	unsigned int (*rate_status)(struct virtio_dev *d, struct rate_status *out,
				    unsigned int max);
};

/* Counters the devices add to, for `cvisor top` (struct vm owns them). */
struct virtio_io_stats {
	_Atomic uint64_t blk_read_bytes, blk_write_bytes;
	_Atomic uint64_t net_rx_bytes, net_tx_bytes;
};

/* What a device's create gets from the VM that owns it: device models
 * never see struct vm. */
struct virtio_env {
	const struct guest_mem *mem;
	struct evloop *loop; /* the main thread's */
	struct virtio_io_stats *stats;
	/* The descriptor the device's spec came with (devices.h, struct
	 * device_spec), or -1: the spec's holder keeps it, a device dups
	 * what it keeps. */
	int fd;
};

/* What a transport (virtio-pci, virtio-mmio) provides to the core. */
struct virtio_transport {
	/* Deliver an interrupt for a queue (vector = the queue's msix_vector)
	 * or for a config change (vector = dev->msix_config). Any thread; may
	 * be called with d->lock held, so it must not take it. */
	void (*signal)(struct virtio_dev *d, uint16_t vector, uint8_t isr_bit);
	void *ctx;
	/* Queue q for another ops->notify on a later event-loop round, as if
	 * the guest had kicked it (a device that stopped at its work budget). */
	void (*kick)(struct virtio_dev *d, unsigned int q);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *priv; /* the device model's own state */
	const struct guest_mem *mem;
	struct virtio_transport transport;
	pthread_mutex_t lock;

	uint64_t device_features;
	uint64_t driver_features;
	uint8_t status;
	_Atomic uint8_t isr;
	uint8_t config_generation;
	uint16_t msix_config;
	bool active;	      /* activate() succeeded and no reset since */
	_Atomic bool dma_off; /* the transport forbids DMA (PCI bus master off) */
	bool fault_logged;
	struct virtq vqs[VIRTIO_MAX_QUEUES];
	char label[32]; /* e.g. "virtio-blk 0" for log lines */
};

/* Initialize a device; mem is the guest RAM its queues live in. */
void virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, void *priv,
		     const struct guest_mem *mem, const char *label);

/* Driver wrote the status register (3.1.1): 0 resets; FEATURES_OK is kept
 * only if the driver's features are a subset of the device's and include
 * VERSION_1; DRIVER_OK validates the queues and activates the device.
 * Called by transports with d->lock held. */
void virtio_dev_set_status(struct virtio_dev *d, uint8_t status);

/* Driver wrote feature bits [32*sel, 32*sel+32) (only before FEATURES_OK). */
void virtio_dev_set_driver_features(struct virtio_dev *d, uint32_t sel, uint32_t value);
uint32_t virtio_dev_get_device_features(const struct virtio_dev *d, uint32_t sel);

/* The guest kicked queue q (main thread): forwards to ops->notify if the
 * device is active and q is a ready queue. */
void virtio_dev_notify(struct virtio_dev *d, unsigned int q);

/* Work on q stopped at the device's budget: come back to it after the event
 * loop has served everything else (signals, the console, the control socket). */
void virtio_dev_rekick(struct virtio_dev *d, unsigned int q);

/* After pushing used buffers to q: interrupt the guest if it wants one. */
void virtio_dev_used(struct virtio_dev *d, unsigned int q);

/* The device configuration changed: bump the generation, interrupt. */
void virtio_dev_config_changed(struct virtio_dev *d);

/* The guest broke the protocol in a way the device cannot recover from:
 * log once (naming the device and why), set DEVICE_NEEDS_RESET and raise a
 * config interrupt (2.1.2). The device stops processing until reset. */
void virtio_dev_fault(struct virtio_dev *d, const char *why);

/* Config space access with clamping: reads outside config_len return
 * zeros, writes outside are dropped. */
void virtio_dev_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len);
void virtio_dev_config_write(struct virtio_dev *d, uint32_t off, const uint8_t *data, uint32_t len);

/* Save / load the common state (features, status, queues) and then the
 * device's own via ops->save/load. load validates everything. */
int virtio_dev_save(struct virtio_dev *d, struct state_buf *out) CV_MUST;
int virtio_dev_load(struct virtio_dev *d, struct state_rd *in) CV_MUST;

#endif
