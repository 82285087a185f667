/* vsock.c - virtio-vsock in user space (virtio 1.2 section 5.10): stream
 * connections between the guest and unix sockets on the host, with the
 * protocol described in include/cvisor/virtio_vsock.h.
 *
 * Threads: queue kicks and socket events run on the main thread with
 * d->lock held. activate() and reset() come from vCPU threads, so they touch
 * no event loop state: reset shuts sockets down and marks them DEAD, and
 * both kick an eventfd whose main-thread handler closes them and resumes
 * work. Handlers reach their connection through a slot of a fixed table,
 * so a stale event finds a free or reused slot, never freed memory. */
#include "cvisor/virtio_vsock.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define VSOCK_QUEUE_MAX 256
#define RXQ 0
#define TXQ 1
#define EVQ 2
#define VSOCK_CONFIG_LEN 8 /* le64 guest_cid (5.10.4) */
#define VSOCK_STATE_VERSION 1
#define HDR_LEN 44 /* struct virtio_vsock_hdr (5.10.6) */
#define TYPE_STREAM 1
#define SHUT_F_RCV 1 /* 5.10.6.5: the sender will receive no more */
#define SHUT_F_SEND 2
#define EVENT_TRANSPORT_RESET 0
#define MAX_PKT (64u << 10) /* payload per packet, either way */
#define RST_MAX 512	    /* RSTs owed to the guest for unknown ports */
#define LINE_MAX_LEN 32	    /* "CONNECT <port>\n" */
#define HANDSHAKE_NS 2000000000ULL
#define BUDGET 256 /* packets per pass before yielding to the loop */
#define HOST_PORT_BASE (1u << 30)

enum {
	OP_REQUEST = 1,
	OP_RESPONSE,
	OP_RST,
	OP_SHUTDOWN,
	OP_RW,
	OP_CREDIT_UPDATE,
	OP_CREDIT_REQUEST
};
enum conn_state { C_FREE, C_HANDSHAKE, C_REQUESTING, C_ESTABLISHED, C_DEAD };
/* Control packets owed to the guest, sent in this order. */
enum { P_REQUEST = 1, P_RESPONSE = 2, P_CREDIT_UPDATE = 4, P_CREDIT_REQUEST = 8, P_SHUTDOWN = 16 };

/* struct virtio_vsock_hdr (5.10.6), packed little-endian: le64 src_cid,
 * dst_cid; le32 src_port, dst_port, len; le16 type, op; le32 flags,
 * buf_alloc, fwd_cnt. Held here as one u64 per field. */
union hdr {
	struct {
		uint64_t src_cid, dst_cid, src_port, dst_port, len, type, op, flags, buf_alloc,
			fwd_cnt;
	};
	uint64_t f[10];
};

static const uint8_t hdr_width[10] = { 8, 8, 4, 4, 4, 2, 2, 4, 4, 4 };

struct vsock;

struct conn {
	struct vsock *vs;
	enum conn_state state;
	int fd;
	uint32_t events; /* what the loop watches; 0 = not registered */
	bool watched;
	uint32_t guest_port, host_port;
	uint8_t pending;
	bool rx_ready;	    /* the socket may have data for the guest */
	bool hup;	    /* the socket hung up: no longer watched */
	bool host_eof;	    /* read EOF: SHUTDOWN(SEND) owed or sent */
	bool wr_shut;	    /* shutdown(SHUT_WR) done after the guest's SEND */
	uint8_t guest_shut; /* SHUTDOWN flags the guest sent */
	/* 5.10.6.3: the guest's buffer and what we sent / what it consumed. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, rx_cnt;
	bool credit_requested;
	/* Our side: bytes written to the socket, as last told to the guest. */
	uint32_t fwd_cnt, fwd_reported;
	uint8_t *buf; /* guest -> host bytes the socket did not take yet */
	uint32_t buf_head, buf_len;
	char line[LINE_MAX_LEN];
	unsigned int line_len;
	uint64_t deadline_ns;
};

