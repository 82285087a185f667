/* virtio - end-to-end checks of the monitor's virtio devices with the tiny
 * driver of virtio_drv.c, on either transport.
 *
 * Command line (all optional):
 *   virtio.test=LIST       comma-separated: rng, blk, hostile (none: list
 *                          the devices only)
 *   virtio.transport=pci|mmio   use only devices on that transport
 *   virtio.sectors=N       the disk's expected capacity (default 2048)
 *   virtio.serial=ID       the disk's expected GET_ID string
 *   virtio.ro=1            the disk is read-only
 * The disk must hold the pattern of blk_pattern(): 32-bit little-endian
 * word i of sector N is N << 16 | i << 8 | 0xa5.
 *
 * Output: "virtio: dev N ..." per device found, then one line per check,
 * "virtio: PASS ...", "virtio: FAIL ..." or "virtio: INFO ...", and last
 * "virtio: ok" or "virtio: N check(s) failed"; then ACPI poweroff.
 *
 *  rng     two 64-byte requests (non-zero, different); 2*size+3 requests
 *          around the ring; one interrupt path: MSI-X vector 0 (PCI: the
 *          interrupt, then masked: no interrupt but the PBA bit, delivered
 *          on unmask), or the GSI through the IOAPIC (MMIO: the interrupt
 *          and InterruptStatus bit 0); EVENT_IDX: used_event holds back an
 *          interrupt, avail_event tells when to notify.
 *  blk     features (RO iff virtio.ro, FLUSH offered), capacity; reads of
 *          sectors 0-1, 2046-2047 (two data descriptors), the last sector,
 *          and through an indirect table; reads past the end and across it
 *          fail with IOERR; an unknown type gets UNSUPP; GET_ID = serial.
 *          Writable disk: sector 5 written, flushed, read back (4 and 6
 *          untouched); write-zeroes of sectors 7-8 and discard of sector 10
 *          when offered; the second queue when MQ is offered. Read-only
 *          disk: the write fails with IOERR and sector 5 reads unchanged.
 *          The host then compares the image.
 *  hostile (virtio_hostile.c) malformed chains (loop, buffer outside
 *          RAM, length 0xffffffff, address wrapping, zero length, bad
 *          indirect tables, blk header and status misuse), a head out of range, an avail index jump,
 *          bad queue configurations (not a power of two, rings outside or
 *          straddling the end of RAM, misaligned), queue registers rewritten
 *          while live, a queue that does not exist, odd notifications and
 *          feature negotiations. Each malformed request must complete with
 *          an error or set DEVICE_NEEDS_RESET; after a reset and
 *          re-initialization a normal request must work. Outcomes the spec
 *          leaves to the device are printed as INFO. */
#include "virtio_test.h"

#define VEC_IRQ 0x40

static struct vdev devs[VDEV_MAX];
static int ndev, want_transport;

struct virtio_io io __attribute__((aligned(4096)));

static bool cmdline_str(const char *key, char *buf, size_t len)
{
	const char *p = cmdline_next(cmdline(), key);
	size_t n = 0;
	if (!p)
		return false;
	while (p[n] && p[n] != ' ' && n + 1 < len) {
		buf[n] = p[n];
		n++;
	}
	buf[n] = '\0';
	return true;
}

static bool word_is(const char *w, size_t n, const char *s)
{
	return strlen(s) == n && !strncmp(w, s, n);
}

struct vdev *find_dev(uint32_t type)
{
	for (int i = 0; i < ndev; i++)
		if (devs[i].type == type &&
		    (!want_transport || devs[i].transport == want_transport))
			return &devs[i];
	return NULL;
}

