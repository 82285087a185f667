/* test_x86_emulate.c - the completions of instructions an emulating host
 * (PVM) refuses (src/kvm/x86/emulate.c), on any host: a real KVM vCPU holds
 * the registers, but it never runs; the refused instruction's bytes come
 * from kvm_run as that host's KVM hands them over, and what the emulator
 * did is read back from the vCPU (registers, the pending exception).
 * Without /dev/kvm every test is skipped. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/kvm.h"
#include "cvisor/vm.h"
#include "cvisor/x86.h"

#define AC (1ULL << 18)

struct t {
	struct vm *vm;
	struct vcpu *vcpu;
	int kvm, vmfd;
};

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	int size;

	*state = t;
	t->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (t->kvm < 0)
		return 0;
	t->vmfd = ioctl(t->kvm, KVM_CREATE_VM, 0);
	assert_true(t->vmfd >= 0);
	t->vm = calloc(1, sizeof(*t->vm));
	t->vcpu = &t->vm->vcpus[0];
	t->vcpu->vm = t->vm;
	t->vcpu->fd = ioctl(t->vmfd, KVM_CREATE_VCPU, 0);
	assert_true(t->vcpu->fd >= 0);
	size = ioctl(t->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	t->vcpu->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, t->vcpu->fd, 0);
	assert_true(t->vcpu->run != MAP_FAILED);
	t->vm->run_size = size;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	if (t->vm) {
		munmap(t->vcpu->run, (size_t)t->vm->run_size);
		close(t->vcpu->fd);
		close(t->vmfd);
		free(t->vm);
	}
	if (t->kvm >= 0)
		close(t->kvm);
	free(t);
	return 0;
}

/* A 64-bit vCPU at CPL cpl, RIP 0x1000, RFLAGS rflags, no exception
 * pending, with the refused instruction's bytes in kvm_run. */
static struct t *prepare(void **state, unsigned int cpl, uint64_t rflags, const uint8_t *insn,
			 size_t n)
{
	struct t *t = *state;
	struct kvm_sregs s;
	struct kvm_regs r = { .rip = 0x1000, .rflags = rflags | 2 };
	struct kvm_vcpu_events ev;
	struct kvm_run *run;

	if (t->kvm < 0)
		skip();
	assert_int_equal(ioctl(t->vcpu->fd, KVM_GET_SREGS, &s), 0);
	s.cr0 |= 0x80000001; /* PG, PE */
	s.cr4 |= 0x20;	     /* PAE */
	s.efer |= 0x500;     /* LME, LMA */
	s.cs.l = 1;
	s.cs.db = 0;
	s.cs.dpl = (uint8_t)cpl;
	s.ss.dpl = (uint8_t)cpl;
	s.cs.selector = (uint16_t)(0x10 | cpl);
	s.ss.selector = (uint16_t)(0x18 | cpl);
	assert_int_equal(ioctl(t->vcpu->fd, KVM_SET_SREGS, &s), 0);
	assert_int_equal(ioctl(t->vcpu->fd, KVM_SET_REGS, &r), 0);
	assert_int_equal(ioctl(t->vcpu->fd, KVM_GET_VCPU_EVENTS, &ev), 0);
	ev.exception.injected = 0;
	ev.exception.pending = 0;
	ev.flags = 0;
	assert_int_equal(ioctl(t->vcpu->fd, KVM_SET_VCPU_EVENTS, &ev), 0);
	run = t->vcpu->run;
	memset(&run->emulation_failure, 0, sizeof(run->emulation_failure));
	run->emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run->emulation_failure.ndata = 3;
	run->emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
	run->emulation_failure.insn_size = (uint8_t)n;
	memcpy(run->emulation_failure.insn_bytes, insn, n);
	return t;
}

static struct kvm_regs regs_of(struct t *t)
{
	struct kvm_regs r;

	assert_int_equal(ioctl(t->vcpu->fd, KVM_GET_REGS, &r), 0);
	return r;
}

/* The exception the emulator left for the vCPU's next entry, or -1. */
static int exception_of(struct t *t)
{
	struct kvm_vcpu_events ev;

	assert_int_equal(ioctl(t->vcpu->fd, KVM_GET_VCPU_EVENTS, &ev), 0);
	return ev.exception.injected || ev.exception.pending ? ev.exception.nr : -1;
}

static enum x86_emul_result emulate(struct t *t, char *msg, size_t len)
{
	msg[0] = 0;
	return x86_emulate_refused(t->vcpu, msg, len);
}

/* STAC and CLAC at CPL 0: RFLAGS.AC set or cleared, RIP past the 3 bytes,
 * the rest of RFLAGS kept. */
static void test_stac_clac(void **state)
{
	static const uint8_t stac[] = { 0x0f, 0x01, 0xcb }, clac[] = { 0x0f, 0x01, 0xca };
	struct t *t = prepare(state, 0, 0x200 | 0x40, stac, 3);
	char msg[256];

	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_DONE);
	assert_int_equal(regs_of(t).rip, 0x1003);
	assert_int_equal(regs_of(t).rflags, 0x200 | 0x40 | AC | 2);
	assert_int_equal(exception_of(t), -1);

	t = prepare(state, 0, 0x200 | AC, clac, 3);
	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_DONE);
	assert_int_equal(regs_of(t).rip, 0x1003);
	assert_int_equal(regs_of(t).rflags, 0x200 | 2);
	assert_int_equal(exception_of(t), -1);
}

