/* mbtest.c - a multiboot (v1) test kernel, in the manner of kvm-unit-tests
 * but our own code, run under cvisor and under QEMU's pc machine side by
 * side (tests/e2e/multiboot.sh). Its command line: "KERNEL cpus=N mem=M
 * [exit=V] [fail=1]". It checks and prints:
 * - the boot magic in EAX and the information structure's flags;
 * - its command line (the words after the kernel's path), and that the
 *   path is there as argv[0];
 * - each module's string (the words after its path) and first line;
 * - fw_cfg (0x510/0x511): the "QEMU" signature, FW_CFG_NB_CPUS and
 *   FW_CFG_MAX_CPUS against cpus=, FW_CFG_RAM_SIZE against mem= (MiB);
 * - mem_upper and the memory map against mem=;
 * - a #UD (ud2) and a #DE (divide by zero) taken and returned from in
 *   32-bit protected mode, through its own IDT;
 * - the APs brought up by INIT and SIPI (broadcast to all but itself) and
 *   counted: cpus - 1 must arrive.
 * Then it writes its result to isa-debug-exit (0xf4): 0 when every check
 * passed (exit status 1), 1 when one failed (status 3), or V from exit=V
 * once all passed; fail=1 makes it fail on purpose.
 * wait=N gives a host a point to save or migrate it at
 * (tests/e2e/multiboot.sh): with fw_cfg's RAM_SIZE selected and half read,
 * it prints "mbtest: tick 1" to "mbtest: tick N", some 0.2 s apart (by
 * the TSC), then reads the other half and the signature again: a guest
 * restored mid-wait must still have its selector, offset and items. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COM1 0x3f8
#define FW_CFG_SEL 0x510
#define FW_CFG_DATA 0x511
#define DEBUG_EXIT 0xf4
#define LAPIC 0xfee00000u
#define LAPIC_ICR_LO 0x300
#define LAPIC_SVR 0xf0
#define TRAMP 0x1000 /* below 1 MiB, free on both machines after boot */
#define MB_BOOT_MAGIC 0x2BADB002u

struct mbi {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4], mmap_length, mmap_addr;
};

struct mb_mod {
	uint32_t start, end, cmdline, pad;
};

struct exc_frame {
	uint32_t edi, esi, ebp, esp, ebx, edx, ecx, eax, vec, err, eip, cs, eflags;
};

void mb_main(uint32_t magic, const struct mbi *mbi);
void ap_main(void);
void exc_handler(struct exc_frame *f);
extern char exc_stubs[], tramp_start[], tramp_end[];

static volatile uint32_t aps_up;
static volatile uint32_t exc_count[32];
static bool failed;
static uint64_t idt[32];

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static void putc_serial(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (uint8_t)c);
}

static void puts_serial(const char *s)
{
	while (*s)
		putc_serial(*s++);
}

static void put_uint(uint32_t v)
{
	char buf[11];
	int i = 10;

	buf[i] = '\0';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_serial(buf + i);
}

static void check(bool ok, const char *what)
{
	if (ok)
		return;
	failed = true;
	puts_serial("mbtest: FAIL ");
	puts_serial(what);
	puts_serial("\n");
}

static bool word_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

/* The value of "key=" in s (decimal or 0x hex), or def. */
static uint32_t arg_uint(const char *s, const char *key, uint32_t def)
{
	size_t n = 0;

	while (key[n])
		n++;
	for (const char *p = s; *p; p++) {
		uint32_t v = 0, base = 10;

		if ((p != s && p[-1] != ' ') || !word_eq(p, key, n) || p[n] != '=')
			continue;
		p += n + 1;
		if (p[0] == '0' && p[1] == 'x')
			base = 16, p += 2;
		for (; *p && *p != ' '; p++) {
			uint32_t d = *p >= 'a' ? (uint32_t)(*p - 'a' + 10) : (uint32_t)(*p - '0');

			v = v * base + d;
		}
		return v;
	}
	return def;
}

/* The words after the first (a path). */
static const char *after_path(const char *s)
{
	while (*s && *s != ' ')
		s++;
	while (*s == ' ')
		s++;
	return s;
}

static uint64_t fw_cfg_read(uint16_t key, unsigned int bytes)
{
	uint64_t v = 0;

	outw(FW_CFG_SEL, key);
	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)inb(FW_CFG_DATA) << (8 * i);
	return v;
}

