/* lib.c - runtime for the tiny KVM test guests: console, exits, traps, boot info. */
#include "lib.h"

/* ---- freestanding libc ---- */
void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	uint8_t *dp = d;
	const uint8_t *sp = s;
	if (dp < sp)
		return memcpy(d, s, n);
	while (n--)
		dp[n] = sp[n];
	return d;
}

void *memset(void *d, int c, size_t n)
{
	uint8_t *dp = d;
	while (n--)
		*dp++ = (uint8_t)c;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *ap = a, *bp = b;
	for (; n; n--, ap++, bp++)
		if (*ap != *bp)
			return *ap < *bp ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (uint8_t)*a < (uint8_t)*b ? -1 : 1;
		if (!*a)
			break;
	}
	return 0;
}

void spin_delay(uint64_t n)
{
	while (n--)
		cpu_relax();
}

/* ---- serial ---- */
#define UART_THR 0
#define UART_IER 1
#define UART_LCR 3
#define UART_LSR 5
#define UART_LSR_THRE 0x20
#define UART_LCR_8N1 0x03

void serial_init(void)
{
	outb(COM1 + UART_LCR, UART_LCR_8N1); /* also clears DLAB */
	outb(COM1 + UART_IER, 0);
}

void serial_putc(char c)
{
	/* Bounded: an absent UART reads 0xff (THRE set) anyway. */
	for (int i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_THRE); i++)
		cpu_relax();
	outb(COM1 + UART_THR, (uint8_t)c);
}

void puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

void put_hex(uint64_t v)
{
	printf("0x%lx", (unsigned long)v);
}

struct sink {
	char *buf; /* NULL: serial */
	size_t len, pos;
};

static void sink_put(struct sink *s, char c)
{
	if (!s->buf)
		serial_putc(c);
	else if (s->pos + 1 < s->len)
		s->buf[s->pos] = c;
	s->pos++;
}

static void format_num(struct sink *s, uint64_t v, unsigned int base, bool neg, int width, char pad)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	for (int i = n; i < width; i++)
		sink_put(s, pad);
	while (n)
		sink_put(s, tmp[--n]);
}

static int vformat(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			sink_put(s, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, lng = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'c':
			sink_put(s, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			int n = (int)strlen(str);
			for (int i = n; i < width; i++)
				sink_put(s, ' ');
			while (*str)
				sink_put(s, *str++);
			break;
		}
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			format_num(s, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
			format_num(s, v, *fmt == 'u' ? 10 : 16, false, width, pad);
			break;
		}
		case 'p':
			sink_put(s, '0');
			sink_put(s, 'x');
			format_num(s, (uintptr_t)va_arg(ap, void *), 16, false, width, pad);
			break;
		case '%':
			sink_put(s, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			sink_put(s, '%');
			sink_put(s, *fmt);
		}
	}
	if (s->buf && s->len)
		s->buf[s->pos < s->len ? s->pos : s->len - 1] = '\0';
	return (int)s->pos;
}

int vprintf(const char *fmt, va_list ap)
{
	struct sink s = {0};
	return vformat(&s, fmt, ap);
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int snprintf(char *buf, size_t len, const char *fmt, ...)
{
	struct sink s = {.buf = buf, .len = len};
	va_list ap;
	va_start(ap, fmt);
	int n = vformat(&s, fmt, ap);
	va_end(ap);
	return n;
}

/* ---- leaving the VM ---- */
/* Long enough for a monitor that stops the VM asynchronously after the
 * exiting write; short enough to report a write that did nothing. */
#define EXIT_GRACE_SPINS 200000

void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

void poweroff(void)
{
	outw(ACPI_PM1A_CNT, (ACPI_SLP_TYP_S5 << 10) | ACPI_SLP_EN);
	spin_delay(EXIT_GRACE_SPINS);
	puts("poweroff: PM1a_CNT write had no effect\n");
	halt_forever();
}

void i8042_reset(void)
{
	/* i8042: wait for the input buffer to drain before a command. */
	for (int i = 0; i < 10000 && (inb(I8042_CMD) & 0x02); i++)
		cpu_relax();
	outb(I8042_CMD, I8042_CMD_RESET);
	spin_delay(EXIT_GRACE_SPINS);
	puts("i8042_reset: no reset\n");
	halt_forever();
}

void acpi_reset(void)
{
	outb(ACPI_RESET_PORT, ACPI_RESET_VALUE);
	spin_delay(EXIT_GRACE_SPINS);
	puts("acpi_reset: no reset\n");
	halt_forever();
}

/* ---- LAPIC ---- */
int lapic_send_ipi(uint32_t dest, uint32_t lo)
{
	lapic_write(LAPIC_ICR_HI, dest << 24);
	lapic_write(LAPIC_ICR_LO, lo);
	for (int i = 0; i < 100000; i++) {
		if (!(lapic_read(LAPIC_ICR_LO) & ICR_DELIVERY_PENDING))
			return 0;
		cpu_relax();
	}
	return -1;
}

/* ---- boot information ---- */
const struct hvm_start_info *start_info(void)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)boot_entry_ebx;
	if (!si || si->magic != HVM_START_MAGIC)
		return NULL;
	return si;
}

