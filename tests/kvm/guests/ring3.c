/* ring3 - system calls from ring 3, and the syscall shim an emulating host
 * needs for them (src/kvm/x86/syscall_shim.c). Sets EFER.SCE and NXE,
 * STAR, LSTAR and SFMASK as Linux does, a TSS with RSP0 and an IDT gate
 * with DPL 3 for vector 0x80, then prints one line per check:
 *
 *   "ring3: lstar readback ok"        RDMSR LSTAR gives what WRMSR wrote
 *   "ring3: lstar noncanonical #GP"   WRMSR of a non-canonical LSTAR faults
 *   "ring3: slot509 0x<entry>"        top-level entry 509 after the LSTAR
 *                                     write (the shim's, or 0 without it)
 *   "ring3: syscall ok N"             N syscalls from ring 3 reached the
 *                                     LSTAR handler at CPL 0 (a privileged
 *                                     probe works) with RCX, R11, SFMASK
 *                                     and RAX right, and sysretq came back
 *   "ring3: syscall -> <what>"        an exception instead
 *   "ring3: int80 ok" / "-> <what>"   the same for int $0x80 (DPL-3 gate)
 *   "ring3: shimjump -> #UD ..."      ring-3 code that jumps into the shim
 *                                     page (IF set) gets #UD, not the kernel
 *   "ring3: tamper -> <what>"         with the shim's code page zeroed by the
 *                                     guest, a syscall faults in the guest
 *                                     and the monitor carries on
 *   "ring3: tamper rearmed ok 100"    writing LSTAR again restores the shim
 *   "ring3: ... BAD <what>"           wrong architectural state
 *   "ring3: done"
 * then powers off. `ring3.calls=N` (default 100) sets the syscall count;
 * `ring3.bare=1` makes the handler a lone sysretq and skips the checks (the
 * bare trap round trip of bench/syscall.sh). */
#include "lib.h"

#define MSR_EFER 0xc0000080
#define EFER_SCE (1ull << 0)
#define EFER_NXE (1ull << 11)
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_SFMASK 0xc0000084
#define SFMASK_BITS (RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_NT | RFLAGS_AC)
#define USER_RFLAGS 0x2ull /* IF=0: nothing may interrupt the test */
#define INT80_MAGIC 0x80
#define SYSCALL_MAGIC 0x5c
#define SHIM_VA 0xfffffe8000000000ull
#define SHIM_STORE_LEN 7
#define SHIM_CODE_GPA 0x9e000ull /* identity-mapped here (syscall_shim.h) */

/* Ring-3 code, the syscall entries and their data (kept in asm so the
 * addresses of the instructions under test are known). */
__asm__(".text\n"
	".globl user_syscall_test, user_syscall_ret, user_int80_test, user_int80_ret\n"
	"user_syscall_test:\n"
	"	movw %cs, user_cs(%rip)\n"
	"	movq user_calls(%rip), %r12\n"
	"	testq %r12, %r12\n"
	"	jz 2f\n"
	"1:	movl $" "0x5c" ", %eax\n"
	"user_syscall_insn:\n"
	"	syscall\n"
	"user_syscall_ret:\n"
	"	decq %r12\n"
	"	jnz 1b\n"
	"2:	movl $1, user_returned(%rip)\n"
	"	ud2\n"
	"user_int80_test:\n"
	"	movw %cs, user_cs(%rip)\n"
	"	movl $" "0x80" ", %eax\n"
	"user_int80_insn:\n"
	"	int $0x80\n"
	"user_int80_ret:\n"
	"	movl $1, user_returned(%rip)\n"
	"	ud2\n"
	".globl syscall_entry, syscall_bare\n"
	"syscall_bare:\n"
	"	sysretq\n"
	"syscall_entry:\n"
	"	movq %rsp, syscall_user_rsp(%rip)\n"
	"	leaq syscall_stack_top(%rip), %rsp\n"
	"	pushq %rcx\n"
	"	pushq %r11\n"
	"	movq %rcx, %rdi\n"
	"	movq %r11, %rsi\n"
	"	movq %rax, %rdx\n"
	"	call ring3_on_syscall\n"
	"	popq %r11\n"
	"	popq %rcx\n"
	"	movq syscall_user_rsp(%rip), %rsp\n"
	"	sysretq\n"
	".bss\n"
	".p2align 4\n"
	"	.skip 8192\n"
	"syscall_stack_top:\n"
	"syscall_user_rsp: .quad 0\n"
	".globl user_cs, user_returned, user_calls\n"
	"user_cs: .quad 0\n"
	"user_calls: .quad 0\n"
	"user_returned: .long 0\n"
	".text\n");

