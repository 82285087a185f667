/* test_http.c - the REST API's HTTP server (src/api/http.c, http_parse.c)
 * on a real unix socket and event loop, driven the way its clients drive
 * it: curl's keep-alive GETs and PUTs (with libvirt 9.0's chunked,
 * Expect: 100-continue empty body), pipelined requests, an answer given
 * later, libvirt 11.3's hand-written request with tap fds, and hostile
 * ones (oversized, malformed, stalled, too many connections). The
 * handler echoes "METHOD PATH BODY_LEN:BODY"; a few paths ask for more. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "unix_client.h"

#include "cvisor/evloop.h"
#include "cvisor/http.h"
#include "cvisor/sandbox.h"

#define BIG (2 * 1024 * 1024) /* /big's answer: more than a socket holds */

struct fixture {
	char dir[64], path[96];
	struct evloop loop, other;
	struct evloop *cur; /* the loop the server is on */
	struct http_server *s;
	unsigned int requests, last_nfds;
	struct http_conn *pending; /* /async's, answered by the test */
	int taken;		   /* the fd /take-fd kept */
	bool admit_no;
	bool remote; /* the server runs in a child (test_seccomp): just wait */
	bool quit;   /* the child's server got /quit */
	int hangup;  /* a client /rounds closes: its peer leaves meanwhile */
};

static void handler(void *opaque, struct http_conn *c, struct http_request *req)
{
	struct fixture *f = opaque;
	char *buf;
	size_t len = strlen(req->path) + req->body_len + 64;

	f->requests++;
	f->last_nfds = req->nfds;
	f->quit = !strcmp(req->path, "/quit");
	if (!strcmp(req->path, "/async")) {
		f->pending = c;
		return;
	}
	if (!strcmp(req->path, "/rounds")) {
		/* a handler that runs the loop, as a migration does */
		cv_close(&f->hangup);
		for (int i = 0; i < 20; i++)
			assert_int_equal(evloop_once(f->cur, 5), 0);
		http_reply(c, 200, "{}", 2);
		return;
	}
	if (!strcmp(req->path, "/405")) {
		http_reply_not_allowed(c, "GET", "only use %s", "GET");
		return;
	}
	if (!strcmp(req->path, "/204")) {
		http_reply(c, 204, NULL, 0);
		return;
	}
	if (!strcmp(req->path, "/error")) {
		http_reply_error(c, 404, "no such thing:\n%s", "here");
		return;
	}
	if (!strcmp(req->path, "/take-fd") && req->nfds) {
		f->taken = req->fds[0];
		req->fds[0] = -1;
	}
	if (!strcmp(req->path, "/big"))
		len = BIG;
	buf = malloc(len);
	assert_non_null(buf);
	if (!strcmp(req->path, "/big"))
		memset(buf, 'x', len);
	else
		len = (size_t)snprintf(buf, len, "%s %s %zu:%s", req->method_name, req->path,
				       req->body_len, req->body);
	http_reply(c, 200, buf, len);
	free(buf);
}

static bool admit(void *opaque, int fd, char *body, size_t len)
{
	struct fixture *f = opaque;

	(void)fd;
	snprintf(body, len, "{\"error\":\"not you\"}");
	return !f->admit_no;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	assert_non_null(f);
	f->taken = f->hangup = -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cvisor-http-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/api.sock", f->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(evloop_init(&f->loop), 0);
	f->cur = &f->loop;
	assert_int_equal(http_server_start(&f->s, &f->loop, fd, handler, admit, f), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	http_server_free(f->s);
	evloop_destroy(&f->loop);
	if (f->taken >= 0)
		close(f->taken);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int client(struct fixture *f)
{
	int fd = unix_client(f->path);

	assert_true(fd >= 0);
	return fd;
}

/* Event loop rounds for up to ms, or until fd is readable (fd >= 0). */
static void pump(struct fixture *f, int ms, int fd)
{
	uint64_t end = cv_now_ns() + (uint64_t)ms * 1000000ULL;

	while (cv_now_ns() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (f->remote)
			poll(&p, fd >= 0 ? 1 : 0, 10);
		else
			assert_int_equal(evloop_once(f->cur, 10), 0);
		if (fd >= 0 && poll(&p, 1, 0) == 1)
			return;
	}
}

/* Send all of s[0..n), running the loop while the socket is full. */
static void send_n(struct fixture *f, int fd, const char *s, size_t n)
{
	uint64_t end = cv_now_ns() + 5000000000ULL;

	while (n && cv_now_ns() < end) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			/* a server that answered early and closed: stop */
			if (errno != EAGAIN)
				return;
			pump(f, 10, -1);
			continue;
		}
		s += w;
		n -= (size_t)w;
	}
}