const char *outcome(int r)
{
	return r == VQ_DONE	     ? "completed"
	       : r == VQ_NEEDS_RESET ? "DEVICE_NEEDS_RESET"
	       : r == VQ_TIMEOUT     ? "timeout"
				     : "wrong used id";
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* ---- interrupts ---- */
static volatile unsigned int irq_hits;
static volatile uint32_t irq_isr;
static struct vdev *irq_dev;

static void irq_handler(struct trap_frame *f)
{
	(void)f;
	irq_hits++;
	if (irq_dev && irq_dev->transport == VIRTIO_T_MMIO) {
		uint32_t s = vdev_isr(irq_dev);
		irq_isr |= s;
		vdev_isr_ack(irq_dev, s);
	}
	lapic_write(0xb0, 0); /* EOI */
}

static void sti(void)
{
	__asm__ volatile("sti" ::: "memory");
}
static void cli(void)
{
	__asm__ volatile("cli" ::: "memory");
}

/* With interrupts enabled: wait (bounded) until irq_hits reaches want. */
static bool wait_irq(unsigned int want, uint64_t tsc)
{
	uint64_t t0 = rdtsc();
	while (irq_hits < want) {
		if (rdtsc() - t0 > tsc)
			return false;
		cpu_relax();
	}
	return true;
}

int rng_read(struct vdev *d, uint8_t *buf, uint32_t n, uint32_t *len)
{
	struct vbuf b = { (uintptr_t)buf, n, true };
	return vq_request(d, 0, &b, 1, len);
}

static void irq_test_pci(struct vdev *d)
{
	uint32_t len;
	if (!d->msix_cap || !d->msix_table) {
		vfail("rng: %s has no usable MSI-X capability", d->name);
		return;
	}
	irq_dev = d;
	if (vdev_negotiate(d, 0))
		return;
	vdev_msix_enable(d, 0, VEC_IRQ);
	if (vq_setup(d, 0, VQ_SIZE_CAP, 0) || vdev_driver_ok(d)) {
		vfail("rng: set-up with MSI-X vector 0 failed (status 0x%x)", vdev_status(d));
		goto out;
	}
	irq_hits = 0;
	sti();
	int r = rng_read(d, io.data, 16, &len);
	bool got = r == VQ_DONE && wait_irq(1, VIRTIO_TIMEOUT_TSC);
	cli();
	if (!got) {
		vfail("rng: MSI-X: request %s, %u interrupt(s) on vector 0x%x", outcome(r),
		      irq_hits, VEC_IRQ);
		goto out;
	}
	vpass("rng: MSI-X vector 0 -> interrupt 0x%x after the request completed", VEC_IRQ);

	/* PCI 3.0 6.8.3.5 / MSI-X ECN: a masked vector sets its pending bit
	 * instead of sending; unmasking sends the pending message. */
	vdev_msix_mask(d, 0, true);
	unsigned int h0 = irq_hits;
	sti();
	r = rng_read(d, io.data, 16, &len);
	wait_irq(h0 + 1, VIRTIO_QUIET_TSC / 40);
	cli();
	bool pending = vdev_msix_pending(d, 0);
	if (r != VQ_DONE) {
		vfail("rng: MSI-X masked: request %s", outcome(r));
	} else if (irq_hits != h0) {
		vfail("rng: MSI-X: a masked vector still delivered an interrupt");
	} else if (!pending) {
		vfail("rng: MSI-X: no pending bit in the PBA for a masked vector after a "
		      "completion");
	} else {
		sti();
		vdev_msix_mask(d, 0, false);
		got = wait_irq(h0 + 1, VIRTIO_TIMEOUT_TSC);
		cli();
		if (!got)
			vfail("rng: MSI-X: the pending message was not sent on unmask");
		else if (vdev_msix_pending(d, 0))
			vfail("rng: MSI-X: pending bit still set after the message was sent");
		else
			vpass("rng: MSI-X masked: no interrupt, PBA bit set, delivered on unmask");
	}
out:
	vdev_msix_disable(d);
	irq_dev = NULL;
}

static void irq_test_mmio(struct vdev *d)
{
	uint32_t len;
	if (ioapic_route(d->gsi, VEC_IRQ, true)) {
		vinfo("rng: GSI %u is not a pin of IOAPIC 0: interrupt test skipped", d->gsi);
		return;
	}
	if (vdev_init(d, 0, 1, VIRTIO_NO_VECTOR))
		return;
	irq_dev = d;
	irq_hits = 0;
	irq_isr = 0;
	ioapic_route(d->gsi, VEC_IRQ, false);
	sti();
	int r = rng_read(d, io.data, 16, &len);
	bool got = r == VQ_DONE && wait_irq(1, VIRTIO_TIMEOUT_TSC);
	cli();
	ioapic_route(d->gsi, VEC_IRQ, true);
	uint32_t left = vdev_isr(d);
	if (!got)
		vfail("rng: GSI %u: request %s, %u interrupt(s)", d->gsi, outcome(r), irq_hits);
	else if (!(irq_isr & 1))
		vfail("rng: GSI %u: interrupt but InterruptStatus 0x%x, want bit 0 (used buffer)",
		      d->gsi, irq_isr);
	else if (left)
		vfail("rng: InterruptStatus 0x%x after InterruptACK, want 0", left);
	else
		vpass("rng: GSI %u -> IOAPIC -> interrupt 0x%x, InterruptStatus 0x%x, acked",
		      d->gsi, VEC_IRQ, irq_isr);
	irq_dev = NULL;
}

/* EVENT_IDX (2.7.7.2, 2.7.10) with interrupts on: no interrupt for a used
 * entry before used_event, one when the used idx reaches it; and
 * avail_event kept current, so that a driver that notifies only when it
 * asks (as Linux does) never stalls. */
static void event_idx_test(struct vdev *d)
{
	bool pci = d->transport == VIRTIO_T_PCI;
	struct vq *q = &d->vq[0];
	uint32_t len, id;
	if (!(d->offered & VIRTIO_F_EVENT_IDX)) {
		vinfo("rng: EVENT_IDX not offered");
		return;
	}
	if (pci ? !d->msix_cap || !d->msix_table : ioapic_route(d->gsi, VEC_IRQ, true) != 0) {
		vinfo("rng: no interrupt path, EVENT_IDX test skipped");
		return;
	}
	if (vdev_negotiate(d, VIRTIO_F_EVENT_IDX))
		return;
	if (pci)
		vdev_msix_enable(d, 0, VEC_IRQ);
	if (vq_setup(d, 0, VQ_SIZE_CAP, pci ? 0 : VIRTIO_NO_VECTOR)) {
		vfail("rng: EVENT_IDX: queue set-up failed");
		goto out;
	}
	*vq_used_event(q) = 0;
	if (vdev_driver_ok(d)) {
		vfail("rng: EVENT_IDX: DRIVER_OK: status 0x%x", vdev_status(d));
		goto out;
	}
	irq_dev = d;
	irq_hits = 0;
	if (!pci)
		ioapic_route(d->gsi, VEC_IRQ, false);
	/* The first used entry after a reset interrupts anyway (the device has
	 * no previous notification to compare with); then used_event 2 asks
	 * for an interrupt at entry 2 and none at entry 1. */
	sti();
	int r0 = rng_read(d, io.data, 16, &len);
	bool first = wait_irq(1, VIRTIO_TIMEOUT_TSC);
	unsigned int base = irq_hits;
	*vq_used_event(q) = 2;
	mb();
	int r1 = rng_read(d, io.data, 16, &len);
	bool early = wait_irq(base + 1, VIRTIO_QUIET_TSC / 40);
	int r2 = rng_read(d, io.data, 16, &len);
	bool got = wait_irq(base + 1 + early, VIRTIO_TIMEOUT_TSC);
	cli();
	if (r0 != VQ_DONE || r1 != VQ_DONE || r2 != VQ_DONE)
		vfail("rng: EVENT_IDX: requests %s, %s, %s", outcome(r0), outcome(r1), outcome(r2));
	else if (early)
		vfail("rng: EVENT_IDX: interrupt for used entry 1 although used_event is 2 "
		      "(2.7.10: SHOULD NOT)");
	else if (!got)
		vfail("rng: EVENT_IDX: no interrupt when used entry 2 = used_event was placed "
		      "(2.7.10: MUST)");
	else
		vpass("rng: EVENT_IDX: %sno interrupt before used_event, one at it",
		      first ? "" : "(no interrupt for the first entry) ");

	/* used_event behind us: no more interrupts. Notify only when
	 * avail_event asks for it. */
	*vq_used_event(q) = (uint16_t)(q->last_used - 1);
	unsigned int n = 3u * q->size, i, kicks = 0;
	for (i = 0; i < n; i++) {
		uint16_t old = q->avail_idx;
		uint16_t head = vq_add(d, 0, &(struct vbuf){ (uintptr_t)io.data, 16, true }, 1);
		mb(); /* publish the index before reading avail_event (2.7.13.4) */
		uint16_t ae = *vq_avail_event(q);
		if (vring_need_event(ae, q->avail_idx, old)) {
			vq_notify(d, 0);
			kicks++;
		}
		int r = vq_wait(d, 0, &id, &len);
		if (r != VQ_DONE || id != head) {
			vfail("rng: EVENT_IDX: request %u of %u %s with avail_event %u (avail idx "
			      "%u, "
			      "%u notifications)",
			      i, n, outcome(r), ae, q->avail_idx, kicks);
			break;
		}
	}
	if (i == n)
		vpass("rng: EVENT_IDX: %u requests, notifying only as avail_event asked (%u times)",
		      n, kicks);
out:
	if (pci)
		vdev_msix_disable(d);
	else
		ioapic_route(d->gsi, VEC_IRQ, true);
	irq_dev = NULL;
}

/* ---- rng ---- */
static void test_rng(void)
{
	struct vdev *d = find_dev(VIRTIO_ID_RNG);
	uint32_t la = 0, lb = 0;
	if (!d) {
		vfail("rng: no virtio-rng device");
		return;
	}
	if (vdev_init(d, 0, 1, VIRTIO_NO_VECTOR))
		return;
	vpass("rng: %s initialized, features 0x%lx, queue size %u", d->name,
	      (unsigned long)d->features, d->vq[0].size);
	uint8_t *a = io.data, *b = io.data + 64;
	memset(a, 0, 128);
	int r1 = rng_read(d, a, 64, &la);
	int r2 = rng_read(d, b, 64, &lb);
	if (r1 != VQ_DONE || r2 != VQ_DONE)
		vfail("rng: 64-byte requests: %s, %s", outcome(r1), outcome(r2));
	else if (!la || la > 64 || !lb || lb > 64)
		vfail("rng: used len %u and %u, want 1..64", la, lb);
	else if (all_zero(a, la) || all_zero(b, lb))
		vfail("rng: a buffer came back all zero");
	else if (!memcmp(a, b, la < lb ? la : lb))
		vfail("rng: the two buffers are equal");
	else
		vpass("rng: two 64-byte requests: %u and %u bytes, non-zero, different", la, lb);

	unsigned int n = 2u * d->vq[0].size + 3, i;
	for (i = 0; i < n; i++) {
		int r = rng_read(d, io.data, 16, &la);
		if (r != VQ_DONE || !la || la > 16) {
			vfail("rng: request %u of %u around the ring: %s, len %u", i, n, outcome(r),
			      la);
			break;
		}
	}
	if (i == n)
		vpass("rng: %u requests around a ring of %u", n, d->vq[0].size);

	irq_prepare();
	trap_set_handler(VEC_IRQ, irq_handler);
	idt_set_gate(VEC_IRQ, 0);
	if (d->transport == VIRTIO_T_PCI)
		irq_test_pci(d);
	else
		irq_test_mmio(d);
	event_idx_test(d);
	vdev_reset(d);
}

/* ---- blk ---- */
static uint32_t blk_pattern(uint64_t sector, unsigned int i)
{
	return (uint32_t)(sector << 16 | i << 8 | 0xa5);
}
static uint32_t blk_written(unsigned int i)
{
	return 0xfeed0000u | i << 8 | 0x5a;
}

/* Sector `sector` of the image, at buf: -1 if it holds the pattern (or the
 * written pattern, or zeros), else the index of the first wrong word. */
int blk_check(const uint8_t *buf, uint64_t sector, int kind)
{
	const uint32_t *w = (const uint32_t *)buf;
	for (unsigned int i = 0; i < 128; i++) {
		uint32_t want = kind == PAT_IMAGE     ? blk_pattern(sector, i)
				: kind == PAT_WRITTEN ? blk_written(i)
						      : 0;
		if (w[i] != want)
			return (int)i;
	}
	return -1;
}

void blk_hdr(uint32_t type, uint64_t sector)
{
	put_le32(io.hdr, type);
	put_le32(io.hdr + 4, 0);
	put_le64(io.hdr + 8, sector);
	io.status = 0xee;
}

/* header, data..., status. Returns VQ_* (or -1), the status byte in *st. */
int blk_req(struct vdev *d, unsigned int q, uint32_t type, uint64_t sector, const struct vbuf *data,
	    int ndata, uint8_t *st, uint32_t *len)
{
	struct vbuf b[6];
	blk_hdr(type, sector);
	b[0] = (struct vbuf){ (uintptr_t)io.hdr, 16, false };
	for (int i = 0; i < ndata; i++)
		b[1 + i] = data[i];
	b[1 + ndata] = (struct vbuf){ (uintptr_t)&io.status, 1, true };
	*len = 0;
	int r = vq_request(d, q, b, ndata + 2, len);
	*st = io.status;
	return r;
}

/* Check a request's result: VQ_DONE, status want_st and (unless
 * want_len is 0) used len want_len. Prints a FAIL line naming what. */
static bool blk_ok(const char *what, int r, uint8_t st, uint8_t want_st, uint32_t len,
		   uint32_t want_len)
{
	if (r != VQ_DONE) {
		vfail("blk: %s: %s", what, outcome(r));
		return false;
	}
	if (st != want_st) {
		vfail("blk: %s: status %u, want %u", what, st, want_st);
		return false;
	}
	if (want_len && len != want_len) {
		vfail("blk: %s: used len %u, want %u (bytes written, 2.7.8.2)", what, len,
		      want_len);
		return false;
	}
	return true;
}

/* Read n sectors from `sector` into io.data in `nd` equal data descriptors. */
static bool blk_read(struct vdev *d, unsigned int q, uint64_t sector, unsigned int n, int nd,
		     uint8_t want_st, const char *what)
{
	struct vbuf b[4];
	uint8_t st;
	uint32_t len;
	uint32_t per = 512 * n / (unsigned int)nd;
	memset(io.data, 0, 512 * n);
	for (int i = 0; i < nd; i++)
		b[i] = (struct vbuf){ (uintptr_t)io.data + per * (unsigned int)i, per, true };
	int r = blk_req(d, q, BLK_T_IN, sector, b, nd, &st, &len);
	return blk_ok(what, r, st, want_st, len, want_st == BLK_S_OK ? 512 * n + 1 : 0);
}

static bool blk_expect(uint64_t first, unsigned int n, const int *kinds, const char *what)
{
	for (unsigned int i = 0; i < n; i++) {
		int bad = blk_check(io.data + 512 * i, first + i, kinds ? kinds[i] : PAT_IMAGE);
		if (bad >= 0) {
			vfail("blk: %s: sector %lu word %d is 0x%x", what,
			      (unsigned long)(first + i), bad,
			      ((const uint32_t *)(io.data + 512 * i))[bad]);
			return false;
		}
	}
	return true;
}

static void blk_seg_req(struct vdev *d, uint32_t type, uint64_t sector, uint32_t n,
			const char *what)
{
	uint8_t st;
	uint32_t len;
	put_le64(io.seg, sector);
	put_le32(io.seg + 8, n);
	put_le32(io.seg + 12, 0);
	struct vbuf b = { (uintptr_t)io.seg, 16, false };
	int r = blk_req(d, 0, type, 0, &b, 1, &st, &len);
	if (blk_ok(what, r, st, BLK_S_OK, len, 1))
		vpass("blk: %s", what);
}

/* One read of sector 1 through an indirect table of three descriptors. */
static void blk_indirect_read(struct vdev *d)
{
	struct vq *q = &d->vq[0];
	uint32_t id, len;
	blk_hdr(BLK_T_IN, 1);
	memset(io.data, 0, 512);
	io.table[0] = (struct vring_desc){ (uintptr_t)io.hdr, 16, VRING_DESC_F_NEXT, 1 };
	io.table[1] = (struct vring_desc){ (uintptr_t)io.data, 512,
					   VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
	io.table[2] = (struct vring_desc){ (uintptr_t)&io.status, 1, VRING_DESC_F_WRITE, 0 };
	q->desc[0] = (struct vring_desc){ (uintptr_t)io.table, 48, VRING_DESC_F_INDIRECT, 0 };
	q->next_desc = 1;
	vq_put_head(d, 0, 0);
	int r = vq_wait(d, 0, &id, &len);
	if (blk_ok("indirect read of sector 1", r, io.status, BLK_S_OK, len, 513) &&
	    blk_expect(1, 1, NULL, "indirect read"))
		vpass("blk: read of sector 1 through an indirect table");
}

static void test_blk(void)
{
	struct vdev *d = find_dev(VIRTIO_ID_BLOCK);
	char serial[64];
	uint8_t st;
	uint32_t len;
	if (!d) {
		vfail("blk: no virtio-blk device");
		return;
	}
	bool ro = cmdline_u64("virtio.ro", 0) != 0;
	uint64_t sectors = cmdline_u64("virtio.sectors", 2048);
	bool has_serial = cmdline_str("virtio.serial", serial, sizeof(serial));
	uint64_t want = BLK_F_RO | BLK_F_BLK_SIZE | BLK_F_FLUSH | BLK_F_MQ | BLK_F_DISCARD |
			BLK_F_WRITE_ZEROES | VIRTIO_F_INDIRECT_DESC;
	if (vdev_negotiate(d, want))
		return;
	unsigned int nq = 1;
	if (d->features & BLK_F_MQ) {
		uint16_t n = vdev_cfg16(d, BLK_CFG_NUM_QUEUES);
		vinfo("blk: MQ offered, num_queues %u", n);
		nq = n >= 2 ? 2 : 1;
	}
	for (unsigned int q = 0; q < nq; q++)
		if (vq_setup(d, q, VQ_SIZE_CAP, VIRTIO_NO_VECTOR)) {
			vfail("blk: queue %u setup failed", q);
			return;
		}
	if (vdev_driver_ok(d)) {
		vfail("blk: DRIVER_OK: status 0x%x", vdev_status(d));
		return;
	}
	vpass("blk: %s initialized, features 0x%lx, %u queue(s) of %u", d->name,
	      (unsigned long)d->features, nq, d->vq[0].size);

	if (ro != !!(d->offered & BLK_F_RO))
		vfail("blk: VIRTIO_BLK_F_RO %s on a %s disk", ro ? "not offered" : "offered",
		      ro ? "read-only" : "writable");
	else
		vpass("blk: VIRTIO_BLK_F_RO %s", ro ? "offered" : "not offered");
	if (!(d->offered & BLK_F_FLUSH))
		vfail("blk: VIRTIO_BLK_F_FLUSH not offered");
	uint64_t cap = vdev_cfg64(d, BLK_CFG_CAPACITY);
	if (cap != sectors)
		vfail("blk: capacity %lu sectors, want %lu", (unsigned long)cap,
		      (unsigned long)sectors);
	else
		vpass("blk: capacity %lu sectors", (unsigned long)cap);
	if (d->features & BLK_F_BLK_SIZE)
		vinfo("blk: blk_size %u", vdev_cfg32(d, BLK_CFG_BLK_SIZE));

	if (blk_read(d, 0, 0, 2, 1, BLK_S_OK, "read sectors 0-1") &&
	    blk_expect(0, 2, NULL, "read sectors 0-1"))
		vpass("blk: read sectors 0-1");
	if (blk_read(d, 0, sectors - 2, 2, 2, BLK_S_OK,
		     "read the last two sectors in two descriptors") &&
	    blk_expect(sectors - 2, 2, NULL, "read the last two sectors"))
		vpass("blk: read sectors %lu-%lu in two data descriptors",
		      (unsigned long)(sectors - 2), (unsigned long)(sectors - 1));
	if (blk_read(d, 0, sectors - 1, 1, 1, BLK_S_OK, "read the last sector") &&
	    blk_expect(sectors - 1, 1, NULL, "read the last sector"))
		vpass("blk: read sector %lu", (unsigned long)(sectors - 1));
	if (blk_read(d, 0, sectors, 1, 1, BLK_S_IOERR, "read past the end"))
		vpass("blk: read of sector %lu (past the end): IOERR", (unsigned long)sectors);
	if (blk_read(d, 0, sectors - 1, 2, 1, BLK_S_IOERR, "read across the end"))
		vpass("blk: read of sectors %lu-%lu (across the end): IOERR",
		      (unsigned long)(sectors - 1), (unsigned long)sectors);
	if (blk_read(d, 0, ~0ull >> 9, 1, 1, BLK_S_IOERR, "read at sector 2^55-1"))
		vpass("blk: read of sector 2^55-1: IOERR");
	int r = blk_req(d, 0, 0xff, 0, NULL, 0, &st, &len);
	if (blk_ok("unknown request type 0xff", r, st, BLK_S_UNSUPP, len, 0))
		vpass("blk: unknown request type: UNSUPP");

	memset(io.id, 0x55, sizeof(io.id));
	struct vbuf idb = { (uintptr_t)io.id, 20, true };
	r = blk_req(d, 0, BLK_T_GET_ID, 0, &idb, 1, &st, &len);
	if (blk_ok("GET_ID", r, st, BLK_S_OK, len, 0)) {
		char got[21];
		memcpy(got, io.id, 20);
		got[20] = '\0';
		size_t n = strlen(serial);
		if (!has_serial)
			vinfo("blk: GET_ID '%s'", got);
		else if (n > 20 ? memcmp(got, serial, 20)
				: memcmp(got, serial, n) || (n < 20 && got[n]))
			vfail("blk: GET_ID '%s', want '%s'", got, serial);
		else
			vpass("blk: GET_ID '%s'", got);
	}

	struct vbuf wb = { (uintptr_t)io.data, 512, false };
	if (!ro) {
		uint32_t *w = (uint32_t *)io.data;
		for (unsigned int i = 0; i < 128; i++)
			w[i] = blk_written(i);
		r = blk_req(d, 0, BLK_T_OUT, 5, &wb, 1, &st, &len);
		bool ok = blk_ok("write sector 5", r, st, BLK_S_OK, len, 1);
		r = blk_req(d, 0, BLK_T_FLUSH, 0, NULL, 0, &st, &len);
		ok = blk_ok("flush", r, st, BLK_S_OK, len, 1) && ok;
		static const int kinds[3] = { PAT_IMAGE, PAT_WRITTEN, PAT_IMAGE };
		if (ok && blk_read(d, 0, 4, 3, 1, BLK_S_OK, "read back sectors 4-6") &&
		    blk_expect(4, 3, kinds, "read back sectors 4-6"))
			vpass("blk: sector 5 written, flushed and read back; sectors 4 and 6 "
			      "untouched");
		if (d->features & BLK_F_WRITE_ZEROES) {
			blk_seg_req(d, BLK_T_WRITE_ZEROES, 7, 2, "write-zeroes sectors 7-8");
			static const int zk[2] = { PAT_ZERO, PAT_ZERO };
			if (blk_read(d, 0, 7, 2, 1, BLK_S_OK, "read sectors 7-8") &&
			    blk_expect(7, 2, zk, "read sectors 7-8 after write-zeroes"))
				vpass("blk: sectors 7-8 read back as zeros");
		} else {
			vinfo("blk: WRITE_ZEROES not offered");
		}
		if (d->features & BLK_F_DISCARD)
			blk_seg_req(d, BLK_T_DISCARD, 10, 1, "discard sector 10");
		else
			vinfo("blk: DISCARD not offered");
	} else {
		memset(io.data, 0x77, 512);
		r = blk_req(d, 0, BLK_T_OUT, 5, &wb, 1, &st, &len);
		if (blk_ok("write to a read-only disk", r, st, BLK_S_IOERR, len, 0))
			vpass("blk: write to the read-only disk: IOERR");
		if (blk_read(d, 0, 5, 1, 1, BLK_S_OK, "read sector 5") &&
		    blk_expect(5, 1, NULL, "read sector 5"))
			vpass("blk: sector 5 unchanged");
	}
	if (nq == 2 && blk_read(d, 1, 3, 1, 1, BLK_S_OK, "read sector 3 on queue 1") &&
	    blk_expect(3, 1, NULL, "read on queue 1"))
		vpass("blk: read of sector 3 on the second queue");
	if (d->features & VIRTIO_F_INDIRECT_DESC)
		blk_indirect_read(d);
	else
		vinfo("blk: INDIRECT_DESC not offered");
	vdev_reset(d);
}

int main(void)
{
	char tests[128], tr[8];
	if (!start_info()) {
		printf("virtio: bad start info (ebx=0x%x)\n", boot_entry_ebx);
		poweroff();
	}
	if (cmdline_str("virtio.transport", tr, sizeof(tr)))
		want_transport = !strncmp(tr, "mmio", 5)  ? VIRTIO_T_MMIO
				 : !strncmp(tr, "pci", 4) ? VIRTIO_T_PCI
							  : -1;
	if (want_transport < 0)
		vfail("virtio.transport=%s: want pci or mmio", tr);
	ndev = virtio_probe(devs, VDEV_MAX);
	printf("virtio: %d device(s)\n", ndev);
	if (!cmdline_str("virtio.test", tests, sizeof(tests)))
		tests[0] = '\0';
	for (const char *p = tests; *p;) {
		const char *w = p;
		while (*p && *p != ',')
			p++;
		size_t n = (size_t)(p - w);
		if (*p)
			p++;
		if (word_is(w, n, "rng"))
			test_rng();
		else if (word_is(w, n, "blk"))
			test_blk();
		else if (word_is(w, n, "hostile"))
			test_hostile();
		else if (n) {
			char name[32];
			snprintf(name, n + 1 < sizeof(name) ? n + 1 : sizeof(name), "%s", w);
			vfail("unknown test '%s'", name);
		}
	}
	if (virtio_failures)
		printf("virtio: %d check(s) failed\n", virtio_failures);
	else
		puts("virtio: ok\n");
	poweroff();
}
