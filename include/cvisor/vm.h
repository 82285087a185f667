/* vm.h - one virtual machine: KVM fds, memory, vCPUs and the devices it owns. */
#ifndef CVISOR_VM_H
#define CVISOR_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvisor/acpi_pm.h"
#include "cvisor/boot.h"
#include "cvisor/bus.h"
#include "cvisor/config.h"
#include "cvisor/devices.h"
#include "cvisor/dirty.h"
#include "cvisor/error.h"
#include "cvisor/evloop.h"
#include "cvisor/fw_cfg.h"
#include "cvisor/guest_mem.h"
#include "cvisor/i8042.h"
#include "cvisor/isa_debug_exit.h"
#include "cvisor/ioapic.h"
#include "cvisor/rtc.h"
#include "cvisor/serial8250.h"
#include "cvisor/state.h"
#include "cvisor/syscall_shim.h"
#include "cvisor/util.h"

/* How a guest's run ended; the first reason recorded wins. */
enum vm_stop {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,
	VM_STOP_RESET,
	VM_STOP_SIGNAL,
	VM_STOP_CRASH,	    /* triple fault */
	VM_STOP_INTERNAL,   /* emulation or KVM failure */
	VM_STOP_HOST,	    /* host-side failure */
	VM_STOP_SAVED,	    /* `cvisor save` wrote the guest out (exit status 0) */
	VM_STOP_MEMFILE,    /* the memory file a restored guest maps was truncated */
	VM_STOP_GUEST_EXIT, /* isa-debug-exit: the guest chose the status (vm->guest_exit) */
};

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	_Atomic uint64_t exits;
	struct syscall_shim_vcpu shim; /* emulating hosts only */
};

/* Host workarounds for a KVM that emulates guest code (PVM): see
 * src/kvm/x86/emulate.c and src/kvm/x86/cpu.c. */
struct vm_quirks {
	bool active;
	_Atomic uint32_t logged; /* one bit per refused-instruction kind logged */
	bool fpu_hidden;	 /* KVM_SET_FPU does not reach the vCPU (checked at setup) */
};

struct vm {
	const struct vm_config *cfg;
	int kvm_fd;
	int vm_fd;
	int run_size;
	struct guest_mem mem;
	struct vcpu vcpus[CONFIG_MAX_CPUS];
	unsigned int ncpus;
	struct kvm_cpuid2 *cpuid; /* supported CPUID, adjusted per vCPU at setup */
	/* KVM's dirty rings, enabled before the vCPUs (src/mem/dirty.c);
	 * entries 0 when migration reads the dirty bitmap instead. */
	struct dirty_rings dirty_rings;
	struct vm_quirks quirks;
	/* Guest system calls on an emulating host (src/kvm/x86/syscall_shim.c). */
	struct syscall_shim shim;

	struct bus pio;
	struct bus mmio;
	struct serial8250 uart;
	struct i8042 kbd;
	struct acpi_pm pm;
	struct rtc rtc;
	/* The IOAPIC of a split irqchip (--irqchip split); unused otherwise,
	 * when KVM's is the guest's. */
	struct ioapic ioapic;
	/* --firmware: fw_cfg (its ports registered only then) and the
	 * image's private copy, mapped at the top of 4 GiB. */
	struct fw_cfg fw_cfg;
	uint8_t *rom;
	size_t rom_len;
	struct boot_entry entry; /* where the BSP started (vm_create) */
	/* A multiboot kernel (src/vm_multiboot.c): fw_cfg's legacy items and
	 * isa-debug-exit, whose status guest_exit is what cvisor exits with. */
	bool multiboot;
	struct isa_debug_exit debug_exit;
	_Atomic int guest_exit;