static void send_str(struct fixture *f, int fd, const char *s)
{
	send_n(f, fd, s, strlen(s));
}

/* What the server sent on fd until it holds want (NULL: until the server
 * closes), or 3 s passed. *closed: the server closed. Bytes read. */
static size_t read_until(struct fixture *f, int fd, char *buf, size_t len, const char *want,
			 bool *closed)
{
	size_t n = 0;
	uint64_t end = cv_now_ns() + 3000000000ULL;

	*closed = false;
	buf[0] = '\0';
	while (n + 1 < len && cv_now_ns() < end) {
		ssize_t r;

		pump(f, 20, fd);
		r = recv(fd, buf + n, len - 1 - n, MSG_DONTWAIT);
		if (r == 0) {
			*closed = true;
			break;
		}
		if (r > 0)
			n += (size_t)r;
		buf[n] = '\0';
		if (want && strstr(buf, want))
			break;
	}
	return n;
}

/* The echo of a body-less request: the handler's answer. */
static void expect_echo(struct fixture *f, int fd, const char *method, const char *path)
{
	char body[128], want[256], buf[512];
	bool closed;
	int n = snprintf(body, sizeof(body), "%s %s 0:", method, path);

	snprintf(
		want, sizeof(want),
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		n, body);
	read_until(f, fd, buf, sizeof(buf), want, &closed);
	assert_string_equal(buf, want);
}

/* The connection's next bytes are a refusal with status and then EOF. */
static void expect_refusal(struct fixture *f, int fd, const char *status_line)
{
	char buf[1024];
	bool closed;

	read_until(f, fd, buf, sizeof(buf), NULL, &closed);
	assert_true(closed);
	assert_non_null(strstr(buf, "Connection: close\r\n"));
	assert_memory_equal(buf, status_line, strlen(status_line));
}

