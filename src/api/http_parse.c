/* http_parse.c - HTTP/1.1 requests out of a byte stream, with Debian's
 * libhttp-parser (the server is http.c). The library checks the syntax,
 * the framing (Content-Length, chunked) and the head's size; this file
 * keeps the few things the API needs: method, path, body, Expect and
 * keep-alive, and stops after each request (the server answers one at a
 * time). */

/* http_parser.h names its method enum http_method, as cvisor/http.h does:
 * its spelling is moved aside in this file, the only one that includes
 * both. */
#define http_method http_parser_method
#include <http_parser.h>
#undef http_method

#include "cvisor/http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_parse {
	http_parser hp;
	struct http_request req;
	char *url; /* the request target as it came, then the path */
	size_t url_len, url_cap;
	size_t body_cap;
	char field[16]; /* the header being read: its name (if short) */
	size_t field_len;
	char value[16]; /* and its value, if Expect's */
	size_t value_len;
	bool in_value; /* the last piece seen was a value's */
	bool expect;   /* Expect: 100-continue */
	bool begun, want_continue, keep_alive;
	int status; /* the error a callback found */
};

/* Append n bytes to the buffer *b (length *len, capacity *cap), keeping
 * room for a NUL and never holding more than max bytes. */
static int append(char **b, size_t *len, size_t *cap, const char *at, size_t n, size_t max)
{
	if (n > max - *len)
		return -1;
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 256;
		char *nb;

		while (c < *len + n + 1)
			c *= 2;
		if (c > max + 1)
			c = max + 1;
		if (!(nb = realloc(*b, c)))
			return -1;
		*b = nb;
		*cap = c;
	}
	memcpy(*b + *len, at, n);
	*len += n;
	(*b)[*len] = '\0';
	return 0;
}

/* Copy a piece of a header's name or value into a small buffer; a longer
 * one is marked too long (length past the buffer), which matches nothing. */
static void piece(char *buf, size_t size, size_t *len, const char *at, size_t n)
{
	if (*len < size && n < size - *len)
		memcpy(buf + *len, at, n);
	*len = *len + n < size ? *len + n : size;
}

/* A header is complete: note the one the server acts on. (Connection,
 * Content-Length and Transfer-Encoding are the library's.) */
static void header_end(struct http_parse *p)
{
	if (p->field_len == 6 && !strncasecmp(p->field, "expect", 6) && p->value_len == 12 &&
	    !strncasecmp(p->value, "100-continue", 12))
		p->expect = true;
	p->field_len = p->value_len = 0;
	p->in_value = false;
}

static int on_begin(http_parser *hp)
{
	struct http_parse *p = hp->data;

	free(p->req.body);
	p->req = (struct http_request){ .body = NULL };
	p->url_len = p->body_cap = p->field_len = p->value_len = 0;
	p->in_value = p->expect = p->want_continue = false;
	p->begun = true;
	return 0;
}

static int on_url(http_parser *hp, const char *at, size_t n)
{
	struct http_parse *p = hp->data;

	if (append(&p->url, &p->url_len, &p->url_cap, at, n, HTTP_HEAD_MAX)) {
		p->status = 431;
		return -1;
	}
	return 0;
}

static int on_field(http_parser *hp, const char *at, size_t n)
{
	struct http_parse *p = hp->data;

	if (p->in_value)
		header_end(p);
	piece(p->field, sizeof(p->field), &p->field_len, at, n);
	return 0;
}

static int on_value(http_parser *hp, const char *at, size_t n)
{
	struct http_parse *p = hp->data;

	p->in_value = true;
	piece(p->value, sizeof(p->value), &p->value_len, at, n);
	return 0;
}

static enum http_method method_of(unsigned int m)
{
	switch (m) {
	case HTTP_GET:
		return HTTP_M_GET;
	case HTTP_PUT:
		return HTTP_M_PUT;
	case HTTP_POST:
		return HTTP_M_POST;
	case HTTP_PATCH:
		return HTTP_M_PATCH;
	case HTTP_DELETE:
		return HTTP_M_DELETE;
	default:
		return HTTP_M_OTHER;
	}
}

/* Keep only the path of the target: origin form ("/api/v1/vm.info?x")
 * or absolute form ("http://localhost/api/v1/vm.info"). */
