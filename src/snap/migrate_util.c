/* migrate_util.c - what both ends of a migration share: the convergence
 * decision, addresses and sockets, and the sending side's batches. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "migrate_priv.h"

/* ---- convergence ---- */

enum migrate_decision migrate_decide(const struct migrate_converge *c, uint64_t *expected_us)
{
	uint64_t target_us = c->downtime_ms * 1000;
	bool hopeless;

	*expected_us = UINT64_MAX;
	if (!c->bandwidth)
		return c->remaining ? MIGRATE_CONTINUE : MIGRATE_STOP;
	/* remaining / bandwidth in microseconds, without overflow for any
	 * remaining below 2^44 bytes (16 TiB). */
	*expected_us =
		(uint64_t)((double)c->remaining * 1e6 / (double)c->bandwidth) + c->overhead_us;
	if (*expected_us <= target_us)
		return MIGRATE_STOP;
	hopeless = c->round >= c->max_rounds || c->stalled >= MIGRATE_STALL_ROUNDS;
	if (!hopeless)
		return MIGRATE_CONTINUE;
	return c->force ? MIGRATE_STOP : MIGRATE_GIVE_UP;
}

unsigned int migrate_stall_count(unsigned int stalled, uint64_t prev, uint64_t remaining)
{
	/* Less than 10% smaller than the round before: no headway. */
	return remaining * 10 > prev * 9 ? stalled + 1 : 0;
}

void migrate_opts_init(struct migrate_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->downtime_ms = MIGRATE_DEFAULT_DOWNTIME_MS;
	o->max_rounds = MIGRATE_DEFAULT_MAX_ROUNDS;
	o->force = true;
}

/* ---- addresses and sockets ---- */

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

/* A socket on the first address of res that works: connected (within
 * MIG_CONNECT_TIMEOUT_S: an address that drops packets would otherwise
 * hold the guest's event loop for minutes) or bound and listening. The
 * fd, or -errno of the last failure. */
static int sock_open(const struct addrinfo *res, bool listening)
{
	struct timeval to = { MIG_CONNECT_TIMEOUT_S, 0 }, none = { 0, 0 };
	int e = listening ? EADDRNOTAVAIL : ECONNREFUSED, one = 1;

	for (const struct addrinfo *a = res; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);

		if (fd < 0) {
			e = errno;
			continue;
		}
		if (listening) {
			(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (!bind(fd, a->ai_addr, a->ai_addrlen) && !listen(fd, 1))
				return fd;
			e = errno;
		} else {
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &to, sizeof(to));
			if (!connect(fd, a->ai_addr, a->ai_addrlen)) {
				(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
				return fd;
			}
			e = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno;
		}
		close(fd);
	}
	return -e;
}

int mig_connect(const char *addr, char *err, size_t errlen)
{
	struct addrinfo *res;
	int fd;

	if ((fd = resolve(addr, false, &res, err, errlen)))
		return fd;
	fd = sock_open(res, false);
	freeaddrinfo(res);
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
	fd = sock_open(res, true);
	freeaddrinfo(res);
	if (fd < 0)
		return cv_errf(err, errlen, fd, "cannot listen on %s: %s", addr, strerror(-fd));
	return fd;
}

/* Write all of iov. With tx (a sending side with a pump), the socket is
 * written without blocking: while it is full the pump runs every 10 ms,
 * and a cancel it records (tx->err) ends the wait. */
static int send_iov(int fd, struct iovec *iov, int n, struct mig_tx *tx)
{
	while (n) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL | (tx ? MSG_DONTWAIT : 0));

		if (w < 0) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (errno == EINTR)
				continue;
			if (!tx || (errno != EAGAIN && errno != EWOULDBLOCK))
				return -errno;
			if (poll(&p, 1, 10) < 0 && errno != EINTR)
				return -errno;
			mig_tx_pump(tx, true);
			if (tx->err)
				return tx->err;
			continue;
		}
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

int mig_send_iov(int fd, struct iovec *iov, int n)
{
	return send_iov(fd, iov, n, NULL);
}

