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
 * (a reply that waits for the guest). */
typedef void (*http_handler_fn)(void *opaque, struct http_conn *c, struct http_request *req);

/* May the peer of a just-accepted connection fd use the API? (the control
 * socket's rules, ctl_server_admit). false: it is closed. NULL: anyone. */
typedef bool (*http_admit_fn)(void *opaque, int fd);

/* Serve the listening unix socket listen_fd (taken: closed by
 * http_server_free) on loop. 0 or -errno. */
int http_server_start(struct http_server **out, struct evloop *loop, int listen_fd,
		      http_handler_fn handler, http_admit_fn admit, void *opaque) CV_MUST;

/* Move the server to another loop (the pre-boot loop to the VM's). */
int http_server_move(struct http_server *s, struct evloop *to) CV_MUST;

/* Answer the request c is waiting on: status (200, 204, 4xx, 5xx) with a
 * body of len bytes (NULL/0: none) of type application/json. Safe for a
 * connection that closed meanwhile (the answer is dropped). */
void http_reply(struct http_conn *c, int status, const char *body, size_t len);

/* An error answer as Cloud Hypervisor gives one: status and a text/plain
 * body, the formatted message (one line). */
void http_reply_error(struct http_conn *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Stop accepting, close every connection, free s (NULL is fine). */
void http_server_free(struct http_server *s);

/* The parser without the sockets, for the fuzz target and unit tests:
 * feed bytes, get requests (each given to handler with c NULL). A parse
 * error gives the error status (400, 413, 431, 501, 505) and false. The
 * helper that writes http.c may reshape this part; the server part above
 * is what src/api/ codes against. */
struct http_parse;
struct http_parse *http_parse_new(http_handler_fn handler, void *opaque);
bool http_parse_feed(struct http_parse *p, const char *buf, size_t len, int *status);
void http_parse_free(struct http_parse *p);

#endif
