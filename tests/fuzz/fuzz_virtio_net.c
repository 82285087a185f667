/* fuzz_virtio_net.c - libFuzzer target for the virtio-net model (virtio 1.2
 * 5.1): both queues over a fuzzed guest memory image, with a fake backend
 * that feeds receive frames and checks what the device transmits.
 *
 * The input is the driver and the network:
 *   byte 0: bit 0 MRG_RXBUF, bit 1 EVENT_IDX, bit 2 INDIRECT_DESC, bit 3 a
 *           backend with vnet headers (and GUEST_CSUM/TSO negotiated), bit 4
 *           save, load into a fresh device and save again, bit 5 a device
 *           reset after the first round, bit 6 load a save with one byte
 *           flipped (position: the input's last 3rd and 2nd bytes, xor:
 *           its last) into a fresh device, bit 7 a second round
 *   byte 1: bits 0-1 log2 of the queue size minus one (2..16), bit 2 a
 *           vnet frame's gso_type, bits 3-7 a config offset to read
 *   byte 2: bits 0-2 frames for the guest each round, bits 3-7 their size
 *           in 128-byte steps (header included for a vnet backend)
 *   the rest: guest memory from 0. rxq desc 0x000 avail 0x100 used
 *           0x140; txq desc 0x200 avail 0x300 used 0x340; data after.
 * ASan and UBSan catch any access outside the iovecs; a transmitted frame
 * out of bounds, or a save/load round trip that changes the state, aborts. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/virtio_net.h"
#include "fuzz_virtio.h"

#define RAM_SIZE (64u * 1024)

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static uint8_t frame_buf[8192];
static struct guest_mem mem;
static struct evloop loop;
static bool ready;

struct fake {
	struct net_backend be;
	unsigned int frames;
	size_t frame_len;
	bool rx_on;
};

static int fake_send(struct net_backend *b, const struct iovec *iov, unsigned int n)
{
	static uint8_t sink[VIRTIO_NET_HDR_LEN + VIRTIO_NET_FRAME_MAX];
	size_t len = 0;

	/* Touch every byte (ASan sees a bad iovec) and check the bounds the
	 * device promises (5.1.6.2). */
	for (unsigned int i = 0; i < n; i++) {
		if (!iov[i].iov_len || iov[i].iov_len > sizeof(sink) - len)
			abort();
		memcpy(sink + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	if (len < b->hdr_len + VIRTIO_NET_FRAME_MIN || len > b->hdr_len + VIRTIO_NET_FRAME_MAX)
		abort();
	return len & 1 ? -EAGAIN : 0;
}

static ssize_t fake_recv(struct net_backend *b, void *buf, size_t len)
{
	struct fake *f = (struct fake *)b;

	if (!f->frames)
		return 0;
	f->frames--;
	if (f->frame_len > len)
		return -EMSGSIZE;
	memcpy(buf, frame_buf, f->frame_len);
	return (ssize_t)f->frame_len;
}

static void fake_set_rx(struct net_backend *b, bool on)
{
	((struct fake *)b)->rx_on = on;
}

static void fake_flush(struct net_backend *b)
{
	((struct fake *)b)->frames = 0;
}

static int fake_offload(struct net_backend *b, unsigned int flags)
{
	(void)b;
	return flags > 0x1f ? -EINVAL : 0;
}

static void fake_destroy(struct net_backend *b)
{
	(void)b;
}

static const struct net_backend_ops fake_ops = {
	fake_send, fake_recv, fake_set_rx, fake_flush, fake_offload, fake_destroy,
};

static void make(struct virtio_dev *d, struct fake *f, bool vnet)
{
	struct virtio_net_config c;
	struct cv_error e = { 0 };

	if (virtio_net_parse("user", 0, &c, &e))
		abort();
	*f = (struct fake){
		.be = { .ops = &fake_ops, .hdr_len = vnet ? 12 : 0, .offloads = vnet }
	};
	if (virtio_net_create_backend(d, &c, &mem, &loop, &f->be, NULL, NULL))
		abort();
}

static void run_loop(void)
{
	for (int i = 0; i < 4; i++)
		if (evloop_once(&loop, 0))
			abort();
}

static void round_trip(struct virtio_dev *d, bool vnet)
{
	struct state_buf a = { 0 }, b = { 0 };
	struct virtio_dev d2;
	struct fake f2;
	struct state_rd r;

	if (virtio_dev_save(d, &a))
		abort();
	make(&d2, &f2, vnet);
	state_rd_init(&r, a.data, a.len);
	if (virtio_dev_load(&d2, &r))
		abort();
	if (virtio_dev_save(&d2, &b))
		abort();
	/* Identical, unless receive buffers were held (load hands them back:
	 * the rx queue's last_avail and the held count differ then). */
	if (a.len != b.len ||
	    (a.data[a.len - 2] == 0 && a.data[a.len - 1] == 0 && memcmp(a.data, b.data, a.len)))
		abort();
	run_loop();
	virtio_net_destroy(&d2);
	state_buf_free(&a);
	state_buf_free(&b);
}

/* Load a save of d with one byte flipped into a fresh device: load either
 * refuses it or leaves a device that saves and works. */
static void load_mutated(struct virtio_dev *d, size_t pos, uint8_t x, bool vnet)
{
	struct state_buf a = { 0 }, b = { 0 };
	struct virtio_dev d2;
	struct fake f2;
	struct state_rd r;

	if (virtio_dev_save(d, &a) || !a.len)
		abort();
	a.data[pos % a.len] ^= x;
	make(&d2, &f2, vnet);
	state_rd_init(&r, a.data, a.len);
	if (!virtio_dev_load(&d2, &r)) {
		if (virtio_dev_save(&d2, &b))
			abort();
		virtio_dev_notify(&d2, VIRTIO_NET_TXQ);
		virtio_dev_notify(&d2, VIRTIO_NET_RXQ);
	}
	run_loop();
	virtio_net_destroy(&d2);
	state_buf_free(&a);
	state_buf_free(&b);
}

static void start(struct virtio_dev *d, uint64_t features, uint16_t qsize)
{
	const struct vqd vqs[2] = { fuzz_vq_block(0, qsize), fuzz_vq_block(1, qsize) };

	fuzz_virtio_start(d, features, vqs, 2);
}

static void one_round(struct virtio_dev *d, struct fake *f, unsigned int nframes)
{
	virtio_dev_notify(d, VIRTIO_NET_TXQ);
	virtio_dev_notify(d, VIRTIO_NET_RXQ);
	f->frames += nframes;
	if (f->rx_on && f->be.rx_ready)
		f->be.rx_ready(f->be.opaque);
	run_loop();
	virtio_dev_notify(d, VIRTIO_NET_RXQ);
	run_loop();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_dev d;
	struct fake f;
	uint64_t features =
		(1ULL << 32) | (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS);
	uint8_t cfg[4];
	bool vnet;

	if (size < 3)
		return 0;
	if (!ready) {
		guest_mem_init_buf(&mem, ram, RAM_SIZE);
		if (evloop_init(&loop))
			abort();
		for (size_t i = 0; i < sizeof(frame_buf); i++)
			frame_buf[i] = (uint8_t)(i * 13);
		ready = true;
	}
	vnet = data[0] & 8;
	if (data[0] & 1)
		features |= 1ULL << VIRTIO_NET_F_MRG_RXBUF;
	if (data[0] & 2)
		features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (data[0] & 4)
		features |= 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	if (vnet)
		features |= (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |
			    (1ULL << VIRTIO_NET_F_GUEST_TSO4) | (1ULL << VIRTIO_NET_F_HOST_TSO4);
	/* A vnet frame's header is the fuzzer's too (flags, gso_type). */
	frame_buf[0] = data[2];
	frame_buf[1] = data[1] & 4 ? 1 : 0;
	fuzz_ram_fill(ram, RAM_SIZE, data + 3, size - 3);

	make(&d, &f, vnet);
	f.frame_len = 14 + (size_t)(data[2] >> 3) * 128 + (data[2] & 7) * 3;
	start(&d, features, (uint16_t)(2u << (data[1] & 3)));
	virtio_dev_config_read(&d, data[1] >> 3, cfg, sizeof(cfg));
	one_round(&d, &f, data[2] & 7);
	if (data[0] & 0x20) {
		vqd_dev_status(&d, 0);
		run_loop();
		start(&d, features, (uint16_t)(2u << (data[1] & 3)));
	}
	if (data[0] & 0x80)
		one_round(&d, &f, data[2] & 7);
	if (data[0] & 0x10)
		round_trip(&d, vnet);
	if ((data[0] & 0x40) && size > 6)
		load_mutated(&d, (size_t)data[size - 3] << 8 | data[size - 2], data[size - 1],
			     vnet);
	virtio_net_destroy(&d);
	return 0;
}
