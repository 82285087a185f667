/* test_rtc.c - the MC146818 RTC as Linux's x86 boot code and rtc-cmos use it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cvisor/rtc.h"

#define T_SUN 1795320306    /* 2026-11-22 04:05:06 UTC, a Sunday */
#define T_Y2K_EVE 946684790 /* 1999-12-31 23:59:50 UTC */
#define T_NYE 1798761599    /* 2026-12-31 23:59:59 UTC */

struct host {
	struct rtc r;
	time_t t;
	unsigned int calls;
	unsigned int tick_at; /* if nonzero, t advances by one second on this call */
};

static time_t host_clock(void *ctx)
{
	struct host *h = ctx;

	if (++h->calls == h->tick_at)
		h->t++;
	return h->t;
}

static int setup(void **state)
{
	struct host *h = calloc(1, sizeof(*h));

	if (!h)
		return -1;
	h->t = T_SUN;
	rtc_init(&h->r, host_clock, h);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

/* Linux's CMOS_READ / CMOS_WRITE: outb(index, 0x70), then 0x71. */
static uint8_t rd(struct rtc *r, uint8_t idx)
{
	uint8_t v = 0xee;

	rtc_bus_ops.write(r, 0, &idx, 1);
	rtc_bus_ops.read(r, 1, &v, 1);
	return v;
}

static void wr(struct rtc *r, uint8_t idx, uint8_t v)
{
	rtc_bus_ops.write(r, 0, &idx, 1);
	rtc_bus_ops.write(r, 1, &v, 1);
}

static int bcd2bin(uint8_t v)
{
	return (v >> 4) * 10 + (v & 15);
}

/* mc146818_get_time() of Linux 6.1 on x86 (RTC_ALWAYS_BCD), with
 * mc146818_avoid_UIP's retries; century_reg is the FADT's CENTURY field.
 * Returns the UTC seconds Linux computes, and how many passes it took. */
static time_t linux_get_time(struct rtc *r, uint8_t century_reg, int *passes)
{
	for (int i = 1; i <= 10; i++) {
		struct tm tm = { 0 };
		uint8_t sec = rd(r, 0x00), century = 0;

		if ((rd(r, 0x0a) & 0x80) || sec != rd(r, 0x00))
			continue;
		tm.tm_sec = sec;
		tm.tm_min = rd(r, 0x02);
		tm.tm_hour = rd(r, 0x04);
		tm.tm_mday = rd(r, 0x07);
		tm.tm_mon = rd(r, 0x08);
		tm.tm_year = rd(r, 0x09);
		if (century_reg)
			century = rd(r, century_reg);
		(void)rd(r, 0x0b);
		if ((rd(r, 0x0a) & 0x80) || sec != rd(r, 0x00))
			continue;
		tm.tm_sec = bcd2bin((uint8_t)tm.tm_sec);
		tm.tm_min = bcd2bin((uint8_t)tm.tm_min);
		tm.tm_hour = bcd2bin((uint8_t)tm.tm_hour);
		tm.tm_mday = bcd2bin((uint8_t)tm.tm_mday);
		tm.tm_mon = bcd2bin((uint8_t)tm.tm_mon) - 1;
		tm.tm_year = bcd2bin((uint8_t)tm.tm_year);
		if (bcd2bin(century) > 19)
			tm.tm_year += (bcd2bin(century) - 19) * 100;
		if (tm.tm_year <= 69)
			tm.tm_year += 100;
		*passes = i;
		return timegm(&tm);
	}
	*passes = 0;
	return -1;
}

static void test_bcd_read(void **state)
{
	struct host *h = *state;

	assert_int_equal(rd(&h->r, 0x00), 0x06);
	assert_int_equal(rd(&h->r, 0x02), 0x05);
	assert_int_equal(rd(&h->r, 0x04), 0x04);
	assert_int_equal(rd(&h->r, 0x06), 0x01); /* Sunday = 1 */
	assert_int_equal(rd(&h->r, 0x07), 0x22);
	assert_int_equal(rd(&h->r, 0x08), 0x11);
	assert_int_equal(rd(&h->r, 0x09), 0x26);
	assert_int_equal(rd(&h->r, RTC_CENTURY), 0x20);
	assert_int_equal(rd(&h->r, 0x0a), 0x26);
	assert_int_equal(rd(&h->r, 0x0b), 0x02);
	/* The clock follows the host, a read at a time. */
	h->t += 3600 + 60 + 1;
	assert_int_equal(rd(&h->r, 0x00), 0x07);
	assert_int_equal(rd(&h->r, 0x02), 0x06);
	assert_int_equal(rd(&h->r, 0x04), 0x05);
}

static void test_binary_read(void **state)
{
	struct host *h = *state;

	wr(&h->r, 0x0b, 0x06); /* DM: binary, 24h */
	assert_int_equal(rd(&h->r, 0x00), 6);
	assert_int_equal(rd(&h->r, 0x02), 5);
	assert_int_equal(rd(&h->r, 0x04), 4);
	assert_int_equal(rd(&h->r, 0x06), 1);
	assert_int_equal(rd(&h->r, 0x07), 22);
	assert_int_equal(rd(&h->r, 0x08), 11);
	assert_int_equal(rd(&h->r, 0x09), 26);
	assert_int_equal(rd(&h->r, RTC_CENTURY), 20);
}

/* The device's own calendar against glibc's, both ways, in binary mode:
 * every field and the weekday for dates from 1970 past 2100 (leap days,
 * 2000 a leap year and 2100 not), and a guest's write read back. Out of
 * range fields carry over as timegm's do (month 13, day 0). */
static void test_calendar(void **state)
{
	static const int64_t days[] = { 0,     59,    789,   10956, 11015, 11016, 11017,
					19782, 20454, 47540, 47541, 47542, 47600, 73048 };
	struct host *h = *state;

	wr(&h->r, 0x0b, 0x06); /* DM: binary, 24h */
	for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
		for (int64_t s = 0; s < 86400; s += 86399 / 3) {
			time_t t = (time_t)(days[i] * 86400 + s);
			struct tm tm;

			h->t = t;
			h->r.offset = 0;
			assert_non_null(gmtime_r(&t, &tm));
			assert_int_equal(rd(&h->r, 0x00), tm.tm_sec);
			assert_int_equal(rd(&h->r, 0x02), tm.tm_min);
			assert_int_equal(rd(&h->r, 0x04), tm.tm_hour);
			assert_int_equal(rd(&h->r, 0x06), tm.tm_wday + 1);
			assert_int_equal(rd(&h->r, 0x07), tm.tm_mday);
			assert_int_equal(rd(&h->r, 0x08), tm.tm_mon + 1);
			assert_int_equal(rd(&h->r, 0x09), (tm.tm_year + 1900) % 100);
			assert_int_equal(rd(&h->r, RTC_CENTURY), (tm.tm_year + 1900) / 100);
		}
	}
	/* The guest sets 2100-02-29 12:00:00 (no such day: March 1st) and
	 * month 13 of 2026 (January 2027). */
	h->t = T_SUN;
	wr(&h->r, 0x0b, 0x86);
	wr(&h->r, RTC_CENTURY, 21);
	wr(&h->r, 0x09, 0);
	wr(&h->r, 0x08, 2);
	wr(&h->r, 0x07, 29);
	wr(&h->r, 0x04, 12);
	wr(&h->r, 0x02, 0);
	wr(&h->r, 0x00, 0);
	wr(&h->r, 0x0b, 0x06);
	assert_int_equal(h->r.offset, (int64_t)4107585600 - T_SUN);
	assert_int_equal(rd(&h->r, 0x08), 3);
	assert_int_equal(rd(&h->r, 0x07), 1);
	wr(&h->r, 0x0b, 0x86);
	wr(&h->r, RTC_CENTURY, 20);
	wr(&h->r, 0x09, 26);
	wr(&h->r, 0x08, 13);
	wr(&h->r, 0x07, 0);
	wr(&h->r, 0x0b, 0x06);
	assert_int_equal(rd(&h->r, 0x09), 26);
	assert_int_equal(rd(&h->r, 0x08), 12);
	assert_int_equal(rd(&h->r, 0x07), 31);
}

