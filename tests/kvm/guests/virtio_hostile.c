/* virtio_hostile.c - the virtio guest's hostile test (see virtio.c): the
 * device gets malformed chains, rings, queue configurations and register
 * writes, and must fail the request or set DEVICE_NEEDS_RESET, and work
 * again after a reset. The monitor must survive all of it. */
#include "virtio_test.h"

#define H_NO_DATA 1    /* a completion must not report bytes written (buffer outside RAM) */
#define H_MUST_RESET 2 /* only DEVICE_NEEDS_RESET makes sense */
#define H_ANY 4	       /* any completion is acceptable (the spec leaves it open) */
#define H_RO_STATUS 8  /* the status byte was device-readable: it must not change */

static uint64_t hostile_features(void)
{
	return VIRTIO_F_INDIRECT_DESC;
}

static int hostile_init(struct vdev *d)
{
	return vdev_init(d, hostile_features(), 1, VIRTIO_NO_VECTOR);
}

static const char *dname(struct vdev *d)
{
	return d->type == VIRTIO_ID_RNG ? "rng" : "blk";
}

/* A normal request: rng 16 bytes, blk a read of sector 1. Returns VQ_*;
 * *ok if it completed with the right length, status and data. */
static int hostile_request(struct vdev *d, bool *ok)
{
	uint32_t len = 0;
	if (d->type == VIRTIO_ID_RNG) {
		int r = rng_read(d, io.data, 16, &len);
		*ok = r == VQ_DONE && len && len <= 16;
		return r;
	}
	uint8_t st;
	struct vbuf b = { (uintptr_t)io.data, 512, true };
	memset(io.data, 0, 512);
	int r = blk_req(d, 0, BLK_T_IN, 1, &b, 1, &st, &len);
	*ok = r == VQ_DONE && st == BLK_S_OK && blk_check(io.data, 1, PAT_IMAGE) < 0;
	return r;
}

static bool hostile_good(struct vdev *d)
{
	bool ok;
	hostile_request(d, &ok);
	return ok;
}

/* After the outcome `how` of malformed input `what`: reset and
 * re-initialize if asked, then require a normal request to work. */
static void hostile_after(struct vdev *d, const char *what, const char *how, bool reset, bool pass)
{
	if (reset && hostile_init(d)) {
		vfail("hostile %s %s: %s; re-initialization failed", dname(d), what, how);
		return;
	}
	if (!hostile_good(d))
		vfail("hostile %s %s: %s; then a normal request failed (status 0x%x)", dname(d),
		      what, how, vdev_status(d));
	else if (pass)
		vpass("hostile %s %s: %s; %snormal request ok", dname(d), what, how,
		      reset ? "reset, " : "");
	else
		vinfo("hostile %s %s: %s; %snormal request ok", dname(d), what, how,
		      reset ? "reset, " : "");
}

/* Wait for the device's answer to a malformed request already published. */
static void hostile_judge(struct vdev *d, const char *what, int flags)
{
	uint32_t id = 0, len = 0;
	char how[96];
	int r = vq_wait(d, 0, &id, &len);
	if (r == VQ_NEEDS_RESET) {
		hostile_after(d, what, "DEVICE_NEEDS_RESET", true, true);
		return;
	}
	if (r != VQ_DONE) {
		vfail("hostile %s %s: neither completed nor set DEVICE_NEEDS_RESET (status 0x%x)",
		      dname(d), what, vdev_status(d));
		hostile_after(d, what, "timeout", true, false);
		return;
	}
	bool blk = d->type == VIRTIO_ID_BLOCK;
	if (flags & H_RO_STATUS && io.status != 0xee) {
		vfail("hostile %s %s: the device wrote 0x%x into a device-readable status byte",
		      dname(d), what, io.status);
	} else if (flags & H_MUST_RESET) {
		vfail("hostile %s %s: completed (id %u, len %u), want DEVICE_NEEDS_RESET", dname(d),
		      what, id, len);
	} else if (blk && !(flags & (H_ANY | H_RO_STATUS)) && io.status == BLK_S_OK) {
		vfail("hostile %s %s: completed with status OK", dname(d), what);
	} else if (flags & H_NO_DATA && len) {
		vfail("hostile %s %s: completed with len %u for a buffer outside RAM", dname(d),
		      what, len);
	} else {
		if (blk)
			snprintf(how, sizeof(how), "completed, status 0x%x, len %u", io.status,
				 len);
		else
			snprintf(how, sizeof(how), "completed, len %u", len);
		hostile_after(d, what, how, false, !(flags & H_ANY) || len == 0);
		return;
	}
	hostile_after(d, what, "bad completion", true, false);
}

