/* vsock.c - virtio-vsock in user space (virtio 1.2 section 5.10): stream
 * connections between the guest and unix sockets on the host, with the
 * protocol described in include/cvisor/virtio_vsock.h. This file is the
 * device: its queues, the packets on them, and its lifecycle; the host end
 * of each connection (the table, the unix sockets) is vsock_conn.c.
 *
 * Threads: queue kicks and socket events run on the main thread with
 * d->lock held. activate() and reset() come from vCPU threads, so they touch
 * no event loop state: reset shuts sockets down and marks them DEAD, and
 * both kick an eventfd whose main-thread handler closes them and resumes
 * work. Handlers reach their connection through a slot of a fixed table,
 * so a stale event finds a free or reused slot, never freed memory. */
#include "cvisor/virtio_vsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsock_priv.h"

#define VSOCK_QUEUE_MAX 256
#define RXQ 0
#define TXQ 1
#define EVQ 2
#define VSOCK_CONFIG_LEN 8 /* le64 guest_cid (5.10.4) */
#define VSOCK_STATE_VERSION 1
#define EVENT_TRANSPORT_RESET 0
#define BUDGET 256 /* packets per pass before yielding to the loop */

static const uint8_t hdr_width[10] = { 8, 8, 4, 4, 4, 2, 2, 4, 4, 4 };

static void hdr_encode(const union hdr *h, uint8_t *p)
{
	for (unsigned int i = 0; i < 10; p += hdr_width[i], i++)
		cv_put_le(p, h->f[i], hdr_width[i]);
}

static void hdr_decode(union hdr *h, const uint8_t *p)
{
	for (unsigned int i = 0; i < 10; i++)
		for (unsigned int k = 0; k < hdr_width[i]; k++)
			h->f[i] = (k ? h->f[i] : 0) | (uint64_t)*p++ << (8 * k);
}

