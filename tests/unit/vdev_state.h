/* vdev_state.h - the save and load checks the virtio device tests share:
 * a fresh device takes a saved state whole and saves it back unchanged.
 * Header-only; include after <cmocka.h>. */
#ifndef CVISOR_TEST_VDEV_STATE_H
#define CVISOR_TEST_VDEV_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "cvisor/state.h"
#include "cvisor/virtio.h"

/* d loads the len bytes at data and reads all of them. */
static inline void vdev_load_whole(struct virtio_dev *d, const uint8_t *data, size_t len)
{
	struct state_rd r;

	state_rd_init(&r, data, len);
	assert_int_equal(virtio_dev_load(d, &r), 0);
	assert_int_equal(r.pos, len);
}

/* d loads the save in a whole, and saving d into *b (empty) gives the same
 * bytes. The caller frees *b. */
static inline void vdev_expect_reload(struct virtio_dev *d, const struct state_buf *a,
				      struct state_buf *b)
{
	vdev_load_whole(d, a->data, a->len);
	assert_int_equal(virtio_dev_save(d, b), 0);
	assert_int_equal(a->len, b->len);
	assert_memory_equal(a->data, b->data, a->len);
}

#endif
