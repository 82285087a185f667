/* test_virtio_vsock.c - virtio-vsock between a guest driver written here
 * from the spec (5.10) and unix sockets on the host, through the real event
 * loop: host- and guest-initiated connections, data both ways, credit,
 * shutdown, hostile headers and chains, reset, transport reset, save/load. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/virtio_vsock.h"
#include "vq_driver.h"

#define RAM_SIZE (2u << 20)
#define CID 3
#define RXQ 0
#define TXQ 1
#define EVQ 2
#define HDR 44
#define RX_BASE 0x40000u /* rx buffer for head h: RX_BASE + h * RX_LEN */
#define RX_LEN (HDR + 4096u)
#define TX_BASE 0x80000u
#define EV_BASE 0x7f000u
#define BIG_BASE 0x100000u /* up to 64 KiB of payload */
#define HOST_PORT_BASE (1u << 30)
enum { REQUEST = 1, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST };

struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
	uint8_t data[4096];
};

struct vt {
	struct vqd_dev t;
	struct evloop loop;
	char dir[64], path[128];
	struct virtio_vsock_config cfg;
};

static void enc(const struct pkt *p, uint8_t *b)
{
	memcpy(b, &p->src_cid, 8);
	memcpy(b + 8, &p->dst_cid, 8);
	memcpy(b + 16, &p->src_port, 4);
	memcpy(b + 20, &p->dst_port, 4);
	memcpy(b + 24, &p->len, 4);
	memcpy(b + 28, &p->type, 2);
	memcpy(b + 30, &p->op, 2);
	memcpy(b + 32, &p->flags, 4);
	memcpy(b + 36, &p->buf_alloc, 4);
	memcpy(b + 40, &p->fwd_cnt, 4);
}

static void dec(struct pkt *p, const uint8_t *b)
{
	memcpy(&p->src_cid, b, 8);
	memcpy(&p->dst_cid, b + 8, 8);
	memcpy(&p->src_port, b + 16, 4);
	memcpy(&p->dst_port, b + 20, 4);
	memcpy(&p->len, b + 24, 4);
	memcpy(&p->type, b + 28, 2);
	memcpy(&p->op, b + 30, 2);
	memcpy(&p->flags, b + 32, 4);
	memcpy(&p->buf_alloc, b + 36, 4);
	memcpy(&p->fwd_cnt, b + 40, 4);
}

static void pump(struct vt *v)
{
	for (int i = 0; i < 8; i++)
		assert_int_equal(evloop_once(&v->loop, 1), 0);
}

/* n rx buffers of RX_LEN bytes, one descriptor each, then a kick. */
static void rx_fill(struct vt *v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		struct vqd_buf b = { RX_BASE + v->t.vq[RXQ].next_desc * RX_LEN, RX_LEN, 1 };

		vqd_add(&v->t.vq[RXQ], &b, 1);
	}
	virtio_dev_notify(&v->t.dev, RXQ);
}

