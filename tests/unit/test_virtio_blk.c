/* test_virtio_blk.c - the virtio-blk model driven as a guest driver would
 * (virtio 1.2 sections 3.1 and 5.2), over guest memory in a host buffer
 * and a temporary raw image, running the event loop until completions
 * arrive; then hostile requests, reset with I/O in flight, save and load. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/virtio/blk_priv.h"
#include "cvisor/evloop.h"
#include "cvisor/virtio_blk.h"
#include "vq_driver.h"
#include "with_err.h"

/* Written out from the spec, independently of the model. */
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WZ = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };
#define FEAT(b) (1ULL << (b))
#define BLK_FEATURES \
	(FEAT(2) | FEAT(6) | FEAT(9) | FEAT(12) | FEAT(13) | FEAT(14) | FEAT(29) | FEAT(32))

#define RAM_SIZE (8u << 20)
#define QSIZE 256
#define NQ 2
#define RING(q) (0x10000u * ((q) + 1)) /* desc; avail +0x1000, used +0x2000 */
#define HDR(k) (0x80000u + 32u * (k))  /* header, status at +16 */
#define DATA 0x100000u
#define IMG_SIZE (1u << 20)
#define IMG_SECTORS (IMG_SIZE / 512)

struct t {
	uint8_t *ram;
	struct guest_mem mem;
	struct evloop loop;
	struct virtio_dev dev;
	char path[64];
	struct vqd vq[NQ]; /* the driver's side of each queue */
	unsigned int irqs;
	_Atomic uint64_t rd, wr;
};

static void put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void on_signal(struct virtio_dev *d, uint16_t vector, uint8_t isr)
{
	(void)vector;
	(void)isr;
	((struct t *)d->transport.ctx)->irqs++;
}

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + off / 512);
}

