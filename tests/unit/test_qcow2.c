/* test_qcow2.c - qcow2 disks through the virtio-blk model, with Debian's
 * qemu-img and qemu-io as the oracle: images they make (backing files,
 * compression, v2, refcount widths, cluster sizes) read back with the
 * content they wrote; images written here pass `qemu-img check` and
 * `qemu-img compare` with the expected raw content; hostile images fail
 * at open with one line or fail only the request that meets the damage;
 * a writer killed with SIGKILL after N writes to the file leaves an image
 * that qemu-img check accepts, with what it flushed intact. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/evloop.h"
#include "cvisor/qcow2.h"
#include "cvisor/virtio_blk.h"
#include "vq_driver.h"
#include "with_err.h"

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_DISCARD = 11, T_WZ = 13 };
enum { S_OK = 0, S_IOERR = 1 };
#define FEATURES ((1ULL << 2) | (1ULL << 9) | (1ULL << 13) | (1ULL << 14) | (1ULL << 32))
#define RAM (8u << 20)
#define HDR 0x80000u
#define DWZ 0x81000u
#define BUF 0x100000u /* data buffers: up to 6 MiB */
#define MAXREQ (2u << 20)
#define VSIZE (4u << 20)	       /* virtual size of the test images */
#define OFF_MASK 0x00fffffffffffe00ULL /* an L1 or L2 entry's host offset */

static char dir[64];

/* One device on one queue over guest RAM in a host buffer. */
struct dev {
	uint8_t *ram;
	struct guest_mem mem;
	struct evloop loop;
	struct virtio_dev d;
	struct vqd vq;
	_Atomic uint64_t rd, wr;
};

static int sh(const char *fmt, ...) CV_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void no_signal(struct virtio_dev *d, uint16_t vector, uint8_t isr)
{
	(void)d;
	(void)vector;
	(void)isr;
}

/* The device on spec; unless probe, with ",format=qcow2" added when spec
 * names no format (a probed image follows no backing file:
 * test_probed_backing). */
static int dev_open_as(struct dev *v, const char *spec, bool probe, char *err, size_t errlen)
{
	struct virtio_blk_config c;
	struct cv_error e = { 0 };
	char full[512];
	int r;

	snprintf(full, sizeof(full), "%s%s", spec,
		 probe || strstr(spec, "format=") ? "" : ",format=qcow2");
	v->ram = aligned_alloc(4096, RAM);
	memset(v->ram, 0, RAM);
	guest_mem_init_buf(&v->mem, v->ram, RAM);
	assert_int_equal(evloop_init(&v->loop), 0);
	r = virtio_blk_parse(full, &c, &e);
	if (!r) {
		c.num_queues = 1;
		r = virtio_blk_create(&v->d, &c, &v->mem, &v->loop, &v->rd, &v->wr, &e);
	}
	if (err)
		copy_err(err, errlen, e.msg);
	if (r) {
		evloop_destroy(&v->loop);
		free(v->ram);
		return r;
	}
	v->d.transport.signal = no_signal;
	vqd_dev_status(&v->d, 0);
	vqd_init(&v->vq, v->ram, 256, 0x10000, 0x11000, 0x12000);
	assert_int_equal(vqd_dev_start(&v->d, FEATURES & v->d.device_features, &v->vq, 1), 0);
	return 0;
}

static int dev_open(struct dev *v, const char *spec, char *err, size_t errlen)
{
	return dev_open_as(v, spec, false, err, errlen);
}

static void dev_close(struct dev *v)
{
	virtio_blk_destroy(&v->d);
	evloop_destroy(&v->loop);
	free(v->ram);
}

/* A request with its data split in two uneven buffers (exercising the
 * iovec slicing); returns the status byte. */
static uint8_t io(struct dev *v, uint32_t type, uint64_t off, uint32_t len)
{
	bool in = type == T_IN;
	uint32_t a = len > 1536 ? 1536 : len;
	struct vqd_buf s[4] = { { HDR, 16, false }, { BUF, a, in }, { BUF + a, len - a, in } };
	unsigned int n = 1;

	cv_put_le(v->ram + HDR, type, 4);
	cv_put_le(v->ram + HDR + 4, 0, 4);
	cv_put_le(v->ram + HDR + 8, off / 512, 8);
	v->ram[HDR + 16] = 0xee;
	if (type == T_DISCARD || type == T_WZ) {
		cv_put_le(v->ram + DWZ, off / 512, 8);
		cv_put_le(v->ram + DWZ + 8, len / 512, 4);
		cv_put_le(v->ram + DWZ + 12, 0, 4);
		s[n++] = (struct vqd_buf){ DWZ, 16, false };
	} else if (len) {
		s[n++] = s[1];
		if (len > a)
			s[n++] = s[2];
	}
	s[n++] = (struct vqd_buf){ HDR + 16, 1, true };
	vqd_add(&v->vq, s, n);
	virtio_dev_notify(&v->d, 0);
	for (int i = 0; i < 500 && vqd_used_idx(&v->vq) == v->vq.used_seen; i++)
		assert_int_equal(evloop_once(&v->loop, 10), 0);
	assert_int_equal(vqd_used(&v->vq, NULL, NULL), 1);
	return v->ram[HDR + 16];
}

