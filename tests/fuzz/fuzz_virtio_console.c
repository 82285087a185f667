/* fuzz_virtio_console.c - libFuzzer target for virtio-console on a real
 * pty.
 *
 * Input: the header-program-image layout of fuzz_virtio.h (2 queues:
 * receiveq0, transmitq0).
 *   ops: 0x00-0x3f kick queue op % 2 and run the event loop once;
 *        0x40-0x7f the host types <next byte> bytes into the slave;
 *        0x80-0x8f the host reads what the slave has;
 *        0x90-0x9f save -> load into the same device;
 *        0xa0-0xaf reset and restart the driver;
 *        0xb0-0xbf publish: avail->idx of queue op % 2 = next byte;
 *        others: run the event loop once. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/evloop.h"
#include "cvisor/virtio_console.h"
#include "fuzz_virtio.h"

#define RAM_SIZE (128u << 10)
#define MAX_PROG 64

static uint8_t ram[RAM_SIZE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t typed[256] = { 'x' };
	static uint8_t sink[4096];
	struct virtio_dev d;
	struct guest_mem mem;
	struct evloop loop;
	struct cv_error e = { 0 };
	struct virtio_env env = { &mem, &loop, NULL, -1 };
	const uint8_t *prog;
	size_t n, i = 0;
	int slave;

	if (size < FUZZ_HDR)
		return 0;
	n = fuzz_split(data, size, MAX_PROG, ram, RAM_SIZE);
	prog = data + FUZZ_HDR;
	guest_mem_init_buf(&mem, ram, RAM_SIZE);
	if (evloop_init(&loop) || virtio_console_device_create(&d, "pty", 0, &env, &e))
		abort();
	slave = open(virtio_console_pty_path(&d), O_RDWR | O_NOCTTY | O_NONBLOCK);
	if (slave < 0)
		abort();
	fuzz_virtio_start_hdr(&d, data, 0, 2);
	while (i < n) {
		uint8_t op = prog[i++], arg = i < n ? prog[i] : 0;

		if (op < 0x40) {
			virtio_dev_notify(&d, op % 2);
			fuzz_loop_once(&loop);
		} else if (op < 0x80) {
			i++;
			(void)!write(slave, typed, arg);
			fuzz_loop_once(&loop);
		} else if (op < 0x90) {
			(void)!read(slave, sink, sizeof(sink));
			fuzz_loop_once(&loop);
		} else if (op < 0xa0) {
			fuzz_save_load_self(&d);
			fuzz_loop_once(&loop);
		} else if (op < 0xb0) {
			vqd_dev_status(&d, 0);
			fuzz_loop_once(&loop);
			fuzz_virtio_start_hdr(&d, data, 0, 2);
		} else if (op < 0xc0) {
			uint64_t idx = fuzz_vq_packed(op % 2, 0).avail + 2;

			i++;
			ram[idx] = arg;
			ram[idx + 1] = 0;
		} else {
			fuzz_loop_once(&loop);
		}
	}
	close(slave);
	d.ops->destroy(&d);
	pthread_mutex_destroy(&d.lock);
	evloop_destroy(&loop);
	return 0;
}
