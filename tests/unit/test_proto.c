/* test_proto.c - the control protocol (requests, replies, framing and its
 * limits), CPU lists, guest names and the console ring buffer. */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/cpulist.h"
#include "cvisor/ctl_console.h"
#include "cvisor/ctl_proto.h"
#include "cvisor/util.h"

static int parse(const char *line, struct ctl_request *req, char *err)
{
	return ctl_request_parse(line, strlen(line), req, err, 256);
}

static void test_requests(void **state)
{
	static const struct {
		enum ctl_cmd cmd;
		const char *line;
	} every[] = {
		{ CTL_CMD_INFO, "{\"cmd\":\"info\"}" },
		{ CTL_CMD_STATS, "{\"cmd\":\"stats\"}" },
		{ CTL_CMD_PAUSE, "{\"cmd\":\"pause\"}" },
		{ CTL_CMD_RESUME, "{\"cmd\":\"resume\"}" },
		{ CTL_CMD_STOP, "{\"cmd\":\"stop\"}" },
		{ CTL_CMD_KILL, "{\"cmd\":\"kill\"}" },
		{ CTL_CMD_BALLOON, "{\"cmd\":\"balloon\",\"bytes\":1}" },
		{ CTL_CMD_PIN, "{\"cmd\":\"pin\",\"vcpu\":0,\"cpus\":\"0\"}" },
		{ CTL_CMD_CONSOLE, "{\"cmd\":\"console\"}" },
		{ CTL_CMD_SAVE, "{\"cmd\":\"save\",\"path\":\"/s\"}" },
		{ CTL_CMD_PEEK, "{\"cmd\":\"peek\",\"gpa\":0}" },
		{ CTL_CMD_SET, "{\"cmd\":\"set\",\"device\":\"disk0\",\"limits\":\"bw=1M\"}" },
		{ CTL_CMD_REBOOT, "{\"cmd\":\"reboot\"}" },
	};
	struct ctl_request r;
	char err[256];

	(void)state;
	assert_int_equal(parse("{\"cmd\":\"info\"}", &r, err), 0);
	assert_int_equal(r.cmd, CTL_CMD_INFO);
	assert_int_equal(parse("  {\"cmd\" : \"stats\"}  \r", &r, err), 0);
	assert_int_equal(r.cmd, CTL_CMD_STATS);
	assert_int_equal(parse("{\"cmd\":\"stop\"}", &r, err), 0);
	assert_int_equal(r.timeout_s, CTL_STOP_TIMEOUT_DEFAULT);
	assert_int_equal(parse("{\"cmd\":\"stop\",\"timeout\":5}", &r, err), 0);
	assert_int_equal(r.timeout_s, 5);
	assert_int_equal(parse("{\"cmd\":\"balloon\",\"bytes\":18446744073709551615}", &r, err), 0);
	assert_true(r.bytes == UINT64_MAX);
	assert_int_equal(parse("{\"cpus\":\"0-2,5\",\"vcpu\":3,\"cmd\":\"pin\"}", &r, err), 0);
	assert_int_equal(r.cmd, CTL_CMD_PIN);
	assert_int_equal(r.vcpu, 3);
	assert_int_equal(CPU_COUNT(&r.cpus), 4);
	assert_true(CPU_ISSET(5, &r.cpus) && !CPU_ISSET(3, &r.cpus));
	/* Every command by its wire name, with the least it takes: what
	 * clients and scripts send must keep working. */
	for (size_t i = 0; i < ARRAY_SIZE(every); i++) {
		assert_int_equal(parse(every[i].line, &r, err), 0);
		assert_int_equal(r.cmd, every[i].cmd);
	}
	assert_int_equal(ARRAY_SIZE(every), CTL_CMD_COUNT);
}

