/* i8042.h - the PS/2 controller, enough for Linux's probe and its reset line. */
#ifndef CVISOR_I8042_H
#define CVISOR_I8042_H

#include <pthread.h>
#include <stdint.h>

#include "cvisor/bus.h"
#include "cvisor/device.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64

struct i8042 {
	pthread_mutex_t lock;
	uint8_t status;
	uint8_t cmd_byte;    /* controller configuration byte */
	uint8_t pending_cmd; /* command waiting for its data byte, 0 if none */
	uint8_t outbuf[16];
	unsigned int out_head, out_count;
	/* called (with the lock held) when the guest pulses the reset line */
	void (*reset)(void *ctx);
	void *ctx;
};

void i8042_init(struct i8042 *k, void (*reset)(void *), void *ctx);

/* Handlers for two 1-byte regions, both with the struct i8042 as opaque:
 * i8042_data_ops at I8042_DATA_PORT and i8042_cmd_ops at I8042_CMD_PORT. */
extern const struct bus_ops i8042_data_ops;
extern const struct bus_ops i8042_cmd_ops;
extern const struct device_ops i8042_device_ops;

#endif
