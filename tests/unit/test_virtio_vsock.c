/* test_virtio_vsock.c - virtio-vsock between the shared guest driver and
 * unix sockets on the host, through the real event loop: the --vsock
 * parser, host- and guest-initiated connections, data both ways, credit,
 * shutdown. Hostile guests, reset, transport reset and save/load:
 * test_virtio_vsock_hostile.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "vsock_fixture.h"
#include "with_err.h"

static void test_parse(void **state)
{
	static const char *const bad[] = {
		"",   "2",  "0",       "4294967295", "99999999999999999999999",
		"x",  "3,", "3,uds=",  "3,foo=bar",  "3,uds=a,b",
		" 3", "-3", "3,UDS=/x"
	};
	struct virtio_vsock_config c;
	char err[160], longp[200];

	(void)state;
	assert_int_equal(WITH_ERR(err, virtio_vsock_parse("3", &c, &e_)), 0);
	assert_int_equal(c.guest_cid, 3);
	assert_string_equal(c.uds_path, "/run/cvisor/vsock-3.sock");
	assert_true(c.uds_default);
	assert_int_equal(WITH_ERR(err, virtio_vsock_parse("4294967294,uds=/tmp/x.sock", &c, &e_)),
			 0);
	assert_int_equal(c.guest_cid, 4294967294ULL);
	assert_string_equal(c.uds_path, "/tmp/x.sock");
	assert_false(c.uds_default);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_int_equal(WITH_ERR(err, virtio_vsock_parse(bad[i], &c, &e_)), -EINVAL);
		assert_true(strncmp(err, "--vsock: ", 9) == 0);
	}
	memset(longp, 'a', sizeof(longp));
	memcpy(longp, "3,uds=", 6);
	longp[6 + VIRTIO_VSOCK_PATH_MAX] = 0;
	assert_int_equal(WITH_ERR(err, virtio_vsock_parse(longp, &c, &e_)), 0);
	longp[6 + VIRTIO_VSOCK_PATH_MAX] = 'a';
	longp[7 + VIRTIO_VSOCK_PATH_MAX] = 0;
	assert_int_equal(WITH_ERR(err, virtio_vsock_parse(longp, &c, &e_)), -EINVAL);
}

static void test_create_and_config(void **state)
{
	struct vt *v = *state;
	struct virtio_dev d2;
	struct virtio_vsock_config c = v->cfg;
	char err[256];
	uint8_t cfg[8];
	uint64_t cid;
	struct stat st;

	assert_int_equal(v->t.dev.ops->device_id, VIRTIO_ID_VSOCK);
	assert_int_equal(v->t.dev.ops->num_queues, 3);
	virtio_dev_config_read(&v->t.dev, 0, cfg, 8);
	memcpy(&cid, cfg, 8);
	assert_int_equal(cid, CID);
	assert_int_equal(stat(v->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	/* The path is in use by a live listener. */
	assert_int_equal(WITH_ERR(err, virtio_vsock_create(&d2, &c, &v->t.mem, &v->loop, &e_)),
			 -EADDRINUSE);
	assert_non_null(strstr(err, "in use"));
	/* Without a directory: one clear line. */
	snprintf(c.uds_path, sizeof(c.uds_path), "%s/nodir/v.sock", v->dir);
	assert_int_equal(WITH_ERR(err, virtio_vsock_create(&d2, &c, &v->t.mem, &v->loop, &e_)),
			 -ENOENT);
	assert_non_null(strstr(err, "cannot listen on"));
	/* A stale socket file (nobody listening) is replaced. */
	virtio_vsock_destroy(&v->t.dev);
	assert_int_not_equal(stat(v->path, &st), 0);
	close(unix_listen(v->path));
	assert_int_equal(
		WITH_ERR(err, virtio_vsock_create(&v->t.dev, &v->cfg, &v->t.mem, &v->loop, &e_)),
		0);
}