static void vsock_kick(struct vsock *vs)
{
	uint64_t one = 1;

	if (write(vs->kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		cv_warn("%s: eventfd write: %s", vs->d->label, strerror(errno));
}

static bool vsock_running(const struct vsock *vs)
{
	return vs->d->active && !(vs->d->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* A tx packet's header, or false (warned once) for one to drop unanswered. */
static bool vsock_tx_hdr(struct vsock *vs, const struct virtq_elem *e, union hdr *h)
{
	uint8_t raw[HDR_LEN];

	if (e->out_len < HDR_LEN) {
		if (!vs->warned_hdr)
			cv_warn("%s: tx packet shorter than a header, dropped", vs->d->label);
		vs->warned_hdr = true;
		return false;
	}
	(void)virtq_elem_read(e, 0, raw, HDR_LEN);
	hdr_decode(h, raw);
	/* 5.10.6.4.2: a packet that is not from the guest's own CID cannot be
	 * answered; drop it. */
	if (h->src_cid != vs->cid) {
		if (!vs->warned_cid)
			cv_warn("%s: packet from CID %llu, not the guest's, dropped", vs->d->label,
				(unsigned long long)h->src_cid);
		vs->warned_cid = true;
		return false;
	}
	return true;
}

/* One packet from the guest's tx queue (5.10.6.4, 5.10.6.5). */
static void vsock_tx_packet(struct vsock *vs, const struct virtq_elem *e)
{
	union hdr h;
	struct conn *c;

	if (!vsock_tx_hdr(vs, e, &h))
		return;
	c = conn_find(vs, h.src_port, h.dst_port);
	if (h.dst_cid != VIRTIO_VSOCK_HOST_CID || h.type != TYPE_STREAM ||
	    h.len > e->out_len - HDR_LEN || h.len > MAX_PKT || h.op < OP_REQUEST ||
	    h.op > OP_CREDIT_REQUEST) {
		if (c)
			conn_close(c, true);
		else if (h.op != OP_RST)
			vsock_rst_queue(vs, h.src_port, h.dst_port);
		return;
	}
	if (c) {
		c->peer_buf_alloc = h.buf_alloc;
		c->peer_fwd_cnt = h.fwd_cnt;
		if (conn_credit(c))
			c->credit_requested = false;
	}
	switch (h.op) {
	case OP_REQUEST:
		if (c)
			conn_close(c, true);
		else
			vsock_guest_connect(vs, &h);
		return;
	case OP_RST:
		if (c)
			conn_close(c, false);
		return;
	case OP_RESPONSE:
		if (c && c->state == C_REQUESTING) {
			char ok[24];
			int n = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);

			c->state = C_ESTABLISHED;
			if (send(c->fd, ok, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
				conn_close(c, true);
			else
				conn_watch(c);
			return;
		}
		break;
	default:
		break;
	}
	if (!c || c->state != C_ESTABLISHED) {
		if (c)
			conn_close(c, true);
		else
			vsock_rst_queue(vs, h.src_port, h.dst_port);
		return;
	}
	if (h.op == OP_RW && !(c->guest_shut & SHUT_F_SEND))
		conn_from_guest(c, e, h.len);
	else if (h.op == OP_RW)
		conn_close(c, true); /* data after the guest said it would send none */
	else if (h.op == OP_CREDIT_REQUEST)
		c->pending |= P_CREDIT_UPDATE;
	else if (h.op == OP_SHUTDOWN)
		c->guest_shut |= (uint8_t)(h.flags & (SHUT_F_RCV | SHUT_F_SEND));
	if (c->state == C_ESTABLISHED && h.op != OP_RW)
		conn_flush(c); /* applies a shutdown once the buffer is empty */
}

/* Take an rx buffer (the one held from an earlier pass first). */
static bool vsock_rx_buf(struct vsock *vs, bool *pushed)
{
	struct virtq *q = &vs->d->vqs[RXQ];
	unsigned int budget = q->size; /* too-small buffers returned per call */
	int r;

	while (!vs->rx_held) {
		if (!budget--) {
			/* A guest that only gives tiny buffers gets served again
			 * after everything else the main thread does. */
			virtio_dev_rekick(vs->d, RXQ);
			return false;
		}
		r = virtq_pop(q, &vs->rx_elem);
		if (r < 0) {
			virtio_dev_fault(vs->d, "malformed buffer on the rx queue");
			return false;
		}
		if (r == 0) {
			if (virtq_enable_notify(q, true))
				continue;
			return false;
		}
		if (vs->rx_elem.in_len > HDR_LEN) {
			vs->rx_held = true;
			break;
		}
		/* 5.10.6.4.1: buffers must hold a header and data; Linux
		 * drops a short used buffer and requeues it. */
		if (!vs->warned_small)
			cv_warn("%s: rx buffer of %llu bytes is too small", vs->d->label,
				(unsigned long long)vs->rx_elem.in_len);
		vs->warned_small = true;
		virtq_push(q, &vs->rx_elem, 0);
		*pushed = true;
	}
	return true;
}

void vsock_rx_push(struct vsock *vs, union hdr *h, struct conn *c)
{
	uint8_t raw[HDR_LEN];

	h->src_cid = VIRTIO_VSOCK_HOST_CID;
	h->dst_cid = vs->cid;
	h->type = TYPE_STREAM;
	h->buf_alloc = VIRTIO_VSOCK_BUF_ALLOC;
	if (c) {
		h->src_port = c->host_port;
		h->dst_port = c->guest_port;
		h->fwd_cnt = c->fwd_reported = c->fwd_cnt;
	}
	hdr_encode(h, raw);
	(void)virtq_elem_write(&vs->rx_elem, 0, raw, HDR_LEN);
	virtq_push(&vs->d->vqs[RXQ], &vs->rx_elem, HDR_LEN + h->len);
	vs->rx_held = false;
}

/* A connection with something for the guest, round-robin. */
static struct conn *vsock_rx_next(struct vsock *vs)
{
	for (unsigned int k = 0; k < VIRTIO_VSOCK_CONN_MAX; k++) {
		unsigned int i = (vs->rr + k) % VIRTIO_VSOCK_CONN_MAX;
		struct conn *c = &vs->conns[i];

		if (c->state != C_REQUESTING && c->state != C_ESTABLISHED)
			continue;
		/* 5.10.6.3: out of credit with data waiting: ask once. */
		if (conn_rx_wanted(c) && !conn_credit(c) && !c->credit_requested) {
			c->credit_requested = true;
			c->pending |= P_CREDIT_REQUEST;
		}
		if (c->pending || (conn_rx_wanted(c) && conn_credit(c))) {
			vs->rr = i + 1;
			return c;
		}
	}
	return NULL;
}

/* Send the guest what is owed, as long as it provides rx buffers. */
void vsock_rx(struct vsock *vs)
{
	unsigned int budget = BUDGET;
	bool pushed = false;

	while (vsock_running(vs) && vs->d->vqs[RXQ].ready && budget--) {
		union hdr h = { 0 };
		struct conn *c = NULL;
		uint8_t p;

		if (!vs->rst_len && !(c = vsock_rx_next(vs)))
			break;
		if (!vsock_rx_buf(vs, &pushed))
			break;
		if (vs->rst_len) {
			h.op = OP_RST;
			h.dst_port = vs->rsts[vs->rst_head][0];
			h.src_port = vs->rsts[vs->rst_head][1];
			vs->rst_head = (vs->rst_head + 1) % RST_MAX;
			vs->rst_len--;
			vsock_rx_push(vs, &h, NULL);
			pushed = true;
			continue;
		}
		p = c->pending & (uint8_t)-c->pending; /* lowest set: the order above */
		if (!p) {
			pushed |= conn_to_guest(vs, c);
			continue;
		}
		c->pending &= (uint8_t)~p;
		h.op = p == P_REQUEST	       ? OP_REQUEST
		       : p == P_RESPONSE       ? OP_RESPONSE
		       : p == P_CREDIT_UPDATE  ? OP_CREDIT_UPDATE
		       : p == P_CREDIT_REQUEST ? OP_CREDIT_REQUEST
					       : OP_SHUTDOWN;
		if (p == P_SHUTDOWN)
			h.flags = SHUT_F_SEND | (c->hup ? SHUT_F_RCV : 0);
		vsock_rx_push(vs, &h, c);
		pushed = true;
		if (p == P_SHUTDOWN)
			conn_check_done(c);
	}
	if (pushed)
		virtio_dev_used(vs->d, RXQ);
	if (budget == (unsigned int)-1)
		vsock_kick(vs); /* more to do: come back after other events */
}

static void vsock_tx(struct vsock *vs)
{
	struct virtq *q = &vs->d->vqs[TXQ];
	unsigned int budget = BUDGET;
	bool pushed = false;
	int r = 0;

	while (vsock_running(vs) && q->ready && budget) {
		while (budget && (r = virtq_pop(q, &vs->tx_elem)) == 1) {
			vsock_tx_packet(vs, &vs->tx_elem);
			virtq_push(q, &vs->tx_elem, 0);
			pushed = true;
			budget--;
		}
		if (r < 0) {
			virtio_dev_fault(vs->d, "malformed packet on the tx queue");
			break;
		}
		if (!budget) {
			vsock_kick(vs);
			break;
		}
		if (!virtq_enable_notify(q, true))
			break;
	}
	if (pushed)
		virtio_dev_used(vs->d, TXQ);
}

/* 5.10.6.7: struct virtio_vsock_event { le32 id; }. */
static void vsock_event(struct vsock *vs)
{
	struct virtq *q = &vs->d->vqs[EVQ];
	uint8_t ev[4];
	int r;

	if (!vs->event_pending || !vsock_running(vs) || !q->ready)
		return;
	r = virtq_pop(q, &vs->ev_elem);
	if (r < 0)
		virtio_dev_fault(vs->d, "malformed buffer on the event queue");
	if (r != 1)
		return;
	cv_put_le(ev, EVENT_TRANSPORT_RESET, 4);
	if (vs->ev_elem.in_len >= 4)
		(void)virtq_elem_write(&vs->ev_elem, 0, ev, 4);
	virtq_push(q, &vs->ev_elem, vs->ev_elem.in_len >= 4 ? 4 : 0);
	vs->event_pending = false;
	virtio_dev_used(vs->d, EVQ);
}

static void vsock_notify(struct virtio_dev *d, unsigned int q)
{
	struct vsock *vs = d->priv;

	if (q == EVQ)
		vsock_event(vs);
	if (q == TXQ)
		vsock_tx(vs);
	vsock_rx(vs);
}

/* Deferred work from vCPU threads (reset, activate) and budget overruns. */
static void vsock_kicked(void *opaque, int fd, uint32_t events)
{
	struct vsock *vs = opaque;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&vs->d->lock);
	for (unsigned int i = 0; i < VIRTIO_VSOCK_CONN_MAX; i++)
		if (vs->conns[i].state == C_DEAD)
			conn_close(&vs->conns[i], false);
	vsock_event(vs);
	vsock_tx(vs);
	vsock_rx(vs);
	pthread_mutex_unlock(&vs->d->lock);
}

/* Drop every connection from any thread: shut the sockets now (the host
 * peers see EOF at once) and leave closing them to the main thread. */
static void vsock_drop_all(struct vsock *vs)
{
	for (unsigned int i = 0; i < VIRTIO_VSOCK_CONN_MAX; i++) {
		struct conn *c = &vs->conns[i];

		if (c->state != C_FREE) {
			shutdown(c->fd, SHUT_RDWR);
			c->state = C_DEAD;
		}
	}
	vs->rst_len = 0;
	vs->rx_held = false;
	vsock_kick(vs);
}

static int vsock_activate(struct virtio_dev *d)
{
	vsock_kick(d->priv); /* host requests queued while the driver was away */
	return 0;
}

/* 5.10.6.5 on reset: the guest forgets its sockets; so do we. */
static void vsock_reset(struct virtio_dev *d)
{
	struct vsock *vs = d->priv;

	vsock_drop_all(vs);
	vs->event_pending = false;
}

static void vsock_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct vsock *vs = d->priv;
	uint8_t cfg[VSOCK_CONFIG_LEN];

	cv_put_le(cfg, vs->cid, 8);
	memcpy(data, cfg + off, len);
}

static int vsock_save(struct virtio_dev *d, struct state_buf *out)
{
	struct vsock *vs = d->priv;

	state_put_u32(out, VSOCK_STATE_VERSION);
	state_put_u64(out, vs->cid);
	return out->err;
}

/* Connections are not migrated: drop them all and tell the guest with a
 * transport reset event once the device runs (5.10.6.7). The saved CID is
 * checked for range only; this host's --vsock CID is what the guest reads. */
static int vsock_load(struct virtio_dev *d, struct state_rd *in)
{
	struct vsock *vs = d->priv;
	uint32_t version = state_get_u32(in);
	uint64_t cid = state_get_u64(in);

	if (in->err || version != VSOCK_STATE_VERSION || cid < VIRTIO_VSOCK_CID_MIN ||
	    cid > VIRTIO_VSOCK_CID_MAX)
		return -EINVAL;
	vsock_drop_all(vs);
	vs->event_pending = true;
	return 0;
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.num_queues = 3, /* rx, tx, event (5.10.2) */
	.queue_max = VSOCK_QUEUE_MAX,
	.config_len = VSOCK_CONFIG_LEN,
	.config_read = vsock_config_read,
	.activate = vsock_activate,
	.notify = vsock_notify,
	.reset = vsock_reset,
	.save = vsock_save,
	.load = vsock_load,
	.destroy = virtio_vsock_destroy,
};

int virtio_vsock_transport_reset(struct virtio_dev *d)
{
	struct vsock *vs = d->priv;

	pthread_mutex_lock(&d->lock);
	for (unsigned int i = 0; i < VIRTIO_VSOCK_CONN_MAX; i++)
		if (vs->conns[i].state != C_FREE)
			conn_close(&vs->conns[i], false);
	vs->rst_len = 0;
	vs->event_pending = true;
	vsock_event(vs);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

int virtio_vsock_parse(const char *spec, struct virtio_vsock_config *c, struct cv_error *e)
{
	const char *comma = strchr(spec, ',');
	char cid[24] = "";
	size_t n = comma ? (size_t)(comma - spec) : strlen(spec);

	memset(c, 0, sizeof(*c));
	if (n < sizeof(cid))
		memcpy(cid, spec, n);
	if (n >= sizeof(cid) ||
	    cv_parse_uint(cid, VIRTIO_VSOCK_CID_MIN, VIRTIO_VSOCK_CID_MAX, &c->guest_cid)) {
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--vsock: bad CID '%.*s' (want 3..4294967294)",
			       (int)(n < 24 ? n : 24), spec);
	}
	if (!comma) {
		c->uds_default = true;
		snprintf(c->uds_path, sizeof(c->uds_path), "%s/vsock-%llu.sock",
			 VIRTIO_VSOCK_DEFAULT_DIR, (unsigned long long)c->guest_cid);
		return 0;
	}
	if (strncmp(comma + 1, "uds=", 4)) {
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--vsock: unknown option '%s' (want uds=PATH)", comma + 1);
	}
	n = strlen(comma + 5);
	if (!n || n > VIRTIO_VSOCK_PATH_MAX || strchr(comma + 5, ',')) {
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--vsock: uds path must be 1..%d characters, one option",
			       VIRTIO_VSOCK_PATH_MAX);
	}
	memcpy(c->uds_path, comma + 5, n + 1);
	return 0;
}

int virtio_vsock_create(struct virtio_dev *d, const struct virtio_vsock_config *c,
			const struct guest_mem *mem, struct evloop *loop, struct cv_error *e)
{
	struct vsock *vs;
	char err[256];
	int r;

	if (c->guest_cid < VIRTIO_VSOCK_CID_MIN || c->guest_cid > VIRTIO_VSOCK_CID_MAX || !loop ||
	    !c->uds_path[0] || strlen(c->uds_path) > VIRTIO_VSOCK_PATH_MAX)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "vsock: bad CID, socket path or event loop");
	if (!(vs = calloc(1, sizeof(*vs))))
		return cv_fail(e, CV_EXIT_USAGE, -ENOMEM, "vsock: out of memory");
	vs->d = d;
	vs->loop = loop;
	vs->cid = c->guest_cid;
	vs->next_port = HOST_PORT_BASE;
	vs->timer_fd = -1;
	memcpy(vs->path, c->uds_path, strlen(c->uds_path) + 1);
	for (unsigned int i = 0; i < VIRTIO_VSOCK_CONN_MAX; i++)
		vs->conns[i].fd = -1;
	if (c->uds_default)
		mkdir(VIRTIO_VSOCK_DEFAULT_DIR, 0700);
	vs->listen_fd = vsock_listen(vs->path, err, sizeof(err));
	if (vs->listen_fd < 0) {
		r = vs->listen_fd;
		free(vs);
		return cv_fail(e, CV_EXIT_USAGE, r, "%s", err);
	}
	vs->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r = vs->kick_fd < 0 ? -errno : 0;
	virtio_dev_init(d, &vsock_ops, vs, mem, "virtio-vsock");
	if (!r)
		r = evloop_add(loop, vs->listen_fd, EPOLLIN, vsock_accept, vs);
	if (!r)
		r = evloop_add(loop, vs->kick_fd, EPOLLIN, vsock_kicked, vs);
	if (!r && (vs->timer_fd = evloop_add_timer(loop, 1000000000ULL, 1000000000ULL, vsock_timer,
						   vs)) < 0)
		r = vs->timer_fd;
	if (r) {
		virtio_vsock_destroy(d);
		return cv_fail(e, CV_EXIT_USAGE, r, "vsock: event loop: %s", strerror(-r));
	}
	return 0;
}

int virtio_vsock_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
			       const struct virtio_env *env, struct cv_error *e)
{
	struct virtio_vsock_config c;
	int r;

	(void)index;
	if ((r = virtio_vsock_parse(spec, &c, e)))
		return r;
	return virtio_vsock_create(d, &c, env->mem, env->loop, e);
}

void virtio_vsock_destroy(struct virtio_dev *d)
{
	struct vsock *vs = d->priv;

	if (!vs)
		return;
	for (unsigned int i = 0; i < VIRTIO_VSOCK_CONN_MAX; i++)
		if (vs->conns[i].state != C_FREE)
			conn_close(&vs->conns[i], false);
	evloop_del(vs->loop, vs->listen_fd);
	close(vs->listen_fd);
	unlink(vs->path);
	if (vs->kick_fd >= 0) {
		evloop_del(vs->loop, vs->kick_fd);
		close(vs->kick_fd);
	}
	if (vs->timer_fd >= 0) {
		evloop_del(vs->loop, vs->timer_fd);
		close(vs->timer_fd);
	}
	pthread_mutex_destroy(&d->lock);
	free(vs);
	d->priv = NULL;
}
