/* fanout.c - one request to many guests at once. `ls` and `top` ask every
 * monitor in the run directory; one socket at a time costs about 0.2 ms a
 * guest (the monitor's wake-up more than the client's work), seconds at
 * ten thousand guests. A few threads each take the next name until none
 * is left, and each answer lands in its name's slot, so the output keeps
 * the directory's order. Threads rather than one thread over epoll: with
 * 10,000 guests the client's own work (connect, parse the reply) is a
 * good part of the cost, and threads spread it over the CPUs (one epoll
 * thread took 1.9-2.2 s where 16 threads took 1.35-1.45, bench/RESULTS.md).
 *
 * A monitor whose listen backlog is full is tried again until the timeout
 * rather than blocking a thread in connect, and so is a client out of files
 * (a low RLIMIT_NOFILE) while other requests hold some. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cvisor/ctl_proto.h"
#include "verbs.h"

/* Enough to keep both sides busy while monitors wake: the client's part
 * of a request is short, the wait is the monitor's. */
#define FANOUT_THREADS 16
/* A full backlog, or no file to spare, is tried again this much later. */
#define FANOUT_RETRY_NS 5000000L

struct fanout {
	char *const *names;
	int n;
	const char *line;
	int timeout_ms;
	struct cli_answer *out;
	atomic_int next;
	atomic_int open; /* connections open */
};

/* Connect to names[i] before deadline_ns, trying again while its backlog
 * is full or while others hold the files this one needs. */
static int connect_retrying(struct fanout *f, int i, uint64_t deadline_ns, int *fd)
{
	const struct timespec pause = { 0, FANOUT_RETRY_NS };
	char err[256];

	for (;;) {
		int r = cli_connect_nb(ctl_run_dir(), f->names[i], fd, err, sizeof(err));
		bool again = r == -EAGAIN ||
			     ((r == -EMFILE || r == -ENFILE) && atomic_load(&f->open) > 0);

		if (!again)
			return r;
		if (cv_now_ns() >= deadline_ns)
			return -ETIMEDOUT;
		nanosleep(&pause, NULL);
	}
}

static void ask_one(struct fanout *f, int i)
{
	uint64_t deadline = cv_now_ns() + (uint64_t)f->timeout_ms * 1000000ULL;
	struct cli_answer *a = &f->out[i];
	char err[256] = "";
	uint64_t now;
	int fd;

	a->reply = NULL;
	a->unknown = false;
	a->r = connect_retrying(f, i, deadline, &fd);
	if (a->r)
		return;
	atomic_fetch_add(&f->open, 1);
	/* cli_call polls before each read: the socket may stay O_NONBLOCK.
	 * What the connect's retries took comes off its wait: one guest
	 * costs at most timeout_ms. */
	now = cv_now_ns();
	a->r = cli_call(fd, f->line,
			now >= deadline ? 1 : (int)((deadline - now + 999999) / 1000000), &a->reply,
			err, sizeof(err));
	a->unknown = a->r == -EREMOTEIO && strstr(err, "unknown command");
	close(fd);
	atomic_fetch_sub(&f->open, 1);
}

static void *worker(void *arg)
{
	struct fanout *f = arg;
	int i;

	while ((i = atomic_fetch_add(&f->next, 1)) < f->n)
		ask_one(f, i);
	return NULL;
}

void cli_ask_all(char *const *names, int n, const char *line, int timeout_ms,
		 struct cli_answer *out)
{
	struct fanout f = { names, n, line, timeout_ms, out, 0, 0 };
	pthread_t t[FANOUT_THREADS];
	int nt = 0;

	/* one thread per few guests; the caller's thread works too */
	while (nt < FANOUT_THREADS && nt < n / 4 && pthread_create(&t[nt], NULL, worker, &f) == 0)
		nt++;
	worker(&f);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
}
