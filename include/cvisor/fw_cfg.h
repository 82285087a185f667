/* fw_cfg.h - QEMU's firmware configuration device on x86 I/O ports
 * (QEMU docs/specs/fw_cfg.rst), the interface SeaBIOS built for QEMU reads
 * its RAM size, CPU count, memory map and boot order from. */
#ifndef CVISOR_FW_CFG_H
#define CVISOR_FW_CFG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cvisor/bus.h"
#include "cvisor/device.h"
#include "cvisor/util.h"

/* 0x510: 16-bit selector (little-endian), 0x511: data, one byte a read.
 * No DMA interface (0x514): FW_CFG_ID says so, and SeaBIOS then reads
 * every item through the data port. */
#define FW_CFG_PORT 0x510
#define FW_CFG_PORT_LEN 2

/* The "well-known" selectors cvisor fills (fw_cfg.rst, "Selector Keys"). */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NOGRAPHIC 0x04
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_BOOT_MENU 0x0e
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_FILE_FIRST 0x20

#define FW_CFG_MAX_ITEMS 32
#define FW_CFG_MAX_FILES 16
#define FW_CFG_NAME_MAX 56 /* a file name with its NUL */
#define FW_CFG_ITEM_MAX (1u << 20)

struct fw_cfg_item {
	uint16_t key;
	uint8_t *data; /* owned */
	uint32_t len;
};

struct fw_cfg {
	pthread_mutex_t lock;
	uint16_t sel;
	uint32_t off; /* read position in the selected item */
	struct fw_cfg_item items[FW_CFG_MAX_ITEMS];
	unsigned int nitems;
	unsigned int nfiles;
	/* The file directory's entries, rebuilt into FW_CFG_FILE_DIR. */
	char names[FW_CFG_MAX_FILES][FW_CFG_NAME_MAX];
};

/* An empty device with its signature ("QEMU") and ID (traditional
 * interface only) items. 0 or -ENOMEM. fw_cfg_destroy undoes it. */
int fw_cfg_init(struct fw_cfg *f) CV_MUST;

/* Add (or replace) the item `key` with a copy of data[0..len). -EINVAL for
 * a key in the file range or len over FW_CFG_ITEM_MAX, -ENOSPC, -ENOMEM. */
int fw_cfg_add(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len) CV_MUST;

/* Add a named file (a copy of data[0..len)) to the directory, at the next
 * selector from FW_CFG_FILE_FIRST. -EINVAL for an empty or too long name,
 * -EEXIST, -ENOSPC, -ENOMEM. */
int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len) CV_MUST;

/* The legacy items every QEMU pc guest finds (firmware and multiboot
 * kernels alike; kvm-unit-tests reads them): FW_CFG_RAM_SIZE (u64 bytes),
 * FW_CFG_NB_CPUS and FW_CFG_MAX_CPUS (u16). 0 or as fw_cfg_add. */
int fw_cfg_add_machine(struct fw_cfg *f, uint64_t ram_size, unsigned int ncpus) CV_MUST;

/* Free the items. Safe on a zeroed struct and twice. */
void fw_cfg_destroy(struct fw_cfg *f);

/* Port handlers for [FW_CFG_PORT, FW_CFG_PORT + FW_CFG_PORT_LEN), struct
 * fw_cfg as opaque. Any selector, offset or width from the guest is
 * answered: an unknown item or a read past an item's end reads zeros
 * (fw_cfg.rst, "Data Register"); writes to the data port are ignored. */
extern const struct bus_ops fw_cfg_bus_ops;

/* True once fw_cfg_init has run (until fw_cfg_destroy): the guest has the
 * device. */
static inline bool fw_cfg_present(const struct fw_cfg *f)
{
	return f->nitems != 0;
}

/* Its lifecycle, struct fw_cfg as the device: reset selects item 0 at
 * offset 0; save and load carry the selector, the offset and every item
 * with the file names (the directory is rebuilt from them), so that a
 * restored guest reads what it was booted with, whatever this cvisor
 * would build. load checks every count, length, key and name. */
extern const struct device_ops fw_cfg_device_ops;

#endif
