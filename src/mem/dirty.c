/* dirty.c - dirty page tracking for live migration: KVM's dirty ring or
 * dirty bitmap on the RAM slots, plus a user-space bitmap for cvisor's own
 * writes.
 *
 * KVM side (Documentation/virt/kvm/api.rst):
 *  - 4.35 KVM_SET_USER_MEMORY_REGION: re-registering a slot with the same
 *    gpa, size and address but KVM_MEM_LOG_DIRTY_PAGES flipped only changes
 *    its flags; the guest keeps running and its memory stays in place.
 *    Both paths need the flag while tracking: turning it on write-protects
 *    the slot, and the first write to each page after that is recorded.
 *  - 8.29 KVM_CAP_DIRTY_LOG_RING (_ACQ_REL): the path used when the host
 *    has it (and is not PVM, below). Each vCPU gets a ring of struct kvm_dirty_gfn {flags, slot,
 *    offset} that KVM fills as the guest writes; we read entries from our
 *    fetch index while they carry the DIRTY flag (load-acquire), set the
 *    page's bit, hand each back with the RESET flag (store-release), and
 *    KVM_RESET_DIRTY_RINGS then write-protects those pages again. A sync
 *    costs O(pages written), not O(RAM) as KVM_GET_DIRTY_LOG's bitmap
 *    walk and copy does. The ring has to be enabled before the first vCPU
 *    exists, so vm_create and vm_create_restore do it for every guest
 *    (a restored or migrated-in guest can migrate again): 4096 entries
 *    (64 KiB) per vCPU by default, lowered to the host's maximum. KVM
 *    allocates that in the kernel when the vCPU is created; our mapping
 *    of it is not touched until a migration harvests, so an idle guest
 *    pays page tables for nothing.
 *    A ring that fills faster than the migration thread syncs makes the
 *    vCPU exit with KVM_EXIT_DIRTY_RING_FULL and KVM refuses to enter it
 *    again until entries are reset: that vCPU thread harvests every ring
 *    itself, under the rings' lock, into d->rbits (taken by the next
 *    dirty_sync under the same lock, so never before its reset), and
 *    resets. Entries are bounds-checked against our slots before a bit is
 *    set, though KVM wrote them.
 *    With a ring KVM_GET_DIRTY_LOG fails (ENXIO on x86): nothing else may
 *    call it (snapshots find RAM with data through /proc/self/pagemap).
 *    KVM drops writes it makes without a running vCPU instead of logging
 *    them; the migration source makes none (state is read through vCPU
 *    ioctls, which count as running). KVM_RESET_DIRTY_RINGS may stop at a
 *    pending signal with EINTR (Linux 6.16), keeping what it did: retried.
 *  - PVM (kvm_pvm, an emulating host: x86_host_emulates) breaks the ring.
 *    Its batch emulator (pvm_emulate_insn_scrubbed) runs the guest's
 *    kernel code through KVM's emulator, pushes an entry per emulated
 *    store, and does not stop at the soft limit: a guest writing fast
 *    fills the ring to the end and KVM writes on over entries not yet
 *    read. Seen on 6.18.44 with the dirtier guest: the kernel's
 *    WARN_ON_ONCE in kvm_dirty_ring_push ("should never get full",
 *    dirty_ring.c:225, called from __kvm_write_guest_page <-
 *    x86_emulate_instruction <- pvm_emulate_insn_scrubbed), and a ring
 *    read whole with its first entries newer than its last. Lost entries
 *    are lost pages, and KVM's reset index stays behind ours for good, so
 *    the vCPU is never entered again. ring_overflowed() spots it (a whole
 *    ringful, a gap, an entry of ours not reset a lap later): dirty_sync
 *    then fails with ENOBUFS, so the migration fails instead of sending
 *    stale pages, and a vCPU stuck on its full ring stops the guest. On
 *    such a host auto takes the bitmap and no ring is enabled.
 *  - The bitmap path, the fallback (no ring, or CVISOR_DIRTY=bitmap):
 *    7.18 KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: when enabled, 4.8
 *    KVM_GET_DIRTY_LOG only reports, and 4.118 KVM_CLEAR_DIRTY_LOG re-arms
 *    exactly the pages we are about to copy. Without it KVM_GET_DIRTY_LOG
 *    clears and write-protects the slot itself; both orders give "re-armed
 *    before the copy", which is what pre-copy needs.
 *
 * CVISOR_DIRTY picks the path for every VM the process creates: unset or
 * "auto" the ring when KVM offers it and the host is not PVM, "bitmap"
 * the bitmap, "ring" (or "ring:ENTRIES", a power of two from 256 to
 * 65536) the ring or an error. Tests run both paths with it.
 *
 * We never set KVM_DIRTY_LOG_INITIALLY_SET: round 0 sends every page
 * anyway, so enabling logging with a clean, write-protected slot is what
 * we want. */
