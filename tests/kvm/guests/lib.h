/* lib.h - runtime for the tiny KVM test guests (see crt0.S).
 *
 * Guests are freestanding 64-bit programs: main() runs on the BSP in long
 * mode with interrupts off, the first 4 GiB identity-mapped, an IDT whose
 * exception vectors print the fault and power off, and COM1 for output.
 * Returning from main() powers off. */
#ifndef TINY_LIB_H
#define TINY_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NORETURN __attribute__((noreturn))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))

#include "gdt.h"
#define MAX_CPUS 32

/* The PC platform the monitor provides. */
#define COM1 0x3f8
#define I8042_DATA 0x60
#define I8042_CMD 0x64
#define I8042_CMD_RESET 0xfe
#define ACPI_PM1A_EVT 0x600
#define ACPI_PM1A_CNT 0x604
#define ACPI_RESET_PORT 0x606
#define ACPI_RESET_VALUE 0x01
#define ACPI_SLP_TYP_S5 5
#define ACPI_SLP_EN (1 << 13)
#define LAPIC_BASE 0xfee00000ull
#define IOAPIC_BASE 0xfec00000ull

#define RFLAGS_CF (1ull << 0)
#define RFLAGS_IF (1ull << 9)
#define RFLAGS_TF (1ull << 8)
#define RFLAGS_DF (1ull << 10)
#define RFLAGS_IOPL (3ull << 12)
#define RFLAGS_NT (1ull << 14)
#define RFLAGS_VM (1ull << 17)
#define RFLAGS_AC (1ull << 18)

/* ---- port and memory-mapped I/O ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint8_t mmio_read8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t mmio_read16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline uint64_t mmio_read64(uint64_t a) { return *(volatile uint64_t *)a; }
static inline void mmio_write8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mmio_write16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void mmio_write64(uint64_t a, uint64_t v) { *(volatile uint64_t *)a = v; }

/* ---- CPU ---- */
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}
static inline uint64_t read_rflags(void)
{
	uint64_t f;
	__asm__ volatile("pushfq; popq %0" : "=r"(f));
	return f;
}
static inline uint64_t read_cr2(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}
static inline uint16_t read_cs(void)
{
	uint16_t v;
	__asm__ volatile("mov %%cs, %0" : "=r"(v));
	return v;
}
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

/* Busy-wait for about n pause iterations. Not calibrated: the platform
 * gives no timer we may rely on, and KVM delivers INIT/SIPI without the
 * delays real hardware needs. */
void spin_delay(uint64_t n);

/* ---- serial console (COM1, polled) ---- */
void serial_init(void);
void serial_putc(char c);
void puts(const char *s); /* no newline added */
void put_hex(uint64_t v);
int vprintf(const char *fmt, va_list ap);
/* %c %s %d %i %u %x %p %%, flags '0', width, length l/ll/z. */
int printf(const char *fmt, ...) PRINTF(1, 2);
int snprintf(char *buf, size_t len, const char *fmt, ...) PRINTF(3, 4);

/* ---- leaving the VM ---- */
/* ACPI S5 through PM1a_CNT. If the write has no effect the guest says so
 * on the console and halts (the test then times out). */
void poweroff(void) NORETURN;
void i8042_reset(void) NORETURN;
void acpi_reset(void) NORETURN;
void halt_forever(void) NORETURN;

/* ---- local APIC (xAPIC MMIO) ---- */
#define LAPIC_ID 0x20
#define LAPIC_VER 0x30
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_INIT 0x500
#define ICR_STARTUP 0x600
#define ICR_DELIVERY_PENDING (1 << 12)
#define ICR_LEVEL_ASSERT (1 << 14)
#define ICR_TRIGGER_LEVEL (1 << 15)
static inline uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_BASE + reg); }
static inline void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }
static inline uint32_t lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }
/* Send an IPI (ICR low word lo) to APIC id dest and wait, bounded, for the
 * delivery status to go idle. 0 or -1 if it stayed pending. */
int lapic_send_ipi(uint32_t dest, uint32_t lo);
/* IOAPIC register reg through IOREGSEL (offset 0) and IOWIN (0x10). */
static inline void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE, reg);
	mmio_write32(IOAPIC_BASE + 0x10, v);
}
static inline uint32_t ioapic_read(uint32_t reg)
{
	mmio_write32(IOAPIC_BASE, reg);
	return mmio_read32(IOAPIC_BASE + 0x10);
}

/* ---- PVH boot information (xen/include/public/arch-x86/hvm/start_info.h) ---- */
#define HVM_START_MAGIC 0x336ec578
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	/* version >= 1 */
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
#define HVM_MEMMAP_RAM 1
struct hvm_memmap_table_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

/* What crt0 found at the 32-bit entry point. */
extern uint32_t boot_entry_ebx, boot_entry_esp, boot_entry_cr0, boot_entry_cr4;
extern uint32_t boot_entry_eflags, boot_entry_cs, boot_entry_ds;

/* The start info EBX pointed to, or NULL if EBX was 0 or the magic is wrong. */
const struct hvm_start_info *start_info(void);
/* The command line ("" if none), truncated at CMDLINE_MAX bytes. */
#define CMDLINE_MAX 4096
const char *cmdline(void);
/* The value of the first "key=" word at or after p in a command line (p
 * on a word or a space), or NULL if there is none. */
const char *cmdline_next(const char *p, const char *key);
/* A number at p, decimal or 0x hex, into *v; returns where it ends. */
const char *parse_u64(const char *p, uint64_t *v);
/* Value of "key=N" (decimal or 0x hex) on the command line, or def. */
uint64_t cmdline_u64(const char *key, uint64_t def);

/* ---- traps ---- */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};
typedef void (*trap_fn)(struct trap_frame *f);
/* Run fn for vector vec instead of the default (which prints vector, name,
 * error code, RIP, CS, RFLAGS, RSP, CR2 and powers off). A handler that
 * returns resumes the interrupted code with the (possibly edited) frame. */
void trap_set_handler(unsigned int vec, trap_fn fn);
/* Point IDT entry vec at its stub: present interrupt gate, given DPL. */
void idt_set_gate(unsigned int vec, unsigned int dpl);
void trap_default(struct trap_frame *f) NORETURN;
const char *trap_name(unsigned int vec);

/* Fill the GDT's TSS descriptor (RSP0 = rsp0, no I/O bitmap) and ltr. */
void tss_install(uint64_t rsp0);

/* setjmp/longjmp for ring 0 (crt0.S). kjmp_go() may be called from a trap
 * handler: the trap frame is abandoned. */
struct kjmp {
	uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
};
int kjmp_set(struct kjmp *j) __attribute__((returns_twice));
void kjmp_go(struct kjmp *j, int val) NORETURN;

/* ---- freestanding libc bits (gcc may emit calls to these) ---- */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

int main(void);
/* Called on each AP that crt0 brings to long mode (smp guest). */
void ap_main(void);

#endif