static void test_host_connect_and_data(void **state)
{
	struct vt *v = *state;
	uint32_t hport;
	char buf[16];
	struct pkt p;
	int fd;

	start(v);
	fd = host_connect(v, 1234, 4096, &hport);
	/* host -> guest */
	assert_int_equal(send(fd, "hello", 5, 0), 5);
	rx_expect(v, &p, RW);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.data, "hello", 5);
	assert_int_equal(p.src_port, hport);
	assert_int_equal(p.dst_port, 1234);
	/* guest -> host */
	tx(v, RW, 1234, hport, "world!", 6, 4096, 5, 0);
	read_exact(v, fd, buf, 6);
	assert_memory_equal(buf, "world!", 6);
	/* The host closes: the guest is told it will get no more. */
	close(fd);
	rx_expect(v, &p, SHUTDOWN);
	assert_int_equal(p.flags & 2, 2);
	/* The guest resets; the connection is gone: data now gets an RST. */
	tx(v, RST, 1234, hport, NULL, 0, 4096, 5, 0);
	tx(v, RW, 1234, hport, "x", 1, 4096, 5, 0);
	rx_expect(v, &p, RST);
	assert_int_equal(p.dst_port, 1234);
	assert_int_equal(p.src_port, hport);
	pump(v);
	assert_int_equal(rx_get(v, &p), 0);
}

static void test_host_handshake_errors(void **state)
{
	struct vt *v = *state;
	char line[64];
	struct pkt p;
	int fd;

	start(v);
	fd = unix_connect(v->path);
	assert_int_equal(send(fd, "HELLO 5\n", 8, 0), 8);
	assert_true(at_eof(v, fd));
	close(fd);
	fd = unix_connect(v->path);
	memset(line, '9', sizeof(line));
	assert_int_equal(send(fd, line, sizeof(line), 0), (ssize_t)sizeof(line));
	assert_true(at_eof(v, fd));
	close(fd);
	fd = unix_connect(v->path);
	assert_int_equal(send(fd, "CONNECT 4294967296\n", 19, 0), 19);
	assert_true(at_eof(v, fd));
	close(fd);
	/* The guest refuses: the host socket is closed. */
	fd = unix_connect(v->path);
	assert_int_equal(send(fd, "CONNECT 7\r\n", 11, 0), 11);
	rx_expect(v, &p, REQUEST);
	assert_int_equal(p.dst_port, 7);
	tx(v, RST, 7, p.src_port, NULL, 0, 0, 0, 0);
	assert_true(at_eof(v, fd));
	close(fd);
	/* The host gives up before the guest answers: the guest gets an RST. */
	fd = unix_connect(v->path);
	assert_int_equal(send(fd, "CONNECT 8\n", 10, 0), 10);
	rx_expect(v, &p, REQUEST);
	close(fd);
	rx_expect(v, &p, RST);
	assert_int_equal(p.dst_port, 8);
	/* A RESPONSE nobody asked for gets an RST. */
	tx(v, RESPONSE, 9, HOST_PORT_BASE + 77, NULL, 0, 4096, 0, 0);
	rx_expect(v, &p, RST);
	assert_int_equal(p.dst_port, 9);
}

static void test_connect_before_driver(void **state)
{
	struct vt *v = *state;
	struct pkt p;
	int fd = unix_connect(v->path);

	assert_int_equal(send(fd, "CONNECT 22\n", 11, 0), 11);
	pump(v);
	start(v);
	rx_expect(v, &p, REQUEST);
	assert_int_equal(p.dst_port, 22);
	close(fd);
}