extern char user_syscall_test[], user_syscall_ret[], user_int80_test[], user_int80_ret[];
extern char syscall_entry[], syscall_bare[];
extern volatile uint64_t user_cs, user_calls;
extern volatile uint32_t user_returned;
extern uint64_t pml4[];
void ring3_on_syscall(uint64_t rcx, uint64_t r11, uint64_t rax);

enum phase { PH_NONE, PH_SYSCALL, PH_INT80, PH_SHIMJUMP, PH_WRMSR };
static const char *const phase_name[] = { "none", "syscall", "int80", "shimjump", "wrmsr" };

static struct kjmp back_to_ring0;
static volatile enum phase phase;
/* What happened in the current case. */
static volatile uint64_t hits;	 /* the syscall/int80 handler ran */
static char bad[160];		 /* handler found wrong state: why */
static volatile bool in_handler; /* a fault now is a fault in ring 0 */
static volatile bool faulted;
static volatile bool priv_faulted; /* the handler's privileged probe faulted */
static struct trap_frame priv_fault;
static struct trap_frame fault;
static uint64_t fault_cr2;

static uint8_t user_stack[4096] __attribute__((aligned(16)));
static uint8_t rsp0_stack[8192] __attribute__((aligned(16)));
#define USER_STACK_TOP ((uint64_t)(uintptr_t)(user_stack + sizeof(user_stack)))

/* The handlers must run at CPL 0: a privileged instruction works there.
 * No printing in the handlers: I/O would fault too if CPL were 3. */
static void probe_cpl0(void)
{
	uint64_t cr0;

	in_handler = true;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0) : : "memory");
	in_handler = false;
	if (!(cr0 & 0x80000000u) && !bad[0])
		snprintf(bad, sizeof(bad), "cr0=0x%lx in the handler", (unsigned long)cr0);
}

void ring3_on_syscall(uint64_t rcx, uint64_t r11, uint64_t rax)
{
	uint64_t fl = read_rflags();

	if (phase != PH_SYSCALL) {
		printf("ring3: unexpected syscall from rip=0x%lx\n", (unsigned long)rcx);
		poweroff();
	}
	hits++;
	if (bad[0])
		return;
	if (rcx != (uintptr_t)user_syscall_ret)
		snprintf(bad, sizeof(bad), "rcx=0x%lx, want 0x%lx", (unsigned long)rcx,
			 (unsigned long)(uintptr_t)user_syscall_ret);
	/* RF and the arithmetic flags may read either way; an emulating host
	 * runs ring 3 with IF set whatever IRET loaded. */
	else if ((r11 & ~(0x10000ull | 0x8d5ull | RFLAGS_IF)) != USER_RFLAGS)
		snprintf(bad, sizeof(bad), "r11=0x%lx, want user rflags 0x%lx", (unsigned long)r11,
			 (unsigned long)USER_RFLAGS);
	else if (fl & SFMASK_BITS)
		snprintf(bad, sizeof(bad), "rflags=0x%lx in handler: SFMASK not applied",
			 (unsigned long)fl);
	else if ((uint32_t)rax != SYSCALL_MAGIC)
		snprintf(bad, sizeof(bad), "rax=0x%lx", (unsigned long)rax);
	probe_cpl0();
}

static void on_trap(struct trap_frame *f)
{
	if (phase == PH_NONE)
		trap_default(f);
	if (in_handler) {
		in_handler = false;
		priv_faulted = true;
		priv_fault = *f;
		kjmp_go(&back_to_ring0, 1);
	}
	if (f->vector == 0x80 && phase == PH_INT80 && !hits) {
		hits++;
		if (f->cs != SEL_UCODE64 || f->ss != SEL_UDATA)
			snprintf(bad, sizeof(bad), "saved cs=0x%lx ss=0x%lx", (unsigned long)f->cs,
				 (unsigned long)f->ss);
		else if (f->rip != (uintptr_t)user_int80_ret)
			snprintf(bad, sizeof(bad), "saved rip=0x%lx, want 0x%lx",
				 (unsigned long)f->rip, (unsigned long)(uintptr_t)user_int80_ret);
		else if (f->rsp != USER_STACK_TOP)
			snprintf(bad, sizeof(bad), "saved rsp=0x%lx, want 0x%lx",
				 (unsigned long)f->rsp, (unsigned long)USER_STACK_TOP);
		else if ((uint32_t)f->rax != INT80_MAGIC)
			snprintf(bad, sizeof(bad), "rax=0x%lx", (unsigned long)f->rax);
		probe_cpl0();
		return; /* iretq to ring 3 */
	}
	if (!user_returned) {
		faulted = true;
		fault = *f;
		fault_cr2 = read_cr2();
	}
	kjmp_go(&back_to_ring0, 1);
}

