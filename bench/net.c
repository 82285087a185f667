/* net.c - the virtio-net host-side packet path against a plain loop that
 * writes the same frames to the same tap device, in the same run (issue 3,
 * "bench/": 64-byte frames through the tap backend without vhost; target
 * device >= 0.8x the plain loop's packets per second).
 *
 * (a) plain: /dev/net/tun opened as the tap backend opens it (IFF_TAP |
 *     IFF_NO_PI | IFF_VNET_HDR, vnet header size 12, non-blocking), then
 *     one write() per frame of the 12-byte virtio_net_hdr the device passes
 *     through followed by the 64-byte frame.
 * (b) device: the real model (src/virtio/net.c, src/net/tap.c, virtq.c,
 *     virtio.c) over synthetic guest memory without KVM. This program plays
 *     the guest driver: QSIZE transmit descriptors, each one buffer holding
 *     header + frame (as Linux lays out a small skb), made available BATCH
 *     at a time, each batch one kick through virtio_dev_notify, which runs
 *     the device's notify handler: pop, check, writev to the tap, push.
 *
 * Usage: net TAP FRAMES. The tap must exist and be up. Every write of (a)
 * and every frame of (b) must succeed (the device's tx_packets counter).
 * Each figure is the median of REPS runs, plain and device alternating. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cvisor/virtio_net.h"
#include "vq_driver.h"

#define REPS 5
#define RAM_SIZE (4u << 20)
#define QSIZE 256
#define BATCH 128 /* frames per kick, half the ring */
#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define RX_DESC 0x5000u
#define RX_AVAIL 0x6000u
#define RX_USED 0x7000u
#define BUFS 0x10000u
#define FRAME_LEN 64
#define PKT_LEN (VIRTIO_NET_HDR_LEN + FRAME_LEN)

static uint8_t pkt[PKT_LEN];

struct rate {
	double wall, cpu; /* frames per second of wall time, of this thread's CPU time */
};

static double clk(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The CPU clock counts user and kernel time of this thread (the syscall
 * and the host's receive softirq it runs inline), not time preempted by
 * other load on a shared machine; but on a loaded machine the kernel may
 * defer that softirq to ksoftirqd, which this clock then misses. Wall time
 * is the headline; the CPU figure is a cross-check. */
static struct rate rate_start(void)
{
	return (struct rate){ clk(CLOCK_MONOTONIC), clk(CLOCK_THREAD_CPUTIME_ID) };
}

static struct rate rate_end(struct rate t0, long frames)
{
	return (struct rate){ (double)frames / (clk(CLOCK_MONOTONIC) - t0.wall),
			      (double)frames / (clk(CLOCK_THREAD_CPUTIME_ID) - t0.cpu) };
}

/* A zero virtio_net_hdr (no offloads) and a 64-byte IPv4/UDP frame to a
 * MAC that is not the tap's, so the host drops it right after the driver. */
static void make_frame(void)
{
	uint8_t *f = pkt + VIRTIO_NET_HDR_LEN, *ip = f + 14;

	memcpy(f, "\x02\x00\x00\x00\x00\x01\x52\x54\x00\x12\x34\x56\x08\x00", 14);
	ip[0] = 0x45;
	ip[3] = FRAME_LEN - 14;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, "\x0a\x00\x02\x0f\x0a\x00\x02\x02", 8);
	for (int i = 34; i < FRAME_LEN; i++)
		f[i] = (uint8_t)i;
}

static struct rate plain(const char *tap, long frames)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC), hdr = VIRTIO_NET_HDR_LEN;
	struct rate t;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		perror("plain: tap");
		exit(1);
	}
	t = rate_start();
	for (long i = 0; i < frames; i++)
		if (write(fd, pkt, PKT_LEN) != PKT_LEN) {
			perror("plain: write");
			exit(1);
		}
	t = rate_end(t, frames);
	close(fd);
	return t;
}

static void on_signal(struct virtio_dev *d, uint16_t vector, uint8_t isr)
{
	(void)d;
	(void)vector;
	(void)isr;
}

/* The guest's side of 3.1.1: features, both queues, DRIVER_OK; then one
 * buffer per transmit descriptor, each holding the same packet. */
