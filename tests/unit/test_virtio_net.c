/* test_virtio_net.c - virtio-net (virtio 1.2 5.1) over guest memory in a
 * calloc'd buffer, driven as a driver would: rings written by hand, a fake
 * backend standing in for the tap, and a DHCP exchange with the real
 * libslirp when it is installed. The --net parser: test_net_config.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/virtio_net.h"
#include "vq_driver.h"
#include "with_err.h"

#define MEM_SIZE (2u << 20)
#define QSZ 256
#define DATA_BASE 0x10000
#define F(b) (1ULL << (b))
#define BASE_FEATURES (F(32) | F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS))

struct fake {
	struct net_backend be;
	uint8_t sent[8][2048];
	size_t sent_len[8];
	unsigned int nsent;
	uint8_t *frames[8];
	size_t frame_len[8];
	unsigned int nframes;
	bool rx_on, flushed;
	unsigned int offload;
};

struct h {
	uint8_t *buf;
	struct guest_mem mem;
	struct evloop loop;
	struct virtio_dev d;
	struct fake f;
	struct vqd rx, tx; /* the driver's side of the queues */
	uint64_t data;
	_Atomic uint64_t rxb, txb;
	unsigned int irqs;
};

static int fake_send(struct net_backend *b, const struct iovec *iov, unsigned int n)
{
	struct fake *f = (struct fake *)b;
	size_t len = 0;

	assert_true(f->nsent < 8);
	for (unsigned int i = 0; i < n; i++) {
		assert_true(len + iov[i].iov_len <= sizeof(f->sent[0]));
		memcpy(f->sent[f->nsent] + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	f->sent_len[f->nsent++] = len;
	return 0;
}

static ssize_t fake_recv(struct net_backend *b, void *buf, size_t len)
{
	struct fake *f = (struct fake *)b;
	ssize_t r;

	if (!f->nframes)
		return 0;
	assert_true(f->frame_len[0] <= len);
	memcpy(buf, f->frames[0], f->frame_len[0]);
	r = (ssize_t)f->frame_len[0];
	free(f->frames[0]);
	memmove(f->frames, f->frames + 1, --f->nframes * sizeof(f->frames[0]));
	memmove(f->frame_len, f->frame_len + 1, f->nframes * sizeof(f->frame_len[0]));
	return r;
}

static void fake_set_rx(struct net_backend *b, bool on)
{
	((struct fake *)b)->rx_on = on;
}

static void fake_flush(struct net_backend *b)
{
	struct fake *f = (struct fake *)b;

	while (f->nframes)
		free(f->frames[--f->nframes]);
	f->flushed = true;
}

static int fake_offload(struct net_backend *b, unsigned int flags)
{
	((struct fake *)b)->offload = flags;
	return 0;
}

static void fake_destroy(struct net_backend *b)
{
	fake_flush(b);
}

static const struct net_backend_ops fake_ops = {
	fake_send, fake_recv, fake_set_rx, fake_flush, fake_offload, fake_destroy,
};

static void on_signal(struct virtio_dev *d, uint16_t vector, uint8_t isr)
{
	(void)vector;
	(void)isr;
	((struct h *)d->transport.ctx)->irqs++;
}

static uint64_t alloc_data(struct h *h, size_t len)
{
	uint64_t g = h->data;

	h->data += (len + 15) & ~(size_t)15;
	assert_true(h->data < MEM_SIZE);
	return g;
}

/* Post one receive buffer of len bytes; returns its address. */
static uint64_t post_rx(struct h *h, uint32_t len)
{
	struct vqd_buf s = { alloc_data(h, len), len, true };

	vqd_add(&h->rx, &s, 1);
	return s.gpa;
}

/* Transmit header + frame in two descriptors. */
static void send_tx(struct h *h, const uint8_t *hdr, const uint8_t *frame, uint32_t len)
{
	struct vqd_buf s[2] = { { alloc_data(h, 12), 12, false },
				{ alloc_data(h, len), len, false } };

	memcpy(h->buf + s[0].gpa, hdr, 12);
	memcpy(h->buf + s[1].gpa, frame, len);
	vqd_add(&h->tx, s, 2);
}

static void inject(struct h *h, const uint8_t *p, size_t len)
{
	struct fake *f = &h->f;

	f->frames[f->nframes] = malloc(len);
	memcpy(f->frames[f->nframes], p, len);
	f->frame_len[f->nframes++] = len;
	if (f->rx_on && f->be.rx_ready)
		f->be.rx_ready(f->be.opaque);
}

static void pump(struct h *h)
{
	for (int i = 0; i < 4; i++)
		assert_int_equal(evloop_once(&h->loop, 0), 0);
}

static void make_dev_spec(struct h *h, struct fake *f, unsigned int hdr_len, const char *spec)
{
	struct virtio_net_config c;
	char err[128];

	assert_int_equal(WITH_ERR(err, virtio_net_parse(spec, 0, &c, &e_)), 0);
	*f = (struct fake){ .be = { .ops = &fake_ops, .hdr_len = hdr_len, .offloads = hdr_len } };
	assert_int_equal(
		virtio_net_create_backend(&h->d, &c, &h->mem, &h->loop, &f->be, &h->rxb, &h->txb),
		0);
	h->d.transport = (struct virtio_transport){ .signal = on_signal, .ctx = h };
}

static void make_dev(struct h *h, struct fake *f, unsigned int hdr_len)
{
	make_dev_spec(h, f, hdr_len, "user");
}

static int setup(void **state)
{
	struct h *h = calloc(1, sizeof(*h));

	h->buf = calloc(1, MEM_SIZE);
	guest_mem_init_buf(&h->mem, h->buf, MEM_SIZE);
	assert_int_equal(evloop_init(&h->loop), 0);
	vqd_init(&h->rx, h->buf, QSZ, 0x1000, 0x2000, 0x3000);
	vqd_init(&h->tx, h->buf, QSZ, 0x5000, 0x6000, 0x7000);
	h->data = DATA_BASE;
	make_dev(h, &h->f, 0);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct h *h = *state;

	virtio_net_destroy(&h->d);
	evloop_destroy(&h->loop);
	free(h->buf);
	free(h);
	return 0;
}

/* The driver's side of 3.1.1, then the kick activate() sends. */
static void start(struct h *h, uint64_t features)
{
	const struct vqd q[2] = { h->rx, h->tx };

	assert_int_equal(vqd_dev_start(&h->d, features, q, 2), 0);
	pump(h);
}

static void pattern(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void test_features_config(void **state)
{
	struct h *h = *state;
	struct fake f2;
	uint8_t cfg[8];

	assert_int_equal(h->d.device_features & (F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_MRG_RXBUF)),
			 F(VIRTIO_NET_F_MRG_RXBUF));
	assert_true(h->d.device_features & F(VIRTIO_NET_F_MAC));
	virtio_dev_config_read(&h->d, 0, cfg, 8);
	assert_memory_equal(cfg, "\x52\x54\x00\x12\x34\x56\x01\x00", 8);
	virtio_net_destroy(&h->d);
	/* A tap with vnet headers and offloads: offered, and the guest's
	 * choice reaches the tap as TUN_F_* at activate. */
	make_dev(h, &f2, 12);
	assert_true(h->d.device_features & F(VIRTIO_NET_F_HOST_TSO4));
	start(h, BASE_FEATURES | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4));
	virtio_net_destroy(&h->d);
	assert_int_equal(f2.offload, 0x01 | 0x02); /* TUN_F_CSUM | TUN_F_TSO4 */
	make_dev(h, &h->f, 0);
}

static void test_tx_one(void **state)
{
	struct h *h = *state;
	uint8_t hdr[12] = { 0 }, frame[60];
	struct virtio_net_stats st;

	start(h, BASE_FEATURES);
	pattern(frame, sizeof(frame), 1);
	send_tx(h, hdr, frame, sizeof(frame));
	virtio_dev_notify(&h->d, VIRTIO_NET_TXQ);
	assert_int_equal(h->f.nsent, 1);
	assert_int_equal(h->f.sent_len[0], sizeof(frame));
	assert_memory_equal(h->f.sent[0], frame, sizeof(frame));
	assert_int_equal(vqd_used_idx(&h->tx), 1);
	assert_int_equal(vqd_used_len(&h->tx, 0), 0);
	assert_int_equal(h->txb, sizeof(frame));
	assert_true(h->irqs >= 1);
	virtio_net_get_stats(&h->d, &st);
	assert_int_equal(st.tx_packets, 1);
}

static void check_rx(struct h *h, const uint64_t *bufs, uint16_t first, unsigned int n,
		     const uint8_t *frame, size_t len);

static void test_vnet_header(void **state)
{
	struct h *h = *state;
	uint8_t hdr[12] = { 1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0 }, frame[60], rx[72];
	uint64_t b;

	virtio_net_destroy(&h->d);
	make_dev(h, &h->f, 12);
	start(h, BASE_FEATURES | F(VIRTIO_NET_F_CSUM));
	pattern(frame, sizeof(frame), 2);
	send_tx(h, hdr, frame, sizeof(frame));
	virtio_dev_notify(&h->d, VIRTIO_NET_TXQ);
	assert_int_equal(h->f.sent_len[0], 12 + sizeof(frame));
	assert_memory_equal(h->f.sent[0], hdr, 12);
	assert_memory_equal(h->f.sent[0] + 12, frame, sizeof(frame));
	/* Receive: DATA_VALID from the tap is cleared without GUEST_CSUM
	 * (5.1.6.4.1), and a GSO frame the guest did not ask for is dropped. */
	b = post_rx(h, 1500);
	virtio_dev_notify(&h->d, VIRTIO_NET_RXQ);
	memcpy(rx, "\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x07", 12);
	memcpy(rx + 12, frame, sizeof(frame));
	rx[1] = 1;
	inject(h, rx, sizeof(rx));
	assert_int_equal(vqd_used_idx(&h->rx), 0);
	rx[1] = 0;
	inject(h, rx, sizeof(rx));
	check_rx(h, &b, 0, 1, frame, sizeof(frame));
}

static void test_tx_malformed(void **state)
{
	struct h *h = *state;
	uint8_t hdr[12] = { 0 }, gso[12] = { 0, 1 }, frame[60] = { 0 };
	uint32_t big = 12 + VIRTIO_NET_FRAME_MAX + 1;
	struct vqd_buf s[3] = { { alloc_data(h, big), big, false } };
	struct virtio_net_stats st;

	start(h, BASE_FEATURES);
	vqd_add(&h->tx, s, 1);				    /* too large */
	send_tx(h, hdr, frame, 13);			    /* shorter than Ethernet */
	send_tx(h, gso, frame, sizeof(frame));		    /* GSO not offered */
	s[0] = (struct vqd_buf){ MEM_SIZE - 8, 64, false }; /* outside RAM */
	vqd_add(&h->tx, s, 1);
	s[0] = (struct vqd_buf){ alloc_data(h, 80), 80, false };
	s[1] = (struct vqd_buf){ alloc_data(h, 16), 16, true }; /* writable in tx */
	vqd_add(&h->tx, s, 2);
	send_tx(h, hdr, frame, sizeof(frame)); /* and a good one after */
	virtio_dev_notify(&h->d, VIRTIO_NET_TXQ);
	assert_int_equal(vqd_used_idx(&h->tx), 6);
	for (uint16_t i = 0; i < 6; i++)
		assert_int_equal(vqd_used_len(&h->tx, i), 0);
	assert_int_equal(h->f.nsent, 1);
	virtio_net_get_stats(&h->d, &st);
	assert_int_equal(st.tx_dropped, 5);
	assert_int_equal(st.tx_packets, 1);
	assert_false(h->d.status & VIRTIO_STATUS_NEEDS_RESET);
	/* An avail index more than a queue ahead breaks the queue itself. */
	vqd_wr16(h->buf, h->tx.avail + 2, (uint16_t)(h->tx.avail_idx + QSZ + 1));
	virtio_dev_notify(&h->d, VIRTIO_NET_TXQ);
	assert_true(h->d.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_false(h->d.active);
}

/* A received frame as the guest sees it: header + frame over used bufs. */
static void check_rx(struct h *h, const uint64_t *bufs, uint16_t first, unsigned int n,
		     const uint8_t *frame, size_t len)
{
	uint8_t *got = malloc(12 + len);
	size_t off = 0;

	assert_int_equal((uint16_t)(vqd_used_idx(&h->rx) - first), n);
	for (unsigned int i = 0; i < n; i++) {
		uint32_t l = vqd_used_len(&h->rx, (uint16_t)(first + i));

		assert_true(off + l <= 12 + len);
		memcpy(got + off, h->buf + bufs[i], l);
		off += l;
	}
	assert_int_equal(off, 12 + len);
	assert_int_equal(got[10] | got[11] << 8, n); /* num_buffers */
	assert_int_equal(got[0], 0);
	assert_memory_equal(got + 12, frame, len);
	free(got);
}

static void test_rx_mergeable(void **state)
{
	struct h *h = *state;
	uint8_t frame[2500];
	uint64_t b[3];

	start(h, BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	for (int i = 0; i < 3; i++)
		b[i] = post_rx(h, 1000);
	virtio_dev_notify(&h->d, VIRTIO_NET_RXQ);
	assert_true(h->f.rx_on);
	pattern(frame, sizeof(frame), 3);
	inject(h, frame, sizeof(frame));
	check_rx(h, b, 0, 3, frame, sizeof(frame));
	assert_int_equal(vqd_used_len(&h->rx, 2), 512);
	assert_int_equal(h->rxb, sizeof(frame));
	assert_true(h->irqs >= 1);
}

static void test_rx_single_buffer(void **state)
{
	struct h *h = *state;
	uint8_t small[100], big[1600];
	uint64_t b;
	struct virtio_net_stats st;

	start(h, BASE_FEATURES); /* no MRG_RXBUF */
	b = post_rx(h, 1526);
	virtio_dev_notify(&h->d, VIRTIO_NET_RXQ);
	pattern(big, sizeof(big), 4);
	inject(h, big, sizeof(big)); /* does not fit: dropped, buffer kept */
	assert_int_equal(vqd_used_idx(&h->rx), 0);
	pattern(small, sizeof(small), 5);
	inject(h, small, sizeof(small));
	check_rx(h, &b, 0, 1, small, sizeof(small));
	virtio_net_get_stats(&h->d, &st);
	assert_int_equal(st.rx_dropped, 1);
	assert_int_equal(st.rx_packets, 1);
}

static void test_rx_backpressure(void **state)
{
	struct h *h = *state;
	uint8_t f1[200], f2[3000];
	uint64_t b[3];

	start(h, BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	assert_true(h->f.rx_on);
	pattern(f1, sizeof(f1), 6);
	pattern(f2, sizeof(f2), 7);
	inject(h, f1, sizeof(f1));
	inject(h, f2, sizeof(f2));
	/* No buffers: the device stops reading the backend. */
	assert_false(h->f.rx_on);
	assert_int_equal(vqd_used_idx(&h->rx), 0);
	b[0] = post_rx(h, 1500);
	virtio_dev_notify(&h->d, VIRTIO_NET_RXQ);
	check_rx(h, b, 0, 1, f1, sizeof(f1));
	/* f2 needs three buffers; two are held without a used entry. */
	b[0] = post_rx(h, 1500);
	b[1] = post_rx(h, 1500);
	virtio_dev_notify(&h->d, VIRTIO_NET_RXQ);
	assert_int_equal(vqd_used_idx(&h->rx), 1);
	assert_false(h->f.rx_on);
	b[2] = post_rx(h, 1500);
	virtio_dev_notify(&h->d, VIRTIO_NET_RXQ);
	check_rx(h, b, 1, 3, f2, sizeof(f2));
	assert_true(h->f.rx_on);
}

static void test_rx_malformed(void **state)
{
	struct h *h = *state;
	uint8_t frame[64];
	struct vqd_buf s[2] = { { alloc_data(h, 64), 64, false }, { alloc_data(h, 64), 64, true } };
	uint64_t b;

	start(h, BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	vqd_add(&h->rx, s, 2); /* device-readable part */
	post_rx(h, 8);	       /* smaller than the header */
	s[0] = (struct vqd_buf){ 0x7fff0000ULL, 64, true };
	vqd_add(&h->rx, s, 1); /* outside RAM */
	b = post_rx(h, 2048);
	virtio_dev_notify(&h->d, VIRTIO_NET_RXQ);
	pattern(frame, sizeof(frame), 8);
	inject(h, frame, sizeof(frame));
	assert_int_equal(vqd_used_idx(&h->rx), 4);
	for (uint16_t i = 0; i < 3; i++)
		assert_int_equal(vqd_used_len(&h->rx, i), 0);
	check_rx(h, &b, 3, 1, frame, sizeof(frame));
	assert_false(h->d.status & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_reset(void **state)
{
	struct h *h = *state;
	uint8_t frame[3000] = { 0 }, hdr[12] = { 0 };

	start(h, BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	post_rx(h, 1500);
	virtio_dev_notify(&h->d, VIRTIO_NET_RXQ);
	inject(h, frame, sizeof(frame)); /* half placed */
	inject(h, frame, 100);		 /* waiting in the backend */
	virtio_dev_set_status(&h->d, 0);
	assert_false(h->d.active);
	pump(h);
	assert_false(h->f.rx_on);
	assert_true(h->f.flushed);
	assert_int_equal(h->f.nframes, 0);
	/* The driver starts over on fresh rings. */
	memset(h->buf, 0, DATA_BASE);
	vqd_init(&h->rx, h->buf, QSZ, 0x1000, 0x2000, 0x3000);
	vqd_init(&h->tx, h->buf, QSZ, 0x5000, 0x6000, 0x7000);
	start(h, BASE_FEATURES);
	send_tx(h, hdr, frame, 60);
	virtio_dev_notify(&h->d, VIRTIO_NET_TXQ);
	assert_int_equal(h->f.nsent, 1);
	assert_int_equal(vqd_used_idx(&h->tx), 1);
}

static void test_save_load(void **state)
{
	struct h *h = *state;
	uint8_t hdr[12] = { 0 }, frame[60] = { 0 }, big[3000], cfg[6];
	struct state_buf a = { 0 }, b = { 0 };
	struct state_rd r;
	struct virtio_dev d2;
	struct fake f2 = { .be = { .ops = &fake_ops } };
	struct virtio_net_config c;
	char err[128];

	start(h, BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	send_tx(h, hdr, frame, sizeof(frame));
	virtio_dev_notify(&h->d, VIRTIO_NET_TXQ);
	post_rx(h, 1500);
	virtio_dev_notify(&h->d, VIRTIO_NET_RXQ);
	pattern(big, sizeof(big), 9);
	inject(h, big, sizeof(big)); /* one buffer held at save time */
	assert_int_equal(h->d.vqs[VIRTIO_NET_RXQ].last_avail, 1);
	assert_int_equal(virtio_dev_save(&h->d, &a), 0);

	/* A fresh device whose own config has another MAC (a clone's). */
	assert_int_equal(WITH_ERR(err, virtio_net_parse("user,mac=02:00:00:00:00:09", 3, &c, &e_)),
			 0);
	assert_int_equal(virtio_net_create_backend(&d2, &c, &h->mem, &h->loop, &f2.be, NULL, NULL),
			 0);
	/* Truncated, or a multicast MAC (mac[0] is 10 bytes from the end):
	 * refused. */
	state_rd_init(&r, a.data, a.len - 1);
	assert_int_not_equal(virtio_dev_load(&d2, &r), 0);
	a.data[a.len - 10] |= 1;
	state_rd_init(&r, a.data, a.len);
	assert_int_not_equal(virtio_dev_load(&d2, &r), 0);
	a.data[a.len - 10] &= (uint8_t)~1;
	state_rd_init(&r, a.data, a.len);
	assert_int_equal(virtio_dev_load(&d2, &r), 0);
	assert_true(d2.active);
	virtio_dev_config_read(&d2, 0, cfg, 6);
	/* Its own spec's MAC, not the saved one: a restore's spec is the
	 * saved guest's, a clone's (restore --count) its own. */
	assert_memory_equal(cfg, "\x02\x00\x00\x00\x00\x09", 6);
	/* The held buffer went back to the ring; the rest is the same. */
	assert_int_equal(d2.vqs[VIRTIO_NET_RXQ].last_avail, 0);
	assert_int_equal(virtio_dev_save(&d2, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_int_equal(a.data[a.len - 2], 1);
	assert_int_equal(b.data[b.len - 2], 0);
	virtio_net_destroy(&d2);
	state_buf_free(&a);

	/* Load that state into the harness's device and use it. */
	virtio_net_destroy(&h->d);
	make_dev(h, &h->f, 0);
	state_rd_init(&r, b.data, b.len);
	assert_int_equal(virtio_dev_load(&h->d, &r), 0);
	state_buf_free(&b);
	pump(h);
	send_tx(h, hdr, frame, sizeof(frame));
	virtio_dev_notify(&h->d, VIRTIO_NET_TXQ);
	assert_int_equal(h->f.nsent, 1);
	assert_int_equal(vqd_used_idx(&h->tx), 2);
	/* The half-placed frame was lost; its buffer takes the next one. */
	inject(h, big, 100);
	assert_int_equal(vqd_used_idx(&h->rx), 1);
	assert_int_equal(vqd_used_len(&h->rx, 0), 112);
}

/* The user network over the real libslirp (skipped if not installed). */
static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (size_t i = 0; i < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static size_t dhcp_discover(uint8_t *f, const uint8_t mac[6])
{
	uint8_t *ip = f + 14, *udp = ip + 20, *bp = udp + 8;
	size_t bl = 548;
	uint16_t c;

	memset(f, 0, 14 + 20 + 8 + bl);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + 8 + bl) >> 8);
	ip[3] = (uint8_t)(20 + 8 + bl);
	ip[8] = 64;
	ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	c = ip_csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[1] = 68;
	udp[3] = 67;
	udp[4] = (uint8_t)((8 + bl) >> 8);
	udp[5] = (uint8_t)(8 + bl);
	bp[0] = 1;
	bp[1] = 1;
	bp[2] = 6;
	memcpy(bp + 4, "\x12\x34\x56\x78", 4);
	bp[10] = 0x80; /* broadcast reply */
	memcpy(bp + 28, mac, 6);
	memcpy(bp + 236, "\x63\x82\x53\x63\x35\x01\x01\xff", 8);
	return 14 + 20 + 8 + bl;
}

/* A DHCP message type option value in the frame, or -1. */
static int dhcp_type(const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + 14, *bp;
	size_t ihl, i;

	if (len < 14 + 20 + 8 + 240 || f[12] != 0x08 || f[13] || ip[9] != 17)
		return -1;
	ihl = (size_t)(ip[0] & 15) * 4;
	bp = ip + ihl + 8;
	if (ip[ihl + 1] != 67 || ip[ihl + 3] != 68 || bp[0] != 2 ||
	    memcmp(bp + 16, "\x0a\x00\x02\x0f", 4))
		return -1;
	for (i = 240; bp + i + 2 < f + len && bp[i] != 255; i += bp[i] ? 2u + bp[i + 1] : 1u)
		if (bp[i] == 53)
			return bp[i + 2];
	return -1;
}

/* What a hostfwd connection makes slirp send the guest: an ARP who-has
 * 10.0.2.15, or (address known) a TCP SYN to 10.0.2.15:22. */
static int fwd_probe(const uint8_t *f, size_t len)
{
	static const uint8_t guest[4] = { 10, 0, 2, 15 };
	const uint8_t *ip = f + 14;

	if (len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 1 && !memcmp(f + 38, guest, 4))
		return 1;
	return len >= 14 + 20 + 20 && f[12] == 0x08 && !f[13] && ip[9] == 6 &&
	       !memcmp(ip + 16, guest, 4) && ip[(ip[0] & 15) * 4 + 3] == 22 &&
	       (ip[(ip[0] & 15) * 4 + 13] & 2);
}

/* Run the loop until a received frame satisfies want, for at most ms. */
static bool wait_rx(struct h *h, const uint64_t *bufs, uint16_t *seen, int want,
		    int (*what)(const uint8_t *, size_t), int ms)
{
	for (int t = 0; t <= ms / 10; t++) {
		for (; *seen != vqd_used_idx(&h->rx) && *seen < 16; (*seen)++)
			if (what(h->buf + bufs[*seen] + 12, vqd_used_len(&h->rx, *seen) - 12) ==
			    want)
				return true;
		assert_int_equal(evloop_once(&h->loop, 10), 0);
	}
	return false;
}

static void test_slirp(void **state)
{
	struct h *h = *state;
	struct net_backend *be;
	struct virtio_net_config c;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t sl = sizeof(sin);
	uint8_t hdr[12] = { 0 }, frame[600];
	uint64_t bufs[16];
	char err[256], spec[64];
	int r, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t seen = 0;

	/* A free host port for the rule (bound, read back, released). */
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	close(s);
	snprintf(spec, sizeof(spec), "user,hostfwd=tcp:127.0.0.1:%u-:22", ntohs(sin.sin_port));
	assert_int_equal(WITH_ERR(err, virtio_net_parse(spec, 0, &c, &e_)), 0);
	virtio_net_destroy(&h->d);
	r = net_slirp_open(c.hostfwd, c.nr_hostfwd, &h->loop, &be, err, sizeof(err));
	if (r == -ENOENT) {
		print_message("skipping the user network: %s\n", err);
		make_dev(h, &h->f, 0);
		skip();
	}
	assert_int_equal(r, 0);
	assert_int_equal(
		virtio_net_create_backend(&h->d, &c, &h->mem, &h->loop, be, &h->rxb, &h->txb), 0);
	h->d.transport = (struct virtio_transport){ .signal = on_signal, .ctx = h };
	start(h, BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	for (int i = 0; i < 16; i++)
		bufs[i] = post_rx(h, 2048);
	virtio_dev_notify(&h->d, VIRTIO_NET_RXQ);
	/* DHCP: a DISCOVER from the guest's tx queue comes back as an OFFER
	 * of 10.0.2.15 in its rx queue. */
	send_tx(h, hdr, frame, (uint32_t)dhcp_discover(frame, c.mac));
	virtio_dev_notify(&h->d, VIRTIO_NET_TXQ);
	assert_true(wait_rx(h, bufs, &seen, 2, dhcp_type, 1000)); /* DHCPOFFER */
	/* hostfwd: slirp accepts on the host and reaches for the guest's port
	 * 22, at once: its listening socket is in our epoll set (the timer
	 * alone would take up to slirp's 500 ms slow tick). */
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	r = connect(s, (struct sockaddr *)&sin, sizeof(sin));
	assert_true(r == 0 || errno == EINPROGRESS);
	assert_true(wait_rx(h, bufs, &seen, 1, fwd_probe, 150));
	close(s);
	virtio_net_destroy(&h->d);
	make_dev(h, &h->f, 0);
}

/* Limited both ways, nothing dropped: over the limit a frame to send
 * stays on the transmit ring and one received stays in the device while
 * the backend is no longer read; the timer resumes both. Only lower
 * bounds on time: a limit cannot be beaten, however fast the host. */
static void test_rate_limit(void **state)
{
	struct h *h = *state;
	uint8_t hdr[12] = { 0 }, frame[60];
	struct virtio_net_stats st;
	struct rate_status rs[2];
	uint64_t t0;

	virtio_net_destroy(&h->d);
	make_dev_spec(h, &h->f, 0, "user,tx-pps=4,tx-pps-burst=1,rx-pps=4,rx-pps-burst=1");
	start(h, BASE_FEATURES);
	pattern(frame, sizeof(frame), 3);
	t0 = cv_now_ns();
	for (int i = 0; i < 3; i++) {
		send_tx(h, hdr, frame, sizeof(frame));
		post_rx(h, 128);
	}
	virtio_dev_notify(&h->d, VIRTIO_NET_TXQ);
	assert_int_equal(h->f.nsent, 1);
	assert_int_equal(h->d.vqs[VIRTIO_NET_TXQ].last_avail, 1); /* the rest on the ring */
	for (int i = 0; i < 3; i++)
		inject(h, frame, sizeof(frame));
	assert_int_equal(vqd_used_idx(&h->rx), 1);
	assert_false(h->f.rx_on); /* the backend keeps what the guest may not have yet */
	assert_int_equal(h->f.nframes, 1);
	for (int i = 0; i < 500 && (vqd_used_idx(&h->rx) < 3 || vqd_used_idx(&h->tx) < 3); i++)
		assert_int_equal(evloop_once(&h->loop, 10), 0);
	assert_int_equal(vqd_used_idx(&h->rx), 3);
	assert_int_equal(vqd_used_idx(&h->tx), 3);
	assert_true(cv_now_ns() - t0 >= 2 * 250000000ULL);
	virtio_net_get_stats(&h->d, &st);
	assert_int_equal(st.rx_packets, 3);
	assert_int_equal(st.tx_packets, 3);
	assert_int_equal(st.rx_dropped + st.tx_dropped, 0);
	assert_int_equal(h->d.ops->rate_status(&h->d, rs, 2), 2);
	assert_string_equal(rs[VIRTIO_NET_RXQ].dir, "rx");
	assert_int_equal(rs[VIRTIO_NET_TXQ].lim.ops.rate, 4);
	assert_true(rs[VIRTIO_NET_RXQ].throttled >= 1 && rs[VIRTIO_NET_TXQ].throttled >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vnet_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_mergeable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_single_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slirp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
