/* virtq.c - split virtqueue, device side (virtio 1.2 section 2.7).
 *
 * The guest owns the rings and may rewrite them at any moment, so every
 * field is read once (an atomic or volatile load into a local), validated,
 * and only the local copy is used. Ring pointers are re-derived through
 * guest_mem_ptr on every call from the queue registers, so a queue that
 * never passed virtq_validate is never touched. The element accessors at
 * the end are how devices reach the buffers of a popped request. */
#include "cvisor/virtq.h"

#include <errno.h>
#include <string.h>

#include "cvisor/dirty.h"

/* virtio 1.x rings are little-endian (virtio 1.2 2.7 "le16/le32/le64");
 * on a big-endian host every ring access below would need a byte swap. */
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ring accesses assume a LE host");

#define VIRTQ_STATE_VERSION 1

/* Ring layout, virtio 1.2 2.7: avail {le16 flags, idx, ring[size],
 * used_event}; used {le16 flags, idx, {le32 id, len}[size], avail_event}. */
#define RING_FLAGS 0
#define RING_IDX 2
#define RING_ENTRIES 4

/* A descriptor as it lies in guest memory. Packed so that a read of an
 * indirect table the driver placed at any address stays defined. */
struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
} __attribute__((packed));
static_assert(sizeof(struct vdesc) == 16, "virtio 1.2 2.7.5");

struct vring {
	uint8_t *desc, *avail, *used;
};

static uint16_t ld16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_RELAXED);
}

static void st16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELAXED);
}

static void st32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)(void *)p, v, __ATOMIC_RELAXED);
}

static uint16_t avail_idx_acquire(const struct vring *r)
{
	/* Acquire: the ring entry and descriptors read after this must not be
	 * read before the index that published them (virtio 1.2 2.7.13.3.1). */
	return __atomic_load_n((const uint16_t *)(const void *)(r->avail + RING_IDX),
			       __ATOMIC_ACQUIRE);
}

/* Translate the rings; fails unless the queue passes every check of
 * virtq_validate. Cheap (three range checks), so done on every call. */
static int vring_map(const struct virtq *q, struct vring *r)
{
	uint64_t n = q->size;

	if (!q->mem || q->max_size > VIRTQ_MAX_SIZE || !n || n > q->max_size || (n & (n - 1)))
		return -EINVAL;
	/* Alignment from the table in virtio 1.2 2.7. */
	if (q->desc_gpa % 16 || q->avail_gpa % 2 || q->used_gpa % 4)
		return -EINVAL;
	r->desc = guest_mem_ptr(q->mem, q->desc_gpa, 16 * n);
	r->avail = guest_mem_ptr(q->mem, q->avail_gpa, 6 + 2 * n);
	r->used = guest_mem_ptr(q->mem, q->used_gpa, 6 + 8 * n);
	if (!r->desc || !r->avail || !r->used)
		return -EINVAL;
	return 0;
}

int virtq_validate(const struct virtq *q)
{
	struct vring r;

	return vring_map(q, &r);
}

void virtq_reset(struct virtq *q)
{
	const struct guest_mem *mem = q->mem;
	const _Atomic bool *dma_off = q->dma_off;
	uint16_t max_size = q->max_size;

	memset(q, 0, sizeof(*q));
	q->mem = mem;
	q->dma_off = dma_off;
	q->max_size = max_size;
	q->size = max_size;
	q->msix_vector = VIRTQ_MSI_NO_VECTOR;
}

void virtq_init(struct virtq *q, const struct guest_mem *mem, uint16_t max_size)
{
	q->mem = mem;
	q->dma_off = NULL;
	q->max_size = max_size;
	virtq_reset(q);
}

static bool dma_blocked(const struct virtq *q)
{
	return q->dma_off && atomic_load_explicit(q->dma_off, memory_order_acquire);
}

static void desc_read(const uint8_t *p, struct vdesc *d)
{
	const volatile struct vdesc *v = (const volatile void *)p;

	d->addr = v->addr;
	d->len = v->len;
	d->flags = v->flags;
	d->next = v->next;
}

/* Append one buffer to the element. Readable buffers all precede writable
 * ones (checked by the caller), so the iov array stays out-then-in. */
