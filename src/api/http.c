/* http.c - the REST API's HTTP/1.1 server on the monitor's event loop
 * (main thread): connections, reads that take passed files, answers in
 * order, the stall timer and the connection limit. Requests are parsed by
 * http_parse.c; what they mean is src/api/'s.
 *
 * A connection serves one request at a time: the next is not parsed, and
 * nothing more is read, until the current one is answered and its answer
 * sent. So the input buffer holds one read, the output one answer, and
 * pipelined requests are answered in the order they came. */
#include "cvisor/http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvisor/evloop.h"

static_assert(HTTP_FDS_MAX <= CV_PASS_FDS_MAX, "cv_recv_fds takes fewer files than a request");

#define HTTP_REFUSAL_MAX 256 /* the refusal's JSON body */

struct http_conn {
	struct http_server *s;
	struct http_conn *next;
	int fd; /* -1: closed, kept until its request is answered */
	uint32_t events;
	struct http_parse *p;
	char in[16384]; /* one read, parsed before the next */
	size_t in_off, in_len;
	char *out; /* the answer being sent */
	size_t out_off, out_len, out_cap;
	uint64_t rx, parsed, req_start; /* stream offsets */
	/* Files read and not yet handed to a request: they came with byte
	 * fds_at (the last byte of the read that brought them). */
	int fds[HTTP_FDS_MAX];
	unsigned int nfds;
	uint64_t fds_at;
	bool fds_pending, fds_refused; /* refused: more than HTTP_FDS_MAX came */
	bool busy;		       /* a request given to the handler, not answered */
	bool in_handler;	       /* the handler is running for this connection */
	bool close_after;	       /* close once the answer is sent */
	bool eof;
	bool hup;  /* the peer closed both ways: read what it sent, answer nobody */
	bool head; /* the request being answered is a HEAD: no body goes out */
	/* The admission check refused the peer: its request gets a 403 with
	 * this JSON body ("": admitted). */
	char refusal[HTTP_REFUSAL_MAX];
	uint64_t active_ns; /* last read or answer: the eviction order */
	uint64_t stall_ns;  /* since when the peer keeps us waiting, or 0 */
};

struct http_server {
	struct evloop *loop;
	int listen_fd, timer_fd;
	http_handler_fn handler;
	http_admit_fn admit;
	void *opaque;
	struct http_conn *conns;
	uint64_t stall_ns, timer_at;
};

static void conn_run(struct http_conn *c);
static int conn_read(struct http_conn *c);