const char *cmdline(void)
{
	static char buf[CMDLINE_MAX];
	static bool done;
	const struct hvm_start_info *si = start_info();
	if (done)
		return buf;
	done = true;
	if (!si || !si->cmdline_paddr || si->cmdline_paddr >= (1ull << 32) - CMDLINE_MAX)
		return buf;
	const char *p = (const char *)(uintptr_t)si->cmdline_paddr;
	for (size_t i = 0; i < CMDLINE_MAX - 1 && p[i]; i++)
		buf[i] = p[i];
	return buf;
}

const char *cmdline_next(const char *p, const char *key)
{
	size_t klen = strlen(key);
	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, klen) && p[klen] == '=')
			return p + klen + 1;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

const char *parse_u64(const char *p, uint64_t *v)
{
	unsigned int base = 10;
	*v = 0;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (;; p++) {
		unsigned int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		*v = *v * base + d;
	}
	return p;
}

uint64_t cmdline_u64(const char *key, uint64_t def)
{
	const char *p = cmdline_next(cmdline(), key);
	uint64_t v;
	if (!p)
		return def;
	parse_u64(p, &v);
	return v;
}

/* ---- traps ---- */
struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type_attr;
	uint16_t off_mid;
	uint32_t off_hi, reserved;
} __attribute__((packed));

extern struct idt_gate idt[256];
extern const uint64_t isr_table[256];
static trap_fn trap_handlers[256];

void idt_set_gate(unsigned int vec, unsigned int dpl)
{
	uint64_t a = isr_table[vec & 0xff];
	idt[vec & 0xff] = (struct idt_gate){
		.off_lo = (uint16_t)a,
		.sel = SEL_CODE64,
		.type_attr = (uint8_t)(0x80 | (dpl & 3) << 5 | 0xe), /* P, 64-bit interrupt gate */
		.off_mid = (uint16_t)(a >> 16),
		.off_hi = (uint32_t)(a >> 32),
	};
}

void trap_set_handler(unsigned int vec, trap_fn fn)
{
	trap_handlers[vec & 0xff] = fn;
}

const char *trap_name(unsigned int vec)
{
	static const char *const names[32] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS",
		"#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
		"#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
	};
	return vec < 32 ? names[vec] : "irq";
}

void trap_default(struct trap_frame *f)
{
	printf("exception %u (%s) err=0x%lx rip=0x%lx cs=0x%lx rflags=0x%lx rsp=0x%lx cr2=0x%lx\n",
	       (unsigned int)f->vector, trap_name((unsigned int)f->vector), (unsigned long)f->error,
	       (unsigned long)f->rip, (unsigned long)f->cs, (unsigned long)f->rflags,
	       (unsigned long)f->rsp, (unsigned long)read_cr2());
	poweroff();
}

void trap_dispatch(struct trap_frame *f);
void trap_dispatch(struct trap_frame *f)
{
	trap_fn fn = trap_handlers[f->vector & 0xff];
	if (fn)
		fn(f);
	else
		trap_default(f);
}

/* ---- TSS ---- */
struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3, iomap_base;
} __attribute__((packed));

extern uint64_t gdt[8];

void tss_install(uint64_t rsp0)
{
	static struct tss64 tss;
	_Static_assert(sizeof(tss) == 104, "64-bit TSS is 104 bytes");
	tss.rsp[0] = rsp0;
	tss.iomap_base = sizeof(tss); /* no I/O bitmap: ring 3 gets no ports */
	uint64_t base = (uintptr_t)&tss, limit = sizeof(tss) - 1;
	gdt[SEL_TSS / 8] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
			   ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
	gdt[SEL_TSS / 8 + 1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS) : "memory");
}

/* ---- start-up (called by crt0 on the BSP before main) ---- */
void runtime_init(void);
void runtime_init(void)
{
	serial_init();
	for (unsigned int v = 0; v < 32; v++)
		idt_set_gate(v, 0);
}

__attribute__((weak)) void ap_main(void)
{
	halt_forever();
}