static void dset(struct vq *q, uint16_t i, uint64_t a, uint32_t len, uint16_t fl, uint16_t next)
{
	q->desc[i].addr = a;
	q->desc[i].len = len;
	q->desc[i].flags = fl;
	q->desc[i].next = next;
}

/* The device's ordinary chain at descriptors 0.., with its data buffer
 * replaced by (a, len), published. */
static void hostile_buf(struct vdev *d, const char *what, uint64_t a, uint32_t len, int flags)
{
	struct vq *q = &d->vq[0];
	if (d->type == VIRTIO_ID_RNG) {
		dset(q, 0, a, len, VRING_DESC_F_WRITE, 0);
	} else {
		blk_hdr(BLK_T_IN, 0);
		dset(q, 0, (uintptr_t)io.hdr, 16, VRING_DESC_F_NEXT, 1);
		dset(q, 1, a, len, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
		dset(q, 2, (uintptr_t)&io.status, 1, VRING_DESC_F_WRITE, 0);
	}
	q->next_desc = 3;
	vq_put_head(d, 0, 0);
	hostile_judge(d, what, flags);
}

/* A descriptor whose next is itself (the loop is in the first descriptor). */
static void hostile_loop(struct vdev *d)
{
	struct vq *q = &d->vq[0];
	if (d->type == VIRTIO_ID_RNG) {
		dset(q, 0, (uintptr_t)virtio_scratch(), 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
		     0);
	} else {
		blk_hdr(BLK_T_IN, 0);
		dset(q, 0, (uintptr_t)io.hdr, 16, VRING_DESC_F_NEXT, 0);
	}
	q->next_desc = 1;
	vq_put_head(d, 0, 0);
	hostile_judge(d, "descriptor loop (next = itself)", H_ANY);
	/* A longer loop: 0 -> 1 -> 2 -> 0. */
	for (uint16_t i = 0; i < 3; i++)
		dset(q, i, (uintptr_t)virtio_scratch() + 64 * i, 64,
		     (uint16_t)(VRING_DESC_F_NEXT |
				(d->type == VIRTIO_ID_RNG || i ? VRING_DESC_F_WRITE : 0)),
		     (uint16_t)((i + 1) % 3));
	if (d->type == VIRTIO_ID_BLOCK)
		q->desc[0].addr = (uintptr_t)io.hdr;
	q->next_desc = 3;
	vq_put_head(d, 0, 0);
	hostile_judge(d, "descriptor loop 0->1->2->0", H_ANY);
}

static void hostile_blk_chains(struct vdev *d)
{
	struct vq *q = &d->vq[0];
	/* The status byte in a device-readable descriptor. */
	blk_hdr(BLK_T_IN, 0);
	dset(q, 0, (uintptr_t)io.hdr, 16, VRING_DESC_F_NEXT, 1);
	dset(q, 1, (uintptr_t)virtio_scratch(), 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	dset(q, 2, (uintptr_t)&io.status, 1, 0, 0);
	vq_put_head(d, 0, 0);
	hostile_judge(d, "status in a device-readable descriptor", H_RO_STATUS);
	/* A header of 8 bytes instead of 16. */
	blk_hdr(BLK_T_IN, 0);
	dset(q, 0, (uintptr_t)io.hdr, 8, VRING_DESC_F_NEXT, 1);
	dset(q, 1, (uintptr_t)virtio_scratch(), 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	dset(q, 2, (uintptr_t)&io.status, 1, VRING_DESC_F_WRITE, 0);
	vq_put_head(d, 0, 0);
	hostile_judge(d, "8-byte request header", 0);
	/* Only a header: nowhere to put the status. */
	blk_hdr(BLK_T_IN, 0);
	dset(q, 0, (uintptr_t)io.hdr, 16, 0, 0);
	vq_put_head(d, 0, 0);
	hostile_judge(d, "header only, no status byte", H_ANY);
	/* A write whose data is outside RAM (never reaches the image). */
	if (!cmdline_u64("virtio.ro", 0)) {
		blk_hdr(BLK_T_OUT, 3);
		dset(q, 0, (uintptr_t)io.hdr, 16, VRING_DESC_F_NEXT, 1);
		dset(q, 1, OUTSIDE_RAM, 512, VRING_DESC_F_NEXT, 2);
		dset(q, 2, (uintptr_t)&io.status, 1, VRING_DESC_F_WRITE, 0);
		vq_put_head(d, 0, 0);
		hostile_judge(d, "write from a buffer outside RAM", 0);
	}
}

static void hostile_indirect(struct vdev *d)
{
	struct vq *q = &d->vq[0];
	struct vring_desc *t = (struct vring_desc *)(virtio_scratch() + 0x1000);
	uint64_t buf = (uintptr_t)virtio_scratch();
	static const struct {
		const char *what;
		uint32_t len;
		int flags;
	} cases[] = {
		{ "indirect table of 24 bytes (not a multiple of 16)", 24, H_ANY },
		{ "indirect table inside an indirect table", 16, 0 },
		{ "indirect table outside RAM", 16, H_NO_DATA },
		{ "loop inside an indirect table", 16, H_ANY },
		{ "indirect next beyond the table", 16, H_ANY },
		{ "indirect table of 0xfffffff0 bytes", 0xfffffff0u, H_ANY },
		{ "indirect table of 0 bytes", 0, H_ANY },
	};
	if (!(d->features & VIRTIO_F_INDIRECT_DESC)) {
		vinfo("hostile %s: INDIRECT_DESC not offered, indirect cases skipped", dname(d));
		return;
	}
	for (unsigned int c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint64_t ta = (uintptr_t)t;
		t[0] = (struct vring_desc){ buf, 16, VRING_DESC_F_WRITE, 0 };
		t[1] = (struct vring_desc){ buf, 16, VRING_DESC_F_WRITE, 0 };
		if (c == 1)
			t[0] = (struct vring_desc){ (uintptr_t)&t[1], 16, VRING_DESC_F_INDIRECT,
						    0 };
		if (c == 2)
			ta = OUTSIDE_RAM;
		if (c == 3)
			t[0] = (struct vring_desc){ buf, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
						    0 };
		if (c == 4)
			t[0] = (struct vring_desc){ buf, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
						    5 };
		dset(q, 0, ta, cases[c].len, VRING_DESC_F_INDIRECT, 0);
		q->next_desc = 1;
		vq_put_head(d, 0, 0);
		hostile_judge(d, cases[c].what, cases[c].flags);
	}
}

/* Publish `head` (or jump the avail index) without a valid chain. */
static void hostile_ring(struct vdev *d)
{
	struct vq *q = &d->vq[0];
	vq_put_head(d, 0, (uint16_t)(q->size + 5));
	hostile_judge(d, "avail head out of range", H_MUST_RESET);
	q->avail->idx = (uint16_t)(q->avail_idx + q->size + 1);
	vq_notify(d, 0);
	hostile_judge(d, "avail idx jump of size + 1", H_MUST_RESET);
}

/* A queue configured with (size, desc, avail, used): refused at enable or at
 * DRIVER_OK, or (if accepted) the device's answer to a request. A request
 * can only be built when desc is ours (desc_ok); used rings outside RAM
 * are not polled. must_refuse: accepting it and completing is a FAIL. */
static void hostile_queue(struct vdev *d, const char *what, uint16_t size, uint64_t desc,
			  uint64_t avail, uint64_t used, bool desc_ok, bool used_ok,
			  bool must_refuse)
{
	char how[96];
	if (vdev_negotiate(d, hostile_features()))
		return;
	/* Fresh ring indices before the queue goes live: a device may look at
	 * the avail ring as soon as DRIVER_OK is set. */
	((volatile struct vring_avail *)(uintptr_t)avail)->idx = 0;
	if (used_ok)
		((volatile struct vring_used *)(uintptr_t)used)->idx = 0;
	int r = vq_setup_raw(d, 0, size, desc, avail, used, VIRTIO_NO_VECTOR);
	if (r == -2) {
		hostile_after(d, what, "queue enable refused", true, true);
		return;
	}
	if (vdev_driver_ok(d)) {
		snprintf(how, sizeof(how), "refused at DRIVER_OK (status 0x%x)", vdev_status(d));
		hostile_after(d, what, how, true, true);
		return;
	}
	struct vq *q = &d->vq[0];
	if (desc_ok) {
		if (d->type == VIRTIO_ID_RNG) {
			dset(q, 0, (uintptr_t)virtio_scratch(), 16, VRING_DESC_F_WRITE, 0);
		} else {
			blk_hdr(BLK_T_IN, 1);
			dset(q, 0, (uintptr_t)io.hdr, 16, VRING_DESC_F_NEXT, 1);
			dset(q, 1, (uintptr_t)virtio_scratch(), 512,
			     VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
			dset(q, 2, (uintptr_t)&io.status, 1, VRING_DESC_F_WRITE, 0);
		}
	}
	q->avail->ring[0] = 0;
	q->avail->idx = 1;
	vq_notify(d, 0);
	if (!used_ok) {
		if (vdev_wait_status(d, VIRTIO_S_NEEDS_RESET))
			hostile_after(d, what, "accepted, DEVICE_NEEDS_RESET at the first request",
				      true, true);
		else {
			vfail("hostile %s %s: accepted, and no DEVICE_NEEDS_RESET after a request "
			      "(status 0x%x)",
			      dname(d), what, vdev_status(d));
			hostile_after(d, what, "timeout", true, false);
		}
		return;
	}
	uint32_t id, len;
	r = vq_wait(d, 0, &id, &len);
	if (r == VQ_NEEDS_RESET) {
		hostile_after(d, what, "accepted, DEVICE_NEEDS_RESET at the first request", true,
			      true);
	} else if (r == VQ_DONE && must_refuse) {
		vfail("hostile %s %s: accepted and a request completed (len %u)", dname(d), what,
		      len);
		hostile_after(d, what, "completed", true, false);
	} else if (r == VQ_DONE) {
		snprintf(how, sizeof(how),
			 "accepted (the spec leaves this to the device), a request completed");
		hostile_after(d, what, how, true, false);
	} else {
		vfail("hostile %s %s: accepted, then a request neither completed nor set "
		      "DEVICE_NEEDS_RESET",
		      dname(d), what);
		hostile_after(d, what, "timeout", true, false);
	}
}

/* The end of the RAM region holding the image, from the PVH memory map. */
static uint64_t ram_end(void)
{
	const struct hvm_start_info *si = start_info();
	if (!si || si->version < 1 || !si->memmap_paddr)
		return 0;
	const struct hvm_memmap_table_entry *m = (const void *)(uintptr_t)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries && i < 128; i++)
		if (m[i].type == HVM_MEMMAP_RAM && m[i].addr <= 0x100000 &&
		    m[i].addr + m[i].size > 0x100000)
			return m[i].addr + m[i].size;
	return 0;
}

static void hostile_queues(struct vdev *d)
{
	uint8_t *page = d->ring_mem;
	uint64_t p = (uintptr_t)page, end = ram_end();
	/* After a reset, PCI queue_size reads the maximum again (4.1.4.3). */
	uint16_t max = vdev_reset(d) ? 0 : vq_max_size(d, 0);
	hostile_queue(d, "queue size 3 (not a power of 2)", 3, p, p + 1024, p + 2048, true, true,
		      false);
	hostile_queue(d, "queue size 0", 0, p, p + 1024, p + 2048, true, true, false);
	if (max && max < 0x8000)
		hostile_queue(d, "queue size twice the maximum", (uint16_t)(2 * max), p, p + 1024,
			      p + 2048, true, true, false);
	hostile_queue(d, "descriptor table outside RAM", 16, OUTSIDE_RAM, p + 1024, p + 2048, false,
		      true, true);
	hostile_queue(d, "used ring outside RAM", 16, p, p + 1024, OUTSIDE_RAM, true, false, true);
	hostile_queue(d, "used ring misaligned (+2)", 16, p, p + 1024, p + 2048 + 2, true, true,
		      false);
	if (end > 0x400000 && end <= (3ull << 30)) {
		/* 64 descriptors (1 KiB) starting 512 bytes below the end of RAM. */
		uint8_t *t = (uint8_t *)(uintptr_t)(end - 512);
		memset(t, 0, 512);
		hostile_queue(d, "descriptor table straddling the end of RAM", 64, end - 512,
			      p + 1024, p + 2048, true, true, false);
	} else {
		vinfo("hostile %s: no PVH memory map, the end-of-RAM case skipped", dname(d));
	}
}

/* Queue registers rewritten after DRIVER_OK, a queue that does not exist,
 * notifications for queues that do not exist, odd feature negotiations. */
static void hostile_registers(struct vdev *d)
{
	char what[80];
	struct vq *q = &d->vq[0];
	if (hostile_init(d))
		return;
	vq_poke(d, 0, q->size, OUTSIDE_RAM, false);
	/* The request goes into our (unchanged) ring: the device must keep
	 * using the ring it validated or stop with NEEDS_RESET. */
	bool ok;
	int r = hostile_request(d, &ok);
	snprintf(what, sizeof(what), "queue_desc rewritten to 0x%lx while live",
		 (unsigned long)OUTSIDE_RAM);
	if (r == VQ_DONE && !ok)
		vfail("hostile %s %s: a request completed wrongly", dname(d), what);
	else if (r != VQ_DONE && r != VQ_NEEDS_RESET)
		vfail("hostile %s %s: a request %s", dname(d), what, outcome(r));
	else
		hostile_after(d, what,
			      r == VQ_DONE ? "request completed (write ignored)"
					   : "DEVICE_NEEDS_RESET",
			      r != VQ_DONE, true);
	if (hostile_init(d))
		return;
	vq_poke(d, 0, 1024, (uintptr_t)q->desc, false);
	r = hostile_request(d, &ok);
	if (r == VQ_DONE && !ok)
		vfail("hostile %s queue_size rewritten to 1024 while live: a request completed "
		      "wrongly",
		      dname(d));
	else if (r != VQ_DONE && r != VQ_NEEDS_RESET)
		vfail("hostile %s queue_size rewritten to 1024 while live: a request %s", dname(d),
		      outcome(r));
	else
		hostile_after(d, "queue_size rewritten to 1024 while live",
			      r == VQ_DONE ? "request completed (write ignored)"
					   : "DEVICE_NEEDS_RESET",
			      r != VQ_DONE, true);

	/* A queue that does not exist reads size 0 (4.1.4.3, 4.2.2) and
	 * ignores what is written to it. */
	if (hostile_init(d))
		return;
	uint16_t m = vq_size_raw(d, 100);
	if (m)
		vfail("hostile %s queue 100: size/QueueNumMax reads %u, want 0", dname(d), m);
	vq_poke(d, 100, 16, (uintptr_t)d->ring_mem, true);
	vq_poke(d, 0xffff, 16, (uintptr_t)d->ring_mem, true);
	vq_poke(d, 0, q->size, (uintptr_t)q->desc, false); /* reselect queue 0 */
	hostile_after(d, "queues 100 and 0xffff selected, programmed and enabled",
		      m ? "read non-zero" : "size reads 0", false, m == 0);
	vdev_notify_raw(d, 7);
	vdev_notify_raw(d, 0xffff);
	vdev_notify_raw(d, 0x12340000);
	hostile_after(d, "notifications for queues 7, 0xffff and 0x12340000", "no effect", false,
		      true);

	/* Feature negotiation the spec lets the device refuse (2.2.1, 6.1). */
	vdev_reset(d);
	vdev_set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);
	vdev_write_features(d, 0);
	vdev_set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	uint8_t s = vdev_status(d);
	hostile_after(d, "FEATURES_OK without VERSION_1",
		      s & VIRTIO_S_FEATURES_OK ? "accepted (INFO)" : "FEATURES_OK refused", true,
		      !(s & VIRTIO_S_FEATURES_OK));
	vdev_reset(d);
	vdev_set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER);
	vdev_write_features(d, vdev_device_features(d) | 1ull << 50);
	vdev_set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK);
	s = vdev_status(d);
	hostile_after(d, "features with unoffered bit 50",
		      s & VIRTIO_S_FEATURES_OK ? "accepted (INFO)" : "FEATURES_OK refused", true,
		      !(s & VIRTIO_S_FEATURES_OK));
	/* DRIVER_OK straight after reset, without FEATURES_OK or queues. */
	vdev_reset(d);
	vdev_set_status(d, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_DRIVER_OK);
	snprintf(what, sizeof(what), "status 0x%x", vdev_status(d));
	hostile_after(d, "DRIVER_OK without FEATURES_OK", what, true, false);
}

