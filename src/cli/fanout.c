/* fanout.c - one request to many guests at once. `ls` and `top` ask every
 * monitor in the run directory. One thread keeps FANOUT_INFLIGHT requests
 * open and waits for their replies together (epoll), so what a request
 * costs is mostly the monitor's wake-up: with ten thousand guests, a
 * thread per request in flight (as before) added two context switches and
 * a reply buffer's mapping a request on the client's side, and one socket
 * at a time costs about 0.2 ms a guest. Each answer lands in its name's
 * slot, so the output keeps the directory's order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cvisor/ctl_proto.h"
#include "verbs.h"

/* Requests in flight: enough to keep every CPU busy with monitors to
 * wake, few enough for the client's open files (one each). */
#define FANOUT_INFLIGHT 64
/* A monitor whose listen backlog is full is asked again this much later. */
#define FANOUT_RETRY_NS 5000000ULL

struct slot {
	int i;	/* the name's index; -1 when the slot is free */
	int fd; /* -1 while waiting to connect again (retry_ns) */
	uint64_t deadline_ns, retry_ns;
	struct ctl_linebuf lb;
};

struct fanout {
	char *const *names;
	const char *line;
	uint64_t timeout_ns;
	struct cli_answer *out;
	int ep;
	int open; /* connections open */
};

static void slot_end(struct fanout *f, struct slot *s, int r, struct json_object *reply)
{
	f->out[s->i] = (struct cli_answer){ .r = r, .reply = reply };
	if (s->fd >= 0) {
		close(s->fd); /* leaves the epoll set with it */
		f->open--;
	}
	s->fd = -1;
	s->i = -1;
}

/* Connect s to its guest and send the request; a full backlog waits for a
 * retry, and so does running out of files while other requests are open
 * (a low RLIMIT_NOFILE), any other failure is the answer. */
static void slot_connect(struct fanout *f, struct slot *s, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
	char err[256];
	int fd, r = cli_connect_nb(ctl_run_dir(), f->names[s->i], &fd, err, sizeof(err));

	if (r == -EAGAIN || ((r == -EMFILE || r == -ENFILE) && f->open > 0)) {
		s->retry_ns = now + FANOUT_RETRY_NS;
		return;
	}
	if (r)
		return slot_end(f, s, r, NULL);
	f->open++;
	s->fd = fd;
	s->lb.len = s->lb.start = 0;
	/* A fresh socket's buffer takes a request line whole. A monitor that
	 * refuses the client answers and closes: read that, as cli_call does. */
	r = cv_send_all(fd, f->line, strlen(f->line));
	if (r && r != -EPIPE && r != -ECONNRESET)
		return slot_end(f, s, r, NULL);
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		slot_end(f, s, -errno, NULL);
}

/* Data (or the end) on s's connection. */
static void slot_read(struct fanout *f, struct slot *s)
{
	struct json_object *reply = NULL;
	char err[256], *l;
	size_t len;
	int r = cli_reply_step(s->fd, &s->lb, &l, &len, err, sizeof(err));

	if (r > 0)
		r = ctl_reply_parse(l, len, &reply, err, sizeof(err));
	else if (r == 0)
		return; /* more to come */
	slot_end(f, s, r, reply);
}

/* Fill free slots with the next names; 1 while any slot is busy. Sets
 * *wait_ms to the time until the earliest deadline or retry. */
static int slots_fill(struct fanout *f, struct slot *slots, int *next, int n, int *wait_ms)
{
	uint64_t now = cv_now_ns(), soonest = UINT64_MAX;
	int busy = 0;

	for (int k = 0; k < FANOUT_INFLIGHT; k++) {
		struct slot *s = &slots[k];

		if (s->i < 0 && *next < n) {
			*s = (struct slot){ .i = (*next)++, .fd = -1, .lb = s->lb };
			s->deadline_ns = now + f->timeout_ns;
			slot_connect(f, s, now);
		} else if (s->i >= 0 && now >= s->deadline_ns) {
			slot_end(f, s, -ETIMEDOUT, NULL);
		} else if (s->i >= 0 && s->fd < 0 && now >= s->retry_ns) {
			slot_connect(f, s, now);
		}
		if (s->i < 0)
			continue;
		busy = 1;
		if (s->deadline_ns < soonest)
			soonest = s->deadline_ns;
		if (s->fd < 0 && s->retry_ns < soonest)
			soonest = s->retry_ns;
	}
	*wait_ms = soonest <= now ? 0 : (int)((soonest - now) / 1000000ULL) + 1;
	if (*next < n) { /* a slot ended at once: fill it on the next round */
		*wait_ms = 0;
		busy = 1;
	}
	return busy;
}

void cli_ask_all(char *const *names, int n, const char *line, int timeout_ms,
		 struct cli_answer *out)
{
	struct fanout f = { names, line, (uint64_t)timeout_ms * 1000000ULL, out, -1, 0 };
	struct slot slots[FANOUT_INFLIGHT];
	struct epoll_event ev[FANOUT_INFLIGHT];
	int next = 0, wait_ms, k, got;

	for (k = 0; k < n; k++)
		out[k] = (struct cli_answer){ .r = -ENOMEM };
	f.ep = epoll_create1(EPOLL_CLOEXEC);
	for (k = 0; k < FANOUT_INFLIGHT; k++) {
		slots[k] = (struct slot){ .i = -1, .fd = -1 };
		/* A reply may be as long as any (CTL_REPLY_MAX): only the pages
		 * a reply fills are touched. */
		if (f.ep >= 0 && ctl_linebuf_init(&slots[k].lb, CTL_REPLY_MAX))
			break;
	}
	if (f.ep < 0 || k < FANOUT_INFLIGHT) {
		for (int j = 0; j < n; j++)
			out[j].r = f.ep < 0 ? -errno : -ENOMEM;
		n = 0;
	}
	while (slots_fill(&f, slots, &next, n, &wait_ms)) {
		got = epoll_wait(f.ep, ev, FANOUT_INFLIGHT, wait_ms);
		for (int j = 0; j < got; j++)
			slot_read(&f, ev[j].data.ptr);
	}
	for (int j = 0; j < k; j++)
		ctl_linebuf_free(&slots[j].lb);
	if (f.ep >= 0)
		close(f.ep);
}
