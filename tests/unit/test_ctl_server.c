/* test_ctl_server.c - the control server's connection handling (server.c)
 * on a real unix socket and event loop, with a VM that has no vCPUs: the
 * requests are ones that need no guest (unknown commands get an error
 * reply, kill only sets the stop flag). Covers framing under pipelining
 * and half-close, requests of clients that hung up, slots held by idle
 * clients and the idle timeout. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "unix_client.h"

#include "cvisor/ctl.h"
#include "cvisor/evloop.h"
#include "cvisor/vm.h"

struct fixture {
	char dir[64];
	struct vm vm;
	struct ctl_server srv;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/cvisor-ctl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(evloop_init(&f->vm.loop), 0);
	f->vm.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(f->vm.stop_fd >= 0);
	pthread_mutex_init(&f->vm.lock, NULL);
	pthread_cond_init(&f->vm.pause_cond, NULL);
	assert_int_equal(ctl_server_bind(&f->srv, f->dir, "t", err, sizeof(err)), 0);
	assert_int_equal(ctl_server_start(&f->srv, &f->vm, NULL, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ctl_server_shutdown(&f->srv);
	ctl_server_close(&f->srv);
	evloop_destroy(&f->vm.loop);
	close(f->vm.stop_fd);
	pthread_cond_destroy(&f->vm.pause_cond);
	pthread_mutex_destroy(&f->vm.lock);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A client connected to the server's socket (not yet accepted). */
static int client(struct fixture *f)
{
	int fd = unix_client(f->srv.sock_path);

	assert_true(fd >= 0);
	return fd;
}

static void send_str(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Event loop rounds for up to ms (at least one, however late this thread
 * runs), or until fd is readable (fd >= 0). */
static void pump(struct fixture *f, int ms, int fd)
{
	uint64_t end = cv_now_ns() + (uint64_t)ms * 1000000ULL;

	do {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		assert_int_equal(evloop_once(&f->vm.loop, 10), 0);
		if (fd >= 0 && poll(&p, 1, 0) == 1)
			return;
	} while (cv_now_ns() < end);
}

/* Whether the server closed its end of fd (EOF waiting), without reading
 * data meant for later. */
static bool closed_by_server(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK) == 0;
}

/* What the server sent on fd until it closed it, or sent lines lines (0:
 * any number), or 2 s passed. */
static void read_lines(struct fixture *f, int fd, char *buf, size_t len, int lines)
{
	size_t n = 0;
	uint64_t end = cv_now_ns() + 2000000000ULL;

	buf[0] = '\0';
	while (n + 1 < len && cv_now_ns() < end) {
		ssize_t r;
		int seen = 0;

		pump(f, 50, fd);
		r = recv(fd, buf + n, len - 1 - n, MSG_DONTWAIT);
		if (r == 0)
			break;
		if (r > 0)
			n += (size_t)r;
		buf[n] = '\0';
		for (const char *p = buf; (p = strchr(p, '\n')); p++)
			seen++;
		if (lines && seen >= lines)
			break;
	}
}

static const char three[] = "{\"cmd\":\"one\"}\n{\"cmd\":\"two\"}\n{\"cmd\":\"three\"}\n";
static const char three_replies[] = "{\"ok\":false,\"error\":\"unknown command \\\"one\\\"\"}\n"
				    "{\"ok\":false,\"error\":\"unknown command \\\"two\\\"\"}\n"
				    "{\"ok\":false,\"error\":\"unknown command \\\"three\\\"\"}\n";

/* Three requests in one write: three replies, in order (defect 5). */
static void test_pipelined(void **state)
{
	struct fixture *f = *state;
	char buf[1024];
	int fd = client(f);

	send_str(fd, three);
	read_lines(f, fd, buf, sizeof(buf), 3);
	assert_string_equal(buf, three_replies);
	close(fd);
}

/* The same, with the client's half-close right behind them. */
static void test_pipelined_half_close(void **state)
{
	struct fixture *f = *state;
	char buf[1024];
	int fd = client(f);

	send_str(fd, three);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	read_lines(f, fd, buf, sizeof(buf), 0);
	assert_string_equal(buf, three_replies);
	close(fd);
}

/* A request whose client hung up before the server read it is not
 * executed (defect 4); one whose client only half-closed is. */
static void test_hung_up_request_dropped(void **state)
{
	struct fixture *f = *state;
	int fd = client(f);

	send_str(fd, "{\"cmd\":\"kill\"}\n");
	close(fd);
	pump(f, 200, -1);
	assert_false(ctl_server_killed(&f->srv));
	assert_int_equal(atomic_load(&f->vm.stop), VM_RUNNING);

	fd = client(f);
	send_str(fd, "{\"cmd\":\"kill\"}\n");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	/* Up to 20 s: a loaded host is slower, never failed for it. */
	for (int i = 0; i < 2000 && !ctl_server_killed(&f->srv); i++)
		pump(f, 10, -1);
	assert_true(ctl_server_killed(&f->srv));
	close(fd);
}

/* Every slot held by a silent client: a new client is still served, in
 * the slot of the oldest idle one, which is closed (defect 4). */
static void test_slots_full_of_idle(void **state)
{
	struct fixture *f = *state;
	int idle[CTL_MAX_CONNS + 4], fd;
	char buf[1024];

	for (unsigned int i = 0; i < ARRAY_SIZE(idle); i++) {
		idle[i] = client(f);
		pump(f, 20, -1);
	}
	fd = client(f);
	send_str(fd, "{\"cmd\":\"x\"}\n");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	read_lines(f, fd, buf, sizeof(buf), 0);
	assert_string_equal(buf, "{\"ok\":false,\"error\":\"unknown command \\\"x\\\"\"}\n");
	close(fd);
	/* The first connection was dropped for room; the last still waits. */
	assert_int_equal(recv(idle[0], buf, sizeof(buf), MSG_DONTWAIT), 0);
	assert_int_equal(recv(idle[ARRAY_SIZE(idle) - 1], buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	for (unsigned int i = 0; i < ARRAY_SIZE(idle); i++)
		close(idle[i]);
}

/* A client that sends no complete request within the idle timeout is
 * closed; one that is busy sending requests is not. */
static void test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	int quiet = client(f), partial = client(f), busy = client(f);
	char buf[256];

	uint64_t t0 = cv_now_ns();

	/* busy sends its next request as soon as a reply comes, for longer
	 * than the timeout: only a stall of this thread for the whole 2 s
	 * could make it look idle. */
	f->srv.idle_timeout_ns = 2000000000ULL;
	send_str(partial, "{\"cmd\":");
	while (cv_now_ns() - t0 < 3000000000ULL) {
		send_str(busy, "{\"cmd\":\"y\"}\n");
		pump(f, 20000, busy);
		assert_true(recv(busy, buf, sizeof(buf), MSG_DONTWAIT) > 0);
	}
	/* The two idle ones: closed within 20 s. */
	for (int i = 0; i < 2000 && !(closed_by_server(quiet) && closed_by_server(partial)); i++)
		pump(f, 10, -1);
	assert_int_equal(recv(quiet, buf, sizeof(buf), MSG_DONTWAIT), 0);
	assert_int_equal(recv(partial, buf, sizeof(buf), MSG_DONTWAIT), 0);
	close(quiet);
	close(partial);
	close(busy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_half_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_up_request_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_full_of_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
