/* net.c - virtio-net (virtio 1.2 section 5.1) between a guest's receive and
 * transmit queues and a host backend (src/net: libslirp or a tap). The
 * `--net` flag is parsed in src/net/config.c.
 *
 * Everything here runs on the main thread under dev->lock, except reset and
 * activate, which the core calls from a vCPU thread (also under the lock):
 * those only change device state and kick an eventfd, and the main thread
 * then starts or stops the backend. */
#include "cvisor/virtio_net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define NET_STATE_VERSION 1
/* Avail entries taken per queue per turn before yielding to the loop, so
 * that a guest refilling as fast as we drain cannot hold the main thread. */
#define NET_BUDGET 256
#define RX_BUF_LEN (VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX)
#define BIT(n) (1ULL << (n))

struct virtio_net {
	struct virtio_dev *dev;
	struct net_backend *be;
	struct evloop *loop;
	int kick_fd; /* eventfd: run both queues on the main thread */
	uint8_t mac[6];
	uint16_t status;
	_Atomic uint64_t *rx_bytes, *tx_bytes;
	struct virtio_net_stats stats;
	/* Rate limits, indexed like the queues, and their wake-up. */
	struct rate_limiter rl[2];
	struct rate_timer rate_timer;

	/* The frame on its way to the guest: header + frame in rx_buf, rx_off
	 * bytes of it already copied into rx_nbufs receive buffers that are
	 * taken from the ring but not yet used (the first is rx_first). */
	uint8_t *rx_buf;
	size_t rx_len, rx_off;
	unsigned int rx_nbufs;
	bool rx_paid; /* the pending frame's tokens are taken */
	struct virtq_elem rx_first, elem;
	uint16_t rx_heads[VIRTQ_MAX_SIZE];
	uint32_t rx_lens[VIRTQ_MAX_SIZE];
	struct virtq_iov frame; /* a transmit chain without its header */
};

static void kick(struct virtio_net *n)
{
	uint64_t one = 1;

	if (write(n->kick_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, a kick is pending anyway. */
	}
}

static bool rx_possible(struct virtio_net *n)
{
	return n->dev->active && n->dev->vqs[VIRTIO_NET_RXQ].ready;
}

/* Receive path (5.1.6.3, 5.1.6.4) --------------------------------------- */

static void rx_drop_pending(struct virtio_net *n)
{
	n->rx_len = n->rx_off = 0;
	n->rx_nbufs = 0;
	n->rx_paid = false;
}

/* May a frame of `bytes` go in direction qi now? If not, the timer is set
 * for when it may, and the caller leaves the frame where it is. */
static bool rate_allows(struct virtio_net *n, unsigned int qi, uint64_t bytes)
{
	uint64_t now, wait;

	if (!rate_limiter_on(&n->rl[qi]))
		return true;
	now = cv_now_ns();
	if (!(wait = rate_limiter_take(&n->rl[qi], bytes, 1, now)))
		return true;
	rate_timer_arm(&n->rate_timer, now, wait);
	return false;
}

/* Take the next frame from the backend into rx_buf. 1: got one, 0: none
 * waiting, -1: one was lost or refused (try again). */
static int rx_fetch(struct virtio_net *n)
{
	uint64_t f = n->dev->driver_features;
	size_t h = n->be->hdr_len, pad = VIRTIO_NET_HDR_LEN - h;
	uint8_t *hdr = n->rx_buf;
	ssize_t r = n->be->ops->recv(n->be, n->rx_buf + pad, RX_BUF_LEN - pad);

	if (!r)
		return 0;
	if (r < 0 || (size_t)r < h + VIRTIO_NET_FRAME_MIN)
		goto drop;
	if (!h) {
		memset(hdr, 0, VIRTIO_NET_HDR_LEN);
	} else {
		/* 5.1.6.4.1: no checksum flags unless GUEST_CSUM, no GSO
		 * unless the matching GUEST_TSO (the tap was told as much). */
		if (!(f & BIT(VIRTIO_NET_F_GUEST_CSUM)))
			hdr[0] = 0;
		if (hdr[1] != VIRTIO_NET_HDR_GSO_NONE &&
		    !(f & (BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6))))
			goto drop;
	}
	n->rx_len = (size_t)r + pad;
	n->rx_off = 0;
	return 1;
drop:
	n->stats.rx_dropped++;
	return -1;
}

