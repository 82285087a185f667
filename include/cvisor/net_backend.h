/* net_backend.h - where a virtio-net device's frames go on the host: the
 * user-mode network (libslirp, loaded at run time) or a tap device.
 *
 * Threads: every call runs on the main thread (the event loop), except
 * set_offload, which the device may call from a vCPU thread (activate). A
 * backend calls rx_ready from its own event handlers only, never from inside
 * send(), so the device may hold its lock around send(). */
#ifndef CVISOR_NET_BACKEND_H
#define CVISOR_NET_BACKEND_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "cvisor/evloop.h"
#include "cvisor/util.h"

/* The user-mode network (the addresses QEMU's -netdev user uses). */
#define NET_USER_NETWORK 0x0a000200u /* 10.0.2.0/24 */
#define NET_USER_GATEWAY 0x0a000202u /* 10.0.2.2, the host */
#define NET_USER_DNS 0x0a000203u     /* 10.0.2.3 */
#define NET_USER_GUEST 0x0a00020fu   /* 10.0.2.15, the first DHCP lease */

/* One `hostfwd=` rule: connections to host_addr:host_port reach
 * guest_addr:guest_port. Addresses are IPv4 in host byte order; a host_addr
 * of 0 listens on every interface (as QEMU does). */
struct net_hostfwd {
	bool udp;
	uint32_t host_addr, guest_addr;
	uint16_t host_port, guest_port;
};

struct net_backend;

struct net_backend_ops {
	/* Send one frame toward the network. iov starts with hdr_len bytes of
	 * virtio_net_hdr when hdr_len != 0, then the Ethernet frame. Returns
	 * 0, or -errno when the frame was dropped. */
	int (*send)(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt);
	/* Take one frame for the guest (with hdr_len bytes of header first)
	 * into buf. Returns its length, 0 when none is waiting, or -errno (the
	 * frame was lost, e.g. longer than len). */
	ssize_t (*recv)(struct net_backend *b, void *buf, size_t len);
	/* Start or stop watching for frames for the guest (backpressure while
	 * the guest has no receive buffers). Starts stopped. */
	void (*set_rx)(struct net_backend *b, bool on);
	/* Drop every frame waiting for the guest (device reset). */
	void (*flush)(struct net_backend *b);
	/* The offloads the guest accepts on receive, as TUN_F_* flags (only
	 * when `offloads`; may be NULL otherwise). 0 or -errno. */
	int (*set_offload)(struct net_backend *b, unsigned int tun_flags);
	void (*destroy)(struct net_backend *b);
};

struct net_backend {
	const struct net_backend_ops *ops;
	/* 12 when frames carry a virtio_net_hdr both ways (a tap with
	 * IFF_VNET_HDR and TUNSETVNETHDRSZ 12), else 0. */
	unsigned int hdr_len;
	/* Checksum and TSO offloads work (TUNSETOFFLOAD accepted them). */
	bool offloads;
	/* Set by the device: frames may be waiting (main thread, no lock). */
	void (*rx_ready)(void *opaque);
	void *opaque;
};

/* Attach to tap device `name` (created if it does not exist and we may):
 * /dev/net/tun with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, non-blocking, on
 * loop. On error returns -errno and writes one user-facing line to err. */
int net_tap_open(const char *name, struct evloop *loop, struct net_backend **out, char *err,
		 size_t errlen) CV_MUST;

/* Is fd a tap this backend can use (TUNGETIFF: IFF_TAP with IFF_NO_PI)?
 * Its interface name into name and whether it takes vnet headers
 * (IFF_VNET_HDR) into *vnet. 0, or -EINVAL with one line in err. */
int net_tap_check_fd(int fd, char name[IFNAMSIZ], bool *vnet, char *err, size_t errlen) CV_MUST;

/* The tap backend over fd, a tap another process opened and passed (the
 * API's vm.add-net): net_tap_check_fd, then non-blocking and, with vnet
 * headers, their size set to 12, as net_tap_open's own. fd is taken (closed
 * on a failure too). 0 or -errno with one line in err. */
int net_tap_open_fd(int fd, struct evloop *loop, struct net_backend **out, char *err,
		    size_t errlen) CV_MUST;

/* The user-mode network: libslirp, dlopen()ed here so that cvisor does not
 * link it (or glib) unless --net user is used. DHCP hands out 10.0.2.15,
 * gateway 10.0.2.2, DNS 10.0.2.3; each hostfwd rule listens on the host.
 * Returns -ENOENT (with a line in err) if libslirp is not installed. */
int net_slirp_open(const struct net_hostfwd *fwd, unsigned int nfwd, struct evloop *loop,
		   struct net_backend **out, char *err, size_t errlen) CV_MUST;

/* Whether this process has loaded libslirp (a --net user exists): it
 * answers the guest's DNS from /etc/resolv.conf, which the jail must then
 * show it. */
bool net_slirp_loaded(void);

#endif
