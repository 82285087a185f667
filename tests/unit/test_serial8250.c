/* test_serial8250.c - the 16550A model against the datasheet and against
 * what Linux's 8250 driver does with it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/serial8250.h"

/* Register offsets and bits, written out from the datasheet independently
 * of the model's own definitions. */
enum { RBR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct host {
	struct serial8250 s;
	uint8_t tx[4096];
	size_t ntx;
	int level;
	unsigned int irq_calls;
};

#define HOST_OPS serial8250_device_ops
#define HOST_DEV(h) (&(h)->s)
#define HOST_CALLS(h) ((h)->ntx + (h)->irq_calls)
#define HOST_IRQ
#include "dev_host.h"

static void host_tx(void *ctx, const uint8_t *buf, size_t len)
{
	struct host *h = ctx;

	assert_true(h->ntx + len <= sizeof(h->tx));
	memcpy(h->tx + h->ntx, buf, len);
	h->ntx += len;
}

static void host_init(struct host *h)
{
	serial8250_init(&h->s, host_tx, host_irq, h);
}

static uint8_t rd(struct host *h, unsigned int off)
{
	uint8_t v = 0xee;

	serial8250_bus_ops.read(&h->s, off, &v, 1);
	return v;
}

static void wr(struct host *h, unsigned int off, uint8_t v)
{
	serial8250_bus_ops.write(&h->s, off, &v, 1);
}

static void test_power_on(void **state)
{
	struct host *h = *state;

	assert_int_equal(rd(h, IER), 0);
	assert_int_equal(rd(h, IIR), 0x01);
	assert_int_equal(rd(h, LCR), 0);
	assert_int_equal(rd(h, MCR), 0);
	assert_int_equal(rd(h, LSR), 0x60);
	assert_int_equal(rd(h, MSR), 0xb0); /* DCD, DSR, CTS */
	assert_int_equal(h->irq_calls, 0);
	assert_int_equal(serial8250_rx_room(&h->s), SERIAL8250_RX_BUF);
}

static void test_thr_reaches_tx(void **state)
{
	struct host *h = *state;

	wr(h, RBR, 'h');
	wr(h, RBR, 'i');
	assert_int_equal(h->ntx, 2);
	assert_memory_equal(h->tx, "hi", 2);
	assert_int_equal(rd(h, LSR) & 0x60, 0x60); /* THRE and TEMT stay set */
}

static void test_dlab_divisor(void **state)
{
	struct host *h = *state;

	wr(h, IER, 0x05);
	wr(h, LCR, 0x83);
	wr(h, RBR, 0x01); /* 115200 baud */
	wr(h, IER, 0x02);
	assert_int_equal(rd(h, RBR), 0x01);
	assert_int_equal(rd(h, IER), 0x02);
	assert_int_equal(h->ntx, 0); /* a DLL write is not a THR write */
	wr(h, LCR, 0x03);
	assert_int_equal(rd(h, LCR), 0x03);
	assert_int_equal(rd(h, IER), 0x05); /* IER was untouched */
	wr(h, LCR, 0x80);
	assert_int_equal(rd(h, RBR), 0x01);
	assert_int_equal(rd(h, IER), 0x02);
}

static void test_ier_bits(void **state)
{
	struct host *h = *state;

	/* Linux's autoconfig existence test: IER 0 then 0x0f reads back. */
	wr(h, IER, 0xff);
	assert_int_equal(rd(h, IER), 0x0f);
	wr(h, IER, 0x40); /* XScale UUE bit must not stick */
	assert_int_equal(rd(h, IER), 0x00);
}

static void test_rx_lsr(void **state)
{
	struct host *h = *state;
	const uint8_t in[] = { 'a', 'b', 'c' };

	assert_int_equal(serial8250_rx(&h->s, in, sizeof(in)), 3);
	assert_int_equal(serial8250_rx_room(&h->s), SERIAL8250_RX_BUF - 3);
	assert_int_equal(rd(h, LSR), 0x61);
	assert_int_equal(rd(h, RBR), 'a');
	assert_int_equal(rd(h, RBR), 'b');
	assert_int_equal(rd(h, LSR), 0x61);
	assert_int_equal(rd(h, RBR), 'c');
	assert_int_equal(rd(h, LSR), 0x60);
	assert_int_equal(rd(h, RBR), 'c'); /* an empty RBR keeps its last byte */
	assert_int_equal(serial8250_rx_room(&h->s), SERIAL8250_RX_BUF);
}

static void test_rx_full_partial(void **state)
{
	struct host *h = *state;
	uint8_t buf[SERIAL8250_RX_BUF + 10];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(serial8250_rx(&h->s, buf, 1000), 1000);
	assert_int_equal(serial8250_rx(&h->s, buf + 1000, 34), SERIAL8250_RX_BUF - 1000);
	assert_int_equal(serial8250_rx_room(&h->s), 0);
	assert_int_equal(serial8250_rx(&h->s, buf, 5), 0);
	for (size_t i = 0; i < SERIAL8250_RX_BUF; i++)
		assert_int_equal(rd(h, RBR), (uint8_t)i);
	assert_int_equal(rd(h, LSR) & 0x03, 0); /* no overrun from the host side */
}

static void test_fifo_iir_bits(void **state)
{
	struct host *h = *state;
	const uint8_t in[] = { 'x' };

	wr(h, IIR, 0x01);
	assert_int_equal(rd(h, IIR), 0xc1);
	/* Linux's 16750 probe sets FCR bit 5; a 16550A shows nothing in IIR bit 5. */
	wr(h, IIR, 0x21);
	assert_int_equal(rd(h, IIR), 0xc1);
	/* Clearing the receive FIFO drops pending input. */
	assert_int_equal(serial8250_rx(&h->s, in, 1), 1);
	wr(h, IIR, 0x03);
	assert_int_equal(rd(h, LSR) & 0x01, 0);
	wr(h, IIR, 0x00);
	assert_int_equal(rd(h, IIR), 0x01);
	/* FCR bits other than bit 0 only take effect with bit 0 set. */
	wr(h, IIR, 0xc0);
	assert_int_equal(rd(h, IIR), 0x01);
}

static void test_iir_priorities(void **state)
{
	struct host *h = *state;

	wr(h, MCR, 0x10); /* loopback so the guest can overrun its own receiver */
	for (int i = 0; i < SERIAL8250_RX_BUF + 1; i++)
		wr(h, RBR, 'y');
	wr(h, MCR, 0x00);
	assert_int_equal(rd(h, MSR) & 0x0f, 0x0b); /* leaving loopback: DCTS, DDSR, DDCD */
	wr(h, MCR, 0x10);
	wr(h, MCR, 0x00); /* deltas again, this time left pending */
	wr(h, IER, 0x0f);
	assert_int_equal(rd(h, IIR), 0x06); /* line status: overrun */
	assert_int_equal(rd(h, LSR), 0x63); /* reading LSR clears OE */
	assert_int_equal(rd(h, IIR), 0x04); /* received data */
	for (int i = 0; i < SERIAL8250_RX_BUF; i++)
		rd(h, RBR);
	assert_int_equal(rd(h, IIR), 0x02); /* THR empty, cleared by this read */
	assert_int_equal(rd(h, IIR), 0x00); /* modem status */
	rd(h, MSR);
	assert_int_equal(rd(h, IIR), 0x01);
}

static void test_thre_semantics(void **state)
{
	struct host *h = *state;

	/* Pending once ETBEI is set with THR empty. */
	wr(h, IER, 0x02);
	assert_int_equal(rd(h, IIR), 0x02);
	/* ... cleared by reading IIR while it is the reported source. */
	assert_int_equal(rd(h, IIR), 0x01);
	/* Rewriting IER with ETBEI still set is no new edge. */
	wr(h, IER, 0x02);
	assert_int_equal(rd(h, IIR), 0x01);
	/* Linux's UART_BUG_THRE probe: off then on again raises it again. */
	wr(h, IER, 0x00);
	wr(h, IER, 0x02);
	assert_int_equal(rd(h, IIR), 0x02);
	/* A THR write clears it, the byte leaves at once and THR is empty
	 * again, so it is pending again: the 8250 driver's TX refill loop. */
	assert_int_equal(rd(h, IIR), 0x01);
	wr(h, RBR, 'z');
	assert_int_equal(rd(h, IIR), 0x02);
	/* Masking ETBEI drops the pending THRE. */
	wr(h, IER, 0x00);
	wr(h, IER, 0x01);
	assert_int_equal(rd(h, IIR), 0x01);
	/* A hidden (lower priority) THRE is not cleared by an IIR read. */
	{
		const uint8_t in[] = { 'q' };

		wr(h, IER, 0x03);
		assert_int_equal(serial8250_rx(&h->s, in, 1), 1);
		assert_int_equal(rd(h, IIR), 0x04);
		assert_int_equal(rd(h, RBR), 'q');
		assert_int_equal(rd(h, IIR), 0x02);
	}
}

static void test_irq_levels(void **state)
{
	struct host *h = *state;
	const uint8_t in[] = { 'a', 'b' };

	/* Without OUT2 the interrupt never reaches the PIC. */
	wr(h, IER, 0x01);
	assert_int_equal(serial8250_rx(&h->s, in, 2), 2);
	assert_int_equal(h->irq_calls, 0);
	wr(h, MCR, 0x08); /* OUT2 */
	assert_int_equal(h->irq_calls, 1);
	assert_int_equal(h->level, 1);
	rd(h, RBR);
	assert_int_equal(h->irq_calls, 1); /* still data: no call */
	rd(h, RBR);
	assert_int_equal(h->irq_calls, 2);
	assert_int_equal(h->level, 0);
	/* More input raises it again; disabling OUT2 drops it. */
	assert_int_equal(serial8250_rx(&h->s, in, 1), 1);
	assert_int_equal(h->irq_calls, 3);
	wr(h, MCR, 0x0b);
	assert_int_equal(h->irq_calls, 3);
	wr(h, MCR, 0x03);
	assert_int_equal(h->irq_calls, 4);
	assert_int_equal(h->level, 0);
	wr(h, MCR, 0x0b);
	assert_int_equal(h->level, 1);
	/* THRE: the line goes high on the ETBEI edge and low on the IIR read. */
	rd(h, RBR);
	assert_int_equal(h->level, 0);
	wr(h, IER, 0x02);
	assert_int_equal(h->level, 1);
	assert_int_equal(rd(h, IIR), 0x02);
	assert_int_equal(h->level, 0);
	/* A THR write leaves it pending (the line rises) without a glitch. */
	h->irq_calls = 0;
	wr(h, RBR, '!');
	assert_int_equal(h->irq_calls, 1);
	assert_int_equal(h->level, 1);
	/* Device reset lowers the line. */
	serial8250_device_ops.reset(&h->s);
	assert_int_equal(h->level, 0);
	assert_int_equal(rd(h, IER), 0);
}

static void test_loopback(void **state)
{
	struct host *h = *state;
	const uint8_t in[] = { 'h' };

	/* Linux's autoconfig: MCR = LOOP | OUT2 | RTS must show DCD | CTS. */
	wr(h, MCR, 0x1a);
	assert_int_equal(rd(h, MSR) & 0xf0, 0x90);
	wr(h, MCR, 0x15); /* LOOP | OUT1 | DTR -> RI | DSR */
	assert_int_equal(rd(h, MSR) & 0xf0, 0x60);
	wr(h, MCR, 0x10);
	assert_int_equal(rd(h, MSR), 0x06); /* DDSR and RI's trailing edge */
	/* THR goes to our own receiver, not to the host. */
	wr(h, RBR, 0x5a);
	assert_int_equal(h->ntx, 0);
	assert_int_equal(rd(h, LSR), 0x61);
	assert_int_equal(rd(h, RBR), 0x5a);
	/* Host input waits while the serial input is disconnected. */
	assert_int_equal(serial8250_rx_room(&h->s), 0);
	assert_int_equal(serial8250_rx(&h->s, in, 1), 0);
	/* Interrupts work inside the chip but do not leave it. */
	wr(h, IER, 0x02);
	wr(h, MCR, 0x18);
	assert_int_equal(rd(h, IIR), 0x02);
	assert_int_equal(h->irq_calls, 0);
	wr(h, MCR, 0x08);
	assert_int_equal(rd(h, MSR) & 0xf0, 0xb0);
	assert_int_equal(serial8250_rx(&h->s, in, 1), 1);
}

static void test_scr_and_wide_access(void **state)
{
	struct host *h = *state;
	uint8_t buf[4] = { 0x11, 0x22, 0x33, 0x44 };

	wr(h, SCR, 0xa5);
	assert_int_equal(rd(h, SCR), 0xa5);
	/* Wider accesses act on the low byte; reads zero the rest. */
	serial8250_bus_ops.write(&h->s, SCR, buf, 4);
	memset(buf, 0xff, sizeof(buf));
	serial8250_bus_ops.read(&h->s, SCR, buf, 4);
	assert_int_equal(buf[0], 0x11);
	assert_int_equal(buf[1] | buf[2] | buf[3], 0);
	serial8250_bus_ops.write(&h->s, RBR, (const uint8_t *)"ab", 2);
	assert_int_equal(h->ntx, 1);
	assert_int_equal(h->tx[0], 'a');
	/* Offsets past the 8 registers are harmless. */
	wr(h, 8, 0xff);
	wr(h, 0xffffffff, 0xff);
	assert_int_equal(rd(h, 9), 0);
	/* LSR and MSR writes are ignored. */
	wr(h, LSR, 0x00);
	wr(h, MSR, 0x00);
	assert_int_equal(rd(h, LSR), 0x60);
	assert_int_equal(rd(h, MSR), 0xb0);
}

/* Bring a device into a busy state: every register non-default. */
static void make_busy(struct host *h)
{
	uint8_t in[300];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7);
	wr(h, LCR, 0x80);
	wr(h, RBR, 0x03);
	wr(h, IER, 0x01);
	wr(h, LCR, 0x1b);
	wr(h, IIR, 0x81);
	wr(h, SCR, 0x42);
	wr(h, MCR, 0x0b);
	wr(h, IER, 0x0b);
	assert_int_equal(serial8250_rx(&h->s, in, sizeof(in)), sizeof(in));
	for (int i = 0; i < 20; i++)
		rd(h, RBR);
}

