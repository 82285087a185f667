/* vcpu.c - one thread per vCPU: KVM_RUN and exit dispatch. */
#include "cvisor/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cvisor/kvm.h"
#include "cvisor/sandbox.h"
#include "cvisor/syscall_shim.h"
#include "cvisor/vm.h"
#include "cvisor/x86.h"

static void kick_handler(int sig)
{
	(void)sig;
}

int vcpu_install_kick_handler(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	/* No SA_RESTART: KVM_RUN must return EINTR. */
	sigemptyset(&sa.sa_mask);
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	uint64_t end = run->io.data_offset + (uint64_t)run->io.count * run->io.size;

	/* String I/O arrives as `count` consecutive elements, inside the run
	 * page KVM shares with us (KVM keeps them there; checked all the same,
	 * as the MMIO length is). */
	if (run->io.size > 8 || end > (uint64_t)vcpu->vm->run_size) {
		cv_warn("vCPU %u: port I/O exit of %u x %u bytes at offset %llu, outside the run "
			"area: ignored",
			vcpu->id, run->io.count, run->io.size,
			(unsigned long long)run->io.data_offset);
		return;
	}
	for (uint32_t i = 0; i < run->io.count; i++)
		bus_access(&vcpu->vm->pio, run->io.port, data + i * run->io.size, run->io.size,
			   out);
}

static void handle_system_event(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(vm, VM_STOP_POWEROFF, NULL);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_reset(vm);
		break;
	default:
		vm_request_stop(vm, VM_STOP_CRASH, "guest reported a crash (system event)");
		break;
	}
}

static void handle_internal(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char msg[256];

	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
		if (x86_emulate_refused(vcpu, msg, sizeof(msg)) == X86_EMUL_DONE)
			return;
		vm_request_stop(vcpu->vm, VM_STOP_INTERNAL, msg);
		return;
	}
	snprintf(msg, sizeof(msg), "vCPU %u: KVM internal error, suberror %u", vcpu->id,
		 run->internal.suberror);
	vm_request_stop(vcpu->vm, VM_STOP_INTERNAL, msg);
}

/* kvm_run.immediate_exit is written by the vCPU and by whoever kicks it
 * (vcpu_kick): atomic stores, read by KVM at the next KVM_RUN. */
static void set_immediate_exit(struct kvm_run *run, uint8_t v)
{
	__atomic_store_n(&run->immediate_exit, v, __ATOMIC_RELAXED);
}

/* Park outside KVM_RUN while the VM is paused. KVM_KVMCLOCK_CTRL tells the
 * guest's watchdogs that the stall was the host's doing. */
static void vcpu_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;

	/* KVM finishes an I/O or MMIO exit (an IN's result, the RIP past it)
	 * only on the next KVM_RUN; with immediate_exit set it does just that
	 * and returns EINTR, so a parked vCPU's state is whole for a snapshot
	 * (KVM API, kvm_run.immediate_exit). */
	set_immediate_exit(vcpu->run, 1);
	if (kvm_ioctl_val(vcpu->fd, KVM_RUN, 0) < 0 && errno != EINTR && errno != EAGAIN)
		cv_debug("vCPU %u: completing I/O before pausing: %s", vcpu->id, strerror(errno));
	set_immediate_exit(vcpu->run, 0);
	pthread_mutex_lock(&vm->lock);
	if (vm->pause_req && !atomic_load(&vm->stop)) {
		if (kvm_ioctl_val(vcpu->fd, KVM_KVMCLOCK_CTRL, 0) < 0)
			cv_debug("vCPU %u: KVM_KVMCLOCK_CTRL: %s", vcpu->id, strerror(errno));
		vm->parked++;
		pthread_cond_broadcast(&vm->pause_cond);
		while (vm->pause_req && !atomic_load(&vm->stop))
			pthread_cond_wait(&vm->pause_cond, &vm->lock);
		vm->parked--;
	}
	pthread_mutex_unlock(&vm->lock);
}

/* How many ring-full exits in a row may find this vCPU's ring already
 * empty. One can (the migration thread harvested it between the exit and
 * our lock); many in a row mean KVM and we disagree about the ring, and
 * the vCPU could never run again: stop instead of spinning. */
#define RING_FULL_EMPTY_MAX 64

/* KVM_EXIT_DIRTY_RING_FULL: KVM will not enter this vCPU again until its
 * ring is reset (api.rst 8.29). Harvest here rather than wait for the
 * migration thread: no page is lost (they go to the tracker) and the
 * guest only stalls for the harvest. False: the VM is stopping. */