static void test_credit_limits(void **state)
{
	struct vt *v = *state;
	char data[300], got[300];
	uint32_t hport, n = 0, fwd;
	struct pkt p;
	int fd;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)i;
	start(v);
	fd = host_connect(v, 1234, 100, &hport);
	assert_int_equal(send(fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
	/* Only the guest's 100 bytes of credit, then a credit request. */
	pump(v);
	while (rx_get(v, &p) && p.op == RW) {
		memcpy(got + n, p.data, p.len);
		n += p.len;
		pump(v);
	}
	assert_int_equal(n, 100);
	assert_int_equal(p.op, CREDIT_REQUEST);
	assert_int_equal(rx_get(v, &p), 0);
	/* The guest consumed 100: 100 more. */
	tx(v, CREDIT_UPDATE, 1234, hport, NULL, 0, 100, 100, 0);
	rx_expect(v, &p, RW);
	assert_int_equal(p.len, 100);
	memcpy(got + 100, p.data, 100);
	/* Blocked again: asks again, once. */
	rx_expect(v, &p, CREDIT_REQUEST);
	pump(v);
	assert_int_equal(rx_get(v, &p), 0);
	/* A bigger buffer: the rest. */
	tx(v, CREDIT_UPDATE, 1234, hport, NULL, 0, 4096, 200, 0);
	rx_expect(v, &p, RW);
	assert_int_equal(p.len, 100);
	memcpy(got + 200, p.data, 100);
	assert_memory_equal(got, data, sizeof(data));
	/* The guest asks for credit: the device's buf_alloc and fwd_cnt. */
	tx(v, RW, 1234, hport, data, 10, 4096, 300, 0);
	tx(v, CREDIT_REQUEST, 1234, hport, NULL, 0, 4096, 300, 0);
	rx_expect(v, &p, CREDIT_UPDATE);
	memcpy(&fwd, &p.fwd_cnt, 4);
	assert_int_equal(fwd, 10);
	close(fd);
}

/* The host does not read: the device buffers up to buf_alloc and resets a
 * guest that sends beyond its credit. */
static void test_guest_overruns_credit(void **state)
{
	struct vt *v = *state;
	static uint8_t big[64u << 10];
	uint32_t hport;
	struct pkt p;
	int fd, rcv = 4096, reset = 0;

	start(v);
	fd = host_connect(v, 1234, 4096, &hport);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)), 0);
	for (int i = 0; i < 64 && !reset; i++) {
		tx(v, RW, 1234, hport, big, sizeof(big), 4096, 0, 0);
		pump(v);
		while (rx_get(v, &p))
			if (p.op == RST)
				reset = 1;
	}
	assert_true(reset);
	close(fd);
	pump(v);
	while (rx_get(v, &p))
		;
	/* A packet larger than any credit is refused outright. */
	fd = host_connect(v, 1234, 4096, &hport);
	tx(v, RW, 1234, hport, big, sizeof(big), 4096, 0, 0);
	/* Exactly buf_alloc is within credit: at most a credit update. */
	pump(v);
	while (rx_get(v, &p))
		assert_int_equal(p.op, CREDIT_UPDATE);
	close(fd);
}

static void test_guest_connect(void **state)
{
	struct vt *v = *state;
	char buf[8];
	struct pkt p;
	int lfd, cfd;

	lfd = port_listen(v, 5000);
	start(v);
	cfd = guest_connect(v, lfd, 999, 5000, 8192);
	tx(v, RW, 999, 5000, "ping", 4, 8192, 0, 0);
	read_exact(v, cfd, buf, 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(send(cfd, "pong", 4, 0), 4);
	rx_expect(v, &p, RW);
	assert_memory_equal(p.data, "pong", 4);
	/* The guest shuts down both ways: the device answers RST and the
	 * host sees EOF. */
	tx(v, SHUTDOWN, 999, 5000, NULL, 0, 8192, 4, 3);
	rx_expect(v, &p, RST);
	assert_true(at_eof(v, cfd));
	close(cfd);
	/* No listener on the port: RST. */
	tx(v, REQUEST, 1000, 5001, NULL, 0, 8192, 0, 0);
	rx_expect(v, &p, RST);
	assert_int_equal(p.src_port, 5001);
	assert_int_equal(p.dst_port, 1000);
	close(lfd);
}

static void test_half_close(void **state)
{
	struct vt *v = *state;
	char buf[8];
	struct pkt p;
	int lfd, cfd;

	lfd = port_listen(v, 6000);
	start(v);
	cfd = guest_connect(v, lfd, 42, 6000, 8192);
	/* The guest is done sending: the host reads EOF but can answer. */
	tx(v, RW, 42, 6000, "req", 3, 8192, 0, 0);
	tx(v, SHUTDOWN, 42, 6000, NULL, 0, 8192, 0, 2);
	read_exact(v, cfd, buf, 3);
	assert_true(at_eof(v, cfd));
	assert_int_equal(send(cfd, "resp", 4, 0), 4);
	rx_expect(v, &p, RW);
	assert_memory_equal(p.data, "resp", 4);
	/* Then the host closes: SHUTDOWN to the guest and, both sides done,
	 * an RST. */
	close(cfd);
	rx_expect(v, &p, SHUTDOWN);
	rx_expect(v, &p, RST);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
#define T(f) cmocka_unit_test_setup_teardown(f, vt_setup, vt_teardown)
		T(test_create_and_config),     T(test_host_connect_and_data),
		T(test_host_handshake_errors), T(test_connect_before_driver),
		T(test_credit_limits),	       T(test_guest_overruns_credit),
		T(test_guest_connect),	       T(test_half_close),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
