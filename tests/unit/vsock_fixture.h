/* vsock_fixture.h - what the virtio-vsock tests share (test_virtio_vsock.c,
 * test_virtio_vsock_hostile.c): a guest with the shared driver
 * (tests/lib/vq_driver.h) and a packet codec written from the spec (5.10),
 * the device on the real event loop, and unix sockets on the host side.
 * Header-only; include after <cmocka.h>. The helpers are plain static
 * functions (FIXTURE marks them maybe unused): inlined, the socket path
 * helpers trip -Wformat-truncation on the caller's buffer sizes. */
#ifndef CVISOR_TEST_VSOCK_FIXTURE_H
#define CVISOR_TEST_VSOCK_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cvisor/virtio_vsock.h"
#include "vq_driver.h"
#include "with_err.h"

#define FIXTURE __attribute__((unused)) static

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

FIXTURE void enc(const struct pkt *p, uint8_t *b)
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

FIXTURE void dec(struct pkt *p, const uint8_t *b)
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

FIXTURE void pump(struct vt *v)
{
	for (int i = 0; i < 8; i++)
		assert_int_equal(evloop_once(&v->loop, 1), 0);
}

/* n rx buffers of RX_LEN bytes, one descriptor each, then a kick. */
FIXTURE void rx_fill(struct vt *v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		struct vqd_buf b = { RX_BASE + v->t.vq[RXQ].next_desc * RX_LEN, RX_LEN, 1 };

		vqd_add(&v->t.vq[RXQ], &b, 1);
	}
	virtio_dev_notify(&v->t.dev, RXQ);
}

/* The next packet on the rx queue (refilling its buffer): 1 or 0 if none. */
FIXTURE int rx_get(struct vt *v, struct pkt *p)
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
FIXTURE void tx_raw(struct vt *v, const struct pkt *p, const void *data, uint32_t len)
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

FIXTURE void tx(struct vt *v, uint16_t op, uint32_t gport, uint32_t hport, const void *data,
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

FIXTURE int vt_setup(void **state)
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
	if (evloop_init(&v->loop) || WITH_ERR(err, virtio_vsock_parse(spec, &v->cfg, &e_)) ||
	    WITH_ERR(err, virtio_vsock_create(&v->t.dev, &v->cfg, &v->t.mem, &v->loop, &e_)))
		return -1;
	*state = v;
	return 0;
}

FIXTURE int vt_teardown(void **state)
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

FIXTURE void start(struct vt *v)
{
	assert_int_equal(vqd_dev_up(&v->t, 0, 3), 0);
	rx_fill(v, 8);
}

FIXTURE int unix_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

FIXTURE int unix_listen(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 512), 0);
	return fd;
}

/* A host listener for guest connections to port: v->path + "_port". */
FIXTURE int port_listen(struct vt *v, uint32_t port)
{
	char path[160];

	snprintf(path, sizeof(path), "%s_%u", v->path, port);
	return unix_listen(path);
}

/* Read exactly n bytes (the device runs between attempts). */
FIXTURE void read_exact(struct vt *v, int fd, void *buf, size_t n)
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
FIXTURE int at_eof(struct vt *v, int fd)
{
	ssize_t r;
	char c;

	pump(v);
	r = recv(fd, &c, 1, MSG_DONTWAIT);
	return r == 0 || (r < 0 && errno != EAGAIN);
}

/* A host-initiated connection to guest port gport, accepted by the guest
 * with buf_alloc; returns the client socket, *hport the host's port. */
FIXTURE int host_connect(struct vt *v, uint32_t gport, uint32_t buf_alloc, uint32_t *hport)
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

/* A guest-initiated connection from gport to hport, which lfd listens
 * on, with buf_alloc: the device answers RESPONSE; returns the host's
 * accepted socket. */
FIXTURE int guest_connect(struct vt *v, int lfd, uint32_t gport, uint32_t hport, uint32_t buf_alloc)
{
	struct pkt p;
	int cfd;

	tx(v, REQUEST, gport, hport, NULL, 0, buf_alloc, 0, 0);
	rx_expect(v, &p, RESPONSE);
	assert_int_equal(p.src_port, hport);
	assert_int_equal(p.dst_port, gport);
	cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);
	return cfd;
}

#endif
