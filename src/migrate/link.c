/* link.c - the `cvisor migrate` client's end of the migration stream. The
 * client, not the monitor, resolves and connects to the target, so that a
 * monitor (jailed or not) needs no host files, no name lookup and no
 * OpenSSL: it gets the connection with its request (SCM_RIGHTS).
 *
 * Plain: the TCP socket itself is passed. TLS: the client loads the TLS
 * module, makes the session as the source (the checks of tls.c: the PSK
 * identity, or the target's certificate against the CA and the HOST
 * dialled, and its own client certificate), and passes one end of a
 * socketpair; a thread relays between the other end and the session until
 * the monitor closes its end or the target's side ends. The thread is the
 * only user of the SSL object once it runs. Reads are big (RELAY_CHUNK),
 * so records go out full (16 KiB) and in batches (tls.c flushes per MiB).
 *
 * The relay is the migration's link: the client dying (kill -9) closes
 * the socketpair and the TCP connection, and the monitor sees the broken
 * link as for any other (EPIPE): its guest runs on. The monitor's reply
 * comes after it has closed its end, which ends the relay. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate_priv.h"

#define RELAY_CHUNK (1u << 20)	/* tls.c flushes its records per MiB: one sendmsg per read */
#define RELAY_SOCKBUF (4 << 20) /* asked of the socketpair (capped by wmem_max) */
#define RELAY_END_WAIT_MS 5000	/* after the reply, for the relay to end by itself */

struct migrate_link {
	struct mig_tls_ctx *tlsc; /* NULL: a plain stream */
	struct mig_tls *tls;
	struct mig_tx tx; /* mig_connect's (no pump: nothing to serve here) */
	int net;	  /* to the target */
	int mon;	  /* our end of the socketpair */
	int done[2];	  /* the relay closes done[1] as it ends */
	pthread_t thread;
	bool running;
	uint8_t *buf;	/* RELAY_CHUNK */
	size_t pending; /* the target's first bytes, read before the relay */
	char why[320];	/* a TLS failure the relay met */
};

int migrate_link_new(const struct migrate_opts *o, struct migrate_link **out, char *err,
		     size_t errlen)
{
	struct migrate_link *l = calloc(1, sizeof(*l));
	int r;

	*out = NULL;
	if (!l)
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	l->net = l->mon = l->done[0] = l->done[1] = -1;
	if ((r = mig_tls_ctx_new(&o->tls, o->dest, false, &l->tlsc, err, errlen))) {
		free(l);
		return r;
	}
	*out = l;
	return 0;
}

/* -> monitor: whatever the session has decrypted. 1 when nothing is left
 * for now, 0 when the target ended the stream, or -errno. */
static int to_monitor(struct migrate_link *l)
{
	for (;;) {
		struct iovec v = { l->buf, RELAY_CHUNK };
		ssize_t n = mig_tls_readv(l->tls, &v, 1);
		int r;

		if (n == -EAGAIN)
			return 1;
		if (n == -EPROTO)
			snprintf(l->why, sizeof(l->why), "TLS: %s", mig_tls_error(l->tls));
		if (n <= 0)
			return (int)n;
		if ((r = cv_send_all(l->mon, l->buf, (size_t)n)))
			return r;
	}
}

/* -> target: what the monitor wrote. 1 to go on, 0 when the monitor
 * closed its end, or -errno. */