static void test_12_hour(void **state)
{
	struct host *h = *state;

	/* 16:05:06, 12-hour BCD: 4 PM */
	h->t = T_SUN + 12 * 3600;
	wr(&h->r, 0x0b, 0x00);
	assert_int_equal(rd(&h->r, 0x04), 0x84);
	/* 00:05:06 is 12 AM, 12:05:06 is 12 PM */
	h->t = T_SUN - 4 * 3600;
	assert_int_equal(rd(&h->r, 0x04), 0x12);
	h->t = T_SUN + 8 * 3600;
	assert_int_equal(rd(&h->r, 0x04), 0x92);
	/* 23:05:06, 12-hour binary: 11 PM */
	h->t = T_SUN + 19 * 3600;
	wr(&h->r, 0x0b, 0x04);
	assert_int_equal(rd(&h->r, 0x04), 0x80 | 11);

	/* Setting 1 PM in 12-hour mode reads 13 in 24-hour mode. */
	wr(&h->r, 0x0b, 0x00);
	wr(&h->r, 0x0b, 0x80);
	wr(&h->r, 0x04, 0x81);
	wr(&h->r, 0x0b, 0x02);
	assert_int_equal(rd(&h->r, 0x04), 0x13);
}

static void test_index_port(void **state)
{
	struct host *h = *state;
	uint8_t v = 0;

	/* Linux's CMOS_READ with NMIs disabled sets bit 7 of the index. */
	assert_int_equal(rd(&h->r, 0x80 | 0x00), 0x06);
	assert_int_equal(rd(&h->r, 0x80 | 0x0d), 0x80);
	wr(&h->r, 0x80 | 0x0e, 0x5a);
	assert_int_equal(rd(&h->r, 0x0e), 0x5a);
	assert_int_equal(h->r.index, 0x0e);
	/* The index port is write-only. */
	rtc_bus_ops.read(&h->r, 0, &v, 1);
	assert_int_equal(v, 0xff);
	/* outw 0x70: index in the low byte, data in the high byte. */
	uint8_t w[2] = { 0x0f, 0xa5 }, rw[2] = { 0, 0 };
	rtc_bus_ops.write(&h->r, 0, w, 2);
	assert_int_equal(rd(&h->r, 0x0f), 0xa5);
	rtc_bus_ops.read(&h->r, 0, rw, 2);
	assert_int_equal(rw[0], 0xff);
	assert_int_equal(rw[1], 0xa5);
}