	/* Stop protocol: the first vm_request_stop() wins; the main loop is
	 * woken through stop_fd and kicks every vCPU out of KVM_RUN. */
	_Atomic int stop;
	char stop_msg[256];
	int stop_fd; /* eventfd */
	pthread_mutex_t lock;
	/* Pause protocol (vm_pause/vm_resume): vCPUs park outside KVM_RUN. */
	pthread_cond_t pause_cond;
	_Atomic bool pause_req;
	unsigned int parked;
	/* Set before vm_start: the vCPU threads wait before their first
	 * KVM_RUN until vm_release (the main thread enters its seccomp
	 * filter in between). */
	bool held;
	unsigned int nheld; /* vCPU threads in their filter, waiting on held */
	uint64_t start_ns;  /* monotonic time the vCPUs started */
	int out_fd;	    /* where the serial console writes */
	struct evloop loop; /* main thread: console, signals, devices, control */
	/* When set, serial output goes here instead of out_fd (the toolstack's
	 * log file, ring buffer and attached consoles). Called on vCPU threads
	 * with the UART lock held: must not block. */
	void (*console_write)(void *ctx, const uint8_t *buf, size_t len);
	bool console_stalled; /* out_fd stayed full: output is being dropped */
	void *console_ctx;
	/* --serial pty: the 8250's pty (output also to console_write when
	 * set), NULL otherwise. */
	struct pty *serial_pty;
	/* Paravirtual devices (src/devices.c): the VM's copy of
	 * cfg->devices, which `cvisor set` changes (rate limits) and a
	 * snapshot's CONFIG records. Main thread. */
	struct devices_config devcfg;
	struct irq_router router;
	struct pci_bus pci;
	struct vm_virtio *virtio[VM_MAX_VIRTIO];
	unsigned int nvirtio;
	char virtio_cmdline[1024];
	struct virtio_dev *balloon; /* NULL without --balloon */
	/* Counters for `cvisor top`, updated by the devices. */
	struct virtio_io_stats stats;

	/* Reset in place (src/vm_reset.c): the machine's state before its
	 * first instruction (empty: a reset stops the guest), a reset the
	 * main loop has still to do, and whether the guest stays paused
	 * after it (it was paused when it asked). */
	struct state_buf boot_state;
	_Atomic bool reset_pending; /* the vCPUs park while it is set */
	/* The files the boot read (kernel, initrd, modules), kept open for
	 * a reset to read again: a jailed monitor no longer sees their
	 * paths (vm_file_map). */
	struct {
		char *path;
		int fd;
	} kept[2 + BOOT_MAX_MODULES];
	unsigned int nkept;
	/* Told before (done false) and after (true) a reset, on the main
	 * thread; NULL for none (the API's events). */
	void (*reset_hook)(void *ctx, bool done);
	void *reset_ctx;
};

/* The slave path ("/dev/pts/N") of the virtio-console's pty (--console
 * pty), or NULL without one: what a Cloud Hypervisor client reads as
 * config.console.file and opens for the guest's hvc0. Valid while the VM
 * exists. */
const char *vm_console_pty_path(const struct vm *vm);

/* The slave path of the 8250's pty (--serial pty), or NULL: Cloud
 * Hypervisor's config.serial.file. Valid while the VM exists. */
const char *vm_serial_pty_path(const struct vm *vm);

/* --serial pty: make the 8250's pty and feed its input to the UART
 * (src/vm_console.c; vm_create calls it). 0, or -errno with e filled. */
int vm_serial_open(struct vm *vm, struct cv_error *e) CV_MUST;

/* Close the 8250's pty, if any (vm_destroy calls it). */
void vm_serial_close(struct vm *vm);

/* A file the user named (kernel, initrd, module), mapped read-only. */
struct vm_file {
	const uint8_t *data;
	size_t len;
};

/* Map the file at path, named --WHAT in the message: 0, or -errno with e
 * filled (CV_EXIT_USAGE: a missing or unreadable file, an empty one unless
 * empty_ok, when it is mapped as data NULL, len 0). With --on-reboot
 * restart the file stays open in vm->kept, and a later map of the same
 * path (a reset) reads that open file. */
int vm_file_map(struct vm *vm, const char *what, const char *path, bool empty_ok, struct vm_file *m,
		struct cv_error *e) CV_MUST;

/* Unmap it; safe on a zeroed struct and twice. */
void vm_file_unmap(struct vm_file *m);

/* Boot a multiboot kernel (src/vm_multiboot.c) as QEMU's -kernel does:
 * the command line "KERNEL CMDLINE", --initrd then each --module as its
 * modules, and the pc machine's fw_cfg items and isa-debug-exit port.
 * 0, or -errno with e filled. */
int vm_multiboot_load(struct vm *vm, const struct vm_file *kernel, struct boot_entry *entry,
		      struct cv_error *e) CV_MUST;

/* What a guest has beyond the machine every guest gets, as a snapshot's
 * MACHINE section records it (src/vm_platform.c). */
#define VM_PLATFORM_FW_CFG 1u	  /* fw_cfg at 0x510 */
#define VM_PLATFORM_DEBUG_EXIT 2u /* isa-debug-exit at 0xf4: a multiboot kernel */
#define VM_PLATFORM_FIRMWARE 4u	  /* a --firmware image below 4 GiB */
#define VM_PLATFORM_ALL 7u

/* This VM's VM_PLATFORM_* bits. */
unsigned int vm_platform(const struct vm *vm);

