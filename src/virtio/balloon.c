/* balloon.c - virtio-balloon (virtio 1.2 section 5.5): inflate/deflate,
 * statistics and free page reporting over a private anonymous guest RAM
 * mapping, from which discarded pages are dropped with MADV_DONTNEED. */
#include "cvisor/virtio_balloon.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cvisor/dirty.h"

#define BALLOON_QUEUE_MAX 256
#define BALLOON_NUM_QUEUES 4 /* inflate, deflate, stats, reporting */
#define BALLOON_CONFIG_LEN 8 /* num_pages, actual (5.5.4) */
#define BALLOON_STATE_VERSION 1
#define BALLOON_NO_QUEUE 0xffu
/* PFNs taken from one inflate/deflate buffer: Linux sends at most 256
 * (VIRTIO_BALLOON_ARRAY_PFNS_MAX); the rest of a larger one is ignored so
 * that one request cannot keep the main thread busy. */
#define BALLOON_MAX_PFNS 4096u
#define STAT_SIZE 10 /* le16 tag, le64 val, packed (5.5.6.3) */

struct balloon {
	const struct guest_mem *mem;
	struct evloop *loop;
	int timer_fd;
	uint32_t num_pages, actual;
	unsigned int statsq, reportq; /* queue indices for the negotiated features */
	bool stats_held;	      /* the device holds the guest's stats buffer */
	struct virtq_elem stats_elem;
	struct virtio_balloon_stats st;
	bool warned_pfn, warned_madvise, warned_stats, warned_pfn_count;
};