static void drop_fds(struct http_conn *c)
{
	for (unsigned int i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
	c->fds_pending = c->fds_refused = false;
}

static void conn_unlink_free(struct http_conn *c)
{
	struct http_conn **pp = &c->s->conns;

	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	http_parse_free(c->p);
	free(c);
}

/* Close c; its memory (and the request the handler is given) stays while
 * the handler runs or owes it an answer. */
static void conn_close(struct http_conn *c)
{
	if (c->fd >= 0) {
		evloop_del(c->s->loop, c->fd);
		close(c->fd);
		c->fd = -1;
	}
	drop_fds(c);
	free(c->out);
	c->out = NULL;
	c->out_off = c->out_len = c->out_cap = 0;
	if (!c->busy && !c->in_handler)
		conn_unlink_free(c);
}

/* Append n bytes to the answer being sent; false when out of memory. */
static bool out_add(struct http_conn *c, const char *p, size_t n)
{
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_len + n + 256;
		char *b = realloc(c->out, cap);

		if (!b)
			return false;
		c->out = b;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return true;
}

/* Queue an answer: the status line, the headers (extra: more of them,
 * each ending in CRLF, or ""), the body. */
static void queue_answer(struct http_conn *c, int status, const char *type, const char *extra,
			 const char *body, size_t len)
{
	char head[384];
	int n;

	if (status == 204) /* no body, and so no Content-Length (RFC 9110 8.6) */
		n = snprintf(head, sizeof(head), "HTTP/1.1 204 No Content\r\n%s%s\r\n", extra,
			     c->close_after ? "Connection: close\r\n" : "");
	else
		n = snprintf(
			head, sizeof(head),
			"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
			status, http_status_reason(status), type, len, extra,
			c->close_after ? "Connection: close\r\n" : "");
	/* A HEAD's answer has the headers a GET's would, and no body (RFC
	 * 9110 9.3.2): its Content-Length is the body's that is not sent. */
	if (c->head)
		len = 0;
	if (n < 0 || (size_t)n >= sizeof(head) || !out_add(c, head, (size_t)n) ||
	    (status != 204 && !out_add(c, body, len))) {
		/* Out of memory: nothing half-written goes out. */
		c->out_len = c->out_off;
		c->close_after = true;
	}
}

/* An answer the server gives itself (a refused request, 408): the
 * connection closes after it. */
static void queue_refusal(struct http_conn *c, int status, const char *type, const char *msg)
{
	c->close_after = true;
	c->in_off = c->in_len;
	queue_answer(c, status, type, "", msg, strlen(msg));
}

/* Send what is pending; false when the peer has gone. After a hang-up
 * (c->hup) no answer can reach it: what is pending is dropped, so that
 * the requests it sent before leaving are still served. */
static bool flush(struct http_conn *c)
{
	if (c->hup)
		c->out_off = c->out_len;
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (w <= 0)
			return false;
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	return true;
}

/* Arm the stall timer for the earliest deadline, if it is not armed
 * earlier (a timer that fires with nothing due sweeps and re-arms). */
static void stall_arm(struct http_server *s, bool recompute)
{
	uint64_t first = UINT64_MAX, now = cv_now_ns(), at;

	for (struct http_conn *c = s->conns; c; c = c->next)
		if (c->fd >= 0 && c->stall_ns && c->stall_ns < first)
			first = c->stall_ns;
	if (first == UINT64_MAX) {
		if (recompute && s->timer_at && !evloop_timer_arm(s->timer_fd, 0, 0))
			s->timer_at = 0;
		return;
	}
	at = first + s->stall_ns;
	if (!recompute && s->timer_at && s->timer_at <= at)
		return;
	/* 0 would disarm: at least 1 ms */
	if (!evloop_timer_arm(s->timer_fd, at > now + 1000000 ? at - now : 1000000, 0))
		s->timer_at = at;
}

/* Hand the files that came with the request just parsed (bytes
 * [req_start, parsed) of the stream) to it; older ones were nobody's. */
static bool take_fds(struct http_conn *c, struct http_request *req)
{
	for (unsigned int i = 0; i < HTTP_FDS_MAX; i++)
		req->fds[i] = -1;
	req->nfds = 0;
	if (!c->fds_pending || c->fds_at >= c->parsed)
		return true;
	if (c->fds_at < c->req_start || c->fds_refused) {
		bool refused = c->fds_at >= c->req_start;

		drop_fds(c);
		return !refused;
	}
	memcpy(req->fds, c->fds, c->nfds * sizeof(int));
	req->nfds = c->nfds;
	c->nfds = 0;
	c->fds_pending = false;
	return true;
}

/* Watch c's socket for ev (0: only hang-ups and errors). */
static void conn_watch(struct http_conn *c, uint32_t ev)
{
	if (ev != c->events && !evloop_mod(c->s->loop, c->fd, ev))
		c->events = ev;
}

/* Give the request just parsed to the handler. */
static void dispatch(struct http_conn *c)
{
	struct http_request *req = http_parse_request(c->p);
	char msg[80];

	c->stall_ns = 0;
	c->head = !strcmp(req->method_name, "HEAD");
	if (!http_parse_keep_alive(c->p))
		c->close_after = true;
	if (c->refusal[0]) {
		queue_refusal(c, 403, "application/json", c->refusal);
		return;
	}
	if (!take_fds(c, req)) {
		snprintf(msg, sizeof(msg), "more than %d files passed with a request",
			 HTTP_FDS_MAX);
		queue_refusal(c, 400, "text/plain", msg);
		return;
	}
	c->busy = c->in_handler = true;
	/* A handler that runs loop rounds of its own (a migration does)
	 * hears of this connection only if the peer hangs up. */
	conn_watch(c, 0);
	c->s->handler(c->s->opaque, c, req);
	c->in_handler = false;
	/* The files the handler did not take. */
	for (unsigned int i = 0; i < req->nfds; i++)
		if (req->fds[i] >= 0)
			close(req->fds[i]);
	req->nfds = 0;
}

/* Parse what was read: at most one request, which is dispatched. */
static void parse_some(struct http_conn *c)
{
	char msg[80];
	size_t used;
	int status;
	enum http_parse_result r =
		http_parse_feed(c->p, c->in + c->in_off, c->in_len - c->in_off, &used, &status);

	c->in_off += used;
	c->parsed += used;
	if (r == HTTP_PARSE_DONE) {
		dispatch(c);
		c->req_start = c->parsed;
	} else if (r == HTTP_PARSE_MORE) {
		/* curl's body-less PUT (libvirt 9.0): Expect: 100-continue
		 * and an empty chunked body, sent once the 100 comes. */
		if (http_parse_take_continue(c->p) &&
		    !out_add(c, "HTTP/1.1 100 Continue\r\n\r\n", 25))
			c->close_after = true;
	} else {
		switch (status) {
		case 413:
			snprintf(msg, sizeof(msg), "request body larger than %d bytes",
				 HTTP_BODY_MAX);
			break;
		case 431:
			snprintf(msg, sizeof(msg), "request head larger than %d bytes",
				 HTTP_HEAD_MAX);
			break;
		case 501:
			snprintf(msg, sizeof(msg), "unknown HTTP method");
			break;
		case 505:
			snprintf(msg, sizeof(msg), "HTTP version not supported (only HTTP/1.x)");
			break;
		case 503:
			snprintf(msg, sizeof(msg), "out of memory");
			break;
		default:
			snprintf(msg, sizeof(msg), "malformed HTTP request");
		}
		queue_refusal(c, status, "text/plain", msg);
	}
}

/* Take c as far as it goes: send, parse, dispatch, until it waits for
 * the peer (input or room to write) or the handler; then watch for what
 * it waits on. c may be freed. */
static void conn_run(struct http_conn *c)
{
	for (;;) {
		if (!flush(c)) {
			conn_close(c);
			return;
		}
		if (c->out_len || c->busy)
			break;
		if (c->close_after || (c->eof && c->in_off == c->in_len)) {
			conn_close(c);
			return;
		}
		if (c->in_off == c->in_len) {
			int r = conn_read(c);

			if (r < 0) {
				conn_close(c);
				return;
			}
			if (!r)
				break;
			continue;
		}
		parse_some(c);
		/* The handler ran nested loop rounds, and the peer left. */
		if (c->fd < 0) {
			if (!c->busy)
				conn_unlink_free(c);
			return;
		}
	}
	conn_watch(c, c->hup ? EPOLLET : c->out_len ? EPOLLOUT : c->busy ? 0 : EPOLLIN);
	/* The peer keeps us waiting: a request begun, an answer not read, or
	 * passed files with no request for them (held, they would pile up).
	 * The clock runs from the start, however the bytes trickle. */
	if (!c->out_len && (c->busy || (!http_parse_begun(c->p) && !c->fds_pending)))
		c->stall_ns = 0;
	else if (!c->stall_ns) {
		c->stall_ns = cv_now_ns();
		stall_arm(c->s, false);
	}
}

/* One read into c->in (empty: the last read is parsed), with the files
 * that came with it. 1: bytes or the end of the stream came, 0: nothing
 * yet, -1: the connection failed. */
static int conn_read(struct http_conn *c)
{
	struct cv_passed_fds pf;
	long r = cv_recv_fds(c->fd, c->in, sizeof(c->in), &pf);

	if (r < 0 && r != -EAGAIN && r != -EINTR)
		return -1;
	if (pf.n || pf.truncated) {
		/* A second set before the first was used: the first
		 * was nobody's. */
		drop_fds(c);
		memcpy(c->fds, pf.fd, pf.n * sizeof(int));
		c->nfds = pf.n;
		c->fds_pending = true;
		c->fds_refused = pf.truncated;
		c->fds_at = c->rx + (uint64_t)(r > 0 ? r : 1) - 1;
	}
	if (r < 0)
		return 0;
	if (r == 0)
		c->eof = true;
	if (r > 0) {
		c->in_off = 0;
		c->in_len = (size_t)r;
		c->rx += (uint64_t)r;
	}
	c->active_ns = cv_now_ns();
	return 1;
}

static void on_conn(void *opaque, int fd, uint32_t events)
{
	struct http_conn *c = opaque;

	(void)fd;
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	/* EPOLLHUP: the peer has closed both ways. What it wrote before is
	 * still to be read and served (a request sent just before the close
	 * is run); no answer can reach it. Until the end of its bytes,
	 * reads never wait: only the handler's answer is waited for, with
	 * the hang-up (reported at every round) no longer watched. */
	if (events & EPOLLHUP) {
		c->hup = true;
		conn_watch(c, EPOLLET);
	}
	/* The handler's own loop rounds: the request's conn_run goes on
	 * once it returns. */
	if (c->in_handler)
		return;
	conn_run(c);
}

/* Make room for one more connection: close the one idle longest (no
 * request with the handler). false: every one is busy. */
static bool make_room(struct http_server *s)
{
	struct http_conn *old = NULL;
	unsigned int n = 0;

	for (struct http_conn *c = s->conns; c; c = c->next) {
		if (c->fd < 0)
			continue;
		n++;
		if (!c->busy && (!old || c->active_ns < old->active_ns))
			old = c;
	}
	if (n < HTTP_CONNS_MAX)
		return true;
	if (!old)
		return false;
	cv_debug("api: %d connections; closing the one idle longest", HTTP_CONNS_MAX);
	conn_close(old);
	return true;
}

/* Refused peers waiting for their 403 at once; more are closed unanswered
 * (they cannot take the slots of the admitted: make_room is not theirs). */
#define HTTP_REFUSED_MAX 4

/* The admission check. A refused peer's request is read (answering
 * before it, then closing, would reset the connection under a client
 * still writing, which then loses the answer) and answered 403 with the
 * check's JSON body; it never reaches the handler. */
static bool admit_peer(struct http_server *s, int cfd, char *refusal, size_t len)
{
	unsigned int n = 0;

	if (!s->admit || s->admit(s->opaque, cfd, refusal, len)) {
		refusal[0] = '\0'; /* admitted: whatever the check wrote */
		return true;
	}
	if (!refusal[0])
		snprintf(refusal, len, "{}");
	for (struct http_conn *c = s->conns; c; c = c->next)
		n += c->fd >= 0 && c->refusal[0];
	return n < HTTP_REFUSED_MAX;
}

static void on_listen(void *opaque, int fd, uint32_t events)
{
	struct http_server *s = opaque;
	struct http_conn *c;
	char refusal[HTTP_REFUSAL_MAX];
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)events;
	if (cfd < 0)
		return;
	refusal[0] = '\0';
	if (!admit_peer(s, cfd, refusal, sizeof(refusal)) || (!refusal[0] && !make_room(s)) ||
	    !(c = calloc(1, sizeof(*c)))) {
		close(cfd);
		return;
	}
	*c = (struct http_conn){ .s = s, .fd = cfd, .events = EPOLLIN, .active_ns = cv_now_ns() };
	memcpy(c->refusal, refusal, sizeof(refusal));
	if (!(c->p = http_parse_new()) || evloop_add(s->loop, cfd, EPOLLIN, on_conn, c)) {
		http_parse_free(c->p);
		free(c);
		close(cfd);
		return;
	}
	c->next = s->conns;
	s->conns = c;
}

