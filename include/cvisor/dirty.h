/* dirty.h - which guest pages changed since the last look, for live
 * migration (src/mem/dirty.c).
 *
 * Two sources feed one bitmap over the RAM mapping (bit i = the 4 KiB page
 * at gm->base + i * 4096, whatever region it belongs to):
 *  - KVM dirty logging on the RAM memory slots: what the guest's vCPUs (and
 *    KVM on their behalf) write;
 *  - a user-space atomic bitmap for what cvisor's own threads write into
 *    guest RAM (virtqueue used rings and buffers, the balloon's discarded
 *    pages, instructions completed in user space): KVM never sees those.
 *
 * Devices call dirty_note() after every write into guest RAM. It costs one
 * predictable branch while no migration runs. */
#ifndef CVISOR_DIRTY_H
#define CVISOR_DIRTY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cvisor/guest_mem.h"
#include "cvisor/util.h"

#define DIRTY_PAGE_SHIFT 12
#define DIRTY_PAGE_SIZE (1ULL << DIRTY_PAGE_SHIFT)
#define DIRTY_WORD_BITS 64

struct dirty_slot {
	uint32_t slot; /* KVM memory slot id (vm.c: slot i = region i) */
	uint64_t gpa, size;
	uint8_t *hva;
	uint64_t first;	 /* page index of hva in the mapping */
	uint64_t npages; /* size / 4 KiB */
	uint64_t *kbits; /* KVM_GET_DIRTY_LOG buffer */
};

struct dirty {
	int vm_fd; /* -1: user-space marks only (unit tests) */
	uint8_t *base;
	uint64_t npages, nwords;
	struct dirty_slot slots[GUEST_MEM_MAX_REGIONS];
	unsigned int nslots;
	bool manual; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled */
	bool logging;
	_Atomic uint64_t *ubits; /* pages written by cvisor's threads */
};

/* Size the tracker for gm's mapping; vm_fd < 0 tracks user-space writes
 * only. Nothing is tracked until dirty_start. 0 or -ENOMEM. */
int dirty_init(struct dirty *d, int vm_fd, const struct guest_mem *gm) CV_MUST;

/* Turn tracking on: KVM dirty logging on every RAM slot, and this tracker
 * becomes the one dirty_note() marks (one per process at a time: -EBUSY
 * if another is active). Pages written from now on are reported by the
 * next dirty_sync. 0 or -errno (tracking left off). */
int dirty_start(struct dirty *d) CV_MUST;

/* OR into out (d->nwords words) every page written since dirty_start or
 * the previous sync, and re-arm tracking of those pages before returning
 * (KVM_CLEAR_DIRTY_LOG, or KVM_GET_DIRTY_LOG's own reset), so that a write
 * after the call is reported by the next one. *count (may be NULL) gets
 * the number of pages set in out afterwards. 0 or -errno. */
int dirty_sync(struct dirty *d, uint64_t *out, uint64_t *count) CV_MUST;

/* Turn tracking off (slots without the logging flag again). Idempotent. */
void dirty_stop(struct dirty *d);

/* dirty_stop, then free the bitmaps. Safe on a zeroed struct. */
void dirty_free(struct dirty *d);

/* Mark [hva, hva+len) as written, clipped to the tracked mapping. Any
 * thread; lock-free. */
void dirty_mark_hva(struct dirty *d, const void *hva, size_t len);

/* The tracker dirty_note() marks, NULL while no migration runs. */
extern struct dirty *_Atomic dirty_current;

/* Call after writing guest RAM from a cvisor thread (after the store, so
 * that a sync that clears the mark also sees the data). */
static inline void dirty_note(const void *hva, size_t len)
{
	struct dirty *d = atomic_load_explicit(&dirty_current, memory_order_acquire);

	if (__builtin_expect(d != NULL, 0))
		dirty_mark_hva(d, hva, len);
}

/* dirty_note for the first len bytes of an iovec array. */
void dirty_note_iov_slow(struct dirty *d, const struct iovec *iov, unsigned int n, size_t len);
static inline void dirty_note_iov(const struct iovec *iov, unsigned int n, size_t len)
{
	struct dirty *d = atomic_load_explicit(&dirty_current, memory_order_acquire);

	if (__builtin_expect(d != NULL, 0))
		dirty_note_iov_slow(d, iov, n, len);
}

/* Bitmap helpers over uint64_t words. */
static inline bool dirty_test(const uint64_t *bits, uint64_t i)
{
	return (bits[i / DIRTY_WORD_BITS] >> (i % DIRTY_WORD_BITS)) & 1;
}

static inline void dirty_set(uint64_t *bits, uint64_t i)
{
	bits[i / DIRTY_WORD_BITS] |= 1ULL << (i % DIRTY_WORD_BITS);
}

/* Number of set bits in the first nwords words. */
uint64_t dirty_count(const uint64_t *bits, uint64_t nwords);

#endif