/* Copy the pending frame into receive buffers; with MRG_RXBUF it may span
 * several, counted in the first header's num_buffers (5.1.6.4). Buffers
 * are held until the whole frame is placed, so running dry half way keeps
 * them (and avail_event then points past them, so the guest's next buffer
 * kicks us). Returns 1 when the frame is done (delivered or dropped), 0
 * when the guest has no buffers left, -1 after a fault, -2 when `budget`
 * avail entries were taken. *pushed counts used entries written. */
static int rx_place(struct virtio_net *n, unsigned int *budget, unsigned int *pushed)
{
	struct virtio_dev *d = n->dev;
	struct virtq *q = &d->vqs[VIRTIO_NET_RXQ];
	bool mrg = d->driver_features & BIT(VIRTIO_NET_F_MRG_RXBUF);
	uint8_t nb[2];
	int r;

	while (n->rx_off < n->rx_len) {
		struct virtq_elem *e = n->rx_nbufs ? &n->elem : &n->rx_first;
		size_t chunk;

		if (!*budget)
			return -2;
		r = virtq_pop(q, e);
		if (!r)
			return 0;
		(*budget)--;
		if (r < 0 && e->head == VIRTQ_HEAD_NONE) {
			virtio_dev_fault(d, "the receive queue is broken");
			return -1;
		}
		/* 2.7.4.2, 5.1.6.3.1: receive buffers are device-writable and
		 * the first one holds at least the header. Fail just this one;
		 * its used entry goes ahead of the frame's, which is allowed. */
		if (r < 0 || e->out_num || !e->in_len ||
		    (!n->rx_nbufs && e->in_len < VIRTIO_NET_HDR_LEN)) {
			virtq_push(q, e, 0);
			(*pushed)++;
			continue;
		}
		if (!mrg && e->in_len < n->rx_len) {
			/* Without MRG_RXBUF the frame must fit one buffer
			 * (5.1.6.3.1): drop it and hand the untouched buffer
			 * back. */
			virtq_unpop(q);
			rx_drop_pending(n);
			n->stats.rx_dropped++;
			return 1;
		}
		if (n->rx_nbufs >= q->size) {
			virtio_dev_fault(d, "more receive buffers taken than the queue holds");
			return -1;
		}
		chunk = n->rx_len - n->rx_off;
		if (chunk > e->in_len)
			chunk = e->in_len;
		/* Marked for migration here: only rx_first keeps its iovecs
		 * until virtq_push, the others are rebuilt without them. */
		(void)virtq_elem_write(e, 0, n->rx_buf + n->rx_off, chunk);
		n->rx_heads[n->rx_nbufs] = e->head;
		n->rx_lens[n->rx_nbufs++] = (uint32_t)chunk;
		n->rx_off += chunk;
	}
	/* 5.1.6.4: num_buffers (1 without MRG_RXBUF) in the first buffer. */
	cv_put_le16(nb, (uint16_t)n->rx_nbufs);
	(void)virtq_elem_write(&n->rx_first, VIRTIO_NET_HDR_NUM_BUFFERS, nb, 2);
	virtq_push(q, &n->rx_first, n->rx_lens[0]);
	for (unsigned int i = 1; i < n->rx_nbufs; i++) {
		/* virtq_push reads head and in_len only (its contract). */
		n->elem = (struct virtq_elem){ .head = n->rx_heads[i], .in_len = n->rx_lens[i] };
		virtq_push(q, &n->elem, n->rx_lens[i]);
	}
	*pushed += n->rx_nbufs;
	n->stats.rx_packets++;
	n->stats.rx_bytes += n->rx_len - VIRTIO_NET_HDR_LEN;
	if (n->rx_bytes)
		atomic_fetch_add(n->rx_bytes, n->rx_len - VIRTIO_NET_HDR_LEN);
	rx_drop_pending(n);
	return 1;
}