/* PCI: with bus mastering off the device takes nothing from its queues
 * (what a driver unbinding or kexec relies on), with memory space off its
 * BAR reads all ones; both on again, the request kicked meanwhile is
 * served. */
static void hostile_bus_master(struct vdev *d)
{
	uint16_t cmd = vdev_pci_command(d);
	uint32_t len = 0, id = 0;
	int r;

	if (d->transport != VIRTIO_T_PCI || d->type != VIRTIO_ID_RNG)
		return;
	if (hostile_init(d)) {
		vfail("hostile %s: bus master test: initialization failed", dname(d));
		return;
	}
	io.data[0] = 0xee;
	vdev_set_pci_command(d, cmd & ~0x4);
	vq_submit(d, 0, &(struct vbuf){ (uintptr_t)io.data, 16, true }, 1);
	r = vq_wait_tsc(d, 0, &id, &len, VIRTIO_QUIET_TSC);
	if (r != VQ_TIMEOUT) {
		vfail("hostile %s: bus master off, the device still served a request (%d)",
		      dname(d), r);
		vdev_set_pci_command(d, cmd);
		return;
	}
	vdev_set_pci_command(d, cmd & ~0x2);
	if (vdev_status(d) != 0xff)
		vfail("hostile %s: memory space off, the BAR still decodes (status 0x%x)", dname(d),
		      vdev_status(d));
	vdev_set_pci_command(d, cmd);
	r = vq_wait(d, 0, &id, &len);
	if (r == VQ_DONE && vdev_status(d) != 0xff)
		vpass("hostile %s: nothing served with bus mastering off, the pending request "
		      "served once it is back",
		      dname(d));
	else
		vfail("hostile %s: bus master back on, the pending request got %d", dname(d), r);
}

