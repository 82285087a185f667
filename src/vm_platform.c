/* vm_platform.c - what a guest may have beyond the machine every guest
 * gets (include/cvisor/vm.h, VM_PLATFORM_*): fw_cfg (a --firmware guest
 * and a multiboot kernel), isa-debug-exit (a multiboot kernel) and a
 * firmware image mapped below 4 GiB. A snapshot's MACHINE section records
 * which (src/snapshot/format.c), since a restore reads neither the kernel
 * nor the firmware file, and a restore rebuilds them from it before the
 * devices' state loads: fw_cfg's items and the image's bytes come from
 * their DEVICE sections (fw_cfg_device_ops, firmware_device_ops). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cvisor/vm.h"

static void guest_exit(void *ctx, int status)
{
	struct vm *vm = ctx;
	int none = 0;

	/* The first write wins, as the first stop reason does (the status is
	 * odd, never 0). */
	atomic_compare_exchange_strong(&vm->guest_exit, &none, status);
	vm_request_stop(vm, VM_STOP_GUEST_EXIT, NULL);
}

int vm_debug_exit_add(struct vm *vm)
{
	vm->debug_exit = (struct isa_debug_exit){ .exit = guest_exit, .ctx = vm };
	return bus_register(&vm->pio, ISA_DEBUG_EXIT_PORT, ISA_DEBUG_EXIT_LEN,
			    &isa_debug_exit_bus_ops, &vm->debug_exit, "isa-debug-exit");
}

unsigned int vm_platform(const struct vm *vm)
{
	return (fw_cfg_present(&vm->fw_cfg) ? VM_PLATFORM_FW_CFG : 0) |
	       (vm->multiboot ? VM_PLATFORM_DEBUG_EXIT : 0) |
	       (vm->cfg->firmware ? VM_PLATFORM_FIRMWARE : 0);
}

int vm_platform_restore(struct vm *vm, unsigned int flags, char *err, size_t errlen)
{
	bool fw = vm->cfg->firmware != NULL;
	int r;

	/* What the CONFIG says must agree: firmware with fw_cfg and without
	 * isa-debug-exit; a kernel's isa-debug-exit only with fw_cfg. */
	if ((flags & ~VM_PLATFORM_ALL) || !(flags & VM_PLATFORM_FIRMWARE) != !fw ||
	    (fw && (flags & (VM_PLATFORM_FW_CFG | VM_PLATFORM_DEBUG_EXIT)) != VM_PLATFORM_FW_CFG) ||
	    ((flags & VM_PLATFORM_DEBUG_EXIT) && !(flags & VM_PLATFORM_FW_CFG)))
		return cv_errf(err, errlen, -EINVAL,
			       "MACHINE: its devices (%#x) do not match its CONFIG (%s)", flags,
			       fw ? "firmware" : "kernel");
	/* The chipset the firmware was given (src/boot/firmware.c). */
	if (fw)
		pci_host_bridge_set_device(&vm->pci, PCI_HOST_BRIDGE_I440FX);
	if ((flags & VM_PLATFORM_FW_CFG) &&
	    ((r = fw_cfg_init(&vm->fw_cfg)) ||
	     (r = bus_register(&vm->pio, FW_CFG_PORT, FW_CFG_PORT_LEN, &fw_cfg_bus_ops, &vm->fw_cfg,
			       "fw_cfg"))))
		return cv_errf(err, errlen, r, "registering fw_cfg: %s", strerror(-r));
	if (flags & VM_PLATFORM_DEBUG_EXIT) {
		if ((r = vm_debug_exit_add(vm)))
			return cv_errf(err, errlen, r, "registering isa-debug-exit: %s",
				       strerror(-r));
		vm->multiboot = true;
	}
	return 0;
}
