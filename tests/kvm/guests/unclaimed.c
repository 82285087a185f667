/* unclaimed - accesses I/O ports and MMIO that no device claims: reads of
 * every width must return all ones, writes must be ignored (a read after
 * the write is all ones again), and the guest must keep running.
 * Ports 0x2f0-0x2f3 and 0x530-0x533 (nothing on a PC, QEMU's included;
 * 0x510 is not used because QEMU puts fw_cfg there), MMIO 0xd0000000
 * (PCI hole: neither RAM nor a device).
 * Expect: "unclaimed: ok"; otherwise one "unclaimed: ..." line per
 * mismatch, and "unclaimed: N mismatches". Status 0. */
#include "lib.h"

#define UNCLAIMED_MMIO 0xd0000000ull
static const uint16_t unclaimed_ports[] = {0x2f0, 0x530};
static int mismatches;

static void check(const char *kind, uint64_t addr, unsigned int width, const char *when, uint64_t got)
{
	uint64_t want = width == 8 ? ~0ull : (1ull << (width * 8)) - 1;
	if (got == want)
		return;
	printf("unclaimed: %s 0x%lx width %u %s: read 0x%lx, want 0x%lx\n", kind, (unsigned long)addr,
	       width, when, (unsigned long)got, (unsigned long)want);
	mismatches++;
}

static void check_port_reads(uint16_t p, const char *when)
{
	check("port", p, 1, when, inb(p));
	check("port", p, 2, when, inw(p));
	check("port", p, 4, when, inl(p));
}

static void check_mmio_reads(uint64_t a, const char *when)
{
	check("mmio", a, 1, when, mmio_read8(a));
	check("mmio", a, 2, when, mmio_read16(a));
	check("mmio", a, 4, when, mmio_read32(a));
	check("mmio", a, 8, when, mmio_read64(a));
}

int main(void)
{
	for (unsigned int i = 0; i < sizeof(unclaimed_ports) / sizeof(unclaimed_ports[0]); i++) {
		uint16_t p = unclaimed_ports[i];
		check_port_reads(p, "before write");
		outb(p, 0x5a);
		outw(p, 0x1234);
		outl(p, 0x89abcdef);
		check_port_reads(p, "after write");
	}

	check_mmio_reads(UNCLAIMED_MMIO, "before write");
	mmio_write8(UNCLAIMED_MMIO, 0x5a);
	mmio_write16(UNCLAIMED_MMIO, 0x1234);
	mmio_write32(UNCLAIMED_MMIO, 0x89abcdef);
	mmio_write64(UNCLAIMED_MMIO, 0x0123456789abcdefull);
	check_mmio_reads(UNCLAIMED_MMIO, "after write");

	if (mismatches)
		printf("unclaimed: %d mismatches\n", mismatches);
	else
		puts("unclaimed: ok\n");
	poweroff();
}