#include "cvisor/dirty.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cvisor/kvm.h"

struct dirty *_Atomic dirty_current;

static uint64_t words_for(uint64_t pages)
{
	return (pages + DIRTY_WORD_BITS - 1) / DIRTY_WORD_BITS;
}

/* ---- the rings ---- */

int dirty_mode_parse(const char *s, enum dirty_mode *mode, uint32_t *entries)
{
	uint64_t n;

	*entries = DIRTY_RING_ENTRIES;
	if (!s || !*s || !strcmp(s, "auto"))
		*mode = DIRTY_MODE_AUTO;
	else if (!strcmp(s, "bitmap"))
		*mode = DIRTY_MODE_BITMAP;
	else if (!strcmp(s, "ring"))
		*mode = DIRTY_MODE_RING;
	else if (!strncmp(s, "ring:", 5) &&
		 !cv_parse_uint(s + 5, DIRTY_RING_MIN_ENTRIES, DIRTY_RING_MAX_ENTRIES, &n) &&
		 !(n & (n - 1))) {
		*mode = DIRTY_MODE_RING;
		*entries = (uint32_t)n;
	} else {
		return -EINVAL;
	}
	return 0;
}

void dirty_rings_init(struct dirty_rings *r)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = -1;
	pthread_mutex_init(&r->lock, NULL);
}

int dirty_rings_enable(struct dirty_rings *r, int vm_fd, bool unsafe)
{
	const char *env = getenv("CVISOR_DIRTY");
	enum dirty_mode mode;
	uint32_t entries;
	int e;

	if (dirty_mode_parse(env, &mode, &entries)) {
		cv_err("CVISOR_DIRTY=%s: expected auto, bitmap, ring or ring:ENTRIES (a power of "
		       "two from %u to %u)",
		       env, DIRTY_RING_MIN_ENTRIES, DIRTY_RING_MAX_ENTRIES);
		return -EINVAL;
	}
	if (mode == DIRTY_MODE_BITMAP)
		return 0;
	if (unsafe && mode == DIRTY_MODE_AUTO) {
		cv_debug("this host's KVM overflows dirty rings: migration reads the dirty bitmap");
		return 0;
	}
	if (unsafe)
		cv_warn("CVISOR_DIRTY=%s: this host's KVM is known to overflow dirty rings; a "
			"migration may fail, and the guest stop, when it does",
			env);
	if ((e = kvm_enable_dirty_ring(vm_fd, &entries))) {
		if (mode == DIRTY_MODE_RING) {
			cv_err("CVISOR_DIRTY=%s: this host's KVM has no usable dirty ring "
			       "(KVM_CAP_DIRTY_LOG_RING: %s); use bitmap or auto",
			       env, strerror(-e));
			return e;
		}
		cv_debug("no KVM dirty ring (%s): migration reads the dirty bitmap", strerror(-e));
		return 0;
	}
	r->vm_fd = vm_fd;
	r->entries = entries;
	return 0;
}

int dirty_rings_map(struct dirty_rings *r, unsigned int i, int vcpu_fd)
{
	if (!r->entries)
		return 0;
	if (i != r->n || i >= DIRTY_MAX_RINGS)
		return -EINVAL;
	if (!(r->ring[i].gfns = kvm_map_dirty_ring(vcpu_fd, r->entries)))
		return -errno;
	r->ring[i].fetch = 0;
	r->n++;
	return 0;
}

void dirty_rings_destroy(struct dirty_rings *r)
{
	for (unsigned int i = 0; i < r->n; i++)
		if (r->ring[i].gfns)
			munmap(r->ring[i].gfns, (size_t)r->entries * sizeof(struct kvm_dirty_gfn));
	pthread_mutex_destroy(&r->lock);
	memset(r, 0, sizeof(*r));
	r->vm_fd = -1;
}

/* The page an entry names, as a bit in the tracker's bitmap. slot is
 * (address space << 16) | slot id (api.rst 8.29); cvisor registers only
 * address space 0, slot i = region i. */
static bool ring_page(const struct dirty *d, uint32_t slot, uint64_t offset, uint64_t *bit)
{
	if (slot >= d->nslots || offset >= d->slots[slot].npages)
		return false;
	*bit = d->slots[slot].first + offset;
	return true;
}