/* mc146818_set_time() with an FADT century register, then the host clock
 * moves on and the guest keeps its own time. */
static void test_guest_sets_time(void **state)
{
	struct host *h = *state;
	uint8_t b = rd(&h->r, 0x0b), a = rd(&h->r, 0x0a);
	int passes;

	wr(&h->r, 0x0b, b | 0x80);
	wr(&h->r, 0x0a, a | 0x70); /* RTC_DIV_RESET2 */
	wr(&h->r, 0x09, 0x99);
	wr(&h->r, 0x08, 0x12);
	wr(&h->r, 0x07, 0x31);
	wr(&h->r, 0x04, 0x23);
	wr(&h->r, 0x02, 0x59);
	wr(&h->r, 0x00, 0x50);
	wr(&h->r, RTC_CENTURY, 0x19);
	/* While SET is held the readings hold what was written; the clock
	 * itself runs on from the last write (see rtc_commit). */
	h->t += 2;
	assert_int_equal(rd(&h->r, 0x00), 0x50);
	assert_int_equal(rd(&h->r, 0x09), 0x99);
	wr(&h->r, 0x0b, b);
	wr(&h->r, 0x0a, a);
	assert_int_equal(linux_get_time(&h->r, RTC_CENTURY, &passes), T_Y2K_EVE + 2);
	assert_int_equal(rd(&h->r, 0x00), 0x52);

	h->t += 13; /* across the century */
	assert_int_equal(linux_get_time(&h->r, RTC_CENTURY, &passes), T_Y2K_EVE + 15);
	assert_int_equal(rd(&h->r, 0x00), 0x05);
	assert_int_equal(rd(&h->r, 0x02), 0x00);
	assert_int_equal(rd(&h->r, 0x04), 0x00);
	assert_int_equal(rd(&h->r, 0x06), 0x07); /* 2000-01-01 was a Saturday */
	assert_int_equal(rd(&h->r, 0x07), 0x01);
	assert_int_equal(rd(&h->r, 0x08), 0x01);
	assert_int_equal(rd(&h->r, 0x09), 0x00);
	assert_int_equal(rd(&h->r, RTC_CENTURY), 0x20);
	assert_int_equal(h->r.offset, (int64_t)T_Y2K_EVE - T_SUN);

	/* A write without SET changes just that field of the running clock:
	 * 00:01:06 becomes 00:30:06. */
	h->t += 61;
	wr(&h->r, 0x02, 0x30);
	assert_int_equal(linux_get_time(&h->r, RTC_CENTURY, &passes), T_Y2K_EVE + 16 + 30 * 60);
}