static const uint64_t balloon_offered = (1ULL << VIRTIO_BALLOON_F_STATS_VQ) |
					(1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
					(1ULL << VIRTIO_BALLOON_F_PAGE_REPORTING);

static uint64_t balloon_features(struct virtio_dev *d)
{
	(void)d;
	return balloon_offered;
}

/* 5.5.2: inflateq 0, deflateq 1, then statsq if STATS_VQ, free_page_vq if
 * FREE_PAGE_HINT, reporting_vq if PAGE_REPORTING: each present only if its
 * feature was negotiated, so the indices shift. */
static void balloon_map_queues(struct balloon *b, uint64_t f)
{
	unsigned int n = 2;

	b->statsq = (f & (1ULL << VIRTIO_BALLOON_F_STATS_VQ)) ? n++ : BALLOON_NO_QUEUE;
	if (f & (1ULL << VIRTIO_BALLOON_F_FREE_PAGE_HINT))
		n++;
	b->reportq = (f & (1ULL << VIRTIO_BALLOON_F_PAGE_REPORTING)) ? n : BALLOON_NO_QUEUE;
}

static void balloon_discard(struct virtio_dev *d, struct balloon *b, void *hva, uint64_t len)
{
	if (len && madvise(hva, len, MADV_DONTNEED) && !b->warned_madvise) {
		b->warned_madvise = true;
		cv_warn("%s: madvise(MADV_DONTNEED) failed on guest RAM: %s", d->label,
			strerror(errno));
	}
	/* The pages now read as zeros: a migration must send them again. */
	dirty_note(hva, len);
}

/* 5.5.6: each readable le32 is a guest PFN in 4 KiB units. Inflate drops
 * the pages, batching PFNs that are contiguous in host memory. */
static void balloon_pfns(struct virtio_dev *d, struct balloon *b, const struct virtq_elem *e,
			 bool inflate)
{
	uint64_t count = e->out_len / 4, run_len = 0;
	uint8_t *run = NULL;

	if (count > BALLOON_MAX_PFNS) {
		if (!b->warned_pfn_count)
			cv_warn("%s: %llu PFNs in one buffer, using the first %u", d->label,
				(unsigned long long)count, BALLOON_MAX_PFNS);
		b->warned_pfn_count = true;
		count = BALLOON_MAX_PFNS;
	}
	for (uint64_t i = 0; i < count; i++) {
		uint32_t pfn;
		uint8_t *hva;

		if (virtq_elem_read(e, i * 4, &pfn, 4) != 4)
			break;
		pfn = le32toh(pfn);
		if (!inflate) {
			b->st.deflated_pages++;
			continue;
		}
		hva = guest_mem_ptr(b->mem, (uint64_t)pfn * VIRTIO_BALLOON_PAGE_SIZE,
				    VIRTIO_BALLOON_PAGE_SIZE);
		if (!hva) {
			if (!b->warned_pfn)
				cv_warn("%s: inflate PFN %#x is outside guest RAM, ignored",
					d->label, pfn);
			b->warned_pfn = true;
			b->st.invalid_pfns++;
			continue;
		}
		b->st.inflated_pages++;
		if (run && hva == run + run_len) {
			run_len += VIRTIO_BALLOON_PAGE_SIZE;
			continue;
		}
		if (run)
			balloon_discard(d, b, run, run_len);
		run = hva;
		run_len = VIRTIO_BALLOON_PAGE_SIZE;
	}
	if (run)
		balloon_discard(d, b, run, run_len);
}

/* 5.5.6.3: a buffer of tag/value pairs; unknown tags are ignored. */
static void balloon_parse_stats(struct virtio_dev *d, struct balloon *b, const struct virtq_elem *e)
{
	uint8_t buf[VIRTIO_BALLOON_MAX_STATS * STAT_SIZE];
	size_t n = virtq_elem_read(e, 0, buf, sizeof(buf)) / STAT_SIZE;

	if (e->out_len > sizeof(buf) && !b->warned_stats) {
		b->warned_stats = true;
		cv_warn("%s: statistics buffer of %llu bytes, using the first %u entries", d->label,
			(unsigned long long)e->out_len, VIRTIO_BALLOON_MAX_STATS);
	}
	b->st.valid = 0;
	for (size_t i = 0; i < n; i++) {
		uint16_t tag;
		uint64_t val;

		memcpy(&tag, buf + i * STAT_SIZE, 2);
		memcpy(&val, buf + i * STAT_SIZE + 2, 8);
		tag = le16toh(tag);
		if (tag < VIRTIO_BALLOON_S_NR) {
			b->st.values[tag] = le64toh(val);
			b->st.valid |= 1u << tag;
		}
	}
	b->st.updated_ns = cv_now_ns();
}

/* Is [p, p+len) inside guest RAM? The virtqueue core already checked the
 * descriptor; this keeps madvise honest whatever it was handed. */
static bool balloon_in_ram(const struct guest_mem *mem, const uint8_t *p, uint64_t len)
{
	for (unsigned int i = 0; i < mem->nr; i++) {
		const struct guest_mem_region *r = &mem->regions[i];

		if (p >= r->hva && len <= r->size && (uint64_t)(p - r->hva) <= r->size - len)
			return true;
	}
	return false;
}

/* 5.5.6.6: each buffer of a reporting request is a free guest range; only
 * the whole 4 KiB pages inside it are dropped. */
static void balloon_report(struct virtio_dev *d, struct balloon *b, const struct virtq_elem *e)
{
	for (unsigned int i = 0; i < e->out_num + e->in_num; i++) {
		uintptr_t start = (uintptr_t)e->iov[i].iov_base;
		uintptr_t end = start + e->iov[i].iov_len;

		if (!balloon_in_ram(b->mem, e->iov[i].iov_base, e->iov[i].iov_len))
			continue;
		start = (start + VIRTIO_BALLOON_PAGE_SIZE - 1) &
			~(uintptr_t)(VIRTIO_BALLOON_PAGE_SIZE - 1);
		end &= ~(uintptr_t)(VIRTIO_BALLOON_PAGE_SIZE - 1);
		if (end <= start)
			continue;
		balloon_discard(d, b, (void *)start, end - start);
		b->st.reported_pages += (end - start) / VIRTIO_BALLOON_PAGE_SIZE;
	}
}

static void balloon_notify(struct virtio_dev *d, unsigned int qi)
{
	struct balloon *b = d->priv;
	struct virtq *q = &d->vqs[qi];
	struct virtq_elem *e = malloc(sizeof(*e));
	unsigned int budget = q->size; /* then yield to the event loop */
	bool pushed = false;
	int r = 0;

	if (!e)
		return;
	do {
		while (budget && (r = virtq_pop(q, e)) == 1) {
			budget--;
			if (qi == b->statsq) {
				/* Keep the buffer: returning it is how the device
				 * asks for the next statistics. */
				balloon_parse_stats(d, b, e);
				if (b->stats_held) {
					virtq_push(q, &b->stats_elem, 0);
					pushed = true;
				}
				b->stats_elem = *e;
				b->stats_held = true;
				continue;
			}
			if (qi == 0 || qi == 1)
				balloon_pfns(d, b, e, qi == 0);
			else if (qi == b->reportq)
				balloon_report(d, b, e);
			virtq_push(q, e, 0);
			pushed = true;
		}
		if (r < 0) {
			virtio_dev_fault(d, "malformed request on a balloon queue");
			break;
		}
		if (!budget) {
			virtio_dev_rekick(d, qi);
			break;
		}
	} while (virtq_enable_notify(q, true));
	free(e);
	if (pushed)
		virtio_dev_used(d, qi);
}

static int balloon_activate(struct virtio_dev *d)
{
	struct balloon *b = d->priv;

	balloon_map_queues(b, d->driver_features);
	return 0;
}

static void balloon_reset(struct virtio_dev *d)
{
	struct balloon *b = d->priv;

	/* The target is the host's and survives; the guest starts over. */
	b->stats_held = false;
	b->actual = 0;
	balloon_map_queues(b, 0);
}

static void balloon_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct balloon *b = d->priv;
	uint32_t cfg[2] = { htole32(b->num_pages), htole32(b->actual) };

	memcpy(data, (uint8_t *)cfg + off, len);
}