static void rx_pump(struct virtio_net *n)
{
	struct virtq *q = &n->dev->vqs[VIRTIO_NET_RXQ];
	unsigned int budget = NET_BUDGET, pushed = 0, frames = 0;
	int r;

	if (!rx_possible(n))
		return;
	while (frames < NET_BUDGET) {
		if (!n->rx_len) {
			r = rx_fetch(n);
			if (!r)
				break;
			frames++;
			if (r < 0)
				continue;
		}
		if (!n->rx_paid) {
			/* Over the limit: the frame waits here and the backend
			 * keeps the rest (the timer reads it again). */
			if (!rate_allows(n, VIRTIO_NET_RXQ, n->rx_len - VIRTIO_NET_HDR_LEN)) {
				n->be->ops->set_rx(n->be, false);
				break;
			}
			n->rx_paid = true;
		}
		r = rx_place(n, &budget, &pushed);
		if (r == 1)
			continue;
		if (r == -2)
			frames = NET_BUDGET;
		if (r)
			break;
		/* No buffers: stop reading the backend until the guest adds
		 * some (its rx kick restarts it), unless it just did. */
		n->be->ops->set_rx(n->be, false);
		if (!virtq_enable_notify(q, true))
			break;
		n->be->ops->set_rx(n->be, true);
	}
	if (pushed) {
		/* Buffers are flowing: the guest need not kick for each. */
		virtq_enable_notify(q, false);
		virtio_dev_used(n->dev, VIRTIO_NET_RXQ);
	}
	if (frames >= NET_BUDGET && n->dev->active)
		kick(n);
}

/* Transmit path (5.1.6.2) ------------------------------------------------ */

/* The frame's length in a transmit chain, or 0 if the chain is not one: a
 * chain is device-readable only, a header then a frame of bounded size
 * (5.1.6.2). */
static uint32_t tx_frame_len(const struct virtq_elem *e)
{
	if (e->in_num || e->out_len < VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MIN ||
	    e->out_len > VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX)
		return 0;
	return e->out_len - VIRTIO_NET_HDR_LEN;
}

static int tx_one(struct virtio_net *n, const struct virtq_elem *e)
{
	struct net_backend *be = n->be;
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = { 0 };

	if (!tx_frame_len(e))
		return -EINVAL;
	if (be->hdr_len)
		return be->ops->send(be, e->iov, e->out_num);
	/* A backend without vnet headers was offered no offloads, so a GSO
	 * request breaks 5.1.6.2.1; checksums the guest left undone are its
	 * own loss. */
	(void)virtq_elem_read(e, 0, hdr, sizeof(hdr));
	if (hdr[1] != VIRTIO_NET_HDR_GSO_NONE)
		return -EINVAL;
	(void)virtq_elem_slice(e, VIRTQ_OUT, VIRTIO_NET_HDR_LEN, e->out_len - VIRTIO_NET_HDR_LEN,
			       &n->frame);
	return be->ops->send(be, n->frame.iov, n->frame.n);
}

static void tx_pump(struct virtio_net *n)
{
	struct virtio_dev *d = n->dev;
	struct virtq *q = &d->vqs[VIRTIO_NET_TXQ];
	unsigned int budget = NET_BUDGET, done = 0;
	uint64_t bytes = 0;
	int r;

	if (!d->active || !q->ready)
		return;
	for (;;) {
		virtq_enable_notify(q, false);
		while (budget && (r = virtq_pop(q, &n->elem))) {
			budget--;
			if (r < 0 && n->elem.head == VIRTQ_HEAD_NONE) {
				virtio_dev_fault(d, "the transmit queue is broken");
				goto out;
			}
			/* Over the limit: the frame stays on the ring, the queue
			 * sleeps (notifications off) until the timer. A chain
			 * tx_one drops costs an operation and no bytes. */
			if (r > 0 && !rate_allows(n, VIRTIO_NET_TXQ, tx_frame_len(&n->elem))) {
				virtq_unpop(q);
				goto out;
			}
			if (r > 0 && !tx_one(n, &n->elem)) {
				n->stats.tx_packets++;
				bytes += n->elem.out_len - VIRTIO_NET_HDR_LEN;
			} else {
				n->stats.tx_dropped++;
			}
			/* The device writes nothing into a transmit chain. */
			virtq_push(q, &n->elem, 0);
			done++;
		}
		if (!budget) {
			kick(n);
			break;
		}
		if (!virtq_enable_notify(q, true))
			break;
	}
out:
	if (done)
		virtio_dev_used(d, VIRTIO_NET_TXQ);
	n->stats.tx_bytes += bytes;
	if (bytes && n->tx_bytes)
		atomic_fetch_add(n->tx_bytes, bytes);
}