static void NORETURN enter_user(const void *rip, uint64_t rflags)
{
	__asm__ volatile("pushq %[ss]\n\t"
			 "pushq %[rsp]\n\t"
			 "pushq %[fl]\n\t"
			 "pushq %[cs]\n\t"
			 "pushq %[rip]\n\t"
			 "iretq"
			 :
			 : [ss] "i"(SEL_UDATA), [rsp] "r"(USER_STACK_TOP), [fl] "r"(rflags),
			   [cs] "i"(SEL_UCODE64), [rip] "r"(rip)
			 : "memory");
	__builtin_unreachable();
}

static void print_fault(const char *name, const char *insn_addr)
{
	const char *where = fault.rip == (uintptr_t)insn_addr ? "the instruction"
			    : (fault.cs & 3) == 0		   ? "ring 0"
								   : "elsewhere in ring 3";

	printf("ring3: %s %s-> %s (vector %lu) err=0x%lx rip=0x%lx (%s) cs=0x%lx cr2=0x%lx\n",
	       name, hits ? "handler ran, then " : "", trap_name((unsigned int)fault.vector),
	       (unsigned long)fault.vector, (unsigned long)fault.error, (unsigned long)fault.rip,
	       where, (unsigned long)fault.cs, (unsigned long)fault_cr2);
}

static void report(enum phase p, const char *insn_addr, uint64_t want_hits)
{
	const char *name = phase_name[p];

	if ((user_cs & 3) != 3)
		printf("ring3: %s BAD never ran in ring 3 (cs=0x%lx)\n", name,
		       (unsigned long)user_cs);
	else if (priv_faulted)
		/* Control reached the handler, but not ring 0. */
		printf("ring3: %s -> handler entered without ring 0 privilege: mov from cr0 "
		       "raised %s err=0x%lx rip=0x%lx saved cs=0x%lx\n",
		       name, trap_name((unsigned int)priv_fault.vector),
		       (unsigned long)priv_fault.error, (unsigned long)priv_fault.rip,
		       (unsigned long)priv_fault.cs);
	else if (hits && bad[0])
		printf("ring3: %s BAD reached the handler but %s\n", name, bad);
	else if (user_returned && hits == want_hits)
		printf("ring3: %s ok %lu\n", name, (unsigned long)hits);
	else if (faulted)
		print_fault(name, insn_addr);
	else
		printf("ring3: %s BAD %lu of %lu calls, no outcome\n", name, (unsigned long)hits,
		       (unsigned long)want_hits);
}

static void reset_case(enum phase p)
{
	hits = 0;
	in_handler = false;
	priv_faulted = false;
	faulted = false;
	bad[0] = '\0';
	user_cs = 0;
	user_returned = 0;
	phase = p;
}

static void run_case(enum phase p, const void *user_code, const char *insn_addr, uint64_t want)
{
	reset_case(p);
	if (!kjmp_set(&back_to_ring0))
		enter_user(user_code, USER_RFLAGS);
	phase = PH_NONE;
	report(p, insn_addr, want);
}

/* LSTAR as Linux uses it: RDMSR gives back what WRMSR wrote (whatever KVM
 * holds), and a non-canonical value is #GP(0). */
static void check_lstar(void)
{
	uint64_t v;

	wrmsr(MSR_LSTAR, (uintptr_t)syscall_entry);
	v = rdmsr(MSR_LSTAR);
	if (v == (uintptr_t)syscall_entry)
		puts("ring3: lstar readback ok\n");
	else
		printf("ring3: lstar BAD reads 0x%lx, wrote 0x%lx\n", (unsigned long)v,
		       (unsigned long)(uintptr_t)syscall_entry);
	reset_case(PH_WRMSR);
	if (!kjmp_set(&back_to_ring0))
		wrmsr(MSR_LSTAR, 0x0000800000000000ull);
	phase = PH_NONE;
	if (faulted && fault.vector == 13)
		puts("ring3: lstar noncanonical #GP\n");
	else
		printf("ring3: lstar BAD non-canonical write %s\n",
		       faulted ? trap_name((unsigned int)fault.vector) : "did not fault");
	if (rdmsr(MSR_LSTAR) != (uintptr_t)syscall_entry)
		puts("ring3: lstar BAD changed by the refused write\n");
	printf("ring3: slot509 0x%lx\n", (unsigned long)pml4[509]);
}

