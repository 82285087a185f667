/* test_i8042.c - the PS/2 controller as Linux's i8042 driver probes it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/i8042.h"

#define STS_OBF 0x01
#define STS_IBF 0x02
#define STS_SYS 0x04
#define STS_AUXDATA 0x20

struct host {
	struct i8042 k;
	unsigned int resets;
};

#define HOST_OPS i8042_device_ops
#define HOST_DEV(h) (&(h)->k)
#define HOST_CALLS(h) ((h)->resets)
#include "dev_host.h"

static void host_reset(void *ctx)
{
	struct host *h = ctx;

	h->resets++;
}

static void host_init(struct host *h)
{
	i8042_init(&h->k, host_reset, h);
}

static uint8_t status(struct host *h)
{
	uint8_t v = 0xee;

	i8042_cmd_ops.read(&h->k, 0, &v, 1);
	return v;
}

static void cmd(struct host *h, uint8_t v)
{
	/* Linux's i8042_wait_write: IBF must be clear before every write. */
	assert_int_equal(status(h) & STS_IBF, 0);
	i8042_cmd_ops.write(&h->k, 0, &v, 1);
}

static void data_wr(struct host *h, uint8_t v)
{
	assert_int_equal(status(h) & STS_IBF, 0);
	i8042_data_ops.write(&h->k, 0, &v, 1);
}

static uint8_t data_rd(struct host *h)
{
	uint8_t v = 0xee;

	i8042_data_ops.read(&h->k, 0, &v, 1);
	return v;
}

/* Like Linux's __i8042_command for a command with one result byte. */
static uint8_t cmd_result(struct host *h, uint8_t c)
{
	cmd(h, c);
	assert_true(status(h) & STS_OBF);
	return data_rd(h);
}

static void test_power_on(void **state)
{
	struct host *h = *state;

	assert_int_equal(status(h) & (STS_OBF | STS_IBF), 0);
	assert_true(status(h) & STS_SYS);
	assert_int_equal(cmd_result(h, 0x20), 0x45);
}

static void test_self_tests(void **state)
{
	struct host *h = *state;

	assert_int_equal(cmd_result(h, 0xaa), 0x55);
	assert_int_equal(status(h) & STS_OBF, 0);
	assert_true(status(h) & STS_SYS);
	assert_int_equal(cmd_result(h, 0xab), 0x00);
	assert_int_equal(cmd_result(h, 0xa9), 0x00);
	/* An empty output buffer reads back the last byte. */
	assert_int_equal(data_rd(h), 0x00);
	assert_int_equal(cmd_result(h, 0xaa), 0x55);
	assert_int_equal(data_rd(h), 0x55);
	assert_int_equal(status(h) & STS_OBF, 0);
}

static void test_cmd_byte(void **state)
{
	struct host *h = *state;

	cmd(h, 0x60);
	data_wr(h, 0x30); /* both ports disabled, interrupts off, SYS clear */
	assert_int_equal(cmd_result(h, 0x20), 0x30);
	assert_int_equal(status(h) & STS_SYS, 0); /* status mirrors bit 2 */
	/* Linux's i8042_check_aux: A7 sets AUXDIS, A8 clears it. */
	cmd(h, 0xa8);
	assert_int_equal(cmd_result(h, 0x20) & 0x20, 0);
	cmd(h, 0xa7);
	assert_int_equal(cmd_result(h, 0x20) & 0x20, 0x20);
	cmd(h, 0xae);
	assert_int_equal(cmd_result(h, 0x20) & 0x10, 0);
	cmd(h, 0xad);
	assert_int_equal(cmd_result(h, 0x20) & 0x10, 0x10);
	cmd(h, 0x60);
	data_wr(h, 0x47);
	assert_int_equal(cmd_result(h, 0x20), 0x47);
	assert_true(status(h) & STS_SYS);
	/* A command abandons one still waiting for its parameter. */
	cmd(h, 0x60);
	cmd(h, 0x20);
	assert_int_equal(data_rd(h), 0x47);
	/* The CTR read twice is stable (Linux's i8042_controller_init). */
	assert_int_equal(cmd_result(h, 0x20), cmd_result(h, 0x20));
	assert_int_equal(h->resets, 0);
}

static void test_aux_loop(void **state)
{
	struct host *h = *state;

	/* Linux's AUX_LOOP: the echo comes back flagged as aux data. */
	cmd(h, 0xd3);
	data_wr(h, 0x5a);
	assert_int_equal(status(h) & (STS_OBF | STS_AUXDATA), STS_OBF | STS_AUXDATA);
	assert_int_equal(data_rd(h), 0x5a);
	assert_int_equal(status(h) & (STS_OBF | STS_AUXDATA), 0);
	/* D2 goes to the keyboard side. */
	cmd(h, 0xd2);
	data_wr(h, 0x1c);
	assert_int_equal(status(h) & (STS_OBF | STS_AUXDATA), STS_OBF);
	/* An unread byte from the other port is replaced, as the 8042 has
	 * one output register. */
	cmd(h, 0xd3);
	data_wr(h, 0xa5);
	assert_int_equal(status(h) & STS_AUXDATA, STS_AUXDATA);
	assert_int_equal(data_rd(h), 0xa5);
	assert_int_equal(status(h) & STS_OBF, 0);
}