static int take_path(struct http_parse *p)
{
	struct http_parser_url u;
	size_t off, len;

	http_parser_url_init(&u);
	if (!p->url_len || http_parser_parse_url(p->url, p->url_len, 0, &u) ||
	    !(u.field_set & (1u << UF_PATH)))
		return -1;
	off = u.field_data[UF_PATH].off;
	len = u.field_data[UF_PATH].len;
	if (p->url[off] != '/') /* "*" (OPTIONS' asterisk form) and the like */
		return -1;
	memmove(p->url, p->url + off, len);
	p->url[len] = '\0';
	return 0;
}

static int on_headers(http_parser *hp)
{
	struct http_parse *p = hp->data;
	bool chunked = hp->flags & F_CHUNKED;
	uint64_t cl = hp->flags & F_CONTENTLENGTH ? hp->content_length : 0;

	if (p->in_value)
		header_end(p);
	p->status = hp->http_major != 1 ? 505 : take_path(p) ? 400 : cl > HTTP_BODY_MAX ? 413 : 0;
	if (p->status)
		return -1;
	p->req.method = method_of(hp->method);
	p->req.method_name = http_method_str(hp->method);
	p->req.path = p->url;
	/* The body's buffer: sized once for a Content-Length, grown for
	 * chunks (on_body). */
	p->body_cap = (size_t)cl + 1;
	if (!(p->req.body = malloc(p->body_cap))) {
		p->status = 503;
		return -1;
	}
	p->req.body[0] = '\0';
	p->want_continue = p->expect && hp->http_minor >= 1 && (chunked || cl > 0);
	return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
	struct http_parse *p = hp->data;

	p->want_continue = false;
	if (append(&p->req.body, &p->req.body_len, &p->body_cap, at, n, HTTP_BODY_MAX)) {
		p->status = 413;
		return -1;
	}
	return 0;
}

static int on_complete(http_parser *hp)
{
	struct http_parse *p = hp->data;

	/* HTTP/1.0 closes after its answer, even with keep-alive asked: the
	 * answer is HTTP/1.1 and says nothing of it. An upgrade's bytes are
	 * not HTTP any more. */
	p->keep_alive = http_should_keep_alive(hp) && hp->http_minor >= 1 && !hp->upgrade;
	p->begun = p->want_continue = false;
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_begin,
	.on_url = on_url,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers,
	.on_body = on_body,
	.on_message_complete = on_complete,
};

struct http_parse *http_parse_new(void)
{
	struct http_parse *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	/* The library's bound on the request line and headers (a process
	 * setting; this is its only user). */
	http_parser_set_max_header_size(HTTP_HEAD_MAX);
	http_parser_init(&p->hp, HTTP_REQUEST);
	p->hp.data = p;
	return p;
}

/* The answer to a stream the library refused. */
static int error_status(const struct http_parse *p)
{
	if (p->status)
		return p->status;
	switch (HTTP_PARSER_ERRNO(&p->hp)) {
	case HPE_HEADER_OVERFLOW:
		return 431;
	case HPE_INVALID_METHOD:
		return 501;
	case HPE_INVALID_VERSION:
		return 505;
	default:
		return 400;
	}
}

enum http_parse_result http_parse_feed(struct http_parse *p, const char *buf, size_t len,
				       size_t *used, int *status)
{
	enum http_errno e;

	*used = 0;
	*status = 0;
	if (!len)
		return HTTP_PARSE_MORE; /* 0 bytes would tell the library "end of stream" */
	/* Paused at the end of the previous request. */
	if (HTTP_PARSER_ERRNO(&p->hp) == HPE_PAUSED)
		http_parser_pause(&p->hp, 0);
	*used = http_parser_execute(&p->hp, &settings, buf, len);
	e = HTTP_PARSER_ERRNO(&p->hp);
	if (e == HPE_PAUSED)
		return HTTP_PARSE_DONE;
	if (e == HPE_OK && *used == len)
		return HTTP_PARSE_MORE;
	*status = error_status(p);
	return HTTP_PARSE_ERROR;
}

struct http_request *http_parse_request(struct http_parse *p)
{
	return &p->req;
}

bool http_parse_keep_alive(const struct http_parse *p)
{
	return p->keep_alive;
}

bool http_parse_begun(const struct http_parse *p)
{
	return p->begun;
}

bool http_parse_take_continue(struct http_parse *p)
{
	bool r = p->want_continue;

	p->want_continue = false;
	return r;
}

void http_parse_free(struct http_parse *p)
{
	if (!p)
		return;
	free(p->req.body);
	free(p->url);
	free(p);
}

const char *http_status_reason(int status)
{
	return http_status_str((enum http_status)status);
}
