/* smp - counts the processors the firmware tables describe and starts them.
 *
 * 1. Intel MP table (MP spec 1.4): floating pointer "_MP_" on a 16-byte
 *    boundary in the EBDA, the last KiB of base memory or 0xF0000-0xFFFFF;
 *    count enabled processor entries.
 * 2. ACPI MADT via the RSDP from hvm_start_info (scan 0xE0000-0xFFFFF if
 *    rsdp_paddr is 0), XSDT if revision >= 2 else RSDT; count enabled
 *    Local APIC / x2APIC entries. All checksums verified.
 * 3. Copy smp_tramp.S to the first free page in 0x1000-0x9e000 (skipping
 *    0x5000 and the monitor's 0x6000-0x10000 and any boot data), send each
 *    AP of the MADT (else MP) list INIT, INIT de-assert, SIPI, SIPI through
 *    the xAPIC ICR. Each AP reaches long mode on its own stack (crt0.S),
 *    records its LAPIC id and atomically increments ap_up.
 * 4. Wait (bounded spin, "smp_wait=N" on the command line) and report.
 * Expect, for --cpus N:
 *    "smp: mptable N cpus (...)", "smp: madt N cpus (...)",
 *    "smp: N cpus up (apic ids ...)", "smp: ok"; status 0. Anything wrong
 *    prints "smp: BAD <what>" instead of "smp: ok".
 * 5. With "smp.count=1" on the command line (snapshot tests), instead of
 *    powering off every processor counts for ever: AP number k (in the
 *    order they came up) increments the u64 at SMP_COUNT_ADDR + 8 * k
 *    without pause, and the BSP behaves as the counter guest: the u64 at
 *    0x5000 is N (with the counter's magic at 0x5008), then "count N" is
 *    printed, every "spin" iterations.
 * 6. With "smp.reboot=N" (the reset-in-place tests, --on-reboot restart):
 *    after step 4, boot number K (counted in RAM at REBOOT_ADDR, which no
 *    reset clears, as on a PC) prints "smp: boot K of N" and resets the
 *    machine, through the i8042 when K is odd and the ACPI reset register
 *    when even, until K is N; then it powers off. Each boot starts the APs
 *    again, so each must have been put back to wait for INIT/SIPI. */
#include "lib.h"

#define SMP_WAIT_SPINS 2000000
#define TRAMP_LOW 0x1000
#define TRAMP_HIGH 0x9e000
#define COUNTER_PAGE 0x5000 /* counter guest's page; kept free by convention */
#define SMP_COUNT_ADDR 0x5100ull /* smp.count=1: one u64 per AP */
#define REBOOT_ADDR 0x5200ull	 /* smp.reboot=N: magic, then the boot count */
#define REBOOT_MAGIC 0x746f6f6265524356ull

extern char smp_tramp_start[], smp_tramp_end[];

static volatile uint32_t ap_up, ap_slot;
static volatile uint32_t ap_ids[MAX_CPUS];
static int bad;
static volatile bool count_mode;

void ap_main(void)
{
	uint32_t id = lapic_id();
	uint32_t slot = __atomic_fetch_add(&ap_slot, 1, __ATOMIC_RELAXED);
	if (slot < MAX_CPUS)
		ap_ids[slot] = id;
	__atomic_fetch_add(&ap_up, 1, __ATOMIC_RELEASE);
	if (count_mode && slot < 16) {
		volatile uint64_t *c = (volatile uint64_t *)(SMP_COUNT_ADDR + 8 * slot);
		for (;;)
			*c = *c + 1;
	}
	halt_forever();
}