static void ring_broke(struct dirty_rings *r, unsigned int i)
{
	if (!r->broken)
		cv_warn("the KVM dirty ring of vCPU %u overflowed: KVM wrote past its end, "
			"entries were lost and dirty tracking cannot go on (use "
			"CVISOR_DIRTY=bitmap)",
			i);
	r->broken = true;
	r->ring[i].broken = true;
}

/* Whether KVM wrote past the end of a ring, over entries we had not read
 * (pages lost for good: PVM does it, see the top comment), judged where a
 * walk stopped: at the entry `flags` was read from, or after a whole
 * ringful. KVM publishes entries in order, stops the vCPU short of the end
 * (the soft limit) and reuses an entry only once we handed it back and
 * reset it. So a whole ringful, an entry of ours still not reset a lap
 * later, or the next entry written while this one is not all say so. */
static bool ring_overflowed(const struct dirty_ring *ring, uint32_t mask, uint32_t flags,
			    bool whole)
{
	const struct kvm_dirty_gfn *at = &ring->gfns[ring->fetch & mask];

	if (whole || (flags & KVM_DIRTY_GFN_F_RESET))
		return true;
	if (!__atomic_load_n(&ring->gfns[(ring->fetch + 1) & mask].flags, __ATOMIC_ACQUIRE))
		return false;
	/* The next one is there, so this one was published before it: read
	 * it again, in case both came in between. */
	return !(__atomic_load_n(&at->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY);
}

/* Take the published entries of ring i, marking their pages in out
 * (NULL: drop them). Lock held. */
static uint64_t ring_take(struct dirty_rings *r, unsigned int i, const struct dirty *d,
			  uint64_t *out)
{
	struct dirty_ring *ring = &r->ring[i];
	uint32_t mask = r->entries - 1, flags;
	uint64_t n = 0, bit;

	if (!ring->gfns)
		return 0;
	for (;;) {
		struct kvm_dirty_gfn *e = &ring->gfns[ring->fetch & mask];

		/* Acquire: the slot and offset KVM stored before the flag. */
		flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		if (!(flags & KVM_DIRTY_GFN_F_DIRTY) || n == r->entries)
			break;
		if (out && ring_page(d, e->slot, e->offset, &bit))
			dirty_set(out, bit);
		/* Release: our reads of the entry before KVM may reuse it. */
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		ring->fetch++;
		n++;
	}
	if (ring_overflowed(ring, mask, flags, n == r->entries))
		ring_broke(r, i);
	return n;
}

/* Have KVM write-protect again the pages of the entries handed back. */
static int rings_reset(struct dirty_rings *r)
{
	if (r->vm_fd < 0)
		return 0;
	/* Since Linux 6.16 a pending signal (a vCPU kick) interrupts it with
	 * EINTR, keeping what it did: go on. */
	while (kvm_ioctl_val(r->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Harvest every ring into out (NULL: drop), then reset. *mine (may be
 * NULL) gets what ring `me` held. Lock held. 0, -ENOBUFS once a ring has
 * overflowed, or -errno. */
static int rings_harvest(struct dirty_rings *r, const struct dirty *d, uint64_t *out,
			 unsigned int me, uint64_t *mine)
{
	uint64_t total = 0;
	int e;

	for (unsigned int i = 0; i < r->n; i++) {
		uint64_t n = ring_take(r, i, d, out);

		if (mine && i == me)
			*mine = n;
		total += n;
	}
	atomic_fetch_add_explicit(&r->harvested, total, memory_order_relaxed);
	if (total && (e = rings_reset(r)))
		return e;
	return r->broken ? -ENOBUFS : 0;
}

int dirty_ring_full(struct dirty_rings *r, unsigned int i, uint64_t *mine)
{
	struct dirty *d;
	int e;

	*mine = 0;
	pthread_mutex_lock(&r->lock);
	atomic_fetch_add_explicit(&r->full_exits, 1, memory_order_relaxed);
	d = r->active;
	e = rings_harvest(r, d, d ? d->rbits : NULL, i, mine);
	if (d)
		d->rbits_any = true;
	pthread_mutex_unlock(&r->lock);
	/* A ring overflowed, but this vCPU's entries still came or its own
	 * ring is whole: it can run on (the migration fails at its next sync,
	 * as tracking has lost pages). Only a vCPU on a broken, empty ring
	 * can never be entered again. */
	return e == -ENOBUFS && (*mine || !r->ring[i].broken) ? 0 : e;
}

/* ---- the tracker ---- */

int dirty_init(struct dirty *d, int vm_fd, const struct guest_mem *gm, struct dirty_rings *rings)
{
	memset(d, 0, sizeof(*d));
	d->vm_fd = vm_fd;
	d->base = gm->base;
	d->npages = gm->ram_size >> DIRTY_PAGE_SHIFT;
	d->nwords = words_for(d->npages);
	d->ubits = calloc(d->nwords ? d->nwords : 1, sizeof(*d->ubits));
	if (!d->ubits)
		return -ENOMEM;
	if (rings && rings->entries) {
		d->rings = rings;
		if (!(d->rbits = calloc(d->nwords ? d->nwords : 1, sizeof(*d->rbits)))) {
			dirty_free(d);
			return -ENOMEM;
		}
	}
	for (unsigned int i = 0; i < gm->nr; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		struct dirty_slot *s = &d->slots[i];

		s->slot = i;
		s->gpa = r->gpa;
		s->size = r->size;
		s->hva = r->hva;
		s->first = (uint64_t)(r->hva - gm->base) >> DIRTY_PAGE_SHIFT;
		s->npages = r->size >> DIRTY_PAGE_SHIFT;
		if (vm_fd >= 0 && !d->rings) {
			s->kbits = calloc(words_for(s->npages) ? words_for(s->npages) : 1, 8);
			if (!s->kbits) {
				dirty_free(d);
				return -ENOMEM;
			}
		}
		d->nslots++;
	}
	return 0;
}

static int slot_set_logging(int vm_fd, const struct dirty_slot *s, bool on)
{
	struct kvm_userspace_memory_region r = {
		.slot = s->slot,
		.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = s->gpa,
		.memory_size = s->size,
		.userspace_addr = (uint64_t)(uintptr_t)s->hva,
	};

	return kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

/* Make d the rings' tracker (or none), dropping whatever they held from
 * before: round 0 sends every page anyway. */
static int rings_attach(struct dirty *d, struct dirty *to)
{
	struct dirty_rings *r = d->rings;
	int e = 0;

	pthread_mutex_lock(&r->lock);
	if (to || r->active == d) {
		e = rings_harvest(r, NULL, NULL, 0, NULL);
		memset(d->rbits, 0, d->nwords * sizeof(*d->rbits));
		d->rbits_any = false;
		r->active = to;
	}
	pthread_mutex_unlock(&r->lock);
	return e;
}

int dirty_start(struct dirty *d)
{
	struct dirty *none = NULL;
	int r;

	if (!atomic_compare_exchange_strong(&dirty_current, &none, d))
		return none == d ? 0 : -EBUSY;
	memset((void *)d->ubits, 0, d->nwords * sizeof(*d->ubits));
	if (d->rings && (r = rings_attach(d, d))) {
		(void)rings_attach(d, NULL);
		atomic_store(&dirty_current, NULL);
		return r;
	}
	if (d->vm_fd < 0)
		return 0;
	if (!d->rings && kvm_cap(d->vm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) &
				 KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) {
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			.args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE },
		};

		d->manual = kvm_ioctl(d->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
	}
	for (unsigned int i = 0; i < d->nslots; i++) {
		if ((r = slot_set_logging(d->vm_fd, &d->slots[i], true))) {
			while (i--)
				(void)slot_set_logging(d->vm_fd, &d->slots[i], false);
			if (d->rings)
				(void)rings_attach(d, NULL);
			atomic_store(&dirty_current, NULL);
			return r;
		}
	}
	d->logging = true;
	return 0;
}

/* OR `n` bits of src into dst starting at bit `at`. */
static void bits_or_at(uint64_t *dst, uint64_t at, const uint64_t *src, uint64_t n)
{
	uint64_t words = words_for(n);

	if (at % DIRTY_WORD_BITS == 0) {
		for (uint64_t w = 0; w < words; w++)
			dst[at / DIRTY_WORD_BITS + w] |= src[w];
		return;
	}
	for (uint64_t i = 0; i < n; i++)
		if (dirty_test(src, i))
			dirty_set(dst, at + i);
}

static int slot_sync(struct dirty *d, struct dirty_slot *s, uint64_t *out)
{
	struct kvm_dirty_log log = { .slot = s->slot, .dirty_bitmap = s->kbits };
	uint64_t words = words_for(s->npages), any = 0;

	memset(s->kbits, 0, words * 8);
	if (kvm_ioctl(d->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return -errno;
	for (uint64_t w = 0; w < words; w++)
		any |= s->kbits[w];
	if (!any)
		return 0;
	if (d->manual) {
		/* Re-arm exactly what we report; num_pages may end the slot
		 * without being a multiple of 64 (4.118). */
		struct kvm_clear_dirty_log c = {
			.slot = s->slot,
			.num_pages = (uint32_t)s->npages,
			.first_page = 0,
			.dirty_bitmap = s->kbits,
		};

		if (kvm_ioctl(d->vm_fd, KVM_CLEAR_DIRTY_LOG, &c) < 0)
			return -errno;
	}
	bits_or_at(out, s->first, s->kbits, s->npages);
	return 0;
}

/* The ring path's half of a sync: the rings, and what vCPU threads took
 * from them at ring-full. Both under the lock: a vCPU thread's bits are
 * in rbits only once its KVM_RESET_DIRTY_RINGS is done, so we never copy
 * a page that is still writable without a new entry to come. */
static int rings_sync(struct dirty *d, uint64_t *out)
{
	int e;

	pthread_mutex_lock(&d->rings->lock);
	e = rings_harvest(d->rings, d, out, 0, NULL);
	for (uint64_t w = 0; d->rbits_any && w < d->nwords; w++) {
		out[w] |= d->rbits[w];
		d->rbits[w] = 0;
	}
	d->rbits_any = false;
	pthread_mutex_unlock(&d->rings->lock);
	return e;
}

int dirty_sync(struct dirty *d, uint64_t *out, uint64_t *count)
{
	int r;

	if (d->rings) {
		if ((r = rings_sync(d, out)))
			return r;
	} else if (d->logging) {
		for (unsigned int i = 0; i < d->nslots; i++)
			if ((r = slot_sync(d, &d->slots[i], out)))
				return r;
	}
	/* After KVM's: a device marks after its store, so a bit taken here
	 * comes with data already in RAM, and a later store marks again. */
	for (uint64_t w = 0; w < d->nwords; w++) {
		if (atomic_load_explicit(&d->ubits[w], memory_order_relaxed))
			out[w] |= atomic_exchange_explicit(&d->ubits[w], 0, memory_order_acq_rel);
	}
	if (count)
		*count = dirty_count(out, d->nwords);
	return 0;
}

void dirty_stop(struct dirty *d)
{
	struct dirty *me = d;
	int e;

	atomic_compare_exchange_strong(&dirty_current, &me, NULL);
	if (d->logging) {
		for (unsigned int i = 0; i < d->nslots; i++)
			if (slot_set_logging(d->vm_fd, &d->slots[i], false))
				cv_warn("cannot turn dirty logging off on memory slot %u",
					d->slots[i].slot);
		d->logging = false;
	}
	/* After logging is off nothing new arrives: leave the rings empty. */
	if (d->rings && (e = rings_attach(d, NULL)))
		cv_warn("cannot reset the dirty rings: %s", strerror(-e));
}

void dirty_free(struct dirty *d)
{
	dirty_stop(d);
	for (unsigned int i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
		free(d->slots[i].kbits);
	free((void *)d->ubits);
	free(d->rbits);
	memset(d, 0, sizeof(*d));
	d->vm_fd = -1;
}

void dirty_mark_hva(struct dirty *d, const void *hva, size_t len)
{
	const uint8_t *p = hva;
	uint64_t off, end, first, last;

	if (!len || p < d->base)
		return;
	off = (uint64_t)(p - d->base);
	if (off >= d->npages << DIRTY_PAGE_SHIFT)
		return;
	if (__builtin_add_overflow(off, (uint64_t)len, &end) || end > d->npages << DIRTY_PAGE_SHIFT)
		end = d->npages << DIRTY_PAGE_SHIFT;
	first = off >> DIRTY_PAGE_SHIFT;
	last = (end - 1) >> DIRTY_PAGE_SHIFT;
	/* Always the RMW, never "load, and skip if already set": that load
	 * could pass our own data store (x86 reorders a store with a later
	 * load), and a sync taking the bit in between would copy old data.
	 * The release RMW orders the data before the bit for dirty_sync's
	 * acquiring exchange. */
	for (uint64_t i = first; i <= last; i++)
		atomic_fetch_or_explicit(&d->ubits[i / DIRTY_WORD_BITS],
					 1ULL << (i % DIRTY_WORD_BITS), memory_order_release);
}

void dirty_note_iov_slow(struct dirty *d, const struct iovec *iov, unsigned int n, size_t len)
{
	for (unsigned int i = 0; i < n && len; i++) {
		size_t k = iov[i].iov_len < len ? iov[i].iov_len : len;

		dirty_mark_hva(d, iov[i].iov_base, k);
		len -= k;
	}
}

uint64_t dirty_count(const uint64_t *bits, uint64_t nwords)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < nwords; w++)
		n += (uint64_t)__builtin_popcountll(bits[w]);
	return n;
}
