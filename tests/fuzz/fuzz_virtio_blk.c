/* fuzz_virtio_blk.c - libFuzzer target for the virtio-blk model.
 *
 * The input is the driver: byte 0 picks the device and the features, byte 1
 * the queue size and a config read, and the rest is copied to guest memory
 * at 0, where the rings sit at fixed places (so the avail rings, the
 * descriptors, the headers and the discard segments are all the fuzzer's):
 *   byte 0: bits 0-1 device (0 io_uring, 1 synchronous, 2 readonly,
 *           3 O_DIRECT), bit 2 EVENT_IDX, bit 3 INDIRECT_DESC, bit 4 FLUSH,
 *           bit 5 DISCARD + WRITE_ZEROES, bit 6 a second kick round,
 *           bit 7 quiesce, save and load into a fresh device
 *   byte 1: bits 0-2 log2 of the queue size (at most 16), bits 3-6 config
 *           offset to read, bit 7 reset right after the first kick, with
 *           I/O possibly still in flight
 *   queue 0: avail 0x100, used 0x140, desc 0x000; queue 1 the same + 0x200.
 * Each round kicks both queues and runs the event loop until nothing is in
 * flight (bounded); then the device is reset. ASan and UBSan catch any
 * access outside the iovecs; a request left in flight after a reset, or a
 * loop that never drains, aborts. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/virtio_blk.h"
#include "fuzz_virtio.h"

#define RAM_SIZE (64u * 1024)
#define IMG_SIZE (64u * 1024)
#define NDEV 4

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static struct guest_mem mem;
static struct evloop loop;
static struct virtio_dev devs[NDEV], spare;
static struct virtio_blk_config cfgs[NDEV];
static char path[64];

static void remove_image(void)
{
	unlink(path);
}

static void setup(void)
{
	static const uint8_t pat[512] = { 0x5a };
	struct cv_error e = { 0 };
	int fd;

	guest_mem_init_buf(&mem, ram, RAM_SIZE);
	if (evloop_init(&loop))
		abort();
	snprintf(path, sizeof(path), "/tmp/cvisor-fuzz-blk-%d.img", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	for (unsigned int off = 0; off < IMG_SIZE; off += sizeof(pat))
		if (pwrite(fd, pat, sizeof(pat), off) != sizeof(pat))
			abort();
	close(fd);
	for (unsigned int i = 0; i < NDEV; i++) {
		struct virtio_blk_config *c = &cfgs[i];

		memset(c, 0, sizeof(*c));
		strcpy(c->path, path);
		strcpy(c->serial, "fuzz");
		c->num_queues = 2;
		c->sync_io = i == 1;
		c->readonly = i == 2;
		c->direct = i == 3;
		if (virtio_blk_create(&devs[i], c, &mem, &loop, NULL, NULL, &e)) {
			fprintf(stderr, "%s\n", e.msg);
			abort();
		}
	}
	atexit(remove_image);
}

static void drive(struct virtio_dev *d, unsigned int qsize, uint64_t features)
{
	const struct vqd vqs[2] = { fuzz_vq_block(0, (uint16_t)qsize),
				    fuzz_vq_block(1, (uint16_t)qsize) };

	vqd_dev_status(d, 0);
	fuzz_virtio_start(d, features & d->device_features, vqs, 2);
}

static void run(struct virtio_dev *d)
{
	unsigned int spins = 0;

	virtio_dev_notify(d, 0);
	virtio_dev_notify(d, 1);
	do {
		if (evloop_once(&loop, spins ? 10 : 0))
			abort();
		if (++spins > 3000) /* 30 s of a request that never completes */
			abort();
	} while (virtio_blk_inflight(d));
}

static void reset(struct virtio_dev *d)
{
	vqd_dev_status(d, 0);
	if (virtio_blk_inflight(d))
		abort();
}

static void save_load(struct virtio_dev *d, const struct virtio_blk_config *c)
{
	struct state_buf b = { 0 };
	struct state_rd rd;
	struct cv_error e = { 0 };

	if (virtio_blk_quiesce(d) || virtio_dev_save(d, &b))
		abort();
	virtio_blk_resume(d);
	if (virtio_blk_create(&spare, c, &mem, &loop, NULL, NULL, &e))
		abort();
	state_rd_init(&rd, b.data, b.len);
	if (virtio_dev_load(&spare, &rd))
		abort();
	run(&spare);
	reset(&spare);
	virtio_blk_destroy(&spare);
	state_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	uint64_t features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
			    (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_MQ) |
			    (1ULL << VIRTIO_BLK_F_RO);
	unsigned int dev, qsize;
	uint8_t cfg[8];
	struct virtio_dev *d;

	if (size < 2)
		return 0;
	if (!ready) {
		setup();
		ready = true;
	}
	dev = data[0] & 3;
	d = &devs[dev];
	qsize = 1u << ((data[1] & 7) > 4 ? 4 : (data[1] & 7));
	if (data[0] & 4)
		features |= 1ULL << VIRTIO_RING_F_EVENT_IDX;
	if (data[0] & 8)
		features |= 1ULL << VIRTIO_RING_F_INDIRECT_DESC;
	if (data[0] & 16)
		features |= 1ULL << VIRTIO_BLK_F_FLUSH;
	if (data[0] & 32)
		features |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	fuzz_ram_fill(ram, RAM_SIZE, data + 2, size - 2);
	virtio_dev_config_read(d, (data[1] >> 3) & 15, cfg, sizeof(cfg));
	drive(d, qsize, features);
	if (data[1] & 128) {
		virtio_dev_notify(d, 0);
		virtio_dev_notify(d, 1);
		reset(d);
		return 0;
	}
	run(d);
	if (data[0] & 64)
		run(d);
	if ((data[0] & 128) && d->active)
		save_load(d, &cfgs[dev]);
	reset(d);
	return 0;
}