/* What mach_get_cmos_time() sees: the host's time on the first pass, with
 * or without an FADT century register. */
static void test_linux_reads_host_time(void **state)
{
	struct host *h = *state;
	int passes;

	assert_int_equal(linux_get_time(&h->r, 0, &passes), T_SUN);
	assert_int_equal(passes, 1);
	assert_int_equal(linux_get_time(&h->r, RTC_CENTURY, &passes), T_SUN);
	assert_int_equal(passes, 1);

	/* The host second ticks mid-read (at MONTH, on New Year's Eve): the
	 * first pass reads a torn date, SECONDS changes, Linux retries. */
	h->t = T_NYE;
	h->calls = 0;
	h->tick_at = 6;
	assert_int_equal(linux_get_time(&h->r, RTC_CENTURY, &passes), T_NYE + 1);
	assert_int_equal(passes, 2);
}

/* With the real clock, Linux reads the host's UTC time. */
static void test_real_clock(void **state)
{
	struct rtc r;
	time_t before, got, after;
	int passes;

	(void)state;
	rtc_init(&r, NULL, NULL);
	before = time(NULL);
	got = linux_get_time(&r, RTC_CENTURY, &passes);
	after = time(NULL);
	assert_true(got >= before && got <= after);
}

static void test_regs_c_d(void **state)
{
	struct host *h = *state;

	assert_int_equal(rd(&h->r, 0x0c), 0x00);
	wr(&h->r, 0x0c, 0xf0); /* read-only */
	assert_int_equal(rd(&h->r, 0x0c), 0x00);
	/* rtc-cmos enables interrupts: still no flags, IRQ 8 never raised. */
	wr(&h->r, 0x0b, 0x02 | 0x40 | 0x20 | 0x10);
	h->t += 5;
	assert_int_equal(rd(&h->r, 0x0c), 0x00);
	assert_int_equal(rd(&h->r, 0x0d), 0x80);
	wr(&h->r, 0x0d, 0x00);
	assert_int_equal(rd(&h->r, 0x0d), 0x80);
	/* UIP is read-only and never set; the rest of A is the guest's. */
	wr(&h->r, 0x0a, 0xff);
	assert_int_equal(rd(&h->r, 0x0a), 0x7f);
	/* Setting SET clears UIE (datasheet, Register B). */
	wr(&h->r, 0x0b, 0x80 | 0x10 | 0x02);
	assert_int_equal(rd(&h->r, 0x0b), 0x82);
	/* The alarm registers are plain storage. */
	wr(&h->r, 0x01, 0xc0);
	wr(&h->r, 0x03, 0x15);
	wr(&h->r, 0x05, 0x07);
	assert_int_equal(rd(&h->r, 0x01), 0xc0);
	assert_int_equal(rd(&h->r, 0x03), 0x15);
	assert_int_equal(rd(&h->r, 0x05), 0x07);
}

static void test_cmos_ram(void **state)
{
	struct host *h = *state;

	for (unsigned int i = 0x0e; i < RTC_CMOS_SIZE; i++)
		if (i != RTC_CENTURY)
			wr(&h->r, (uint8_t)i, (uint8_t)(i * 7 + 3));
	for (unsigned int i = 0x0e; i < RTC_CMOS_SIZE; i++)
		if (i != RTC_CENTURY)
			assert_int_equal(rd(&h->r, (uint8_t)i), (uint8_t)(i * 7 + 3));
	assert_int_equal(rd(&h->r, RTC_CENTURY), 0x20);
}

static void test_reset(void **state)
{
	struct host *h = *state;

	wr(&h->r, 0x0b, 0x80 | 0x40 | 0x02);
	wr(&h->r, 0x09, 0x30);
	wr(&h->r, 0x0b, 0x40 | 0x04); /* binary, periodic interrupt on */
	wr(&h->r, 0x0a, 0x70);
	wr(&h->r, 0x40, 0x12);
	rtc_device_ops.reset(&h->r);
	/* Battery-backed: the guest's year and RAM survive; A and B are the
	 * firmware's again. */
	assert_int_equal(rd(&h->r, 0x0a), 0x26);
	assert_int_equal(rd(&h->r, 0x0b), 0x02);
	assert_int_equal(rd(&h->r, 0x09), 0x30);
	assert_int_equal(rd(&h->r, 0x40), 0x12);
}

