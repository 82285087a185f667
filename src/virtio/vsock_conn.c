/* vsock_conn.c - the host end of virtio-vsock connections: the fixed
 * connection table, the unix sockets behind it (the listener, the
 * "CONNECT <port>" handshake, connects to PATH_<port>), and the bytes
 * between a socket and the guest's buffers within the credit of 5.10.6.3.
 * Threads and slot reuse: see vsock.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vsock_priv.h"

struct conn *conn_find(struct vsock *vs, uint32_t guest_port, uint32_t host_port)
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

void vsock_rst_queue(struct vsock *vs, uint32_t guest_port, uint32_t host_port)
{
	unsigned int i = (vs->rst_head + vs->rst_len) % RST_MAX;

	if (vs->rst_len == RST_MAX)
		return; /* only a flooding guest gets here; it loses RSTs */
	vs->rsts[i][0] = guest_port;
	vs->rsts[i][1] = host_port;
	vs->rst_len++;
}

/* Close the socket and free the slot, owing the guest an RST if asked. */
void conn_close(struct conn *c, bool rst)
{
	if (rst &&
	    (c->state == C_ESTABLISHED || (c->state == C_REQUESTING && !(c->pending & P_REQUEST))))
		vsock_rst_queue(c->vs, c->guest_port, c->host_port);
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
void conn_watch(struct conn *c)
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

uint32_t conn_credit(const struct conn *c)
{
	uint32_t inflight = c->rx_cnt - c->peer_fwd_cnt;

	return inflight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

/* The socket may have data the guest still wants. */
bool conn_rx_wanted(const struct conn *c)
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
void conn_check_done(struct conn *c)
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

void conn_flush(struct conn *c)
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
void conn_from_guest(struct conn *c, const struct virtq_elem *e, uint32_t len)
{
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
		struct virtq_iov v;
		struct msghdr m = { .msg_iov = v.iov };
		ssize_t w;

		(void)virtq_elem_slice(e, VIRTQ_OUT, HDR_LEN, len, &v);
		m.msg_iovlen = v.n;
		w = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
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
	/* The rest into the ring buffer, in two pieces where it wraps (len
	 * was checked against the readable part: the reads are never short). */
	while (done < len) {
		uint32_t tail = (c->buf_head + c->buf_len) % VIRTIO_VSOCK_BUF_ALLOC;
		uint32_t k = VIRTIO_VSOCK_BUF_ALLOC - tail < len - done
				     ? VIRTIO_VSOCK_BUF_ALLOC - tail
				     : len - done;

		k = (uint32_t)virtq_elem_read(e, HDR_LEN + (uint64_t)done, c->buf + tail, k);
		if (!k)
			break;
		c->buf_len += k;
		done += k;
	}
	conn_credit_check(c);
	conn_watch(c);
}

/* Data from the socket straight into the guest's buffer, within its
 * credit. Returns true if a packet was pushed. */
bool conn_to_guest(struct vsock *vs, struct conn *c)
{
	struct virtq_iov v;
	uint64_t room = vs->rx_elem.in_len - HDR_LEN;
	uint32_t max = conn_credit(c);
	struct msghdr m = { .msg_iov = v.iov };
	union hdr h = { .op = OP_RW };
	ssize_t n;

	if (max > room)
		max = (uint32_t)room;
	if (max > MAX_PKT)
		max = MAX_PKT;
	/* recvmsg fills the slice; the push of its n bytes marks them dirty. */
	(void)virtq_elem_slice(&vs->rx_elem, VIRTQ_IN, HDR_LEN, max, &v);
	m.msg_iovlen = v.n;
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
void vsock_guest_connect(struct vsock *vs, const union hdr *h)
{
	struct sockaddr_un a;
	struct conn *c;
	int fd;

	if (unix_addr(&a, vs->path, (int64_t)h->dst_port)) {
		vsock_rst_queue(vs, h->src_port, h->dst_port);
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) || !(c = conn_alloc(vs, fd)) ||
	    evloop_add(vs->loop, fd, EPOLLIN, conn_io, c)) {
		if (fd >= 0)
			close(fd);
		vsock_rst_queue(vs, h->src_port, h->dst_port);
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

void vsock_accept(void *opaque, int fd, uint32_t events)
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

/* Handshakes that take too long are dropped (once a request reached the
 * guest, with an RST so that it forgets the half-open connection). */
void vsock_timer(void *opaque, int fd, uint32_t events)
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

/* Listen on path; replace a stale socket file, refuse a live one. */
int vsock_listen(const char *path, char *err, size_t errlen)
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
