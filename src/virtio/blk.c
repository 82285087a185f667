/* blk.c - virtio-blk (virtio 1.2 section 5.2): the --disk flag, the image,
 * config space, features, lifecycle (activate, reset, quiesce) and state.
 * Requests are validated in blk_req.c; their I/O runs in blk_io.c. */
#include "cvisor/virtio_blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk_priv.h"

#define BLK_STATE_VERSION 1
/* 5.2.4 seg_max: data segments per request; the header and the status
 * byte take two more of the VIRTQ_MAX_IOV a chain may have. */
#define BLK_SEG_MAX (VIRTQ_MAX_IOV - 4)

const struct rate_keys virtio_blk_rate_keys[1] = { { "", "iops" } };

static bool opt_is(const char *opt, size_t n, const char *name)
{
	return strlen(name) == n && !memcmp(opt, name, n);
}

static int parse_opt(const char *spec, const char *opt, size_t n, struct virtio_blk_config *c,
		     struct cv_error *e)
{
	char num[16];
	uint64_t v;
	int r = rate_parse_opt(virtio_blk_rate_keys, &c->rate, 1, "--disk", opt, n, e);

	if (r)
		return r < 0 ? r : 0;
	if (opt_is(opt, n, "format=raw")) {
		c->format = VIRTIO_BLK_FMT_RAW;
	} else if (opt_is(opt, n, "format=qcow2")) {
		c->format = VIRTIO_BLK_FMT_QCOW2;
	} else if (n >= 7 && !memcmp(opt, "format=", 7)) {
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--disk %s: format '%.*s' is not raw or qcow2", spec, (int)(n - 7),
			       opt + 7);
	} else if (opt_is(opt, n, "readonly") || opt_is(opt, n, "ro")) {
		c->readonly = true;
	} else if (opt_is(opt, n, "direct")) {
		c->direct = true;
	} else if (n >= 7 && !memcmp(opt, "serial=", 7)) {
		/* 5.2.6: GET_ID answers at most 20 bytes. */
		if (n == 7 || n - 7 > VIRTIO_BLK_ID_BYTES)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "--disk %s: serial '%.*s' must be 1 to %d characters", spec,
				       (int)(n - 7), opt + 7, VIRTIO_BLK_ID_BYTES);
		for (size_t i = 7; i < n; i++)
			if (opt[i] <= ' ' || opt[i] > '~')
				return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
					       "--disk %s: serial '%.*s' may only hold printable "
					       "characters without spaces",
					       spec, (int)(n - 7), opt + 7);
		memset(c->serial, 0, sizeof(c->serial));
		memcpy(c->serial, opt + 7, n - 7);
	} else if (n >= 7 && !memcmp(opt, "queues=", 7)) {
		if (n - 7 >= sizeof(num))
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "--disk %s: queues '%.*s' is not a number from 1 to %d",
				       spec, (int)(n - 7), opt + 7, VIRTIO_MAX_QUEUES);
		memcpy(num, opt + 7, n - 7);
		num[n - 7] = '\0';
		if (cv_parse_uint(num, 1, VIRTIO_MAX_QUEUES, &v))
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "--disk %s: queues '%s' is not a number from 1 to %d", spec,
				       num, VIRTIO_MAX_QUEUES);
		c->num_queues = (unsigned int)v;
	} else {
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--disk %s: unknown option '%.*s' (expected format=raw|qcow2, "
			       "readonly, serial=ID, direct, queues=N, bw=RATE, iops=N or their "
			       "-burst)",
			       spec, (int)n, opt);
	}
	return 0;
}