/* The next packet on the rx queue (refilling its buffer): 1 or 0 if none. */
static int rx_get(struct vt *v, struct pkt *p)
{
	uint32_t id, len;

	if (!vqd_used(&v->t.vq[RXQ], &id, &len))
		return 0;
	assert_true(id < VQD_SIZE && len >= HDR && len <= RX_LEN);
	dec(p, v->t.ram + RX_BASE + id * RX_LEN);
	assert_int_equal(p->len, len - HDR);
	memcpy(p->data, v->t.ram + RX_BASE + id * RX_LEN + HDR, p->len);
	assert_int_equal(p->src_cid, 2);
	assert_int_equal(p->dst_cid, CID);
	assert_int_equal(p->type, 1);
	assert_int_equal(p->buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
	rx_fill(v, 1);
	return 1;
}

/* A macro so that a failure names the caller's line. */
#define rx_expect(v, p, want)                      \
	do {                                       \
		pump(v);                           \
		assert_int_equal(rx_get(v, p), 1); \
		assert_int_equal((p)->op, want);   \
	} while (0)

/* Send a packet from the guest: header and payload in two descriptors. */
static void tx_raw(struct vt *v, const struct pkt *p, const void *data, uint32_t len)
{
	uint64_t pay = len > sizeof(p->data) ? BIG_BASE : TX_BASE + 0x1000;
	struct vqd_buf b[2] = { { TX_BASE, HDR, 0 }, { pay, len, 0 } };
	uint32_t id, l;

	enc(p, v->t.ram + TX_BASE);
	if (len)
		memcpy(v->t.ram + pay, data, len);
	vqd_add(&v->t.vq[TXQ], b, len ? 2 : 1);
	virtio_dev_notify(&v->t.dev, TXQ);
	assert_int_equal(vqd_used(&v->t.vq[TXQ], &id, &l), 1);
}

static void tx(struct vt *v, uint16_t op, uint32_t gport, uint32_t hport, const void *data,
	       uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt, uint32_t flags)
{
	struct pkt p = { .src_cid = CID,
			 .dst_cid = 2,
			 .src_port = gport,
			 .dst_port = hport,
			 .len = len,
			 .type = 1,
			 .op = op,
			 .flags = flags,
			 .buf_alloc = buf_alloc,
			 .fwd_cnt = fwd_cnt };

	tx_raw(v, &p, data, len);
}

static int vt_setup(void **state)
{
	struct vt *v = calloc(1, sizeof(*v));
	char err[128], spec[200];

	if (!v || !(v->t.ram = calloc(1, RAM_SIZE)))
		return -1;
	snprintf(v->dir, sizeof(v->dir), "/tmp/cvvsockXXXXXX");
	if (!mkdtemp(v->dir))
		return -1;
	snprintf(v->path, sizeof(v->path), "%s/v.sock", v->dir);
	snprintf(spec, sizeof(spec), "%d,uds=%s", CID, v->path);
	guest_mem_init_buf(&v->t.mem, v->t.ram, RAM_SIZE);
	if (evloop_init(&v->loop) || virtio_vsock_parse(spec, &v->cfg, err, sizeof(err)) ||
	    virtio_vsock_create(&v->t.dev, &v->cfg, &v->t.mem, &v->loop, err, sizeof(err)))
		return -1;
	*state = v;
	return 0;
}

static int vt_teardown(void **state)
{
	struct vt *v = *state;
	char cmd[160];

	virtio_vsock_destroy(&v->t.dev);
	evloop_destroy(&v->loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", v->dir);
	if (system(cmd))
		return -1;
	free(v->t.ram);
	free(v);
	return 0;
}

static void start(struct vt *v)
{
	assert_int_equal(vqd_dev_up(&v->t, 0, 3), 0);
	rx_fill(v, 8);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 512), 0);
	return fd;
}

/* Read exactly n bytes (the device runs between attempts). */
static void read_exact(struct vt *v, int fd, void *buf, size_t n)
{
	size_t got = 0;

	for (int tries = 0; got < n && tries < 100; tries++) {
		ssize_t r = recv(fd, (char *)buf + got, n - got, MSG_DONTWAIT);

		if (r > 0)
			got += (size_t)r;
		else
			pump(v);
	}
	assert_int_equal(got, n);
}

/* Is the socket at EOF (or reset)? */
static int at_eof(struct vt *v, int fd)
{
	ssize_t r;
	char c;

	pump(v);
	r = recv(fd, &c, 1, MSG_DONTWAIT);
	return r == 0 || (r < 0 && errno != EAGAIN);
}

/* A host-initiated connection to guest port gport, accepted by the guest
 * with buf_alloc; returns the client socket, *hport the host's port. */