static void driver_start(struct virtio_dev *d, uint8_t *ram, struct vqd *q)
{
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_NET_F_MAC) |
		     (1ULL << VIRTIO_NET_F_STATUS) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |
		     (1ULL << VIRTIO_RING_F_EVENT_IDX);

	vqd_init(&q[VIRTIO_NET_RXQ], ram, QSIZE, RX_DESC, RX_AVAIL, RX_USED);
	vqd_init(&q[VIRTIO_NET_TXQ], ram, QSIZE, DESC, AVAIL, USED);
	if (vqd_dev_start(d, f, q, 2)) {
		fprintf(stderr, "device: not activated\n");
		exit(1);
	}
	for (uint16_t i = 0; i < QSIZE; i++) {
		uint64_t addr = BUFS + 128u * i;

		memcpy(ram + addr, pkt, PKT_LEN);
		vqd_desc(&q[VIRTIO_NET_TXQ], DESC, i, addr, PKT_LEN, 0, 0);
	}
}

static struct rate device(const char *tap, long frames)
{
	uint8_t *ram = aligned_alloc(4096, RAM_SIZE);
	struct virtio_net_config c;
	struct virtio_net_stats st;
	struct guest_mem mem;
	struct evloop loop;
	struct virtio_dev d;
	struct vqd q[2];
	char spec[64];
	struct cv_error e = { 0 };
	long sent = 0;
	struct rate t;

	snprintf(spec, sizeof(spec), "tap=%s", tap);
	memset(ram, 0, RAM_SIZE);
	guest_mem_init_buf(&mem, ram, RAM_SIZE);
	if (!ram || evloop_init(&loop) || virtio_net_parse(spec, 0, &c, &e) ||
	    virtio_net_create(&d, &c, &mem, &loop, NULL, NULL, &e)) {
		fprintf(stderr, "device: %s\n", e.msg);
		exit(1);
	}
	d.transport = (struct virtio_transport){ .signal = on_signal };
	driver_start(&d, ram, q);
	t = rate_start();
	while (sent < frames) {
		/* Every chain of the last kick is back (the notify handler
		 * completes them), so the driver reuses descriptors in turn. */
		for (int i = 0; i < BATCH; i++)
			vqd_offer(&q[VIRTIO_NET_TXQ], q[VIRTIO_NET_TXQ].avail_idx % QSIZE);
		vqd_publish(&q[VIRTIO_NET_TXQ]);
		virtio_dev_notify(&d, VIRTIO_NET_TXQ);
		sent += BATCH;
	}
	t = rate_end(t, sent);
	virtio_net_get_stats(&d, &st);
	if ((long)st.tx_packets != sent || st.tx_dropped) {
		fprintf(stderr, "device: %lu of %ld frames sent, %lu dropped\n",
			(unsigned long)st.tx_packets, sent, (unsigned long)st.tx_dropped);
		exit(1);
	}
	virtio_net_destroy(&d);
	evloop_destroy(&loop);
	free(ram);
	return t;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v)
{
	qsort(v, REPS, sizeof(v[0]), cmp);
	return v[REPS / 2];
}

int main(int argc, char **argv)
{
	double pw[REPS], pc[REPS], dw[REPS], dc[REPS], mpw, mpc, mdw, mdc;
	long frames;

	if (argc != 3 || (frames = atol(argv[2])) < BATCH) {
		fprintf(stderr, "usage: net TAP FRAMES (FRAMES >= %d)\n", BATCH);
		return 2;
	}
	frames -= frames % BATCH;
	make_frame();
	for (int r = 0; r < REPS; r++) {
		struct rate p = plain(argv[1], frames), d = device(argv[1], frames);

		pw[r] = p.wall;
		pc[r] = p.cpu;
		dw[r] = d.wall;
		dc[r] = d.cpu;
		printf("run %d: plain %.0f pps (%.0f per CPU-s), device %.0f pps (%.0f per "
		       "CPU-s)\n",
		       r + 1, p.wall, p.cpu, d.wall, d.cpu);
	}
	mpw = median(pw);
	mpc = median(pc);
	mdw = median(dw);
	mdc = median(dc);
	printf("%ld x %d-byte frames (+%d-byte vnet header), median of %d:\n", frames, FRAME_LEN,
	       VIRTIO_NET_HDR_LEN, REPS);
	printf("  plain write loop: %8.0f pps wall, %8.0f per CPU-second\n", mpw, mpc);
	printf("  device tx path:   %8.0f pps wall, %8.0f per CPU-second\n", mdw, mdc);
	printf("  ratio device/plain: %.3f wall, %.3f CPU (target >= 0.8)\n", mdw / mpw, mdc / mpc);
	return 0;
}