int virtio_blk_parse(const char *spec, struct virtio_blk_config *c, struct cv_error *e)
{
	const char *p = strchr(spec, ',');
	size_t n = p ? (size_t)(p - spec) : strlen(spec);
	int r;

	memset(c, 0, sizeof(*c));
	if (!n)
		return cv_fail(
			e, CV_EXIT_USAGE, -EINVAL,
			"--disk '%s': missing image path (expected PATH[,readonly][,serial=ID])",
			spec);
	if (n >= sizeof(c->path))
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--disk: image path longer than %zu bytes", sizeof(c->path) - 1);
	memcpy(c->path, spec, n);
	while (p) {
		const char *opt = p + 1;

		p = strchr(opt, ',');
		n = p ? (size_t)(p - opt) : strlen(opt);
		if (!n)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "--disk %s: empty option after ','", spec);
		if ((r = parse_opt(spec, opt, n, c, e)))
			return r;
	}
	return rate_check(virtio_blk_rate_keys, &c->rate, 1, "--disk", e);
}

static uint64_t blk_features(struct virtio_dev *d)
{
	struct blk *b = d->priv;
	uint64_t f = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_MQ);

	if (b->cfg.readonly)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	return f;
}

/* 5.2.4: struct virtio_blk_config, little endian. */
static void blk_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct blk *b = d->priv;
	uint8_t c[VIRTIO_BLK_CFG_SIZE] = { 0 };

	cv_put_le(c + VIRTIO_BLK_CFG_CAPACITY, b->capacity, 8);
	cv_put_le(c + VIRTIO_BLK_CFG_SEG_MAX, BLK_SEG_MAX, 4);
	cv_put_le(c + VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR_SIZE, 4);
	cv_put_le(c + VIRTIO_BLK_CFG_NUM_QUEUES, b->nq, 2);
	cv_put_le(c + VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, VIRTIO_BLK_MAX_DWZ_SECTORS, 4);
	cv_put_le(c + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, VIRTIO_BLK_MAX_DWZ_SEG, 4);
	cv_put_le(c + VIRTIO_BLK_CFG_DISCARD_ALIGN, 8, 4); /* a 4 KiB page per hole */
	cv_put_le(c + VIRTIO_BLK_CFG_MAX_WZ_SECTORS, VIRTIO_BLK_MAX_DWZ_SECTORS, 4);
	cv_put_le(c + VIRTIO_BLK_CFG_MAX_WZ_SEG, VIRTIO_BLK_MAX_DWZ_SEG, 4);
	c[VIRTIO_BLK_CFG_WZ_MAY_UNMAP] = 1;
	if (off > sizeof(c) || len > sizeof(c) - off)
		return;
	memcpy(data, c + off, len);
}

static void blk_notify(struct virtio_dev *d, unsigned int qi)
{
	struct blk *b = d->priv;

	if (qi >= b->nq)
		return;
	b->q[qi].kicked = true;
	blk_run(b);
}

/* The eventfd: io_uring completions, or a deferred kick. */
static void blk_event(void *opaque, int fd, uint32_t events)
{
	struct blk *b = opaque;
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));

	(void)n;
	(void)events;
	pthread_mutex_lock(&b->dev->lock);
	blk_run(b);
	pthread_mutex_unlock(&b->dev->lock);
}

static int blk_activate(struct virtio_dev *d)
{
	struct blk *b = d->priv;

	/* 5.2.6.2: with FLUSH offered but not negotiated, a completed write
	 * must already be stable: write through. */
	b->dsync = !(d->driver_features & (1ULL << VIRTIO_BLK_F_FLUSH));
	/* After a load the rings may hold requests nobody will kick for:
	 * look at every queue once, from the loop. */
	for (unsigned int i = 0; i < b->nq; i++)
		b->q[i].kicked = true;
	blk_io_poke(b);
	return 0;
}

/* 2.4.1: after a reset the device must not touch the old rings or
 * buffers, so wait for the I/O still pointing into them. */
static void blk_reset(struct virtio_dev *d)
{
	struct blk *b = d->priv;

	b->draining = true;
	blk_io_drain(b);
	b->draining = false;
	for (unsigned int i = 0; i < b->nq; i++)
		b->q[i].kicked = b->q[i].throttled = b->q[i].rate_wait = b->q[i].used = false;
	b->dsync = false;
}