/* Nothing has come on fd (the server keeps it open, and silent). */
static void assert_silent(int fd)
{
	char b;

	assert_int_equal(recv(fd, &b, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* GET and PUT with and without a body, on one keep-alive connection. */
static void test_get_put(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	char buf[512];
	bool closed;
	const char *put_reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				"Content-Length: 26\r\n\r\nPUT /api/v1/vm.x 7:{\"a\":1}";

	send_str(f, fd, "GET /api/v1/vmm.ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
	expect_echo(f, fd, "GET", "/api/v1/vmm.ping");
	send_str(f, fd,
		 "PUT /api/v1/vm.x?q=1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
		 "application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
	read_until(f, fd, buf, sizeof(buf), put_reply, &closed);
	assert_string_equal(buf, put_reply);
	send_str(f, fd, "PUT /204 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), "\r\n\r\n", &closed);
	assert_string_equal(buf, "HTTP/1.1 204 No Content\r\n\r\n");
	send_str(f, fd, "DELETE /error HTTP/1.1\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), "here", &closed);
	assert_string_equal(buf, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
				 "Content-Length: 19\r\n\r\nno such thing: here");
	assert_int_equal(f->requests, 4);
	/* Still open: keep-alive is HTTP/1.1's default. */
	pump(f, 50, -1);
	assert_silent(fd);
	close(fd);
}

/* libvirt 9.0's body-less PUT through curl 7.88 (curl -T - </dev/null
 * sends the same): chunked, Expect: 100-continue, an empty chunked body
 * once the 100 came. Then a chunked body with data. */
static void test_chunked_expect(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	char buf[512];
	bool closed;
	const char *hello = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			    "Content-Length: 28\r\n\r\nPUT /api/v1/c 11:hello world";

	send_str(f, fd,
		 "PUT /api/v1/vm.boot HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\n"
		 "Accept: application/json\r\nTransfer-Encoding: chunked\r\n"
		 "Expect: 100-continue\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), "\r\n\r\n", &closed);
	assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
	assert_int_equal(f->requests, 0);
	send_str(f, fd, "0\r\n\r\n");
	expect_echo(f, fd, "PUT", "/api/v1/vm.boot");
	send_str(f, fd,
		 "PUT /api/v1/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
		 "6\r\n world\r\n0\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), hello, &closed);
	assert_string_equal(buf, hello);
	/* The body came with the head: no 100 (RFC 9110 10.1.1). */
	send_str(f, fd,
		 "PUT /api/v1/c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n"
		 "hello world");
	read_until(f, fd, buf, sizeof(buf), hello, &closed);
	assert_string_equal(buf, hello);
	close(fd);
}

/* Two requests in one write: two answers, in order; a third with
 * Connection: close is answered and the connection closed. */
static void test_pipelined(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	char buf[1024];
	bool closed;

	send_str(f, fd,
		 "GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n"
		 "GET /two HTTP/1.1\r\nHost: localhost\r\n\r\n"
		 "GET /three HTTP/1.1\r\nConnection: close\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), NULL, &closed);
	assert_true(closed);
	assert_string_equal(buf,
			    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
			    "11\r\n\r\nGET /one 0:"
			    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
			    "11\r\n\r\nGET /two 0:"
			    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
			    "13\r\nConnection: close\r\n\r\nGET /three 0:");
	close(fd);
}

/* HTTP/1.0 is answered and closed. */
static void test_http10(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	char buf[512];
	bool closed;

	send_str(f, fd, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), NULL, &closed);
	assert_true(closed);
	assert_non_null(strstr(buf, "\r\n\r\nGET /old 0:"));
	close(fd);
}

/* An answer given later: the request pipelined behind it waits, then
 * both answers come in order. An answer to a peer that left is dropped. */
static void test_async(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	char buf[1024];
	bool closed;

	send_str(f, fd, "GET /async HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
	pump(f, 100, -1);
	assert_non_null(f->pending);
	assert_int_equal(f->requests, 1);
	assert_silent(fd);
	http_reply(f->pending, 200, "{\"late\":1}", 10);
	f->pending = NULL;
	read_until(f, fd, buf, sizeof(buf), "GET /after 0:", &closed);
	assert_string_equal(buf,
			    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
			    "10\r\n\r\n{\"late\":1}"
			    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
			    "13\r\n\r\nGET /after 0:");
	assert_int_equal(f->requests, 2);
	/* The peer leaves while its answer is pending. */
	send_str(f, fd, "GET /async HTTP/1.1\r\n\r\n");
	pump(f, 100, -1);
	assert_non_null(f->pending);
	close(fd);
	pump(f, 100, -1);
	http_reply_error(f->pending, 500, "gone");
	f->pending = NULL;
	pump(f, 50, -1);
}

/* A handler that runs loop rounds of its own: the requests behind wait,
 * and a peer that leaves meanwhile is closed under it, safely. */
static void test_nested_rounds(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	char buf[512];
	bool closed;

	send_str(f, fd, "GET /rounds HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), "GET /next 0:", &closed);
	assert_string_equal(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				 "Content-Length: 2\r\n\r\n{}"
				 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				 "Content-Length: 12\r\n\r\nGET /next 0:");
	send_str(f, fd, "GET /rounds HTTP/1.1\r\n\r\n");
	f->hangup = fd;
	pump(f, 200, -1);
	assert_int_equal(f->hangup, -1);
	assert_int_equal(f->requests, 3);
}

/* A pipe whose write end goes to the server; the read end tells whether
 * every copy of it was closed. */
static void make_pipe(int p[2])
{
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
}

static bool pipe_closed(int rfd)
{
	char b;

	return read(rfd, &b, 1) == 0;
}

/* Send s in one sendmsg with the files fds (libvirt 11.3's vm.add-net). */
static void send_with_fds(int fd, const char *s, const int *fds, unsigned int n)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 32)];
	} u = { 0 };
	struct iovec iov = { .iov_base = (void *)s, .iov_len = strlen(s) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = CMSG_SPACE(sizeof(int) * n) };

	u.h.cmsg_level = SOL_SOCKET;
	u.h.cmsg_type = SCM_RIGHTS;
	u.h.cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(&u.h), fds, sizeof(int) * n);
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Files with a request reach the handler; the one it takes stays open,
 * the others are closed. libvirt reads the answer with one recv. */
static void test_fds(void **state)
{
	struct fixture *f = *state;
	int fd = client(f), a[2], b[2], fds[2];
	char buf[1024];
	const char *body = "{\"tap\":\"t0\"}";
	bool closed;

	make_pipe(a);
	make_pipe(b);
	fds[0] = a[1];
	fds[1] = b[1];
	snprintf(buf, sizeof(buf),
		 "PUT /take-fd HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(body), body);
	send_with_fds(fd, buf, fds, 2);
	close(a[1]);
	close(b[1]);
	pump(f, 500, fd);
	assert_true(recv(fd, buf, 1023, 0) > 0);
	assert_memory_equal(buf, "HTTP/1.1 200 OK\r\n", 17);
	assert_int_equal(f->last_nfds, 2);
	assert_true(f->taken >= 0);
	assert_true(pipe_closed(b[0]));
	assert_false(pipe_closed(a[0]));
	close(f->taken);
	f->taken = -1;
	assert_true(pipe_closed(a[0]));
	close(a[0]);
	close(b[0]);

	/* A request whose handler takes none: all closed. The next request
	 * on the connection has none. */
	make_pipe(a);
	send_with_fds(fd, "GET /x HTTP/1.1\r\n\r\n", &a[1], 1);
	close(a[1]);
	expect_echo(f, fd, "GET", "/x");
	assert_int_equal(f->last_nfds, 1);
	assert_true(pipe_closed(a[0]));
	close(a[0]);
	send_str(f, fd, "GET /y HTTP/1.1\r\n\r\n");
	expect_echo(f, fd, "GET", "/y");
	assert_int_equal(f->last_nfds, 0);
	close(fd);

	/* Two requests in one write with files: the files came with the
	 * last byte, so they are the second request's. */
	fd = client(f);
	make_pipe(a);
	send_with_fds(fd, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", &a[1], 1);
	close(a[1]);
	read_until(f, fd, buf, sizeof(buf), "GET /2 0:", &closed);
	assert_non_null(strstr(buf, "GET /2 0:"));
	assert_int_equal(f->last_nfds, 1);
	assert_true(pipe_closed(a[0]));
	close(a[0]);
	close(fd);

	/* More files than a request may bring: 400, none kept. */
	fd = client(f);
	{
		int many[HTTP_FDS_MAX + 1];

		make_pipe(a);
		for (unsigned int i = 0; i < ARRAY_SIZE(many); i++)
			many[i] = a[1];
		send_with_fds(fd, "GET /x HTTP/1.1\r\n\r\n", many, ARRAY_SIZE(many));
		close(a[1]);
		expect_refusal(f, fd, "HTTP/1.1 400 Bad Request\r\n");
		assert_true(pipe_closed(a[0]));
		close(a[0]);
	}
	close(fd);
}

/* Oversized, malformed and unsupported requests: one error answer, then
 * the connection closes; the server goes on serving. */
static void test_refused(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *req, *status;
	} cases[] = {
		{ "PUT /x HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n",
		  "HTTP/1.1 413 Payload Too Large\r\n" },
		{ "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1048577\r\n\r\n",
		  "HTTP/1.1 413 Payload Too Large\r\n" },
		{ "GET /x HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n" },
		{ "GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		  "HTTP/1.1 400 Bad Request\r\n" },
		{ "\x01\x02\r\n\r\n", "HTTP/1.1 501 Not Implemented\r\n" },
		{ "GET x y z\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n" },
		{ "OPTIONS * HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n" },
		{ "BREW /pot HTTP/1.1\r\n\r\n", "HTTP/1.1 501 Not Implemented\r\n" },
		{ "GET /x HTTP/2.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported\r\n" },
	};
	char *big;

	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++) {
		int fd = client(f);

		send_str(f, fd, cases[i].req);
		expect_refusal(f, fd, cases[i].status);
		close(fd);
	}
	assert_int_equal(f->requests, 0);

	/* A chunked body past the bound. */
	big = malloc(HTTP_BODY_MAX + 64);
	assert_non_null(big);
	{
		int fd = client(f);
		int n = snprintf(big, 64,
				 "PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "%x\r\n",
				 HTTP_BODY_MAX + 1);

		memset(big + n, 'a', HTTP_BODY_MAX + 1);
		send_n(f, fd, big, (size_t)n + HTTP_BODY_MAX + 1);
		expect_refusal(f, fd, "HTTP/1.1 413 Payload Too Large\r\n");
		close(fd);
	}
	/* A head past the bound. */
	{
		int fd = client(f);
		int n = snprintf(big, 64, "GET /x HTTP/1.1\r\nX-Big: ");

		memset(big + n, 'b', HTTP_HEAD_MAX);
		memcpy(big + n + HTTP_HEAD_MAX, "\r\n\r\n", 5);
		send_str(f, fd, big);
		expect_refusal(f, fd, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
		close(fd);
	}
	free(big);
	assert_int_equal(f->requests, 0);
	/* A body at the bound is taken. */
	{
		int fd = client(f);
		char buf[256];
		bool closed;

		big = malloc(HTTP_BODY_MAX + 128);
		assert_non_null(big);
		int n = snprintf(big, 128, "PUT /max HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
				 HTTP_BODY_MAX);

		memset(big + n, 'c', HTTP_BODY_MAX);
		send_n(f, fd, big, (size_t)n + HTTP_BODY_MAX);
		free(big);
		read_until(f, fd, buf, sizeof(buf), "PUT /max 1048576:ccc", &closed);
		assert_non_null(strstr(buf, "Content-Length: 1048593\r\n"));
		close(fd);
	}
}

/* A request begun and not finished within the stall time: 408 and
 * closed. A keep-alive connection idle between requests stays. */
static void test_stall(void **state)
{
	struct fixture *f = *state;
	int idle = client(f), slow = client(f), i;
	char buf[512];
	bool closed;

	http_server_set_stall_ms(f->s, 200);
	send_str(f, idle, "GET /a HTTP/1.1\r\n\r\n");
	expect_echo(f, idle, "GET", "/a");
	send_str(f, slow, "GET /b HTTP/1.1\r\nHost: loc");
	read_until(f, slow, buf, sizeof(buf), NULL, &closed);
	assert_true(closed);
	assert_memory_equal(buf, "HTTP/1.1 408 Request Timeout\r\n", 30);
	assert_non_null(strstr(buf, "request not completed within 200 ms"));
	close(slow);
	/* A byte at a time, each within the stall time, does not reset it. */
	slow = client(f);
	send_str(f, slow, "GET /b HTTP/1.1\r\nX-Slow: ");
	for (i = 0; i < 40; i++) {
		struct pollfd p = { .fd = slow, .events = POLLIN };

		send_str(f, slow, "a");
		pump(f, 50, slow);
		if (poll(&p, 1, 0) == 1)
			break;
	}
	assert_true(i < 40);
	read_until(f, slow, buf, sizeof(buf), NULL, &closed);
	assert_true(closed);
	assert_memory_equal(buf, "HTTP/1.1 408 Request Timeout\r\n", 30);
	close(slow);
	/* Files that came with no request: not held past the stall time. */
	{
		int a[2];

		slow = client(f);
		make_pipe(a);
		send_with_fds(slow, "\r\n", &a[1], 1);
		close(a[1]);
		read_until(f, slow, buf, sizeof(buf), NULL, &closed);
		assert_true(closed);
		assert_true(pipe_closed(a[0]));
		close(a[0]);
		close(slow);
	}
	pump(f, 300, -1);
	assert_silent(idle);
	send_str(f, idle, "GET /c HTTP/1.1\r\n\r\n");
	expect_echo(f, idle, "GET", "/c");
	assert_int_equal(f->requests, 2);
	close(idle);
}

/* An answer larger than the socket holds is finished on EPOLLOUT; a peer
 * that leaves mid-answer is closed (no SIGPIPE). */
static void test_big_answer(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	char *buf = malloc(BIG + 256);
	size_t n = 0;
	bool closed;

	assert_non_null(buf);
	send_str(f, fd, "GET /big HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
	pump(f, 100, -1);
	/* The second request waits for the first answer to be sent. */
	assert_int_equal(f->requests, 1);
	n = read_until(f, fd, buf, BIG + 256, "GET /after 0:", &closed);
	assert_true(n > BIG);
	assert_non_null(strstr(buf, "Content-Length: 2097152\r\n"));
	assert_int_equal(f->requests, 2);
	send_str(f, fd, "GET /big HTTP/1.1\r\n\r\n");
	pump(f, 100, -1);
	close(fd);
	pump(f, 100, -1);
	free(buf);
}

/* More than HTTP_CONNS_MAX connections: the one idle longest is closed,
 * not one whose request the handler holds. Refused peers are closed. */
static void test_conn_limit(void **state)
{
	struct fixture *f = *state;
	int fds[HTTP_CONNS_MAX], extra;
	char buf[256];
	bool closed;

	for (int i = 0; i < HTTP_CONNS_MAX; i++) {
		fds[i] = client(f);
		snprintf(buf, sizeof(buf), "GET /%s HTTP/1.1\r\n\r\n", i ? "n" : "async");
		send_str(f, fds[i], buf);
		if (i)
			expect_echo(f, fds[i], "GET", "/n");
		else
			pump(f, 100, -1);
	}
	assert_non_null(f->pending);
	extra = client(f);
	send_str(f, extra, "GET /extra HTTP/1.1\r\n\r\n");
	expect_echo(f, extra, "GET", "/extra");
	/* fds[1] was idle longest; fds[0] is busy. */
	read_until(f, fds[1], buf, sizeof(buf), NULL, &closed);
	assert_true(closed);
	for (int i = 2; i < HTTP_CONNS_MAX; i++)
		assert_silent(fds[i]);
	http_reply(f->pending, 204, NULL, 0);
	f->pending = NULL;
	read_until(f, fds[0], buf, sizeof(buf), "\r\n\r\n", &closed);
	assert_string_equal(buf, "HTTP/1.1 204 No Content\r\n\r\n");
	for (int i = 0; i < HTTP_CONNS_MAX; i++)
		close(fds[i]);
	close(extra);

	/* A refused peer: an HTTP 403 with the JSON reason (not the control
	 * socket's line), then closed; its request never reaches the handler. */
	f->admit_no = true;
	extra = client(f);
	send_str(f, extra, "GET /no HTTP/1.1\r\n\r\n");
	read_until(f, extra, buf, sizeof(buf), NULL, &closed);
	assert_true(closed);
	assert_string_equal(buf, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
				 "Content-Length: 19\r\nConnection: close\r\n\r\n"
				 "{\"error\":\"not you\"}");
	assert_int_equal(f->requests, HTTP_CONNS_MAX + 1);
	close(extra);
	/* Refused peers that say nothing: four wait for their request, a
	 * fifth is closed unanswered. */
	for (int i = 0; i < 4; i++) {
		fds[i] = client(f);
		pump(f, 20, -1);
	}
	extra = client(f);
	read_until(f, extra, buf, sizeof(buf), NULL, &closed);
	assert_true(closed);
	assert_string_equal(buf, "");
	close(extra);
	for (int i = 0; i < 4; i++) {
		assert_silent(fds[i]);
		close(fds[i]);
	}
}

/* Send req; the answer is exactly want, and nothing follows it. */
static void expect_only(struct fixture *f, int fd, const char *req, const char *want)
{
	char buf[512];
	bool closed;

	send_str(f, fd, req);
	read_until(f, fd, buf, sizeof(buf), "\r\n\r\n", &closed);
	pump(f, 50, -1);
	assert_silent(fd);
	assert_string_equal(buf, want);
}

/* A HEAD is answered without a body, whatever the status (RFC 9110
 * 9.3.2), with the Content-Length a GET's body would have; a 405 names
 * the allowed methods (15.5.6). The next request on the connection gets
 * its body again. */
static void test_head(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);
	char buf[512];
	bool closed;

	expect_only(f, fd, "HEAD /api/v1/x HTTP/1.1\r\n\r\n",
		    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		    "Content-Length: 17\r\n\r\n");
	expect_only(f, fd, "HEAD /405 HTTP/1.1\r\n\r\n",
		    "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
		    "Content-Length: 12\r\nAllow: GET\r\n\r\n");
	send_str(f, fd, "GET /405 HTTP/1.1\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), "use GET", &closed);
	assert_string_equal(buf, "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
				 "Content-Length: 12\r\nAllow: GET\r\n\r\nonly use GET");
	close(fd);
}

/* Requests written just before the peer closes both ways (a hang-up)
 * are still run, in order, though no answer can reach it: the one the
 * handler answers later too, and the ones behind it. */
static void test_hangup(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);

	send_str(f, fd, "PUT /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET /b HTTP/1.1\r\n\r\n");
	close(fd);
	pump(f, 100, -1);
	assert_int_equal(f->requests, 2);

	fd = client(f);
	send_str(f, fd, "GET /async HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
	shutdown(fd, SHUT_RDWR);
	pump(f, 100, -1);
	assert_int_equal(f->requests, 3);
	assert_non_null(f->pending);
	http_reply(f->pending, 204, NULL, 0);
	f->pending = NULL;
	pump(f, 100, -1);
	assert_int_equal(f->requests, 4);
	close(fd);
	pump(f, 50, -1);
}

/* The server moves to another loop with its connections, and back. */
static void test_move(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);

	send_str(f, fd, "GET /a HTTP/1.1\r\n\r\n");
	expect_echo(f, fd, "GET", "/a");
	assert_int_equal(evloop_init(&f->other), 0);
	assert_int_equal(http_server_move(f->s, &f->other), 0);
	f->cur = &f->other;
	send_str(f, fd, "GET /b HTTP/1.1\r\n\r\n");
	expect_echo(f, fd, "GET", "/b");
	/* Nothing is left on the first loop. */
	assert_int_equal(evloop_once(&f->loop, 0), 0);
	assert_int_equal(f->requests, 2);
	assert_int_equal(http_server_move(f->s, &f->loop), 0);
	f->cur = &f->loop;
	evloop_destroy(&f->other);
	send_str(f, fd, "GET /c HTTP/1.1\r\n\r\n");
	expect_echo(f, fd, "GET", "/c");
	close(fd);
}

/* The server under the main thread's seccomp filter (it runs on the
 * main thread): accept, reads with files, answers, a 100, a refusal and
 * the stall timer are all allowed; a refused call would end the child
 * with status 1 and its name on stderr. */
static void test_seccomp_main(void **state)
{
	struct fixture *f = *state;
	int fd, slow, a[2], status;
	char buf[1024];
	bool closed;
	pid_t pid;

	http_server_set_stall_ms(f->s, 100);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cv_error e = { 0 };
		uint64_t end = cv_now_ns() + 10000000000ULL;

		if (sandbox_init(SANDBOX_ON, &e) || sandbox_enter(SANDBOX_MAIN))
			_exit(99);
		while (!f->quit && cv_now_ns() < end)
			if (evloop_once(f->cur, 100))
				_exit(98);
		for (int i = 0; i < 10; i++)
			if (evloop_once(f->cur, 10))
				_exit(98);
		http_server_free(f->s);
		_exit(f->quit ? 0 : 97);
	}
	f->remote = true;
	fd = client(f);
	slow = client(f);
	send_str(f, slow, "GET /slow HTTP/1.1\r\n");
	send_str(f, fd, "GET /a HTTP/1.1\r\n\r\n");
	expect_echo(f, fd, "GET", "/a");
	send_str(f, fd,
		 "PUT /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
	read_until(f, fd, buf, sizeof(buf), "\r\n\r\n", &closed);
	assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
	send_str(f, fd, "0\r\n\r\n");
	expect_echo(f, fd, "PUT", "/b");
	make_pipe(a);
	send_with_fds(fd, "GET /take-fd HTTP/1.1\r\n\r\n", &a[1], 1);
	close(a[1]);
	read_until(f, fd, buf, sizeof(buf), "GET /take-fd 0:", &closed);
	assert_non_null(strstr(buf, "GET /take-fd 0:"));
	close(a[0]);
	read_until(f, slow, buf, sizeof(buf), NULL, &closed);
	assert_true(closed);
	assert_memory_equal(buf, "HTTP/1.1 408 Request Timeout\r\n", 30);
	close(slow);
	send_str(f, fd, "PUT /x HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n");
	expect_refusal(f, fd, "HTTP/1.1 413 Payload Too Large\r\n");
	close(fd);
	fd = client(f);
	send_str(f, fd, "GET /quit HTTP/1.1\r\n\r\n");
	expect_echo(f, fd, "GET", "/quit");
	close(fd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* The parser alone: a request fed a byte at a time completes on its last
 * byte; the path loses its query; absolute-form targets give their path. */
static void test_parse(void **state)
{
	static const char req[] = "PUT http://localhost/api/v1/vm.add-net?x=1 HTTP/1.1\r\n"
				  "Host: localhost\r\nContent-Length: 2\r\n\r\n{}"
				  "GET /again HTTP/1.0\r\n\r\n";
	struct http_parse *p = http_parse_new();
	struct http_request *r;
	size_t used, i = 0;
	int status;

	(void)state;
	assert_non_null(p);
	for (; i < sizeof(req) - 1; i++) {
		enum http_parse_result res = http_parse_feed(p, req + i, 1, &used, &status);

		assert_int_equal(used, 1);
		if (res == HTTP_PARSE_DONE)
			break;
		assert_int_equal(res, HTTP_PARSE_MORE);
		assert_true(http_parse_begun(p));
	}
	assert_int_equal(i, strstr(req, "{}") + 1 - req);
	r = http_parse_request(p);
	assert_int_equal(r->method, HTTP_M_PUT);
	assert_string_equal(r->method_name, "PUT");
	assert_string_equal(r->path, "/api/v1/vm.add-net");
	assert_string_equal(r->body, "{}");
	assert_int_equal(r->body_len, 2);
	assert_true(http_parse_keep_alive(p));
	assert_false(http_parse_begun(p));
	i++;
	assert_int_equal(http_parse_feed(p, req + i, sizeof(req) - 1 - i, &used, &status),
			 HTTP_PARSE_DONE);
	assert_int_equal(used, sizeof(req) - 1 - i);
	assert_string_equal(http_parse_request(p)->path, "/again");
	assert_false(http_parse_keep_alive(p));
	http_parse_free(p);
	assert_string_equal(http_status_reason(404), "Not Found");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunked_expect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http10, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_rounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conn_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hangup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seccomp_main, setup, teardown),
		cmocka_unit_test(test_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
