/* test_virtio_vsock_hostile.c - virtio-vsock when the guest misbehaves or
 * goes away: hostile headers and chains, rx buffers too small, a driver
 * reset, the transport reset event, save/load, the connection table's
 * bound. The fixture: vsock_fixture.h. */
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

#include "vdev_state.h"
#include "vsock_fixture.h"
#include "with_err.h"

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
	uint32_t hport;
	int fd, lfd, cfd, pend;

	lfd = port_listen(v, 7000);
	start(v);
	fd = host_connect(v, 1234, 4096, &hport);
	cfd = guest_connect(v, lfd, 50, 7000, 4096);
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
	assert_int_equal(WITH_ERR(err, virtio_vsock_create(fresh, &c, &v->t.mem, &v->loop, &e_)),
			 0);
	fresh->transport = v->t.dev.transport;
	vdev_load_whole(fresh, a.data, a.len);
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
	unsigned int ok = 0, rst = 0;
	struct pkt p;
	int lfd;

	lfd = port_listen(v, 8000);
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
#define T(f) cmocka_unit_test_setup_teardown(f, vt_setup, vt_teardown)
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
