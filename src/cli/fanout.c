/* fanout.c - one request to many guests at once. `ls` and `top` ask every
 * monitor in the run directory; one socket at a time costs about 0.2 ms a
 * guest (the monitor's wake-up more than the client's work), seconds at
 * ten thousand guests. A few threads each take the next name until none
 * is left, and each answer lands in its name's slot, so the output keeps
 * the directory's order. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "cvisor/ctl_proto.h"
#include "verbs.h"

/* Enough to keep both sides busy while monitors wake: the client's part
 * of a request is short, the wait is the monitor's. */
#define FANOUT_THREADS 16

struct fanout {
	char *const *names;
	int n;
	const char *line;
	int timeout_ms;
	struct cli_answer *out;
	atomic_int next;
};

static void ask_one(struct fanout *f, int i)
{
	struct cli_answer *a = &f->out[i];
	char err[256];
	int fd;

	a->reply = NULL;
	a->r = cli_connect(ctl_run_dir(), f->names[i], &fd, err, sizeof(err));
	if (a->r)
		return;
	a->r = cli_call(fd, f->line, f->timeout_ms, &a->reply, err, sizeof(err));
	close(fd);
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
	struct fanout f = { names, n, line, timeout_ms, out, 0 };
	pthread_t t[FANOUT_THREADS];
	int nt = 0;

	/* one thread per few guests; the caller's thread works too */
	while (nt < FANOUT_THREADS && nt < n / 4 && pthread_create(&t[nt], NULL, worker, &f) == 0)
		nt++;
	worker(&f);
	for (int i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
}