struct vsock {
	struct virtio_dev *d;
	struct evloop *loop;
	uint64_t cid;
	char path[VIRTIO_VSOCK_PATH_MAX + 1];
	int listen_fd, kick_fd, timer_fd;
	struct conn conns[VIRTIO_VSOCK_CONN_MAX];
	uint32_t rsts[RST_MAX][2]; /* guest port, host port */
	unsigned int rst_head, rst_len, rr;
	uint32_t next_port;
	bool event_pending, rx_held;
	struct virtq_elem rx_elem, tx_elem, ev_elem;
	bool warned_hdr, warned_cid, warned_credit, warned_small;
};

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void hdr_encode(const union hdr *h, uint8_t *p)
{
	for (unsigned int i = 0; i < 10; p += hdr_width[i], i++)
		put_le(p, h->f[i], hdr_width[i]);
}

static void hdr_decode(union hdr *h, const uint8_t *p)
{
	for (unsigned int i = 0; i < 10; i++)
		for (unsigned int k = 0; k < hdr_width[i]; k++)
			h->f[i] = (k ? h->f[i] : 0) | (uint64_t)*p++ << (8 * k);
}

/* iovecs for bytes [off, off+len) of a chain's readable (out) or writable
 * (in) buffers; returns how many entries, at most VIRTQ_MAX_IOV. */
static unsigned int iov_sub(const struct virtq_elem *e, bool in, uint64_t off, uint64_t len,
			    struct iovec *out)
{
	unsigned int first = in ? e->out_num : 0, end = first + (in ? e->in_num : e->out_num);
	unsigned int n = 0;

	for (unsigned int i = first; i < end && len; i++) {
		uint64_t l = e->iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		out[n++] = (struct iovec){ (uint8_t *)e->iov[i].iov_base + off, l };
		len -= l;
		off = 0;
	}
	return n;
}