static void test_bad_requests(void **state)
{
	static const struct {
		const char *line;
		const char *want;
	} bad[] = {
		{ "", "malformed request: unexpected end of data at byte 0" },
		{ "{\"cmd\":", "malformed request: unexpected end of data" },
		{ "{'cmd':'info'}", "malformed request:" }, /* strict JSON only */
		{ "{\"cmd\":\"info\"} x", "unexpected text after the JSON value at byte 15" },
		{ "{\"cmd\":\"info\"}{}", "unexpected text" },
		{ "[\"info\"]", "not a JSON object" },
		{ "42", "not a JSON object" },
		{ "{}", "no \"cmd\" string" },
		{ "{\"cmd\":7}", "no \"cmd\" string" },
		{ "{\"cmd\":\"frob\"}", "unknown command \"frob\"" },
		{ "{\"cmd\":\"info\",\"x\":1}", "info takes no \"x\"" },
		{ "{\"cmd\":\"stop\",\"timeout\":0}",
		  "\"timeout\" must be an integer from 1 to 86400" },
		{ "{\"cmd\":\"stop\",\"timeout\":\"5\"}", "\"timeout\" must be an integer" },
		{ "{\"cmd\":\"stop\",\"timeout\":1.5}", "\"timeout\" must be an integer" },
		{ "{\"cmd\":\"balloon\"}", "balloon needs \"bytes\"" },
		{ "{\"cmd\":\"balloon\",\"bytes\":-1}", "\"bytes\" must be an integer" },
		{ "{\"cmd\":\"pin\",\"cpus\":\"0\"}", "pin needs \"vcpu\"" },
		{ "{\"cmd\":\"pin\",\"vcpu\":64,\"cpus\":\"0\"}",
		  "\"vcpu\" must be an integer from 0 to 63" },
		{ "{\"cmd\":\"pin\",\"vcpu\":0}", "pin needs \"cpus\"" },
		{ "{\"cmd\":\"pin\",\"vcpu\":0,\"cpus\":\"3-1\"}", "\"cpus\" must be a CPU list" },
		{ "{\"cmd\":\"pin\",\"vcpu\":0,\"cpus\":4}", "\"cpus\" must be a CPU list" },
		{ "{\"a\":[[[[[[[[[[1]]]]]]]]]]}", "nesting too deep" },
		{ "{\"cmd\":\"save\"}", "save needs a \"path\" string" },
		{ "{\"cmd\":\"save\",\"path\":\"rel/x\"}", "\"path\" must be an absolute path" },
		{ "{\"cmd\":\"save\",\"path\":\"/x\",\"keep_running\":1}",
		  "\"keep_running\" must be true or false" },
		{ "{\"cmd\":\"save\",\"path\":\"/x\",\"frob\":1}", "save takes no \"frob\"" },
		{ "{\"cmd\":\"peek\"}", "peek needs \"gpa\"" },
		{ "{\"cmd\":\"set\",\"limits\":\"bw=1M\"}",
		  "\"device\" must be a string of 1 to 15 bytes" },
		{ "{\"cmd\":\"set\",\"device\":\"disk0\",\"limits\":\"\"}",
		  "\"limits\" must be a string of 1 to 511 bytes" },
		{ "{\"cmd\":\"set\",\"device\":\"disk0\",\"limits\":3}",
		  "\"limits\" must be a string" },
		{ "{\"cmd\":\"peek\",\"gpa\":0,\"len\":0}",
		  "\"len\" must be an integer from 1 to 4096" },
		{ "{\"cmd\":\"peek\",\"gpa\":0,\"len\":4097}", "\"len\" must be an integer" },
	};
	struct ctl_request r;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i].line, &r, err), -EINVAL);
		if (!strstr(err, bad[i].want))
			fail_msg("case %zu: '%s' does not contain '%s'", i, err, bad[i].want);
	}
}

/* A NUL in a string (issue 10): json-c would cut "kill\u0000x" to "kill"
 * and a key "timeout\u0000x" to "timeout"; both are refused, with the
 * byte where the escape starts. An escaped backslash before "u0000" is no
 * NUL, and neither is a zero byte's text in a value. */