/* In a VM vm_create_restore built: add what flags (a snapshot's) name,
 * after checking that they agree with the CONFIG (firmware or kernel):
 * the i440FX host bridge a firmware saw, fw_cfg's ports (its items load
 * from its DEVICE section), isa-debug-exit. 0, or -EINVAL (or -errno)
 * with one line in err. */
int vm_platform_restore(struct vm *vm, unsigned int flags, char *err, size_t errlen) CV_MUST;

/* Register isa-debug-exit at 0xf4: a guest write ends the VM with
 * VM_STOP_GUEST_EXIT and its status. 0 or -errno. */
int vm_debug_exit_add(struct vm *vm) CV_MUST;

/* Create the VM: open /dev/kvm, memory, irqchip, PIT, devices, vCPUs, and
 * load the kernel. Returns 0, or -errno with e filled (CV_EXIT_USAGE when
 * the fault is the user's input: a flag, a file, a size); prints nothing.
 * vm_destroy undoes it, also after a failure. */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct cv_error *e) CV_MUST;

/* Create a VM to receive saved state (cvisor restore, a migration target):
 * everything vm_create builds from cfg (memory, irqchip, devices with the
 * same disks, vCPUs with this host's CPUID) but no kernel, no firmware
 * tables and no entry registers. Guest RAM is mem_fd's file mapped
 * copy-on-write (MAP_PRIVATE; its size must be cfg->mem_size, the caller
 * checks) or, with mem_fd -1, zeroed anonymous memory the caller fills
 * (vm->mem, guest_mem_ptr). Then snapshot_state_load() and vm_start().
 * Errors as for vm_create. */
int vm_create_restore(struct vm *vm, const struct vm_config *cfg, int mem_fd,
		      struct cv_error *e) CV_MUST;

/* Start the vCPU threads. */
int vm_start(struct vm *vm) CV_MUST;

/* Record why the guest stops (first caller wins) and wake the main loop.
 * msg may be NULL; async-signal-safe apart from formatting msg. */
void vm_request_stop(struct vm *vm, enum vm_stop why, const char *msg);

/* Save the machine's state for a reset in place (vm->boot_state): after
 * vm_create, before vm_start. 0 or -errno (then a reset stops the
 * guest). */
int vm_reset_capture(struct vm *vm) CV_MUST;

/* The guest (or the host for it) resets the machine: with a boot state,
 * park the vCPUs and have the main loop reset it in place
 * (vm_reset_run); without, stop the guest with VM_STOP_RESET. Any
 * thread. */
void vm_request_reset(struct vm *vm);

/* Do a reset vm_request_reset asked for, if any: main thread, from its
 * loop. A reset that fails stops the guest with a line saying why. */
void vm_reset_run(struct vm *vm);

/* Write the boot images into guest RAM as vm_create did: the kernel,
 * initrd, command line and firmware tables, or the firmware's low copy.
 * 0 or -errno with e filled. */
int vm_load_images(struct vm *vm, struct cv_error *e) CV_MUST;

/* Kick every vCPU out of KVM_RUN and join the threads. */
void vm_join(struct vm *vm);

/* Release everything vm_create acquired. Safe on a partially built VM. */
void vm_destroy(struct vm *vm);

/* Exit status for how the VM stopped (see enum cv_exit). */
int vm_exit_status(const struct vm *vm);

/* Stop every vCPU outside KVM_RUN and return once all are parked (or the
 * VM is stopping). Idempotent. Called from the main thread. */
void vm_pause(struct vm *vm);

/* Let parked vCPUs run again. Idempotent. */
void vm_resume(struct vm *vm);

/* Wait until every vCPU thread started with vm->held set has entered its
 * seccomp filter and waits (vm->nheld), or the VM is stopping. */
void vm_wait_held(struct vm *vm);

/* Let vCPU threads started with vm->held set run their first KVM_RUN.
 * Idempotent. */
void vm_release(struct vm *vm);

/* vm_pause's request without the wait: the vCPUs park at their next look
 * (before their first KVM_RUN when they are still held, so that a guest
 * released paused runs no instruction). vm_pause then waits for them. */
void vm_pause_request(struct vm *vm);

/* True between vm_pause and vm_resume. */
bool vm_paused(struct vm *vm);

struct acpi_config;

/* The ACPI tables' description of this VM (CPUs, LAPIC and IOAPIC, PIC or
 * not), for src/boot/acpi.c: the same whichever way the guest boots. */
void vm_acpi_config(const struct vm *vm, struct acpi_config *ac);

/* Raise or lower a GSI: on the in-kernel irqchip (KVM_IRQ_LINE), or on
 * cvisor's IOAPIC with a split irqchip. */
void vm_set_irq(struct vm *vm, unsigned int gsi, int level);

#endif
