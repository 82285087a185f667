/* fuzz_http.c - libFuzzer target for the REST API's request parser
 * (src/api/http_parse.c over libhttp-parser).
 *
 * Input: one byte, then a byte stream as a connection brings it, cut into
 * feeds of (byte + 1) bytes; requests are taken one at a time, as the
 * server does, until the stream ends or is refused.
 * Checked: no crash or leak (ASan); a refusal is one of the statuses the
 * server answers with; a request has a method name, a path that starts
 * with '/', a NUL-terminated body within HTTP_BODY_MAX; every feed takes bytes, and all of them unless a request
 * ended or the stream was refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/http.h"

static void check_request(struct http_request *r)
{
	if (!r->method_name || !r->path || r->path[0] != '/' || !r->body ||
	    r->body_len > HTTP_BODY_MAX || r->body[r->body_len] != '\0' || r->nfds ||
	    (unsigned int)r->method > HTTP_M_OTHER)
		abort();
	/* the path is a string within the head's bound (ASan reads it) */
	if (strlen(r->path) > HTTP_HEAD_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_parse *p;
	size_t chunk;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	if (!(p = http_parse_new()))
		return 0;
	while (size) {
		size_t n = size < chunk ? size : chunk, used;
		int status;
		enum http_parse_result r =
			http_parse_feed(p, (const char *)data, n, &used, &status);

		if (used > n || (r == HTTP_PARSE_MORE && used != n) ||
		    (r == HTTP_PARSE_DONE && !used))
			abort();
		if (r == HTTP_PARSE_ERROR) {
			if (status != 400 && status != 413 && status != 431 && status != 501 &&
			    status != 505 && status != 503)
				abort();
			if (!http_status_reason(status)[0])
				abort();
			break;
		}
		if (r == HTTP_PARSE_DONE) {
			check_request(http_parse_request(p));
			if (http_parse_begun(p))
				abort();
			if (!http_parse_keep_alive(p))
				break; /* the server closes after the answer */
		}
		(void)http_parse_take_continue(p);
		data += used;
		size -= used;
	}
	http_parse_free(p);
	return 0;
}