/* cvisor set: new limits at once; the queues they held look again. */
static int blk_set_limits(struct virtio_dev *d, const char *what, const char *spec,
			  const char *changes, char **new_spec, struct cv_error *e)
{
	struct blk *b = d->priv;
	struct rate_limits l;
	int r;

	pthread_mutex_lock(&d->lock);
	rate_limiter_get(&b->rl, &l);
	r = rate_spec_change(virtio_blk_rate_keys, &l, 1, what, spec, changes, new_spec, e);
	if (!r) {
		rate_limiter_set(&b->rl, &l, cv_now_ns());
		for (unsigned int i = 0; i < b->nq; i++)
			b->q[i].kicked |= b->q[i].rate_wait;
		blk_io_poke(b);
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

static unsigned int blk_rate_status(struct virtio_dev *d, struct rate_status *out, unsigned int max)
{
	struct blk *b = d->priv;

	if (!max)
		return 0;
	pthread_mutex_lock(&d->lock);
	out->dir = "";
	rate_limiter_get(&b->rl, &out->lim);
	out->throttled = b->rl.throttled;
	pthread_mutex_unlock(&d->lock);
	return 1;
}

/* State: version, then what must match the image the state is loaded
 * against (capacity, readonly, queues, serial). Queues are in the common
 * part; nothing may be in flight (virtio_blk_quiesce). */
static int blk_save(struct virtio_dev *d, struct state_buf *out)
{
	struct blk *b = d->priv;

	if (blk_busy(b))
		return -EBUSY;
	state_put_u32(out, BLK_STATE_VERSION);
	state_put_u64(out, b->capacity);
	state_put_u8(out, b->cfg.readonly);
	state_put_u16(out, (uint16_t)b->nq);
	state_put_bytes(out, b->cfg.serial, VIRTIO_BLK_ID_BYTES);
	return out->err;
}

static int blk_load(struct virtio_dev *d, struct state_rd *in)
{
	struct blk *b = d->priv;
	uint32_t version = state_get_u32(in);
	uint64_t capacity = state_get_u64(in);
	uint8_t ro = state_get_u8(in);
	uint16_t nq = state_get_u16(in);
	char serial[VIRTIO_BLK_ID_BYTES];

	state_get_bytes(in, serial, sizeof(serial));
	if (in->err || version != BLK_STATE_VERSION || capacity != b->capacity ||
	    ro != b->cfg.readonly || nq != b->nq || memcmp(serial, b->cfg.serial, sizeof(serial)))
		return -EINVAL;
	return blk_busy(b) ? -EBUSY : 0;
}

/* The image's open(2) failure as one line with what to do about it. */
static int open_failed(const struct blk *b, int r, const char *why, struct cv_error *e)
{
	const char *path = b->cfg.path;

	if (r == -ENOENT)
		return cv_fail(e, CV_EXIT_USAGE, r,
			       "%s: no such file (create a raw image, e.g. truncate -s 1G %s)",
			       path, path);
	if (r == -EACCES || r == -EPERM)
		return cv_fail(e, CV_EXIT_USAGE, r, "%s: permission denied (%s)", path,
			       b->cfg.readonly ? "check the file's permissions"
					       : "fix the file's permissions or add ,readonly");
	if (r == -EROFS)
		return cv_fail(e, CV_EXIT_USAGE, r, "%s: read-only filesystem (add ,readonly)",
			       path);
	if (r == -EISDIR)
		return cv_fail(e, CV_EXIT_USAGE, r, "%s: is a directory, not a disk image", path);
	return cv_fail(e, CV_EXIT_USAGE, r, "%s: %s", path, why);
}

static int open_image(struct blk *b, struct cv_error *e)
{
	const char *path = b->cfg.path;
	int flags = b->cfg.readonly ? O_RDONLY : O_RDWR;
	char self[64];
	struct stat st;
	const char *why;
	uint64_t size;
	int r;

	/* Non-blocking and checked first: a FIFO would hang the open. */
	if ((r = cv_open_regular(path, flags, CV_OPEN_BLOCKDEV, &b->fd, &st, &why)))
		return open_failed(b, r, why, e);
	if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else if (ioctl(b->fd, BLKGETSIZE64, &size) < 0) {
		cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s: cannot read the block device's size: %s",
			path, strerror(errno));
		return -EIO;
	}
	if (b->cfg.format == VIRTIO_BLK_FMT_QCOW2 ||
	    (b->cfg.format == VIRTIO_BLK_FMT_AUTO && qcow2_probe(b->fd))) {
		b->fd_buf = b->fd;
		if (b->cfg.direct)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "%s: ,direct is not supported on a qcow2 image (drop it)",
				       path);
		/* A probed image follows no backing file: the guest of a raw
		 * disk could have written the header (QEMU's CVE-2008-2004). */
		if ((r = qcow2_open(
			     &b->qcow2, b->fd, path,
			     (b->cfg.readonly ? QCOW2_READONLY : 0) |
				     (b->cfg.format == VIRTIO_BLK_FMT_AUTO ? QCOW2_NO_BACKING : 0),
			     e)))
			return r;
		size = qcow2_size(b->qcow2);
		if (size % VIRTIO_BLK_SECTOR_SIZE)
			cv_warn("%s: virtual size is not a multiple of 512; the last %u bytes are "
				"not visible",
				path, (unsigned int)(size % VIRTIO_BLK_SECTOR_SIZE));
		b->capacity = size / VIRTIO_BLK_SECTOR_SIZE;
		return 0;
	}
	if (size % VIRTIO_BLK_SECTOR_SIZE)
		cv_warn("%s: size is not a multiple of 512; the last %u bytes are not visible",
			path, (unsigned int)(size % VIRTIO_BLK_SECTOR_SIZE));
	b->capacity = size / VIRTIO_BLK_SECTOR_SIZE;
	b->fd_buf = b->fd;
	if (!b->cfg.direct)
		return 0;
	/* ,direct: the same file again (not whatever the name is now), for
	 * the aligned requests; the buffered fd serves the rest. */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", b->fd);
	b->fd = open(self, flags | O_DIRECT | O_CLOEXEC);
	if (b->fd < 0) {
		r = -errno;
		b->fd = b->fd_buf;
		b->fd_buf = -1;
		if (r == -EINVAL)
			return cv_fail(
				e, CV_EXIT_USAGE, r,
				"%s: the filesystem does not support O_DIRECT (drop ,direct)",
				path);
		return cv_fail(e, CV_EXIT_USAGE, r, "%s: cannot open: %s", path, strerror(-r));
	}
	return 0;
}