static void test_embedded_nul(void **state)
{
	static const struct {
		const char *line;
		size_t len;
		const char *want;
	} bad[] = {
		{ "{\"cmd\":\"kill\\u0000x\"}", 0,
		  "NUL character (\\u0000 or a zero byte) is not "
		  "allowed at byte 12" },
		{ "{\"cmd\":\"stop\",\"timeout\\u0000x\":5}", 0, "NUL character" },
		{ "{\"cmd\\u0000\":\"kill\"}", 0, "NUL character" },
#define ZERO_BYTE(text) text, sizeof(text) - 1
		{ ZERO_BYTE("{\"cmd\":\"kill\0x\"}"), "NUL character" },
		{ ZERO_BYTE("{\"cmd\":\"info\"}\0x"), "NUL character" },
#undef ZERO_BYTE
	};
	struct ctl_request r;
	char err[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].line);

		assert_int_equal(ctl_request_parse(bad[i].line, len, &r, err, sizeof(err)),
				 -EINVAL);
		if (!strstr(err, bad[i].want))
			fail_msg("case %zu: '%s' does not contain '%s'", i, err, bad[i].want);
	}
	assert_int_equal(parse("{\"cmd\":\"save\",\"path\":\"/a\\\\u0000\"}", &r, err), 0);
	assert_string_equal(r.path, "/a\\u0000");
}

static void test_request_limit(void **state)
{
	size_t n = CTL_REQUEST_MAX + 1;
	char *line = malloc(n + 1), err[256];
	struct ctl_request r;
	static const char head[] = "{\"cmd\":\"info\"";

	(void)state;
	assert_non_null(line);
	memset(line, ' ', n);
	memcpy(line, head, sizeof(head) - 1);
	line[n - 1] = '}';
	line[n] = '\0';
	assert_int_equal(ctl_request_parse(line, n, &r, err, sizeof(err)), -EMSGSIZE);
	assert_string_equal(err, "request larger than 65536 bytes");
	/* exactly the limit is fine */
	line[n - 2] = '}';
	line[n - 1] = '\0';
	assert_int_equal(ctl_request_parse(line, n - 1, &r, err, sizeof(err)), 0);
	free(line);
}

static void test_format_roundtrip(void **state)
{
	struct ctl_request in = { 0 }, out;
	char err[256], *line;

	(void)state;
	for (int c = 0; c < CTL_CMD_COUNT; c++) {
		memset(&in, 0, sizeof(in));
		in.cmd = c;
		in.timeout_s = 7;
		in.bytes = (1ULL << 40) + 3;
		in.vcpu = 2;
		CPU_SET(1, &in.cpus);
		CPU_SET(9, &in.cpus);
		snprintf(in.path, sizeof(in.path), "/var/lib/snap one");
		in.keep_running = true;
		in.gpa = 0x5000;
		in.len = 16;
		snprintf(in.device, sizeof(in.device), "net1");
		snprintf(in.limits, sizeof(in.limits), "rx-bw=50M,tx-pps=off");
		line = ctl_request_format(&in);
		assert_non_null(line);
		assert_int_equal(line[strlen(line) - 1], '\n');
		assert_null(strchr(line, '\n') + 1 == line + strlen(line) ? NULL : line);
		assert_int_equal(ctl_request_parse(line, strlen(line) - 1, &out, err, sizeof(err)),
				 0);
		assert_int_equal(out.cmd, c);
		if (c == CTL_CMD_STOP)
			assert_int_equal(out.timeout_s, 7);
		if (c == CTL_CMD_BALLOON)
			assert_true(out.bytes == in.bytes);
		if (c == CTL_CMD_PIN) {
			assert_int_equal(out.vcpu, 2);
			assert_true(CPU_EQUAL(&out.cpus, &in.cpus));
		}
		if (c == CTL_CMD_SAVE) {
			assert_string_equal(out.path, in.path);
			assert_true(out.keep_running);
		}
		if (c == CTL_CMD_PEEK) {
			assert_true(out.gpa == 0x5000);
			assert_int_equal(out.len, 16);
		}
		if (c == CTL_CMD_SET) {
			assert_string_equal(out.device, "net1");
			assert_string_equal(out.limits, in.limits);
		}
		free(line);
	}
}

