/* tls.c - the migration stream through TLS 1.3 (OpenSSL): contexts from
 * a PSK file or a certificate directory (tls_config.c checks them), the
 * handshake, and the stream's bytes both ways.
 *
 * OpenSSL talks to the socket through a BIO of our own: its writes only
 * append records to a buffer, which we send (a batch of up to 1 MiB of
 * pages becomes 64 records and one sendmsg, not 64), without blocking
 * when the sender has an event loop to pump (sock.c's mig_send_iov); its
 * reads are non-blocking recv()s into a 64 KiB read-ahead buffer, so
 * that the receiver polls the socket only when no whole record is left.
 *
 * PSK: a TLS 1.3 external PSK (RFC 8446 2.2) with TLS_AES_128_GCM_SHA256,
 * in psk_dhe_ke mode (an ECDHE exchange too: forward secrecy). x509: each
 * end verifies the other's chain against ca-cert.pem; the target requires
 * a client certificate, and the source checks that the target's names the
 * host it dialled. No session tickets: nothing to resume.
 *
 * This file is build/cvisor-tls.so, the TLS module (tls_module.c loads
 * it): the one object that links libssl and libcrypto, so that a monitor
 * that never migrates with TLS never maps them. It exports one symbol,
 * cvisor_tls_module (struct mig_tls_module, migrate_priv.h); the key is
 * read and the files checked by the binary before ctx_new, and the
 * records go out through the binary's sender (p->send). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "migrate_priv.h"

#define TLS_FLUSH_AT (1u << 20) /* send the queued records once this much is there */
#define TLS_READ_AHEAD (64u << 10)
#define TLS_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

struct mig_tls_ctx {
	SSL_CTX *ctx;
	bool server, psk;
	mig_tls_send_fn send;
	char identity[MIG_PSK_ID_MAX + 1];
	uint8_t key[MIG_PSK_KEY_SIZE];
};

struct mig_tls {
	SSL *ssl;
	int fd;
	mig_tls_send_fn send;
	uint8_t *out; /* records OpenSSL wrote, not sent yet */
	size_t out_len, out_cap;
	int io_err; /* -errno of the last failed recv */
	bool eof;
	char why[320];
};

/* ---- the BIO ---- */

static int bio_write(BIO *b, const char *data, int len)
{
	struct mig_tls *t = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (t->out_len + (size_t)len > t->out_cap) {
		size_t cap = (t->out_len + (size_t)len) * 2;
		uint8_t *p = realloc(t->out, cap);

		if (!p)
			return -1;
		t->out = p;
		t->out_cap = cap;
	}
	memcpy(t->out + t->out_len, data, (size_t)len);
	t->out_len += (size_t)len;
	return len;
}

static int bio_read(BIO *b, char *buf, int len)
{
	struct mig_tls *t = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = recv(t->fd, buf, (size_t)len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return (int)n;
	if (!n) {
		t->eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		BIO_set_retry_read(b);
		return -1;
	}
	t->io_err = -errno;
	return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	/* Flushing is ours (tls_flush); nothing else is supported. */
	return cmd == BIO_CTRL_FLUSH;
}

static BIO_METHOD *bio_method;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* OpenSSL, without the host's openssl.cnf: every setting of the session
 * is ours (TLS 1.3, the suites below), and a config that loads a provider
 * or engine module would dlopen it, whose mmap(PROT_EXEC) the main
 * thread's seccomp filter refuses: the source's guest would die with
 * SIGSYS at `cvisor migrate`. Then our BIO. */
static void lib_init(void)
{
	BIO_METHOD *m;

	if (OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1)
		return;
	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cvisor-mig");

	if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
	    BIO_meth_set_ctrl(m, bio_ctrl))
		bio_method = m;
}

/* ---- PSK (RFC 8446 external PSK) ---- */

