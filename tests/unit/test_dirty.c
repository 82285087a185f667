/* test_dirty.c - the user-space half of dirty tracking (no KVM): marks from
 * cvisor's own writes, their bounds, sync-and-clear, one tracker at a time,
 * concurrent marking, and the virtqueue marking what the device wrote. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/dirty.h"
#include "cvisor/virtq.h"

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
	assert_int_equal(dirty_init(&t->d, -1, &t->gm), 0);
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

	assert_int_equal(dirty_init(&other, -1, &t->gm), 0);
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

		r->t->ram[p * 4096] = 1; /* the store, then the mark */
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
	struct virtq_elem e = { 0 };

	virtq_init(&q, &t->gm, 16);
	q.size = 16;
	q.desc_gpa = 0x1000;
	q.avail_gpa = 0x2000;
	q.used_gpa = 0x3000;
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
