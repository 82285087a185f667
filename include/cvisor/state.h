/* state.h - explicit little-endian encoding of device and vCPU state.
 *
 * Every component saves its state as a sequence of fixed-width LE fields
 * into a state_buf and loads it back through a bounds-checked reader; never
 * raw struct dumps. The snapshot file wraps these in TLV sections. */
#ifndef CVISOR_STATE_H
#define CVISOR_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "cvisor/util.h"

/* Growable writer. On allocation failure `err` is set and later puts are
 * ignored, so callers check once at the end. */
struct state_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int err;
};

/* Bounded reader over a byte range. A read past the end sets err to
 * -EBADMSG and yields zeros. */
struct state_rd {
	const uint8_t *data;
	size_t len;
	size_t pos;
	int err;
};

void state_put_u8(struct state_buf *b, uint8_t v);
void state_put_u16(struct state_buf *b, uint16_t v);
void state_put_u32(struct state_buf *b, uint32_t v);
void state_put_u64(struct state_buf *b, uint64_t v);
void state_put_bytes(struct state_buf *b, const void *p, size_t n);
void state_buf_free(struct state_buf *b);

void state_rd_init(struct state_rd *r, const void *data, size_t len);
uint8_t state_get_u8(struct state_rd *r);
uint16_t state_get_u16(struct state_rd *r);
uint32_t state_get_u32(struct state_rd *r);
uint64_t state_get_u64(struct state_rd *r);
void state_get_bytes(struct state_rd *r, void *p, size_t n);

#endif
