/* rtc.h - the MC146818 CMOS real-time clock, reading the host's UTC time. */
#ifndef CVISOR_RTC_H
#define CVISOR_RTC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "cvisor/bus.h"
#include "cvisor/device.h"

#define RTC_PORT 0x70 /* 0x70: index (bit 7 = NMI disable), 0x71: data */
#define RTC_PORT_LEN 2
#define RTC_IRQ 8 /* never raised: no RTC interrupts are emulated */
#define RTC_CMOS_SIZE 128
#define RTC_CENTURY 0x32 /* century byte, for the FADT's CENTURY field */

struct rtc {
	pthread_mutex_t lock;
	uint8_t index; /* selected register, NMI bit already masked off */
	/* Registers and RAM, by index. The time bytes (0x00, 0x02, 0x04,
	 * 0x06-0x09, 0x32) are only meaningful while register B's SET bit
	 * holds the clock frozen; otherwise reads compute them afresh. */
	uint8_t cmos[RTC_CMOS_SIZE];
	/* guest time = host time + offset, in seconds; set by the guest */
	int64_t offset;
	/* host UTC seconds; NULL reads CLOCK_REALTIME. Called with lock held. */
	time_t (*now)(void *ctx);
	void *ctx;
};

/* Initialize to the state firmware leaves behind (24-hour BCD, no
 * interrupts, guest time = host time). now may be NULL for the real clock. */
void rtc_init(struct rtc *r, time_t (*now)(void *), void *ctx);

/* One region of RTC_PORT_LEN ports at RTC_PORT, struct rtc as opaque:
 * offset 0 = index, offset 1 = data. */
extern const struct bus_ops rtc_bus_ops;
extern const struct device_ops rtc_device_ops;

#endif
