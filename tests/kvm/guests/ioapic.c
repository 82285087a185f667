/* ioapic - the IOAPIC as a guest sees it, driven by the 8250's THR-empty
 * interrupt on pin 4 (COM1): the same checks pass with KVM's IOAPIC
 * (--irqchip kernel) and with cvisor's (--irqchip split).
 *
 * Prints "ioapic: PASS|FAIL ..." per check and "ioapic: ok" when all
 * passed, then powers off. Checks:
 *   - version 0x11 and 23 as the highest redirection entry;
 *   - level: one interrupt, remote IRR set in the handler and clear after
 *     the EOI;
 *   - level, line still asserted at the EOI: delivered again;
 *   - level while masked: nothing, then delivered on unmask;
 *   - edge: one interrupt per rising edge, no remote IRR;
 *   - an entry switched from level to edge loses its remote IRR (Linux's
 *     way to clear it on an IOAPIC without an EOI register).
 * The UART's interrupt is off (IER 0) whenever the guest prints.
 * With "hold=1" on the command line it only programs pin 7 (masked,
 * level, vector 0x57, destination 3) and prints "ioapic: pin 7 LO HI" as
 * read back, about ten times a second, forever: a snapshot or migration
 * test checks that the IOAPIC's state travelled with the guest.
 * A level interrupt may arrive twice on the emulating (PVM) host, with
 * KVM's IOAPIC as with cvisor's: its local APIC leaves the vector in IRR
 * through the handler (measured: IRR and TMR set, ISR clear) and
 * delivers it again after the EOI. The level checks count "at least". */
#include "lib.h"

#define VEC 0x41
#define PIN 4
#define UART_IER 1
#define UART_IIR 2
#define UART_MCR 4
#define IER_ETBEI 0x02
#define MCR_OUT2 0x08
#define RE_REMOTE_IRR (1u << 14)
#define RE_LEVEL (1u << 15)
#define RE_MASK (1u << 16)
#define LAPIC_EOI 0xb0
#define SPIN_MAX 400000 /* bounded waits: about 2 s emulated, far less on VT-x */

static volatile unsigned int hits;
static volatile bool keep_first; /* leave the line up at the first interrupt */
static volatile uint32_t entry_seen; /* at the first interrupt */
static unsigned int failures;

static uint32_t entry(void)
{
	return ioapic_read(0x10 + 2 * PIN);
}

static void set_entry(uint32_t lo)
{
	ioapic_write(0x10 + 2 * PIN + 1, lapic_id() << 24);
	ioapic_write(0x10 + 2 * PIN, lo);
}

static void handler(struct trap_frame *f)
{
	(void)f;
	if (!hits++)
		entry_seen = entry();
	/* Reading the IIR with THR empty the source clears it (8250). */
	if (!(keep_first && hits == 1))
		(void)inb(COM1 + UART_IIR);
	lapic_write(LAPIC_EOI, 0);
}

static void spurious(struct trap_frame *f)
{
	(void)f;
}

static void sti(void)
{
	__asm__ volatile("sti" ::: "memory");
}

static void cli(void)
{
	__asm__ volatile("cli" ::: "memory");
}

/* With interrupts on, until hits reaches want or the bound. */
static void wait_hits(unsigned int want)
{
	for (unsigned int i = 0; i < SPIN_MAX && hits < want; i++)
		cpu_relax();
}

static void spin(unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		cpu_relax();
}

static void check(bool ok, const char *what, uint32_t a, uint32_t b)
{
	if (ok) {
		printf("ioapic: PASS %s\n", what);
	} else {
		printf("ioapic: FAIL %s (0x%x, 0x%x)\n", what, a, b);
		failures++;
	}
}

/* Raise the THR-empty interrupt with interrupts on, wait for want hits,
 * then turn the UART's interrupt off again. */