static int host_connect(struct vt *v, uint32_t gport, uint32_t buf_alloc, uint32_t *hport)
{
	int fd = unix_connect(v->path);
	char line[32], want[32];
	struct pkt p;

	assert_int_equal(send(fd, "CONNECT 1234\n", 13, 0), 13);
	(void)gport;
	rx_expect(v, &p, REQUEST);
	assert_int_equal(p.dst_port, 1234);
	assert_true(p.src_port >= HOST_PORT_BASE);
	assert_int_equal(p.len, 0);
	*hport = p.src_port;
	tx(v, RESPONSE, 1234, *hport, NULL, 0, buf_alloc, 0, 0);
	snprintf(want, sizeof(want), "OK %u\n", *hport);
	read_exact(v, fd, line, strlen(want));
	assert_memory_equal(line, want, strlen(want));
	return fd;
}

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
	assert_int_equal(virtio_vsock_parse("3", &c, err, sizeof(err)), 0);
	assert_int_equal(c.guest_cid, 3);
	assert_string_equal(c.uds_path, "/run/cvisor/vsock-3.sock");
	assert_true(c.uds_default);
	assert_int_equal(virtio_vsock_parse("4294967294,uds=/tmp/x.sock", &c, err, sizeof(err)), 0);
	assert_int_equal(c.guest_cid, 4294967294ULL);
	assert_string_equal(c.uds_path, "/tmp/x.sock");
	assert_false(c.uds_default);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_int_equal(virtio_vsock_parse(bad[i], &c, err, sizeof(err)), -EINVAL);
		assert_true(strncmp(err, "--vsock: ", 9) == 0);
	}
	memset(longp, 'a', sizeof(longp));
	memcpy(longp, "3,uds=", 6);
	longp[6 + VIRTIO_VSOCK_PATH_MAX] = 0;
	assert_int_equal(virtio_vsock_parse(longp, &c, err, sizeof(err)), 0);
	longp[6 + VIRTIO_VSOCK_PATH_MAX] = 'a';
	longp[7 + VIRTIO_VSOCK_PATH_MAX] = 0;
	assert_int_equal(virtio_vsock_parse(longp, &c, err, sizeof(err)), -EINVAL);
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
	assert_int_equal(virtio_vsock_create(&d2, &c, &v->t.mem, &v->loop, err, sizeof(err)),
			 -EADDRINUSE);
	assert_non_null(strstr(err, "in use"));
	/* Without a directory: one clear line. */
	snprintf(c.uds_path, sizeof(c.uds_path), "%s/nodir/v.sock", v->dir);
	assert_int_equal(virtio_vsock_create(&d2, &c, &v->t.mem, &v->loop, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "cannot listen on"));
	/* A stale socket file (nobody listening) is replaced. */
	virtio_vsock_destroy(&v->t.dev);
	assert_int_not_equal(stat(v->path, &st), 0);
	close(unix_listen(v->path));
	assert_int_equal(
		virtio_vsock_create(&v->t.dev, &v->cfg, &v->t.mem, &v->loop, err, sizeof(err)), 0);
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
	char path[160], buf[8];
	struct pkt p;
	int lfd, cfd;

	snprintf(path, sizeof(path), "%s_5000", v->path);
	lfd = unix_listen(path);
	start(v);
	tx(v, REQUEST, 999, 5000, NULL, 0, 8192, 0, 0);
	rx_expect(v, &p, RESPONSE);
	assert_int_equal(p.src_port, 5000);
	assert_int_equal(p.dst_port, 999);
	cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);
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
	char path[160], buf[8];
	struct pkt p;
	int lfd, cfd;

	snprintf(path, sizeof(path), "%s_6000", v->path);
	lfd = unix_listen(path);
	start(v);
	tx(v, REQUEST, 42, 6000, NULL, 0, 8192, 0, 0);
	rx_expect(v, &p, RESPONSE);
	cfd = accept(lfd, NULL, NULL);
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

