/* dirty.h - which guest pages changed since the last look, for live
 * migration (src/mem/dirty.c).
 *
 * Two sources feed one bitmap over the RAM mapping (bit i = the 4 KiB page
 * at gm->base + i * 4096, whatever region it belongs to):
 *  - KVM dirty tracking on the RAM memory slots: what the guest's vCPUs
 *    (and KVM on their behalf) write. Read from the VM's dirty rings when
 *    vm_create enabled them (struct dirty_rings), else from KVM's dirty
 *    bitmap (KVM_GET_DIRTY_LOG);
 *  - a user-space atomic bitmap for what cvisor's own threads write into
 *    guest RAM (virtqueue used rings and buffers, the balloon's discarded
 *    pages, instructions completed in user space): KVM never sees those.
 *
 * Whatever cvisor writes into guest RAM is marked with dirty_note(). Devices
 * write request buffers through the virtqueue accessors (virtq.h), which do
 * it for them; other writes call it directly. It costs one predictable
 * branch while no migration runs. */
#ifndef CVISOR_DIRTY_H
#define CVISOR_DIRTY_H

#include <pthread.h>
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
#define DIRTY_MAX_RINGS 64	     /* vCPUs (vm.c checks CONFIG_MAX_CPUS) */
#define DIRTY_RING_ENTRIES 4096	     /* per vCPU by default: 64 KiB */
#define DIRTY_RING_MIN_ENTRIES 256   /* one 4 KiB page (KVM's minimum) */
#define DIRTY_RING_MAX_ENTRIES 65536 /* KVM_DIRTY_RING_MAX_ENTRIES */

struct dirty;
struct kvm_dirty_gfn;

/* One vCPU's dirty ring: its vCPU fd's mapping at KVM_DIRTY_LOG_PAGE_OFFSET. */
struct dirty_ring {
	struct kvm_dirty_gfn *gfns; /* NULL: not mapped */
	uint32_t fetch;		    /* next entry to read; free-running, kept
				     * across migrations like KVM's own index */
	bool broken;		    /* this ring overflowed (under the lock) */
};

/* The VM's dirty rings (KVM_CAP_DIRTY_LOG_RING), owned by struct vm: set
 * up by vm_create before the first vCPU, read by dirty_sync on the
 * migration thread and by a vCPU thread whose ring is full. */
struct dirty_rings {
	int vm_fd;	  /* -1: rings without KVM behind them (unit tests) */
	uint32_t entries; /* per vCPU, a power of two; 0: no rings (bitmap) */
	unsigned int n;	  /* vCPUs mapped */
	struct dirty_ring ring[DIRTY_MAX_RINGS];
	/* One harvester at a time. Guards every ring's fetch index, active,
	 * active->rbits(_any) and broken. */
	pthread_mutex_t lock;
	struct dirty *active;	     /* started tracker; NULL: harvests are dropped */
	bool broken;		     /* KVM overflowed a ring: entries were lost */
	_Atomic uint64_t full_exits; /* KVM_EXIT_DIRTY_RING_FULL handled */
	_Atomic uint64_t harvested;  /* entries taken from the rings */
};

/* Which tracking CVISOR_DIRTY asks for. */
enum dirty_mode {
	DIRTY_MODE_AUTO,   /* unset, "" or "auto": rings if KVM has safe ones */
	DIRTY_MODE_RING,   /* "ring" or "ring:ENTRIES": rings or fail */
	DIRTY_MODE_BITMAP, /* "bitmap": KVM_GET_DIRTY_LOG, no rings */
};

struct dirty_slot {
	uint32_t slot; /* KVM memory slot id (vm.c: slot i = region i) */
	uint64_t gpa, size;
	uint8_t *hva;
	uint64_t first;	 /* page index of hva in the mapping */
	uint64_t npages; /* size / 4 KiB */
	uint64_t *kbits; /* KVM_GET_DIRTY_LOG buffer (bitmap path) */
};

