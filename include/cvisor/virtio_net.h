/* virtio_net.h - the virtio network device (virtio 1.2 section 5.1) and its
 * `--net` flag.
 *
 * Queue 0 receives, queue 1 transmits (5.1.2); no control queue. Every
 * frame carries a 12-byte virtio_net_hdr (5.1.6, VERSION_1). Receive
 * buffers may be merged (MRG_RXBUF); checksum and TSO offloads are offered
 * only over a tap that takes vnet headers. vhost-net is future work (the
 * development host has no /dev/vhost-net): the frames go through the
 * device model on the main thread. */
#ifndef CVISOR_VIRTIO_NET_H
#define CVISOR_VIRTIO_NET_H

#include <net/if.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/evloop.h"
#include "cvisor/guest_mem.h"
#include "cvisor/net_backend.h"
#include "cvisor/ratelimit.h"
#include "cvisor/util.h"
#include "cvisor/virtio.h"

/* Feature bits (5.1.3). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

/* Config space status (5.1.4). */
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_S_ANNOUNCE 2

/* virtio_net_hdr (5.1.6), all fields little-endian:
 *   u8 flags, u8 gso_type, le16 hdr_len, le16 gso_size,
 *   le16 csum_start, le16 csum_offset, le16 num_buffers */
#define VIRTIO_NET_HDR_LEN 12
#define VIRTIO_NET_HDR_NUM_BUFFERS 10 /* offset of num_buffers */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_CONFIG_LEN 8 /* mac[6], le16 status */

/* Largest Ethernet frame either way: a 64 KiB TSO packet plus the Ethernet
 * header and a VLAN tag. Bigger transmit chains are malformed. */
#define VIRTIO_NET_FRAME_MAX (65536 + 14 + 4)
#define VIRTIO_NET_FRAME_MIN 14 /* an Ethernet header */

#define VIRTIO_NET_MAX_HOSTFWD 16

enum virtio_net_backend {
	VIRTIO_NET_USER,   /* libslirp */
	VIRTIO_NET_TAP,	   /* a tap by name */
	VIRTIO_NET_TAP_FD, /* a tap passed as a descriptor (the API's vm.add-net) */
};

/* What `--net` says, parsed by virtio_net_parse. */
struct virtio_net_config {
	enum virtio_net_backend backend;
	char tap[IFNAMSIZ];
	uint8_t mac[6];
	unsigned int nr_hostfwd;
	struct net_hostfwd hostfwd[VIRTIO_NET_MAX_HOSTFWD];
	/* Rate limits toward the guest ([VIRTIO_NET_RXQ]: rx-bw=, rx-pps=,
	 * ...) and from it ([VIRTIO_NET_TXQ]: tx-bw=, ...). */
	struct rate_limits rate[2];
};

/* How a network's rate limits are spelled: rx-bw=, rx-bw-burst=, rx-pps=,
 * rx-pps-burst= and the same with tx-, indexed like the queues. */
extern const struct rate_keys virtio_net_rate_keys[2];

struct virtio_net_stats {
	uint64_t rx_packets, rx_dropped; /* toward the guest */
	uint64_t tx_packets, tx_dropped; /* from the guest (dropped: malformed
					    or refused by the backend) */
	uint64_t rx_bytes, tx_bytes;	 /* the frames moved, without the header */
};

/* The MAC a device gets when `mac=` is not given: locally administered,
 * unicast, 52:54:00:12:34:56 plus index (the index-th --net flag). */
void virtio_net_default_mac(unsigned int index, uint8_t mac[6]);

/* Parse a --net value (pure: no host access):
 *   user[,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...[,mac=M]
 *   tap=NAME[,mac=M]
 *   tapfd[,mac=M]  (a tap whose descriptor comes with the spec: only the
 *                   API's vm.add-net gives one, devices.h)
 * either followed by rate limits (ratelimit.h) per direction: [,rx-bw=RATE]
 * [,rx-bw-burst=SIZE][,rx-pps=N][,rx-pps-burst=N] and the same with tx-.
 * A HOSTPORT without the leading colon is accepted (tcp:2222-:22). index
 * picks the default MAC. On error returns -EINVAL with e filled. */
int virtio_net_parse(const char *spec, unsigned int index, struct virtio_net_config *c,
		     struct cv_error *e) CV_MUST;

/* Open the backend c asks for and set up d as a virtio-net device over it
 * (virtio_dev_init included; the caller then attaches a transport). Frames
 * are counted into *rx_bytes / *tx_bytes (may be NULL). loop is the main
 * thread's event loop. On error returns -errno with e filled, and nothing
 * is left to free. */
int virtio_net_create(struct virtio_dev *d, const struct virtio_net_config *c,
		      const struct guest_mem *mem, struct evloop *loop, _Atomic uint64_t *rx_bytes,
		      _Atomic uint64_t *tx_bytes, struct cv_error *e) CV_MUST;

/* The device table's create (devices.h): --net SPEC, the index-th; a
 * tapfd spec runs on a dup of env->fd. */
int virtio_net_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
			     const struct virtio_env *env, struct cv_error *e) CV_MUST;

/* The same over a backend the caller opened (tests, fuzzers, the bench);
 * the device owns it from here on, also when this fails. */
int virtio_net_create_backend(struct virtio_dev *d, const struct virtio_net_config *c,
			      const struct guest_mem *mem, struct evloop *loop,
			      struct net_backend *be, _Atomic uint64_t *rx_bytes,
			      _Atomic uint64_t *tx_bytes) CV_MUST;

/* Close the backend and free the device (main thread, transport detached). */
void virtio_net_destroy(struct virtio_dev *d);

void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *s);

extern const struct virtio_dev_ops virtio_net_ops;

#endif
