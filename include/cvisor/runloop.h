/* runloop.h - the monitor's main thread while the guest runs (src/monitor/runloop.c). */
#ifndef CVISOR_RUNLOOP_H
#define CVISOR_RUNLOOP_H

struct vm;

/* Block the signals the run loop takes through a signalfd. Call before any
 * thread starts, so that every thread inherits the mask. */
void runloop_block_signals(void);

/* Serve the console (stdin to the UART) and signals until the VM stops.
 * Returns the terminating signal number, or 0. */
int runloop_run(struct vm *vm);

#endif
