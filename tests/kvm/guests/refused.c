/* refused - instructions the PVM host refuses to run (they reach the
 * monitor as KVM_EXIT_INTERNAL_ERROR and the monitor must finish them the
 * way the CPU would). Asserts only the architectural outcome, so it also
 * holds on VT-x/SVM where the CPU does it all:
 *   int3: #BP handler runs once, saved RIP = the byte after the 0xcc,
 *         saved CS = kernel code, registers preserved, execution resumes;
 *   stac/clac: RFLAGS.AC set after stac, clear after clac, no other flag
 *         changes (skipped, not failed, when CPUID.(EAX=7,ECX=0):EBX.SMAP
 *         [bit 20] is 0, since both are then #UD);
 *   ud2: #UD handler runs once with saved RIP = the ud2, advances RIP by 2,
 *         execution resumes after it with registers preserved;
 *   fwait: a no-op with no x87 exception pending; #NM (saved RIP = the
 *         fwait) when CR0.MP and CR0.TS are both set.
 * Expect: "refused: int3 ok", "refused: stac/clac ok" (or "... skip ..."),
 *   ldmxcsr/stmxcsr: the default MXCSR round-trips through memory (with a
 *         SIB and a displacement operand), a reserved bit raises #GP.
 * "refused: ud2 ok", "refused: fwait ok", "refused: mxcsr ok", then
 * "refused: ok"; status 0. */
#include "lib.h"

#define SENTINEL 0x1122334455667788ull
#define CPUID7_EBX_SMAP (1u << 20)

static volatile uint64_t bp_count, bp_rip, bp_cs;
static volatile uint64_t ud_count, ud_rip;
static volatile uint64_t nm_count, nm_rip;
static int failures;

static void on_bp(struct trap_frame *f)
{
	bp_count++;
	bp_rip = f->rip;
	bp_cs = f->cs;
}

static void on_ud(struct trap_frame *f)
{
	const uint8_t *insn = (const uint8_t *)f->rip;
	ud_count++;
	ud_rip = f->rip;
	if (insn[0] != 0x0f || insn[1] != 0x0b) {
		/* Not our ud2: resuming would loop on the same #UD. */
		printf("refused: unexpected #UD at rip=0x%lx\n", (unsigned long)f->rip);
		trap_default(f);
	}
	f->rip += 2;
}

static void on_nm(struct trap_frame *f)
{
	uint64_t cr0;

	nm_count++;
	nm_rip = f->rip;
	/* Clear TS so that the fwait can complete when the handler returns. */
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0 & ~8ull));
}

static volatile uint64_t gp_count;

static void on_gp(struct trap_frame *f)
{
	const uint8_t *insn = (const uint8_t *)f->rip;

	gp_count++;
	/* Skip the faulting ldmxcsr (0f ae /2 with the [rsp+disp8] SIB form). */
	if (insn[0] == 0x0f && insn[1] == 0xae)
		f->rip += 5;
	else
		trap_default(f);
}

static void result(const char *what, const char *why)
{
	if (why) {
		printf("refused: %s FAIL: %s\n", what, why);
		failures++;
	} else {
		printf("refused: %s ok\n", what);
	}
}

static void test_int3(void)
{
	uint64_t after, r12;
	__asm__ volatile("movabsq %2, %%r12\n\t"
			 "leaq 1f(%%rip), %0\n\t"
			 "int3\n"
			 "1:\tmovq %%r12, %1"
			 : "=&r"(after), "=r"(r12)
			 : "i"(SENTINEL)
			 : "r12", "memory");
	if (*(const uint8_t *)(after - 1) != 0xcc)
		result("int3", "test bug: int3 is not the one-byte 0xcc");
	else if (bp_count != 1)
		result("int3",
		       bp_count ? "#BP handler ran more than once" : "#BP handler did not run");
	else if (bp_rip != after) {
		printf("refused: int3 saved rip=0x%lx, want 0x%lx (after the int3)\n",
		       (unsigned long)bp_rip, (unsigned long)after);
		result("int3", "wrong saved RIP");
	} else if (bp_cs != SEL_CODE64)
		result("int3", "wrong saved CS");
	else if (r12 != SENTINEL)
		result("int3", "r12 not preserved");
	else
		result("int3", NULL);
}