/* 5.5.6: the driver writes only `actual`; num_pages is the device's. */
static void balloon_config_write(struct virtio_dev *d, uint32_t off, const uint8_t *data,
				 uint32_t len)
{
	struct balloon *b = d->priv;
	uint32_t actual = htole32(b->actual);

	for (uint32_t i = 0; i < len; i++)
		if (off + i >= 4)
			((uint8_t *)&actual)[off + i - 4] = data[i];
	b->actual = le32toh(actual);
}

static int balloon_save(struct virtio_dev *d, struct state_buf *out)
{
	struct balloon *b = d->priv;

	state_put_u32(out, BALLOON_STATE_VERSION);
	state_put_u32(out, b->num_pages);
	state_put_u32(out, b->actual);
	state_put_u8(out, b->stats_held);
	state_put_u16(out, b->stats_held ? b->stats_elem.head : 0);
	state_put_u64(out, b->st.inflated_pages);
	state_put_u64(out, b->st.deflated_pages);
	state_put_u64(out, b->st.reported_pages);
	state_put_u64(out, b->st.invalid_pfns);
	state_put_u32(out, b->st.valid);
	for (unsigned int i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		state_put_u64(out, b->st.values[i]);
	return out->err;
}

static int balloon_load(struct virtio_dev *d, struct state_rd *in)
{
	struct balloon *b = d->priv;
	struct virtio_balloon_stats st = { 0 };
	uint32_t version = state_get_u32(in), num_pages = state_get_u32(in);
	uint32_t actual = state_get_u32(in);
	uint8_t held = state_get_u8(in);
	uint16_t head = state_get_u16(in);
	unsigned int statsq;

	st.inflated_pages = state_get_u64(in);
	st.deflated_pages = state_get_u64(in);
	st.reported_pages = state_get_u64(in);
	st.invalid_pfns = state_get_u64(in);
	st.valid = state_get_u32(in);
	for (unsigned int i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		st.values[i] = state_get_u64(in);
	balloon_map_queues(b, d->driver_features);
	statsq = b->statsq;
	if (in->err || version != BALLOON_STATE_VERSION ||
	    num_pages > b->mem->ram_size / VIRTIO_BALLOON_PAGE_SIZE || held > 1 ||
	    (held && (statsq == BALLOON_NO_QUEUE || !d->vqs[statsq].ready ||
		      head >= d->vqs[statsq].size)) ||
	    (!held && head) || (st.valid >> VIRTIO_BALLOON_S_NR))
		return -EINVAL;
	b->num_pages = num_pages;
	b->actual = actual;
	b->stats_held = held;
	memset(&b->stats_elem, 0, sizeof(b->stats_elem));
	b->stats_elem.head = head;
	st.updated_ns = st.valid ? cv_now_ns() : 0;
	b->st = st;
	return 0;
}

static const struct virtio_dev_ops balloon_ops = {
	.name = "virtio-balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.num_queues = BALLOON_NUM_QUEUES,
	.queue_max = BALLOON_QUEUE_MAX,
	.config_len = BALLOON_CONFIG_LEN,
	.features = balloon_features,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.activate = balloon_activate,
	.notify = balloon_notify,
	.reset = balloon_reset,
	.save = balloon_save,
	.load = balloon_load,
	.destroy = virtio_balloon_destroy,
};

static int balloon_push_stats(struct virtio_dev *d)
{
	struct balloon *b = d->priv;
	int r = -EAGAIN;

	pthread_mutex_lock(&d->lock);
	if (d->active && b->stats_held && b->statsq != BALLOON_NO_QUEUE) {
		virtq_push(&d->vqs[b->statsq], &b->stats_elem, 0);
		b->stats_held = false;
		virtio_dev_used(d, b->statsq);
		r = 0;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

int virtio_balloon_request_stats(struct virtio_dev *d)
{
	return balloon_push_stats(d);
}

static void balloon_timer(void *opaque, int fd, uint32_t events)
{
	uint64_t ticks;

	(void)events;
	if (read(fd, &ticks, sizeof(ticks)) < 0)
		return;
	balloon_push_stats(opaque);
}

static int balloon_pages(const struct guest_mem *mem, uint64_t bytes, uint32_t *pages)
{
	uint64_t p = bytes / VIRTIO_BALLOON_PAGE_SIZE;

	if (p > mem->ram_size / VIRTIO_BALLOON_PAGE_SIZE || p > UINT32_MAX)
		return -ERANGE;
	*pages = (uint32_t)p;
	return 0;
}

int virtio_balloon_create(struct virtio_dev *d, const struct guest_mem *mem, struct evloop *loop,
			  uint64_t initial_target_bytes)
{
	struct balloon *b;
	uint32_t pages;
	int r;

	if ((r = balloon_pages(mem, initial_target_bytes, &pages)))
		return r;
	if (!(b = calloc(1, sizeof(*b))))
		return -ENOMEM;
	b->mem = mem;
	b->loop = loop;
	b->num_pages = pages;
	b->timer_fd = -1;
	balloon_map_queues(b, 0);
	virtio_dev_init(d, &balloon_ops, b, mem, "virtio-balloon");
	if (loop) {
		uint64_t ns = VIRTIO_BALLOON_STATS_INTERVAL_S * 1000000000ULL;

		r = evloop_add_timer(loop, ns, ns, balloon_timer, d);
		if (r < 0) {
			pthread_mutex_destroy(&d->lock);
			free(b);
			return r;
		}
		b->timer_fd = r;
	}
	return 0;
}

int virtio_balloon_check(const char *what, const char *spec, struct cv_error *e)
{
	uint64_t bytes;

	if (cv_parse_size(spec, 1, &bytes))
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s %s: not a size (try 128M)", what,
			       spec);
	return 0;
}

int virtio_balloon_device_create(struct virtio_dev *d, const char *spec, unsigned int index,
				 const struct virtio_env *env, struct cv_error *e)
{
	uint64_t bytes;
	int r;

	(void)index;
	if ((r = virtio_balloon_check("--balloon", spec, e)))
		return r;
	if ((r = cv_parse_size(spec, 1, &bytes)) ||
	    (r = virtio_balloon_create(d, env->mem, env->loop, bytes)))
		return cv_fail(e, r == -ERANGE ? CV_EXIT_USAGE : CV_EXIT_FAIL, r, "--balloon: %s",
			       r == -ERANGE ? "larger than guest memory" : strerror(-r));
	return 0;
}

void virtio_balloon_destroy(struct virtio_dev *d)
{
	struct balloon *b = d->priv;

	if (!b)
		return;
	if (b->timer_fd >= 0) {
		evloop_del(b->loop, b->timer_fd);
		close(b->timer_fd);
	}
	pthread_mutex_destroy(&d->lock);
	free(b);
	d->priv = NULL;
}

int virtio_balloon_set_target(struct virtio_dev *d, uint64_t bytes)
{
	struct balloon *b = d->priv;
	uint32_t pages;
	int r = balloon_pages(b->mem, bytes, &pages);

	if (r)
		return r;
	pthread_mutex_lock(&d->lock);
	if (pages != b->num_pages) {
		b->num_pages = pages;
		/* No config interrupt before DRIVER_OK: the driver reads
		 * num_pages when it starts (5.5.6). */
		if (d->status & VIRTIO_STATUS_DRIVER_OK)
			virtio_dev_config_changed(d);
		else
			d->config_generation++;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

int virtio_balloon_get_stats(struct virtio_dev *d, struct virtio_balloon_stats *out)
{
	struct balloon *b = d->priv;

	pthread_mutex_lock(&d->lock);
	*out = b->st;
	out->target_pages = b->num_pages;
	out->actual_pages = b->actual;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

int virtio_balloon_set_stats_interval(struct virtio_dev *d, unsigned int seconds)
{
	struct balloon *b = d->priv;
	uint64_t ns = seconds * 1000000000ULL;

	if (b->timer_fd < 0)
		return -EINVAL;
	return evloop_timer_arm(b->timer_fd, ns, ns);
}