/* The stall timer: a request begun and not finished, or an answer not
 * read, within the stall time. */
static void on_timer(void *opaque, int fd, uint32_t events)
{
	struct http_server *s = opaque;
	uint64_t ticks, now = cv_now_ns();
	struct http_conn *next;
	char msg[80];

	(void)events;
	if (read(fd, &ticks, sizeof(ticks)) < 0) {
		/* nothing to read: re-armed since it fired */
	}
	s->timer_at = 0;
	for (struct http_conn *c = s->conns; c; c = next) {
		next = c->next;
		if (c->fd < 0 || !c->stall_ns || now - c->stall_ns < s->stall_ns)
			continue;
		if (c->out_len) {
			conn_close(c); /* it does not read its answers */
			continue;
		}
		snprintf(msg, sizeof(msg), "request not completed within %llu ms",
			 (unsigned long long)(s->stall_ns / 1000000));
		c->stall_ns = 0;
		queue_refusal(c, 408, "text/plain", msg);
		conn_run(c);
	}
	stall_arm(s, true);
}

int http_server_start(struct http_server **out, struct evloop *loop, int listen_fd,
		      http_handler_fn handler, http_admit_fn admit, void *opaque)
{
	struct http_server *s = calloc(1, sizeof(*s));
	int r;

	*out = NULL;
	if (!s) {
		close(listen_fd);
		return -ENOMEM;
	}
	*s = (struct http_server){ .loop = loop,
				   .listen_fd = listen_fd,
				   .timer_fd = -1,
				   .handler = handler,
				   .admit = admit,
				   .opaque = opaque,
				   .stall_ns = HTTP_STALL_MS * 1000000ULL };
	r = fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) < 0 ? -errno : 0;
	if (!r && (r = evloop_add_timer(loop, 0, 0, on_timer, s)) >= 0) {
		s->timer_fd = r;
		r = evloop_add(loop, listen_fd, EPOLLIN, on_listen, s);
		if (r) {
			evloop_del(loop, s->timer_fd);
			cv_close(&s->timer_fd);
		}
	}
	if (r) {
		close(listen_fd);
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

/* Watch fd on loop `to` as it is on s's loop (step 1 of a move). */
static int move_add(struct http_server *s, struct evloop *to, int fd, uint32_t events, void *opq)
{
	evloop_fn fn = fd == s->listen_fd ? on_listen : fd == s->timer_fd ? on_timer : on_conn;

	return evloop_add(to, fd, events, fn, opq);
}

int http_server_move(struct http_server *s, struct evloop *to)
{
	struct http_conn *c, *stop = NULL;
	int r;

	if (to == s->loop)
		return 0;
	if ((r = move_add(s, to, s->listen_fd, EPOLLIN, s)))
		return r;
	if ((r = move_add(s, to, s->timer_fd, EPOLLIN, s)))
		goto undo_listen;
	for (c = s->conns; c; c = c->next)
		if (c->fd >= 0 && (r = move_add(s, to, c->fd, c->events, c))) {
			stop = c;
			goto undo;
		}
	/* Every fd is on both loops: leave the old one. */
	for (c = s->conns; c; c = c->next)
		if (c->fd >= 0)
			evloop_del(s->loop, c->fd);
	evloop_del(s->loop, s->timer_fd);
	evloop_del(s->loop, s->listen_fd);
	s->loop = to;
	return 0;
undo:
	for (c = s->conns; c != stop; c = c->next)
		if (c->fd >= 0)
			evloop_del(to, c->fd);
	evloop_del(to, s->timer_fd);
undo_listen:
	evloop_del(to, s->listen_fd);
	return r;
}

/* Answer the request c waits on (http_reply, http_reply_error). */
static void answer(struct http_conn *c, int status, const char *type, const char *extra,
		   const char *body, size_t len)
{
	if (!c || !c->busy)
		return; /* no request waits: a second answer */
	c->busy = false;
	if (c->fd < 0) {
		/* The peer left meanwhile. */
		if (!c->in_handler)
			conn_unlink_free(c);
		return;
	}
	c->active_ns = cv_now_ns();
	queue_answer(c, status, type, extra, body, len);
	c->head = false;
	if (!c->in_handler)
		conn_run(c);
}

void http_reply(struct http_conn *c, int status, const char *body, size_t len)
{
	answer(c, status, "application/json", "", body ? body : "", body ? len : 0);
}

void http_reply_error(struct http_conn *c, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	cv_vformat_line(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	answer(c, status, "text/plain", "", msg, strlen(msg));
}

void http_reply_not_allowed(struct http_conn *c, const char *allow, const char *fmt, ...)
{
	char msg[512], hdr[96];
	va_list ap;

	va_start(ap, fmt);
	cv_vformat_line(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(hdr, sizeof(hdr), "Allow: %.80s\r\n", allow);
	answer(c, 405, "text/plain", hdr, msg, strlen(msg));
}

void http_server_set_stall_ms(struct http_server *s, unsigned int ms)
{
	s->stall_ns = (uint64_t)ms * 1000000ULL;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	while (s->conns) {
		struct http_conn *c = s->conns;

		c->busy = c->in_handler = false;
		conn_close(c);
	}
	evloop_del(s->loop, s->listen_fd);
	close(s->listen_fd);
	evloop_del(s->loop, s->timer_fd);
	close(s->timer_fd);
	free(s);
}