/* Event handlers (main thread) ------------------------------------------- */

static void net_rx_ready(void *opaque)
{
	struct virtio_net *n = opaque;

	pthread_mutex_lock(&n->dev->lock);
	if (rx_possible(n))
		rx_pump(n);
	else
		n->be->ops->set_rx(n->be, false);
	pthread_mutex_unlock(&n->dev->lock);
}

/* Both queues, and the backend started or stopped to match. */
static void net_run(struct virtio_net *n)
{
	pthread_mutex_lock(&n->dev->lock);
	if (rx_possible(n)) {
		n->be->ops->set_rx(n->be, true);
		rx_pump(n);
	} else {
		n->be->ops->set_rx(n->be, false);
		if (!n->dev->active)
			n->be->ops->flush(n->be);
	}
	tx_pump(n);
	pthread_mutex_unlock(&n->dev->lock);
}

static void net_kick(void *opaque, int fd, uint32_t events)
{
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: a spurious wakeup. */
	}
	net_run(opaque);
}

/* Tokens are there for what waited. */
static void net_rate_event(void *opaque, int fd, uint32_t events)
{
	struct virtio_net *n = opaque;

	(void)fd;
	(void)events;
	rate_timer_fired(&n->rate_timer);
	net_run(n);
}

/* virtio_dev_ops ---------------------------------------------------------- */

static uint64_t net_features(struct virtio_dev *d)
{
	struct virtio_net *n = d->priv;
	uint64_t f = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_MRG_RXBUF);

	/* 5.1.3.1's dependencies hold: TSO needs CSUM, ECN needs TSO. */
	if (n->be->hdr_len && n->be->offloads)
		f |= BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_GUEST_CSUM) |
		     BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) |
		     BIT(VIRTIO_NET_F_GUEST_ECN) | BIT(VIRTIO_NET_F_HOST_TSO4) |
		     BIT(VIRTIO_NET_F_HOST_TSO6) | BIT(VIRTIO_NET_F_HOST_ECN);
	return f;
}

static void net_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = d->priv;
	uint8_t cfg[VIRTIO_NET_CONFIG_LEN];

	/* 5.1.4: u8 mac[6]; le16 status. */
	memcpy(cfg, n->mac, 6);
	cfg[6] = (uint8_t)n->status;
	cfg[7] = (uint8_t)(n->status >> 8);
	if (off <= sizeof(cfg) && len <= sizeof(cfg) - off)
		memcpy(data, cfg + off, len);
}

/* What the guest accepts on receive, as the tap's TUN_F_* (5.1.3.1: TSO
 * only with GUEST_CSUM, ECN only with a TSO). */
