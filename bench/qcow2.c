/* qcow2.c - virtio-blk on a qcow2 image against the same device on a raw
 * image, in the same run (issue 14 item 4).
 *
 * Both sides are the real model (src/virtio/blk*.c over src/block/ for
 * qcow2) driven over synthetic guest memory without KVM, as bench/blk.c
 * does: this program plays the guest driver, QD requests in flight on one
 * queue. Rows: sequential and random 4 KiB reads of allocated data (the
 * page cache and the L2 cache warm: one pass first), 128 KiB sequential
 * reads, 4 KiB writes over allocated data, and 4 KiB writes that allocate
 * (a fresh image each run: raw a sparse file, qcow2 an empty image from
 * qemu-img, 64 KiB clusters). Each figure is the median of REPS runs,
 * raw and qcow2 alternating; random offsets are a fixed permutation.
 *
 * Usage: qcow2 DIR MIB (images are made in DIR, qemu-img on the PATH). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cvisor/virtio_blk.h"
#include "vq_driver.h"

#define REPS 3
#define RAM_SIZE (8u << 20)
#define QSIZE 256
#define QD 16
#define HDRS 0x4000u
#define DATA 0x10000u

struct drv {
	uint8_t *ram;
	struct guest_mem mem;
	struct evloop loop;
	struct virtio_dev dev;
	struct vqd q;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench/qcow2: %s\n", what);
	exit(1);
}

static void shell(const char *fmt, const char *a, const char *b)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	if (system(cmd))
		die(cmd);
}

static void drv_open(struct drv *v, const char *path)
{
	struct virtio_blk_config c = { .num_queues = 1 };
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		     (1ULL << VIRTIO_BLK_F_FLUSH);
	struct cv_error e = { 0 };

	memset(v, 0, sizeof(*v));
	v->ram = aligned_alloc(4096, RAM_SIZE);
	memset(v->ram, 0, RAM_SIZE);
	memset(v->ram + DATA, 0x33, RAM_SIZE - DATA); /* what writes write */
	guest_mem_init_buf(&v->mem, v->ram, RAM_SIZE);
	vqd_init(&v->q, v->ram, QSIZE, 0x1000, 0x2000, 0x3000);
	snprintf(c.path, sizeof(c.path), "%s", path);
	if (evloop_init(&v->loop) ||
	    virtio_blk_create(&v->dev, &c, &v->mem, &v->loop, NULL, NULL, &e))
		die(e.msg);
	if (vqd_dev_start(&v->dev, f, &v->q, 1) || evloop_once(&v->loop, 0))
		die("the device did not activate");
}

static void drv_close(struct drv *v)
{
	virtio_blk_destroy(&v->dev);
	evloop_destroy(&v->loop);
	free(v->ram);
}

/* Slot k uses descriptors 3k..3k+2: header, data, status. */
static void issue(struct drv *v, unsigned int k, uint32_t type, size_t bs, uint64_t off)
{
	const struct vqd_buf b[3] = { { HDRS + 32 * k, 16, false },
				      { DATA + k * bs, (uint32_t)bs, type == VIRTIO_BLK_T_IN },
				      { HDRS + 32 * k + 16, 1, true } };
	uint8_t *h = v->ram + HDRS + 32 * k;

	cv_put_le(h, type, 4);
	cv_put_le(h + 4, 0, 4);
	cv_put_le(h + 8, off / 512, 8);
	h[16] = 0xff;
	vqd_avail(&v->q, vqd_chain(&v->q, (uint16_t)(3 * k), b, 3));
}

