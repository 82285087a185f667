/* test_fanout.c - cli_ask_all (src/cli/fanout.c), the request `ls` and
 * `top` send to every guest, against fake monitors in a temporary run
 * directory: many that answer (each its own reply, in its name's slot),
 * and the ones that must not hold the rest up or go unreported: a stale
 * socket (its monitor died), one that accepts and closes without a reply,
 * one that never accepts (its backlog fills: connect would block), one
 * that accepts and never answers, and one that answers with an error. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "../../src/cli/verbs.h"
#include "cvisor/cli.h"
#include "cvisor/ctl_proto.h"

#define NGOOD 300 /* more than the requests in flight */

enum fake { GOOD, STALE, CLOSES, FULL, SILENT, REFUSES, NFAKES };
static const char *const fake_names[] = { "", "stale", "closes", "full", "silent", "refuses" };
#define NLISTEN (NGOOD + NFAKES - 1) /* the good ones and one of each fake */

static char dir[64];
static int lfd[NLISTEN];
static int stop_pipe[2];
static pid_t server; /* a process: the client's file limit is not its */

static int listen_on(const char *name, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", dir, name);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

/* Listener k's kind: the first NGOOD answer, then one of each fake. */
static enum fake kind_of(int k)
{
	return k < NGOOD ? GOOD : (enum fake)(k - NGOOD + 1);
}

/* Serve every listener but FULL's until stop_pipe is written. */
static void serve(void)
{
	struct pollfd p[NLISTEN + 1];
	int held[64], nheld = 0;

	for (;;) {
		int n = 0;

		for (int k = 0; k < NLISTEN; k++)
			if (lfd[k] >= 0 && kind_of(k) != FULL)
				p[n++] = (struct pollfd){ .fd = lfd[k], .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = stop_pipe[0], .events = POLLIN };
		if (poll(p, (nfds_t)n, -1) < 0 || p[n - 1].revents)
			break;
		for (int j = 0; j < n - 1; j++) {
			char req[256], reply[128];
			int k, c;
			ssize_t r;

			if (!p[j].revents)
				continue;
			for (k = 0; lfd[k] != p[j].fd; k++)
				;
			c = accept4(p[j].fd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue;
			if (kind_of(k) == SILENT && nheld < 64) {
				held[nheld++] = c; /* answered never; closed at the end */
				continue;
			}
			r = read(c, req, sizeof(req) - 1);
			if (kind_of(k) == GOOD && r > 0)
				snprintf(reply, sizeof(reply),
					 "{\"ok\":true,\"name\":\"g%d\",\"pid\":%d}\n", k,
					 1000 + k);
			else if (kind_of(k) == REFUSES)
				snprintf(reply, sizeof(reply), "{\"ok\":false,\"error\":\"no\"}\n");
			else
				reply[0] = '\0';
			/* A client past its timeout may be gone: no SIGPIPE. */
			if (reply[0])
				(void)send(c, reply, strlen(reply), MSG_NOSIGNAL);
			close(c);
		}
	}
	for (int i = 0; i < nheld; i++)
		close(held[i]);
}

static int setup(void **state)
{
	char name[32];

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/cvisor-fanout.XXXXXX");
	assert_non_null(mkdtemp(dir));
	setenv("CVISOR_RUN_DIR", dir, 1);
	for (int k = 0; k < NLISTEN; k++) {
		enum fake f = kind_of(k);

		if (f == GOOD)
			snprintf(name, sizeof(name), "g%03d", k);
		else
			snprintf(name, sizeof(name), "%s", fake_names[f]);
		/* FULL: a backlog of 0 is full once one connection waits. */
		lfd[k] = listen_on(name, f == FULL ? 0 : 64);
		if (f == STALE) {
			close(lfd[k]); /* the socket file stays: a dead monitor's */
			lfd[k] = -1;
		}
	}
	assert_int_equal(pipe(stop_pipe), 0);
	server = fork();
	assert_true(server >= 0);
	if (server == 0) {
		serve();
		_exit(0);
	}
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (write(stop_pipe[1], "x", 1) != 1)
		return -1;
	waitpid(server, NULL, 0);
	for (int k = 0; k < NLISTEN; k++)
		if (lfd[k] >= 0)
			close(lfd[k]);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void every_guest_answered_in_its_slot(void **state)
{
	char **names;
	struct cli_answer *ans;
	int n = cli_list_names(dir, &names), full_fd;
	uint64_t t0;

	(void)state;
	assert_int_equal(n, NLISTEN);
	/* Fill FULL's backlog first: the next connect would wait. */
	full_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/full.sock", dir);
		assert_int_equal(connect(full_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	ans = calloc((size_t)n, sizeof(*ans));
	assert_non_null(ans);
	t0 = cv_now_ns();
	cli_ask_all(names, n, "{\"cmd\":\"info\"}\n", 500, ans);
	/* The silent and the full one wait out the timeout, together with
	 * the rest, not one after another. */
	assert_true(cv_now_ns() - t0 < 2000000000ULL);
	for (int i = 0; i < n; i++) {
		if (names[i][0] == 'g') {
			char want[16];

			snprintf(want, sizeof(want), "g%d", atoi(names[i] + 1));
			assert_int_equal(ans[i].r, 0);
			assert_string_equal(cli_json_str(ans[i].reply, "name"), want);
		} else if (!strcmp(names[i], "stale")) {
			assert_int_equal(ans[i].r, -ECONNREFUSED);
		} else if (!strcmp(names[i], "closes")) {
			assert_int_equal(ans[i].r, -EPIPE);
		} else if (!strcmp(names[i], "full") || !strcmp(names[i], "silent")) {
			assert_int_equal(ans[i].r, -ETIMEDOUT);
		} else {
			assert_string_equal(names[i], "refuses");
			assert_int_equal(ans[i].r, -EREMOTEIO);
		}
		json_object_put(ans[i].reply);
		free(names[i]);
	}
	close(full_fd);
	free(names);
	free(ans);
}

/* With a few files to spare (a low RLIMIT_NOFILE), the requests wait for
 * each other's files rather than fail: every good guest still answers. */
static void few_files_only_slow_it_down(void **state)
{
	struct rlimit old, low;
	char **names;
	struct cli_answer *ans;
	int n = cli_list_names(dir, &names), fd = dup(0);

	(void)state;
	assert_true(n > 0 && fd >= 0);
	close(fd); /* the lowest free descriptor: those below are in use */
	ans = calloc((size_t)n, sizeof(*ans));
	assert_non_null(ans);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)fd + 4; /* the epoll fd and 3 connections */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	cli_ask_all(names, n, "{\"cmd\":\"info\"}\n", 2000, ans);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	for (int i = 0; i < n; i++) {
		if (names[i][0] == 'g')
			assert_int_equal(ans[i].r, 0);
		json_object_put(ans[i].reply);
		free(names[i]);
	}
	free(names);
	free(ans);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_guest_answered_in_its_slot),
		cmocka_unit_test(few_files_only_slow_it_down),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
