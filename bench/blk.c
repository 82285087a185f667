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

#include "cvisor/virtio_blk.h"
#include "vq_driver.h"

#define REPS 5
#define RAM_SIZE (8u << 20)
#define QSIZE 256
#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define HDRS 0x4000u
#define DATA 0x10000u
#define MAX_QD 32

struct drv {
	uint8_t *ram;
	struct guest_mem mem;
	struct evloop loop;
	struct virtio_dev dev;
	struct vqd q; /* the driver's side of the queue */
	uint64_t slot_off[MAX_QD];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench/blk: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
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
	t = now();
	for (uint64_t off = 0; off < total; off += bs) {
		if (pread(fd, buf, bs, (off_t)off) != (ssize_t)bs)
			die("pread");
		check(buf, off);
	}
	t = now() - t;
	close(fd);
	free(buf);
	return total / t / 1e6;
}

static double host_uring(const char *path, bool direct, size_t bs, unsigned int qd, uint64_t total)
{
	int fd = open(path, O_RDONLY | (direct ? O_DIRECT : 0));
	uint8_t *buf = aligned_alloc(4096, bs * qd);
	uint64_t next = 0, done = 0, offs[MAX_QD];
	struct io_uring ring;
	double t;

	if (fd < 0 || io_uring_queue_init(2 * qd, &ring, 0))
		die("io_uring");
	t = now();
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
	t = now() - t;
	io_uring_queue_exit(&ring);
	close(fd);
	free(buf);
	return total / t / 1e6;
}

static void drv_open(struct drv *v, const char *path, bool direct)
{
	struct virtio_blk_config c = { .readonly = true, .direct = direct, .num_queues = 1 };
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_RO) |
		     (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ULL << VIRTIO_BLK_F_FLUSH);
	struct cv_error e = { 0 };

	memset(v, 0, sizeof(*v));
	v->ram = aligned_alloc(4096, RAM_SIZE);
	memset(v->ram, 0, RAM_SIZE);
	guest_mem_init_buf(&v->mem, v->ram, RAM_SIZE);
	vqd_init(&v->q, v->ram, QSIZE, DESC, AVAIL, USED);
	snprintf(c.path, sizeof(c.path), "%s", path);
	if (evloop_init(&v->loop) ||
	    virtio_blk_create(&v->dev, &c, &v->mem, &v->loop, NULL, NULL, &e)) {
		fprintf(stderr, "bench/blk: %s\n", e.msg);
		exit(1);
	}
	if (vqd_dev_start(&v->dev, f, &v->q, 1) || evloop_once(&v->loop, 0)) {
		fprintf(stderr, "bench/blk: the device did not activate\n");
		exit(1);
	}
}

static void drv_close(struct drv *v)
{
	virtio_blk_destroy(&v->dev);
	evloop_destroy(&v->loop);
	free(v->ram);
}

/* Slot k always uses descriptors 3k..3k+2: header, data, status. */
static void drv_issue(struct drv *v, unsigned int k, size_t bs, uint64_t off)
{
	const struct vqd_buf b[3] = { { HDRS + 32 * k, 16, false },
				      { DATA + k * bs, (uint32_t)bs, true },
				      { HDRS + 32 * k + 16, 1, true } };
	uint8_t *h = v->ram + HDRS + 32 * k;

	put(h, VIRTIO_BLK_T_IN, 4);
	put(h + 8, off / 512, 8);
	h[16] = 0xff;
	v->slot_off[k] = off;
	vqd_avail(&v->q, vqd_chain(&v->q, (uint16_t)(3 * k), b, 3));
}

static double device(const char *path, bool direct, size_t bs, unsigned int qd, uint64_t total)
{
	struct drv *v = malloc(sizeof(*v));
	uint64_t next = 0, done = 0;
	double t;

	drv_open(v, path, direct);
	t = now();
	for (unsigned int k = 0; k < qd && next < total; k++, next += bs)
		drv_issue(v, k, bs, next);
	virtio_dev_notify(&v->dev, 0);
	while (done < total) {
		bool kick = false;
		uint32_t id;

		if (vqd_used_idx(&v->q) == v->q.used_seen) {
			if (evloop_once(&v->loop, 1000))
				die("evloop");
			continue;
		}
		while (vqd_used(&v->q, &id, NULL)) {
			unsigned int k = id / 3;

			if (v->ram[HDRS + 32 * k + 16] != VIRTIO_BLK_S_OK) {
				fprintf(stderr, "bench/blk: device status %u\n",
					v->ram[HDRS + 32 * k + 16]);
				exit(1);
			}
			check(v->ram + DATA + k * bs, v->slot_off[k]);
			done += bs;
			if (next < total) {
				drv_issue(v, k, bs, next);
				next += bs;
				kick = true;
			}
		}
		if (kick)
			virtio_dev_notify(&v->dev, 0);
	}
	t = now() - t;
	drv_close(v);
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
