/* clone - a guest to clone from one snapshot (`cvisor restore --count`):
 * it idles in HLT, counts on a slow timer, and after a restore prints the
 * identity its devices give it, as read from their configuration space.
 *
 * Contract (tests/e2e/clones.sh depends on it):
 *   Needs a virtio-vsock device on PCI (MSI-X); a virtio-net device is
 *   optional. At boot it sets up the vsock's three queues, one buffer on
 *   the event queue (5.10.6.7) whose interrupt wakes it, and prints
 *     "clone: cid C mac M"   (M: the first network's MAC, or "none")
 *     "clone: ready"
 *   Then, every tick_ms (command line, default 1000) of the local APIC's
 *   periodic timer: "count N" (N = 1, 2, ...; stored at 0x5000 first, as
 *   the counter guest does). Between ticks it halts: an idle clone costs
 *   its host no CPU.
 *   On a vsock event (cvisor sends a transport reset when it restores the
 *   device) it reads the CID and MAC again and prints
 *     "clone: reset cid C mac M"
 *   and puts the buffer back for the next one.
 *   On the ACPI power button (PWRBTN_STS, looked at each tick) it prints
 *   "clone: power button" and powers off: `cvisor stop` ends it with 0.
 * Output goes straight to the 8250's data port, a few exits a line: on a
 * host that emulates guest code hundreds of clones tick at once. */
#include "virtio_drv.h"

#define COUNTER_ADDR 0x5000ull
#define PM1_STS ACPI_PM1A_EVT
#define PM1_EN (ACPI_PM1A_EVT + 2)
#define PWRBTN (1 << 8) /* PWRBTN_STS and PWRBTN_EN: ACPI 6.5 4.8.3.1 */
#define VEC_TIMER 0x40
#define VEC_EVENT 0x41
#define LAPIC_EOI 0xb0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3e0
#define LVT_PERIODIC (1u << 17)
#define EVQ 2

static volatile uint64_t ticks, events;
static struct vdev *vsock, *net;
static uint8_t event_buf[4] __attribute__((aligned(8)));

static void on_timer(struct trap_frame *f)
{
	(void)f;
	ticks++;
	lapic_write(LAPIC_EOI, 0);
}

static void on_event(struct trap_frame *f)
{
	(void)f;
	events++;
	lapic_write(LAPIC_EOI, 0);
}

static void out(const char *s)
{
	while (*s)
		outb(COM1, (uint8_t)*s++);
}

static void out_dec(uint64_t v)
{
	char tmp[24];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		outb(COM1, (uint8_t)tmp[--n]);
}

static void out_hex2(uint8_t v)
{
	outb(COM1, (uint8_t)"0123456789abcdef"[v >> 4]);
	outb(COM1, (uint8_t)"0123456789abcdef"[v & 15]);
}

/* "cid C mac M\n", both from configuration space (5.10.4, 5.1.4). */
static void identity(void)
{
	out("cid ");
	out_dec(vdev_cfg64(vsock, 0));
	out(" mac ");
	if (!net) {
		out("none\n");
		return;
	}
	for (uint32_t i = 0; i < 6; i++) {
		if (i)
			outb(COM1, ':');
		out_hex2(vdev_cfg8(net, i));
	}
	out("\n");
}

static void event_post(void)
{
	struct vbuf b = { (uintptr_t)event_buf, sizeof(event_buf), true };

	vq_submit(vsock, EVQ, &b, 1);
}

/* Take every used event buffer; 1 if there was one. */
static int event_take(void)
{
	struct vq *q = &vsock->vq[EVQ];
	int any = 0;

	while (q->used->idx != q->last_used) {
		q->last_used++;
		any = 1;
	}
	return any;
}

static int setup(void)
{
	static struct vdev devs[VDEV_MAX];
	int n = virtio_probe(devs, VDEV_MAX);

	for (int i = 0; i < n; i++) {
		if (devs[i].type == VIRTIO_ID_VSOCK && !vsock)
			vsock = &devs[i];
		if (devs[i].type == VIRTIO_ID_NET && !net)
			net = &devs[i];
	}
	if (!vsock || vsock->transport != VIRTIO_T_PCI) {
		printf("clone: FAIL needs a virtio-vsock device on PCI\n");
		return -1;
	}
	if (vdev_negotiate(vsock, 0) || vdev_msix_enable(vsock, 0, VEC_EVENT)) {
		printf("clone: FAIL vsock: negotiation or MSI-X\n");
		return -1;
	}
	for (unsigned int q = 0; q < 3; q++)
		if (vq_setup(vsock, q, VQ_SIZE_CAP, q == EVQ ? 0 : VIRTIO_NO_VECTOR)) {
			printf("clone: FAIL vsock: queue %u\n", q);
			return -1;
		}
	if (vdev_driver_ok(vsock)) {
		printf("clone: FAIL vsock: DRIVER_OK\n");
		return -1;
	}
	event_post();
	return 0;
}

int main(void)
{
	uint64_t tick_ms = cmdline_u64("tick_ms", 1000), seen_ticks = 0, seen_events = 0;
	volatile uint64_t *count = (volatile uint64_t *)COUNTER_ADDR;

	if (setup())
		return 1;
	irq_prepare();
	trap_set_handler(VEC_TIMER, on_timer);
	idt_set_gate(VEC_TIMER, 0);
	trap_set_handler(VEC_EVENT, on_event);
	idt_set_gate(VEC_EVENT, 0);
	outw(PM1_EN, inw(PM1_EN) | PWRBTN);
	out("clone: ");
	identity();
	out("clone: ready\n");
	*count = 0;
	/* Divide by 16 of KVM's 1 GHz APIC bus: 62500 counts a millisecond. */
	lapic_write(LAPIC_TIMER_DIV, 3);
	lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_PERIODIC);
	lapic_write(LAPIC_TIMER_INIT, (uint32_t)(tick_ms * 62500));
	for (;;) {
		/* sti;hlt: an interrupt between the checks and the halt wakes it. */
		__asm__ volatile("cli" ::: "memory");
		if (ticks == seen_ticks && events == seen_events)
			__asm__ volatile("sti; hlt" ::: "memory");
		__asm__ volatile("sti" ::: "memory");
		if (events != seen_events) {
			seen_events = events;
			if (event_take()) {
				out("clone: reset ");
				identity();
				event_post();
			}
		}
		if (ticks != seen_ticks) {
			seen_ticks = ticks;
			*count = *count + 1;
			out("count ");
			out_dec(*count);
			out("\n");
			if (inw(PM1_STS) & PWRBTN) {
				outw(PM1_STS, PWRBTN);
				out("clone: power button\n");
				poweroff();
			}
		}
	}
}
