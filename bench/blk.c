/* blk.c - the virtio-blk data path against the host's own reads of the
 * same file, in the same run (issue 3, "bench/").
 *
 * The device side is the real model (src/virtio/blk*.c, virtq.c,
 * virtio.c) driven over synthetic guest memory without KVM: this program
 * plays the guest driver (virtio 1.2 2.7.13: header, data and status
 * descriptors, avail ring, kick through virtio_dev_notify) and runs the
 * device's event loop until the used ring returns each request. The host
 * side reads the same file with the same block size: pread for one request
 * in flight, io_uring for N in flight.
 *
 * Usage: blk FILE MIB  (FILE is created with a known pattern if it does
 * not have MIB MiB). Every device read is checked: each sector starts with
 * its own byte offset. Each figure is the median of REPS runs, host and
 * device alternating. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blkdrv.h"

#define REPS 5

static void die(const char *what)
{
	fprintf(stderr, "bench/blk: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Each sector starts with its own byte offset; the rest is noise. */
static void make_file(const char *path, uint64_t size)
{
	struct stat st;
	uint64_t x = 88172645463325252ULL;
	uint8_t *buf;
	int fd;

	if (!stat(path, &st) && (uint64_t)st.st_size == size)
		return;
	fprintf(stderr, "bench/blk: writing %s (%llu MiB)\n", path,
		(unsigned long long)(size >> 20));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		die(path);
	buf = malloc(1 << 20);
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		for (unsigned int i = 0; i < (1 << 20); i += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			memcpy(buf + i, i % 512 ? &x : &(uint64_t){ off + i }, 8);
		}
		if (pwrite(fd, buf, 1 << 20, (off_t)off) != 1 << 20)
			die("write");
	}
	if (fsync(fd))
		die("fsync");
	close(fd);
	free(buf);
}

static void check(const uint8_t *p, uint64_t off)
{
	uint64_t v;

	memcpy(&v, p, 8);
	if (v != off) {
		fprintf(stderr, "bench/blk: wrong data at offset %llu\n", (unsigned long long)off);
		exit(1);
	}
}

static double host_pread(const char *path, bool direct, size_t bs, uint64_t total)
{
	int fd = open(path, O_RDONLY | (direct ? O_DIRECT : 0));
	uint8_t *buf = aligned_alloc(4096, bs);
	double t;

	if (fd < 0)
		die(path);
	t = blkdrv_now();
	for (uint64_t off = 0; off < total; off += bs) {
		if (pread(fd, buf, bs, (off_t)off) != (ssize_t)bs)
			die("pread");
		check(buf, off);
	}
	t = blkdrv_now() - t;
	close(fd);
	free(buf);
	return total / t / 1e6;
}

static double host_uring(const char *path, bool direct, size_t bs, unsigned int qd, uint64_t total)
{
	int fd = open(path, O_RDONLY | (direct ? O_DIRECT : 0));
	uint8_t *buf = aligned_alloc(4096, bs * qd);
	uint64_t next = 0, done = 0, offs[BLKDRV_MAX_QD];
	struct io_uring ring;
	double t;

	if (fd < 0 || io_uring_queue_init(2 * qd, &ring, 0))
		die("io_uring");
	t = blkdrv_now();
	for (unsigned int k = 0; k < qd && next < total; k++, next += bs) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		io_uring_prep_read(sqe, fd, buf + k * bs, (unsigned int)bs, next);
		io_uring_sqe_set_data64(sqe, k);
		offs[k] = next;
	}
	while (done < total) {
		struct io_uring_cqe *cqe;
		unsigned int k;

		if (io_uring_submit_and_wait(&ring, 1) < 0 || io_uring_peek_cqe(&ring, &cqe))
			die("io_uring wait");
		do {
			k = (unsigned int)io_uring_cqe_get_data64(cqe);
			if (cqe->res != (int)bs)
				die("io_uring read");
			io_uring_cqe_seen(&ring, cqe);
			check(buf + k * bs, offs[k]);
			done += bs;
			if (next < total) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

				io_uring_prep_read(sqe, fd, buf + k * bs, (unsigned int)bs, next);
				io_uring_sqe_set_data64(sqe, k);
				offs[k] = next;
				next += bs;
			}
		} while (!io_uring_peek_cqe(&ring, &cqe));
	}
	t = blkdrv_now() - t;
	io_uring_queue_exit(&ring);
	close(fd);
	free(buf);
	return total / t / 1e6;
}

static uint64_t off_seq(void *ctx, uint64_t i)
{
	return i * *(const size_t *)ctx;
}

static void check_done(void *ctx, const uint8_t *data, uint64_t off)
{
	(void)ctx;
	check(data, off);
}

/* total bytes read sequentially through the device, qd in flight; MB/s. */
static double device(const char *path, bool direct, size_t bs, unsigned int qd, uint64_t total)
{
	struct blkdrv *v = malloc(sizeof(*v));
	struct virtio_blk_config c = { .readonly = true, .direct = direct };
	double t;

	if (!v)
		die("out of memory");
	snprintf(c.path, sizeof(c.path), "%s", path);
	blkdrv_open(v, &c,
		    (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_RO) |
			    (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
			    (1ULL << VIRTIO_BLK_F_FLUSH),
		    0);
	t = blkdrv_run(v, VIRTIO_BLK_T_IN, bs, qd, total / bs, off_seq, check_done, &bs);
	blkdrv_close(v);
	free(v);
	return total / t / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void row(const char *path, bool direct, size_t bs, unsigned int qd, uint64_t total)
{
	double h[REPS], d[REPS];

	for (int i = 0; i < REPS; i++) {
		h[i] = qd == 1 ? host_pread(path, direct, bs, total)
			       : host_uring(path, direct, bs, qd, total);
		d[i] = device(path, direct, bs, qd, total);
	}
	qsort(h, REPS, sizeof(double), cmp);
	qsort(d, REPS, sizeof(double), cmp);
	printf("%-8s %5zuK %3u %5llu MiB  %-8s %9.0f %11.0f %7.2fx\n",
	       direct ? "direct" : "buffered", bs >> 10, qd, (unsigned long long)(total >> 20),
	       qd == 1 ? "pread" : "io_uring", h[REPS / 2], d[REPS / 2], d[REPS / 2] / h[REPS / 2]);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	uint64_t size, small;

	if (argc != 3 || !(size = strtoull(argv[2], NULL, 10) << 20)) {
		fprintf(stderr, "usage: blk FILE MIB\n");
		return 2;
	}
	make_file(argv[1], size);
	/* 4 KiB requests straight from the disk are slow: read less. */
	small = size < (64ULL << 20) ? size : 64ULL << 20;
	host_pread(argv[1], false, 1 << 20, size); /* into the page cache */
	printf("mode     bs     qd  bytes     host     host MB/s device MB/s   ratio\n");
	row(argv[1], false, 128 << 10, 1, size);
	row(argv[1], false, 128 << 10, 16, size);
	row(argv[1], false, 4 << 10, 1, size);
	row(argv[1], false, 4 << 10, 16, size);
	row(argv[1], true, 128 << 10, 1, size);
	row(argv[1], true, 128 << 10, 16, size);
	row(argv[1], true, 4 << 10, 1, small);
	row(argv[1], true, 4 << 10, 16, small);
	return 0;
}