static void blk_free(struct blk *b)
{
	qcow2_close(b->qcow2);
	if (b->fd_buf >= 0 && b->fd_buf != b->fd)
		close(b->fd_buf);
	if (b->fd >= 0)
		close(b->fd);
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		free(b->q[i].reqs);
	free(b->written);
	free(b);
}

int virtio_blk_create(struct virtio_dev *d, const struct virtio_blk_config *c,
		      const struct guest_mem *mem, struct evloop *loop,
		      _Atomic uint64_t *read_bytes, _Atomic uint64_t *write_bytes,
		      struct cv_error *e)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	const char *base = strrchr(c->path, '/');
	char label[sizeof(d->label)];
	struct blk *b;
	int r;

	d->priv = NULL;
	if (!(b = calloc(1, sizeof(*b))))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "%s: out of memory", c->path);
	b->fd = b->fd_buf = b->efd = b->rate_timer.fd = -1;
	b->cfg = *c;
	/* GET_ID and the saved state send all 20 bytes: zeros after the ID. */
	memset(b->cfg.serial, 0, sizeof(b->cfg.serial));
	memcpy(b->cfg.serial, c->serial, strnlen(c->serial, VIRTIO_BLK_ID_BYTES));
	b->loop = loop;
	b->read_bytes = read_bytes;
	b->write_bytes = write_bytes;
	b->nq = c->num_queues ? c->num_queues : (cpus >= 2 ? 2 : 1);
	if (b->nq > VIRTIO_MAX_QUEUES)
		b->nq = VIRTIO_MAX_QUEUES;
	if ((r = open_image(b, e)))
		goto fail;
	for (unsigned int i = 0; i < b->nq; i++) {
		struct blk_queue *q = &b->q[i];

		if (!(q->reqs = calloc(VIRTIO_BLK_INFLIGHT, sizeof(*q->reqs)))) {
			r = cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "%s: out of memory", c->path);
			goto fail;
		}
		for (unsigned int s = 0; s < VIRTIO_BLK_INFLIGHT; s++) {
			q->reqs[s].queue = (uint16_t)i;
			q->reqs[s].slot = (uint16_t)s;
			q->free[s] = (uint16_t)(VIRTIO_BLK_INFLIGHT - 1 - s);
		}
		q->nfree = VIRTIO_BLK_INFLIGHT;
	}
	b->ops = (struct virtio_dev_ops){
		.name = "virtio-blk",
		.device_id = VIRTIO_ID_BLOCK,
		.num_queues = b->nq,
		.queue_max = VIRTIO_BLK_QUEUE_SIZE,
		.config_len = VIRTIO_BLK_CFG_SIZE,
		.features = blk_features,
		.config_read = blk_config_read,
		.activate = blk_activate,
		.notify = blk_notify,
		.reset = blk_reset,
		.save = blk_save,
		.load = blk_load,
		.quiesce = virtio_blk_quiesce,
		.resume = virtio_blk_resume,
		.destroy = virtio_blk_destroy,
		.set_limits = blk_set_limits,
		.rate_status = blk_rate_status,
	};
	snprintf(label, sizeof(label), "virtio-blk %.20s", base ? base + 1 : c->path);
	virtio_dev_init(d, &b->ops, b, mem, label);
	b->dev = d;
	if ((r = blk_io_init(b))) {
		cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s: cannot set up disk I/O: %s", c->path,
			strerror(-r));
		goto fail;
	}
	if ((r = evloop_add(loop, b->efd, EPOLLIN, blk_event, b))) {
		cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s: cannot watch disk I/O completions: %s",
			c->path, strerror(-r));
		blk_io_exit(b);
		goto fail;
	}
	rate_limiter_set(&b->rl, &c->rate, cv_now_ns());
	if ((r = rate_timer_init(&b->rate_timer, loop, blk_rate_event, b))) {
		cv_fail(e, CV_EXIT_FAIL, r, "%s: cannot create the rate limit's timer: %s", c->path,
			strerror(-r));
		evloop_del(loop, b->efd);
		blk_io_exit(b);
		goto fail;
	}
	return 0;
