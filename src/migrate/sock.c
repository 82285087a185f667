/* sock.c - the migration's sockets: HOST:PORT addresses, connecting and
 * listening with the timeouts a migration needs, and moving bytes: whole
 * iovecs out (without blocking when the sender has an event loop to run)
 * and the stream in, through the receive parser (rx.c), until an event. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "migrate_priv.h"

int migrate_parse_addr(const char *s, char *host, size_t hostlen, char *port, size_t portlen,
		       char *err, size_t errlen)
{
	const char *colon, *h = s;
	size_t hl;
	uint64_t p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			goto bad;
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			goto bad;
		hl = (size_t)(colon - s);
	}
	if (!hl || hl >= hostlen || cv_parse_uint(colon + 1, 1, 65535, &p) ||
	    strlen(colon + 1) >= portlen)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = 0;
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not HOST:PORT (e.g. 10.0.0.2:4444, [::1]:4444)", s);
	return -EINVAL;
}

static int resolve(const char *addr, bool passive, struct addrinfo **res, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	char host[256], port[8];
	int r;

	if (migrate_parse_addr(addr, host, sizeof(host), port, sizeof(port), err, errlen))
		return -EINVAL;
	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	r = getaddrinfo(host, port, &hints, res);
	if (r) {
		snprintf(err, errlen, "%s: %s", addr, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	return 0;
}

void mig_tune(int fd)
{
	int one = 1;
	unsigned int user_timeout = MIG_LINK_TIMEOUT_MS;

	/* The small messages at the end (state, END, "running") are on the
	 * downtime path: no Nagle delay. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A peer that vanished (a cut link, a powered-off host) fails the
	 * migration after this long with data unacknowledged, not after the
	 * ~15 minutes of TCP's retransmissions: the source resumes sooner. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

/* Connect fd to a within MIG_CONNECT_TIMEOUT_S (an address that drops
 * packets would otherwise take TCP's minutes), without blocking: the
 * sender's event loop runs meanwhile (tx's pump: devices, the control
 * socket), and a cancel it records (tx->err: cvisor kill, a poweroff)
 * ends the wait at once. 0 or -errno. */
static int connect_pumped(int fd, const struct addrinfo *a, struct mig_tx *tx)
{
	uint64_t deadline = cv_now_ns() + MIG_CONNECT_TIMEOUT_S * 1000000000ULL;
	int e = 0;
	socklen_t len = sizeof(e);

	if (!connect(fd, a->ai_addr, a->ai_addrlen))
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	for (;;) {
		struct pollfd p = { fd, POLLOUT, 0 };
		int n = poll(&p, 1, 10);

		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			break;
		mig_tx_pump(tx, true);
		if (tx->err)
			return tx->err;
		if (cv_now_ns() >= deadline)
			return -ETIMEDOUT;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len))
		return -errno;
	return -e;
}

/* A socket on the first address of res that works: connected (through
 * connect_pumped), or bound and listening. The fd, or -errno of the last
 * failure (tx's cancel at once). */