void exc_handler(struct exc_frame *f)
{
	if (f->vec < 32)
		exc_count[f->vec]++;
	if (f->vec == 6 || f->vec == 0) {
		f->eip += 2; /* ud2 and "div %ecx" are two bytes */
		return;
	}
	puts_serial("mbtest: unexpected vector ");
	put_uint(f->vec);
	puts_serial("\n");
	outl(DEBUG_EXIT, 1);
}

static void setup_idt(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint32_t base;
	} desc = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };

	for (unsigned int i = 0; i < 32; i++) {
		uint32_t h = (uint32_t)(uintptr_t)exc_stubs + 16 * i;

		/* 32-bit interrupt gate, DPL 0, selector 0x08 */
		idt[i] = (h & 0xffff) | (0x08u << 16) | ((uint64_t)0x8e00 << 32) |
			 ((uint64_t)(h >> 16) << 48);
	}
	__asm__ volatile("lidt %0" : : "m"(desc));
}

static void test_exceptions(void)
{
	uint32_t q, zero = 0;

	__asm__ volatile("ud2");
	__asm__ volatile("xorl %%edx, %%edx\n\tmovl $7, %%eax\n\t.byte 0xf7, 0xf1"
			 : "=a"(q)
			 : "c"(zero)
			 : "edx");
	(void)q;
	check(exc_count[6] == 1, "#UD not taken once");
	check(exc_count[0] == 1, "#DE not taken once");
	if (exc_count[6] == 1 && exc_count[0] == 1)
		puts_serial("mbtest: exceptions ok\n");
}

void ap_main(void)
{
	__atomic_add_fetch(&aps_up, 1, __ATOMIC_SEQ_CST);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(LAPIC + reg) = v;
}

static uint32_t lapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(uintptr_t)(LAPIC + reg);
}

static void wait_icr_idle(void)
{
	for (uint32_t i = 0; i < 1000000 && (lapic_read(LAPIC_ICR_LO) & (1u << 12)); i++)
		__asm__ volatile("pause");
}

/* INIT, then SIPI twice, to all but this CPU (SDM 8.4.4.1); then wait,
 * bounded, until every AP has counted itself. */
static void test_aps(uint32_t cpus)
{
	uint8_t *dst = (uint8_t *)TRAMP;

	for (char *p = tramp_start; p < tramp_end; p++)
		*dst++ = (uint8_t)*p;
	lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x100);
	lapic_write(LAPIC_ICR_LO, 0x000c4500); /* INIT, all excluding self */
	wait_icr_idle();
	for (int i = 0; i < 2; i++) {
		lapic_write(LAPIC_ICR_LO, 0x000c4600 | (TRAMP >> 12)); /* SIPI */
		wait_icr_idle();
	}
	/* bounded by the TSC, not a loop count: an emulating host runs this
	 * loop far slower than hardware does (about 10 s at 2 GHz) */
	for (uint64_t end = rdtsc() + 20000000000ULL; aps_up < cpus - 1 && rdtsc() < end;)
		__asm__ volatile("pause");
	puts_serial("mbtest: ");
	put_uint(aps_up);
	puts_serial(" APs up\n");
	check(aps_up == cpus - 1, "AP count");
}

static void test_modules(const struct mbi *mbi)
{
	const struct mb_mod *m = (const struct mb_mod *)(uintptr_t)mbi->mods_addr;

	puts_serial("mbtest: ");
	put_uint(mbi->mods_count);
	puts_serial(" modules\n");
	for (uint32_t i = 0; i < mbi->mods_count; i++) {
		const char *s = (const char *)(uintptr_t)m[i].cmdline;
		const char *d = (const char *)(uintptr_t)m[i].start;

		check(!(m[i].start & 0xfff), "module not page-aligned");
		check(m[i].end >= m[i].start, "module end before start");
		puts_serial("mbtest: module ");
		put_uint(i);
		puts_serial(" args \"");
		puts_serial(after_path(s));
		puts_serial("\" size ");
		put_uint(m[i].end - m[i].start);
		puts_serial(" first line \"");
		for (uint32_t k = 0; k < m[i].end - m[i].start && d[k] != '\n'; k++)
			putc_serial(d[k]);
		puts_serial("\"\n");
	}
}

