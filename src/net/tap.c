/* tap.c - the tap backend: frames to and from a Linux tap device through
 * /dev/net/tun, with virtio_net_hdr in front of each frame (IFF_VNET_HDR,
 * TUNSETVNETHDRSZ 12) so that checksum and TSO offloads pass through.
 *
 * vhost-net (moving this loop into the host kernel) is future work: the
 * development host has no /dev/vhost-net, and the device model's copy-free
 * writev path is what the bench measures. */
#include "cvisor/net_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define TAP_HDR_LEN 12 /* virtio 1.2 5.1.6: virtio_net_hdr with num_buffers */
#define TAP_FLUSH_MAX 4096

struct tap {
	struct net_backend be;
	struct evloop *loop;
	int fd;
	bool rx_on, watched;
	char name[IFNAMSIZ];
};

static int tap_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

static int tap_send(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt)
{
	struct tap *t = (struct tap *)b;
	ssize_t r;

	/* One buffer (header and frame together, as Linux lays out a small
	 * skb) skips writev's iovec import: ~5% of a 64-byte frame's cost. */
	if (iovcnt == 1)
		r = write(t->fd, iov[0].iov_base, iov[0].iov_len);
	else
		r = writev(t->fd, iov, (int)iovcnt);
	/* A tap takes a whole frame or none (EAGAIN: its queue is full; EINVAL:
	 * the kernel refused the vnet header). Either way it is dropped. */
	return r < 0 ? -errno : 0;
}

static ssize_t tap_recv(struct net_backend *b, void *buf, size_t len)
{
	struct tap *t = (struct tap *)b;
	ssize_t r = read(t->fd, buf, len);

	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	return r;
}

static void tap_set_rx(struct net_backend *b, bool on)
{
	struct tap *t = (struct tap *)b;

	if (t->rx_on == on || !t->watched)
		return;
	/* Level-triggered: a frame left in the tap's queue wakes us again. */
	if (evloop_mod(t->loop, t->fd, on ? EPOLLIN : 0))
		return;
	t->rx_on = on;
}

static void tap_flush(struct net_backend *b)
{
	struct tap *t = (struct tap *)b;
	uint8_t buf[2048];

	/* Bounded: the host may keep sending while we drain. */
	for (int i = 0; i < TAP_FLUSH_MAX; i++)
		if (read(t->fd, buf, sizeof(buf)) < 0)
			break;
}

static int tap_set_offload(struct net_backend *b, unsigned int tun_flags)
{
	struct tap *t = (struct tap *)b;

	return ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)tun_flags) < 0 ? -errno : 0;
}

static void tap_destroy(struct net_backend *b)
{
	struct tap *t = (struct tap *)b;

	if (t->watched)
		evloop_del(t->loop, t->fd);
	close(t->fd);
	free(t);
}

static void tap_event(void *opaque, int fd, uint32_t events)
{
	struct tap *t = opaque;

	(void)fd;
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* The interface went away under us (ip link del): stop
		 * watching rather than spin on a dead fd. */
		cv_warn("tap %s: device gone; its network is down", t->name);
		evloop_del(t->loop, t->fd);
		t->watched = false;
		return;
	}
	if (t->be.rx_ready)
		t->be.rx_ready(t->be.opaque);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.recv = tap_recv,
	.set_rx = tap_set_rx,
	.flush = tap_flush,
	.set_offload = tap_set_offload,
	.destroy = tap_destroy,
};

/* Attach to the tap; vnet says whether to ask for vnet headers. */
static int tap_attach(struct tap *t, bool vnet, char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	int hdr = TAP_HDR_LEN, r;

	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "tap %s: /dev/net/tun: %s%s", t->name, strerror(-r),
			 r == -ENOENT	? " (load the tun module: modprobe tun)"
			 : r == -EACCES ? " (run as root, or use --net user)"
					: "");
		return r;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
	memcpy(ifr.ifr_name, t->name, sizeof(ifr.ifr_name));
	r = tap_ioctl(t->fd, TUNSETIFF, &ifr);
	if (!r && vnet)
		r = tap_ioctl(t->fd, TUNSETVNETHDRSZ, &hdr);
	if (!r) {
		t->be.hdr_len = vnet ? TAP_HDR_LEN : 0;
		return 0;
	}
	if (r == -EPERM)
		snprintf(err, errlen,
			 "tap %s: permission denied (create it for your user: ip tuntap add dev "
			 "%s mode tap user $USER; or run as root)",
			 t->name, t->name);
	else if (r == -EBUSY)
		snprintf(err, errlen, "tap %s: in use by another process", t->name);
	else
		snprintf(err, errlen, "tap %s: cannot attach: %s", t->name, strerror(-r));
	close(t->fd);
	t->fd = -1;
	return r;
}