static void fail(const char *what)
{
	printf("smp: BAD %s\n", what);
	bad++;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

struct cpu_list {
	int n; /* -1: table missing or invalid */
	uint32_t ids[MAX_CPUS];
	const char *err;
};

static void list_add(struct cpu_list *l, uint32_t id)
{
	if (l->n < MAX_CPUS)
		l->ids[l->n] = id;
	l->n++;
}

/* ---- MP table ---- */
static const uint8_t *mp_scan(uint64_t start, uint64_t len)
{
	for (uint64_t a = start; a + 16 <= start + len; a += 16) {
		const uint8_t *p = (const uint8_t *)a;
		if (!memcmp(p, "_MP_", 4) && p[8] == 1 && !sum8(p, 16))
			return p;
	}
	return NULL;
}

static void mp_count(struct cpu_list *l)
{
	l->n = -1;
	uint64_t ebda = (uint64_t)rd16((const uint8_t *)0x40e) << 4;
	const uint8_t *mpf = NULL;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		mpf = mp_scan(ebda, 1024);
	if (!mpf)
		mpf = mp_scan(0x9fc00, 1024);
	if (!mpf)
		mpf = mp_scan(0xf0000, 0x10000);
	if (!mpf) {
		l->err = "no floating pointer";
		return;
	}
	if (mpf[11]) {
		l->err = "default configuration, no table";
		return;
	}
	const uint8_t *cfg = (const uint8_t *)(uintptr_t)rd32(mpf + 4);
	uint16_t len = 0;
	if (!cfg || memcmp(cfg, "PCMP", 4) || (len = rd16(cfg + 4)) < 44 || sum8(cfg, len)) {
		l->err = "bad configuration table";
		return;
	}
	l->n = 0;
	const uint8_t *e = cfg + 44, *end = cfg + len;
	for (unsigned int i = 0; i < rd16(cfg + 34) && e < end; i++) {
		unsigned int elen = e[0] == 0 ? 20 : 8;
		if (e[0] > 4 || e + elen > end) {
			l->err = "bad entry";
			l->n = -1;
			return;
		}
		if (e[0] == 0 && (e[3] & 1)) /* processor, EN */
			list_add(l, e[1]);
		e += elen;
	}
}

/* ---- ACPI MADT ---- */
static const uint8_t *rsdp_find(void)
{
	const struct hvm_start_info *si = start_info();
	if (si && si->rsdp_paddr && si->rsdp_paddr < (1ull << 32))
		return (const uint8_t *)(uintptr_t)si->rsdp_paddr;
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
		const uint8_t *p = (const uint8_t *)a;
		if (!memcmp(p, "RSD PTR ", 8) && !sum8(p, 20))
			return p;
	}
	return NULL;
}

static const uint8_t *sdt_checked(uint64_t addr, const char *sig)
{
	if (!addr || addr >= (1ull << 32))
		return NULL;
	const uint8_t *t = (const uint8_t *)(uintptr_t)addr;
	uint32_t len = rd32(t + 4);
	if ((sig && memcmp(t, sig, 4)) || len < 36 || len > 0x10000 || sum8(t, len))
		return NULL;
	return t;
}

static void madt_count(struct cpu_list *l)
{
	l->n = -1;
	const uint8_t *rsdp = rsdp_find();
	if (!rsdp || memcmp(rsdp, "RSD PTR ", 8) || sum8(rsdp, 20)) {
		l->err = "no valid RSDP";
		return;
	}
	const uint8_t *root;
	unsigned int esize;
	if (rsdp[15] >= 2 && rd64(rsdp + 24)) {
		root = sdt_checked(rd64(rsdp + 24), "XSDT");
		esize = 8;
	} else {
		root = sdt_checked(rd32(rsdp + 16), "RSDT");
		esize = 4;
	}
	if (!root) {
		l->err = "bad RSDT/XSDT";
		return;
	}
	const uint8_t *madt = NULL;
	for (uint32_t off = 36; off + esize <= rd32(root + 4) && !madt; off += esize) {
		uint64_t a = esize == 8 ? rd64(root + off) : rd32(root + off);
		const uint8_t *t = sdt_checked(a, NULL);
		if (t && !memcmp(t, "APIC", 4))
			madt = t;
	}
	if (!madt) {
		l->err = "no valid MADT";
		return;
	}
	l->n = 0;
	const uint8_t *e = madt + 44, *end = madt + rd32(madt + 4);
	while (e + 2 <= end) {
		if (e[1] < 2 || e + e[1] > end) {
			l->err = "bad MADT entry";
			l->n = -1;
			return;
		}
		if (e[0] == 0 && e[1] >= 8 && (rd32(e + 4) & 1)) /* Processor Local APIC */
			list_add(l, e[3]);
		else if (e[0] == 9 && e[1] >= 16 && (rd32(e + 8) & 1)) /* Processor Local x2APIC */
			list_add(l, rd32(e + 4));
		e += e[1];
	}
}