static int elem_add(const struct virtq *q, struct virtq_elem *e, const struct vdesc *d)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	uint64_t *total = write ? &e->in_len : &e->out_len;
	unsigned int i = e->out_num + e->in_num;
	void *p;

	/* A zero-length buffer carries nothing; skip it without translating
	 * its address (the spec does not forbid one). */
	if (!d->len)
		return 0;
	if (i >= VIRTQ_MAX_IOV)
		return -EINVAL;
	/* The used ring's len is le32, so no direction may exceed 4 GiB - 1. */
	if (*total + d->len > UINT32_MAX)
		return -EINVAL;
	p = guest_mem_ptr(q->mem, d->addr, d->len);
	if (!p)
		return -EINVAL;
	e->iov[i].iov_base = p;
	e->iov[i].iov_len = d->len;
	*total += d->len;
	if (write)
		e->in_num++;
	else
		e->out_num++;
	return 0;
}

/* Walk the chain from `head`. The direct part may hold at most size
 * descriptors and an indirect table at most its own length, so a loop in
 * either ends (virtio 1.2 2.7.5.2: no chain longer than the queue size). */
static int chain_walk(const struct virtq *q, const struct vring *r, uint16_t head,
		      struct virtq_elem *e)
{
	const uint8_t *table = r->desc;
	unsigned int n = q->size, ttl = q->size, i = head;
	bool in_indirect = false, seen_write = false;
	struct vdesc d;
	int err;

	for (;;) {
		if (!ttl--)
			return -EINVAL;
		desc_read(table + 16 * (size_t)i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* 2.7.5.3.1: only if negotiated, never inside an
			 * indirect table, never together with NEXT. The table
			 * ends the chain (direct descriptors may precede it,
			 * as Linux vhost accepts); its own WRITE flag is
			 * ignored (2.7.5.3.2). */
			if (!q->indirect || in_indirect || (d.flags & VIRTQ_DESC_F_NEXT))
				return -EINVAL;
			if (!d.len || d.len % 16 || d.len / 16 > VIRTQ_MAX_SIZE)
				return -EINVAL;
			table = guest_mem_ptr(q->mem, d.addr, d.len);
			if (!table)
				return -EINVAL;
			in_indirect = true;
			n = ttl = d.len / 16;
			i = 0;
			continue;
		}
		/* 2.7.4.2: device-writable descriptors come after every
		 * device-readable one; the rule is per descriptor, so an
		 * empty readable one after a writable one is malformed too. */
		if (d.flags & VIRTQ_DESC_F_WRITE)
			seen_write = true;
		else if (seen_write)
			return -EINVAL;
		err = elem_add(q, e, &d);
		if (err)
			return err;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= n)
			return -EINVAL;
		i = d.next;
	}
}

static void elem_clear(struct virtq_elem *e, uint16_t head)
{
	e->head = head;
	e->out_num = e->in_num = 0;
	e->out_len = e->in_len = 0;
}

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
	struct vring r;
	uint16_t idx, pending, head;
	int err;

	elem_clear(e, VIRTQ_HEAD_NONE);
	if (!q->ready || dma_blocked(q))
		return 0;
	if (vring_map(q, &r))
		return -EINVAL;
	idx = avail_idx_acquire(&r);
	pending = (uint16_t)(idx - q->last_avail);
	if (!pending)
		return 0;
	/* 2.7.13.3: the ring holds size entries, so a driver can never be
	 * more than size ahead; a bigger jump is a broken queue. */
	if (pending > q->size)
		return -EINVAL;
	head = ld16(r.avail + RING_ENTRIES + 2 * (q->last_avail & (q->size - 1)));
	q->last_avail++;
	if (head >= q->size)
		return -EINVAL;
	e->head = head;
	err = chain_walk(q, &r, head, e);
	if (err) {
		elem_clear(e, head);
		return err;
	}
	return 1;
}

void virtq_unpop(struct virtq *q)
{
	q->last_avail--;
}

void virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t len)
{
	struct vring r;
	uint8_t *el;
	uint16_t old = q->used_idx, new = (uint16_t)(old + 1);

	if (!q->ready || vring_map(q, &r) || e->head >= q->size)
		return;
	/* 2.7.8: len is at most what the writable buffers can hold. */
	if (len > e->in_len)
		len = (uint32_t)e->in_len;
	el = r.used + RING_ENTRIES + 8 * (size_t)(old & (q->size - 1));
	st32(el, e->head);
	st32(el + 4, len);
	/* Release: the element is visible before the index (2.7.8). */
	__atomic_store_n((uint16_t *)(void *)(r.used + RING_IDX), new, __ATOMIC_RELEASE);
	q->used_idx = new;
	/* Live migration: KVM does not see our stores. The buffers the device
	 * filled (up to len) and the used ring go to the target again. */
	virtq_elem_mark_dirty(e, 0, len);
	dirty_note(el, 8);
	dirty_note(r.used + RING_IDX, 2);
	/* If used_idx laps signalled_used (2^15 pushes without an interrupt),
	 * vring_need_event can no longer tell; force the next interrupt
	 * (as QEMU's virtqueue_flush does). */
	if ((int16_t)(new - q->signalled_used) <= 0)
		q->signalled_used_valid = false;
}

/* Element accessors ------------------------------------------------------ */

/* Bytes [off, off + len) of one part of an element, piece by piece. Only
 * subtractions: a guest's offset or length cannot wrap anything. */
struct elem_cursor {
	const struct iovec *iov;
	unsigned int n, i;
	uint64_t off, left;
};

static void cursor_init(struct elem_cursor *c, const struct virtq_elem *e, enum virtq_dir dir,
			uint64_t off, uint64_t len)
{
	unsigned int out = e->out_num < VIRTQ_MAX_IOV ? e->out_num : VIRTQ_MAX_IOV;
	unsigned int in = e->in_num < VIRTQ_MAX_IOV - out ? e->in_num : VIRTQ_MAX_IOV - out;

	c->iov = e->iov + (dir == VIRTQ_IN ? out : 0);
	c->n = dir == VIRTQ_IN ? in : out;
	c->i = 0;
	c->off = off;
	c->left = len;
}

/* The next non-empty piece in *p, *n; false once the range or the part ends. */
static bool cursor_next(struct elem_cursor *c, uint8_t **p, size_t *n)
{
	while (c->left && c->i < c->n) {
		const struct iovec *v = &c->iov[c->i++];

		if (c->off >= v->iov_len) {
			c->off -= v->iov_len;
			continue;
		}
		*p = (uint8_t *)v->iov_base + c->off;
		*n = v->iov_len - c->off < c->left ? v->iov_len - c->off : c->left;
		c->left -= *n;
		c->off = 0;
		return true;
	}
	return false;
}

size_t virtq_elem_read(const struct virtq_elem *e, uint64_t off, void *dst, size_t len)
{
	struct elem_cursor c;
	uint8_t *p;
	size_t n, done = 0;

	cursor_init(&c, e, VIRTQ_OUT, off, len);
	while (cursor_next(&c, &p, &n)) {
		memcpy((uint8_t *)dst + done, p, n);
		done += n;
	}
	return done;
}

size_t virtq_elem_write(const struct virtq_elem *e, uint64_t off, const void *src, size_t len)
{
	struct elem_cursor c;
	uint8_t *p;
	size_t n, done = 0;

	cursor_init(&c, e, VIRTQ_IN, off, len);
	while (cursor_next(&c, &p, &n)) {
		memcpy(p, (const uint8_t *)src + done, n);
		/* After the store (dirty.h): a sync that clears the mark sees it. */
		dirty_note(p, n);
		done += n;
	}
	return done;
}

uint64_t virtq_elem_slice(const struct virtq_elem *e, enum virtq_dir dir, uint64_t off,
			  uint64_t len, struct virtq_iov *v)
{
	struct elem_cursor c;
	uint8_t *p;
	size_t n;

	v->n = 0;
	v->len = 0;
	cursor_init(&c, e, dir, off, len);
	/* A part has at most VIRTQ_MAX_IOV pieces: the bound never cuts. */
	while (v->n < VIRTQ_MAX_IOV && cursor_next(&c, &p, &n)) {
		v->iov[v->n++] = (struct iovec){ p, n };
		v->len += n;
	}
	return v->len;
}

void virtq_elem_mark_dirty(const struct virtq_elem *e, uint64_t off, uint64_t len)
{
	/* Every push comes here: without a migration running, one load and
	 * no walk of the element. */
	struct dirty *d = atomic_load_explicit(&dirty_current, memory_order_acquire);
	struct elem_cursor c;
	uint8_t *p;
	size_t n;

	if (__builtin_expect(d == NULL, 1))
		return;
	cursor_init(&c, e, VIRTQ_IN, off, len);
	while (cursor_next(&c, &p, &n))
		dirty_mark_hva(d, p, n);
}

