/* fuzz_proto.c - libFuzzer target for the control protocol's parsers.
 *
 * Input: one mode byte, then data.
 *   mode & 1 == 0: a byte stream as a monitor reads it from a socket, cut
 *     into reads of (mode >> 1) + 1 bytes, through a request-sized line
 *     buffer; every complete line goes through the request parser, the
 *     reply parser and the CPU list parser.
 *   mode & 1 == 1: the data as a `cvisor run --config` file.
 * Checked: no crash or leak (ASan), errors are one non-empty line, a
 * request that parses formats to a line that parses to the same request,
 * an error reply carries its message back, a CPU list round-trips. */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/config.h"
#include "cvisor/cpulist.h"
#include "cvisor/ctl_proto.h"

static void check_line(const char *err)
{
	if (!err[0] || strchr(err, '\n'))
		abort();
}

static void check_request(const char *line, size_t len)
{
	struct ctl_request a, b;
	char err[256], *again;

	if (ctl_request_parse(line, len, &a, err, sizeof(err))) {
		check_line(err);
		return;
	}
	if ((unsigned int)a.cmd >= CTL_CMD_COUNT)
		abort();
	again = ctl_request_format(&a);
	if (!again)
		abort();
	if (ctl_request_parse(again, strlen(again) - 1, &b, err, sizeof(err)) || a.cmd != b.cmd ||
	    a.timeout_s != b.timeout_s || a.bytes != b.bytes || a.vcpu != b.vcpu ||
	    !CPU_EQUAL(&a.cpus, &b.cpus))
		abort();
	free(again);
}

static void check_reply(const char *line, size_t len)
{
	struct json_object *reply;
	char err[256], err2[256], *l;
	int r = ctl_reply_parse(line, len, &reply, err, sizeof(err));

	if (r == 0) {
		json_object_put(reply);
		return;
	}
	if (r != -EREMOTEIO && r != -EPROTO)
		abort();
	/* Whatever the error said comes back through an error reply. */
	l = ctl_reply_error(err);
	if (!l || ctl_reply_parse(l, strlen(l) - 1, &reply, err2, sizeof(err2)) != -EREMOTEIO)
		abort();
	for (char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	if (strcmp(err, err2))
		abort();
	free(l);
}

static void check_cpulist(const char *line)
{
	cpu_set_t a, b;
	char buf[CPU_SETSIZE * 6];

	if (cpulist_parse(line, &a))
		return;
	if (cpulist_format(&a, buf, sizeof(buf)) || cpulist_parse(buf, &b) || !CPU_EQUAL(&a, &b))
		abort();
}

static void stream(const uint8_t *data, size_t size, size_t chunk)
{
	struct ctl_linebuf lb;

	if (ctl_linebuf_init(&lb, CTL_REQUEST_MAX))
		return;
	while (size) {
		char *room, *line;
		size_t n = ctl_linebuf_room(&lb, &room), len;
		int r;

		if (n > chunk)
			n = chunk;
		if (n > size)
			n = size;
		memcpy(room, data, n);
		ctl_linebuf_added(&lb, n);
		data += n;
		size -= n;
		while ((r = ctl_linebuf_take(&lb, &line, &len)) > 0) {
			if (strlen(line) > len)
				abort();
			check_request(line, len);
			check_reply(line, len);
			check_cpulist(line);
		}
		/* The server closes such a connection. */
		if (r < 0)
			break;
	}
	ctl_linebuf_free(&lb);
}

static void config_file(const uint8_t *data, size_t size)
{
	struct vm_config cfg;
	struct cv_error e = { 0 };
	char *text = malloc(size + 1);

	if (!text)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	config_init(&cfg);
	if (config_apply_json("fuzz.json", text, size, &cfg, &e) || config_check(&cfg, &e))
		check_line(e.msg);
	config_free(&cfg);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		config_file(data + 1, size - 1);
	else
		stream(data + 1, size - 1, (size_t)(data[0] >> 1) + 1);
	return 0;
}