static void iov_copy(const struct iovec *iov, unsigned int n, uint8_t *p, bool to_iov)
{
	for (unsigned int i = 0; i < n; p += iov[i].iov_len, i++)
		if (to_iov)
			memcpy(iov[i].iov_base, p, iov[i].iov_len);
		else
			memcpy(p, iov[i].iov_base, iov[i].iov_len);
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

static struct conn *conn_find(struct vsock *vs, uint32_t guest_port, uint32_t host_port)
{
	for (unsigned int i = 0; i < VIRTIO_VSOCK_CONN_MAX; i++) {
		struct conn *c = &vs->conns[i];

		if ((c->state == C_REQUESTING || c->state == C_ESTABLISHED) &&
		    c->guest_port == guest_port && c->host_port == host_port)
			return c;
	}
	return NULL;
}

static struct conn *conn_alloc(struct vsock *vs, int fd)
{
	for (unsigned int i = 0; i < VIRTIO_VSOCK_CONN_MAX; i++) {
		struct conn *c = &vs->conns[i];

		if (c->state == C_FREE) {
			*c = (struct conn){ .vs = vs, .fd = fd };
			return c;
		}
	}
	return NULL;
}

static void rst_queue(struct vsock *vs, uint32_t guest_port, uint32_t host_port)
{
	unsigned int i = (vs->rst_head + vs->rst_len) % RST_MAX;

	if (vs->rst_len == RST_MAX)
		return; /* only a flooding guest gets here; it loses RSTs */
	vs->rsts[i][0] = guest_port;
	vs->rsts[i][1] = host_port;
	vs->rst_len++;
}

/* Close the socket and free the slot, owing the guest an RST if asked. */
static void conn_close(struct conn *c, bool rst)
{
	if (rst &&
	    (c->state == C_ESTABLISHED || (c->state == C_REQUESTING && !(c->pending & P_REQUEST))))
		rst_queue(c->vs, c->guest_port, c->host_port);
	if (c->watched)
		evloop_del(c->vs->loop, c->fd);
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	*c = (struct conn){ .fd = -1 };
}

/* Watch for what the connection can act on (level-triggered). A socket
 * stays registered with no events while it waits for the guest: EPOLLHUP
 * and EPOLLERR still arrive. Once hung up it reports EPOLLHUP whatever we
 * ask for, so it is dropped from the loop and read to its end instead. */
static void conn_watch(struct conn *c)
{
	uint32_t ev = 0;

	if (c->state == C_HANDSHAKE)
		ev = EPOLLIN;
	if (c->state == C_ESTABLISHED) {
		if (!c->rx_ready && !c->host_eof && !(c->guest_shut & SHUT_F_RCV))
			ev |= EPOLLIN;
		if (c->buf_len)
			ev |= EPOLLOUT;
	}
	if (!c->watched || (ev == c->events && !c->hup && c->state != C_DEAD))
		return;
	if (c->hup || c->state == C_DEAD || evloop_mod(c->vs->loop, c->fd, ev)) {
		evloop_del(c->vs->loop, c->fd);
		c->watched = false;
	}
	c->events = ev;
}

static uint32_t conn_credit(const struct conn *c)
{
	uint32_t inflight = c->rx_cnt - c->peer_fwd_cnt;

	return inflight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

/* The socket may have data the guest still wants. */
static bool conn_rx_wanted(const struct conn *c)
{
	return c->state == C_ESTABLISHED && c->rx_ready && !c->host_eof &&
	       !(c->guest_shut & SHUT_F_RCV);
}

/* After guest data reached the socket: tell the guest about the space
 * before its view of our buffer runs out (5.10.6.3). */
static void conn_credit_check(struct conn *c)
{
	if (c->fwd_cnt - c->fwd_reported >= VIRTIO_VSOCK_BUF_ALLOC / 2)
		c->pending |= P_CREDIT_UPDATE;
}

/* Both directions are finished: reset the connection (5.10.6.5: a clean
 * shutdown ends with an RST from the peer). */
static void conn_check_done(struct conn *c)
{
	if (c->state != C_ESTABLISHED || c->buf_len)
		return;
	if (c->guest_shut & SHUT_F_SEND && !c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
	if (c->guest_shut == (SHUT_F_RCV | SHUT_F_SEND) ||
	    (c->guest_shut & SHUT_F_SEND && c->host_eof && !(c->pending & P_SHUTDOWN)))
		conn_close(c, true);
}

static void conn_flush(struct conn *c)
{
	while (c->buf_len) {
		uint32_t n = VIRTIO_VSOCK_BUF_ALLOC - c->buf_head;
		struct iovec iov[2] = { { c->buf + c->buf_head, n < c->buf_len ? n : c->buf_len },
					{ c->buf, n < c->buf_len ? c->buf_len - n : 0 } };
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t w = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0) {
			conn_close(c, true);
			return;
		}
		c->buf_head = (c->buf_head + (uint32_t)w) % VIRTIO_VSOCK_BUF_ALLOC;
		c->buf_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
	}
	conn_credit_check(c);
	conn_check_done(c);
	if (c->state != C_FREE)
		conn_watch(c);
}

/* OP_RW from the guest: straight to the socket when nothing is queued,
 * the rest into the connection's buffer, which the credit we advertised
 * bounds (buf_alloc = VIRTIO_VSOCK_BUF_ALLOC). */
static void conn_from_guest(struct conn *c, const struct virtq_elem *e, uint32_t len)
{
	struct iovec iov[VIRTQ_MAX_IOV];
	unsigned int n = iov_sub(e, false, HDR_LEN, len, iov);
	uint32_t done = 0;

	if (c->buf_len + (uint64_t)len > VIRTIO_VSOCK_BUF_ALLOC) {
		if (!c->vs->warned_credit)
			cv_warn("%s: guest sent beyond its credit; connection reset",
				c->vs->d->label);
		c->vs->warned_credit = true;
		conn_close(c, true);
		return;
	}
	if (!c->buf_len) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
		ssize_t w = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			conn_close(c, true);
			return;
		}
		done = w > 0 ? (uint32_t)w : 0;
		c->fwd_cnt += done;
	}
	if (done < len && !c->buf && !(c->buf = malloc(VIRTIO_VSOCK_BUF_ALLOC))) {
		conn_close(c, true);
		return;
	}
	for (unsigned int i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		uint32_t l = (uint32_t)iov[i].iov_len;

		if (done >= l) {
			done -= l;
			continue;
		}
		p += done;
		l -= done;
		done = 0;
		while (l) {
			uint32_t tail = (c->buf_head + c->buf_len) % VIRTIO_VSOCK_BUF_ALLOC;
			uint32_t k = VIRTIO_VSOCK_BUF_ALLOC - tail < l
					     ? VIRTIO_VSOCK_BUF_ALLOC - tail
					     : l;

			memcpy(c->buf + tail, p, k);
			c->buf_len += k;
			p += k;
			l -= k;
		}
	}
	conn_credit_check(c);
	conn_watch(c);
}