int mig_recv_event(int fd, struct mig_rx *rx, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? 0 : mig_now() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		struct iovec iov[MIG_BATCH_PAGES];
		unsigned int n = mig_rx_want(rx, iov, MIG_BATCH_PAGES);
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t got;
		int ev, wait = -1;

		if (!n)
			return -EINVAL;
		/* Read first: in a busy stream data is there, and a poll per
		 * read would double the system calls. */
		got = recvmsg(fd, &m, MSG_DONTWAIT);
		if (got > 0) {
			if ((ev = mig_rx_advance(rx, (size_t)got)))
				return ev;
			continue;
		}
		if (!got)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (timeout_ms >= 0) {
			uint64_t now = mig_now();

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

/* ---- the sending side ---- */

int mig_tx_init(struct mig_tx *tx, int fd, bool disks, uint64_t max_bw)
{
	memset(tx, 0, sizeof(*tx));
	tx->fd = fd;
	tx->max_bw = max_bw;
	tx->bw_start_ns = mig_now();
	tx->pdata = malloc((size_t)MIG_BATCH_PAGES * MIG_PAGE_SIZE);
	if (disks)
		tx->ddata = malloc(MIG_DISK_BATCH_DATA);
	if (!tx->pdata || (disks && !tx->ddata)) {
		mig_tx_free(tx);
		return -ENOMEM;
	}
	return 0;
}

void mig_tx_free(struct mig_tx *tx)
{
	free(tx->pdata);
	free(tx->ddata);
	tx->pdata = tx->ddata = NULL;
}

void mig_tx_pump(struct mig_tx *tx, bool now)
{
	uint64_t t;

	if (!tx->pump)
		return;
	t = mig_now();
	if (!now && t - tx->last_pump_ns < 20 * 1000000ULL)
		return;
	tx->last_pump_ns = t;
	tx->pump(tx->pump_ctx);
}

/* --max-bandwidth: sleep until the bytes sent fit the rate. */
static void throttle(struct mig_tx *tx, uint64_t n)
{
	uint64_t due, now;

	if (!tx->max_bw)
		return;
	tx->bw_bytes += n;
	due = tx->bw_start_ns + (uint64_t)((double)tx->bw_bytes * 1e9 / (double)tx->max_bw);
	now = mig_now();
	/* In slices, with the pump between them: a throttled batch may take
	 * seconds, and the guest's devices go on meanwhile. */
	while (due > now && !tx->err) {
		uint64_t d = due - now < 10000000 ? due - now : 10000000;
		struct timespec ts = { 0, (long)d };

		nanosleep(&ts, NULL);
		mig_tx_pump(tx, true);
		now = mig_now();
	}
}

static void tx_send(struct mig_tx *tx, struct iovec *iov, int n)
{
	uint64_t total = 0;
	int r;

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (tx->err)
		return;
	if ((r = send_iov(tx->fd, iov, n, tx->pump ? tx : NULL))) {
		tx->err = r;
		return;
	}
	tx->bytes += total;
	throttle(tx, total);
	mig_tx_pump(tx, false);
	if (tx->after_send)
		tx->after_send(tx->after_ctx);
}

static void flush_pages(struct mig_tx *tx)
{
	uint32_t body = 4 + tx->pcount * MIG_PAGE_REC_SIZE + tx->pndata * MIG_PAGE_SIZE;
	uint8_t crc[4];
	uint32_t c;
	struct iovec iov[4];

	if (!tx->pcount)
		return;
	mig_put_header(tx->phead, MIG_MSG_PAGES, body);
	cv_put_le(tx->phead + MIG_HDR_SIZE, tx->pcount, 4);
	c = cv_crc32(0, tx->phead, sizeof(tx->phead));
	c = cv_crc32(c, tx->precs, tx->pcount * MIG_PAGE_REC_SIZE);
	/* The data's CRC was taken as it was copied out of guest RAM. */
	c = cv_crc32_combine(c, tx->pdata_crc, (uint64_t)tx->pndata * MIG_PAGE_SIZE);
	cv_put_le(crc, c, 4);
	iov[0] = (struct iovec){ tx->phead, sizeof(tx->phead) };
	iov[1] = (struct iovec){ tx->precs, tx->pcount * MIG_PAGE_REC_SIZE };
	iov[2] = (struct iovec){ tx->pdata, (size_t)tx->pndata * MIG_PAGE_SIZE };
	iov[3] = (struct iovec){ crc, 4 };
	tx_send(tx, iov, 4);
	tx->pcount = tx->pndata = 0;
	tx->pdata_crc = 0;
}

void mig_tx_page(struct mig_tx *tx, uint64_t gpa, const uint8_t *hva)
{
	uint8_t *rec = tx->precs + tx->pcount * MIG_PAGE_REC_SIZE;
	bool zero = mig_page_is_zero(hva);

	cv_put_le(rec, gpa, 8);
	cv_put_le(rec + 8, zero ? MIG_REC_ZERO : 0, 4);
	cv_put_le(rec + 12, 0, 4);
	if (!zero)
		tx->pdata_crc = cv_crc32_copy(tx->pdata_crc,
					      tx->pdata + (size_t)tx->pndata++ * MIG_PAGE_SIZE, hva,
					      MIG_PAGE_SIZE);
	tx->pages++;
	tx->zero_pages += zero;
	if (++tx->pcount == MIG_BATCH_PAGES)
		flush_pages(tx);
}

static void flush_disk(struct mig_tx *tx)
{
	uint32_t body = 4 + tx->dcount * MIG_DISK_REC_SIZE + tx->dndata;
	uint8_t crc[4];
	uint32_t c;
	struct iovec iov[4];

	if (!tx->dcount)
		return;
	mig_put_header(tx->dhead, MIG_MSG_DISK, body);
	cv_put_le(tx->dhead + MIG_HDR_SIZE, tx->dcount, 4);
	c = cv_crc32(0, tx->dhead, sizeof(tx->dhead));
	c = cv_crc32(c, tx->drecs, tx->dcount * MIG_DISK_REC_SIZE);
	c = cv_crc32(c, tx->ddata, tx->dndata);
	cv_put_le(crc, c, 4);
	iov[0] = (struct iovec){ tx->dhead, sizeof(tx->dhead) };
	iov[1] = (struct iovec){ tx->drecs, tx->dcount * MIG_DISK_REC_SIZE };
	iov[2] = (struct iovec){ tx->ddata, tx->dndata };
	iov[3] = (struct iovec){ crc, 4 };
	tx_send(tx, iov, 4);
	tx->dcount = tx->dndata = 0;
}

uint8_t *mig_tx_disk_buf(struct mig_tx *tx, uint32_t len)
{
	if (tx->dcount == MIG_BATCH_DISK || tx->dndata + len > MIG_DISK_BATCH_DATA)
		flush_disk(tx);
	return tx->ddata + tx->dndata;
}

void mig_tx_disk(struct mig_tx *tx, uint32_t disk, uint64_t off, const uint8_t *data, uint32_t len,
		 bool zero)
{
	uint8_t *dst = mig_tx_disk_buf(tx, zero ? 0 : len);
	uint8_t *rec = tx->drecs + tx->dcount * MIG_DISK_REC_SIZE;

	cv_put_le(rec, disk, 4);
	cv_put_le(rec + 4, zero ? MIG_REC_ZERO : 0, 4);
	cv_put_le(rec + 8, off, 8);
	cv_put_le(rec + 16, len, 4);
	cv_put_le(rec + 20, 0, 4);
	if (!zero) {
		if (data != dst)
			memmove(dst, data, len);
		tx->dndata += len;
		tx->disk_bytes += len;
	}
	tx->dcount++;
}

void mig_tx_flush(struct mig_tx *tx)
{
	flush_pages(tx);
	if (tx->ddata)
		flush_disk(tx);
}

void mig_tx_msg(struct mig_tx *tx, uint32_t type, const void *body, uint32_t len)
{
	uint8_t h[MIG_HDR_SIZE], crc[4];
	struct iovec iov[3];

	mig_tx_flush(tx);
	mig_put_header(h, type, len);
	cv_put_le(crc, cv_crc32(cv_crc32(0, h, sizeof(h)), body, len), 4);
	iov[0] = (struct iovec){ h, sizeof(h) };
	iov[1] = (struct iovec){ (void *)body, len };
	iov[2] = (struct iovec){ crc, 4 };
	tx_send(tx, iov, 3);
}