static void print_list(const char *name, const struct cpu_list *l)
{
	if (l->n < 0) {
		printf("smp: %s: %s\n", name, l->err);
		return;
	}
	printf("smp: %s %d cpus (apic ids", name, l->n);
	for (int i = 0; i < l->n && i < MAX_CPUS; i++)
		printf(" %u", l->ids[i]);
	puts(")\n");
}

/* ---- trampoline placement ---- */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return b && a < b + blen && b < a + alen;
}

static bool page_free(uint64_t page)
{
	const struct hvm_start_info *si = start_info();
	if (page == COUNTER_PAGE || (page >= 0x6000 && page < 0x10000))
		return false;
	if (!si)
		return true;
	if (overlaps(page, 4096, boot_entry_ebx, sizeof(*si)) ||
	    overlaps(page, 4096, si->cmdline_paddr, strlen(cmdline()) + 1) ||
	    overlaps(page, 4096, si->modlist_paddr, si->nr_modules * sizeof(struct hvm_modlist_entry)) ||
	    overlaps(page, 4096, si->rsdp_paddr, 36))
		return false;
	if (si->version >= 1 && si->memmap_paddr) {
		if (overlaps(page, 4096, si->memmap_paddr,
			     si->memmap_entries * sizeof(struct hvm_memmap_table_entry)))
			return false;
		const struct hvm_memmap_table_entry *m = (const void *)(uintptr_t)si->memmap_paddr;
		for (uint32_t i = 0; i < si->memmap_entries; i++)
			if (m[i].type == HVM_MEMMAP_RAM && m[i].addr <= page && m[i].addr + m[i].size >= page + 4096)
				return true;
		return false;
	}
	return true;
}

static int cmp_u32(uint32_t a, uint32_t b) { return a < b ? -1 : a > b; }