/* A session holding the key, as OpenSSL wants an external PSK. */
static SSL_SESSION *psk_session(SSL *ssl, const uint8_t *key)
{
	static const unsigned char aes128gcm_sha256[2] = { 0x13, 0x01 };
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128gcm_sha256);
	SSL_SESSION *s = cipher ? SSL_SESSION_new() : NULL;

	if (s && SSL_SESSION_set1_master_key(s, key, MIG_PSK_KEY_SIZE) &&
	    SSL_SESSION_set_cipher(s, cipher) &&
	    SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION))
		return s;
	SSL_SESSION_free(s);
	return NULL;
}

static struct mig_tls_ctx *ctx_of(SSL *ssl)
{
	return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

static int psk_use(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
		   SSL_SESSION **sess)
{
	struct mig_tls_ctx *c = ctx_of(ssl);
	SSL_SESSION *s = psk_session(ssl, c->key);

	*sess = NULL;
	*id = NULL;
	*idlen = 0;
	if (!s)
		return 0;
	/* A retry for another suite's hash: the key is for SHA-256 only. */
	if (md && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {
		SSL_SESSION_free(s);
		return 1;
	}
	*sess = s;
	*id = (const unsigned char *)c->identity;
	*idlen = strlen(c->identity);
	return 1;
}

static int psk_find(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	struct mig_tls_ctx *c = ctx_of(ssl);

	*sess = NULL;
	/* Another identity: no PSK, and with no certificate the handshake
	 * then fails. */
	if (idlen != strlen(c->identity) || memcmp(id, c->identity, idlen))
		return 1;
	*sess = psk_session(ssl, c->key);
	return *sess != NULL;
}

/* ---- contexts ---- */

/* OpenSSL's first queued error as text (the queue cleared). */
static const char *ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (!e)
		return "unknown error";
	ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	/* "error:0A000086:SSL routines::certificate verify failed": the
	 * last part is what a user can act on. */
	return strrchr(buf, ':') ? strrchr(buf, ':') + 1 : buf;
}

/* The certificates, key and CA of a --tls-creds DIR. */
static int ctx_creds(struct mig_tls_ctx *c, const char *dir, char *err, size_t errlen)
{
	const char *who = c->server ? "server" : "client";
	char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], why[256];