static int sock_open(const struct addrinfo *res, struct mig_tx *tx)
{
	int e = tx ? -ECONNREFUSED : -EADDRNOTAVAIL, one = 1;

	for (const struct addrinfo *a = res; a; a = a->ai_next) {
		int fd = socket(a->ai_family,
				a->ai_socktype | SOCK_CLOEXEC | (tx ? SOCK_NONBLOCK : 0),
				a->ai_protocol);

		if (fd < 0) {
			e = -errno;
			continue;
		}
		if (!tx) {
			(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (!bind(fd, a->ai_addr, a->ai_addrlen) && !listen(fd, 1))
				return fd;
			e = -errno;
		} else if (!(e = connect_pumped(fd, a, tx))) {
			/* Blocking from here, as the senders expect. */
			(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			return fd;
		}
		close(fd);
		if (tx && tx->err)
			return tx->err;
	}
	return e;
}

int mig_connect(const char *addr, struct mig_tx *tx, char *err, size_t errlen)
{
	struct addrinfo *res;
	int fd;

	if ((fd = resolve(addr, false, &res, err, errlen)))
		return fd;
	fd = sock_open(res, tx);
	freeaddrinfo(res);
	if (fd < 0 && fd == tx->err)
		return fd; /* cancelled: the caller says why */
	if (fd < 0)
		return cv_errf(err, errlen, fd,
			       "cannot connect to %s: %s (is `cvisor run --incoming %s` waiting "
			       "there?)",
			       addr, strerror(-fd), addr);
	mig_tune(fd);
	return fd;
}

int mig_listen(const char *addr, char *err, size_t errlen)
{
	struct addrinfo *res;
	int fd;

	if ((fd = resolve(addr, true, &res, err, errlen)))
		return fd;
	fd = sock_open(res, NULL);
	freeaddrinfo(res);
	if (fd < 0)
		return cv_errf(err, errlen, fd, "cannot listen on %s: %s", addr, strerror(-fd));
	return fd;
}

int mig_send_iov(int fd, struct mig_tls *tls, struct iovec *iov, int n, int (*wait)(void *ctx),
		 void *ctx)
{
	/* A stream that takes nothing for MIG_LINK_TIMEOUT_MS is broken, as
	 * TCP_USER_TIMEOUT says of a TCP one: a passed socketpair (the
	 * client's TLS relay) has no such limit of its own, and a stopped
	 * client would otherwise hold a paused guest for ever. */
	uint64_t stalled_since = 0;

	if (tls)
		return mig_tls_send_iov(tls, iov, n, wait, ctx);
	while (n) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL | (wait ? MSG_DONTWAIT : 0));

		if (w < 0) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			uint64_t now = cv_now_ns();
			int r;

			if (errno == EINTR)
				continue;
			if (!wait || (errno != EAGAIN && errno != EWOULDBLOCK))
				return -errno;
			if (!stalled_since)
				stalled_since = now;
			else if (now - stalled_since > MIG_LINK_TIMEOUT_MS * 1000000ULL)
				return -ETIMEDOUT;
			if (poll(&p, 1, 10) < 0 && errno != EINTR)
				return -errno;
			if ((r = wait(ctx)))
				return r;
			continue;
		}
		stalled_since = 0;
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Like recvmsg(MSG_DONTWAIT) into iov: through tls when not NULL, with
 * its failures as rx's (-EINVAL, "TLS: why"). */
static ssize_t recv_some(int fd, struct mig_tls *tls, struct mig_rx *rx, struct iovec *iov,
			 unsigned int n)
{
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
	ssize_t got;

	if (!tls)
		return recvmsg(fd, &m, MSG_DONTWAIT);
	got = mig_tls_readv(tls, iov, n);
	if (got >= 0)
		return got;
	if (got == -EPROTO) {
		snprintf(rx->err, sizeof(rx->err), "TLS: %s", mig_tls_error(tls));
		errno = EBADMSG;
	} else {
		errno = (int)-got;
	}
	return -1;
}

int mig_recv_event(int fd, struct mig_tls *tls, struct mig_rx *rx, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? 0 : cv_now_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		struct iovec iov[MIG_BATCH_PAGES];
		unsigned int n = mig_rx_want(rx, iov, MIG_BATCH_PAGES);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t got;
		int ev, wait = -1;

		if (!n)
			return -EINVAL;
		/* Read first: in a busy stream data is there, and a poll per
		 * read would double the system calls. */
		got = recv_some(fd, tls, rx, iov, n);
		if (got > 0) {
			if ((ev = mig_rx_advance(rx, (size_t)got)))
				return ev;
			continue;
		}
		if (!got)
			return -ECONNRESET;
		if (errno == EBADMSG && tls)
			return -EINVAL;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (timeout_ms >= 0) {
			uint64_t now = cv_now_ns();

			if (now >= deadline)
				return -ETIMEDOUT;
			wait = (int)((deadline - now + 999999) / 1000000);
		}
		ev = poll(&p, 1, wait);
		if (ev < 0 && errno != EINTR)
			return -errno;
		if (!ev)
			return -ETIMEDOUT;
	}
}
