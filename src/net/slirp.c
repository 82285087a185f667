/* slirp.c - the user-mode network (--net user) through libslirp: DHCP, DNS
 * and NAT for the guest, hostfwd rules on the host, no root needed.
 *
 * libslirp (and the glib it pulls in) is dlopen()ed on first use, so that
 * a cvisor without --net user maps neither: the footprint target is a stub
 * guest under 2 MiB of RSS. We compile against <slirp/libslirp.h> for the
 * types only and resolve the few entry points below with dlsym.
 *
 * Driving it from the event loop: after every round, slirp_pollfds_fill
 * names the sockets to watch; they go into a private epoll set (one fd on
 * the main loop however many connections the guest opens), and a timerfd
 * fires at slirp's timeout or its next timer. A round is poll(0) on those
 * sockets, slirp_pollfds_poll, due timers, then a fill again. Frames slirp
 * sends toward the guest wait in a bounded queue for the device. */
#include "cvisor/net_backend.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define SLIRP_LIB "libslirp.so.0"
#define QUEUE_FRAMES 512	     /* frames waiting for the guest ... */
#define QUEUE_BYTES (2u << 20)	     /* ... and their bytes; beyond, dropped */
#define GUEST_FRAME_MAX (65536 + 18) /* as VIRTIO_NET_FRAME_MAX */

/* The libslirp entry points, resolved once (main thread). */
static struct {
	bool loaded;
	__typeof__(slirp_new) *new_;
	__typeof__(slirp_cleanup) *cleanup;
	__typeof__(slirp_input) *input;
	__typeof__(slirp_pollfds_fill) *fill;
	__typeof__(slirp_pollfds_poll) *poll;
	__typeof__(slirp_add_hostfwd) *add_hostfwd;
} sl;

struct frame {
	struct frame *next;
	size_t len;
	uint8_t data[];
};

struct stimer {
	struct stimer *next;
	SlirpTimerCb cb;
	void *opaque;
	int64_t expire_ms; /* -1: not armed */
};

struct uslirp {
	struct net_backend be;
	struct evloop *loop;
	Slirp *slirp;
	int ep_fd, timer_fd;
	bool rx_on, round_pending;
	int64_t poll_deadline_ms; /* slirp's own timeout; -1 none */
	struct pollfd *pfd;	  /* this round's sockets, indexed as slirp sees them */
	unsigned int npfd, pfd_cap;
	int *watched; /* fds in ep_fd, sorted */
	unsigned int nwatched, watched_cap;
	struct stimer *timers;
	struct frame *head, *tail;
	unsigned int qlen;
	size_t qbytes;
	uint8_t *txbuf;
};

static int64_t now_ms(void)
{
	return (int64_t)(cv_now_ns() / 1000000);
}

bool net_slirp_loaded(void)
{
	return sl.loaded;
}

static int load_lib(char *err, size_t errlen)
{
	void *h;

	if (sl.loaded)
		return 0;
	h = dlopen(SLIRP_LIB, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen,
			 "--net user: " SLIRP_LIB " not found (install libslirp0, or use --net "
			 "tap=NAME)");
		return -ENOENT;
	}
	/* A void * to function pointer cast is what dlsym(3) prescribes. */
	sl.new_ = (__typeof__(sl.new_))dlsym(h, "slirp_new");
	sl.cleanup = (__typeof__(sl.cleanup))dlsym(h, "slirp_cleanup");
	sl.input = (__typeof__(sl.input))dlsym(h, "slirp_input");
	sl.fill = (__typeof__(sl.fill))dlsym(h, "slirp_pollfds_fill");
	sl.poll = (__typeof__(sl.poll))dlsym(h, "slirp_pollfds_poll");
	sl.add_hostfwd = (__typeof__(sl.add_hostfwd))dlsym(h, "slirp_add_hostfwd");
	if (!sl.new_ || !sl.cleanup || !sl.input || !sl.fill || !sl.poll || !sl.add_hostfwd) {
		snprintf(err, errlen,
			 "--net user: " SLIRP_LIB " lacks slirp_new and friends "
			 "(libslirp 4.0 or later needed)");
		dlclose(h);
		return -ENOENT;
	}
	sl.loaded = true;
	return 0;
}

/* Timers ------------------------------------------------------------------ */

