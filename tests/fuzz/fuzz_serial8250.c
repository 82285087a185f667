/* fuzz_serial8250.c - libFuzzer target for the 16550A model.
 *
 * The input is a program of port accesses, host input and snapshot
 * round trips against one UART, each op one byte followed by its operands:
 *   0x00-0x3f read   offset = op & 7, width 1 << ((op >> 3) & 3)
 *   0x40-0x7f write  offset = op & 7, width as above; operand: value byte
 *   0x80-0x8f rx     operand: n; then n bytes of host input
 *   0x90-0x9f burst  operands: k, v: write v to offset 0 8k+1 times (overruns)
 *   0xa0-0xaf save -> load into a fresh device -> save again: identical
 *   0xb0-0xbf device reset
 *   0xc0-0xdf load   operand: u16 n; then n raw bytes fed to load()
 *   0xe0-0xff load   operand: pos u16, xor byte: a mutated save of itself
 * After every op the model's invariants are checked; any violation aborts. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/serial8250.h"

struct fuzz_host {
	int level;
};

static void fuzz_tx(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	if (len != 1)
		abort();
}

static void fuzz_irq(void *ctx, int level)
{
	struct fuzz_host *h = ctx;

	if (level == h->level) /* only on changes */
		abort();
	h->level = level;
}

static void check(const struct serial8250 *s, const struct fuzz_host *h)
{
	int want = !(s->iir & 0x01) && (s->mcr & 0x18) == 0x08;

	if (s->rx_head >= SERIAL8250_RX_BUF || s->rx_count > SERIAL8250_RX_BUF)
		abort();
	if (h->level != s->irq_level || h->level != want)
		abort();
	if (!(s->lsr & 0x01) != !s->rx_count || (s->lsr & 0x60) != 0x60)
		abort();
	if (s->ier & 0xf0 || s->mcr & 0xe0)
		abort();
}

static int save(struct serial8250 *s, struct state_buf *b)
{
	memset(b, 0, sizeof(*b));
	return serial8250_device_ops.save(s, b);
}

static int same(const struct state_buf *a, const struct state_buf *b)
{
	return a->len == b->len && !memcmp(a->data, b->data, a->len);
}

/* Load `data` into s. On success a new save must reproduce exactly the
 * bytes consumed (load accepts only canonical states); on failure the
 * device must be untouched. */
static void load_check(struct serial8250 *s, const uint8_t *data, size_t len)
{
	struct state_buf before, after;
	struct state_rd r;
	int err;

	if (save(s, &before))
		abort();
	state_rd_init(&r, data, len);
	err = serial8250_device_ops.load(s, &r);
	if (save(s, &after))
		abort();
	if (err == 0) {
		if (r.pos != after.len || memcmp(after.data, data, after.len))
			abort();
	} else if (err != -EINVAL || !same(&before, &after)) {
		abort();
	}
	state_buf_free(&before);
	state_buf_free(&after);
}

static void roundtrip(struct serial8250 *s)
{
	struct serial8250 *t = malloc(sizeof(*t));
	struct fuzz_host th = { 0 };
	struct state_buf a, b;
	struct state_rd r;

	if (!t)
		abort();
	serial8250_init(t, fuzz_tx, fuzz_irq, &th);
	if (save(s, &a))
		abort();
	state_rd_init(&r, a.data, a.len);
	if (serial8250_device_ops.load(t, &r) || r.pos != a.len)
		abort();
	if (save(t, &b) || !same(&a, &b) || th.level != s->irq_level)
		abort();
	check(t, &th);
	state_buf_free(&a);
	state_buf_free(&b);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void mutate_load(struct serial8250 *s, unsigned int pos, uint8_t x)
{
	struct state_buf a;

	if (save(s, &a))
		abort();
	a.data[pos % a.len] ^= x;
	load_check(s, a.data, a.len);
	state_buf_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct serial8250 *s = malloc(sizeof(*s));
	struct fuzz_host h = { 0 };
	size_t i = 0;

	if (!s)
		abort();
	serial8250_init(s, fuzz_tx, fuzz_irq, &h);
	check(s, &h);
	while (i < size) {
		uint8_t op = data[i++];
		uint32_t width = 1u << ((op >> 3) & 3);
		uint8_t buf[8] = { 0 };
		size_t n;

		if (op < 0x40) {
			serial8250_bus_ops.read(s, op & 7, buf, width);
			for (uint32_t j = 1; j < width; j++)
				if (buf[j])
					abort();
		} else if (op < 0x80) {
			if (i < size)
				buf[0] = data[i++];
			serial8250_bus_ops.write(s, op & 7, buf, width);
		} else if (op < 0x90) {
			n = i < size ? data[i++] : 0;
			if (n > size - i)
				n = size - i;
			size_t room = serial8250_rx_room(s);
			size_t got = serial8250_rx(s, data + i, n);
			if (got != (n < room ? n : room))
				abort();
			i += n;
		} else if (op < 0xa0) {
			n = i < size ? data[i++] * 8u + 1 : 1;
			buf[0] = i < size ? data[i++] : 0;
			while (n--)
				serial8250_bus_ops.write(s, 0, buf, 1);
		} else if (op < 0xb0) {
			roundtrip(s);
		} else if (op < 0xc0) {
			serial8250_device_ops.reset(s);
		} else if (op < 0xe0) {
			n = 0;
			if (i + 2 <= size) {
				n = (size_t)(data[i] | data[i + 1] << 8);
				i += 2;
			}
			if (n > size - i)
				n = size - i;
			load_check(s, data + i, n);
			i += n;
		} else {
			unsigned int pos = 0;
			uint8_t x = 0;

			if (i + 3 <= size) {
				pos = (unsigned int)(data[i] | data[i + 1] << 8);
				x = data[i + 2];
				i += 3;
			}
			mutate_load(s, pos, x);
		}
		check(s, &h);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
	return 0;
}