static void hostile_dev(struct vdev *d)
{
	uint64_t scratch_top = (uintptr_t)virtio_scratch() + 0x2000;
	uint64_t end = ram_end();
	if (end && end < scratch_top) {
		vfail("hostile: RAM ends at 0x%lx, below the scratch area", (unsigned long)end);
		return;
	}
	if (hostile_init(d))
		return;
	vpass("hostile %s: %s initialized, features 0x%lx", dname(d), d->name,
	      (unsigned long)d->features);
	hostile_loop(d);
	hostile_buf(d, "buffer at 0x7fff00000000 (outside RAM)", OUTSIDE_RAM, 512, H_NO_DATA);
	hostile_buf(d, "buffer of 0xffffffff bytes", (uintptr_t)virtio_scratch(), 0xffffffffu,
		    H_ANY);
	if (d->type == VIRTIO_ID_BLOCK)
		hostile_buf(d, "read of 0xfffffe00 bytes", (uintptr_t)virtio_scratch(), 0xfffffe00u,
			    0);
	hostile_buf(d, "buffer wrapping past 2^64", 0xfffffffffffff000ull, 0x2000, H_NO_DATA);
	if (end)
		hostile_buf(d, "buffer straddling the end of RAM", end - 256, 512, H_ANY);
	hostile_buf(d, "zero-length buffer", (uintptr_t)virtio_scratch(), 0, H_ANY);
	if (d->type == VIRTIO_ID_BLOCK)
		hostile_blk_chains(d);
	hostile_indirect(d);
	hostile_ring(d);
	hostile_queues(d);
	hostile_registers(d);
	hostile_bus_master(d);
	if (hostile_init(d) || !hostile_good(d))
		vfail("hostile %s: the device does not work at the end", dname(d));
	else
		vpass("hostile %s: the device works after all the malformed input", dname(d));
	vdev_reset(d);
}

void test_hostile(void)
{
	struct vdev *rng = find_dev(VIRTIO_ID_RNG), *blk = find_dev(VIRTIO_ID_BLOCK);
	if (!rng && !blk) {
		vfail("hostile: no virtio-rng or virtio-blk device");
		return;
	}
	if (rng)
		hostile_dev(rng);
	else
		vinfo("hostile: no virtio-rng device");
	if (blk)
		hostile_dev(blk);
	else
		vinfo("hostile: no virtio-blk device");
}