/* SDM: STAC and CLAC raise #UD outside ring 0; RIP stays, AC unchanged. */
static void test_stac_clac_user(void **state)
{
	static const uint8_t stac[] = { 0x0f, 0x01, 0xcb }, clac[] = { 0x0f, 0x01, 0xca };
	char msg[256];
	struct t *t = prepare(state, 3, 0x200, stac, 3);

	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_DONE);
	assert_int_equal(regs_of(t).rip, 0x1000);
	assert_int_equal(regs_of(t).rflags & AC, 0);
	assert_int_equal(exception_of(t), 6);

	t = prepare(state, 3, 0x200 | AC, clac, 3);
	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_DONE);
	assert_int_equal(regs_of(t).rflags & AC, AC);
	assert_int_equal(exception_of(t), 6);
}

/* int3 is a trap (#BP after it), ud2 a fault (#UD on it). KVM does not
 * report a soft exception (#BP) in KVM_GET_VCPU_EVENTS, so only int3's RIP
 * is seen here; tests/kvm's guests see the #BP itself. */
static void test_int3_ud2(void **state)
{
	static const uint8_t int3[] = { 0xcc }, ud2[] = { 0x0f, 0x0b };
	char msg[256];
	struct t *t = prepare(state, 0, 0, int3, 1);

	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_DONE);
	assert_int_equal(regs_of(t).rip, 0x1001);
	t = prepare(state, 0, 0, ud2, 2);
	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_DONE);
	assert_int_equal(regs_of(t).rip, 0x1000);
	assert_int_equal(exception_of(t), 6);
}

/* Fences complete as no-ops (RIP past them); an instruction the emulator
 * does not know fails with its bytes and RIP in the message, untouched. */
static void test_fence_and_unknown(void **state)
{
	static const uint8_t lfence[] = { 0x0f, 0xae, 0xe8 }, hlt_like[] = { 0x0f, 0x05 };
	char msg[256];
	struct t *t = prepare(state, 0, 0, lfence, 3);

	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_DONE);
	assert_int_equal(regs_of(t).rip, 0x1003);
	assert_int_equal(exception_of(t), -1);
	t = prepare(state, 0, 0, hlt_like, 2);
	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_FAILED);
	assert_non_null(strstr(msg, "refused instruction 0f 05 at RIP 0x1000 (CPL 0)"));
	assert_null(strstr(msg, "cvisor host"));
	assert_int_equal(regs_of(t).rip, 0x1000);
}

/* An XSAVE-family instruction (xrstor64 [rdi], as an XSAVE-enabled Linux
 * runs at boot) fails with a line that names the way out: the kernel
 * options `cvisor host` prints. */
static void test_xsave_hint(void **state)
{
	static const uint8_t xrstor[] = { 0x48, 0x0f, 0xae, 0x2f }, xsetbv[] = { 0x0f, 0x01, 0xd1 };
	static const uint8_t xrstors[] = { 0x48, 0x0f, 0xc7, 0x1f }; /* xrstors64 [rdi] */
	static const uint8_t clwb[] = { 0x66, 0x0f, 0xae, 0x37 };    /* clwb [rdi]: not XSAVE */
	char msg[256];						     /* handle_internal's */
	struct t *t = prepare(state, 0, 0, xrstor, 4);

	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_FAILED);
	assert_non_null(
		strstr(msg, "refused instruction 48 0f ae 2f at RIP 0x1000 (CPL 0): XSAVE"));
	assert_non_null(strstr(msg, "`cvisor host` prints"));
	t = prepare(state, 0, 0, xsetbv, 3);
	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_FAILED);
	assert_non_null(strstr(msg, "`cvisor host` prints"));
	t = prepare(state, 0, 0, xrstors, 4);
	assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_FAILED);
	assert_non_null(strstr(msg, "`cvisor host` prints"));
	t = prepare(state, 0, 0, clwb, 4);
	msg[0] = '\0';
	(void)emulate(t, msg, sizeof(msg));
	assert_null(strstr(msg, "`cvisor host`"));
}

/* SDM: a memory operand that is not canonical is #GP(0): stmxcsr [rax]
 * with rax just past the lower half, and one whose last byte wraps. */
static void test_noncanonical_operand(void **state)
{
	static const uint8_t stmxcsr[] = { 0x0f, 0xae, 0x18 }; /* stmxcsr [rax] */
	static const uint64_t bad[] = { 0x0000800000000000ULL, 0xfffffffffffffffeULL };
	char msg[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct t *t = prepare(state, 0, 0, stmxcsr, 3);
		struct kvm_regs r = regs_of(t);

		r.rax = bad[i];
		assert_int_equal(ioctl(t->vcpu->fd, KVM_SET_REGS, &r), 0);
		assert_int_equal(emulate(t, msg, sizeof(msg)), X86_EMUL_DONE);
		assert_int_equal(regs_of(t).rip, 0x1000);
		assert_int_equal(exception_of(t), 13);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stac_clac, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stac_clac_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_int3_ud2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_and_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xsave_hint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_noncanonical_operand, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