struct dirty {
	int vm_fd; /* -1: user-space marks only (unit tests) */
	uint8_t *base;
	uint64_t npages, nwords;
	struct dirty_slot slots[GUEST_MEM_MAX_REGIONS];
	unsigned int nslots;
	bool manual; /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled */
	bool logging;
	_Atomic uint64_t *ubits;   /* pages written by cvisor's threads */
	struct dirty_rings *rings; /* non-NULL: the ring path */
	uint64_t *rbits;	   /* taken by vCPU threads at ring-full (rings->lock) */
	bool rbits_any;		   /* rbits may have bits (rings->lock) */
};

/* Size the tracker for gm's mapping; vm_fd < 0 tracks user-space writes
 * only (and, with rings, what fake rings hold). rings: the VM's
 * (vm->dirty_rings), or NULL; with rings that vm_create enabled, KVM's
 * side comes from them, else from the dirty bitmap. Nothing is tracked
 * until dirty_start. 0 or -ENOMEM. */
int dirty_init(struct dirty *d, int vm_fd, const struct guest_mem *gm,
	       struct dirty_rings *rings) CV_MUST;

/* Turn tracking on: KVM dirty logging on every RAM slot (the rings drained
 * of anything older first), and this tracker becomes the one dirty_note()
 * marks (one per process at a time: -EBUSY if another is active). Pages
 * written from now on are reported by the next dirty_sync. 0 or -errno
 * (tracking left off). */
int dirty_start(struct dirty *d) CV_MUST;

/* OR into out (d->nwords words) every page written since dirty_start or
 * the previous sync, and re-arm tracking of those pages before returning
 * (KVM_RESET_DIRTY_RINGS, KVM_CLEAR_DIRTY_LOG, or KVM_GET_DIRTY_LOG's own
 * reset), so that a write after the call is reported by the next one.
 * *count (may be NULL) gets the number of pages set in out afterwards.
 * 0 or -errno: -ENOBUFS once KVM has overflowed a ring (pages were lost;
 * out is incomplete and stays so). */
int dirty_sync(struct dirty *d, uint64_t *out, uint64_t *count) CV_MUST;

/* Turn tracking off (slots without the logging flag again, rings drained
 * and their entries dropped). Idempotent. */
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

/* Parse CVISOR_DIRTY (NULL: unset). *entries gets the ring size asked
 * for (DIRTY_RING_ENTRIES unless "ring:N", N a power of two within the
 * DIRTY_RING_*_ENTRIES bounds). 0 or -EINVAL. */
int dirty_mode_parse(const char *s, enum dirty_mode *mode, uint32_t *entries) CV_MUST;

/* No rings yet, the lock ready; vm_fd -1. Before anything else here. */
void dirty_rings_init(struct dirty_rings *r);

/* Enable the rings on a VM that has no vCPU yet, as CVISOR_DIRTY says;
 * unsafe: this host's KVM is known to overflow them (auto then picks the
 * bitmap). rings->entries is 0 afterwards if the bitmap is to be used. 0,
 * or -errno with one line printed (CVISOR_DIRTY invalid, or "ring" asked
 * for and not available). */
int dirty_rings_enable(struct dirty_rings *r, int vm_fd, bool unsafe) CV_MUST;

/* Map vCPU i's ring from its fd (i == r->n: vCPUs in order); nothing
 * without rings. The pages are not touched until a harvest. 0 or -errno. */
int dirty_rings_map(struct dirty_rings *r, unsigned int i, int vcpu_fd) CV_MUST;

/* Unmap the rings. Safe after dirty_rings_init alone. */
void dirty_rings_destroy(struct dirty_rings *r);

/* On KVM_EXIT_DIRTY_RING_FULL (a vCPU thread): harvest every ring into
 * the started tracker (or drop the entries when none is), and reset them,
 * so that the vCPU can run again. *mine gets how many entries vCPU i's
 * own ring held. 0, -ENOBUFS when KVM overflowed the rings and vCPU i's
 * is stuck (KVM will not run it again), or -errno from
 * KVM_RESET_DIRTY_RINGS. dirty_sync fails with -ENOBUFS from the
 * overflow on. */
int dirty_ring_full(struct dirty_rings *r, unsigned int i, uint64_t *mine) CV_MUST;

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
