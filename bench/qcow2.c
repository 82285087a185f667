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
#include <unistd.h>

#include "blkdrv.h"

#define REPS 3
#define QD 16

static void die(const char *what)
{
	blkdrv_die(what);
}

static void shell(const char *fmt, const char *a, const char *b)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	if (system(cmd))
		die(cmd);
}

static uint64_t off_at(void *ctx, uint64_t i)
{
	return ((const uint64_t *)ctx)[i];
}

/* n requests of bs bytes at offs[], QD in flight; MB/s. */
static double run(const char *path, uint32_t type, size_t bs, uint64_t *offs, uint64_t n)
{
	struct blkdrv *v = malloc(sizeof(*v));
	struct virtio_blk_config c = { 0 };
	double t;

	if (!v)
		die("out of memory");
	snprintf(c.path, sizeof(c.path), "%s", path);
	blkdrv_open(v, &c,
		    (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
			    (1ULL << VIRTIO_BLK_F_FLUSH),
		    0x33);
	t = blkdrv_run(v, type, bs, QD, n, off_at, NULL, offs);
	blkdrv_close(v);
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

	if (!offs)
		die("out of memory");
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
