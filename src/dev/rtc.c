/* rtc.c - the MC146818 CMOS real-time clock (see include/cvisor/rtc.h).
 *
 * Registers and bits are those of the Motorola MC146818A datasheet ("Address
 * Map", "Register A".."Register D"), as in Linux's mc146818rtc.h. Nothing
 * ticks: a read of a time register converts host CLOCK_REALTIME plus the
 * guest's offset, so there is no update cycle, A.UIP is never set and no
 * guest waits. Periodic, alarm and update-ended interrupts are not emulated:
 * C's flags stay 0 and IRQ 8 stays low. rtc-cmos still probes (it wants
 * B.24H and a clear UIP, and only requests IRQ 8); its alarms never fire.
 *
 * Linux 6.1's mach_get_cmos_time -> mc146818_get_time (rtc-mc146818-lib.c):
 * - mc146818_avoid_UIP reads SECONDS, A.UIP, SECONDS, the other fields, then
 *   A.UIP and SECONDS again. UIP is 0, so the first pass succeeds; if the
 *   host second ticks mid-read SECONDS differs and Linux retries, so a torn
 *   date is never kept (any rollover of minutes..year changes SECONDS).
 * - x86 has RTC_ALWAYS_BCD: Linux decodes BCD whatever B.DM says and takes
 *   HOURS as 0-23, hence the default B = 0x02 (24-hour, BCD).
 * - year = YEAR, + 100 if <= 69, + (century - 19) * 100 if the FADT names a
 *   century register: 2026 is 0x26 -> 126 either way. mon = MONTH - 1;
 *   DAY_OF_WEEK is ignored (here it is derived from the date).
 * - mc146818_set_time sets B.SET, writes A, YEAR..SECONDS and the century,
 *   then restores B and A: the writes become the guest's offset. */
#include "cvisor/rtc.h"

#include <errno.h>
#include <string.h>

#define REG_SEC 0x00
#define REG_MIN 0x02
#define REG_HOUR 0x04
#define REG_WDAY 0x06
#define REG_MDAY 0x07
#define REG_MON 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d

#define A_UIP 0x80     /* update in progress: read-only */
#define A_DEFAULT 0x26 /* 32.768 kHz time base, 1024 Hz periodic rate */
#define B_SET 0x80     /* inhibit updates so that software can set the time */
#define B_UIE 0x10
#define B_DM 0x04 /* binary data mode, else BCD */
#define B_24H 0x02
#define D_VRT 0x80   /* valid RAM and time: the battery is good */
#define HOUR_PM 0x80 /* 12-hour mode: bit 7 of HOURS */

#define RTC_STATE_VERSION 1
/* +-31,700 years: beyond any register value (year 25755), never overflows */
#define OFFSET_MAX 1000000000000LL

static bool is_time_reg(unsigned int i)
{
	return i == REG_SEC || i == REG_MIN || i == REG_HOUR || (i >= REG_WDAY && i <= REG_YEAR) ||
	       i == RTC_CENTURY;
}

static time_t host_now(const struct rtc *r)
{
	struct timespec ts;

	if (r->now)
		return r->now(r->ctx);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static uint8_t enc(const struct rtc *r, int v)
{
	if (v < 0) /* only before year 0; keeps the BCD shifts defined */
		v = 0;
	if (r->cmos[REG_B] & B_DM)
		return (uint8_t)v;
	return (uint8_t)((v / 10 % 10) << 4 | v % 10);
}

static int dec(const struct rtc *r, uint8_t v)
{
	return (r->cmos[REG_B] & B_DM) ? v : (v >> 4) * 10 + (v & 0x0f);
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back: the
 * era-of-400-years arithmetic (H. Hinnant, "chrono-Compatible Low-Level
 * Date Algorithms"). Not gmtime_r/timegm: glibc reads /etc/localtime on
 * their first call, which the vCPU thread's seccomp filter refuses (and a
 * jail hides). mon is 1-12. */
static int64_t days_from_civil(int64_t y, int64_t mon, int64_t mday)
{
	int64_t era, yoe, doy, doe;

	y -= mon <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (mon > 2 ? mon - 3 : mon + 9) + 2) / 5 + mday - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *mon, int *mday)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	*mon = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*mon <= 2);
}