static int unix_addr(struct sockaddr_un *a, const char *path, int64_t port)
{
	int n;

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = port >= 0 ? snprintf(a->sun_path, sizeof(a->sun_path), "%s_%lld", path, (long long)port)
		      : snprintf(a->sun_path, sizeof(a->sun_path), "%s", path);
	return n < 0 || (size_t)n >= sizeof(a->sun_path) ? -ENAMETOOLONG : 0;
}

static void conn_io(void *opaque, int fd, uint32_t events);

/* The guest connects to host port P: connect to the unix socket PATH_P.
 * A unix connect completes (or fails) at once. */
static void guest_connect(struct vsock *vs, const union hdr *h)
{
	struct sockaddr_un a;
	struct conn *c;
	int fd;

	if (unix_addr(&a, vs->path, (int64_t)h->dst_port)) {
		rst_queue(vs, h->src_port, h->dst_port);
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) || !(c = conn_alloc(vs, fd)) ||
	    evloop_add(vs->loop, fd, EPOLLIN, conn_io, c)) {
		if (fd >= 0)
			close(fd);
		rst_queue(vs, h->src_port, h->dst_port);
		return;
	}
	c->state = C_ESTABLISHED;
	c->watched = true;
	c->events = EPOLLIN;
	c->guest_port = h->src_port;
	c->host_port = h->dst_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending = P_RESPONSE;
}

