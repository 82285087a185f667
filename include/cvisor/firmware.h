/* firmware.h - booting through a PC BIOS image (SeaBIOS) instead of a
 * kernel file: the image at the top of 4 GiB, fw_cfg, the CMOS memory
 * bytes, and a vCPU at the reset vector. */
#ifndef CVISOR_FIRMWARE_H
#define CVISOR_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

#include "cvisor/boot.h"
#include "cvisor/device.h"
#include "cvisor/error.h"
#include "cvisor/util.h"

/* Firmware images: a multiple of 64 KiB, at most 16 MiB. */
#define FIRMWARE_ALIGN (64u << 10)
#define FIRMWARE_MAX (16u << 20)
/* How much of the image's end also appears below 1 MiB (0xe0000). */
#define FIRMWARE_LOW_MAX (128u << 10)
/* The memory slot of the image at the top of 4 GiB: after the RAM's. */
#define FIRMWARE_SLOT 8

struct vm;
struct fw_cfg;
struct acpi_config;

/* Check a firmware image's size: 0, or -EINVAL with a message in err
 * ("... is not a multiple of 64 KiB"). Pure; shared with the unit test. */
int firmware_check_size(uint64_t size, char *err, size_t errlen) CV_MUST;

/* Load cfg->firmware: map it read-only at 4 GiB - size and its last 128
 * KiB at 1 MiB - 128 KiB, fill fw_cfg and the CMOS from the VM's config,
 * register fw_cfg's ports, and set entry to the reset vector. Called after
 * the devices exist (the boot order names the first PCI disk). 0, or
 * -errno with e filled (CV_EXIT_USAGE for a bad file or option). */
int firmware_load(struct vm *vm, struct boot_entry *entry, struct cv_error *e) CV_MUST;

/* Add cvisor's ACPI tables (src/boot/acpi.c) to f as QEMU passes its own:
 * "etc/acpi/rsdp", "etc/acpi/tables" and the "etc/table-loader" script
 * that has the firmware place them (the RSDP in the F segment), patch
 * their pointers and fix their checksums (src/boot/fw_acpi.c). 0, or
 * -EINVAL / -ENOSPC / -ENOMEM. */
int firmware_acpi(struct fw_cfg *f, const struct acpi_config *ac) CV_MUST;

/* A reset in place: the image's end below 1 MiB written into RAM again
 * (the guest's firmware changed its copy). 0 or -errno with e filled. */
int firmware_reload(struct vm *vm, struct cv_error *e) CV_MUST;

/* The image as a device of the VM (struct vm as the device): save writes
 * its bytes; load, in a VM restored from a snapshot or a migration, maps
 * them at the top of 4 GiB as firmware_load did (checked: a 64 KiB
 * multiple up to 16 MiB), and in a VM that has its image (a reset in
 * place) checks that they are the same. No reset: a ROM has no state. */
extern const struct device_ops firmware_device_ops;

/* Free what firmware_load allocated (the image's copy, fw_cfg's items).
 * Safe when it was never called. */
void firmware_destroy(struct vm *vm);

#endif
