/* dirty.c - dirty page tracking for live migration: KVM dirty logging on
 * the RAM slots plus a user-space bitmap for cvisor's own writes.
 *
 * KVM side (Documentation/virt/kvm/api.rst):
 *  - 4.35 KVM_SET_USER_MEMORY_REGION: re-registering a slot with the same
 *    gpa, size and address but KVM_MEM_LOG_DIRTY_PAGES flipped only changes
 *    its flags; the guest keeps running and its memory stays in place.
 *  - 7.18 KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: when enabled, 4.8
 *    KVM_GET_DIRTY_LOG only reports, and 4.118 KVM_CLEAR_DIRTY_LOG re-arms
 *    exactly the pages we are about to copy. Without it KVM_GET_DIRTY_LOG
 *    clears and write-protects the slot itself; both orders give "re-armed
 *    before the copy", which is what pre-copy needs.
 *  - The dirty ring (8.29 KVM_CAP_DIRTY_LOG_RING) must be enabled before
 *    the first vCPU is created, i.e. inside vm_create for every guest; the
 *    bitmap needs nothing until a migration starts, so it is used here.
 *    With KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 it is also O(dirty) per round
 *    for the re-protection, which is what the ring would buy.
 *
 * We never set KVM_DIRTY_LOG_INITIALLY_SET: round 0 sends every page
 * anyway, so enabling logging with a clean, write-protected slot is what
 * we want. */
#include "cvisor/dirty.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/kvm.h"

struct dirty *_Atomic dirty_current;

static uint64_t words_for(uint64_t pages)
{
	return (pages + DIRTY_WORD_BITS - 1) / DIRTY_WORD_BITS;
}

int dirty_init(struct dirty *d, int vm_fd, const struct guest_mem *gm)
{
	memset(d, 0, sizeof(*d));
	d->vm_fd = vm_fd;
	d->base = gm->base;
	d->npages = gm->ram_size >> DIRTY_PAGE_SHIFT;
	d->nwords = words_for(d->npages);
	d->ubits = calloc(d->nwords ? d->nwords : 1, sizeof(*d->ubits));
	if (!d->ubits)
		return -ENOMEM;
	for (unsigned int i = 0; i < gm->nr; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		struct dirty_slot *s = &d->slots[i];

		s->slot = i;
		s->gpa = r->gpa;
		s->size = r->size;
		s->hva = r->hva;
		s->first = (uint64_t)(r->hva - gm->base) >> DIRTY_PAGE_SHIFT;
		s->npages = r->size >> DIRTY_PAGE_SHIFT;
		if (vm_fd >= 0) {
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

int dirty_start(struct dirty *d)
{
	struct dirty *none = NULL;
	int r;

	if (!atomic_compare_exchange_strong(&dirty_current, &none, d))
		return none == d ? 0 : -EBUSY;
	memset((void *)d->ubits, 0, d->nwords * sizeof(*d->ubits));
	if (d->vm_fd < 0)
		return 0;
	if (kvm_cap(d->vm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) &
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

int dirty_sync(struct dirty *d, uint64_t *out, uint64_t *count)
{
	int r;

	if (d->logging) {
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

	atomic_compare_exchange_strong(&dirty_current, &me, NULL);
	if (!d->logging)
		return;
	for (unsigned int i = 0; i < d->nslots; i++)
		if (slot_set_logging(d->vm_fd, &d->slots[i], false))
			cv_warn("cannot turn dirty logging off on memory slot %u",
				d->slots[i].slot);
	d->logging = false;
}

void dirty_free(struct dirty *d)
{
	dirty_stop(d);
	for (unsigned int i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
		free(d->slots[i].kbits);
	free((void *)d->ubits);
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