static int to_target(struct migrate_link *l)
{
	struct iovec v = { l->buf, 0 };
	ssize_t n = recv(l->mon, l->buf, RELAY_CHUNK, MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 1 : -errno;
	if (!n)
		return 0;
	v.iov_len = (size_t)n;
	/* Blocking: a target that stops reading is cut by TCP_USER_TIMEOUT
	 * (mig_tune), or by migrate_link_close. */
	n = mig_tls_send_iov(l->tls, &v, 1, NULL, NULL);
	return n ? (int)n : 1;
}

static void *relay_main(void *opaque)
{
	struct migrate_link *l = opaque;
	int r = l->pending ? cv_send_all(l->mon, l->buf, l->pending) : 0;

	while (!r) {
		struct pollfd p[2] = { { .fd = l->mon, .events = POLLIN },
				       { .fd = l->net, .events = POLLIN } };

		if ((r = to_monitor(l)) != 1)
			break;
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (p[0].revents && (r = to_target(l)) != 1)
			break;
		r = 0;
	}
	/* The monitor done: close_notify to the target. The target gone: the
	 * monitor reads what was relayed, then the end of its link. */
	mig_tls_free(l->tls);
	l->tls = NULL;
	shutdown(l->net, SHUT_RDWR);
	shutdown(l->mon, SHUT_RDWR);
	close(l->done[1]);
	l->done[1] = -1;
	return NULL;
}

/* The target's first bytes (its NONCE) within MIG_NONCE_TIMEOUT_MS: in TLS
 * 1.3 the client's handshake ends before the target has checked the
 * client's certificate, and a refusal comes as an alert after it. */
static int first_bytes(struct migrate_link *l, char *why, size_t whylen)
{
	uint64_t deadline = cv_now_ns() + MIG_NONCE_TIMEOUT_MS * 1000000ULL;

	for (;;) {
		struct iovec v = { l->buf, RELAY_CHUNK };
		struct pollfd p = { .fd = l->net, .events = POLLIN };
		ssize_t n = mig_tls_readv(l->tls, &v, 1);
		uint64_t now = cv_now_ns();

		if (n > 0) {
			l->pending = (size_t)n;
			return 0;
		}
		if (n == -EPROTO)
			return cv_errf(why, whylen, -EPROTO, "TLS handshake failed: %s",
				       mig_tls_error(l->tls));
		if (!n)
			return cv_errf(why, whylen, -ECONNRESET,
				       "TLS handshake failed: the peer closed the connection");
		if (n != -EAGAIN)
			return cv_errf(why, whylen, (int)n, "TLS handshake failed: %s",
				       strerror((int)-n));
		if (now >= deadline)
			return 0; /* the monitor waits for the NONCE and says so */
		if (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) < 0 && errno != EINTR)
			return cv_errf(why, whylen, -errno, "poll: %s", strerror(errno));
	}
}

/* The TLS session on l->net, the socketpair, and the relay started. */
static int start_tls(struct migrate_link *l, const char *dest, int *pass_fd, char *err,
		     size_t errlen)
{
	char host[256], port[8], why[400];
	int sv[2], size = RELAY_SOCKBUF, r;

	if (migrate_parse_addr(dest, host, sizeof(host), port, sizeof(port), why, sizeof(why)))
		return cv_errf(err, errlen, -EINVAL, "%s", why);
	if (!(l->buf = malloc(RELAY_CHUNK)))
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	if ((r = mig_tls_start(l->tlsc, l->net, host, MIG_NONCE_TIMEOUT_MS, NULL, NULL, &l->tls,
			       why, sizeof(why))) ||
	    (r = first_bytes(l, why, sizeof(why))))
		return cv_errf(err, errlen, r,
			       "%s with %s (does the target have the same --tls-psk key, or "
			       "certificates from the same CA?)",
			       why, dest);
	if (pipe2(l->done, O_CLOEXEC) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return cv_errf(err, errlen, -errno, "socketpair: %s", strerror(errno));
	for (unsigned int i = 0; i < 2; i++)
		(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	l->mon = sv[0];
	*pass_fd = sv[1];
	if ((r = -pthread_create(&l->thread, NULL, relay_main, l))) {
		close(sv[1]);
		*pass_fd = -1;
		return cv_errf(err, errlen, r, "relay thread: %s", strerror(-r));
	}
	l->running = true;
	return 0;
}

int migrate_link_connect(struct migrate_link *l, const struct migrate_opts *o, int *pass_fd,
			 char *err, size_t errlen)
{
	int r;

	*pass_fd = -1;
	if ((r = mig_connect(o->dest, &l->tx, err, errlen)) < 0)
		return r;
	l->net = r;
	if (!l->tlsc) {
		*pass_fd = l->net; /* the caller's now */
		l->net = -1;
		return 0;
	}
	return start_tls(l, o->dest, pass_fd, err, errlen);
}

void migrate_link_close(struct migrate_link *l, char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = '\0';
	if (!l)
		return;
	if (l->running) {
		struct pollfd p = { .fd = l->done[0], .events = POLLIN };

		/* A relay still blocked on a target that reads nothing. */
		if (poll(&p, 1, RELAY_END_WAIT_MS) <= 0) {
			shutdown(l->net, SHUT_RDWR);
			shutdown(l->mon, SHUT_RDWR);
		}
		pthread_join(l->thread, NULL);
		if (why && whylen)
			snprintf(why, whylen, "%s", l->why);
	}
	mig_tls_free(l->tls);
	mig_tls_ctx_free(l->tlsc);
	for (unsigned int i = 0; i < 2; i++)
		if (l->done[i] >= 0)
			close(l->done[i]);
	if (l->net >= 0)
		close(l->net);
	if (l->mon >= 0)
		close(l->mon);
	free(l->buf);
	free(l);
}
