/* fuzz_qcow2.c - libFuzzer target for the qcow2 metadata parser: any bytes
 * as an image file (in a memfd), opened writable without backing files,
 * then reads across the disk, writes that allocate, zeroing and a flush.
 * Every open failure must be a clean error and every later one an error
 * for that call; nothing may touch memory outside the layer's buffers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cvisor/qcow2.h"

#define SPAN (256u << 10) /* bytes of the disk the run touches */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[2][32 << 10];
	struct iovec iov[2] = { { buf[0], 1536 }, { buf[1], sizeof(buf[1]) } };
	struct qcow2 *q;
	uint64_t disk, span;
	int fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size ||
	    qcow2_open(&q, fd, "fuzz.qcow2", QCOW2_NO_BACKING, NULL)) {
		close(fd);
		return 0;
	}
	disk = qcow2_size(q);
	span = disk < SPAN ? disk : SPAN;
	for (uint64_t off = 0; off + 4096 <= span; off += 4096 * 7)
		(void)qcow2_readv(q, iov, 2, off, 4096);
	if (span >= 8192) {
		uint64_t host;

		memset(buf, 0x5a, sizeof(buf));
		(void)qcow2_writev(q, iov, 2, 512, 8192 - 512);
		(void)qcow2_writev(q, iov, 2, span - 4096, 4096);
		(void)qcow2_zero(q, 1024, span / 2);
		(void)qcow2_discard(q, span / 2, span / 2);
		(void)qcow2_map(q, 512, 512, &host);
		(void)qcow2_readv(q, iov, 2, 0, 8192);
		(void)qcow2_flush(q);
	}
	/* The end of the disk, where the last cluster may be partial. */
	if (disk >= 512)
		(void)qcow2_readv(q, iov, 1, disk - 512, 512);
	qcow2_close(q);
	close(fd);
	return 0;
}