static void test_save_load(void **state)
{
	struct host *h = *state, *g;
	struct state_buf b;

	make_busy(h);
	g = host_copy(h, &b);
	assert_int_equal(b.data[0] | b.data[1] << 8, 1); /* leading LE version */
	/* The loaded device drives its IRQ line to match. */
	assert_int_equal(g->level, h->level);
	assert_int_equal(g->level, 1);

	/* Identical behaviour: every register, then the rest of the FIFO. */
	for (unsigned int off = IER; off <= SCR; off++)
		assert_int_equal(rd(g, off), rd(h, off));
	wr(h, LCR, 0x9b);
	wr(g, LCR, 0x9b);
	assert_int_equal(rd(g, RBR), 0x03);
	assert_int_equal(rd(g, IER), 0x01);
	wr(h, LCR, 0x1b);
	wr(g, LCR, 0x1b);
	for (int i = 0; i < 300 - 20; i++)
		assert_int_equal(rd(g, RBR), rd(h, RBR));
	assert_int_equal(rd(g, IIR), rd(h, IIR));
	assert_int_equal(rd(g, IIR), rd(h, IIR));
	assert_int_equal(g->level, h->level);
	state_buf_free(&b);
	free(g);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_load_rejects(void **state)
{
	struct host *h = *state;
	struct state_buf good;
	uint8_t *bad;
	/* Field offsets in the version 1 format. */
	const size_t ier = 4, lsr = 7, mcr = 6, msr = 8, fcr = 12, thr = 13, head = 14, count = 18;

	make_busy(h);
	host_save(h, &good);
	bad = malloc(good.len);
	assert_non_null(bad);

	host_expect_truncations_fail(h, &good);
#define MUTATE(stmt) HOST_EXPECT_MUTANT_FAILS(h, &good, bad, stmt)
	MUTATE(put_le32(bad, 2));			      /* unknown version */
	MUTATE(put_le32(bad + head, SERIAL8250_RX_BUF));      /* head out of range */
	MUTATE(put_le32(bad + count, SERIAL8250_RX_BUF + 1)); /* count out of range */
	MUTATE(put_le32(bad + count, 0xffffffff));
	MUTATE(put_le32(bad + count, 0)); /* DR set with no data */
	MUTATE(bad[ier] = 0x10);
	MUTATE(bad[mcr] = 0x20);
	MUTATE(bad[lsr] &= (uint8_t)~0x20); /* THR never fills */
	MUTATE(bad[msr] = 0x00);	    /* lines disagree with MCR */
	MUTATE(bad[fcr] = 0x40);	    /* trigger without enable */
	MUTATE(bad[thr] = 2);
	MUTATE({
		bad[ier] = 0x01;
		bad[thr] = 1; /* THRE pending without ETBEI */
	});
#undef MUTATE
	free(bad);
	state_buf_free(&good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HOST_TEST(test_power_on),	HOST_TEST(test_thr_reaches_tx),
		HOST_TEST(test_dlab_divisor),	HOST_TEST(test_ier_bits),
		HOST_TEST(test_rx_lsr),		HOST_TEST(test_rx_full_partial),
		HOST_TEST(test_fifo_iir_bits),	HOST_TEST(test_iir_priorities),
		HOST_TEST(test_thre_semantics), HOST_TEST(test_irq_levels),
		HOST_TEST(test_loopback),	HOST_TEST(test_scr_and_wide_access),
		HOST_TEST(test_save_load),	HOST_TEST(test_load_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
