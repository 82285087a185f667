/* test_dirty.c - dirty tracking without KVM: marks from cvisor's own
 * writes, their bounds, sync-and-clear, one tracker at a time, concurrent
 * marking, the virtqueue marking what the device wrote; and the dirty ring
 * path over rings this test fills the way KVM does (harvest, bounds,
 * wrap-around, ring-full on a vCPU thread, overflow caught, CVISOR_DIRTY). */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/dirty.h"
#include "cvisor/virtq.h"
#include "vq_driver.h"

#define RAM_SIZE (1u << 20)
#define NPAGES (RAM_SIZE / 4096)

struct t {
	uint8_t *ram;
	struct guest_mem gm;
	struct dirty d;
	uint64_t bits[NPAGES / 64];
};

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	t->ram = aligned_alloc(4096, RAM_SIZE);
	memset(t->ram, 0, RAM_SIZE);
	guest_mem_init_buf(&t->gm, t->ram, RAM_SIZE);
	assert_int_equal(dirty_init(&t->d, -1, &t->gm, NULL), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	dirty_free(&t->d);
	free(t->ram);
	free(t);
	return 0;
}

static uint64_t sync_count(struct t *t)
{
	uint64_t n = 99;

	memset(t->bits, 0, sizeof(t->bits));
	assert_int_equal(dirty_sync(&t->d, t->bits, &n), 0);
	return n;
}

static void test_off_until_started(void **state)
{
	struct t *t = *state;

	assert_null(atomic_load(&dirty_current));
	dirty_note(t->ram + 4096, 10); /* no tracker: nothing, no crash */
	assert_int_equal(dirty_start(&t->d), 0);
	assert_ptr_equal(atomic_load(&dirty_current), &t->d);
	assert_int_equal(sync_count(t), 0);
	dirty_stop(&t->d);
	assert_null(atomic_load(&dirty_current));
	dirty_note(t->ram + 4096, 10);
	assert_int_equal(sync_count(t), 0);
}

static void test_marks_and_bounds(void **state)
{
	struct t *t = *state;

	assert_int_equal(dirty_start(&t->d), 0);
	dirty_note(t->ram + 5 * 4096 + 100, 1);	   /* page 5 */
	dirty_note(t->ram + 7 * 4096 + 4000, 200); /* pages 7 and 8 */
	dirty_note(t->ram + 20 * 4096, 3 * 4096);  /* 20, 21, 22 exactly */
	dirty_note(t->ram + 30 * 4096, 0);	   /* empty: nothing */
	dirty_note(t->ram - 4096, 100);		   /* before RAM: ignored */
	dirty_note(t->ram + RAM_SIZE, 100);	   /* after RAM: ignored */
	dirty_note(t->ram + RAM_SIZE - 10, 1000);  /* clipped: last page */
	dirty_note(t->ram + 40 * 4096, SIZE_MAX);  /* no overflow: to the end */
	assert_int_equal(sync_count(t), NPAGES - 40 + 6);
	assert_true(dirty_test(t->bits, 5));
	assert_true(dirty_test(t->bits, 7) && dirty_test(t->bits, 8));
	assert_false(dirty_test(t->bits, 6) || dirty_test(t->bits, 9));
	assert_true(dirty_test(t->bits, 20) && dirty_test(t->bits, 22));
	assert_false(dirty_test(t->bits, 23) || dirty_test(t->bits, 30));
	assert_true(dirty_test(t->bits, NPAGES - 1));
	/* Taken: the next sync is empty until something is written again. */
	assert_int_equal(sync_count(t), 0);
	dirty_note(t->ram + 9 * 4096, 8);
	assert_int_equal(sync_count(t), 1);
	assert_true(dirty_test(t->bits, 9));
	dirty_stop(&t->d);
}