static void timer_set(int fd, int64_t deadline_ms)
{
	int64_t now = now_ms();
	uint64_t ns = 0;

	if (deadline_ms >= 0)
		ns = deadline_ms <= now ? 1 /* now */ : (uint64_t)(deadline_ms - now) * 1000000ULL;
	if (evloop_timer_arm(fd, ns, 0)) {
		/* EINVAL only, for a bad fd: nothing to wake then */
	}
}

/* Wake at the earliest of slirp's timeout and its timers. */
static void rearm(struct uslirp *s)
{
	int64_t d = s->poll_deadline_ms;

	if (s->round_pending)
		return;
	for (struct stimer *t = s->timers; t; t = t->next)
		if (t->expire_ms >= 0 && (d < 0 || t->expire_ms < d))
			d = t->expire_ms;
	timer_set(s->timer_fd, d);
}

/* A round soon, from the loop (never call into the device from here). */
static void round_soon(struct uslirp *s)
{
	if (s->round_pending)
		return;
	s->round_pending = true;
	timer_set(s->timer_fd, 0);
}

static void run_timers(struct uslirp *s)
{
	int64_t now = now_ms();
	struct stimer *t;

	/* A callback may re-arm or free timers: rescan after each. Each
	 * firing disarms one, so this ends. */
	do {
		for (t = s->timers; t; t = t->next)
			if (t->expire_ms >= 0 && t->expire_ms <= now)
				break;
		if (t) {
			t->expire_ms = -1;
			t->cb(t->opaque);
		}
	} while (t);
}

/* libslirp callbacks -------------------------------------------------------- */

static ssize_t cb_send(const void *buf, size_t len, void *opaque)
{
	struct uslirp *s = opaque;
	struct frame *f;

	/* libslirp.h: a frame the guest cannot take now may be dropped; TCP
	 * retransmits. Bounded, so a guest that stops reading costs little. */
	if (s->qlen >= QUEUE_FRAMES || len > QUEUE_BYTES - s->qbytes ||
	    !(f = malloc(sizeof(*f) + len)))
		return (ssize_t)len;
	f->next = NULL;
	f->len = len;
	memcpy(f->data, buf, len);
	if (s->tail)
		s->tail->next = f;
	else
		s->head = f;
	s->tail = f;
	s->qlen++;
	s->qbytes += len;
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	cv_debug("user network: guest error: %s", msg);
}

static int64_t cb_clock_ns(void *opaque)
{
	(void)opaque;
	return (int64_t)cv_now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct uslirp *s = opaque;
	struct stimer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	*t = (struct stimer){ s->timers, cb, cb_opaque, -1 };
	s->timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct uslirp *s = opaque;

	for (struct stimer **p = &s->timers; *p; p = &(*p)->next)
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct stimer *t = timer;

	if (!t)
		return;
	t->expire_ms = expire_ms < 0 ? 0 : expire_ms;
	rearm(opaque);
}

static void cb_fd(int fd, void *opaque)
{
	/* Sockets are (re)collected each round by slirp_pollfds_fill. */
	(void)fd;
	(void)opaque;
}

static void cb_notify(void *opaque)
{
	round_soon(opaque);
}

static const SlirpCb slirp_cb = {
	.send_packet = cb_send,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_fd,
	.unregister_poll_fd = cb_fd,
	.notify = cb_notify,
};

/* Rounds ---------------------------------------------------------------------- */

static int add_poll(int fd, int events, void *opaque)
{
	struct uslirp *s = opaque;
	short ev = 0;

	if (s->npfd == s->pfd_cap) {
		unsigned int cap = s->pfd_cap ? 2 * s->pfd_cap : 16;
		struct pollfd *p = realloc(s->pfd, cap * sizeof(*p));

		if (!p)
			return -1; /* slirp skips a socket with index -1 */
		s->pfd = p;
		s->pfd_cap = cap;
	}
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	s->pfd[s->npfd] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)s->npfd++;
}