static void make_image(char *path, size_t size)
{
	int fd;
	uint8_t *buf = malloc(size);

	strcpy(path, "/tmp/cvisor-blk-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (size_t i = 0; i < size; i++)
		buf[i] = pattern(i);
	assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
	close(fd);
	free(buf);
}

/* Negotiate features and bring up the queues as a driver does (3.1.1),
 * on fresh rings. */
static void driver_init(struct t *t, uint64_t features, unsigned int nq)
{
	struct virtio_dev *d = &t->dev;

	vqd_dev_status(d, 0);
	memset(t->ram, 0, DATA);
	for (unsigned int q = 0; q < nq; q++)
		vqd_init(&t->vq[q], t->ram, QSIZE, RING(q), RING(q) + 0x1000, RING(q) + 0x2000);
	assert_int_equal(vqd_dev_start(d, features & d->device_features, t->vq, nq), 0);
	assert_int_equal(evloop_once(&t->loop, 0), 0);
}

static void dev_open(struct t *t, struct virtio_blk_config *c)
{
	char err[256];

	assert_int_equal(evloop_init(&t->loop), 0);
	assert_int_equal(WITH_ERR(err, virtio_blk_create(&t->dev, c, &t->mem, &t->loop, &t->rd,
							 &t->wr, &e_)),
			 0);
	t->dev.transport.signal = on_signal;
	t->dev.transport.ctx = t;
}

static struct t *setup_with(const char *opts, uint64_t features, bool sync)
{
	struct t *t = calloc(1, sizeof(*t));
	struct virtio_blk_config c;
	char spec[128], err[256];

	t->ram = aligned_alloc(4096, RAM_SIZE); /* O_DIRECT wants aligned buffers */
	memset(t->ram, 0, RAM_SIZE);
	guest_mem_init_buf(&t->mem, t->ram, RAM_SIZE);
	make_image(t->path, IMG_SIZE);
	snprintf(spec, sizeof(spec), "%s%s", t->path, opts);
	assert_int_equal(WITH_ERR(err, virtio_blk_parse(spec, &c, &e_)), 0);
	if (!c.num_queues)
		c.num_queues = NQ;
	c.sync_io = sync;
	dev_open(t, &c);
	driver_init(t, features, NQ);
	return t;
}

static struct t *setup(const char *opts)
{
	return setup_with(opts, BLK_FEATURES, false);
}

static void teardown(struct t *t)
{
	virtio_blk_destroy(&t->dev);
	evloop_destroy(&t->loop);
	unlink(t->path);
	free(t->ram);
	free(t);
}

/* The next used element of queue q, running the loop until it arrives. */
static uint32_t wait_used(struct t *t, unsigned int q)
{
	uint32_t len;

	for (int i = 0; i < 500 && vqd_used_idx(&t->vq[q]) == t->vq[q].used_seen; i++)
		assert_int_equal(evloop_once(&t->loop, 10), 0);
	assert_int_equal(vqd_used(&t->vq[q], NULL, &len), 1);
	return len;
}

static void header(struct t *t, unsigned int k, uint32_t type, uint64_t sector)
{
	put(t->ram + HDR(k), type, 4);
	put(t->ram + HDR(k) + 4, 0, 4);
	put(t->ram + HDR(k) + 8, sector, 8);
	t->ram[HDR(k) + 16] = 0xee;
}

/* header, one data buffer, status: returns the status, *used the length. */
static uint8_t req(struct t *t, unsigned int q, uint32_t type, uint64_t sector, uint32_t len,
		   uint32_t *used)
{
	bool in = type == T_IN || type == T_GET_ID;
	struct vqd_buf s[3] = { { HDR(0), 16, false },
				{ DATA, len, in },
				{ HDR(0) + 16, 1, true } };
	uint32_t u;

	header(t, 0, type, sector);
	if (len) {
		vqd_add(&t->vq[q], s, 3);
	} else {
		s[1] = s[2];
		vqd_add(&t->vq[q], s, 2);
	}
	virtio_dev_notify(&t->dev, q);
	u = wait_used(t, q);
	if (used)
		*used = u;
	return t->ram[HDR(0) + 16];
}

/* n reads of len bytes from sector k * step, queued on q (or on both
 * queues in turn when q < 0), into buffers stride apart (wrapping). */
static void queue_reads(struct t *t, int q, unsigned int n, uint32_t len, uint32_t stride,
			uint64_t step)
{
	for (unsigned int k = 0; k < n; k++) {
		struct vqd_buf s[3] = { { HDR(k), 16, false },
					{ DATA + (k * stride) % (RAM_SIZE - DATA - len), len,
					  true },
					{ HDR(k) + 16, 1, true } };

		header(t, k, T_IN, step * k);
		vqd_add(&t->vq[q < 0 ? k % NQ : (unsigned int)q], s, 3);
	}
}

static void dwz(struct t *t, unsigned int k, uint64_t sector, uint32_t n, uint32_t flags)
{
	uint8_t *p = t->ram + DATA + 16 * k;

	put(p, sector, 8);
	put(p + 8, n, 4);
	put(p + 12, flags, 4);
}

static void test_parse(void **state)
{
	struct virtio_blk_config c;
	char err[256];
	static const char *const bad[] = { "",
					   ",readonly",
					   "a.img,",
					   "a.img,,readonly",
					   "a.img,serial=",
					   "a.img,cache=none",
					   "a.img,serial=123456789012345678901",
					   "a.img,serial=a b",
					   "a.img,queues=0",
					   "a.img,queues=17",
					   "a.img,queues=x",
					   "a.img,readonly=1" };

	(void)state;
	assert_int_equal(WITH_ERR(err, virtio_blk_parse("disk.img", &c, &e_)), 0);
	assert_string_equal(c.path, "disk.img");
	assert_false(c.readonly);
	assert_int_equal(c.num_queues, 0);
	assert_int_equal(c.serial[0], 0);
	assert_int_equal(
		WITH_ERR(err,
			 virtio_blk_parse("/x/d.img,readonly,serial=12345678901234567890,queues=4,"
					  "direct",
					  &c, &e_)),
		0);
	assert_string_equal(c.path, "/x/d.img");
	assert_true(c.readonly && c.direct);
	assert_string_equal(c.serial, "12345678901234567890");
	assert_int_equal(c.num_queues, 4);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_int_equal(WITH_ERR(err, virtio_blk_parse(bad[i], &c, &e_)), -EINVAL);
		assert_non_null(strstr(err, "--disk"));
	}
	/* The message names the bad part. */
	assert_int_equal(WITH_ERR(err, virtio_blk_parse("a.img,cache=none", &c, &e_)), -EINVAL);
	assert_non_null(strstr(err, "'cache=none'"));
	assert_int_equal(
		WITH_ERR(err, virtio_blk_parse("a.img,serial=123456789012345678901", &c, &e_)),
		-EINVAL);
	assert_non_null(strstr(err, "20"));
}