static uint8_t *read_file(const char *path, size_t size)
{
	uint8_t *b = calloc(1, size);
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_true(pread(fd, b, size, 0) >= 0);
	close(fd);
	return b;
}

/* The whole disk through the device equals the raw file qemu-img
 * converts the image to. */
static void check_reads(struct dev *v, const char *img)
{
	char raw[128];
	uint8_t *want;

	snprintf(raw, sizeof(raw), "%s/want.raw", dir);
	assert_int_equal(sh("qemu-img convert -O raw %s %s", img, raw), 0);
	want = read_file(raw, VSIZE);
	for (uint64_t off = 0; off < VSIZE; off += MAXREQ) {
		memset(v->ram + BUF, 0x77, MAXREQ);
		assert_int_equal(io(v, T_IN, off, MAXREQ), S_OK);
		assert_memory_equal(v->ram + BUF, want + off, MAXREQ);
	}
	/* Small reads straddling clusters. */
	for (uint64_t off = 512 * 7; off + 4096 + 512 <= VSIZE; off += 512 * 1023) {
		assert_int_equal(io(v, T_IN, off, 4096 + 512), S_OK);
		assert_memory_equal(v->ram + BUF, want + off, 4096 + 512);
	}
	free(want);
}

/* Patterns at a few places, some across cluster boundaries. */
static void qemu_io_patterns(const char *img, const char *fmt)
{
	assert_int_equal(sh("qemu-io -f %s -c 'write -P 0xab 0 64k' -c 'write -P 0x5c 70k 9k' "
			    "-c 'write -P 0x11 1m 1m' -c 'write -P 0xe7 3m 7k' %s >/dev/null",
			    fmt, img),
			 0);
}

struct kind {
	const char *name;
	const char *create; /* qemu-img create options for the top image */
	int backing;	    /* 0 none, 1 qcow2, 2 raw */
	bool compress;	    /* then qemu-img convert -c */
};

static const struct kind kinds[] = {
	{ "plain", "-o cluster_size=64k", 0, false },
	{ "4k", "-o cluster_size=4k", 0, false },
	{ "2m", "-o cluster_size=2M", 0, false },
	{ "v2", "-o compat=0.10", 0, false },
	{ "rc1", "-o refcount_bits=1,cluster_size=4k", 0, false },
	{ "rc8", "-o refcount_bits=8", 0, false },
	{ "rc64", "-o refcount_bits=64,cluster_size=4k", 0, false },
	/* 2 MiB of file per refcount table cluster: writes grow the table. */
	{ "512rc64", "-o refcount_bits=64,cluster_size=512", 0, false },
	{ "bq", "", 1, false },
	{ "braw", "", 2, false },
	{ "v2bq", "-o compat=0.10", 1, false },
	{ "zlib", "", 0, true },
	{ "zstd", "-o compression_type=zstd", 0, true },
};

/* kinds[i] as DIR/NAME.qcow2, with qemu-io's patterns in it (and other
 * patterns in its backing file, partly overwritten by the top). */
static void make_kind(const struct kind *k, char *img, size_t n)
{
	snprintf(img, n, "%s/%s.qcow2", dir, k->name);
	if (k->backing) {
		const char *bf = k->backing == 1 ? "qcow2" : "raw";

		assert_int_equal(sh("qemu-img create -q -f %s %s/base.%s 4M", bf, dir, bf), 0);
		assert_int_equal(sh("qemu-io -f %s -c 'write -P 0x42 0 4m' -c 'write -P 0x99 "
				    "512k 100k' %s/base.%s >/dev/null",
				    bf, dir, bf),
				 0);
		/* A relative name: resolved against the image's directory. */
		assert_int_equal(sh("qemu-img create -q -f qcow2 %s -b base.%s -F %s %s", k->create,
				    bf, bf, img),
				 0);
		qemu_io_patterns(img, "qcow2");
	} else if (k->compress) {
		char src[128];

		snprintf(src, sizeof(src), "%s/src.raw", dir);
		assert_int_equal(sh("qemu-img create -q -f raw %s 4M", src), 0);
		qemu_io_patterns(src, "raw");
		assert_int_equal(
			sh("qemu-io -f raw -c 'write -P 0x3 2m 64k' %s/src.raw >/dev/null", dir),
			0);
		assert_int_equal(
			sh("qemu-img convert -c -O qcow2 %s %s/src.raw %s", k->create, dir, img),
			0);
	} else {
		assert_int_equal(sh("qemu-img create -q -f qcow2 %s %s 4M", k->create, img), 0);
		qemu_io_patterns(img, "qcow2");
	}
}

