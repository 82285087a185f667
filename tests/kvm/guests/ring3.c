/* ring3 - can ring 3 make system calls? Enters 64-bit user mode (user
 * segments 0x2b/0x23, TSS with RSP0, EFER.SCE, STAR/LSTAR/SFMASK, an IDT
 * gate with DPL 3 for vector 0x80) and runs, each from a fresh entry to
 * ring 3:
 *   syscall   -> LSTAR handler checks CS, RCX = next RIP, R11 = user
 *                RFLAGS, SFMASK applied; sysretq back to ring 3;
 *   int $0x80 -> the DPL-3 gate's handler checks the saved CS/SS/RIP/RSP;
 *                iretq back to ring 3.
 * The handlers prove they run at CPL 0 by reading CR0 (privileged); on a
 * PVM host `mov %cs` shows host selectors, which is only noted ("ring3:
 * note ..."). Back in ring 3 the user code sets a flag and executes ud2
 * (any exception after the flag ends the case). An exception before that
 * is the outcome.
 * Prints exactly one line per instruction:
 *   "ring3: syscall ok"                     handler at CPL 0, state right,
 *                                           back in ring 3;
 *   "ring3: syscall -> #XX err=E rip=R ..." an exception instead;
 *   "ring3: syscall -> handler entered without ring 0 privilege: ..."
 *                                           control reached LSTAR, but at
 *                                           CPL 3 (privileged probe #GP);
 *   "ring3: syscall BAD <what>"             wrong architectural state;
 * (and the same for "int80"),
 * then "ring3: done". Exceptions outside the two cases print the vector,
 * error code and RIP and power off (runtime default). Status 0. */
#include "lib.h"

#define MSR_EFER 0xc0000080
#define EFER_SCE (1ull << 0)
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_SFMASK 0xc0000084
#define SFMASK_BITS (RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_NT | RFLAGS_AC)
#define USER_RFLAGS 0x2ull   /* IF=0: nothing may interrupt the test */
#define INT80_MAGIC 0x80
#define SYSCALL_MAGIC 0x5c

/* Ring-3 code, the syscall entry and their data (kept in asm so the
 * addresses of the instructions under test are known). */
__asm__(".text\n"
	".globl user_syscall_test, user_syscall_ret, user_int80_test, user_int80_ret\n"
	"user_syscall_test:\n"
	"	movw %cs, user_cs(%rip)\n"
	"	movl $" "0x5c" ", %eax\n"
	"user_syscall_insn:\n"
	"	syscall\n"
	"user_syscall_ret:\n"
	"	movl $1, user_returned(%rip)\n"
	"	ud2\n"
	"user_int80_test:\n"
	"	movw %cs, user_cs(%rip)\n"
	"	movl $" "0x80" ", %eax\n"
	"user_int80_insn:\n"
	"	int $0x80\n"
	"user_int80_ret:\n"
	"	movl $1, user_returned(%rip)\n"
	"	ud2\n"
	".globl syscall_entry\n"
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
	".globl user_cs, user_returned\n"
	"user_cs: .quad 0\n"
	"user_returned: .long 0\n"
	".text\n");

extern char user_syscall_test[], user_syscall_ret[], user_int80_test[], user_int80_ret[];
extern char syscall_entry[];
extern volatile uint64_t user_cs;
extern volatile uint32_t user_returned;
void ring3_on_syscall(uint64_t rcx, uint64_t r11, uint64_t rax);

enum phase { PH_NONE, PH_SYSCALL, PH_INT80 };
static const char *const phase_name[] = {"none", "syscall", "int80"};

static struct kjmp back_to_ring0;
static volatile enum phase phase;
/* What happened in the current case. */
static volatile bool hit;          /* the syscall/int80 handler ran */
static char bad[160];              /* handler found wrong state: why */
static volatile bool in_handler;    /* a fault now is a fault in ring 0 */
static volatile uint64_t handler_cs;
static volatile bool faulted;
static volatile bool priv_faulted;  /* the handler's privileged probe faulted */
static struct trap_frame priv_fault;
static struct trap_frame fault;
static uint64_t fault_cr2;

static uint8_t user_stack[4096] __attribute__((aligned(16)));
static uint8_t rsp0_stack[8192] __attribute__((aligned(16)));
#define USER_STACK_TOP ((uint64_t)(uintptr_t)(user_stack + sizeof(user_stack)))