static void test_bad_headers(void **state)
{
	struct vt *v = *state;
	struct pkt p = {
		.src_cid = CID, .dst_cid = 2, .src_port = 5, .dst_port = 6, .type = 1, .op = RW
	};
	uint32_t hport;
	int fd;

	start(v);
	/* Not from the guest's CID: dropped without an answer. */
	p.src_cid = 4;
	tx_raw(v, &p, NULL, 0);
	pump(v);
	assert_int_equal(rx_get(v, &p), 0);
	/* To a CID other than the host's, a type other than stream, an
	 * unknown op, a length beyond the chain: RST. */
	{
		struct pkt q[4];

		for (int i = 0; i < 4; i++)
			q[i] = (struct pkt){ .src_cid = CID,
					     .dst_cid = 2,
					     .src_port = 5,
					     .dst_port = 6,
					     .type = 1,
					     .op = RW };
		q[0].dst_cid = 7;
		q[1].type = 2;
		q[2].op = 99;
		q[3].len = 100;
		for (int i = 0; i < 4; i++) {
			struct pkt r;

			tx_raw(v, &q[i], "abc", 3);
			rx_expect(v, &r, RST);
			assert_int_equal(r.dst_port, 5);
			assert_int_equal(r.src_port, 6);
		}
	}
	/* An RST is never answered with an RST. */
	p = (struct pkt){ .src_cid = CID, .dst_cid = 9, .type = 1, .op = RST };
	tx_raw(v, &p, NULL, 0);
	pump(v);
	assert_int_equal(rx_get(v, &p), 0);
	/* A chain shorter than a header: dropped, the device carries on. */
	{
		struct vqd_buf b = { TX_BASE, 20, 0 };
		uint32_t id, len;

		vqd_add(&v->t.vq[TXQ], &b, 1);
		virtio_dev_notify(&v->t.dev, TXQ);
		assert_int_equal(vqd_used(&v->t.vq[TXQ], &id, &len), 1);
		assert_false(v->t.dev.status & VIRTIO_STATUS_NEEDS_RESET);
	}
	/* A lying length on an established connection resets it. */
	fd = host_connect(v, 1234, 4096, &hport);
	p = (struct pkt){ .src_cid = CID,
			  .dst_cid = 2,
			  .src_port = 1234,
			  .dst_port = hport,
			  .type = 1,
			  .op = RW,
			  .len = 5000 };
	tx_raw(v, &p, "abc", 3);
	rx_expect(v, &p, RST);
	assert_true(at_eof(v, fd));
	close(fd);
}