/* n requests of bs bytes at offs[], QD in flight; MB/s. */
static double run(const char *path, uint32_t type, size_t bs, const uint64_t *offs, uint64_t n)
{
	struct drv *v = malloc(sizeof(*v));
	uint64_t next = 0, done = 0;
	double t;

	drv_open(v, path);
	t = now();
	for (unsigned int k = 0; k < QD && next < n; k++)
		issue(v, k, type, bs, offs[next++]);
	virtio_dev_notify(&v->dev, 0);
	while (done < n) {
		bool kick = false;
		uint32_t id;

		if (vqd_used_idx(&v->q) == v->q.used_seen) {
			if (evloop_once(&v->loop, 1000))
				die("evloop");
			continue;
		}
		while (vqd_used(&v->q, &id, NULL)) {
			unsigned int k = id / 3;

			if (v->ram[HDRS + 32 * k + 16] != VIRTIO_BLK_S_OK)
				die("a request failed");
			done++;
			if (next < n) {
				issue(v, k, type, bs, offs[next++]);
				kick = true;
			}
		}
		if (kick)
			virtio_dev_notify(&v->dev, 0);
	}
	t = now() - t;
	drv_close(v);
	free(v);
	return (double)n * bs / t / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct row {
	const char *name;
	uint32_t type;
	size_t bs;
	bool random, fresh; /* fresh: a new, empty image each run */
};

static void row(const char *dir, const struct row *r, uint64_t size)
{
	uint64_t n = size / r->bs, seed = 88172645463325252ULL, *offs = malloc(n * 8);
	char raw[512], q2[512];
	double a[REPS], b[REPS];

	for (uint64_t i = 0; i < n; i++)
		offs[i] = i * r->bs;
	for (uint64_t i = n - 1; r->random && i > 0; i--) {
		uint64_t j, t;

		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		j = seed % (i + 1);
		t = offs[i], offs[i] = offs[j], offs[j] = t;
	}
	snprintf(raw, sizeof(raw), "%s/%s", dir, r->fresh ? "fresh.raw" : "full.raw");
	snprintf(q2, sizeof(q2), "%s/%s", dir, r->fresh ? "fresh.qcow2" : "full.qcow2");
	for (int i = 0; i < REPS; i++) {
		if (r->fresh) {
			char sz[32];

			snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
			int fd = open(raw, O_CREAT | O_WRONLY | O_TRUNC, 0644);

			if (fd < 0 || ftruncate(fd, (off_t)size))
				die("cannot make the fresh raw image");
			close(fd);
			shell("qemu-img create -q -f qcow2 %s %s", q2, sz);
		}
		a[i] = run(raw, r->type, r->bs, offs, n);
		b[i] = run(q2, r->type, r->bs, offs, n);
	}
	qsort(a, REPS, sizeof(double), cmp);
	qsort(b, REPS, sizeof(double), cmp);
	printf("%-26s %5zuK %3d %5llu MiB %9.0f %9.0f %7.2fx\n", r->name, r->bs >> 10, QD,
	       (unsigned long long)(size >> 20), a[REPS / 2], b[REPS / 2],
	       b[REPS / 2] / a[REPS / 2]);
	fflush(stdout);
	free(offs);
}

int main(int argc, char **argv)
{
	static const struct row rows[] = {
		{ "read seq (allocated)", VIRTIO_BLK_T_IN, 4096, false, false },
		{ "read random (allocated)", VIRTIO_BLK_T_IN, 4096, true, false },
		{ "read seq (allocated)", VIRTIO_BLK_T_IN, 128 << 10, false, false },
		{ "write seq (allocated)", VIRTIO_BLK_T_OUT, 4096, false, false },
		{ "write random (allocated)", VIRTIO_BLK_T_OUT, 4096, true, false },
		{ "write seq (allocating)", VIRTIO_BLK_T_OUT, 4096, false, true },
		{ "write random (allocating)", VIRTIO_BLK_T_OUT, 4096, true, true },
	};
	uint64_t size;
	char raw[512], q2[512], sz[32];

	if (argc != 3 || !(size = strtoull(argv[2], NULL, 10) << 20))
		die("usage: qcow2 DIR MIB");
	snprintf(raw, sizeof(raw), "%s/full.raw", argv[1]);
	snprintf(q2, sizeof(q2), "%s/full.qcow2", argv[1]);
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)(size >> 20));
	/* Every cluster allocated, with data (not zeros) in both. */
	shell("qemu-img create -q -f raw %s %sM", raw, sz);
	shell("qemu-io -f raw -c 'write -P 0x5a 0 %sM' %s >/dev/null", sz, raw);
	shell("qemu-img convert -O qcow2 %s %s", raw, q2);
	/* Warm the page cache. Each run opens the device anew: its L2 cache
	 * is warm after the first request of the run (one 64 KiB L2 table
	 * maps 512 MiB). */
	shell("cat %s %s > /dev/null", raw, q2);
	printf("row                           bs   qd  bytes      raw MB/s qcow2 MB/s  ratio\n");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		row(argv[1], &rows[i], size);
	return 0;
}