/* The handlers must run at CPL 0. That shows architecturally in that a
 * privileged instruction works; %cs itself may read as a host selector on
 * PVM. No printing in the handlers: I/O would fault too if CPL were 3. */
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
	if (phase != PH_SYSCALL) {
		printf("ring3: unexpected syscall from rip=0x%lx\n", (unsigned long)rcx);
		poweroff();
	}
	hit = true;
	handler_cs = read_cs();
	uint64_t fl = read_rflags();
	if (rcx != (uintptr_t)user_syscall_ret)
		snprintf(bad, sizeof(bad), "rcx=0x%lx, want 0x%lx", (unsigned long)rcx,
			 (unsigned long)(uintptr_t)user_syscall_ret);
	else if ((r11 & ~0x10000ull) != USER_RFLAGS) /* RF may read either way */
		snprintf(bad, sizeof(bad), "r11=0x%lx, want user rflags 0x%lx", (unsigned long)r11,
			 (unsigned long)USER_RFLAGS);
	else if (fl & SFMASK_BITS)
		snprintf(bad, sizeof(bad), "rflags=0x%lx in handler: SFMASK not applied", (unsigned long)fl);
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
	if (f->vector == 0x80 && phase == PH_INT80 && !hit) {
		hit = true;
		handler_cs = read_cs();
		if (f->cs != SEL_UCODE64 || f->ss != SEL_UDATA)
			snprintf(bad, sizeof(bad), "saved cs=0x%lx ss=0x%lx", (unsigned long)f->cs,
				 (unsigned long)f->ss);
		else if (f->rip != (uintptr_t)user_int80_ret)
			snprintf(bad, sizeof(bad), "saved rip=0x%lx, want 0x%lx", (unsigned long)f->rip,
				 (unsigned long)(uintptr_t)user_int80_ret);
		else if (f->rsp != USER_STACK_TOP)
			snprintf(bad, sizeof(bad), "saved rsp=0x%lx, want 0x%lx", (unsigned long)f->rsp,
				 (unsigned long)USER_STACK_TOP);
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

static void enter_user(const void *rip)
{
	__asm__ volatile("pushq %[ss]\n\t"
			 "pushq %[rsp]\n\t"
			 "pushq %[fl]\n\t"
			 "pushq %[cs]\n\t"
			 "pushq %[rip]\n\t"
			 "iretq"
			 :
			 : [ss] "i"(SEL_UDATA), [rsp] "r"(USER_STACK_TOP), [fl] "i"(USER_RFLAGS),
			   [cs] "i"(SEL_UCODE64), [rip] "r"(rip)
			 : "memory");
	__builtin_unreachable();
}

static void report(enum phase p, const char *insn_addr)
{
	const char *name = phase_name[p];
	/* A PVM host runs user code on the host's own user selectors, and
	 * `mov %cs` cannot be intercepted: only the CPL is architectural
	 * enough to require. */
	if (user_cs && user_cs != SEL_UCODE64 && (user_cs & 3) == 3)
		printf("ring3: note %s: %%cs in ring 3 reads 0x%lx, not 0x%x\n", name, (unsigned long)user_cs,
		       SEL_UCODE64);
	if (hit && handler_cs != SEL_CODE64)
		printf("ring3: note %s: %%cs in the handler reads 0x%lx, not 0x%x\n", name,
		       (unsigned long)handler_cs, SEL_CODE64);
	if ((user_cs & 3) != 3)
		printf("ring3: %s BAD never ran in ring 3 (cs=0x%lx)\n", name, (unsigned long)user_cs);
	else if (priv_faulted)
		/* Control reached the handler, but not ring 0: no usable
		 * system call. A definite outcome, not a test failure. */
		printf("ring3: %s -> handler entered without ring 0 privilege: mov from cr0 raised %s "
		       "err=0x%lx rip=0x%lx saved cs=0x%lx (handler state: %s)\n",
		       name, trap_name((unsigned int)priv_fault.vector), (unsigned long)priv_fault.error,
		       (unsigned long)priv_fault.rip, (unsigned long)priv_fault.cs, bad[0] ? bad : "as expected");
	else if (hit && bad[0])
		printf("ring3: %s BAD reached the handler but %s\n", name, bad);
	else if (hit && user_returned)
		printf("ring3: %s ok\n", name);
	else if (faulted) {
		const char *where = fault.rip == (uintptr_t)insn_addr ? "the instruction"
				    : (fault.cs & 3) == 0 ? "ring 0"
							 : "elsewhere in ring 3";
		printf("ring3: %s %s-> %s (vector %lu) err=0x%lx rip=0x%lx (%s) cs=0x%lx cr2=0x%lx\n", name,
		       hit ? "handler ran, return to ring 3 " : "", trap_name((unsigned int)fault.vector),
		       (unsigned long)fault.vector, (unsigned long)fault.error, (unsigned long)fault.rip,
		       where, (unsigned long)fault.cs, (unsigned long)fault_cr2);
	} else
		printf("ring3: %s BAD no outcome\n", name);
}

static void run_case(enum phase p, const void *user_code, const char *insn_addr)
{
	hit = false;
	handler_cs = 0;
	in_handler = false;
	priv_faulted = false;
	faulted = false;
	bad[0] = '\0';
	user_cs = 0;
	user_returned = 0;
	phase = p;
	if (!kjmp_set(&back_to_ring0))
		enter_user(user_code);
	phase = PH_NONE;
	report(p, insn_addr);
}

int main(void)
{
	extern char user_syscall_insn[], user_int80_insn[];

	tss_install((uint64_t)(uintptr_t)(rsp0_stack + sizeof(rsp0_stack)));
	for (unsigned int v = 0; v < 32; v++)
		trap_set_handler(v, on_trap);
	trap_set_handler(0x80, on_trap);
	idt_set_gate(0x80, 3);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	/* STAR[47:32]: syscall CS (SS = +8); STAR[63:48]: sysret base, so
	 * 64-bit CS = base + 16 = 0x28|3 and SS = base + 8 = 0x20|3. */
	wrmsr(MSR_STAR, (uint64_t)SEL_CODE32 << 48 | (uint64_t)SEL_CODE64 << 32);
	wrmsr(MSR_LSTAR, (uintptr_t)syscall_entry);
	wrmsr(MSR_SFMASK, SFMASK_BITS);

	run_case(PH_SYSCALL, user_syscall_test, user_syscall_insn);
	run_case(PH_INT80, user_int80_test, user_int80_insn);
	puts("ring3: done\n");
	poweroff();
}