static void test_create_errors(void **state)
{
	struct virtio_blk_config c = { .path = "/nonexistent/cvisor.img" };
	struct guest_mem mem = { 0 };
	struct evloop loop;
	struct virtio_dev d;
	char err[256] = "";

	(void)state;
	assert_int_equal(evloop_init(&loop), 0);
	assert_int_equal(WITH_ERR(err, virtio_blk_create(&d, &c, &mem, &loop, NULL, NULL, &e_)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/cvisor.img: no such file"));
	virtio_blk_destroy(&d); /* safe after a failed create */
	strcpy(c.path, "/tmp");
	assert_int_not_equal(WITH_ERR(err, virtio_blk_create(&d, &c, &mem, &loop, NULL, NULL, &e_)),
			     0);
	assert_non_null(strstr(err, "/tmp: is a directory"));
	evloop_destroy(&loop);
}

static void test_config(void **state)
{
	struct t *t = setup("");
	uint8_t c[VIRTIO_BLK_CFG_SIZE];

	(void)state;
	virtio_dev_config_read(&t->dev, 0, c, sizeof(c));
	assert_int_equal(get(c + 0, 8), IMG_SECTORS);
	assert_int_equal(get(c + 20, 4), 512);
	assert_true(get(c + 12, 4) >= 128); /* seg_max */
	assert_int_equal(get(c + 34, 2), NQ);
	assert_true(get(c + 36, 4) && get(c + 40, 4) && get(c + 48, 4) && get(c + 52, 4));
	assert_int_equal(c[56], 1);
	assert_false(t->dev.device_features & FEAT(5)); /* not RO */
	assert_true(t->dev.device_features & FEAT(13));
	teardown(t);
	t = setup(",readonly");
	assert_true(t->dev.device_features & FEAT(5));
	assert_false(t->dev.device_features & (FEAT(13) | FEAT(14)));
	teardown(t);
}

static void test_read_write_flush(void **state)
{
	struct t *t = setup("");
	uint8_t buf[4096];
	uint32_t used;
	int fd;

	(void)state;
	assert_int_equal(req(t, 0, T_IN, 3, 4096, &used), S_OK);
	assert_int_equal(used, 4097);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(t->ram[DATA + i], pattern(3 * 512 + i));
	for (int i = 0; i < 4096; i++)
		t->ram[DATA + i] = (uint8_t)(i ^ 0x5a);
	assert_int_equal(req(t, 1, T_OUT, 100, 4096, &used), S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(req(t, 0, T_FLUSH, 0, 0, NULL), S_OK);
	/* 5.2.6: what was acknowledged is in the image. */
	fd = open(t->path, O_RDONLY);
	assert_int_equal(pread(fd, buf, sizeof(buf), 100 * 512), (ssize_t)sizeof(buf));
	close(fd);
	assert_memory_equal(buf, t->ram + DATA, sizeof(buf));
	assert_int_equal(atomic_load(&t->rd), 4096);
	assert_int_equal(atomic_load(&t->wr), 4096);
	assert_true(t->irqs > 0);
	/* The last sector is readable; one past it is not (5.2.6.2). */
	assert_int_equal(req(t, 0, T_IN, IMG_SECTORS - 1, 512, NULL), S_OK);
	assert_int_equal(req(t, 0, T_IN, IMG_SECTORS - 1, 1024, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_IN, IMG_SECTORS, 512, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_OUT, IMG_SECTORS + 5, 512, NULL), S_IOERR);
	/* sector * 512 and sector + count must not wrap. */
	assert_int_equal(req(t, 0, T_IN, UINT64_MAX, 512, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_IN, 1ULL << 55, 512, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_OUT, UINT64_MAX - 1, 1024, NULL), S_IOERR);
	/* Lengths are whole sectors. */
	assert_int_equal(req(t, 0, T_IN, 0, 100, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_OUT, 0, 513, NULL), S_IOERR);
	teardown(t);
}

static void test_get_id_and_unsupp(void **state)
{
	struct t *t = setup(",serial=cvisor-disk-1");
	uint32_t used;

	(void)state;
	memset(t->ram + DATA, 0xff, 64);
	assert_int_equal(req(t, 0, T_GET_ID, 0, 20, &used), S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(t->ram + DATA, "cvisor-disk-1\0\0\0\0\0\0\0", 20);
	assert_int_equal(t->ram[DATA + 20], 0xff);
	/* A shorter buffer gets what fits. */
	assert_int_equal(req(t, 0, T_GET_ID, 0, 4, &used), S_OK);
	assert_int_equal(used, 5);
	assert_int_equal(req(t, 0, 99, 0, 512, NULL), S_UNSUPP);
	assert_int_equal(req(t, 0, 10 /* GET_LIFETIME */, 0, 8, NULL), S_UNSUPP);
	assert_int_equal(req(t, 0, 14 /* SECURE_ERASE */, 0, 16, NULL), S_UNSUPP);
	teardown(t);
}

static bool zeros(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void test_discard_write_zeroes(void **state)
{
	struct t *t = setup("");

	(void)state;
	dwz(t, 0, 8, 16, 0);
	assert_int_equal(req(t, 0, T_DISCARD, 0, 16, NULL), S_OK);
	assert_int_equal(req(t, 0, T_IN, 8, 16 * 512, NULL), S_OK);
	assert_true(zeros(t->ram + DATA, 16 * 512));
	/* Two segments, with and without unmap. */
	dwz(t, 0, 40, 3, 0);
	dwz(t, 1, 60, 9, 1);
	assert_int_equal(req(t, 1, T_WZ, 0, 32, NULL), S_OK);
	assert_int_equal(req(t, 0, T_IN, 39, 31 * 512, NULL), S_OK);
	assert_int_equal(t->ram[DATA], pattern(39 * 512));
	assert_true(zeros(t->ram + DATA + 512, 3 * 512));
	assert_int_equal(t->ram[DATA + 4 * 512 + 1], pattern(43 * 512 + 1));
	assert_true(zeros(t->ram + DATA + 21 * 512, 9 * 512));
	assert_int_equal(t->ram[DATA + 30 * 512 + 2], pattern(69 * 512 + 2));
	/* 5.2.6.2: unmap on a discard, or an unknown flag: UNSUPP. */
	dwz(t, 0, 0, 1, 1);
	assert_int_equal(req(t, 0, T_DISCARD, 0, 16, NULL), S_UNSUPP);
	dwz(t, 0, 0, 1, 2);
	assert_int_equal(req(t, 0, T_WZ, 0, 16, NULL), S_UNSUPP);
	/* Bounds, segment counts and sizes. */
	dwz(t, 0, IMG_SECTORS - 1, 2, 0);
	assert_int_equal(req(t, 0, T_WZ, 0, 16, NULL), S_IOERR);
	dwz(t, 0, UINT64_MAX, 1, 0);
	assert_int_equal(req(t, 0, T_DISCARD, 0, 16, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_DISCARD, 0, 0, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_DISCARD, 0, 24, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_DISCARD, 0, 16 * (VIRTIO_BLK_MAX_DWZ_SEG + 1), NULL), S_IOERR);
	teardown(t);
	/* Not negotiated: UNSUPP. */
	t = setup_with("", BLK_FEATURES & ~(FEAT(13) | FEAT(14)), false);
	dwz(t, 0, 0, 1, 0);
	assert_int_equal(req(t, 0, T_DISCARD, 0, 16, NULL), S_UNSUPP);
	assert_int_equal(req(t, 0, T_WZ, 0, 16, NULL), S_UNSUPP);
	teardown(t);
}

static void test_readonly(void **state)
{
	struct t *t = setup(",readonly");
	uint8_t buf[512];
	int fd;

	(void)state;
	memset(t->ram + DATA, 0xab, 512);
	assert_int_equal(req(t, 0, T_OUT, 0, 512, NULL), S_IOERR);
	dwz(t, 0, 0, 1, 0);
	assert_int_equal(req(t, 0, T_WZ, 0, 16, NULL), S_UNSUPP); /* not offered */
	assert_int_equal(req(t, 0, T_IN, 0, 512, NULL), S_OK);
	assert_int_equal(req(t, 0, T_FLUSH, 0, 0, NULL), S_OK);
	fd = open(t->path, O_RDONLY);
	assert_int_equal(pread(fd, buf, 512, 0), 512);
	close(fd);
	for (int i = 0; i < 512; i++)
		assert_int_equal(buf[i], pattern(i));
	teardown(t);
}

/* The fds this process holds on path (the device's, once created). */
static unsigned int image_fds(const char *path, int *fds, unsigned int max)
{
	char link[64], target[256];
	unsigned int n = 0;

	for (int fd = 3; fd < 1024 && n < max; fd++) {
		ssize_t len;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = 0;
		if (!strcmp(target, path))
			fds[n++] = fd;
	}
	return n;
}

/* A readonly disk's image is opened read-only, with io_uring and without:
 * the device's check is not the only thing between the guest and the file. */
static void test_readonly_fd(void **state)
{
	(void)state;
	for (int sync = 0; sync < 2; sync++) {
		struct t *t = setup_with(",readonly", BLK_FEATURES, sync);
		int fds[4];
		unsigned int n = image_fds(t->path, fds, 4);

		assert_true(n >= 1);
		for (unsigned int i = 0; i < n; i++)
			assert_int_equal(fcntl(fds[i], F_GETFL) & O_ACCMODE, O_RDONLY);
		teardown(t);
	}
}

/* And the device refuses writes itself: with its fd swapped for a writable
 * one, a write still answers IOERR and the file keeps its bytes. */
static void test_readonly_over_writable_fd(void **state)
{
	struct t *t = setup_with(",readonly", BLK_FEATURES, true);
	int fds[4], rw = open(t->path, O_RDWR | O_CLOEXEC);
	unsigned int n = image_fds(t->path, fds, 4);
	uint8_t buf[512];

	(void)state;
	assert_true(rw >= 0 && n >= 1);
	for (unsigned int i = 0; i < n; i++)
		if (fds[i] != rw)
			assert_int_equal(dup3(rw, fds[i], O_CLOEXEC), fds[i]);
	memset(t->ram + DATA, 0xab, 512);
	assert_int_equal(req(t, 0, T_OUT, 0, 512, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_OUT, IMG_SECTORS - 1, 512, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_FLUSH, 0, 0, NULL), S_OK);
	assert_int_equal(pread(rw, buf, 512, 0), 512);
	for (int i = 0; i < 512; i++)
		assert_int_equal(buf[i], pattern(i));
	assert_int_equal(pread(rw, buf, 512, IMG_SIZE - 512), 512);
	for (int i = 0; i < 512; i++)
		assert_int_equal(buf[i], pattern(IMG_SIZE - 512 + i));
	close(rw);
	teardown(t);
}

static void test_malformed(void **state)
{
	struct t *t = setup("");
	struct vqd_buf split[4] = { { HDR(0), 4, false },
				    { HDR(0) + 4, 12, false },
				    { DATA, 1024, true },
				    { DATA + 4096, 512 + 1, true } };
	struct vqd_buf shorthdr[2] = { { HDR(0), 8, false }, { HDR(0) + 16, 1, true } };
	struct vqd_buf nostatus[2] = { { HDR(0), 16, false }, { DATA, 512, false } };

	(void)state;
	/* The header split across descriptors, the status byte sharing the
	 * last data buffer: data 1024 + 511 + 1 status -> 3 sectors. */
	header(t, 0, T_IN, 2);
	vqd_add(&t->vq[0], split, 4);
	virtio_dev_notify(&t->dev, 0);
	assert_int_equal(wait_used(t, 0), 1536 + 1);
	assert_int_equal(t->ram[DATA + 4096 + 512], S_OK);
	assert_int_equal(t->ram[DATA + 1023], pattern(2 * 512 + 1023));
	assert_int_equal(t->ram[DATA + 4096 + 511], pattern(2 * 512 + 1535));
	/* A header shorter than 16 bytes: IOERR in the status byte. */
	header(t, 0, T_IN, 0);
	vqd_add(&t->vq[0], shorthdr, 2);
	virtio_dev_notify(&t->dev, 0);
	wait_used(t, 0);
	assert_int_equal(t->ram[HDR(0) + 16], S_IOERR);
	/* No device-writable byte for the status: the device needs a reset. */
	header(t, 0, T_OUT, 0);
	vqd_add(&t->vq[0], nostatus, 2);
	virtio_dev_notify(&t->dev, 0);
	assert_true(t->dev.status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(virtio_blk_inflight(&t->dev), 0);
	/* A reset brings it back. */
	driver_init(t, BLK_FEATURES, NQ);
	assert_int_equal(req(t, 0, T_IN, 0, 512, NULL), S_OK);
	teardown(t);
}

/* More requests than slots, on both queues at once. */
static void test_many_and_queues(void **state)
{
	struct t *t = setup("");
	const unsigned int n = 160;

	(void)state;
	queue_reads(t, -1, n, 4096, 4096, 8);
	virtio_dev_notify(&t->dev, 0);
	virtio_dev_notify(&t->dev, 1);
	for (unsigned int k = 0; k < n; k++)
		assert_int_equal(wait_used(t, k % NQ), 4097);
	for (unsigned int k = 0; k < n; k++) {
		assert_int_equal(t->ram[HDR(k) + 16], S_OK);
		assert_int_equal(t->ram[DATA + 4096 * k + 77], pattern(4096ULL * k + 77));
	}
	assert_int_equal(virtio_blk_inflight(&t->dev), 0);
	teardown(t);
}

/* Both paths must agree: synchronous fallback and write-through. */
/* The disk's io_uring carries reads, writes, fsync and fallocate only: an
 * openat queued on it is refused (-EACCES), and so is a registration once
 * the ring runs. Requests seccomp cannot see cannot open files. */
static void test_ring_restricted(void **state)
{
	struct t *t = setup("");
	struct blk *b = t->dev.priv;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int fd = 0;

	(void)state;
	if (!b->have_ring) {
		teardown(t);
		skip(); /* no io_uring on this host */
	}
	sqe = io_uring_get_sqe(&b->ring);
	assert_non_null(sqe);
	io_uring_prep_openat(sqe, AT_FDCWD, "/etc/hostname", O_RDONLY, 0);
	io_uring_sqe_set_data64(sqe, 0x5ec);
	assert_int_equal(io_uring_submit_and_wait(&b->ring, 1), 1);
	assert_int_equal(io_uring_peek_cqe(&b->ring, &cqe), 0);
	assert_int_equal(cqe->user_data, 0x5ec);
	assert_int_equal(cqe->res, -EACCES);
	io_uring_cqe_seen(&b->ring, cqe);
	assert_int_equal(io_uring_register_files_update(&b->ring, 0, &fd, 1), -EACCES);
	/* and the disk still works */
	memset(t->ram + DATA, 0x5a, 512);
	assert_int_equal(req(t, 0, T_OUT, 3, 512, NULL), S_OK);
	memset(t->ram + DATA, 0, 512);
	assert_int_equal(req(t, 0, T_IN, 3, 512, NULL), S_OK);
	assert_int_equal(t->ram[DATA + 511], 0x5a);
	teardown(t);
}

static void test_sync_and_writethrough(void **state)
{
	struct t *t = setup_with("", BLK_FEATURES, true);
	uint8_t buf[1024];
	int fd;

	(void)state;
	memset(t->ram + DATA, 0x3c, 1024);
	assert_int_equal(req(t, 0, T_OUT, 10, 1024, NULL), S_OK);
	dwz(t, 0, 11, 1, 1);
	assert_int_equal(req(t, 1, T_WZ, 0, 16, NULL), S_OK);
	assert_int_equal(req(t, 0, T_IN, 10, 1024, NULL), S_OK);
	assert_int_equal(t->ram[DATA], 0x3c);
	assert_true(zeros(t->ram + DATA + 512, 512));
	teardown(t);
	/* FLUSH not negotiated: every write is stable when acknowledged. */
	t = setup_with(",direct", BLK_FEATURES & ~FEAT(9), false);
	memset(t->ram + DATA, 0x7e, 1024);
	assert_int_equal(req(t, 0, T_OUT, 20, 1024, NULL), S_OK);
	fd = open(t->path, O_RDONLY);
	assert_int_equal(pread(fd, buf, 1024, 20 * 512), 1024);
	close(fd);
	assert_memory_equal(buf, t->ram + DATA, 1024);
	/* A buffer O_DIRECT refuses (not block aligned) still works. */
	{
		struct vqd_buf s[3] = { { HDR(1), 16, false },
					{ DATA + 8192 + 100, 1024, true },
					{ HDR(1) + 16, 1, true } };

		header(t, 1, T_IN, 20);
		vqd_add(&t->vq[0], s, 3);
		virtio_dev_notify(&t->dev, 0);
		assert_int_equal(wait_used(t, 0), 1025);
		assert_int_equal(t->ram[HDR(1) + 16], S_OK);
		assert_memory_equal(buf, t->ram + DATA + 8192 + 100, 1024);
	}
	teardown(t);
}

/* The image shrank under the device: a read past the end fails, no hang. */
static void test_truncated_image(void **state)
{
	struct t *t = setup("");

	(void)state;
	assert_int_equal(truncate(t->path, 4096), 0);
	assert_int_equal(req(t, 0, T_IN, 4, 8192, NULL), S_IOERR);
	assert_int_equal(req(t, 0, T_IN, 0, 4096, NULL), S_OK);
	teardown(t);
}

/* Reset with I/O in flight (2.4.1): when set_status(0) returns nothing is
 * in flight and nothing more is written to the old rings. */
static void test_reset_inflight(void **state)
{
	struct t *t = setup(",direct");
	uint16_t idx;

	(void)state;
	queue_reads(t, 0, 32, 0x40000, 0x40000, 0);
	virtio_dev_notify(&t->dev, 0);
	print_message("in flight at reset: %u\n", virtio_blk_inflight(&t->dev));
	idx = vqd_used_idx(&t->vq[0]);
	pthread_mutex_lock(&t->dev.lock);
	virtio_dev_set_status(&t->dev, 0);
	pthread_mutex_unlock(&t->dev.lock);
	assert_int_equal(virtio_blk_inflight(&t->dev), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(evloop_once(&t->loop, 5), 0);
	assert_int_equal(vqd_used_idx(&t->vq[0]), idx);
	driver_init(t, BLK_FEATURES, NQ);
	assert_int_equal(req(t, 0, T_IN, 1, 512, NULL), S_OK);
	assert_int_equal(t->ram[DATA + 5], pattern(512 + 5));
	teardown(t);
}

static void test_save_load(void **state)
{
	struct t *t = setup(",serial=snap");
	struct t *u = calloc(1, sizeof(*u)), *w = calloc(1, sizeof(*w));
	struct virtio_blk_config c = { 0 };
	struct state_buf b = { 0 };
	struct state_rd rd;
	uint8_t c1[VIRTIO_BLK_CFG_SIZE], c2[VIRTIO_BLK_CFG_SIZE];

	(void)state;
	memset(t->ram + DATA, 0x42, 512);
	assert_int_equal(req(t, 1, T_OUT, 7, 512, NULL), S_OK);
	assert_int_equal(virtio_blk_quiesce(&t->dev), 0);
	assert_int_equal(virtio_dev_save(&t->dev, &b), 0);
	virtio_blk_resume(&t->dev);
	/* A fresh device over the same memory and image. */
	*u = *t;
	strcpy(c.path, t->path);
	strcpy(c.serial, "snap");
	c.num_queues = NQ;
	dev_open(u, &c);
	state_rd_init(&rd, b.data, b.len);
	assert_int_equal(virtio_dev_load(&u->dev, &rd), 0);
	assert_true(u->dev.active);
	assert_int_equal(u->dev.driver_features, t->dev.driver_features);
	virtio_dev_config_read(&t->dev, 0, c1, sizeof(c1));
	virtio_dev_config_read(&u->dev, 0, c2, sizeof(c2));
	assert_memory_equal(c1, c2, sizeof(c1));
	/* It carries on from the saved ring indices. */
	memset(u->ram + DATA, 0, 512);
	assert_int_equal(req(u, 1, T_IN, 7, 512, NULL), S_OK);
	assert_int_equal(u->ram[DATA + 100], 0x42);
	/* A different serial or mode, or a truncated state, is refused. */
	w->ram = t->ram;
	w->mem = t->mem;
	for (int i = 0; i < 3; i++) {
		struct virtio_blk_config bad = c;

		if (i == 0)
			strcpy(bad.serial, "other");
		bad.readonly = i == 1;
		dev_open(w, &bad);
		state_rd_init(&rd, b.data, i == 2 ? b.len - 3 : b.len);
		assert_int_equal(virtio_dev_load(&w->dev, &rd), -EINVAL);
		virtio_blk_destroy(&w->dev);
		evloop_destroy(&w->loop);
	}
	virtio_blk_destroy(&u->dev);
	evloop_destroy(&u->loop);
	state_buf_free(&b);
	free(u);
	free(w);
	teardown(t);
}

/* Saving with requests in flight is refused; quiesce completes them. */
static void test_quiesce(void **state)
{
	struct t *t = setup(",direct");
	struct state_buf b = { 0 };

	(void)state;
	queue_reads(t, 0, 16, 0x40000, 0x40000, 0);
	virtio_dev_notify(&t->dev, 0);
	if (virtio_blk_inflight(&t->dev))
		assert_int_equal(virtio_dev_save(&t->dev, &b), -EBUSY);
	state_buf_free(&b);
	memset(&b, 0, sizeof(b));
	assert_int_equal(virtio_blk_quiesce(&t->dev), 0);
	assert_int_equal(virtio_blk_inflight(&t->dev), 0);
	assert_int_equal(vqd_used_idx(&t->vq[0]), 16);
	assert_int_equal(virtio_dev_save(&t->dev, &b), 0);
	state_buf_free(&b);
	virtio_blk_resume(&t->dev);
	t->vq[0].used_seen = 16;
	assert_int_equal(req(t, 0, T_IN, 0, 512, NULL), S_OK);
	teardown(t);
}

/* A limited disk delays requests and never fails them: over the limit a
 * request stays on the ring, not in the device (so a snapshot can be taken
 * meanwhile), and the timer on the loop brings it in when its tokens are
 * there. Only lower bounds on time: a limit cannot be beaten, however
 * fast the host. */
static void test_rate_limit(void **state)
{
	struct t *t = setup(",iops=4,iops-burst=1"); /* one at once, then 250 ms apart */
	struct rate_status st;
	struct state_buf b = { 0 };
	struct cv_error e = { 0 };
	char *spec;
	uint64_t t0 = cv_now_ns();

	(void)state;
	queue_reads(t, 0, 3, 4096, 4096, 8);
	virtio_dev_notify(&t->dev, 0);
	/* The first was taken; the others wait in the ring, which the device
	 * stepped back over. */
	assert_int_equal(t->dev.vqs[0].last_avail, 1);
	assert_int_equal(virtio_blk_quiesce(&t->dev), 0);
	assert_int_equal(virtio_blk_inflight(&t->dev), 0);
	assert_int_equal(virtio_dev_save(&t->dev, &b), 0);
	state_buf_free(&b);
	virtio_blk_resume(&t->dev);
	for (unsigned int k = 0; k < 3; k++)
		assert_int_equal(wait_used(t, 0), 4097);
	assert_true(cv_now_ns() - t0 >= 2 * 250000000ULL);
	for (unsigned int k = 0; k < 3; k++)
		assert_int_equal(t->ram[HDR(k) + 16], S_OK);
	assert_int_equal(t->dev.ops->rate_status(&t->dev, &st, 1), 1);
	assert_int_equal(st.lim.ops.rate, 4);
	assert_int_equal(st.lim.ops.burst, 1);
	assert_true(st.throttled >= 1);
	/* Lifted live: the spec follows, the queue runs free. */
	assert_int_equal(t->dev.ops->set_limits(&t->dev, "disk0", "/img,ro,iops=4,iops-burst=1",
						"iops=off,bw=1G", &spec, &e),
			 0);
	assert_string_equal(spec, "/img,ro,bw=1G");
	free(spec);
	assert_int_equal(t->dev.ops->set_limits(&t->dev, "disk0", "/img", "iops=0", &spec, &e),
			 -EINVAL);
	assert_null(spec);
	assert_non_null(strstr(e.msg, "disk0: iops=0: must be"));
	queue_reads(t, 0, 8, 4096, 4096, 8);
	virtio_dev_notify(&t->dev, 0);
	for (unsigned int k = 0; k < 8; k++)
		assert_int_equal(wait_used(t, 0), 4097);
	teardown(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_create_errors),
		cmocka_unit_test(test_ring_restricted),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_read_write_flush),
		cmocka_unit_test(test_get_id_and_unsupp),
		cmocka_unit_test(test_discard_write_zeroes),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_readonly_fd),
		cmocka_unit_test(test_readonly_over_writable_fd),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_many_and_queues),
		cmocka_unit_test(test_sync_and_writethrough),
		cmocka_unit_test(test_truncated_image),
		cmocka_unit_test(test_reset_inflight),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_quiesce),
		cmocka_unit_test(test_rate_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
