/* virtio_vsock.h - virtio-vsock (virtio 1.2 section 5.10) implemented in
 * user space, Firecracker style: the host side of every guest socket is a
 * unix socket, so no /dev/vhost-vsock is needed (vhost-vsock acceleration
 * where the host has it is future work).
 *
 * `--vsock CID[,uds=PATH]`: the guest's CID is 3..4294967294; PATH (default
 * /run/cvisor/vsock-CID.sock, its directory created 0700 if missing) is a
 * unix socket cvisor listens on.
 *
 * Host -> guest: connect to PATH and send "CONNECT <port>\n" (within 2 s);
 * cvisor sends the guest an OP_REQUEST to <port> from a host port it picks
 * (>= 2^30), and once the guest answers OP_RESPONSE it writes
 * "OK <hostport>\n" on the unix socket, after which the socket carries the
 * stream both ways. A refused or unanswered request closes the socket.
 *
 * Guest -> host: a guest connect to CID 2 port P connects to the unix
 * socket "PATH_P" (e.g. /run/cvisor/vsock-3.sock_1234) that a host service
 * listens on; no listener there means an OP_RST to the guest.
 *
 * Only stream sockets. Flow control is credit-based (5.10.6.3): cvisor
 * never sends more than the guest's credit and buffers at most
 * VIRTIO_VSOCK_BUF_ALLOC bytes per connection towards the host; a guest
 * that overruns the credit it was given gets its connection reset. At most
 * VIRTIO_VSOCK_CONN_MAX connections (also bounded by the event loop's
 * EVLOOP_MAX_HANDLERS); more are refused with OP_RST or a closed socket.
 *
 * Snapshots: connections are not migrated. Loading a saved device drops
 * every connection, and once the device runs again it sends the guest
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (5.10.6.7), after which the guest
 * re-reads its CID (the destination's --vsock CID wins) and resets its
 * sockets. */
#ifndef CVISOR_VIRTIO_VSOCK_H
#define CVISOR_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "cvisor/evloop.h"
#include "cvisor/guest_mem.h"
#include "cvisor/util.h"
#include "cvisor/virtio.h"

#define VIRTIO_VSOCK_HOST_CID 2
#define VIRTIO_VSOCK_CID_MIN 3
#define VIRTIO_VSOCK_CID_MAX 0xfffffffeULL
/* Longest unix socket path: sun_path (108) less "_4294967295" and the NUL. */
#define VIRTIO_VSOCK_PATH_MAX 96
#define VIRTIO_VSOCK_DEFAULT_DIR "/run/cvisor"
#define VIRTIO_VSOCK_CONN_MAX 128
#define VIRTIO_VSOCK_BUF_ALLOC (64u << 10) /* per-connection buffer (buf_alloc) */

struct virtio_vsock_config {
	uint64_t guest_cid;
	char uds_path[VIRTIO_VSOCK_PATH_MAX + 1];
	bool uds_default; /* uds_path is the default: create its directory */
};

/* Parse `CID[,uds=PATH]` into c. Returns 0, or -EINVAL with e filled
 * (naming the bad part and what is allowed). */
int virtio_vsock_parse(const char *spec, struct virtio_vsock_config *c, struct cv_error *e) CV_MUST;

/* Initialize d as virtio-vsock (label "virtio-vsock") for guest CID
 * c->guest_cid, listening on c->uds_path (a stale socket file there is
 * replaced; one that a live process still listens on is an error). Sockets
 * and timers run on loop (main thread). Returns 0, or -errno with e filled
 * and nothing left to free. Undo with virtio_vsock_destroy. */
int virtio_vsock_create(struct virtio_dev *d, const struct virtio_vsock_config *c,
			const struct guest_mem *mem, struct evloop *loop,
			struct cv_error *e) CV_MUST;

/* The device table's create (devices.h): --vsock SPEC. */
int virtio_vsock_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
			       const struct virtio_env *env, struct cv_error *e) CV_MUST;

/* Close every connection and the listener, remove the socket file, free
 * the device's state (main thread, vCPUs stopped). */
void virtio_vsock_destroy(struct virtio_dev *d);

/* Drop every connection and send VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the
 * event queue (5.10.6.7), now or as soon as the guest provides an event
 * buffer; for the snapshot/migration code after the guest resumes. Main
 * thread. Returns 0. */
int virtio_vsock_transport_reset(struct virtio_dev *d) CV_MUST;

#endif