static bool handle_ring_full(struct vcpu *vcpu, unsigned int *empty)
{
	char msg[160];
	uint64_t mine;
	int r = dirty_ring_full(&vcpu->vm->dirty_rings, vcpu->id, &mine);

	if (r == -ENOBUFS) {
		snprintf(msg, sizeof(msg),
			 "vCPU %u: KVM overflowed its dirty ring, which cannot be reset now: the "
			 "vCPU cannot run again (use CVISOR_DIRTY=bitmap)",
			 vcpu->id);
		vm_request_stop(vcpu->vm, VM_STOP_INTERNAL, msg);
		return false;
	}
	if (r) {
		snprintf(msg, sizeof(msg), "vCPU %u: KVM_RESET_DIRTY_RINGS: %s", vcpu->id,
			 strerror(-r));
		vm_request_stop(vcpu->vm, VM_STOP_HOST, msg);
		return false;
	}
	*empty = mine ? 0 : *empty + 1;
	if (*empty >= RING_FULL_EMPTY_MAX) {
		snprintf(msg, sizeof(msg), "vCPU %u: dirty ring full, but nothing in it to harvest",
			 vcpu->id);
		vm_request_stop(vcpu->vm, VM_STOP_INTERNAL, msg);
		return false;
	}
	return true;
}

static void vcpu_loop(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	struct kvm_run *run = vcpu->run;
	unsigned int ring_empty = 0;
	char msg[160];

	while (!atomic_load(&vm->stop)) {
		if (vm->pause_req)
			vcpu_park(vcpu);
		if (kvm_ioctl_val(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				set_immediate_exit(run, 0);
				continue;
			}
			snprintf(msg, sizeof(msg), "vCPU %u: KVM_RUN: %s", vcpu->id,
				 strerror(errno));
			vm_request_stop(vm, VM_STOP_HOST, msg);
			return;
		}
		atomic_fetch_add_explicit(&vcpu->exits, 1, memory_order_relaxed);
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(vcpu);
			break;
		case KVM_EXIT_MMIO:
			if (syscall_shim_mmio(vcpu))
				break;
			bus_access(&vm->mmio, run->mmio.phys_addr, run->mmio.data,
				   run->mmio.len > 8 ? 8 : run->mmio.len, run->mmio.is_write);
			break;
		case KVM_EXIT_SHUTDOWN:
			snprintf(msg, sizeof(msg), "guest triple fault on vCPU %u", vcpu->id);
			vm_request_stop(vm, VM_STOP_CRASH, msg);
			return;
		case KVM_EXIT_SYSTEM_EVENT:
			/* A reset in place parks this vCPU at the loop's top;
			 * anything else stops the VM, which ends the loop. */
			handle_system_event(vcpu);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			handle_internal(vcpu);
			break;
		case KVM_EXIT_FAIL_ENTRY:
			snprintf(msg, sizeof(msg), "vCPU %u: VM entry failed, reason %#llx",
				 vcpu->id,
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			vm_request_stop(vm, VM_STOP_INTERNAL, msg);
			return;
		case KVM_EXIT_X86_RDMSR:
		case KVM_EXIT_X86_WRMSR:
			syscall_shim_msr(vcpu, run->exit_reason == KVM_EXIT_X86_WRMSR);
			break;
		case KVM_EXIT_IOAPIC_EOI:
			/* Split irqchip: a level interrupt's EOI, for cvisor's IOAPIC. */
			ioapic_eoi(&vm->ioapic, run->eoi.vector);
			break;
		case KVM_EXIT_HLT:
			/* Only without an in-kernel LAPIC; halt means nothing to do. */
			break;
		case KVM_EXIT_INTR:
		case KVM_EXIT_DEBUG:
			break;
		case KVM_EXIT_DIRTY_RING_FULL:
			if (!handle_ring_full(vcpu, &ring_empty))
				return;
			break;
		default:
			snprintf(msg, sizeof(msg), "vCPU %u: unexpected KVM exit %u", vcpu->id,
				 run->exit_reason);
			vm_request_stop(vm, VM_STOP_INTERNAL, msg);
			return;
		}
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	sigset_t set;
	char name[16], msg[96];
	int r;

	/* Signals for the process go to the main thread's signalfd; only the
	 * kick reaches a vCPU thread. */
	sigfillset(&set);
	sigdelset(&set, VCPU_KICK_SIGNAL);
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGBUS);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	if ((r = sandbox_enter(SANDBOX_VCPU))) {
		snprintf(msg, sizeof(msg), "vCPU %u: seccomp: %s", vcpu->id, strerror(-r));
		vm_request_stop(vm, VM_STOP_HOST, msg);
		return NULL;
	}
	pthread_mutex_lock(&vm->lock);
	vm->nheld++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (vm->held && !atomic_load(&vm->stop))
		pthread_cond_wait(&vm->pause_cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	vcpu_loop(vcpu);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	int r = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (r)
		return -r;
	vcpu->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (vcpu->run)
		set_immediate_exit(vcpu->run, 1);
	if (vcpu->started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}
