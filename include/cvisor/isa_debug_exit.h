/* isa_debug_exit.h - QEMU's isa-debug-exit device (hw/misc/debugexit.c) as
 * `-device isa-debug-exit,iobase=0xf4,iosize=4` sets it up: a guest write
 * of v ends the VM, and QEMU exits with status (v << 1) | 1. Test suites
 * (kvm-unit-tests) and hobby kernels report their result through it. */
#ifndef CVISOR_ISA_DEBUG_EXIT_H
#define CVISOR_ISA_DEBUG_EXIT_H

#include <stdint.h>

#include "cvisor/bus.h"

#define ISA_DEBUG_EXIT_PORT 0xf4
#define ISA_DEBUG_EXIT_LEN 4

struct isa_debug_exit {
	/* Called on the vCPU thread with the process exit status, the low
	 * 8 bits of (v << 1) | 1 (what exit() keeps): always odd. */
	void (*exit)(void *ctx, int status);
	void *ctx;
};

/* The exit status a write of v gives: ((v << 1) | 1) & 0xff. */
int isa_debug_exit_status(uint32_t v);

/* Port handlers for [ISA_DEBUG_EXIT_PORT, + ISA_DEBUG_EXIT_LEN), struct
 * isa_debug_exit as opaque. A write of any width at any offset in the
 * range exits with its value (little-endian), as QEMU's does; reads are 0. */
extern const struct bus_ops isa_debug_exit_bus_ops;

#endif