int main(void)
{
	struct cpu_list mp, madt;
	count_mode = cmdline_u64("smp.count", 0) != 0;
	mp_count(&mp);
	madt_count(&madt);
	print_list("mptable", &mp);
	print_list("madt", &madt);

	const struct cpu_list *cpus = madt.n > 0 ? &madt : &mp;
	if (cpus->n <= 0) {
		fail("no processor table to start APs from");
		poweroff();
	}
	if (mp.n >= 0 && madt.n >= 0 && mp.n != madt.n)
		fail("MP table and MADT disagree on the number of cpus");
	if (cpus->n > MAX_CPUS) {
		fail("more cpus than this guest supports");
		poweroff();
	}
	uint32_t bsp = lapic_id();
	bool bsp_listed = false;
	for (int i = 0; i < cpus->n; i++)
		bsp_listed |= cpus->ids[i] == bsp;
	if (!bsp_listed)
		fail("the BSP's LAPIC id is not in the table");

	uint64_t tramp = TRAMP_LOW;
	while (tramp <= TRAMP_HIGH && !page_free(tramp))
		tramp += 4096;
	if (tramp > TRAMP_HIGH) {
		fail("no free page below 640 KiB for the trampoline");
		poweroff();
	}
	memcpy((void *)tramp, smp_tramp_start, smp_tramp_end - smp_tramp_start);
	printf("smp: bsp apic id %u, trampoline at 0x%lx\n", bsp, (unsigned long)tramp);

	lapic_write(LAPIC_SVR, 0x1ff); /* APIC software enable, spurious vector 0xff */
	int expected_aps = 0;
	for (int i = 0; i < cpus->n; i++) {
		if (cpus->ids[i] == bsp)
			continue;
		expected_aps++;
		if (lapic_send_ipi(cpus->ids[i], ICR_INIT | ICR_LEVEL_ASSERT | ICR_TRIGGER_LEVEL) ||
		    lapic_send_ipi(cpus->ids[i], ICR_INIT | ICR_TRIGGER_LEVEL))
			fail("INIT IPI stuck pending");
	}
	spin_delay(10000); /* "10 ms" (MP spec B.4) */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < cpus->n; i++)
			if (cpus->ids[i] != bsp && lapic_send_ipi(cpus->ids[i], ICR_STARTUP | (uint32_t)(tramp >> 12)))
				fail("SIPI stuck pending");
		spin_delay(1000); /* "200 us" */
	}

	uint64_t wait = cmdline_u64("smp_wait", SMP_WAIT_SPINS);
	for (uint64_t i = 0; i < wait && __atomic_load_n(&ap_up, __ATOMIC_ACQUIRE) < (uint32_t)expected_aps; i++)
		cpu_relax();
	spin_delay(1000); /* let a surplus AP show up too */

	uint32_t up = __atomic_load_n(&ap_up, __ATOMIC_ACQUIRE);
	uint32_t ids[MAX_CPUS + 1];
	unsigned int n = 0;
	ids[n++] = bsp;
	for (uint32_t i = 0; i < up && i < MAX_CPUS; i++)
		ids[n++] = ap_ids[i];
	for (unsigned int i = 1; i < n; i++) /* insertion sort */
		for (unsigned int j = i; j > 0 && cmp_u32(ids[j - 1], ids[j]) > 0; j--) {
			uint32_t t = ids[j];
			ids[j] = ids[j - 1];
			ids[j - 1] = t;
		}
	printf("smp: %u cpus up (apic ids", up + 1);
	for (unsigned int i = 0; i < n; i++)
		printf(" %u", ids[i]);
	puts(")\n");

	if (up != (uint32_t)expected_aps)
		fail("not every AP came up (or one came up twice)");
	for (unsigned int i = 1; i < n; i++)
		if (ids[i] == ids[i - 1])
			fail("two cpus report the same LAPIC id");
	for (unsigned int i = 0; i < n; i++) {
		bool listed = false;
		for (int j = 0; j < cpus->n; j++)
			listed |= cpus->ids[j] == ids[i];
		if (!listed)
			fail("a cpu's LAPIC id is not in the table");
	}
	if (!bad)
		puts("smp: ok\n");
	if (count_mode) {
		uint64_t spin = cmdline_u64("spin", 20000);
		*(volatile uint64_t *)(uintptr_t)(COUNTER_PAGE + 8) = 0x72746e756f435643ull;
		for (uint64_t c = 1;; c++) {
			spin_delay(spin);
			*(volatile uint64_t *)(uintptr_t)COUNTER_PAGE = c;
			printf("count %lu\n", (unsigned long)c);
		}
	}
	uint64_t reboots = cmdline_u64("smp.reboot", 0);
	if (reboots) {
		volatile uint64_t *r = (volatile uint64_t *)(uintptr_t)REBOOT_ADDR;
		if (r[0] != REBOOT_MAGIC) {
			r[0] = REBOOT_MAGIC;
			r[1] = 0;
		}
		uint64_t k = ++r[1];
		printf("smp: boot %lu of %lu\n", (unsigned long)k, (unsigned long)reboots);
		if (k < reboots) {
			if (k & 1)
				i8042_reset();
			acpi_reset();
		}
	}
	poweroff();
}
