/* fuzz_virtio_vsock.c - libFuzzer target for virtio-vsock.
 *
 * Input: an 8-byte header, a program of up to 64 op bytes with operands,
 * then a guest memory image (rings, descriptors, packets).
 *   header[0]  driver features: bit 2 INDIRECT_DESC, bit 3 EVENT_IDX
 *   header[1..3]  log2 of each queue's size (& 15: may be invalid)
 *   header[5]  length of the program in bytes
 *   ops: 0x00-0x3f kick queue op % 3 and run the event loop once;
 *        0x40-0x4f a host client connects and sends "CONNECT <next byte>\n";
 *        0x50-0x5f host client (op & 3) writes <next byte> bytes;
 *        0x60-0x6f host client (op & 3) closes;
 *        0x70-0x7f run the event loop; 0x80-0x8f transport reset;
 *        0x90-0x9f save -> load (connections dropped, event owed);
 *        0xa0-0xaf reset and restart the driver;
 *        0xb0-0xbf publish: avail->idx of queue (op & 15) % 3 = next byte (the
 *        driver makes chains available over time, not all at once).
 * A host service listens on guest port 1 ("PATH_1"), so a guest REQUEST to
 * port 1 connects and its data flows to a real socket. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cvisor/virtio_vsock.h"
#include "fuzz_virtio.h"

#define RAM_SIZE (128u << 10)
#define MAX_PROG 64
#define CLIENTS 4

static uint8_t ram[RAM_SIZE];
static struct virtio_vsock_config cfg;
static int service = -1;

static int setup_once(void)
{
	char dir[64], spec[160];
	struct cv_error e = { 0 };
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	snprintf(dir, sizeof(dir), "/tmp/cvfuzz-vsock-%d", (int)getpid());
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -1;
	snprintf(spec, sizeof(spec), "3,uds=%s/v.sock", dir);
	if (virtio_vsock_parse(spec, &cfg, &e))
		return -1;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_1", cfg.uds_path);
	unlink(a.sun_path);
	service = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (service < 0 || bind(service, (struct sockaddr *)&a, sizeof(a)) || listen(service, 64))
		return -1;
	return 0;
}

static int client_connect(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", cfg.uds_path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_dev d;
	struct guest_mem mem;
	struct evloop loop;
	int clients[CLIENTS] = { -1, -1, -1, -1 }, fd;
	char line[32];
	struct cv_error e = { 0 };
	const uint8_t *prog;
	size_t n, i = 0;

	if (size < FUZZ_HDR || (service < 0 && setup_once()))
		return 0;
	n = fuzz_split(data, size, MAX_PROG, ram, RAM_SIZE);
	prog = data + FUZZ_HDR;
	guest_mem_init_buf(&mem, ram, RAM_SIZE);
	if (evloop_init(&loop) || virtio_vsock_create(&d, &cfg, &mem, &loop, &e))
		abort();
	fuzz_virtio_start_hdr(&d, data, 0, 3);
	while (i < n) {
		uint8_t op = prog[i++], arg = i < n ? prog[i] : 0;
		int *c = &clients[op & 3];

		if (op < 0x40) {
			virtio_dev_notify(&d, op % 3);
			fuzz_loop_once(&loop);
		} else if (op < 0x50) {
			i++;
			if (*c >= 0)
				close(*c);
			*c = client_connect();
			snprintf(line, sizeof(line), "CONNECT %u\n", arg);
			if (*c >= 0 && send(*c, line, strlen(line), MSG_NOSIGNAL) < 0)
				abort();
			fuzz_loop_once(&loop);
		} else if (op < 0x60) {
			static const char junk[256];

			i++;
			if (*c >= 0)
				(void)!send(*c, junk, arg, MSG_NOSIGNAL | MSG_DONTWAIT);
			fuzz_loop_once(&loop);
		} else if (op < 0x70) {
			if (*c >= 0)
				close(*c);
			*c = -1;
			fuzz_loop_once(&loop);
		} else if (op < 0x80) {
			fuzz_loop_once(&loop);
		} else if (op < 0x90) {
			if (virtio_vsock_transport_reset(&d))
				abort();
		} else if (op < 0xa0) {
			fuzz_save_load_self(&d);
			fuzz_loop_once(&loop);
		} else if (op < 0xb0) {
			vqd_dev_status(&d, 0);
			fuzz_loop_once(&loop);
			fuzz_virtio_start_hdr(&d, data, 0, 3);
		} else if (op < 0xc0) {
			uint64_t idx = fuzz_vq_packed((op & 15) % 3, 0).avail + 2;

			i++;
			ram[idx] = arg;
			ram[idx + 1] = 0;
		}
	}
	for (unsigned int k = 0; k < CLIENTS; k++)
		if (clients[k] >= 0)
			close(clients[k]);
	virtio_vsock_destroy(&d);
	evloop_destroy(&loop);
	while ((fd = accept(service, NULL, NULL)) >= 0)
		close(fd);
	return 0;
}
