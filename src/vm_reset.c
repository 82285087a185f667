/* vm_reset.c - a guest's reset in place (--on-reboot restart, and always
 * under the Cloud Hypervisor API): the same process, KVM VM and devices,
 * back to the state they had before the guest's first instruction.
 *
 * Before the vCPUs first run, the whole machine state but RAM is saved
 * into vm->boot_state with the snapshot code (vCPU registers, MSRs, LAPIC
 * and MP state, the irqchip, PIT and clock, every device). A reset then:
 *  1. parks every vCPU (the pause protocol; the vCPU that asked parks at
 *     once, as vm_request_reset set the pause request itself);
 *  2. finishes each device's I/O in flight and resets it (the virtio
 *     devices as a driver's status write of 0 does: backends stopped,
 *     queues dropped);
 *  3. writes the kernel, initrd, command line and ACPI/MP tables (or the
 *     firmware's low copy) into RAM again, as the first boot did. Other
 *     RAM keeps its contents, as on a PC and under QEMU;
 *  4. loads boot_state: the vCPUs are where they were before the first
 *     instruction (the APs waiting for INIT/SIPI, the kvmclock and steal
 *     time MSRs off), the devices at power-on, the TSC and kvmclock from
 *     the start;
 *  5. lets the vCPUs run, unless the guest was paused when it asked.
 * All on the main thread, from the run loop (the stop eventfd wakes it).
 * A failure stops the guest with one line: it is never left half reset.
 *
 * Why not build a new VM: the main thread's seccomp filter forbids making
 * another one in this process, and the API's clients (libvirt) hold this
 * process's pid and its vCPU threads' cgroups. */
#include "cvisor/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/device.h"
#include "cvisor/dirty.h"
#include "cvisor/snapshot.h"
#include "cvisor/virtio_balloon.h"

int vm_reset_capture(struct vm *vm)
{
	int r;

	state_buf_free(&vm->boot_state);
	if ((r = snapshot_state_save(vm, &vm->boot_state)))
		state_buf_free(&vm->boot_state);
	return r;
}

void vm_request_reset(struct vm *vm)
{
	uint64_t one = 1;

	if (!vm->boot_state.len) {
		vm_request_stop(
			vm, VM_STOP_RESET,
			vm->cfg->on_reboot == CONFIG_REBOOT_RESTART
				? "the guest reset itself; a restored or migrated guest has "
				  "no boot state to restart from, so it ends"
				: NULL);
		return;
	}
	/* Not the pause request: that is the user's (or a save's, a
	 * migration's), which the reset must leave as it finds it. A vCPU
	 * parks while either is set (src/kvm/vcpu.c). */
	atomic_store(&vm->reset_pending, true);
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow with one write; nothing to do. */
	}
}

static void reset_devices(struct vm *vm)
{
	struct device devs[SNAPSHOT_MAX_DEVICES];
	unsigned int n = vm_devices_list(vm, devs, SNAPSHOT_MAX_DEVICES);

	for (unsigned int i = 0; i < n; i++)
		if (devs[i].ops->reset)
			devs[i].ops->reset(devs[i].dev);
}

/* A running migration copies what cvisor wrote into RAM only if told. */
static void note_ram(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->mem.nr; i++)
		dirty_note(vm->mem.regions[i].hva, vm->mem.regions[i].size);
}

static int reset_machine(struct vm *vm, char *err, size_t errlen)
{
	struct cv_error e = { 0 };
	int r;

	if ((r = snapshot_devices_quiesce(vm, err, errlen)))
		return r;
	reset_devices(vm);
	if ((r = vm_load_images(vm, &e))) {
		snprintf(err, errlen, "%.*s", (int)(errlen > 1 ? errlen - 1 : 0),
			 e.msg[0] ? e.msg : strerror(-r));
		snapshot_devices_resume(vm);
		return r;
	}
	note_ram(vm);
	/* Resumes the devices at its end (after a failure there they stay
	 * quiesced: the guest is stopped then). */
	return snapshot_state_reload(vm, vm->boot_state.data, vm->boot_state.len, err, errlen);
}

/* The host's balloon target, which a device's boot state would undo. */
static uint64_t balloon_target(struct vm *vm)
{
	struct virtio_balloon_stats st;

	if (!vm->balloon || virtio_balloon_get_stats(vm->balloon, &st))
		return 0;
	return (uint64_t)st.target_pages * VIRTIO_BALLOON_PAGE_SIZE;
}

void vm_reset_run(struct vm *vm)
{
	char err[200], msg[sizeof(vm->stop_msg)];
	uint64_t t0 = cv_now_ns(), target;
	bool was_paused;

	if (!atomic_load(&vm->reset_pending))
		return;
	/* Main thread, as every other pause and resume: what it finds is
	 * someone's pause to keep after the reset. */
	was_paused = vm_paused(vm);
	vm_pause(vm);
	/* Every vCPU is parked: a request made now would be for the guest
	 * this reset is about to start, and is done after it. */
	pthread_mutex_lock(&vm->lock);
	atomic_store(&vm->reset_pending, false);
	pthread_mutex_unlock(&vm->lock);
	if (atomic_load(&vm->stop))
		return;
	target = balloon_target(vm);
	if (vm->reset_hook)
		vm->reset_hook(vm->reset_ctx, false);
	err[0] = '\0';
	if (reset_machine(vm, err, sizeof(err)) ||
	    (vm->balloon && virtio_balloon_set_target(vm->balloon, target) &&
	     snprintf(err, sizeof(err), "the balloon's target did not stay") > 0)) {
		snprintf(msg, sizeof(msg), "the guest's reset failed: %s", err);
		vm_request_stop(vm, VM_STOP_HOST, msg);
		return;
	}
	cv_err("the guest reset: its machine is back at power-on (in %.2f ms), booting again",
	       (double)(cv_now_ns() - t0) / 1e6);
	if (vm->reset_hook)
		vm->reset_hook(vm->reset_ctx, true);
	if (!was_paused)
		vm_resume(vm);
}