static void test_memory(const struct mbi *mbi, uint32_t mem_mib)
{
	uint32_t upper_mib = mbi->mem_upper >> 10, off = 0;
	bool ram_at_1m = false;

	check(mbi->flags & 1, "no memory flag");
	check(mbi->mem_lower >= 500 && mbi->mem_lower <= 640, "mem_lower");
	/* the firmware may keep a little at the top for itself */
	check(upper_mib + 1 <= mem_mib && upper_mib + 3 >= mem_mib, "mem_upper against mem=");
	check(mbi->flags & (1 << 6), "no memory map flag");
	while (off + 24 <= mbi->mmap_length) {
		const uint32_t *e = (const uint32_t *)(uintptr_t)(mbi->mmap_addr + off);

		if (e[1] == 0x100000 && e[2] == 0 && e[5] == 1)
			ram_at_1m = true;
		off += e[0] + 4;
	}
	check(ram_at_1m, "no RAM at 1 MiB in the memory map");
}

/* wait=N: N ticks with fw_cfg's RAM_SIZE half read (see the top). */
static void wait_ticks(uint32_t n, uint32_t mem)
{
	uint64_t ram = 0;

	if (!n)
		return;
	outw(FW_CFG_SEL, 0x03);
	for (unsigned int i = 0; i < 4; i++)
		ram |= (uint64_t)inb(FW_CFG_DATA) << (8 * i);
	for (uint32_t t = 1; t <= n; t++) {
		uint64_t t0 = rdtsc();

		while (rdtsc() - t0 < (1ULL << 29))
			__asm__ volatile("pause");
		puts_serial("mbtest: tick ");
		put_uint(t);
		puts_serial("\n");
	}
	for (unsigned int i = 4; i < 8; i++)
		ram |= (uint64_t)inb(FW_CFG_DATA) << (8 * i);
	check(ram == (uint64_t)mem << 20, "fw_cfg RAM_SIZE read across the wait");
	check(fw_cfg_read(0x00, 4) == 0x554d4551, "fw_cfg signature after the wait");
	puts_serial("mbtest: waited\n");
}

void mb_main(uint32_t magic, const struct mbi *mbi)
{
	const char *cmdline = (const char *)(uintptr_t)mbi->cmdline;
	uint32_t cpus, mem, sig;

	puts_serial("mbtest: start\n");
	check(magic == MB_BOOT_MAGIC, "boot magic");
	check(mbi->flags & (1 << 2), "no command line flag");
	check(mbi->flags & (1 << 3), "no modules flag");
	check(cmdline[0] && cmdline[0] != ' ', "no kernel path as argv[0]");
	puts_serial("mbtest: args \"");
	puts_serial(after_path(cmdline));
	puts_serial("\"\n");
	cpus = arg_uint(cmdline, "cpus", 1);
	mem = arg_uint(cmdline, "mem", 0);

	sig = (uint32_t)fw_cfg_read(0x00, 4);
	check(sig == 0x554d4551, "fw_cfg signature");
	check(fw_cfg_read(0x05, 2) == cpus, "fw_cfg NB_CPUS");
	check(fw_cfg_read(0x0f, 2) == cpus, "fw_cfg MAX_CPUS");
	check(fw_cfg_read(0x03, 8) == (uint64_t)mem << 20, "fw_cfg RAM_SIZE");
	puts_serial("mbtest: fw_cfg cpus ");
	put_uint((uint32_t)fw_cfg_read(0x05, 2));
	puts_serial(" ram ");
	put_uint((uint32_t)(fw_cfg_read(0x03, 8) >> 20));
	puts_serial("M\n");

	wait_ticks(arg_uint(cmdline, "wait", 0), mem);
	test_memory(mbi, mem);
	test_modules(mbi);
	setup_idt();
	test_exceptions();
	test_aps(cpus);
	check(!arg_uint(cmdline, "fail", 0), "fail=1 asked for");
	puts_serial(failed ? "mbtest: FAILED\n" : "mbtest: PASSED\n");
	outl(DEBUG_EXIT, failed ? 1 : arg_uint(cmdline, "exit", 0));
	puts_serial("mbtest: still running after isa-debug-exit\n");
}