/* A process that jumps into the shim page by itself (IF set, as in any
 * user process) must not get into the kernel: #UD just past the store. */
static void check_shimjump(void)
{
	if (!(pml4[509] & 1)) {
		puts("ring3: shimjump skipped (no shim)\n");
		return;
	}
	reset_case(PH_SHIMJUMP);
	if (!kjmp_set(&back_to_ring0)) {
		user_cs = 3; /* the shim page cannot record it */
		enter_user((const void *)SHIM_VA, USER_RFLAGS | RFLAGS_IF);
	}
	phase = PH_NONE;
	if (faulted && fault.vector == 6 && fault.rip == SHIM_VA + SHIM_STORE_LEN &&
	    (fault.cs & 3) == 3)
		printf("ring3: shimjump -> #UD at shim+%d in ring 3\n", SHIM_STORE_LEN);
	else if (faulted)
		print_fault("shimjump BAD", (const char *)SHIM_VA);
	else
		puts("ring3: shimjump BAD no outcome\n");
}

/* A guest kernel that damages the shim only hurts itself: zero its code
 * page, and a syscall faults in the guest (the monitor acts on nothing
 * but the exact store); the next LSTAR write rebuilds the pages. */
static void check_tamper(void)
{
	extern char user_syscall_insn[];

	if (!(pml4[509] & 1)) {
		puts("ring3: tamper skipped (no shim)\n");
		return;
	}
	memset((void *)(uintptr_t)SHIM_CODE_GPA, 0, 4096);
	reset_case(PH_SYSCALL);
	if (!kjmp_set(&back_to_ring0))
		enter_user(user_syscall_test, USER_RFLAGS);
	phase = PH_NONE;
	if (faulted && !hits)
		printf("ring3: tamper -> %s at rip=0x%lx\n", trap_name((unsigned int)fault.vector),
		       (unsigned long)fault.rip);
	else
		printf("ring3: tamper BAD %lu calls reached the kernel, fault %d\n",
		       (unsigned long)hits, faulted);
	wrmsr(MSR_LSTAR, (uintptr_t)syscall_entry);
	reset_case(PH_SYSCALL);
	if (!kjmp_set(&back_to_ring0))
		enter_user(user_syscall_test, USER_RFLAGS);
	phase = PH_NONE;
	if (user_returned && hits == user_calls && !bad[0])
		printf("ring3: tamper rearmed ok %lu\n", (unsigned long)hits);
	else
		print_fault("tamper BAD rearm", user_syscall_insn);
}

int main(void)
{
	extern char user_syscall_insn[], user_int80_insn[];
	bool bare = cmdline_u64("ring3.bare", 0) != 0;

	user_calls = cmdline_u64("ring3.calls", 100);
	tss_install((uint64_t)(uintptr_t)(rsp0_stack + sizeof(rsp0_stack)));
	for (unsigned int v = 0; v < 32; v++)
		trap_set_handler(v, on_trap);
	trap_set_handler(0x80, on_trap);
	idt_set_gate(0x80, 3);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE | EFER_NXE);
	/* STAR[47:32]: syscall CS (SS = +8); STAR[63:48]: sysret base, so
	 * 64-bit CS = base + 16 = 0x28|3 and SS = base + 8 = 0x20|3. */
	wrmsr(MSR_STAR, (uint64_t)SEL_CODE32 << 48 | (uint64_t)SEL_CODE64 << 32);
	wrmsr(MSR_SFMASK, SFMASK_BITS);
	if (bare) {
		wrmsr(MSR_LSTAR, (uintptr_t)syscall_bare);
		reset_case(PH_SYSCALL);
		if (!kjmp_set(&back_to_ring0))
			enter_user(user_syscall_test, USER_RFLAGS);
		phase = PH_NONE;
		printf("ring3: bare %s %lu\n", user_returned ? "ok" : "BAD",
		       (unsigned long)user_calls);
		poweroff();
	}
	check_lstar();
	run_case(PH_SYSCALL, user_syscall_test, user_syscall_insn, user_calls);
	run_case(PH_INT80, user_int80_test, user_int80_insn, 1);
	check_shimjump();
	check_tamper();
	puts("ring3: done\n");
	poweroff();
}