static void test_no_devices_answer(void **state)
{
	struct host *h = *state;

	/* Keyboard commands (reset, GETID) and mouse commands via D4 find
	 * nobody: the output buffer stays empty. */
	data_wr(h, 0xff);
	data_wr(h, 0xf2);
	cmd(h, 0xd4);
	data_wr(h, 0xf2);
	assert_int_equal(status(h) & STS_OBF, 0);
	/* ... and the next controller command reads its own result. */
	assert_int_equal(cmd_result(h, 0xaa), 0x55);
}

static void test_reset_fe(void **state)
{
	struct host *h = *state;

	cmd(h, 0xfe);
	assert_int_equal(h->resets, 1);
	/* F0-FF pulse the lines whose bit is 0: only even ones reset. */
	cmd(h, 0xff);
	cmd(h, 0xf1);
	assert_int_equal(h->resets, 1);
	cmd(h, 0xf0);
	cmd(h, 0xfc);
	assert_int_equal(h->resets, 3);
	/* Unknown commands do nothing. */
	cmd(h, 0x00);
	cmd(h, 0xc0);
	assert_int_equal(h->resets, 3);
	assert_int_equal(status(h) & STS_OBF, 0);
}

static void test_output_port(void **state)
{
	struct host *h = *state;

	/* Reset deasserted, A20 on. */
	assert_int_equal(cmd_result(h, 0xd0) & 0x03, 0x03);
	cmd(h, 0xd1);
	data_wr(h, 0xdf); /* the classic "enable A20" write */
	assert_int_equal(h->resets, 0);
	cmd(h, 0xd1);
	data_wr(h, 0xde); /* bit 0 clear: CPU reset */
	assert_int_equal(h->resets, 1);
	/* A data byte without a pending D1 does not reset. */
	data_wr(h, 0x00);
	assert_int_equal(h->resets, 1);
}

static void test_wide_access(void **state)
{
	struct host *h = *state;
	uint8_t buf[4] = { 0xaa, 0x11, 0x22, 0x33 };

	i8042_cmd_ops.write(&h->k, 0, buf, 4);
	memset(buf, 0xff, sizeof(buf));
	i8042_data_ops.read(&h->k, 0, buf, 4);
	assert_int_equal(buf[0], 0x55);
	assert_int_equal(buf[1] | buf[2] | buf[3], 0);
}

static void make_busy(struct host *h)
{
	cmd(h, 0x60);
	data_wr(h, 0x61);
	cmd(h, 0xd3);
	data_wr(h, 0x01);
	cmd(h, 0xd3);
	data_wr(h, 0x02);
	assert_int_equal(data_rd(h), 0x01);
	cmd(h, 0xd3);
	data_wr(h, 0x03);
	cmd(h, 0xd1); /* left waiting for its parameter */
}

static void test_save_load(void **state)
{
	struct host *h = *state, *g;
	struct state_buf b;

	make_busy(h);
	g = host_copy(h, &b);

	/* Same behaviour: the pending D1, the queue, the stale byte. */
	assert_int_equal(status(g), status(h));
	data_wr(g, 0xfe);
	data_wr(h, 0xfe);
	assert_int_equal(g->resets, 1);
	assert_int_equal(h->resets, 1);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(status(g), status(h));
		assert_int_equal(data_rd(g), data_rd(h));
	}
	assert_int_equal(cmd_result(g, 0x20), 0x61);
	assert_int_equal(cmd_result(h, 0x20), 0x61);
	state_buf_free(&b);
	free(g);
}

static void test_load_rejects(void **state)
{
	struct host *h = *state;
	struct state_buf good;
	uint8_t bad[64];
	/* Field offsets in the version 1 format. */
	const size_t sts = 4, pending = 6, head = 7, count = 11;

	make_busy(h);
	host_save(h, &good);
	assert_true(good.len <= sizeof(bad));
	host_expect_truncations_fail(h, &good);

#define MUTATE(off, v) HOST_EXPECT_MUTANT_FAILS(h, &good, bad, bad[off] = (v))
	MUTATE(0, 2);	     /* unknown version */
	MUTATE(head, 16);    /* ring index out of range */
	MUTATE(head + 3, 1); /* ... in its high byte */
	MUTATE(count, 17);   /* count out of range */
	MUTATE(count, 0);    /* OBF set with nothing queued */
	MUTATE(pending, 0xd5);
	MUTATE(sts, bad[sts] | STS_IBF);
	MUTATE(sts, bad[sts] & ~STS_OBF);
#undef MUTATE
	state_buf_free(&good);
}

static void test_reset_op(void **state)
{
	struct host *h = *state;

	make_busy(h);
	i8042_device_ops.reset(&h->k);
	assert_int_equal(status(h) & STS_OBF, 0);
	data_wr(h, 0x00); /* the D1 was forgotten */
	assert_int_equal(h->resets, 0);
	assert_int_equal(cmd_result(h, 0x20), 0x45);
	cmd(h, 0xfe); /* callbacks survive */
	assert_int_equal(h->resets, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		HOST_TEST(test_power_on),	   HOST_TEST(test_self_tests),
		HOST_TEST(test_cmd_byte),	   HOST_TEST(test_aux_loop),
		HOST_TEST(test_no_devices_answer), HOST_TEST(test_reset_fe),
		HOST_TEST(test_output_port),	   HOST_TEST(test_wide_access),
		HOST_TEST(test_save_load),	   HOST_TEST(test_load_rejects),
		HOST_TEST(test_reset_op),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
