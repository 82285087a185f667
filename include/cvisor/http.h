/* http.h - a small HTTP/1.1 server on the monitor's event loop, for the
 * Cloud Hypervisor REST API (src/api/): requests parsed by Debian's
 * libhttp-parser, keep-alive and pipelining, bodies bounded, and file
 * descriptors that arrive with a request (SCM_RIGHTS, as libvirt sends
 * tap fds with vm.add-net and vm.restore) handed to the handler. Not
 * libmicrohttpd: that reads with recv(), which drops passed fds, and runs
 * its own threads beside the monitor's seccomp classes. */
#ifndef CVISOR_HTTP_H
#define CVISOR_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/util.h"

struct evloop;
struct http_server;
struct http_conn;

#define HTTP_BODY_MAX (1024 * 1024) /* a larger body: 413, connection closed */
#define HTTP_HEAD_MAX (16 * 1024)   /* request line and headers: else 431 */
#define HTTP_FDS_MAX 16		    /* fds taken with one request */
#define HTTP_CONNS_MAX 32	    /* more: the longest idle one is closed */
#define HTTP_STALL_MS 10000	    /* a request begun and not finished: 408 */

enum http_method {
	HTTP_M_GET,
	HTTP_M_PUT,
	HTTP_M_POST,
	HTTP_M_PATCH,
	HTTP_M_DELETE,
	HTTP_M_OTHER,
};

/* One complete request. path is the target without its query string,
 * NUL-terminated; body is NUL-terminated too (body_len excludes it; an
 * empty or chunked-empty body is "" and 0). fds are the descriptors that
 * came with the request's bytes: the handler takes one by setting its slot
 * to -1; the server closes the rest once the handler returns. */
struct http_request {
	enum http_method method;
	const char *method_name;
	char *path;
	char *body;
	size_t body_len;
	int fds[HTTP_FDS_MAX];
	unsigned int nfds;
};

/* Called once per request, in order; the next request on the same
 * connection waits until this one is answered (http_reply), now or later
 * (a reply that waits for the guest). req, its path and body are valid
 * during the call only; c until it is answered, even when the peer has
 * gone meanwhile (not past http_server_free). */
typedef void (*http_handler_fn)(void *opaque, struct http_conn *c, struct http_request *req);

/* May the peer of a just-accepted connection fd use the API? (the control
 * socket's rules, ctl_server_check). false: its first request is read
 * and answered 403 Forbidden with body (a JSON object the function wrote,
 * up to len bytes; "" gives {}), then it is closed; the handler never
 * sees it. At most 4 refused peers wait at once (more are closed
 * unanswered), and they never take an admitted one's place. NULL: anyone. */
typedef bool (*http_admit_fn)(void *opaque, int fd, char *body, size_t len);

/* Serve the listening unix socket listen_fd (taken: closed by
 * http_server_free, or at once if this fails) on loop. More than
 * HTTP_CONNS_MAX connections: the one idle longest is closed, or the new
 * one when every other has a request with the handler. A peer that does
 * not read its answer within HTTP_STALL_MS is closed. 0 or -errno. */
int http_server_start(struct http_server **out, struct evloop *loop, int listen_fd,
		      http_handler_fn handler, http_admit_fn admit, void *opaque) CV_MUST;

/* Move the server to another loop (the pre-boot loop to the VM's). */
int http_server_move(struct http_server *s, struct evloop *to) CV_MUST;

/* Answer the request c is waiting on: status (200, 204, 4xx, 5xx) with a
 * body of len bytes (NULL/0: none) of type application/json. Safe for a
 * connection that closed meanwhile (the answer is dropped); c is not to
 * be used after. A 204 carries no body and no Content-Length (RFC 9110
 * 8.6); every other answer has a Content-Length. The answer to a HEAD
 * has no body whatever its status, and the Content-Length of the body a
 * GET would have had (RFC 9110 9.3.2). */
void http_reply(struct http_conn *c, int status, const char *body, size_t len);

/* An error answer as Cloud Hypervisor gives one: status and a text/plain
 * body, the formatted message (one line). */
void http_reply_error(struct http_conn *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* 405 Method Not Allowed with the Allow header RFC 9110 15.5.6 requires
 * (allow: "GET", "PUT", ...) and a text/plain message as
 * http_reply_error's. */
void http_reply_not_allowed(struct http_conn *c, const char *allow, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Stop accepting, close every connection, free s (NULL is fine). */
void http_server_free(struct http_server *s);

/* Set how long a begun request may take (HTTP_STALL_MS by default): a
 * test's knob. */
void http_server_set_stall_ms(struct http_server *s, unsigned int ms);

/* The request parser alone: the server's, and the fuzz target's. Bytes
 * go in as they arrive; one complete request comes out at a time. */
struct http_parse;

enum http_parse_result {
	HTTP_PARSE_MORE,  /* all bytes taken; the request (if begun) needs more */
	HTTP_PARSE_DONE,  /* a request is complete: http_parse_request */
	HTTP_PARSE_ERROR, /* the answer is *status; the stream cannot go on */
};

/* A parser at the start of a stream; NULL when out of memory. */
struct http_parse *http_parse_new(void);

/* Parse buf[0..len) (len > 0), stopping after the end of one request;
 * *used is the bytes taken. On HTTP_PARSE_ERROR, *status is 400, 413
 * (body over HTTP_BODY_MAX), 431 (head over HTTP_HEAD_MAX), 501 (unknown
 * method) or 505 (not HTTP/1.x); nothing more may be fed. */
enum http_parse_result http_parse_feed(struct http_parse *p, const char *buf, size_t len,
				       size_t *used, int *status) CV_MUST;

/* The request completed by the last feed (nfds 0), valid until the next
 * feed or http_parse_free. */
struct http_request *http_parse_request(struct http_parse *p);

/* After HTTP_PARSE_DONE: may another request follow on the stream?
 * (HTTP/1.1 without "Connection: close" and without an Upgrade) */
bool http_parse_keep_alive(const struct http_parse *p);

/* A request has begun (its first byte, not blank lines) and is not
 * complete. */
bool http_parse_begun(const struct http_parse *p);

/* True once per request whose head asked for "Expect: 100-continue" and
 * whose body has not come yet: the caller sends the interim answer. */
bool http_parse_take_continue(struct http_parse *p);

/* Free p (NULL is fine). */
void http_parse_free(struct http_parse *p);

/* The reason phrase of a status ("Not Found"); "<unknown>" for a code
 * HTTP does not name. */
const char *http_status_reason(int status);

#endif