static void test_replies(void **state)
{
	struct json_object *o = json_object_new_object(), *reply, *v;
	char err[256], *line;

	(void)state;
	json_object_object_add(o, "name", json_object_new_string("a/b"));
	json_object_object_add(o, "ok", json_object_new_boolean(0)); /* cannot override */
	line = ctl_reply_ok(o);
	assert_string_equal(line, "{\"ok\":true,\"name\":\"a/b\"}\n");
	assert_int_equal(ctl_reply_parse(line, strlen(line) - 1, &reply, err, sizeof(err)), 0);
	assert_true(json_object_object_get_ex(reply, "name", &v));
	assert_string_equal(json_object_get_string(v), "a/b");
	json_object_put(reply);
	free(line);

	line = ctl_reply_ok(NULL);
	assert_string_equal(line, "{\"ok\":true}\n");
	free(line);

	/* errors stay on one line */
	line = ctl_reply_error("two\nlines\tand \"quotes\"");
	assert_non_null(line);
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
	assert_int_equal(ctl_reply_parse(line, strlen(line) - 1, &reply, err, sizeof(err)),
			 -EREMOTEIO);
	assert_null(reply);
	assert_string_equal(err, "two lines and \"quotes\"");
	free(line);

	assert_int_equal(ctl_reply_parse("{\"ok\":false}", 12, &reply, err, sizeof(err)),
			 -EREMOTEIO);
	assert_int_equal(ctl_reply_parse("{\"ok\":1}", 8, &reply, err, sizeof(err)), -EPROTO);
	assert_int_equal(ctl_reply_parse("nope", 4, &reply, err, sizeof(err)), -EPROTO);
	assert_int_equal(ctl_reply_parse("[]", 2, &reply, err, sizeof(err)), -EPROTO);
}

static void feed(struct ctl_linebuf *lb, const char *s)
{
	char *p;
	size_t n = strlen(s);

	assert_true(ctl_linebuf_room(lb, &p) >= n);
	memcpy(p, s, n);
	ctl_linebuf_added(lb, n);
}

static void test_linebuf(void **state)
{
	struct ctl_linebuf lb;
	const char *rest;
	char *line, *p;
	size_t len;

	(void)state;
	assert_int_equal(ctl_linebuf_init(&lb, 8), 0);
	feed(&lb, "ab");
	assert_int_equal(ctl_linebuf_take(&lb, &line, &len), 0);
	feed(&lb, "c\nde\nf");
	assert_int_equal(ctl_linebuf_take(&lb, &line, &len), 1);
	assert_string_equal(line, "abc");
	assert_int_equal(len, 3);
	assert_int_equal(ctl_linebuf_take(&lb, &line, &len), 1);
	assert_string_equal(line, "de");
	assert_int_equal(ctl_linebuf_take(&lb, &line, &len), 0);
	/* a line of exactly the maximum fits with its newline */
	feed(&lb, "1234567\n");
	assert_int_equal(ctl_linebuf_take(&lb, &line, &len), 1);
	assert_string_equal(line, "f1234567");
	/* one byte more without a newline fills the buffer: too long */
	feed(&lb, "123456789");
	assert_int_equal(ctl_linebuf_room(&lb, &p), 0);
	assert_int_equal(ctl_linebuf_take(&lb, &line, &len), -EMSGSIZE);
	ctl_linebuf_free(&lb);

	assert_int_equal(ctl_linebuf_init(&lb, 16), 0);
	feed(&lb, "req\nraw bytes");
	assert_int_equal(ctl_linebuf_take(&lb, &line, &len), 1);
	assert_int_equal(ctl_linebuf_rest(&lb, &rest), 9);
	assert_memory_equal(rest, "raw bytes", 9);
	assert_int_equal(ctl_linebuf_rest(&lb, &rest), 0);
	ctl_linebuf_free(&lb);
}