static void test_read_qemu_images(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		char img[128], err[320];
		struct dev v;

		print_message("# read %s\n", kinds[i].name);
		make_kind(&kinds[i], img, sizeof(img));
		assert_int_equal(dev_open(&v, img, err, sizeof(err)), 0);
		assert_int_equal(virtio_blk_capacity(&v.d), VSIZE / 512);
		assert_true(virtio_blk_is_qcow2(&v.d));
		check_reads(&v, img);
		dev_close(&v);
		/* Read-only opens read the same. */
		assert_int_equal(dev_open(&v, strcat(img, ",readonly"), err, sizeof(err)), 0);
		check_reads(&v, strtok(img, ","));
		dev_close(&v);
	}
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Writes, discards and write-zeroes through the device mirrored in want;
 * then every byte reads back, qemu-img check is clean and qemu-img
 * compare matches want. */
static void test_write_qemu_check(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		char img[128], raw[128], err[320];
		uint64_t seed = 0x9e3779b97f4a7c15ULL + i;
		uint8_t *want;
		struct dev v;
		int fd;

		print_message("# write %s\n", kinds[i].name);
		make_kind(&kinds[i], img, sizeof(img));
		snprintf(raw, sizeof(raw), "%s/want.raw", dir);
		assert_int_equal(sh("qemu-img convert -O raw %s %s", img, raw), 0);
		want = read_file(raw, VSIZE);
		assert_int_equal(dev_open(&v, img, err, sizeof(err)), 0);
		for (int k = 0; k < 60; k++) {
			uint64_t op = rnd(&seed) % 8, sec = rnd(&seed) % (VSIZE / 512);
			uint64_t len = (1 + rnd(&seed) % (op < 2 ? 600 : 64)) * 512;

			if (sec * 512 + len > VSIZE)
				len = VSIZE - sec * 512;
			if (op == 0 || op == 1) { /* zero or discard, sometimes big */
				assert_int_equal(
					io(&v, op ? T_DISCARD : T_WZ, sec * 512, (uint32_t)len),
					S_OK);
				memset(want + sec * 512, 0, len);
			} else {
				for (uint64_t b = 0; b < len; b++)
					v.ram[BUF + b] = want[sec * 512 + b] =
						(uint8_t)(k * 31 + b / 512 + 1);
				assert_int_equal(io(&v, T_OUT, sec * 512, (uint32_t)len), S_OK);
			}
			if (k % 10 == 9)
				assert_int_equal(io(&v, T_FLUSH, 0, 0), S_OK);
		}
		for (uint64_t off = 0; off < VSIZE; off += MAXREQ) {
			assert_int_equal(io(&v, T_IN, off, MAXREQ), S_OK);
			assert_memory_equal(v.ram + BUF, want + off, MAXREQ);
		}
		dev_close(&v);
		assert_int_equal(sh("qemu-img check -q %s", img), 0);
		fd = open(raw, O_WRONLY | O_TRUNC);
		assert_int_equal(pwrite(fd, want, VSIZE, 0), VSIZE);
		close(fd);
		assert_int_equal(sh("qemu-img compare -q -f qcow2 -F raw %s %s", img, raw), 0);
		free(want);
	}
}