static void test_stac_clac(void)
{
	uint32_t a, b, c, d;
	cpuid(0, 0, &a, &b, &c, &d);
	uint32_t max_leaf = a;
	if (max_leaf < 7) {
		puts("refused: stac/clac skip (CPUID leaf 7 absent)\n");
		return;
	}
	cpuid(7, 0, &a, &b, &c, &d);
	if (!(b & CPUID7_EBX_SMAP)) {
		puts("refused: stac/clac skip (no SMAP in CPUID.7.EBX)\n");
		return;
	}
	uint64_t f[5];
	__asm__ volatile("pushfq; popq %0\n\t"
			 "stac\n\tpushfq; popq %1\n\t"
			 "stac\n\tpushfq; popq %2\n\t"
			 "clac\n\tpushfq; popq %3\n\t"
			 "clac\n\tpushfq; popq %4"
			 : "=r"(f[0]), "=r"(f[1]), "=r"(f[2]), "=r"(f[3]), "=r"(f[4])
			 :
			 : "memory");
	bool want_ac[5] = { f[0] & RFLAGS_AC, true, true, false, false };
	for (int i = 1; i < 5; i++) {
		if (!!(f[i] & RFLAGS_AC) != want_ac[i] || ((f[i] ^ f[0]) & ~RFLAGS_AC)) {
			printf("refused: rflags 0x%lx -> stac 0x%lx stac 0x%lx clac 0x%lx clac "
			       "0x%lx\n",
			       (unsigned long)f[0], (unsigned long)f[1], (unsigned long)f[2],
			       (unsigned long)f[3], (unsigned long)f[4]);
			result("stac/clac", "RFLAGS.AC not set by stac / cleared by clac, or other "
					    "flags changed");
			return;
		}
	}
	if (ud_count)
		result("stac/clac", "#UD raised");
	else
		result("stac/clac", NULL);
}

static void test_ud2(void)
{
	uint64_t at, r12;
	uint64_t before = ud_count;
	__asm__ volatile("movabsq %2, %%r12\n\t"
			 "leaq 1f(%%rip), %0\n"
			 "1:\tud2\n\t"
			 "movq %%r12, %1"
			 : "=&r"(at), "=r"(r12)
			 : "i"(SENTINEL)
			 : "r12", "memory");
	if (ud_count - before != 1)
		result("ud2", ud_count == before ? "#UD handler did not run"
						 : "#UD handler ran more than once");
	else if (ud_rip != at)
		result("ud2", "saved RIP is not the ud2");
	else if (r12 != SENTINEL)
		result("ud2", "r12 not preserved");
	else
		result("ud2", NULL);
}

/* Fences, also with a REX prefix (REX.R extends ModRM.reg, which for
 * 0f ae /5-/7 is ignored: 44 0f ae e8 is an lfence). The guest must run on
 * past every one of them. */
static void test_fences(void)
{
	uint64_t r12;

	__asm__ volatile("movabsq %1, %%r12\n\t"
			 "lfence\n\tmfence\n\tsfence\n\t"
			 ".byte 0x44, 0x0f, 0xae, 0xe8\n\t" /* rex.R lfence */
			 ".byte 0x44, 0x0f, 0xae, 0xf8\n\t" /* rex.R sfence */
			 "movq %%r12, %0"
			 : "=r"(r12)
			 : "i"(SENTINEL)
			 : "r12", "memory");
	result("fences", r12 == SENTINEL ? NULL : "r12 not preserved");
}

static void test_fwait(void)
{
	uint64_t at, cr0;

	__asm__ volatile("fninit\n\tfwait" ::: "memory");
	if (nm_count) {
		result("fwait", "#NM with CR0.TS clear");
		return;
	}
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0 | 0xaull)); /* MP | TS */
	__asm__ volatile("leaq 1f(%%rip), %0\n"
			 "1:\tfwait"
			 : "=&r"(at)
			 :
			 : "memory");
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr0));
	if (nm_count != 1)
		result("fwait",
		       nm_count ? "#NM ran more than once" : "no #NM with CR0.MP and TS set");
	else if (nm_rip != at)
		result("fwait", "#NM saved RIP is not the fwait");
	else
		result("fwait", NULL);
}

/* Loads the default MXCSR with the [rsp+disp8] SIB form Linux's
 * kernel_fpu_begin uses, and reads it back. (A host that gives the
 * monitor no access to FPU state can only complete loads of the default;
 * other values and fxsave are not tested for that reason.) */
static void test_mxcsr(void)
{
	uint32_t in[2] = { 0, 0x1f80 }, out[2] = { 0, 0 }, bad[2] = { 0, 0x10000 };

	__asm__ volatile("ldmxcsr 4(%0)\n\tstmxcsr 4(%1)" : : "r"(in), "r"(out) : "memory");
	if (out[1] != in[1]) {
		printf("refused: mxcsr stored 0x%x, loaded 0x%x\n", out[1], in[1]);
		result("mxcsr", "stmxcsr did not return what ldmxcsr loaded");
		return;
	}
	__asm__ volatile("ldmxcsr 4(%0)" : : "r"(bad) : "memory");
	if (gp_count != 1)
		result("mxcsr", "no #GP for a reserved MXCSR bit");
	else
		result("mxcsr", NULL);
}

int main(void)
{
	trap_set_handler(3, on_bp);
	trap_set_handler(6, on_ud);
	trap_set_handler(7, on_nm);
	trap_set_handler(13, on_gp);
	test_int3();
	test_stac_clac();
	test_ud2();
	test_fences();
	test_fwait();
	test_mxcsr();
	if (!failures)
		puts("refused: ok\n");
	poweroff();
}