static void save(struct rtc *r, struct state_buf *b)
{
	memset(b, 0, sizeof(*b));
	assert_int_equal(rtc_device_ops.save(r, b), 0);
}

static void test_save_load(void **state)
{
	struct host *h = *state, h2 = { .t = T_SUN + 50 };
	struct state_buf b, b2;
	struct state_rd rdr;

	wr(&h->r, 0x0b, 0x82); /* SET held across the snapshot */
	wr(&h->r, 0x09, 0x31);
	wr(&h->r, 0x50, 0xab);
	wr(&h->r, 0x03, 0x44);
	wr(&h->r, 0x0a, 0x2a);
	rtc_bus_ops.write(&h->r, 0, &(uint8_t){ 0x07 }, 1);
	save(&h->r, &b);
	assert_int_equal(b.len, 4 + 1 + RTC_CMOS_SIZE + 8);

	rtc_init(&h2.r, host_clock, &h2);
	state_rd_init(&rdr, b.data, b.len);
	assert_int_equal(rtc_device_ops.load(&h2.r, &rdr), 0);
	assert_int_equal(rdr.pos, b.len);
	save(&h2.r, &b2);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.data, b.data, b.len);
	/* The index survives: a read of the data port needs no new index. */
	uint8_t v = 0;
	rtc_bus_ops.read(&h2.r, 1, &v, 1);
	assert_int_equal(v, 0x22);
	assert_int_equal(rd(&h2.r, 0x50), 0xab);
	assert_int_equal(rd(&h2.r, 0x03), 0x44);
	assert_int_equal(rd(&h2.r, 0x0a), 0x2a);
	/* Still frozen at the written year; released, the clock runs from
	 * there on the new host's time. */
	assert_int_equal(rd(&h2.r, 0x09), 0x31);
	wr(&h2.r, 0x0b, 0x02);
	assert_int_equal(rd(&h2.r, 0x09), 0x31);
	assert_int_equal(rd(&h2.r, 0x00), 0x56);
	h2.t += 10;
	assert_int_equal(rd(&h2.r, 0x00), 0x06);
	assert_int_equal(rd(&h2.r, 0x02), 0x06);
	state_buf_free(&b);
	state_buf_free(&b2);
}

static int try_load(struct rtc *r, const uint8_t *p, size_t len)
{
	struct state_rd in;

	state_rd_init(&in, p, len);
	return rtc_device_ops.load(r, &in);
}

static void test_load_rejects(void **state)
{
	struct host *h = *state;
	struct state_buf good, before, after;
	uint8_t *bad;

	wr(&h->r, 0x20, 0x77);
	save(&h->r, &good);
	bad = malloc(good.len);
	assert_non_null(bad);
	wr(&h->r, 0x20, 0x11);
	wr(&h->r, 0x0b, 0x06);
	save(&h->r, &before);

	for (size_t n = 0; n < good.len; n++)
		assert_int_equal(try_load(&h->r, good.data, n), -EINVAL);

	struct {
		size_t off;
		uint8_t v;
	} cases[] = {
		{ 0, 2 },			 /* version */
		{ 4, 0x80 },			 /* index >= 128 */
		{ 5 + 0x0a, 0xa6 },		 /* UIP set */
		{ 5 + 0x0c, 0x80 },		 /* a flag in C */
		{ 5 + 0x0d, 0x00 },		 /* battery dead */
		{ 5 + RTC_CMOS_SIZE + 7, 0x40 }, /* offset beyond any year */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, good.data, good.len);
		bad[cases[i].off] = cases[i].v;
		assert_int_equal(try_load(&h->r, bad, good.len), -EINVAL);
	}

	save(&h->r, &after);
	assert_int_equal(after.len, before.len);
	assert_memory_equal(after.data, before.data, before.len);
	assert_int_equal(try_load(&h->r, good.data, good.len), 0);
	assert_int_equal(rd(&h->r, 0x20), 0x77);
	free(bad);
	state_buf_free(&good);
	state_buf_free(&before);
	state_buf_free(&after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bcd_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calendar, setup, teardown),
		cmocka_unit_test_setup_teardown(test_12_hour, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_sets_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_linux_reads_host_time, setup, teardown),
		cmocka_unit_test(test_real_clock),
		cmocka_unit_test_setup_teardown(test_regs_c_d, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmos_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_rejects, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