static void raise_and_wait(unsigned int want, unsigned int extra_spin)
{
	hits = 0;
	entry_seen = 0;
	sti();
	outb(COM1 + UART_IER, IER_ETBEI);
	wait_hits(want);
	spin(extra_spin);
	cli();
	outb(COM1 + UART_IER, 0);
	(void)inb(COM1 + UART_IIR);
}

/* hold=1: see the top of the file. */
static void NORETURN hold(void)
{
	ioapic_write(0x10 + 2 * 7 + 1, 3u << 24);
	ioapic_write(0x10 + 2 * 7, 0x57 | RE_LEVEL | RE_MASK);
	for (;;) {
		printf("ioapic: pin 7 0x%x 0x%x\n", ioapic_read(0x10 + 2 * 7),
		       ioapic_read(0x10 + 2 * 7 + 1));
		spin(20000);
	}
}

int main(void)
{
	uint32_t ver = ioapic_read(1), e;

	if (cmdline_u64("hold", 0))
		hold();

	outb(0x21, 0xff); /* 8259s masked (with --irqchip split there are none) */
	outb(0xa1, 0xff);
	lapic_write(0x350, lapic_read(0x350) | 1u << 16); /* LVT LINT0 masked */
	lapic_write(0x80, 0);				  /* TPR */
	trap_set_handler(VEC, handler);
	idt_set_gate(VEC, 0);
	trap_set_handler(0xff, spurious);
	idt_set_gate(0xff, 0);
	lapic_write(LAPIC_SVR, 0x1ff);
	outb(COM1 + UART_IER, 0);
	outb(COM1 + UART_MCR, MCR_OUT2); /* the 8250's interrupt reaches its pin */

	check((ver & 0xff) == 0x11 && ((ver >> 16) & 0xff) == 23,
	      "version 0x11, 24 redirection entries", ver, 0);

	set_entry(VEC | RE_LEVEL);
	raise_and_wait(1, 2000);
	e = entry();
	check(hits >= 1 && (entry_seen & RE_REMOTE_IRR) && !(e & RE_REMOTE_IRR),
	      "level: interrupt, remote IRR set until the EOI", hits, entry_seen);

	keep_first = true;
	raise_and_wait(2, 2000);
	keep_first = false;
	e = entry();
	check(hits >= 2 && !(e & RE_REMOTE_IRR), "level: still asserted at the EOI, delivered again",
	      hits, e);

	set_entry(VEC | RE_LEVEL | RE_MASK);
	hits = 0;
	sti();
	outb(COM1 + UART_IER, IER_ETBEI);
	spin(20000);
	unsigned int masked_hits = hits;
	set_entry(VEC | RE_LEVEL);
	wait_hits(1);
	spin(2000);
	cli();
	outb(COM1 + UART_IER, 0);
	check(masked_hits == 0 && hits >= 1, "level: nothing while masked, delivered on unmask",
	      masked_hits, hits);

	set_entry(VEC);
	raise_and_wait(1, 20000);
	e = entry();
	check(hits == 1 && !(entry_seen & RE_REMOTE_IRR) && !(e & RE_REMOTE_IRR),
	      "edge: one interrupt, no remote IRR", hits, entry_seen);

	/* Delivered with interrupts off: remote IRR set, the vector waiting
	 * in the local APIC. Switching to edge clears the remote IRR; the
	 * interrupt still arrives once interrupts are on. */
	set_entry(VEC | RE_LEVEL);
	hits = 0;
	outb(COM1 + UART_IER, IER_ETBEI);
	uint32_t before = entry();
	outb(COM1 + UART_IER, 0);
	(void)inb(COM1 + UART_IIR);
	set_entry(VEC);
	uint32_t after = entry();
	sti();
	wait_hits(1);
	cli();
	check((before & RE_REMOTE_IRR) && !(after & RE_REMOTE_IRR) && hits == 1,
	      "level to edge clears the remote IRR", before, after);

	set_entry(VEC | RE_MASK);
	if (!failures)
		printf("ioapic: ok\n");
	poweroff();
}