static int get_revents(int idx, void *opaque)
{
	struct uslirp *s = opaque;
	short re;
	int r = 0;

	if (idx < 0 || (unsigned int)idx >= s->npfd)
		return 0;
	re = s->pfd[idx].revents;
	r |= re & POLLIN ? SLIRP_POLL_IN : 0;
	r |= re & POLLOUT ? SLIRP_POLL_OUT : 0;
	r |= re & POLLPRI ? SLIRP_POLL_PRI : 0;
	r |= re & POLLERR ? SLIRP_POLL_ERR : 0;
	r |= re & POLLHUP ? SLIRP_POLL_HUP : 0;
	return r;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Make ep_fd watch exactly this round's sockets. MOD first, ADD if the fd
 * is new to epoll: a socket slirp closed and whose number was reused since
 * left epoll by itself, so MOD fails and we ADD the new one. */
static void watch_sync(struct uslirp *s)
{
	unsigned int i, j = 0, k = 0;
	int *now;

	for (i = 0; i < s->npfd; i++) {
		struct epoll_event ev = { .data.fd = s->pfd[i].fd };

		ev.events = (s->pfd[i].events & POLLIN ? EPOLLIN : 0) |
			    (s->pfd[i].events & POLLOUT ? EPOLLOUT : 0) |
			    (s->pfd[i].events & POLLPRI ? EPOLLPRI : 0);
		if (epoll_ctl(s->ep_fd, EPOLL_CTL_MOD, s->pfd[i].fd, &ev) < 0 && errno == ENOENT)
			(void)epoll_ctl(s->ep_fd, EPOLL_CTL_ADD, s->pfd[i].fd, &ev);
	}
	now = malloc((s->npfd ? s->npfd : 1) * sizeof(*now));
	if (!now)
		return; /* stale entries stay watched until the next round */
	for (i = 0; i < s->npfd; i++)
		now[i] = s->pfd[i].fd;
	qsort(now, s->npfd, sizeof(*now), cmp_int);
	/* Sockets no longer asked for leave the set. */
	for (i = 0; i < s->nwatched; i++) {
		while (j < s->npfd && now[j] < s->watched[i])
			j++;
		if (j == s->npfd || now[j] != s->watched[i])
			(void)epoll_ctl(s->ep_fd, EPOLL_CTL_DEL, s->watched[i], NULL);
	}
	for (i = 0; i < s->npfd; i++)
		if (!k || now[i] != now[k - 1])
			now[k++] = now[i];
	free(s->watched);
	s->watched = now;
	s->nwatched = k;
}

static void fill(struct uslirp *s)
{
	uint32_t timeout = UINT32_MAX;

	s->npfd = 0;
	sl.fill(s->slirp, &timeout, add_poll, s);
	watch_sync(s);
	s->poll_deadline_ms = timeout == UINT32_MAX ? -1 : now_ms() + timeout;
}

static void slirp_round(struct uslirp *s)
{
	int r = 0;

	s->round_pending = false;
	if (s->npfd)
		r = poll(s->pfd, s->npfd, 0);
	if (r < 0)
		for (unsigned int i = 0; i < s->npfd; i++)
			s->pfd[i].revents = 0;
	sl.poll(s->slirp, r < 0, get_revents, s);
	run_timers(s);
	fill(s);
	rearm(s);
	if (s->head && s->rx_on && s->be.rx_ready)
		s->be.rx_ready(s->be.opaque);
}

static void on_sockets(void *opaque, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	slirp_round(opaque);
}

static void on_timer(void *opaque, int fd, uint32_t events)
{
	uint64_t n;

	(void)events;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: re-armed before we read; the round runs anyway. */
	}
	slirp_round(opaque);
}

/* net_backend_ops ---------------------------------------------------------- */

