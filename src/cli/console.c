/* console.c - `cvisor console NAME`: attach to a detached guest's serial
 * console. Output replays the ring buffer, then streams; keys go to the
 * guest; Ctrl-] detaches (as in telnet and virsh console). */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvisor/console.h"
#include "cvisor/ctl_proto.h"
#include "verbs.h"

#define ATTACH_ESCAPE 0x1d /* Ctrl-] */
#define REPLY_TIMEOUT_MS 10000

/* The reply line to the console request; what follows it in the stream
 * is console output, written to stdout. */
static int attach(int fd, char *err, size_t errlen)
{
	static const char req[] = "{\"cmd\":\"console\"}\n";
	struct ctl_linebuf lb;
	struct json_object *reply;
	uint64_t deadline = cv_now_ns() + REPLY_TIMEOUT_MS * 1000000ULL;
	const char *rest;
	char *line;
	size_t len, n;
	int r;

	if (cv_send_all(fd, req, sizeof(req) - 1)) {
		snprintf(err, errlen, "sending the request: %s", strerror(errno));
		return -EPIPE;
	}
	if ((r = ctl_linebuf_init(&lb, CTL_REPLY_MAX)))
		return r;
	while ((r = ctl_linebuf_take(&lb, &line, &len)) == 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *room;
		ssize_t got;

		if (cv_now_ns() >= deadline || poll(&p, 1, 100) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "no reply from the monitor");
			r = -ETIMEDOUT;
			goto out;
		}
		if (!p.revents)
			continue;
		n = ctl_linebuf_room(&lb, &room);
		got = read(fd, room, n);
		if (got <= 0) {
			snprintf(err, errlen, "the monitor closed the connection without a reply");
			r = -EPIPE;
			goto out;
		}
		ctl_linebuf_added(&lb, (size_t)got);
	}
	if (r < 0) {
		snprintf(err, errlen, "reply from the monitor too long");
		goto out;
	}
	r = ctl_reply_parse(line, len, &reply, err, errlen);
	if (!r) {
		json_object_put(reply);
		n = ctl_linebuf_rest(&lb, &rest);
		if (n && cv_write_all(STDOUT_FILENO, rest, n))
			r = -EPIPE;
	}
out:
	ctl_linebuf_free(&lb);
	return r;
}

/* Shuttle bytes until the guest stops (0), the user detaches (1) or
 * stdout breaks (<0). */
static int shuttle(int fd)
{
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
			       { .fd = STDIN_FILENO, .events = POLLIN } };
	uint8_t buf[4096];

	for (;;) {
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[0].revents) {
			n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return 0;
			if (cv_write_all(STDOUT_FILENO, buf, (size_t)n))
				return -EPIPE;
		}
		if (p[1].revents) {
			uint8_t *esc;

			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* End of input: keep showing output, like tail -f. */
				p[1].fd = -1;
				continue;
			}
			esc = memchr(buf, ATTACH_ESCAPE, (size_t)n);
			if (esc)
				n = esc - buf;
			if (n > 0 && cv_send_all(fd, buf, (size_t)n))
				return 0;
			if (esc)
				return 1;
		}
	}
}

int cli_console(const struct cli_verb *v, const struct cli_args *a)
{
	const char *name = a->arg[0];
	char err[512] = "";
	bool tty = isatty(STDIN_FILENO);
	int fd, r;

	(void)v;
	if ((r = cli_connect(ctl_run_dir(), name, &fd, err, sizeof(err)))) {
		cv_err("%s", err);
		return cli_connect_status(r);
	}
	if ((r = attach(fd, err, sizeof(err)))) {
		close(fd);
		cv_err("%s", err[0] ? err : strerror(-r));
		return CV_EXIT_FAIL;
	}
	if (tty) {
		fprintf(stderr, "cvisor: attached to %s; Ctrl-] detaches\r\n", name);
		console_raw(STDIN_FILENO);
	}
	r = shuttle(fd);
	console_restore();
	close(fd);
	if (r == 0 && tty)
		fprintf(stderr, "\r\ncvisor: guest %s stopped\n", name);
	else if (r == 1)
		fprintf(stderr, "\r\ncvisor: detached from %s\n", name);
	return r < 0 ? CV_EXIT_FAIL : 0;
}