fail:
	d->priv = NULL;
	blk_free(b);
	return r;
}

void virtio_blk_destroy(struct virtio_dev *d)
{
	struct blk *b = d->priv;

	if (!b)
		return;
	pthread_mutex_lock(&d->lock);
	b->draining = true;
	blk_io_drain(b);
	pthread_mutex_unlock(&d->lock);
	rate_timer_destroy(&b->rate_timer);
	evloop_del(b->loop, b->efd);
	blk_io_exit(b);
	d->priv = NULL;
	blk_free(b);
}

int virtio_blk_quiesce(struct virtio_dev *d)
{
	struct blk *b = d->priv;
	int r;

	pthread_mutex_lock(&d->lock);
	b->quiesced = true;
	blk_io_drain(b);
	r = blk_busy(b) ? -EIO : 0;
	for (unsigned int i = 0; i < b->nq; i++) {
		if (b->q[i].used) {
			b->q[i].used = false;
			virtio_dev_used(d, i);
		}
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

void virtio_blk_resume(struct virtio_dev *d)
{
	struct blk *b = d->priv;

	pthread_mutex_lock(&d->lock);
	b->quiesced = false;
	for (unsigned int i = 0; i < b->nq; i++)
		b->q[i].kicked = true;
	blk_io_poke(b);
	pthread_mutex_unlock(&d->lock);
}

int virtio_blk_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
			     const struct virtio_env *env, struct cv_error *e)
{
	struct virtio_blk_config c;
	int r;

	(void)index;
	if ((r = virtio_blk_parse(spec, &c, e)))
		return r;
	return virtio_blk_create(d, &c, env->mem, env->loop, &env->stats->blk_read_bytes,
				 &env->stats->blk_write_bytes, e);
}

void virtio_blk_get_stats(struct virtio_dev *d, struct virtio_blk_stats *s)
{
	struct blk *b = d->priv;

	pthread_mutex_lock(&d->lock);
	*s = b->stats;
	pthread_mutex_unlock(&d->lock);
}

unsigned int virtio_blk_inflight(struct virtio_dev *d)
{
	struct blk *b = d->priv;
	unsigned int n;

	pthread_mutex_lock(&d->lock);
	n = blk_busy(b);
	pthread_mutex_unlock(&d->lock);
	return n;
}

uint64_t virtio_blk_capacity(struct virtio_dev *d)
{
	return ((struct blk *)d->priv)->capacity;
}

void blk_track_write(struct blk *b, uint64_t off, uint64_t len)
{
	uint64_t first, last;

	if (!b->written || !len || off / VIRTIO_BLK_TRACK_BLOCK >= b->nblocks)
		return;
	first = off / VIRTIO_BLK_TRACK_BLOCK;
	last = (off + len - 1) / VIRTIO_BLK_TRACK_BLOCK;
	if (last >= b->nblocks)
		last = b->nblocks - 1;
	for (uint64_t i = first; i <= last; i++)
		b->written[i / 64] |= 1ULL << (i % 64);
}

int virtio_blk_track_start(struct virtio_dev *d)
{
	struct blk *b = d->priv;
	uint64_t n = (b->capacity * VIRTIO_BLK_SECTOR_SIZE + VIRTIO_BLK_TRACK_BLOCK - 1) /
		     VIRTIO_BLK_TRACK_BLOCK;
	uint64_t *bits = calloc((n + 63) / 64 ? (n + 63) / 64 : 1, sizeof(uint64_t));

	if (!bits)
		return -ENOMEM;
	pthread_mutex_lock(&d->lock);
	free(b->written);
	b->written = bits;
	b->nblocks = n;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void virtio_blk_track_take(struct virtio_dev *d, uint64_t *out)
{
	struct blk *b = d->priv;

	pthread_mutex_lock(&d->lock);
	for (uint64_t w = 0; b->written && w < (b->nblocks + 63) / 64; w++) {
		out[w] |= b->written[w];
		b->written[w] = 0;
	}
	pthread_mutex_unlock(&d->lock);
}

void virtio_blk_track_stop(struct virtio_dev *d)
{
	struct blk *b = d->priv;

	pthread_mutex_lock(&d->lock);
	free(b->written);
	b->written = NULL;
	b->nblocks = 0;
	pthread_mutex_unlock(&d->lock);
}

const char *virtio_blk_path(struct virtio_dev *d)
{
	return ((struct blk *)d->priv)->cfg.path;
}

bool virtio_blk_is_qcow2(struct virtio_dev *d)
{
	return ((struct blk *)d->priv)->qcow2 != NULL;
}

int virtio_blk_image_fd(struct virtio_dev *d)
{
	return ((struct blk *)d->priv)->fd_buf;
}