	snprintf(ca, sizeof(ca), "%s/ca-cert.pem", dir);
	snprintf(cert, sizeof(cert), "%s/%s-cert.pem", dir, who);
	snprintf(key, sizeof(key), "%s/%s-key.pem", dir, who);
	if (SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1)
		return cv_errf(err, errlen, -EINVAL, "--tls-creds %s: %s", ca,
			       ssl_reason(why, sizeof(why)));
	if (SSL_CTX_use_certificate_chain_file(c->ctx, cert) != 1)
		return cv_errf(err, errlen, -EINVAL, "--tls-creds %s: %s", cert,
			       ssl_reason(why, sizeof(why)));
	if (SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c->ctx) != 1)
		return cv_errf(err, errlen, -EINVAL, "--tls-creds %s: %s", key,
			       ssl_reason(why, sizeof(why)));
	SSL_CTX_set_verify(
		c->ctx, SSL_VERIFY_PEER | (c->server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
	return 0;
}

static void tls_ctx_free(struct mig_tls_ctx *c)
{
	if (!c)
		return;
	SSL_CTX_free(c->ctx);
	OPENSSL_cleanse(c->key, sizeof(c->key));
	free(c);
}

/* The context for p (the files checked and the key read by the caller). */
static int tls_ctx_new(const struct mig_tls_params *p, struct mig_tls_ctx **out, char *err,
		       size_t errlen)
{
	struct mig_tls_ctx *c;
	int r = -ENOMEM;

	*out = NULL;
	pthread_once(&lib_once, lib_init);
	if (!bio_method || !(c = calloc(1, sizeof(*c))))
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	c->server = p->server;
	c->send = p->send;
	c->ctx = SSL_CTX_new(p->server ? TLS_server_method() : TLS_client_method());
	if (!c->ctx || !SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(c->ctx, TLS_SUITES)) {
		r = cv_errf(err, errlen, -ENOMEM, "cannot set up TLS");
		goto fail;
	}
	SSL_CTX_set_app_data(c->ctx, c);
	SSL_CTX_set_read_ahead(c->ctx, 1);
	SSL_CTX_set_default_read_buffer_len(c->ctx, TLS_READ_AHEAD);
	SSL_CTX_set_num_tickets(c->ctx, 0);
	SSL_CTX_set_options(c->ctx, SSL_OP_NO_TICKET);
	if (p->psk_identity) {
		c->psk = true;
		snprintf(c->identity, sizeof(c->identity), "%s", p->psk_identity);
		memcpy(c->key, p->psk_key, sizeof(c->key));
		if (p->server)
			SSL_CTX_set_psk_find_session_callback(c->ctx, psk_find);
		else
			SSL_CTX_set_psk_use_session_callback(c->ctx, psk_use);
	} else if ((r = ctx_creds(c, p->creds_dir, err, errlen))) {
		goto fail;
	}
	*out = c;
	return 0;
fail:
	tls_ctx_free(c);
	return r;
}

/* ---- sessions ---- */

/* Send the queued records. */
static int tls_flush(struct mig_tls *t, int (*wait)(void *ctx), void *ctx)
{
	struct iovec v = { t->out, t->out_len };
	int r;

	if (!t->out_len)
		return 0;
	r = t->send(t->fd, NULL, &v, 1, wait, ctx);
	t->out_len = 0;
	return r;
}

/* Why the session failed, into t->why. */
static const char *tls_why(struct mig_tls *t)
{
	long v = SSL_get_verify_result(t->ssl);
	char buf[256];

	if (v != X509_V_OK)
		snprintf(t->why, sizeof(t->why), "certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
	else if (ERR_peek_error())
		snprintf(t->why, sizeof(t->why), "%s", ssl_reason(buf, sizeof(buf)));
	else if (t->io_err)
		snprintf(t->why, sizeof(t->why), "%s", strerror(-t->io_err));
	else if (t->eof)
		snprintf(t->why, sizeof(t->why), "the peer closed the connection");
	else
		snprintf(t->why, sizeof(t->why), "TLS failed");
	return t->why;
}

/* The source checks the target's certificate names host. */
static int set_peer_name(struct mig_tls *t, const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1;
	return SSL_set1_host(t->ssl, host) == 1 && SSL_set_tlsext_host_name(t->ssl, host) == 1;
}

/* Run the handshake until done, deadline, or wait()'s error. */
static int handshake(struct mig_tls *t, uint64_t deadline, int (*wait)(void *ctx), void *ctx)
{
	for (;;) {
		struct pollfd p = { .fd = t->fd, .events = POLLIN };
		uint64_t now;
		int ok, e, r;

		ERR_clear_error();
		ok = SSL_do_handshake(t->ssl);
		e = ok == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, ok);
		/* An alert goes out too: the peer learns why. */
		r = tls_flush(t, wait, ctx);
		if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ)
			return -EPROTO;
		if (r)
			return r;
		if (ok == 1)
			return 0;
		now = cv_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, wait ? 10 : (int)((deadline - now) / 1000000 + 1)) < 0 &&
		    errno != EINTR)
			return -errno;
		if (wait && (r = wait(ctx)))
			return r;
	}
}

static void tls_free(struct mig_tls *t);