static void test_cpulist(void **state)
{
	static const char *const good[] = { "0", "0-3", "0,2,4-5", "1023", "7-7,3" };
	static const char *const bad[] = { "",	 "-1", "a",  "1-",   "3-1", "1,,2",
					   "1,", " 1", "1 ", "1024", "0x1", "1-2-3" };
	static const char *const canon[] = { "0", "0-3", "0,2,4-5", "1023", "3,7" };
	cpu_set_t s;
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(cpulist_parse(good[i], &s), 0);
		assert_int_equal(cpulist_format(&s, buf, sizeof(buf)), 0);
		assert_string_equal(buf, canon[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cpulist_parse(bad[i], &s) == 0)
			fail_msg("'%s' parsed", bad[i]);
	assert_int_equal(cpulist_parse("0-1023", &s), 0);
	assert_int_equal(cpulist_format(&s, buf, 4), -ENOSPC);
	CPU_ZERO(&s);
	assert_int_equal(cpulist_format(&s, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	{
		cpu_set_t a, b;

		assert_int_equal(cpulist_parse("0-3", &a), 0);
		assert_int_equal(cpulist_parse("0-1", &b), 0);
		assert_int_equal(cpulist_first_missing(&a, &b), 2);
		assert_int_equal(cpulist_first_missing(&b, &a), -1);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_true(ctl_name_valid("web-1.example_A"));
	assert_true(ctl_name_valid("a"));
	assert_false(ctl_name_valid(""));
	assert_false(ctl_name_valid(".."));
	assert_false(ctl_name_valid("-x"));
	assert_false(ctl_name_valid("a/b"));
	assert_false(ctl_name_valid("a b"));
	assert_false(ctl_name_valid("x.sock\n"));
}

static void test_console_ring(void **state)
{
	static struct ctl_console c;
	static uint8_t big[CTL_CONSOLE_RING + 100], out[CTL_CONSOLE_RING + 100];
	uint64_t pos = 0, lost = 0, n;
	int pipefd[2];

	(void)state;
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(ctl_console_init(&c, pipefd[1]), 0);
	assert_int_equal(ctl_console_last(&c), -1);
	ctl_console_write(&c, (const uint8_t *)"hello ", 6);
	assert_int_equal(ctl_console_last(&c), ' ');
	ctl_console_write(&c, (const uint8_t *)"world", 5);
	assert_int_equal(c.head, 11);
	assert_int_equal(ctl_console_tail(&c), 0);
	assert_int_equal(ctl_console_read(&c, &pos, out, 4, &lost), 4);
	assert_memory_equal(out, "hell", 4);
	assert_int_equal(ctl_console_read(&c, &pos, out, sizeof(out), &lost), 7);
	assert_memory_equal(out, "o world", 7);
	assert_int_equal(lost, 0);
	/* the log sees everything once */
	ctl_console_ack(&c);
	ctl_console_flush_log(&c);
	assert_int_equal(read(pipefd[0], out, sizeof(out)), 11);
	assert_memory_equal(out, "hello world", 11);

	/* wrap around: a reader left behind loses the overwritten part */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	ctl_console_write(&c, big, 100);
	ctl_console_write(&c, big + 100, CTL_CONSOLE_RING);
	n = 11 + 100 + CTL_CONSOLE_RING;
	assert_int_equal(c.head, n);
	assert_int_equal(ctl_console_tail(&c), n - CTL_CONSOLE_RING);
	assert_int_equal(ctl_console_read(&c, &pos, out, sizeof(out), &lost), CTL_CONSOLE_RING);
	assert_int_equal(lost, 100);
	assert_memory_equal(out, big + 100, CTL_CONSOLE_RING);
	/* one write larger than the ring keeps its newest bytes */
	ctl_console_write(&c, big, sizeof(big));
	pos = ctl_console_tail(&c);
	assert_int_equal(ctl_console_read(&c, &pos, out, sizeof(out), NULL), CTL_CONSOLE_RING);
	assert_memory_equal(out, big + 100, CTL_CONSOLE_RING);
	assert_int_equal(pos, c.head);
	ctl_console_destroy(&c);
	close(pipefd[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),      cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_request_limit), cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_replies),	      cmocka_unit_test(test_linebuf),
		cmocka_unit_test(test_cpulist),	      cmocka_unit_test(test_names),
		cmocka_unit_test(test_console_ring),  cmocka_unit_test(test_embedded_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