static unsigned int tun_offloads(uint64_t f)
{
	unsigned int t;

	if (!(f & BIT(VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	t = TUN_F_CSUM;
	if (f & BIT(VIRTIO_NET_F_GUEST_TSO4))
		t |= TUN_F_TSO4;
	if (f & BIT(VIRTIO_NET_F_GUEST_TSO6))
		t |= TUN_F_TSO6;
	if ((t & (TUN_F_TSO4 | TUN_F_TSO6)) && (f & BIT(VIRTIO_NET_F_GUEST_ECN)))
		t |= TUN_F_TSO_ECN;
	return t;
}

static int net_activate(struct virtio_dev *d)
{
	struct virtio_net *n = d->priv;

	/* Receiving without offloads is always acceptable to the guest. */
	if (n->be->offloads && n->be->ops->set_offload &&
	    n->be->ops->set_offload(n->be, tun_offloads(d->driver_features))) {
		cv_warn("%s: the tap refused the guest's offloads; receiving without", d->label);
		(void)n->be->ops->set_offload(n->be, 0);
	}
	rx_drop_pending(n);
	kick(n);
	return 0;
}

static void net_notify(struct virtio_dev *d, unsigned int q)
{
	struct virtio_net *n = d->priv;

	if (q == VIRTIO_NET_TXQ) {
		tx_pump(n);
	} else if (q == VIRTIO_NET_RXQ) {
		/* New receive buffers: read the backend again. */
		n->be->ops->set_rx(n->be, true);
		rx_pump(n);
	}
}

static void net_reset(struct virtio_dev *d)
{
	struct virtio_net *n = d->priv;

	/* Held buffers belong to the old rings; the main thread stops the
	 * backend and drops what it queued. */
	rx_drop_pending(n);
	kick(n);
}

/* Device state, version 1 (after the core's), little-endian:
 *   u32 version, u8 mac[6], u16 status,
 *   u16 rx_held: receive buffers taken for a half-placed frame. That frame
 *                is not saved; load hands its buffers back to the ring. */
static int net_save(struct virtio_dev *d, struct state_buf *out)
{
	struct virtio_net *n = d->priv;

	state_put_u32(out, NET_STATE_VERSION);
	state_put_bytes(out, n->mac, 6);
	state_put_u16(out, n->status);
	state_put_u16(out, (uint16_t)n->rx_nbufs);
	return out->err;
}

static int net_load(struct virtio_dev *d, struct state_rd *in)
{
	struct virtio_net *n = d->priv;
	struct virtq *q = &d->vqs[VIRTIO_NET_RXQ];
	uint32_t version = state_get_u32(in);
	uint8_t mac[6];
	uint16_t status, held;

	state_get_bytes(in, mac, 6);
	status = state_get_u16(in);
	held = state_get_u16(in);
	if (in->err || version != NET_STATE_VERSION || (mac[0] & 1) ||
	    (status & ~VIRTIO_NET_S_LINK_UP) || held > (q->ready ? q->size : 0))
		return -EINVAL;
	/* The saved MAC is checked for form only: the device keeps the one
	 * its spec gave (as vsock keeps its CID). A restore's spec is the
	 * saved one and a migration target's carries the guest's mac=, so
	 * both are the guest's; a clone's (restore --count) is its own. */
	n->status = status;
	rx_drop_pending(n);
	q->last_avail = (uint16_t)(q->last_avail - held);
	return 0;
}

/* cvisor set: new limits at once; what they held is looked at again. */
static int net_set_limits(struct virtio_dev *d, const char *what, const char *spec,
			  const char *changes, char **new_spec, struct cv_error *e)
{
	struct virtio_net *n = d->priv;
	struct rate_limits l[2];
	uint64_t now = cv_now_ns();
	int r;

	pthread_mutex_lock(&d->lock);
	for (unsigned int i = 0; i < 2; i++)
		rate_limiter_get(&n->rl[i], &l[i]);
	r = rate_spec_change(virtio_net_rate_keys, l, 2, what, spec, changes, new_spec, e);
	for (unsigned int i = 0; !r && i < 2; i++)
		rate_limiter_set(&n->rl[i], &l[i], now);
	pthread_mutex_unlock(&d->lock);
	if (!r)
		kick(n);
	return r;
}

static unsigned int net_rate_status(struct virtio_dev *d, struct rate_status *out, unsigned int max)
{
	static const char *const dir[2] = { [VIRTIO_NET_RXQ] = "rx", [VIRTIO_NET_TXQ] = "tx" };
	struct virtio_net *n = d->priv;
	unsigned int i;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < 2 && i < max; i++) {
		out[i].dir = dir[i];
		rate_limiter_get(&n->rl[i], &out[i].lim);
		out[i].throttled = n->rl[i].throttled;
	}
	pthread_mutex_unlock(&d->lock);
	return i;
}

const struct virtio_dev_ops virtio_net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.num_queues = 2,
	.queue_max = VIRTIO_NET_QUEUE_SIZE,
	.config_len = VIRTIO_NET_CONFIG_LEN,
	.features = net_features,
	.config_read = net_config_read,
	.activate = net_activate,
	.notify = net_notify,
	.reset = net_reset,
	.save = net_save,
	.load = net_load,
	.destroy = virtio_net_destroy,
	.set_limits = net_set_limits,
	.rate_status = net_rate_status,
};

int virtio_net_create_backend(struct virtio_dev *d, const struct virtio_net_config *c,
			      const struct guest_mem *mem, struct evloop *loop,
			      struct net_backend *be, _Atomic uint64_t *rx_bytes,
			      _Atomic uint64_t *tx_bytes)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	char label[32];
	int r = -ENOMEM;

	if (!n || !(n->rx_buf = malloc(RX_BUF_LEN)))
		goto fail;
	n->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->kick_fd < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = evloop_add(loop, n->kick_fd, EPOLLIN, net_kick, n))) {
		close(n->kick_fd);
		goto fail;
	}
	if ((r = rate_timer_init(&n->rate_timer, loop, net_rate_event, n))) {
		evloop_del(loop, n->kick_fd);
		close(n->kick_fd);
		goto fail;
	}
	for (unsigned int i = 0; i < 2; i++)
		rate_limiter_set(&n->rl[i], &c->rate[i], cv_now_ns());
	n->be = be;
	n->loop = loop;
	n->rx_bytes = rx_bytes;
	n->tx_bytes = tx_bytes;
	n->status = VIRTIO_NET_S_LINK_UP;
	memcpy(n->mac, c->mac, 6);
	be->rx_ready = net_rx_ready;
	be->opaque = n;
	snprintf(label, sizeof(label), "virtio-net (%s)",
		 c->backend != VIRTIO_NET_USER ? c->tap : "user");
	virtio_dev_init(d, &virtio_net_ops, n, mem, label);
	n->dev = d;
	return 0;