static void test_sync_ors_into_out(void **state)
{
	struct t *t = *state;
	uint64_t n;

	assert_int_equal(dirty_start(&t->d), 0);
	memset(t->bits, 0, sizeof(t->bits));
	dirty_set(t->bits, 3); /* the caller's own, e.g. left from a round */
	dirty_note(t->ram + 4 * 4096, 1);
	assert_int_equal(dirty_sync(&t->d, t->bits, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(dirty_count(t->bits, NPAGES / 64), 2);
	dirty_stop(&t->d);
}

static void test_iov(void **state)
{
	struct t *t = *state;
	struct iovec iov[3] = {
		{ t->ram + 2 * 4096, 4096 },
		{ t->ram + 10 * 4096 + 4090, 100 },
		{ t->ram + 50 * 4096, 4096 },
	};

	assert_int_equal(dirty_start(&t->d), 0);
	/* Only the first 4096 + 5 bytes were written: pages 2 and 10. */
	dirty_note_iov(iov, 3, 4096 + 5);
	assert_int_equal(sync_count(t), 2);
	assert_true(dirty_test(t->bits, 2) && dirty_test(t->bits, 10));
	/* 4096 + 50: the second buffer runs into page 11. */
	dirty_note_iov(iov, 3, 4096 + 50);
	assert_int_equal(sync_count(t), 3);
	dirty_note_iov(iov, 3, 1 << 20);
	assert_int_equal(sync_count(t), 4); /* 2, 10, 11, 50 */
	dirty_stop(&t->d);
}

static void test_one_tracker(void **state)
{
	struct t *t = *state;
	struct dirty other;

	assert_int_equal(dirty_init(&other, -1, &t->gm, NULL), 0);
	assert_int_equal(dirty_start(&t->d), 0);
	assert_int_equal(dirty_start(&t->d), 0); /* idempotent */
	assert_int_equal(dirty_start(&other), -EBUSY);
	dirty_stop(&other); /* not the active one: no effect */
	assert_ptr_equal(atomic_load(&dirty_current), &t->d);
	dirty_stop(&t->d);
	assert_int_equal(dirty_start(&other), 0);
	dirty_free(&other);
	assert_null(atomic_load(&dirty_current));
}

struct racer {
	struct t *t;
	unsigned int seed;
	_Atomic bool *stop;
	uint64_t marked[NPAGES / 64];
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	while (!atomic_load(r->stop)) {
		unsigned int p = (unsigned int)rand_r(&r->seed) % NPAGES;

		/* The store, then the mark; atomic: both racers may pick a page. */
		__atomic_store_n(&r->t->ram[p * 4096], 1, __ATOMIC_RELAXED);
		dirty_note(r->t->ram + p * 4096, 1);
		dirty_set(r->marked, p);
	}
	return NULL;
}

/* Every page marked while syncs run concurrently is reported by some sync:
 * none lost between the exchange and the next mark. */
static void test_concurrent(void **state)
{
	struct t *t = *state;
	struct racer r[2] = { { .t = t, .seed = 1 }, { .t = t, .seed = 2 } };
	uint64_t seen[NPAGES / 64] = { 0 };
	_Atomic bool stop = false;
	pthread_t th[2];

	assert_int_equal(dirty_start(&t->d), 0);
	for (int i = 0; i < 2; i++) {
		r[i].stop = &stop;
		pthread_create(&th[i], NULL, racer_main, &r[i]);
	}
	for (int i = 0; i < 2000; i++)
		assert_int_equal(dirty_sync(&t->d, seen, NULL), 0);
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(dirty_sync(&t->d, seen, NULL), 0);
	for (unsigned int w = 0; w < NPAGES / 64; w++)
		assert_int_equal(seen[w] & (r[0].marked[w] | r[1].marked[w]),
				 r[0].marked[w] | r[1].marked[w]);
	dirty_stop(&t->d);
}

/* virtq_push marks the used ring and the buffers the device filled. */
static void test_virtq_push_marks(void **state)
{
	struct t *t = *state;
	struct virtq q;
	struct vqd drv;
	struct virtq_elem e = { 0 };

	virtq_init(&q, &t->gm, 16);
	vqd_init(&drv, t->ram, 16, 0x1000, 0x2000, 0x3000);
	vqd_configure(&drv, &q);
	q.ready = true;
	assert_int_equal(virtq_validate(&q), 0);
	e.head = 0;
	e.out_num = 1;
	e.in_num = 2;
	e.iov[0] = (struct iovec){ t->ram + 0x10000, 100 };  /* read by the device */
	e.iov[1] = (struct iovec){ t->ram + 0x20000, 4096 }; /* written */
	e.iov[2] = (struct iovec){ t->ram + 0x30000, 4096 }; /* not reached */
	e.out_len = 100;
	e.in_len = 8192;
	assert_int_equal(dirty_start(&t->d), 0);
	virtq_push(&q, &e, 4096);
	assert_int_equal(sync_count(t), 2);
	assert_true(dirty_test(t->bits, 0x3000 / 4096)); /* used ring */
	assert_true(dirty_test(t->bits, 0x20000 / 4096));
	assert_false(dirty_test(t->bits, 0x10000 / 4096) || dirty_test(t->bits, 0x30000 / 4096));
	/* Notification suppression writes the used ring too. */
	(void)virtq_enable_notify(&q, false);
	assert_int_equal(sync_count(t), 1);
	dirty_stop(&t->d);
	/* Off: the same push marks nothing. */
	virtq_push(&q, &e, 4096);
	assert_int_equal(sync_count(t), 0);
}

/* ---- the ring path, over rings mapped from a memfd ---- */

#define RING 16 /* entries per ring: small, to wrap often */

struct kvm_side {
	uint32_t push, reset; /* KVM's dirty_index and reset_index */
};

struct rt {
	struct t t;
	struct dirty_rings rings;
	struct kvm_side kvm[2];
	int fd[2]; /* the vCPU fds */
};

static int ring_setup(void **state)
{
	struct rt *rt = calloc(1, sizeof(*rt));
	long page = sysconf(_SC_PAGESIZE);

	rt->t.ram = aligned_alloc(4096, RAM_SIZE);
	memset(rt->t.ram, 0, RAM_SIZE);
	guest_mem_init_buf(&rt->t.gm, rt->t.ram, RAM_SIZE);
	dirty_rings_init(&rt->rings);
	rt->rings.entries = RING;
	for (unsigned int i = 0; i < 2; i++) {
		/* A vCPU fd's layout: its ring KVM_DIRTY_LOG_PAGE_OFFSET pages in. */
		rt->fd[i] = memfd_create("vcpu", 0);
		assert_true(rt->fd[i] >= 0);
		assert_int_equal(ftruncate(rt->fd[i], (KVM_DIRTY_LOG_PAGE_OFFSET + 1) * page), 0);
		assert_int_equal(dirty_rings_map(&rt->rings, i, rt->fd[i]), 0);
	}
	assert_int_equal(dirty_rings_map(&rt->rings, 5, rt->fd[0]), -EINVAL); /* in order */
	assert_int_equal(dirty_init(&rt->t.d, -1, &rt->t.gm, &rt->rings), 0);
	*state = rt;
	return 0;
}

static int ring_teardown(void **state)
{
	struct rt *rt = *state;

	dirty_free(&rt->t.d);
	dirty_rings_destroy(&rt->rings);
	close(rt->fd[0]);
	close(rt->fd[1]);
	free(rt->t.ram);
	free(rt);
	return 0;
}

static struct kvm_dirty_gfn *gfn(struct rt *rt, unsigned int r, uint32_t i)
{
	return &rt->rings.ring[r].gfns[i % RING];
}

/* What KVM does on a guest write: fill the entry, then publish it. */
static void kvm_push(struct rt *rt, unsigned int r, uint32_t slot, uint64_t offset)
{
	struct kvm_dirty_gfn *e = gfn(rt, r, rt->kvm[r].push++);

	e->slot = slot;
	e->offset = offset;
	__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_DIRTY, __ATOMIC_RELEASE);
}

/* KVM_RESET_DIRTY_RINGS: the entries handed back, in order. */
static uint32_t kvm_reset(struct rt *rt, unsigned int r)
{
	uint32_t n = 0;

	while (gfn(rt, r, rt->kvm[r].reset)->flags & KVM_DIRTY_GFN_F_RESET) {
		gfn(rt, r, rt->kvm[r].reset++)->flags = 0;
		n++;
	}
	return n;
}

static uint64_t ring_sync(struct rt *rt, int want)
{
	uint64_t n = 99;

	memset(rt->t.bits, 0, sizeof(rt->t.bits));
	assert_int_equal(dirty_sync(&rt->t.d, rt->t.bits, &n), want);
	/* A failed sync leaves *count alone: what it had taken is in out. */
	return want ? dirty_count(rt->t.bits, NPAGES / 64) : n;
}

static void test_ring_mode_parse(void **state)
{
	static const char *const bad[] = {
		"foo", "ring:", "ring:100", "ring:128", "ring:131072", "ringx", "ring:4096x",
	};
	enum dirty_mode m;
	uint32_t n;

	(void)state;
	assert_int_equal(dirty_mode_parse(NULL, &m, &n), 0);
	assert_int_equal(m, DIRTY_MODE_AUTO);
	assert_int_equal(n, DIRTY_RING_ENTRIES);
	assert_int_equal(dirty_mode_parse("auto", &m, &n), 0);
	assert_int_equal(m, DIRTY_MODE_AUTO);
	assert_int_equal(dirty_mode_parse("", &m, &n), 0);
	assert_int_equal(m, DIRTY_MODE_AUTO);
	assert_int_equal(dirty_mode_parse("bitmap", &m, &n), 0);
	assert_int_equal(m, DIRTY_MODE_BITMAP);
	assert_int_equal(dirty_mode_parse("ring", &m, &n), 0);
	assert_int_equal(m, DIRTY_MODE_RING);
	assert_int_equal(n, 4096);
	assert_int_equal(dirty_mode_parse("ring:256", &m, &n), 0);
	assert_int_equal(n, 256);
	assert_int_equal(dirty_mode_parse("ring:65536", &m, &n), 0);
	assert_int_equal(n, 65536);
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(dirty_mode_parse(bad[i], &m, &n), -EINVAL);
}

/* Published entries become bits; entries naming no page of ours are
 * handed back without one; every entry taken gets RESET. */
static void test_ring_harvest_and_bounds(void **state)
{
	struct rt *rt = *state;

	assert_int_equal(dirty_start(&rt->t.d), 0);
	kvm_push(rt, 0, 0, 5);
	kvm_push(rt, 0, 0, 7);
	kvm_push(rt, 0, 1, 3);		/* no slot 1 */
	kvm_push(rt, 0, 0, NPAGES);	/* past the slot's end */
	kvm_push(rt, 0, 1u << 16, 2);	/* address space 1 */
	kvm_push(rt, 0, 0, UINT64_MAX); /* no overflow into a small bit */
	kvm_push(rt, 0, 0, NPAGES - 1); /* the last page */
	assert_int_equal(ring_sync(rt, 0), 3);
	assert_true(dirty_test(rt->t.bits, 5) && dirty_test(rt->t.bits, 7));
	assert_true(dirty_test(rt->t.bits, NPAGES - 1));
	/* 7 taken, 3 bits: the other 4 named no page of ours */
	assert_int_equal(atomic_load(&rt->rings.harvested), 7);
	for (uint32_t i = 0; i < 7; i++)
		assert_int_equal(gfn(rt, 0, i)->flags, KVM_DIRTY_GFN_F_RESET);
	assert_int_equal(rt->rings.ring[0].fetch, 7);
	assert_int_equal(kvm_reset(rt, 0), 7);
	/* Nothing new: nothing reported. User-space marks still are. */
	assert_int_equal(ring_sync(rt, 0), 0);
	dirty_note(rt->t.ram + 9 * 4096, 1);
	assert_int_equal(ring_sync(rt, 0), 1);
	assert_false(rt->rings.broken);
	dirty_stop(&rt->t.d);
}

/* Many laps around the ring, harvested as KVM fills it: every page. */
static void test_ring_wraps(void **state)
{
	struct rt *rt = *state;
	uint64_t seen[NPAGES / 64] = { 0 };

	assert_int_equal(dirty_start(&rt->t.d), 0);
	for (uint32_t p = 0; p < 100; p++) {
		kvm_push(rt, 0, 0, p);
		if (p % 11 == 10) {
			assert_int_equal(dirty_sync(&rt->t.d, seen, NULL), 0);
			assert_int_equal(kvm_reset(rt, 0), 11);
		}
	}
	assert_int_equal(dirty_sync(&rt->t.d, seen, NULL), 0);
	assert_int_equal(dirty_count(seen, NPAGES / 64), 100);
	assert_int_equal(rt->rings.ring[0].fetch, 100);
	assert_false(rt->rings.broken);
	dirty_stop(&rt->t.d);
}

/* Twelve writes, then the vCPU's ring-full exit handled. */
static void ring_fills(struct rt *rt, uint64_t first_page)
{
	uint64_t mine = 99;

	for (uint32_t p = 0; p < 12; p++)
		kvm_push(rt, 0, 0, first_page + p);
	assert_int_equal(dirty_ring_full(&rt->rings, 0, &mine), 0);
	assert_int_equal(mine, 12);
	assert_int_equal(kvm_reset(rt, 0), 12);
}

/* KVM_EXIT_DIRTY_RING_FULL: the vCPU thread takes the entries into the
 * tracker, and the next sync reports them; with no tracker started they
 * are dropped (handed back all the same, so the vCPU can run). */
static void test_ring_full_on_vcpu_thread(void **state)
{
	struct rt *rt = *state;

	ring_fills(rt, 100);
	assert_int_equal(dirty_start(&rt->t.d), 0);
	assert_int_equal(ring_sync(rt, 0), 0); /* dropped */
	ring_fills(rt, 50);
	assert_int_equal(atomic_load(&rt->rings.full_exits), 2);
	kvm_push(rt, 0, 0, 3);
	assert_int_equal(ring_sync(rt, 0), 13);
	assert_true(dirty_test(rt->t.bits, 50) && dirty_test(rt->t.bits, 61));
	assert_true(dirty_test(rt->t.bits, 3));
	assert_int_equal(kvm_reset(rt, 0), 1);
	assert_int_equal(ring_sync(rt, 0), 0); /* taken once */
	dirty_stop(&rt->t.d);
	/* Stopped: entries left in the rings are handed back. */
	kvm_push(rt, 0, 0, 4);
	assert_int_equal(dirty_start(&rt->t.d), 0);
	dirty_stop(&rt->t.d);
	assert_int_equal(gfn(rt, 0, rt->kvm[0].push - 1)->flags, KVM_DIRTY_GFN_F_RESET);
}

/* KVM writing past the end of a full ring: a whole ringful read. */
static void test_ring_overflow_whole(void **state)
{
	struct rt *rt = *state;
	uint64_t mine;

	assert_int_equal(dirty_start(&rt->t.d), 0);
	for (uint32_t p = 0; p < RING + 3; p++) /* 3 entries overwritten */
		kvm_push(rt, 0, 0, p);
	assert_int_equal(ring_sync(rt, -ENOBUFS), RING);
	assert_true(rt->rings.broken);
	kvm_reset(rt, 0);
	/* KVM's reset index is now behind: its ring stays full for good. */
	assert_int_equal(dirty_ring_full(&rt->rings, 0, &mine), -ENOBUFS);
	assert_int_equal(mine, 0);
	/* vCPU 1's own ring is whole: it runs on (the migration fails at its
	 * next sync, as above). */
	assert_false(rt->rings.ring[1].broken);
	assert_int_equal(dirty_ring_full(&rt->rings, 1, &mine), 0);
	assert_int_equal(mine, 0);
	dirty_stop(&rt->t.d);
}

/* The same seen later: an entry skipped while the next one is there. */
static void test_ring_overflow_gap(void **state)
{
	struct rt *rt = *state;

	assert_int_equal(dirty_start(&rt->t.d), 0);
	kvm_push(rt, 0, 0, 1);
	assert_int_equal(ring_sync(rt, 0), 1);
	kvm_reset(rt, 0);
	rt->kvm[0].push++; /* an entry lost */
	kvm_push(rt, 0, 0, 2);
	assert_int_equal(ring_sync(rt, -ENOBUFS), 0);
	assert_true(rt->rings.broken);
	dirty_stop(&rt->t.d);
}

/* And: an entry handed back a lap ago that KVM never reset. */
static void test_ring_overflow_not_reset(void **state)
{
	struct rt *rt = *state;

	assert_int_equal(dirty_start(&rt->t.d), 0);
	for (uint32_t p = 0; p < RING - 4; p++)
		kvm_push(rt, 0, 0, p);
	assert_int_equal(ring_sync(rt, 0), RING - 4);
	/* No kvm_reset: our RESET flags stay. Four more, then a lap. */
	for (uint32_t p = 0; p < 4; p++)
		kvm_push(rt, 0, 0, 40 + p);
	assert_int_equal(ring_sync(rt, -ENOBUFS), 4);
	dirty_stop(&rt->t.d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_off_until_started, setup, teardown),
		cmocka_unit_test_setup_teardown(test_marks_and_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_ors_into_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iov, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_tracker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_virtq_push_marks, setup, teardown),
		cmocka_unit_test(test_ring_mode_parse),
		cmocka_unit_test_setup_teardown(test_ring_harvest_and_bounds, ring_setup,
						ring_teardown),
		cmocka_unit_test_setup_teardown(test_ring_wraps, ring_setup, ring_teardown),
		cmocka_unit_test_setup_teardown(test_ring_full_on_vcpu_thread, ring_setup,
						ring_teardown),
		cmocka_unit_test_setup_teardown(test_ring_overflow_whole, ring_setup,
						ring_teardown),
		cmocka_unit_test_setup_teardown(test_ring_overflow_gap, ring_setup, ring_teardown),
		cmocka_unit_test_setup_teardown(test_ring_overflow_not_reset, ring_setup,
						ring_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