bool virtq_should_notify(struct virtq *q)
{
	struct vring r;
	uint16_t old, new, event;
	bool valid;

	if (!q->ready || vring_map(q, &r))
		return false;
	/* Full fence: our used->idx store must be visible before we read the
	 * driver's suppression fields, or we race with it re-enabling them
	 * (Linux vhost_notify's smp_mb). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	old = q->signalled_used;
	valid = q->signalled_used_valid;
	new = q->signalled_used = q->used_idx;
	q->signalled_used_valid = true;
	if (!q->event_idx) /* 2.7.7.2: flags is a hint we honour */
		return !(ld16(r.avail + RING_FLAGS) & VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	/* 2.7.7.2 / Linux vring_need_event: interrupt if used_event lies in
	 * [old, new), computed modulo 2^16. */
	event = ld16(r.avail + RING_ENTRIES + 2 * (size_t)q->size);
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

bool virtq_enable_notify(struct virtq *q, bool enable)
{
	struct vring r;

	/* No DMA: nothing to write, and nothing to pop again (the transport
	 * kicks the queue when DMA is allowed back). */
	if (!q->ready || dma_blocked(q) || vring_map(q, &r))
		return false;
	if (q->event_idx) {
		/* 2.7.10: with EVENT_IDX the driver notifies once avail->idx
		 * passes avail_event; there is no "off", a stale value is. */
		if (enable) {
			st16(r.used + RING_ENTRIES + 8 * (size_t)q->size, q->last_avail);
			dirty_note(r.used + RING_ENTRIES + 8 * (size_t)q->size, 2);
		}
	} else {
		st16(r.used + RING_FLAGS, enable ? 0 : VRING_USED_F_NO_NOTIFY);
		dirty_note(r.used + RING_FLAGS, 2);
	}
	/* Full fence: the store above against the driver's avail->idx store
	 * followed by its read of our field (the classic lost wake-up). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return avail_idx_acquire(&r) != q->last_avail;
}

/* State format, version 1, all little-endian:
 *   u32 version
 *   u16 size, u8 ready, u64 desc_gpa, u64 avail_gpa, u64 used_gpa
 *   u16 last_avail, u16 used_idx, u16 signalled_used, u8 signalled_used_valid
 *   u8 event_idx, u8 indirect, u16 msix_vector
 * max_size and mem belong to the device, not to the saved state. */
void virtq_save(const struct virtq *q, struct state_buf *out)
{
	state_put_u32(out, VIRTQ_STATE_VERSION);
	state_put_u16(out, q->size);
	state_put_u8(out, q->ready);
	state_put_u64(out, q->desc_gpa);
	state_put_u64(out, q->avail_gpa);
	state_put_u64(out, q->used_gpa);
	state_put_u16(out, q->last_avail);
	state_put_u16(out, q->used_idx);
	state_put_u16(out, q->signalled_used);
	state_put_u8(out, q->signalled_used_valid);
	state_put_u8(out, q->event_idx);
	state_put_u8(out, q->indirect);
	state_put_u16(out, q->msix_vector);
}

static int get_bool(struct state_rd *in, bool *v)
{
	uint8_t b = state_get_u8(in);

	*v = b;
	return b > 1 ? -EINVAL : 0;
}

int virtq_load(struct virtq *q, struct state_rd *in)
{
	struct virtq t = *q;
	int err = 0;

	if (state_get_u32(in) != VIRTQ_STATE_VERSION)
		return -EINVAL;
	t.size = state_get_u16(in);
	err |= get_bool(in, &t.ready);
	t.desc_gpa = state_get_u64(in);
	t.avail_gpa = state_get_u64(in);
	t.used_gpa = state_get_u64(in);
	t.last_avail = state_get_u16(in);
	t.used_idx = state_get_u16(in);
	t.signalled_used = state_get_u16(in);
	err |= get_bool(in, &t.signalled_used_valid);
	err |= get_bool(in, &t.event_idx);
	err |= get_bool(in, &t.indirect);
	t.msix_vector = state_get_u16(in);
	if (err || in->err)
		return -EINVAL;
	/* A queue that is not ready holds whatever the driver wrote to the
	 * registers; they are checked when it is enabled. A ready one must
	 * be one the transport could have enabled. */
	if (t.ready && virtq_validate(&t))
		return -EINVAL;
	*q = t;
	return 0;
}