static void test_malformed_chain(void **state)
{
	struct vt *v = *state;
	struct vqd_buf b = { RAM_SIZE - 8, 64, 0 };

	start(v);
	vqd_add(&v->t.vq[TXQ], &b, 1);
	virtio_dev_notify(&v->t.dev, TXQ);
	assert_true(v->t.dev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(v->t.config_irqs >= 1);
}

static void test_small_rx_buffer(void **state)
{
	struct vt *v = *state;
	struct vqd_buf b = { RX_BASE, HDR, 1 };
	uint32_t id, len;

	assert_int_equal(vqd_dev_up(&v->t, 0, 3), 0);
	vqd_add(&v->t.vq[RXQ], &b, 1);
	virtio_dev_notify(&v->t.dev, RXQ);
	tx(v, REQUEST, 1, 2, NULL, 0, 0, 0, 0); /* owes an RST */
	assert_int_equal(vqd_used(&v->t.vq[RXQ], &id, &len), 1);
	assert_int_equal(len, 0);
	assert_false(v->t.dev.status & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_reset_closes_everything(void **state)
{
	struct vt *v = *state;
	char path[160];
	uint32_t hport;
	struct pkt p;
	int fd, lfd, cfd, pend;

	snprintf(path, sizeof(path), "%s_7000", v->path);
	lfd = unix_listen(path);
	start(v);
	fd = host_connect(v, 1234, 4096, &hport);
	tx(v, REQUEST, 50, 7000, NULL, 0, 4096, 0, 0);
	rx_expect(v, &p, RESPONSE);
	cfd = accept(lfd, NULL, NULL);
	pend = unix_connect(v->path); /* mid-handshake */
	pump(v);
	vqd_dev_status(&v->t.dev, 0);
	assert_true(at_eof(v, fd));
	assert_true(at_eof(v, cfd));
	assert_true(at_eof(v, pend));
	close(fd);
	close(cfd);
	close(pend);
	/* The listener still works after the driver comes back. */
	start(v);
	fd = host_connect(v, 1234, 4096, &hport);
	close(fd);
	close(lfd);
}

static void ev_fill(struct vt *v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		struct vqd_buf b = { EV_BASE + 4 * i, 4, 1 };

		vqd_add(&v->t.vq[EVQ], &b, 1);
	}
	virtio_dev_notify(&v->t.dev, EVQ);
}

static void test_transport_reset_event(void **state)
{
	struct vt *v = *state;
	uint32_t hport, id, len;
	int fd;

	start(v);
	fd = host_connect(v, 1234, 4096, &hport);
	memset(v->t.ram + EV_BASE, 0xff, 4);
	assert_int_equal(virtio_vsock_transport_reset(&v->t.dev), 0); /* no buffer yet */
	assert_true(at_eof(v, fd));
	assert_int_equal(vqd_used(&v->t.vq[EVQ], &id, &len), 0);
	ev_fill(v, 2);
	assert_int_equal(vqd_used(&v->t.vq[EVQ], &id, &len), 1);
	assert_int_equal(len, 4);
	assert_int_equal(vqd_rd32(v->t.ram, EV_BASE), 0); /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
	assert_int_equal(vqd_used(&v->t.vq[EVQ], &id, &len), 0);
	close(fd);
}

static void test_save_load(void **state)
{
	struct vt *v = *state;
	struct virtio_vsock_config c = v->cfg;
	struct virtio_dev *fresh = calloc(1, sizeof(*fresh));
	struct state_buf a = { 0 }, b = { 0 };
	struct state_rd r;
	uint32_t hport, id, len;
	char err[160];
	int fd;

	start(v);
	ev_fill(v, 2);
	fd = host_connect(v, 1234, 4096, &hport);
	assert_int_equal(virtio_dev_save(&v->t.dev, &a), 0);
	/* A destination with another CID: the guest will re-read it. */
	c.guest_cid = 77;
	snprintf(c.uds_path, sizeof(c.uds_path), "%s/w.sock", v->dir);
	assert_int_equal(virtio_vsock_create(fresh, &c, &v->t.mem, &v->loop, err, sizeof(err)), 0);
	fresh->transport = v->t.dev.transport;
	state_rd_init(&r, a.data, a.len);
	assert_int_equal(virtio_dev_load(fresh, &r), 0);
	assert_int_equal(r.pos, a.len);
	assert_int_equal(virtio_dev_save(fresh, &b), 0);
	pump(v);
	assert_int_equal(vqd_used(&v->t.vq[EVQ], &id, &len), 1);
	assert_int_equal(len, 4);
	assert_int_equal(vqd_rd32(v->t.ram, EV_BASE), 0);
	assert_int_equal(a.len, b.len);
	/* Same bytes but the CID, which is this host's. */
	assert_memory_equal(a.data, b.data, a.len - 8);
	/* Corrupt states are refused. */
	state_rd_init(&r, a.data, a.len - 1);
	assert_int_equal(virtio_dev_load(fresh, &r), -EINVAL);
	memset(a.data + a.len - 8, 0xff, 8);
	state_rd_init(&r, a.data, a.len);
	assert_int_equal(virtio_dev_load(fresh, &r), -EINVAL);
	state_buf_free(&a);
	state_buf_free(&b);
	virtio_vsock_destroy(fresh);
	free(fresh);
	close(fd);
}

static void test_connection_table_bound(void **state)
{
	struct vt *v = *state;
	char path[160];
	unsigned int ok = 0, rst = 0;
	struct pkt p;
	int lfd;

	snprintf(path, sizeof(path), "%s_8000", v->path);
	lfd = unix_listen(path);
	start(v);
	for (uint32_t i = 0; i < VIRTIO_VSOCK_CONN_MAX + 20; i++) {
		tx(v, REQUEST, 10000 + i, 8000, NULL, 0, 4096, 0, 0);
		pump(v);
		while (rx_get(v, &p)) {
			ok += p.op == RESPONSE;
			rst += p.op == RST;
		}
	}
	assert_int_equal(ok + rst, VIRTIO_VSOCK_CONN_MAX + 20);
	assert_true(ok <= VIRTIO_VSOCK_CONN_MAX);
	assert_true(rst >= 20);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
#define T(f) cmocka_unit_test_setup_teardown(f, vt_setup, vt_teardown)
		T(test_create_and_config),
		T(test_host_connect_and_data),
		T(test_host_handshake_errors),
		T(test_connect_before_driver),
		T(test_credit_limits),
		T(test_guest_overruns_credit),
		T(test_guest_connect),
		T(test_half_close),
		T(test_bad_headers),
		T(test_malformed_chain),
		T(test_small_rx_buffer),
		T(test_reset_closes_everything),
		T(test_transport_reset_event),
		T(test_save_load),
		T(test_connection_table_bound),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