/* One packet from the guest's tx queue (5.10.6.4, 5.10.6.5). */
static void vsock_tx_packet(struct vsock *vs, const struct virtq_elem *e)
{
	uint8_t raw[HDR_LEN];
	struct iovec iov[VIRTQ_MAX_IOV];
	union hdr h;
	struct conn *c;

	if (e->out_len < HDR_LEN) {
		if (!vs->warned_hdr)
			cv_warn("%s: tx packet shorter than a header, dropped", vs->d->label);
		vs->warned_hdr = true;
		return;
	}
	iov_copy(iov, iov_sub(e, false, 0, HDR_LEN, iov), raw, false);
	hdr_decode(&h, raw);
	/* 5.10.6.4.2: a packet that is not from the guest's own CID cannot be
	 * answered; drop it. */
	if (h.src_cid != vs->cid) {
		if (!vs->warned_cid)
			cv_warn("%s: packet from CID %llu, not the guest's, dropped", vs->d->label,
				(unsigned long long)h.src_cid);
		vs->warned_cid = true;
		return;
	}
	c = conn_find(vs, h.src_port, h.dst_port);
	if (h.dst_cid != VIRTIO_VSOCK_HOST_CID || h.type != TYPE_STREAM ||
	    h.len > e->out_len - HDR_LEN || h.len > MAX_PKT || h.op < OP_REQUEST ||
	    h.op > OP_CREDIT_REQUEST) {
		if (c)
			conn_close(c, true);
		else if (h.op != OP_RST)
			rst_queue(vs, h.src_port, h.dst_port);
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
			guest_connect(vs, &h);
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
			rst_queue(vs, h.src_port, h.dst_port);
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

static void vsock_rx_push(struct vsock *vs, union hdr *h, struct conn *c)
{
	uint8_t raw[HDR_LEN];
	struct iovec iov[VIRTQ_MAX_IOV];

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
	iov_copy(iov, iov_sub(&vs->rx_elem, true, 0, HDR_LEN, iov), raw, true);
	virtq_push(&vs->d->vqs[RXQ], &vs->rx_elem, HDR_LEN + h->len);
	vs->rx_held = false;
}

/* Data from the socket straight into the guest's buffer, within its
 * credit. Returns true if a packet was pushed. */
static bool conn_to_guest(struct vsock *vs, struct conn *c)
{
	struct iovec iov[VIRTQ_MAX_IOV];
	uint64_t room = vs->rx_elem.in_len - HDR_LEN;
	uint32_t max = conn_credit(c);
	struct msghdr m = { .msg_iov = iov };
	union hdr h = { .op = OP_RW };
	ssize_t n;

	if (max > room)
		max = (uint32_t)room;
	if (max > MAX_PKT)
		max = MAX_PKT;
	m.msg_iovlen = iov_sub(&vs->rx_elem, true, HDR_LEN, max, iov);
	n = recvmsg(c->fd, &m, MSG_DONTWAIT);
	if (n > 0) {
		h.len = (uint32_t)n;
		c->rx_cnt += (uint32_t)n;
		vsock_rx_push(vs, &h, c);
		return true;
	}
	c->rx_ready = false;
	if (n == 0) {
		c->host_eof = true; /* 5.10.6.5: tell the guest we send no more */
		c->pending |= P_SHUTDOWN;
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		conn_close(c, true);
		return false;
	}
	conn_watch(c);
	return false;
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
static void vsock_rx(struct vsock *vs)
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
	put_le(ev, EVENT_TRANSPORT_RESET, 4);
	if (vs->ev_elem.in_len >= 4) {
		struct iovec iov[4];

		iov_copy(iov, iov_sub(&vs->ev_elem, true, 0, 4, iov), ev, true);
	}
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

/* Host side: read "CONNECT <port>\n" one byte at a time, so that nothing
 * after the line is taken from the stream. */
static void conn_handshake(struct vsock *vs, struct conn *c)
{
	uint64_t port;
	char ch;

	for (;;) {
		ssize_t n = recv(c->fd, &ch, 1, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0 || c->line_len == LINE_MAX_LEN - 1) {
			conn_close(c, false);
			return;
		}
		if (ch == '\n')
			break;
		c->line[c->line_len++] = ch;
	}
	if (c->line_len && c->line[c->line_len - 1] == '\r')
		c->line_len--;
	c->line[c->line_len] = '\0';
	if (strncmp(c->line, "CONNECT ", 8) || cv_parse_uint(c->line + 8, 0, UINT32_MAX, &port)) {
		conn_close(c, false);
		return;
	}
	do {
		c->host_port = vs->next_port++;
		if (vs->next_port < HOST_PORT_BASE)
			vs->next_port = HOST_PORT_BASE;
	} while (conn_find(vs, (uint32_t)port, c->host_port));
	c->guest_port = (uint32_t)port;
	c->state = C_REQUESTING;
	c->pending = P_REQUEST;
	c->deadline_ns = cv_now_ns() + HANDSHAKE_NS;
	conn_watch(c);
}

static void conn_io(void *opaque, int fd, uint32_t events)
{
	struct conn *c = opaque;
	struct vsock *vs = c->vs;

	if (!vs || c->fd != fd)
		return; /* a stale event for a slot closed meanwhile */
	pthread_mutex_lock(&vs->d->lock);
	if (c->state == C_DEAD) {
		conn_close(c, false);
	} else if (c->state == C_HANDSHAKE) {
		conn_handshake(vs, c);
	} else if (events & EPOLLERR) {
		conn_close(c, true);
	} else if (c->state == C_REQUESTING) {
		conn_close(c, true); /* the host gave up before the guest answered */
	} else {
		if (events & (EPOLLHUP | EPOLLIN))
			c->rx_ready = true;
		if (events & EPOLLHUP)
			c->hup = true;
		if (events & EPOLLOUT)
			conn_flush(c);
		if (c->state == C_ESTABLISHED)
			conn_watch(c);
	}
	vsock_rx(vs);
	pthread_mutex_unlock(&vs->d->lock);
}

static void vsock_accept(void *opaque, int fd, uint32_t events)
{
	struct vsock *vs = opaque;

	(void)events;
	pthread_mutex_lock(&vs->d->lock);
	for (unsigned int i = 0; i < 16; i++) {
		int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (s < 0)
			break;
		if (!(c = conn_alloc(vs, s)) || evloop_add(vs->loop, s, EPOLLIN, conn_io, c)) {
			if (c)
				*c = (struct conn){ .fd = -1 };
			close(s);
			continue;
		}
		c->state = C_HANDSHAKE;
		c->watched = true;
		c->events = EPOLLIN;
		c->deadline_ns = cv_now_ns() + HANDSHAKE_NS;
	}
	pthread_mutex_unlock(&vs->d->lock);
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

/* Handshakes that take too long are dropped (once a request reached the
 * guest, with an RST so that it forgets the half-open connection). */
static void vsock_timer(void *opaque, int fd, uint32_t events)
{
	struct vsock *vs = opaque;
	uint64_t v, now = cv_now_ns();

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&vs->d->lock);
	for (unsigned int i = 0; i < VIRTIO_VSOCK_CONN_MAX; i++) {
		struct conn *c = &vs->conns[i];

		if ((c->state == C_HANDSHAKE || c->state == C_REQUESTING) && now > c->deadline_ns)
			conn_close(c, true);
	}
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

	put_le(cfg, vs->cid, 8);
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

int virtio_vsock_parse(const char *spec, struct virtio_vsock_config *c, char *err, size_t errlen)
{
	const char *comma = strchr(spec, ',');
	char cid[24] = "";
	size_t n = comma ? (size_t)(comma - spec) : strlen(spec);

	memset(c, 0, sizeof(*c));
	if (n < sizeof(cid))
		memcpy(cid, spec, n);
	if (n >= sizeof(cid) ||
	    cv_parse_uint(cid, VIRTIO_VSOCK_CID_MIN, VIRTIO_VSOCK_CID_MAX, &c->guest_cid)) {
		snprintf(err, errlen, "--vsock: bad CID '%.*s' (want 3..4294967294)",
			 (int)(n < 24 ? n : 24), spec);
		return -EINVAL;
	}
	if (!comma) {
		c->uds_default = true;
		snprintf(c->uds_path, sizeof(c->uds_path), "%s/vsock-%llu.sock",
			 VIRTIO_VSOCK_DEFAULT_DIR, (unsigned long long)c->guest_cid);
		return 0;
	}
	if (strncmp(comma + 1, "uds=", 4)) {
		snprintf(err, errlen, "--vsock: unknown option '%s' (want uds=PATH)", comma + 1);
		return -EINVAL;
	}
	n = strlen(comma + 5);
	if (!n || n > VIRTIO_VSOCK_PATH_MAX || strchr(comma + 5, ',')) {
		snprintf(err, errlen, "--vsock: uds path must be 1..%d characters, one option",
			 VIRTIO_VSOCK_PATH_MAX);
		return -EINVAL;
	}
	memcpy(c->uds_path, comma + 5, n + 1);
	return 0;
}

/* Listen on path; replace a stale socket file, refuse a live one. */
static int vsock_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a;
	struct stat st;
	int fd, r;

	if (unix_addr(&a, path, -1))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode)) {
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) {
			close(fd);
			snprintf(err, errlen, "vsock: %s is in use by another process", path);
			return -EADDRINUSE;
		}
		unlink(path);
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 64)) {
		r = -errno;
		close(fd);
		snprintf(err, errlen,
			 "vsock: cannot listen on %s: %s (choose another with uds=PATH)", path,
			 strerror(-r));
		return r;
	}
	return fd;
}

int virtio_vsock_create(struct virtio_dev *d, const struct virtio_vsock_config *c,
			const struct guest_mem *mem, struct evloop *loop, char *err, size_t errlen)
{
	struct vsock *vs;
	int r;

	snprintf(err, errlen, "vsock: out of memory");
	if (c->guest_cid < VIRTIO_VSOCK_CID_MIN || c->guest_cid > VIRTIO_VSOCK_CID_MAX || !loop ||
	    !c->uds_path[0] || strlen(c->uds_path) > VIRTIO_VSOCK_PATH_MAX) {
		snprintf(err, errlen, "vsock: bad CID, socket path or event loop");
		return -EINVAL;
	}
	if (!(vs = calloc(1, sizeof(*vs))))
		return -ENOMEM;
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
	vs->listen_fd = vsock_listen(vs->path, err, errlen);
	if (vs->listen_fd < 0) {
		r = vs->listen_fd;
		free(vs);
		return r;
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
		snprintf(err, errlen, "vsock: event loop: %s", strerror(-r));
		virtio_vsock_destroy(d);
	}
	return r;
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