/* Fill the time registers with the guest's current time, encoded as
 * register B says (the chip's update cycle, done on demand). */
static void rtc_latch(struct rtc *r)
{
	int64_t t, days, secs, year;
	int h, mon, mday;

	if (__builtin_add_overflow((int64_t)host_now(r), r->offset, &t))
		t = 0;
	days = t / 86400 - (t % 86400 < 0);
	secs = t - days * 86400;
	civil_from_days(days, &year, &mon, &mday);
	h = (int)(secs / 3600);
	r->cmos[REG_SEC] = enc(r, (int)(secs % 60));
	r->cmos[REG_MIN] = enc(r, (int)(secs / 60 % 60));
	if (r->cmos[REG_B] & B_24H)
		r->cmos[REG_HOUR] = enc(r, h);
	else /* 12 AM = 0x12, 12 PM = 0x92 (datasheet, data modes table) */
		r->cmos[REG_HOUR] =
			(uint8_t)(enc(r, h % 12 ? h % 12 : 12) | (h >= 12 ? HOUR_PM : 0));
	/* 1-7, Sunday = 1; 1970-01-01 was a Thursday */
	r->cmos[REG_WDAY] = enc(r, (int)(((days % 7) + 7 + 4) % 7) + 1);
	r->cmos[REG_MDAY] = enc(r, mday);
	r->cmos[REG_MON] = enc(r, mon);
	r->cmos[REG_YEAR] = enc(r, (int)(year % 100));
	r->cmos[RTC_CENTURY] = enc(r, (int)(year / 100));
}

/* The guest wrote a time register: the registers, decoded in the current
 * mode, are its time now. Doing this on each write, not when SET clears,
 * needs no extra state and a SET pulse without writes loses no time; but
 * unlike the chip the clock runs on while SET is held (only the readings
 * freeze), which Linux, holding SET for microseconds, cannot tell.
 * Out-of-range fields carry over as timegm would (month 13 is January of
 * the next year, day 0 the last of the month before); DAY_OF_WEEK is not
 * kept. */
static void rtc_commit(struct rtc *r)
{
	const uint8_t *c = r->cmos;
	int64_t hour, mon0, year, t, off;

	if (c[REG_B] & B_24H)
		hour = dec(r, c[REG_HOUR]);
	else
		hour = dec(r, c[REG_HOUR] & ~HOUR_PM) % 12 + (c[REG_HOUR] & HOUR_PM ? 12 : 0);
	/* Registers hold at most 0xff, so none of this can overflow. */
	mon0 = dec(r, c[REG_MON]) - 1;
	year = dec(r, c[RTC_CENTURY]) * 100 + dec(r, c[REG_YEAR]) + mon0 / 12 - (mon0 % 12 < 0);
	mon0 = (mon0 % 12 + 12) % 12;
	t = days_from_civil(year, mon0 + 1, 1) * 86400 + (dec(r, c[REG_MDAY]) - 1) * 86400 +
	    hour * 3600 + dec(r, c[REG_MIN]) * 60 + dec(r, c[REG_SEC]);
	if (__builtin_sub_overflow(t, (int64_t)host_now(r), &off))
		off = 0;
	r->offset = off > OFFSET_MAX ? OFFSET_MAX : off < -OFFSET_MAX ? -OFFSET_MAX : off;
}

static uint8_t rtc_reg_read(struct rtc *r, unsigned int i)
{
	uint8_t v;

	/* While SET is held the registers keep what was latched or written. */
	if (is_time_reg(i) && !(r->cmos[REG_B] & B_SET))
		rtc_latch(r);
	v = r->cmos[i];
	if (i == REG_C) /* reading C clears its flags (datasheet, Register C) */
		r->cmos[REG_C] = 0;
	return v;
}

