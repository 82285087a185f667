/* state.c - little-endian state encoding (see include/cvisor/state.h). */
#include "cvisor/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *state_reserve(struct state_buf *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > SIZE_MAX - b->len) {
		b->err = -ENOMEM;
		return NULL;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->data = p;
		b->cap = cap;
	}
	b->len += n;
	return b->data + b->len - n;
}

static void put_le(struct state_buf *b, uint64_t v, unsigned int n)
{
	uint8_t *p = state_reserve(b, n);

	for (unsigned int i = 0; p && i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void state_put_u8(struct state_buf *b, uint8_t v)
{
	put_le(b, v, 1);
}
void state_put_u16(struct state_buf *b, uint16_t v)
{
	put_le(b, v, 2);
}
void state_put_u32(struct state_buf *b, uint32_t v)
{
	put_le(b, v, 4);
}
void state_put_u64(struct state_buf *b, uint64_t v)
{
	put_le(b, v, 8);
}

void state_put_bytes(struct state_buf *b, const void *p, size_t n)
{
	uint8_t *d = state_reserve(b, n);

	if (d && n)
		memcpy(d, p, n);
}

void state_buf_free(struct state_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void state_rd_init(struct state_rd *r, const void *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->err = 0;
}

static const uint8_t *state_take(struct state_rd *r, size_t n)
{
	if (r->err || n > r->len - r->pos) {
		r->err = -EBADMSG;
		return NULL;
	}
	r->pos += n;
	return r->data + r->pos - n;
}

static uint64_t get_le(struct state_rd *r, unsigned int n)
{
	const uint8_t *p = state_take(r, n);
	uint64_t v = 0;

	for (unsigned int i = 0; p && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t state_get_u8(struct state_rd *r)
{
	return (uint8_t)get_le(r, 1);
}
uint16_t state_get_u16(struct state_rd *r)
{
	return (uint16_t)get_le(r, 2);
}
uint32_t state_get_u32(struct state_rd *r)
{
	return (uint32_t)get_le(r, 4);
}
uint64_t state_get_u64(struct state_rd *r)
{
	return get_le(r, 8);
}

void state_get_bytes(struct state_rd *r, void *p, size_t n)
{
	const uint8_t *s = state_take(r, n);

	if (s)
		memcpy(p, s, n);
	else if (n)
		memset(p, 0, n);
}