fail:
	if (n)
		free(n->rx_buf);
	free(n);
	be->ops->destroy(be);
	return r;
}

int virtio_net_create(struct virtio_dev *d, const struct virtio_net_config *c,
		      const struct guest_mem *mem, struct evloop *loop, _Atomic uint64_t *rx_bytes,
		      _Atomic uint64_t *tx_bytes, struct cv_error *e)
{
	struct net_backend *be;
	char err[256];
	int r;

	if (c->backend == VIRTIO_NET_TAP)
		r = net_tap_open(c->tap, loop, &be, err, sizeof(err));
	else if (c->backend == VIRTIO_NET_TAP_FD)
		r = -EINVAL, snprintf(err, sizeof(err), "--net tapfd: no descriptor came with it");
	else
		r = net_slirp_open(c->hostfwd, c->nr_hostfwd, loop, &be, err, sizeof(err));
	if (r)
		return cv_fail(e, CV_EXIT_USAGE, r, "%s", err);
	r = virtio_net_create_backend(d, c, mem, loop, be, rx_bytes, tx_bytes);
	if (r)
		return cv_fail(e, CV_EXIT_USAGE, r, "virtio-net: cannot set up the device: %s",
			       strerror(-r));
	return 0;
}

int virtio_net_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
			     const struct virtio_env *env, struct cv_error *e)
{
	struct virtio_net_config c;
	int r;

	struct net_backend *be;
	char err[256];
	bool vnet;
	int fd;

	if ((r = virtio_net_parse(spec, index, &c, e)))
		return r;
	if (c.backend != VIRTIO_NET_TAP_FD)
		return virtio_net_create(d, &c, env->mem, env->loop, &env->stats->net_rx_bytes,
					 &env->stats->net_tx_bytes, e);
	if (env->fd < 0)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--net tapfd: only the API's vm.add-net passes a tap's descriptor");
	/* Its interface's name for the label, as a tap=NAME device has. */
	if ((r = net_tap_check_fd(env->fd, c.tap, &vnet, err, sizeof(err))))
		return cv_fail(e, CV_EXIT_USAGE, r, "%s", err);
	if ((fd = fcntl(env->fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return cv_fail(e, CV_EXIT_FAIL, -errno, "virtio-net: dup of the tap's fd: %s",
			       strerror(errno));
	if ((r = net_tap_open_fd(fd, env->loop, &be, err, sizeof(err))))
		return cv_fail(e, CV_EXIT_USAGE, r, "%s", err);
	r = virtio_net_create_backend(d, &c, env->mem, env->loop, be, &env->stats->net_rx_bytes,
				      &env->stats->net_tx_bytes);
	if (r)
		return cv_fail(e, CV_EXIT_FAIL, r, "virtio-net: cannot set up the device: %s",
			       strerror(-r));
	return 0;
}

void virtio_net_destroy(struct virtio_dev *d)
{
	struct virtio_net *n = d->priv;

	if (!n)
		return;
	rate_timer_destroy(&n->rate_timer);
	evloop_del(n->loop, n->kick_fd);
	close(n->kick_fd);
	n->be->ops->destroy(n->be);
	free(n->rx_buf);
	free(n);
	d->priv = NULL;
	d->active = false;
}

void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *s)
{
	struct virtio_net *n = d->priv;

	pthread_mutex_lock(&d->lock);
	*s = n->stats;
	pthread_mutex_unlock(&d->lock);
}
