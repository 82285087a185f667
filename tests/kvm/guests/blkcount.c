/* blkcount - a counter that goes through a virtio-blk device (either
 * transport, found by virtio_drv.c), for snapshot tests of live device
 * state: every step writes sector N % 64 with N and the pattern below,
 * reads it back and checks it, then stores N at COUNTER_ADDR (0x5000, as
 * the counter guest does, with its magic at 0x5008) and prints "count N". A restore that lost the
 * queue's indices, ring addresses or negotiated features makes the next
 * request time out or fail: the guest then prints "blkcount: FAIL ..." and
 * stops counting. Needs a writable disk of at least 64 sectors. Polls (no
 * interrupts); "spin=N" on the command line paces it as for counter.
 * "verify=1": from step 65 on, each step first reads the sector it is
 * about to overwrite and checks that it holds what step N - 64 wrote
 * (storage migration: data written on the source reads back on the
 * target), else prints "blkcount: FAIL sector S holds ..." and stops. */
#include "virtio_drv.h"

#define COUNTER_ADDR 0x5000ull
#define COUNTER_MAGIC_ADDR 0x5008ull
#define COUNTER_MAGIC 0x72746e756f435643ull
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define SECTORS 64

static struct {
	uint8_t hdr[16];
	uint8_t status;
	uint8_t pad[15];
	uint8_t data[512];
} io __attribute__((aligned(4096)));

static int blk_req(struct vdev *d, uint32_t type, uint64_t sector)
{
	struct vbuf b[3] = {
		{ (uintptr_t)io.hdr, 16, false },
		{ (uintptr_t)io.data, 512, type == BLK_T_IN },
		{ (uintptr_t)&io.status, 1, true },
	};
	uint32_t len;
	int r;

	put_le32(io.hdr, type);
	put_le32(io.hdr + 4, 0);
	put_le64(io.hdr + 8, sector);
	io.status = 0xee;
	r = vq_request(d, 0, b, 3, &len);
	if (r != VQ_DONE || io.status != 0) {
		printf("blkcount: FAIL request type %u sector %lu: %s, status %u\n", type,
		       (unsigned long)sector, r == VQ_TIMEOUT ? "timeout" : "error", io.status);
		return -1;
	}
	return 0;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint8_t pattern(uint64_t n, unsigned int i)
{
	return (uint8_t)(n * 31 + i);
}

int main(void)
{
	static struct vdev devs[VDEV_MAX];
	uint64_t spin = cmdline_u64("spin", 20000), verify = cmdline_u64("verify", 0);
	volatile uint64_t *count = (volatile uint64_t *)COUNTER_ADDR;
	struct vdev *d = NULL;
	int n = virtio_probe(devs, VDEV_MAX);

	for (int i = 0; i < n && !d; i++)
		if (devs[i].type == VIRTIO_ID_BLOCK)
			d = &devs[i];
	if (!d || vdev_init(d, 0, 1, VIRTIO_NO_VECTOR)) {
		printf("blkcount: FAIL no usable virtio-blk device\n");
		return 1;
	}
	*count = 0;
	*(volatile uint64_t *)COUNTER_MAGIC_ADDR = COUNTER_MAGIC;
	printf("blkcount: %s\n", d->name);
	for (uint64_t c = 1;; c++) {
		uint64_t sector = c % SECTORS;

		spin_delay(spin);
		if (verify && c > SECTORS) {
			if (blk_req(d, BLK_T_IN, sector))
				break;
			if (get_le64(io.data) != c - SECTORS || io.data[8] != pattern(c - SECTORS, 8) ||
			    io.data[511] != pattern(c - SECTORS, 511)) {
				printf("blkcount: FAIL sector %lu holds %lu, not step %lu's data\n",
				       (unsigned long)sector, (unsigned long)get_le64(io.data),
				       (unsigned long)(c - SECTORS));
				return 1;
			}
		}
		put_le64(io.data, c);
		for (unsigned int i = 8; i < 512; i++)
			io.data[i] = pattern(c, i);
		if (blk_req(d, BLK_T_OUT, sector))
			break;
		memset(io.data, 0, sizeof(io.data));
		if (blk_req(d, BLK_T_IN, sector))
			break;
		for (unsigned int i = 8; i < 512; i++)
			if (io.data[i] != pattern(c, i) || io.data[0] != (uint8_t)c) {
				printf("blkcount: FAIL sector %lu reads back wrong at byte %u\n",
				       (unsigned long)sector, i);
				return 1;
			}
		*count = c;
		printf("count %lu\n", (unsigned long)c);
	}
	return 1;
}