static int tls_start(struct mig_tls_ctx *c, int fd, const char *host, int timeout_ms,
		     int (*wait)(void *ctx), void *ctx, struct mig_tls **out, char *err,
		     size_t errlen)
{
	struct mig_tls *t = calloc(1, sizeof(*t));
	BIO *b = NULL;
	int r;

	*out = NULL;
	if (!t || !(t->ssl = SSL_new(c->ctx)) || !(b = BIO_new(bio_method))) {
		tls_free(t);
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	}
	t->fd = fd;
	t->send = c->send;
	BIO_set_data(b, t);
	BIO_set_init(b, 1);
	SSL_set_bio(t->ssl, b, b);
	if (c->server)
		SSL_set_accept_state(t->ssl);
	else
		SSL_set_connect_state(t->ssl);
	if (!c->server && !c->psk && host && !set_peer_name(t, host)) {
		tls_free(t);
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	}
	r = handshake(t, cv_now_ns() + (uint64_t)timeout_ms * 1000000ULL, wait, ctx);
	if (r) {
		if (r == -EPROTO)
			snprintf(err, errlen, "TLS handshake failed: %s", tls_why(t));
		else if (r == -ETIMEDOUT)
			snprintf(err, errlen, "TLS handshake failed: no answer for %d s",
				 timeout_ms / 1000);
		else
			snprintf(err, errlen, "TLS handshake failed: %s", strerror(-r));
		tls_free(t);
		return r;
	}
	*out = t;
	return 0;
}

static int tls_send_iov(struct mig_tls *t, const struct iovec *iov, int n, int (*wait)(void *ctx),
			void *ctx)
{
	int r;

	for (int i = 0; i < n; i++) {
		for (size_t off = 0; off < iov[i].iov_len;) {
			size_t chunk = iov[i].iov_len - off, w;

			if (chunk > TLS_FLUSH_AT)
				chunk = TLS_FLUSH_AT;
			ERR_clear_error();
			if (SSL_write_ex(t->ssl, (const uint8_t *)iov[i].iov_base + off, chunk,
					 &w) != 1)
				return -EPIPE;
			off += w;
			if (t->out_len >= TLS_FLUSH_AT && (r = tls_flush(t, wait, ctx)))
				return r;
		}
	}
	return tls_flush(t, wait, ctx);
}

static ssize_t tls_readv(struct mig_tls *t, const struct iovec *iov, unsigned int n)
{
	size_t total = 0;

	/* Once, not per page: SSL_get_error reads the queue only after a
	 * failure, which ends the loop. */
	ERR_clear_error();
	for (unsigned int i = 0; i < n; i++) {
		size_t got = 0;
		int e;

		if (SSL_read_ex(t->ssl, iov[i].iov_base, iov[i].iov_len, &got) == 1) {
			total += got;
			if (got < iov[i].iov_len)
				break;
			continue;
		}
		if (total)
			break; /* the error again on the next call */
		e = SSL_get_error(t->ssl, 0);
		if (e == SSL_ERROR_WANT_READ)
			return -EAGAIN;
		if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && t->eof))
			return 0;
		if (e == SSL_ERROR_SYSCALL && t->io_err)
			return t->io_err;
		tls_why(t);
		return -EPROTO;
	}
	return (ssize_t)total;
}

static const char *tls_error(const struct mig_tls *t)
{
	return t->why;
}

static void tls_free(struct mig_tls *t)
{
	if (!t)
		return;
	if (t->ssl && SSL_is_init_finished(t->ssl)) {
		/* close_notify, if the socket takes it at once. */
		SSL_shutdown(t->ssl);
		if (t->out_len)
			(void)!send(t->fd, t->out, t->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	SSL_free(t->ssl);
	free(t->out);
	free(t);
}

/* The module's one exported symbol (-fvisibility=hidden hides the rest). */
__attribute__((visibility("default"))) const struct mig_tls_module cvisor_tls_module = {
	.abi = MIG_TLS_ABI,
	.size = sizeof(struct mig_tls_module),
	.ctx_new = tls_ctx_new,
	.ctx_free = tls_ctx_free,
	.start = tls_start,
	.send_iov = tls_send_iov,
	.readv = tls_readv,
	.error = tls_error,
	.free = tls_free,
};