static int us_send(struct net_backend *b, const struct iovec *iov, unsigned int iovcnt)
{
	struct uslirp *s = (struct uslirp *)b;
	size_t len = 0;

	/* slirp_input wants one contiguous frame. */
	for (unsigned int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > GUEST_FRAME_MAX - len)
			return -EMSGSIZE;
		memcpy(s->txbuf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	sl.input(s->slirp, s->txbuf, (int)len);
	/* Replies are queued now; new sockets need watching. */
	round_soon(s);
	return 0;
}

static ssize_t us_recv(struct net_backend *b, void *buf, size_t len)
{
	struct uslirp *s = (struct uslirp *)b;
	struct frame *f = s->head;
	ssize_t r;

	if (!f)
		return 0;
	s->head = f->next;
	if (!s->head)
		s->tail = NULL;
	s->qlen--;
	s->qbytes -= f->len;
	r = f->len > len ? -EMSGSIZE : (ssize_t)f->len;
	if (r > 0)
		memcpy(buf, f->data, f->len);
	free(f);
	return r;
}

static void us_flush(struct net_backend *b)
{
	struct uslirp *s = (struct uslirp *)b;
	struct frame *f;

	while ((f = s->head)) {
		s->head = f->next;
		free(f);
	}
	s->tail = NULL;
	s->qlen = 0;
	s->qbytes = 0;
}

static void us_set_rx(struct net_backend *b, bool on)
{
	struct uslirp *s = (struct uslirp *)b;

	s->rx_on = on;
	if (on && s->head)
		round_soon(s);
}

static void us_destroy(struct net_backend *b)
{
	struct uslirp *s = (struct uslirp *)b;

	if (s->slirp)
		sl.cleanup(s->slirp);
	if (s->ep_fd >= 0) {
		evloop_del(s->loop, s->ep_fd);
		close(s->ep_fd);
	}
	if (s->timer_fd >= 0) {
		evloop_del(s->loop, s->timer_fd);
		close(s->timer_fd);
	}
	us_flush(b);
	while (s->timers) {
		struct stimer *t = s->timers;

		s->timers = t->next;
		free(t);
	}
	free(s->pfd);
	free(s->watched);
	free(s->txbuf);
	free(s);
}

static const struct net_backend_ops slirp_ops = {
	.send = us_send,
	.recv = us_recv,
	.set_rx = us_set_rx,
	.flush = us_flush,
	.destroy = us_destroy,
};

static Slirp *new_slirp(struct uslirp *s)
{
	SlirpConfig cfg = {
		.version = 1,
		.in_enabled = true,
		.vnetwork = { htonl(NET_USER_NETWORK) },
		.vnetmask = { htonl(0xffffff00u) },
		.vhost = { htonl(NET_USER_GATEWAY) },
		.vdhcp_start = { htonl(NET_USER_GUEST) },
		.vnameserver = { htonl(NET_USER_DNS) },
		/* IPv6 as QEMU sets it up: fec0::/64, host ::2, DNS ::3. */
		.in6_enabled = true,
		.vprefix_len = 64,
	};

	if (inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6) != 1 ||
	    inet_pton(AF_INET6, "fec0::2", &cfg.vhost6) != 1 ||
	    inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6) != 1)
		return NULL;
	return sl.new_(&cfg, &slirp_cb, s);
}

int net_slirp_open(const struct net_hostfwd *fwd, unsigned int nfwd, struct evloop *loop,
		   struct net_backend **out, char *err, size_t errlen)
{
	struct uslirp *s;
	int r;

	if ((r = load_lib(err, errlen)))
		return r;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->txbuf = malloc(GUEST_FRAME_MAX))) {
		free(s);
		snprintf(err, errlen, "--net user: out of memory");
		return -ENOMEM;
	}
	s->be.ops = &slirp_ops;
	s->loop = loop;
	s->poll_deadline_ms = -1;
	s->timer_fd = -1;
	s->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->ep_fd < 0 || (r = evloop_add(loop, s->ep_fd, EPOLLIN, on_sockets, s))) {
		r = s->ep_fd < 0 ? -errno : r;
		cv_close(&s->ep_fd);
		goto fail;
	}
	/* Disarmed at first; rearm() and round_soon() set it. */
	s->timer_fd = evloop_add_timer(loop, 0, 0, on_timer, s);
	if (s->timer_fd < 0) {
		r = s->timer_fd;
		goto fail;
	}
	if (!(s->slirp = new_slirp(s))) {
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned int i = 0; i < nfwd; i++) {
		struct in_addr h = { htonl(fwd[i].host_addr) }, g = { htonl(fwd[i].guest_addr) };

		if (sl.add_hostfwd(s->slirp, fwd[i].udp, h, fwd[i].host_port, g,
				   fwd[i].guest_port) < 0) {
			snprintf(err, errlen,
				 "--net user: cannot listen on host %s port %u for hostfwd (in "
				 "use?)",
				 fwd[i].udp ? "udp" : "tcp", fwd[i].host_port);
			us_destroy(&s->be);
			return -EADDRINUSE;
		}
	}
	fill(s);
	rearm(s);
	*out = &s->be;
	return 0;
fail:
	snprintf(err, errlen, "--net user: cannot start the user network: %s", strerror(-r));
	us_destroy(&s->be);
	return r;
}