static void rtc_reg_write(struct rtc *r, unsigned int i, uint8_t v)
{
	switch (i) {
	case REG_A:
		r->cmos[REG_A] = v & (uint8_t)~A_UIP;
		break;
	case REG_B:
		if ((v & B_SET) && !(r->cmos[REG_B] & B_SET)) {
			/* Freeze in the old mode: the chip does not convert the
			 * stored bytes when DM or 24/12 change. */
			rtc_latch(r);
			v &= (uint8_t)~B_UIE; /* SET clears UIE (datasheet, Register B) */
		}
		r->cmos[REG_B] = v;
		break;
	case REG_C:
	case REG_D:
		break; /* read-only */
	default:
		if (!is_time_reg(i)) {
			r->cmos[i] = v; /* alarms and RAM */
			break;
		}
		/* Without SET the write lands in a running clock: the other
		 * fields are those of this instant. */
		if (!(r->cmos[REG_B] & B_SET))
			rtc_latch(r);
		r->cmos[i] = v;
		rtc_commit(r);
		break;
	}
}

/* Port 0x70 is write-only on the PC; its bit 7 gates NMI in the chipset,
 * not in the RTC, and KVM's NMIs do not go through it, so it is dropped. */
static void rtc_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct rtc *r = opaque;

	pthread_mutex_lock(&r->lock);
	for (uint32_t n = 0; n < len; n++)
		data[n] = offset + n == 1 ? rtc_reg_read(r, r->index) : 0xff;
	pthread_mutex_unlock(&r->lock);
}

static void rtc_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct rtc *r = opaque;

	pthread_mutex_lock(&r->lock);
	for (uint32_t n = 0; n < len; n++) {
		if (offset + n == 0)
			r->index = data[n] & 0x7f;
		else if (offset + n == 1)
			rtc_reg_write(r, r->index, data[n]);
	}
	pthread_mutex_unlock(&r->lock);
}

const struct bus_ops rtc_bus_ops = {
	.read = rtc_read,
	.write = rtc_write,
};

/* The RESET pin clears B's interrupt enables and C's flags; time, RAM and
 * alarms are battery-backed and survive (datasheet, "RESET"). A and B are
 * then what a PC BIOS programs at POST. */
static void rtc_reset_locked(struct rtc *r)
{
	r->index = 0;
	r->cmos[REG_A] = A_DEFAULT;
	r->cmos[REG_B] = B_24H;
	r->cmos[REG_C] = 0;
	r->cmos[REG_D] = D_VRT;
}

void rtc_init(struct rtc *r, time_t (*now)(void *), void *ctx)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->now = now;
	r->ctx = ctx;
	rtc_reset_locked(r);
}

static void rtc_dev_reset(void *dev)
{
	struct rtc *r = dev;

	pthread_mutex_lock(&r->lock);
	rtc_reset_locked(r);
	pthread_mutex_unlock(&r->lock);
}

/* State format, version 1, all little-endian:
 *   u32 version
 *   u8 index (0-127)
 *   u8 cmos[128]  registers and RAM by index; the time bytes matter only
 *                 while B.SET is held
 *   u64 offset    guest minus host UTC seconds, two's complement */
static int rtc_dev_save(void *dev, struct state_buf *out)
{
	struct rtc *r = dev;

	pthread_mutex_lock(&r->lock);
	state_put_u32(out, RTC_STATE_VERSION);
	state_put_u8(out, r->index);
	state_put_bytes(out, r->cmos, sizeof(r->cmos));
	state_put_u64(out, (uint64_t)r->offset);
	pthread_mutex_unlock(&r->lock);
	return out->err;
}

static int rtc_dev_load(void *dev, struct state_rd *in)
{
	struct rtc *r = dev;
	uint8_t index, cmos[RTC_CMOS_SIZE];
	int64_t offset;

	if (state_get_u32(in) != RTC_STATE_VERSION)
		return -EINVAL;
	index = state_get_u8(in);
	state_get_bytes(in, cmos, sizeof(cmos));
	offset = (int64_t)state_get_u64(in);
	if (in->err || index >= RTC_CMOS_SIZE || offset > OFFSET_MAX || offset < -OFFSET_MAX)
		return -EINVAL;
	/* UIP is never set, no flag is ever raised, the battery never dies. */
	if ((cmos[REG_A] & A_UIP) || cmos[REG_C] || cmos[REG_D] != D_VRT)
		return -EINVAL;

	pthread_mutex_lock(&r->lock);
	r->index = index;
	memcpy(r->cmos, cmos, sizeof(cmos));
	r->offset = offset;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

const struct device_ops rtc_device_ops = {
	.name = "rtc",
	.reset = rtc_dev_reset,
	.save = rtc_dev_save,
	.load = rtc_dev_load,
};
