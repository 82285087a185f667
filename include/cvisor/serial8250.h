/* serial8250.h - a 16550A UART (COM1) with FIFOs and its interrupt. */
#ifndef CVISOR_SERIAL8250_H
#define CVISOR_SERIAL8250_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvisor/bus.h"
#include "cvisor/device.h"

#define SERIAL8250_COM1_BASE 0x3f8
#define SERIAL8250_COM1_IRQ 4
#define SERIAL8250_RX_BUF 1024

struct serial8250 {
	pthread_mutex_t lock;
	/* registers (see the 16550A datasheet) */
	uint8_t ier, iir, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	bool thr_ipending; /* THR-empty interrupt pending until IIR read or THR write */
	/* receive FIFO, larger than the chip's 16 bytes so that pasted input is not lost */
	uint8_t rx[SERIAL8250_RX_BUF];
	unsigned int rx_head, rx_count;
	bool irq_level;
	/* host side: where transmitted bytes go, and how the IRQ line is driven */
	void (*tx)(void *ctx, const uint8_t *buf, size_t len);
	void (*set_irq)(void *ctx, int level);
	void *ctx;
};

/* Initialize to power-on state. tx and set_irq are called with the lock held. */
void serial8250_init(struct serial8250 *s, void (*tx)(void *, const uint8_t *, size_t),
		     void (*set_irq)(void *, int), void *ctx);

/* Queue host input for the guest; returns bytes accepted (may be < len when
 * full, and 0 while the guest holds the UART in loopback). */
size_t serial8250_rx(struct serial8250 *s, const uint8_t *buf, size_t len);

/* Bytes serial8250_rx() would accept now: free space in the receive
 * buffer, or 0 in loopback. */
size_t serial8250_rx_room(struct serial8250 *s);

/* Port I/O handlers for an 8-byte region at SERIAL8250_COM1_BASE. */
extern const struct bus_ops serial8250_bus_ops;
extern const struct device_ops serial8250_device_ops;

#endif
