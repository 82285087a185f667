/* virtq_fixture.h - what the tests of the virtqueue core share
 * (test_virtq.c, test_virtq_hostile.c, test_virtq_state.c): a 1 MiB guest
 * with one queue at fixed places, validated and enabled, and the shared
 * guest driver (tests/lib/vq_driver.h) on the other side of it. The ring
 * offsets come from the spec, written out independently of virtq.c.
 * Header-only; include after <cmocka.h>. */
#ifndef CVISOR_TEST_VIRTQ_FIXTURE_H
#define CVISOR_TEST_VIRTQ_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>

#include "cvisor/virtq.h"
#include "vq_driver.h"

#define RAM_SIZE (1u << 20)
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define IND 0x8000  /* indirect tables */
#define IND2 0xc000 /* a second one */
#define BIGIND 0x20000
#define DATA 0x40000
#define QSIZE 16
#define USED_EVENT (AVAIL + 4 + 2 * QSIZE) /* 2.7.7.2, 2.7.10 */
#define AVAIL_EVENT (USED + 4 + 8 * QSIZE)

struct t {
	uint8_t *ram;
	struct guest_mem gm;
	struct virtq q; /* the device's side */
	struct vqd vq;	/* the driver's */
	struct virtq_elem e;
};

static inline int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	if (!t || !(t->ram = calloc(1, RAM_SIZE)))
		return -1;
	guest_mem_init_buf(&t->gm, t->ram, RAM_SIZE);
	virtq_init(&t->q, &t->gm, 256);
	vqd_init(&t->vq, t->ram, QSIZE, DESC, AVAIL, USED);
	vqd_configure(&t->vq, &t->q);
	if (virtq_validate(&t->q))
		return -1;
	t->q.ready = true;
	*state = t;
	return 0;
}

static inline int teardown(void **state)
{
	struct t *t = *state;

	free(t->ram);
	free(t);
	return 0;
}

static inline void *iov_at(struct t *t, uint64_t gpa)
{
	return t->ram + gpa;
}

/* Push n one-descriptor requests. */
static inline void complete(struct t *t, unsigned int n)
{
	for (unsigned int k = 0; k < n; k++) {
		vqd_desc(&t->vq, DESC, 0, DATA, 8, VQD_F_WRITE, 0);
		vqd_avail(&t->vq, 0);
		assert_int_equal(virtq_pop(&t->q, &t->e), 1);
		virtq_push(&t->q, &t->e, 8);
	}
}

#endif