/* The attached tap t->fd (hdr_len set): probe its offloads and watch it
 * on loop. On a failure t and its fd are freed. */
static int tap_start(struct tap *t, struct evloop *loop, struct net_backend **out, char *err,
		     size_t errlen)
{
	int r;

	t->loop = loop;
	t->be.ops = &tap_ops;
	if (t->be.hdr_len) {
		/* Offloads work if the tap takes the set the device offers;
		 * then back to none until a guest negotiates (activate). */
		t->be.offloads = !tap_set_offload(&t->be, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 |
								  TUN_F_TSO_ECN);
		if (tap_set_offload(&t->be, 0))
			t->be.offloads = false;
	}
	/* Watched from the start (reads off until the device starts them),
	 * so that an error on the fd is seen. */
	if ((r = evloop_add(loop, t->fd, 0, tap_event, t))) {
		snprintf(err, errlen, "tap %s: cannot watch it: %s", t->name, strerror(-r));
		close(t->fd);
		free(t);
		return r;
	}
	t->watched = true;
	*out = &t->be;
	return 0;
}

int net_tap_open(const char *name, struct evloop *loop, struct net_backend **out, char *err,
		 size_t errlen)
{
	struct tap *t = calloc(1, sizeof(*t));
	unsigned int features = 0;
	int r, fd;

	if (!t) {
		snprintf(err, errlen, "tap %s: out of memory", name);
		return -ENOMEM;
	}
	snprintf(t->name, sizeof(t->name), "%s", name);
	/* Ask for vnet headers only where the kernel offers them. */
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		if (ioctl(fd, TUNGETFEATURES, &features) < 0)
			features = 0;
		close(fd);
	}
	r = tap_attach(t, features & IFF_VNET_HDR, err, errlen);
	if (r == -EINVAL && (features & IFF_VNET_HDR))
		r = tap_attach(t, false, err, errlen);
	if (r) {
		free(t);
		return r;
	}
	return tap_start(t, loop, out, err, errlen);
}

int net_tap_check_fd(int fd, char name[IFNAMSIZ], bool *vnet, char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	int r = tap_ioctl(fd, TUNGETIFF, &ifr);

	if (r)
		return cv_errf(err, errlen, -EINVAL,
			       "the descriptor passed is not a tap device (TUNGETIFF: %s)",
			       strerror(-r));
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = '\0';
	if ((ifr.ifr_flags & (IFF_TUN | IFF_TAP)) != IFF_TAP)
		return cv_errf(err, errlen, -EINVAL,
			       "%s is a tun device (IP packets), not a tap (Ethernet frames)",
			       name);
	if (!(ifr.ifr_flags & IFF_NO_PI))
		return cv_errf(err, errlen, -EINVAL,
			       "tap %s was opened without IFF_NO_PI (frames would carry packet "
			       "information)",
			       name);
	*vnet = ifr.ifr_flags & IFF_VNET_HDR;
	return 0;
}

int net_tap_open_fd(int fd, struct evloop *loop, struct net_backend **out, char *err, size_t errlen)
{
	struct tap *t = calloc(1, sizeof(*t));
	int hdr = TAP_HDR_LEN, fl, r;
	bool vnet;

	if (!t) {
		close(fd);
		return cv_errf(err, errlen, -ENOMEM, "tap: out of memory");
	}
	t->fd = fd;
	if ((r = net_tap_check_fd(fd, t->name, &vnet, err, errlen)))
		goto fail;
	/* The file description is shared with whoever passed it: the same
	 * flags as net_tap_open's own (non-blocking), and the header size a
	 * vnet tap's frames carry here (as tap_attach sets it). */
	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    (vnet && tap_ioctl(fd, TUNSETVNETHDRSZ, &hdr))) {
		r = cv_errf(err, errlen, -errno, "tap %s: cannot set it up: %s", t->name,
			    strerror(errno));
		goto fail;
	}
	t->be.hdr_len = vnet ? TAP_HDR_LEN : 0;
	return tap_start(t, loop, out, err, errlen);
fail:
	close(fd);
	free(t);
	return r;
}