/* Patch n big-endian bytes at off of a file. */
static void patch(const char *path, uint64_t off, uint64_t v, unsigned int n)
{
	uint8_t b[8];
	int fd = open(path, O_WRONLY);

	for (unsigned int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static uint64_t peek(const char *path, uint64_t off)
{
	uint8_t b[8];
	uint64_t v = 0;
	int fd = open(path, O_RDONLY);

	assert_int_equal(pread(fd, b, 8, (off_t)off), 8);
	close(fd);
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

struct bad_hdr {
	uint64_t off, v;
	unsigned int n;
	const char *msg;
};

static void test_hostile_open(void **state)
{
	static const struct bad_hdr bad[] = {
		{ 4, 4, 4, "version 4" },
		{ 20, 8, 4, "cluster_bits" },
		{ 20, 22, 4, "cluster_bits" },
		{ 32, 1, 4, "encrypted" },
		{ 36, 0x7fffffff, 4, "larger than 32 MiB" },
		{ 36, 0, 4, "does not cover" },
		{ 40, 1ULL << 40, 8, "L1 table lies outside" },
		{ 40, 0x10200, 8, "not aligned" },
		{ 48, 1ULL << 40, 8, "refcount table lies outside" },
		{ 56, 0, 4, "refcount table is empty" },
		{ 72, 1ULL << 2, 8, "external data" },
		{ 72, 1ULL << 4, 8, "extended L2" },
		{ 72, 1ULL << 9, 8, "unknown qcow2 incompatible" },
		{ 72, 1, 8, "marked dirty" },
		{ 72, 2, 8, "marked corrupt" },
		{ 96, 7, 4, "refcount_order" },
		{ 100, 100, 4, "header_length" },
		{ 60, 1, 4, "internal snapshots" },
		{ 16, 5000, 4, "backing file name" },
	};
	char img[128], err[320];
	struct dev v;

	(void)state;
	snprintf(img, sizeof(img), "%s/h.qcow2", dir);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(sh("qemu-img create -q -f qcow2 %s 4M", img), 0);
		if (bad[i].off == 16) /* a backing name length needs an offset */
			patch(img, 8, 0x200, 8);
		patch(img, bad[i].off, bad[i].v, bad[i].n);
		err[0] = 0;
		assert_int_not_equal(dev_open(&v, img, err, sizeof(err)), 0);
		print_message("# %s\n", err);
		assert_non_null(strstr(err, bad[i].msg));
		assert_non_null(strstr(err, img));
	}
	/* format=qcow2 on a raw file; format=raw on a qcow2 file reads bytes. */
	assert_int_equal(sh("qemu-img create -q -f raw %s/r.raw 1M", dir), 0);
	snprintf(img, sizeof(img), "%s/r.raw,format=qcow2", dir);
	assert_int_not_equal(dev_open(&v, img, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "magic"));
	snprintf(img, sizeof(img), "%s/h.qcow2", dir);
	assert_int_equal(sh("qemu-img create -q -f qcow2 %s 4M", img), 0);
	assert_int_equal(dev_open(&v, strcat(img, ",format=raw"), err, sizeof(err)), 0);
	assert_false(virtio_blk_is_qcow2(&v.d));
	assert_int_equal(io(&v, T_IN, 0, 512), S_OK);
	assert_int_equal(v.ram[BUF], 'Q');
	dev_close(&v);
	assert_int_not_equal(dev_open(&v, "x,format=vmdk", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "vmdk"));
}

/* Copies c0001..c(n-1) of img (named c0000, backing file c0001), each
 * naming the next. */
static void chain_copies(const char *img, int n)
{
	uint8_t *b = read_file(img, 4096);
	uint64_t boff = peek(img, 8);
	char name[160], next[8];

	assert_int_equal(peek(img, 16) >> 32, 5);
	for (int i = 1; i < n; i++) {
		int fd;

		snprintf(name, sizeof(name), "%s/c%04d", dir, i);
		snprintf(next, sizeof(next), "c%04d", i + 1);
		memcpy(b + boff, next, 5);
		fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_int_equal(write(fd, b, 4096), 4096);
		close(fd);
	}
	free(b);
}

/* A loop of two images, and a chain deeper than the bound. */
static void test_hostile_chains(void **state)
{
	char img[128], err[320];
	struct dev v;

	(void)state;
	assert_int_equal(sh("cd %s && qemu-img create -q -f qcow2 -u -b l2.qcow2 -F qcow2 "
			    "l1.qcow2 4M && qemu-img create -q -f qcow2 -u -b l1.qcow2 -F qcow2 "
			    "l2.qcow2 4M",
			    dir),
			 0);
	snprintf(img, sizeof(img), "%s/l1.qcow2", dir);
	assert_int_not_equal(dev_open(&v, img, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "loops"));
	/* An image naming itself. */
	assert_int_equal(sh("cd %s && qemu-img create -q -f qcow2 -u -b self.qcow2 -F qcow2 "
			    "other.qcow2 4M && mv other.qcow2 self.qcow2",
			    dir),
			 0);
	snprintf(img, sizeof(img), "%s/self.qcow2", dir);
	assert_int_not_equal(dev_open(&v, img, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "loops"));
	/* 1000 images, each naming the next: refused at depth 16. */
	assert_int_equal(sh("cd %s && qemu-img create -q -f qcow2 -o cluster_size=512 c1000 4M "
			    "&& qemu-img create -q -f qcow2 -o cluster_size=512 -u -b c0001 -F "
			    "qcow2 c0000 4M",
			    dir),
			 0);
	snprintf(img, sizeof(img), "%s/c0000", dir);
	chain_copies(img, 1000);
	assert_int_not_equal(dev_open(&v, img, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "deeper than 16"));
	/* 16 deep is fine. */
	snprintf(img, sizeof(img), "%s/c0985", dir);
	assert_int_equal(dev_open(&v, img, err, sizeof(err)), 0);
	assert_int_equal(io(&v, T_IN, 0, 4096), S_OK);
	dev_close(&v);
}

/* Found by probing (no format=), an image's backing file is not followed:
 * the guest of a raw disk could have written a qcow2 header naming any
 * host file. A header with no backing file still opens probed. */
static void test_probed_backing(void **state)
{
	char img[128], err[320];
	struct dev v;

	(void)state;
	assert_int_equal(sh("cd %s && qemu-img create -q -f raw secret.raw 1M && qemu-img "
			    "create -q -f qcow2 -b secret.raw -F raw probed.qcow2 1M",
			    dir),
			 0);
	snprintf(img, sizeof(img), "%s/probed.qcow2", dir);
	assert_int_not_equal(dev_open_as(&v, img, true, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "names a backing file, which is followed only with"));
	assert_int_equal(dev_open(&v, img, err, sizeof(err)), 0);
	dev_close(&v);
	assert_int_equal(sh("cd %s && qemu-img create -q -f qcow2 alone.qcow2 1M", dir), 0);
	snprintf(img, sizeof(img), "%s/alone.qcow2", dir);
	assert_int_equal(dev_open_as(&v, img, true, err, sizeof(err)), 0);
	dev_close(&v);
}

/* Damage found after open fails that request only. */
static void test_hostile_later(void **state)
{
	char img[128], err[320];
	uint64_t l1, l2, rt, rb;
	struct dev v;

	(void)state;
	snprintf(img, sizeof(img), "%s/d.qcow2", dir);
	assert_int_equal(sh("qemu-img create -q -f qcow2 %s 4M && qemu-io -c 'write -P 1 0 128k' "
			    "-c 'write -P 2 2m 64k' %s >/dev/null",
			    img, img),
			 0);
	l1 = peek(img, 40);
	l2 = peek(img, l1) & OFF_MASK;
	/* Cluster 0's entry past the end of the file, cluster 1's on the L1
	 * table: both reads fail, cluster 32's (2 MiB) still reads. */
	patch(img, l2, (1ULL << 63) | (1ULL << 40), 8);
	patch(img, l2 + 8, (1ULL << 63) | l1, 8);
	assert_int_equal(dev_open(&v, img, err, sizeof(err)), 0);
	assert_int_equal(io(&v, T_IN, 0, 4096), S_IOERR);
	assert_int_equal(io(&v, T_IN, 64 << 10, 4096), S_IOERR);
	assert_int_equal(io(&v, T_OUT, 64 << 10, 4096), S_IOERR);
	assert_int_equal(io(&v, T_DISCARD, 64 << 10, 64 << 10), S_IOERR);
	assert_int_equal(io(&v, T_IN, 2 << 20, 4096), S_OK);
	assert_int_equal(v.ram[BUF], 2);
	dev_close(&v);
	/* The L1 entry pointing at the refcount table. */
	rt = peek(img, 48);
	patch(img, l1, rt | (1ULL << 63), 8);
	assert_int_equal(dev_open(&v, img, err, sizeof(err)), 0);
	assert_int_equal(io(&v, T_IN, 2 << 20, 4096), S_IOERR);
	assert_int_equal(io(&v, T_OUT, 2 << 20, 4096), S_IOERR);
	dev_close(&v);
	/* A refcount of 0 under a used cluster: freeing it underflows. */
	assert_int_equal(sh("qemu-img create -q -f qcow2 %s 4M && qemu-io -c 'write -P 1 0 128k' "
			    "%s >/dev/null",
			    img, img),
			 0);
	rb = peek(img, peek(img, 48)) & ~0x1ffULL;
	l2 = peek(img, peek(img, 40)) & OFF_MASK;
	patch(img, rb + 2 * ((peek(img, l2) & OFF_MASK) >> 16), 0, 2);
	assert_int_equal(dev_open(&v, img, err, sizeof(err)), 0);
	assert_int_equal(io(&v, T_DISCARD, 0, 64 << 10), S_IOERR);
	assert_int_equal(io(&v, T_IN, 64 << 10, 4096), S_OK);
	dev_close(&v);
	/* The refcount table pointing a block past the end: allocation fails. */
	assert_int_equal(sh("qemu-img create -q -f qcow2 %s 4M", img), 0);
	patch(img, peek(img, 48), 1ULL << 40, 8);
	assert_int_equal(dev_open(&v, img, err, sizeof(err)), 0);
	assert_int_equal(io(&v, T_OUT, 0, 4096), S_IOERR);
	assert_int_equal(io(&v, T_IN, 0, 4096), S_OK);
	dev_close(&v);
}

/* The child writes region k (64 KiB + 3 sectors, straddling clusters) with
 * pattern k+1, zeroes 8 KiB of every 7th, flushes and reports k on the
 * pipe, until SIGKILL. */
static void crash_child(const char *img, unsigned long kill_after, int pipefd)
{
	static uint8_t buf[(64 << 10) + 1536];
	struct qcow2 *q;
	int fd = open(img, O_RDWR);

	if (fd < 0 || qcow2_open(&q, fd, img, 0, NULL))
		_exit(2);
	qcow2_test_kill_after(q, kill_after);
	for (int k = 0; k < 40; k++) {
		struct iovec iov = { buf, sizeof(buf) };
		uint8_t kk = (uint8_t)k;

		memset(buf, k + 1, sizeof(buf));
		/* Every 7th region also gets 8 KiB zeroed: whole clusters
		 * (freed, or zero clusters over the backing file) at 4K. */
		if (qcow2_writev(q, &iov, 1, (uint64_t)k * 96 * 1024 + 1024, sizeof(buf)) ||
		    (k % 7 == 3 && qcow2_zero(q, (uint64_t)k * 96 * 1024 + 8192, 8192)) ||
		    qcow2_flush(q))
			_exit(3);
		if (write(pipefd, &kk, 1) != 1)
			_exit(4);
	}
	qcow2_close(q);
	_exit(0);
}

struct crash_point {
	unsigned long writes;
	const char *opts;
	bool backing;
};

static void test_crash(void **state)
{
	/* 512-byte clusters with 64-bit refcounts: the refcount table
	 * (2 MiB of file per cluster) grows after some 12,000 writes. */
	static const struct crash_point points[] = {
		{ 1, "cluster_size=4k", false },
		{ 2, "cluster_size=4k", true },
		{ 3, "cluster_size=4k", false },
		{ 4, "cluster_size=4k", true },
		{ 5, "cluster_size=4k", false },
		{ 7, "cluster_size=4k", true },
		{ 9, "cluster_size=4k", false },
		{ 12, "cluster_size=4k", true },
		{ 17, "cluster_size=4k", false },
		{ 23, "cluster_size=4k", true },
		{ 31, "cluster_size=4k", false },
		{ 40, "cluster_size=4k", true },
		{ 55, "cluster_size=4k", false },
		{ 80, "cluster_size=4k", true },
		{ 150, "cluster_size=4k", false },
		{ 333, "cluster_size=64k", true },
		{ 9000, "cluster_size=512,refcount_bits=64", true },
		{ 11000, "cluster_size=512,refcount_bits=64", true },
		{ 12000, "cluster_size=512,refcount_bits=64", true },
		{ 13000, "cluster_size=512,refcount_bits=64", true },
		{ 14500, "cluster_size=512,refcount_bits=64", true },
	};
	char img[128], raw[160];

	(void)state;
	snprintf(img, sizeof(img), "%s/crash.qcow2", dir);
	snprintf(raw, sizeof(raw), "%s/crash.raw", dir);
	for (size_t i = 0; i < ARRAY_SIZE(points); i++) {
		int p[2], st, done = -1, rc;
		uint8_t k, *got;
		pid_t pid;

		assert_int_equal(sh("qemu-img create -q -f qcow2 -o %s %s 8M && "
				    "qemu-io -c 'write -P 0xcc 0 8m' %s >/dev/null",
				    points[i].opts, img, img),
				 0);
		if (points[i].backing)
			assert_int_equal(
				sh("mv %s %s.base && qemu-img create -q -f qcow2 -b %s.base "
				   "-F qcow2 -o %s %s",
				   img, img, img, points[i].opts, img),
				0);
		assert_int_equal(pipe(p), 0);
		if (!(pid = fork())) {
			close(p[0]);
			crash_child(img, points[i].writes, p[1]);
		}
		close(p[1]);
		while (read(p[0], &k, 1) == 1)
			done = k;
		close(p[0]);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		/* Killed, or done before the N-th write came. */
		assert_true((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
			    (WIFEXITED(st) && !WEXITSTATUS(st) && done == 39));
		rc = sh("qemu-img check -q %s", img);
		print_message("# %s: killed after %lu writes: %d regions flushed, refcount table "
			      "%llu clusters, check %d\n",
			      points[i].opts, points[i].writes, done + 1,
			      (unsigned long long)(peek(img, 56) >> 32), rc);
		assert_true(rc == 0 || rc == 3);
		assert_int_equal(sh("qemu-img convert -O raw %s %s", img, raw), 0);
		got = read_file(raw, 8 << 20);
		for (int r = 0; r <= done; r++) {
			uint64_t off = (uint64_t)r * 96 * 1024 + 1024;
			bool z = r % 7 == 3;

			for (uint64_t b = 0; b < (64 << 10) + 1536; b++)
				assert_int_equal(got[off + b],
						 z && b >= 7168 && b < 7168 + 8192 ? 0 : r + 1);
		}
		assert_int_equal(got[0], 0xcc);
		free(got);
	}
}

/* qcow2_create: images qemu-img checks clean, of the virtual size and
 * cluster size asked, that read as zeros and take writes; sizes and
 * cluster sizes out of bounds refused. */
static void test_create(void **state)
{
	static const struct {
		unsigned int bits;
		uint64_t size;
	} ok[] = {
		{ 16, VSIZE },
		{ 9, VSIZE },
		{ 12, 1ULL << 30 },
		{ 21, 1ULL << 40 },
		/* 512-byte clusters: more than one refcount block of metadata. */
		{ 9, 1ULL << 30 },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		char img[128], raw[128], json[160];
		struct cv_error e = { 0 };
		uint8_t pat[3000];
		struct iovec v = { pat, sizeof(pat) };
		struct qcow2 *q;
		int fd;

		snprintf(img, sizeof(img), "%s/new%zu.qcow2", dir, i);
		fd = open(img, O_RDWR | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(qcow2_create(fd, ok[i].size, ok[i].bits), 0);
		assert_int_equal(sh("qemu-img check -q %s", img), 0);
		snprintf(json, sizeof(json), "\"virtual-size\": %llu,",
			 (unsigned long long)ok[i].size);
		assert_int_equal(sh("qemu-img info --output=json %s | grep -q '%s'", img, json), 0);
		assert_int_equal(
			sh("qemu-img info --output=json %s | grep -q '\"cluster-size\": %u,'", img,
			   1U << ok[i].bits),
			0);
		/* Written through the layer: still clean, and the content. */
		assert_int_equal(qcow2_open(&q, fd, img, 0, &e), 0);
		assert_int_equal(qcow2_cluster_bits(q), ok[i].bits);
		memset(pat, 0xc3, sizeof(pat));
		assert_int_equal(qcow2_writev(q, &v, 1, 4096 - 512, sizeof(pat) / 512 * 512), 0);
		assert_int_equal(qcow2_writev(q, &v, 1, ok[i].size - 1024, 1024), 0);
		assert_int_equal(qcow2_zero(q, 4096, 512), 0);
		assert_int_equal(qcow2_flush(q), 0);
		qcow2_close(q);
		close(fd);
		assert_int_equal(sh("qemu-img check -q %s", img), 0);
		snprintf(raw, sizeof(raw), "%s/new.raw", dir);
		assert_int_equal(
			sh("rm -f %s && truncate -s %llu %s && qemu-io -f raw -c 'write -P "
			   "0xc3 3584 2560' -c 'write -z 4096 512' -c 'write -P 0xc3 %llu "
			   "1024' %s >/dev/null",
			   raw, (unsigned long long)ok[i].size, raw,
			   (unsigned long long)ok[i].size - 1024, raw),
			0);
		if (ok[i].size <= VSIZE)
			assert_int_equal(sh("qemu-img compare -q -f qcow2 -F raw %s %s", img, raw),
					 0);
		sh("rm -f %s %s", img, raw);
	}
	/* Refused: cluster bits, sizes not a multiple of 512 or 0, an L1
	 * table over 32 MiB (2^56 bytes at 512-byte clusters). */
	{
		char img[128];
		int fd;

		snprintf(img, sizeof(img), "%s/bad.qcow2", dir);
		fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
		assert_int_equal(qcow2_create(fd, VSIZE, 8), -EINVAL);
		assert_int_equal(qcow2_create(fd, VSIZE, 22), -EINVAL);
		assert_int_equal(qcow2_create(fd, 0, 16), -EINVAL);
		assert_int_equal(qcow2_create(fd, VSIZE + 1, 16), -EINVAL);
		assert_int_equal(qcow2_create(fd, (1ULL << 56) + 512, 21), -EINVAL);
		assert_int_equal(qcow2_create(fd, 1ULL << 56, 9), -EFBIG);
		close(fd);
	}
}

/* A storage migration's copy, in one process: the guest-visible content
 * of each kind of image (chains, compression, zero clusters), read through
 * the device where virtio_blk_next_data says data may lie, written into a
 * new image by qcow2_create and qcow2_writev: qemu-img compare finds it
 * identical to the chain, check finds it clean; and the extents skip
 * what is not allocated anywhere. */
static void test_guest_copy(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(kinds) + 1; i++) {
		char img[128], out[128], err[320];
		uint64_t off = 0, start, end, seen = 0;
		uint8_t *buf = malloc(MAXREQ);
		struct cv_error e = { 0 };
		struct qcow2 *q;
		struct dev v;
		int fd, r;

		if (i < ARRAY_SIZE(kinds)) {
			make_kind(&kinds[i], img, sizeof(img));
			/* A zero cluster over data of the backing file. */
			assert_int_equal(
				sh("qemu-io -f qcow2 -c 'write -z 1m 64k' %s >/dev/null", img), 0);
		} else { /* a raw image: SEEK_DATA */
			snprintf(img, sizeof(img), "%s/sparse.raw", dir);
			assert_int_equal(sh("rm -f %s && truncate -s 4M %s && qemu-io -f raw -c "
					    "'write -P 0x21 1m 8k' %s >/dev/null",
					    img, img, img),
					 0);
			strcat(img, ",format=raw");
		}
		print_message("# copy %s\n", i < ARRAY_SIZE(kinds) ? kinds[i].name : "raw");
		assert_int_equal(dev_open(&v, img, err, sizeof(err)), 0);
		snprintf(out, sizeof(out), "%s/copy.qcow2", dir);
		unlink(out);
		fd = open(out, O_RDWR | O_CREAT | O_EXCL, 0600);
		assert_int_equal(qcow2_create(fd, VSIZE, 16), 0);
		assert_int_equal(qcow2_open(&q, fd, out, 0, &e), 0);
		while ((r = virtio_blk_next_data(&v.d, off, &start, &end)) == 0) {
			assert_true(start >= off && end > start && end <= VSIZE);
			for (off = start & ~511ULL; off < end;) {
				uint64_t n = end - off > MAXREQ ? MAXREQ : end - off;
				struct iovec iv = { buf, n };

				assert_int_equal(virtio_blk_read_guest(&v.d, buf, n, off), 0);
				assert_int_equal(qcow2_writev(q, &iv, 1, off, n), 0);
				seen += n;
				off += n;
			}
		}
		assert_int_equal(r, -ENXIO);
		/* Outside the disk: refused. */
		assert_int_equal(virtio_blk_read_guest(&v.d, buf, 1024, VSIZE - 512), -EINVAL);
		assert_int_equal(qcow2_flush(q), 0);
		qcow2_close(q);
		close(fd);
		dev_close(&v);
		assert_int_equal(sh("qemu-img check -q %s", out), 0);
		assert_int_equal(sh("qemu-img compare -q -F %s %s %s",
				    i < ARRAY_SIZE(kinds) ? "qcow2" : "raw", out, strtok(img, ",")),
				 0);
		/* Images without a backing file hold unallocated ranges the
		 * copy skipped (the backed ones are all data underneath, and
		 * qemu-io's patterns touch both 2 MiB clusters). */
		if (i == ARRAY_SIZE(kinds) || (!kinds[i].backing && strcmp(kinds[i].name, "2m")))
			assert_true(seen < VSIZE);
		free(buf);
	}
}

static int group_setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/cvisor-qcow2-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return sh("rm -rf %s", dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_qemu_images),
		cmocka_unit_test(test_write_qemu_check),
		cmocka_unit_test(test_hostile_open),
		cmocka_unit_test(test_hostile_chains),
		cmocka_unit_test(test_probed_backing),
		cmocka_unit_test(test_hostile_later),
		cmocka_unit_test(test_crash),
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_guest_copy),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
