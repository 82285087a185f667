/* firmware.c - boot through a PC BIOS image (include/cvisor/firmware.h).
 *
 * What SeaBIOS built for QEMU (Debian's seabios package) expects of its
 * machine, from its src/fw/paravirt.c, shadow.c and pciinit.c:
 * - a host bridge at 00:00.0 with subsystem 1af4:1100, or it never looks
 *   at fw_cfg. Its device id picks the chipset code: 0x29c0 (Q35) moves
 *   config access to an ECAM window at 0xb0000000 that cvisor does not
 *   decode, so a firmware guest sees 0x1237 (i440FX), which keeps config
 *   access on ports 0xcf8/0xcfc (pci_host_bridge_set_device).
 * - its image at the top of 4 GiB and the last 128 KiB at 0xe0000. On
 *   QEMU the PAM registers make that copy writable; here it is plain RAM
 *   from the start, so SeaBIOS's "unlock" finds it writable either way.
 * - RAM below 4 GiB in the CMOS (0x30/0x31 in KiB above 1 MiB, 0x34/0x35
 *   in 64 KiB above 16 MiB), RAM above 4 GiB in 0x5b-0x5d, CPUs - 1 in
 *   0x5f; "etc/e820" then adds what the CMOS cannot say. An "etc/e820" RAM
 *   entry below the CMOS size is ignored, as QEMU's own first entry is.
 * - fw_cfg's legacy items (RAM size, CPU counts, the boot menu flag) and
 *   files: "bootorder" (the disk's OpenFirmware path), "etc/sercon-port"
 *   (screen text, "Booting from Hard Disk...", on the 8250 too, since
 *   there is no VGA), "etc/show-boot-menu" off.
 * - "etc/e820" also reserves the syscall shim's pages on an emulating host
 *   (SeaBIOS hands reservations on to the boot loader and the OS).
 * - ACPI: without "etc/table-loader" SeaBIOS builds ACPI tables only for a
 *   PIIX4 power management function (fw/acpi.c), which cvisor has not;
 *   cvisor's own tables go through the table loader (fw_acpi.c). */
#include "cvisor/firmware.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/acpi.h"
#include "cvisor/fw_cfg.h"
#include "cvisor/kvm.h"
#include "cvisor/virtio.h"
#include "cvisor/vm.h"

#define FOUR_GIB (1ULL << 32)
#define SIXTEEN_MIB (16ULL << 20)
#define CMOS_BASE_MEM_LO 0x15 /* KiB below 1 MiB */
#define CMOS_EXT_MEM_LO 0x17  /* KiB from 1 MiB, also at 0x30 */
#define CMOS_EXT_MEM2_LO 0x30
#define CMOS_MEM_16M_LO 0x34 /* 64 KiB units from 16 MiB */
#define CMOS_MEM_4G_LO 0x5b  /* 64 KiB units from 4 GiB, three bytes */
#define CMOS_SMP_COUNT 0x5f  /* CPUs - 1 */
#define E820_FILE_ENTRY 20   /* u64 address, u64 length, u32 type */

int firmware_check_size(uint64_t size, char *err, size_t errlen)
{
	if (size < FIRMWARE_ALIGN || size % FIRMWARE_ALIGN)
		return cv_errf(err, errlen, -EINVAL,
			       "%llu bytes is not a multiple of 64 KiB (a BIOS image is 64 KiB, "
			       "128 KiB, 256 KiB, ...)",
			       (unsigned long long)size);
	if (size > FIRMWARE_MAX)
		return cv_errf(err, errlen, -EINVAL, "%llu bytes is larger than 16 MiB",
			       (unsigned long long)size);
	return 0;
}

/* Room for the image's private copy: vm->rom, rom_len bytes, writable
 * until rom_seal. 0 or -errno. */
static int rom_alloc(struct vm *vm, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	vm->rom = p;
	vm->rom_len = len;
	return 0;
}

static void rom_seal(struct vm *vm)
{
	mprotect(vm->rom, vm->rom_len, PROT_READ);
}

/* The image, copied: the slot maps a private copy, never the user's file. */
static int read_image(struct vm *vm, struct cv_error *e)
{
	const char *path = vm->cfg->firmware, *why;
	char err[160];
	struct stat st;
	int fd, r = cv_open_regular(path, O_RDONLY, CV_OPEN_NONEMPTY, &fd, &st, &why);

	if (r)
		return cv_fail(e, CV_EXIT_USAGE, r, "--firmware %s: %s", path, why);
	if ((r = firmware_check_size((uint64_t)st.st_size, err, sizeof(err)))) {
		close(fd);
		return cv_fail(e, CV_EXIT_USAGE, r, "--firmware %s: %s", path, err);
	}
	if ((r = rom_alloc(vm, (size_t)st.st_size))) {
		close(fd);
		return cv_fail(e, CV_EXIT_FAIL, r, "--firmware %s: %s", path, strerror(-r));
	}
	r = cv_pread_full(fd, vm->rom, vm->rom_len, 0);
	close(fd);
	if (r)
		return cv_fail(e, CV_EXIT_USAGE, r, "--firmware %s: %s", path, strerror(-r));
	rom_seal(vm);
	return 0;
}

/* The image's end below 1 MiB, in RAM (SeaBIOS writes to its copy). */
static int copy_low(struct vm *vm)
{
	size_t low = vm->rom_len < FIRMWARE_LOW_MAX ? vm->rom_len : FIRMWARE_LOW_MAX;

	return guest_mem_write(&vm->mem, LAYOUT_HIMEM - low, vm->rom + vm->rom_len - low, low);
}

/* The image below 4 GiB, read-only where KVM can (writes then exit as MMIO
 * and are dropped, as a ROM drops them). 0 or -errno. */
static int map_slot(struct vm *vm)
{
	uint64_t gpa = FOUR_GIB - vm->rom_len;

	if (kvm_cap(vm->kvm_fd, KVM_CAP_READONLY_MEM))
		return kvm_set_memslot_flags(vm->vm_fd, FIRMWARE_SLOT, gpa, vm->rom_len, vm->rom,
					     KVM_MEM_READONLY);
	return kvm_set_memslot(vm->vm_fd, FIRMWARE_SLOT, gpa, vm->rom_len, vm->rom);
}

/* The image below 4 GiB and its end below 1 MiB. */
static int map_image(struct vm *vm, struct cv_error *e)
{
	int r;

	if ((r = map_slot(vm)))
		return cv_fail(e, CV_EXIT_FAIL, r, "mapping the firmware at %#llx: %s",
			       (unsigned long long)(FOUR_GIB - vm->rom_len), strerror(-r));
	if (copy_low(vm))
		return cv_fail(e, CV_EXIT_USAGE, -E2BIG, "guest memory too small for firmware");
	return 0;
}

int firmware_reload(struct vm *vm, struct cv_error *e)
{
	if (!vm->rom || copy_low(vm))
		return cv_fail(e, CV_EXIT_FAIL, -EINVAL, "the firmware's copy below 1 MiB: lost");
	return 0;
}

static void cmos_put(struct rtc *rtc, unsigned int at, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		rtc->cmos[at + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t cap16(uint64_t v)
{
	return v > 0xffff ? 0xffff : v;
}

static void fill_cmos(struct vm *vm)
{
	uint64_t low = vm->mem.regions[0].size;
	uint64_t high = vm->mem.nr > 1 ? vm->mem.regions[1].size : 0;
	uint64_t ext = low > LAYOUT_HIMEM ? (low - LAYOUT_HIMEM) >> 10 : 0;

	cmos_put(&vm->rtc, CMOS_BASE_MEM_LO, 640, 2);
	cmos_put(&vm->rtc, CMOS_EXT_MEM_LO, cap16(ext), 2);
	cmos_put(&vm->rtc, CMOS_EXT_MEM2_LO, cap16(ext), 2);
	cmos_put(&vm->rtc, CMOS_MEM_16M_LO,
		 low > SIXTEEN_MIB ? cap16((low - SIXTEEN_MIB) >> 16) : 0, 2);
	cmos_put(&vm->rtc, CMOS_MEM_4G_LO, high >> 16, 3);
	vm->rtc.cmos[CMOS_SMP_COUNT] = (uint8_t)(vm->ncpus - 1);
}

/* The PCI slot of the first virtio-blk device, or -1. */
static int boot_disk_slot(const struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nvirtio; i++) {
		const struct vm_virtio *v = vm->virtio[i];

		if (v->mmio || v->dev.ops->device_id != VIRTIO_ID_BLOCK)
			continue;
		for (unsigned int s = 0; s < PCI_MAX_DEVICES; s++)
			if (vm->pci.devs[s] == &v->t.pci.pci)
				return (int)s;
	}
	return -1;
}

static void e820_put(uint8_t *p, uint64_t addr, uint64_t len, uint32_t type)
{
	cv_put_le64(p, addr);
	cv_put_le64(p + 8, len);
	cv_put_le32(p + 16, type);
}

static int fill_fw_cfg(struct vm *vm)
{
	struct fw_cfg *f = &vm->fw_cfg;
	uint8_t e820[3 * E820_FILE_ENTRY], zero[2] = { 0 }, port[2];
	uint32_t e820_len = 0;
	struct acpi_config ac;
	char order[64];
	int slot = boot_disk_slot(vm), r;

	if ((r = fw_cfg_init(f)))
		return r;
	cv_put_le16(port, SERIAL8250_COM1_BASE);
	/* QEMU's "etc/e820": its RAM, one entry per side of the 4 GiB hole. */
	for (unsigned int i = 0; i < vm->mem.nr && i < 2; i++, e820_len += E820_FILE_ENTRY)
		e820_put(e820 + e820_len, vm->mem.regions[i].gpa, vm->mem.regions[i].size,
			 E820_RAM);
	/* The syscall shim's pages below the EBDA, reserved from the first
	 * instruction (SeaBIOS passes reservations on to the boot loader and
	 * the OS; its EBDA stays above them unless it grows past 16 KiB). */
	if (vm->shim.on) {
		e820_put(e820 + e820_len, SYSCALL_SHIM_GPA, SYSCALL_SHIM_LEN, E820_RESERVED);
		e820_len += E820_FILE_ENTRY;
		vm->shim.area = true;
	}
	if ((r = fw_cfg_add_machine(f, vm->mem.ram_size, vm->ncpus)) ||
	    (r = fw_cfg_add(f, FW_CFG_NOGRAPHIC, (uint8_t[2]){ 1, 0 }, 2)) ||
	    (r = fw_cfg_add(f, FW_CFG_BOOT_MENU, zero, 2)) ||
	    (r = fw_cfg_add_file(f, "etc/e820", e820, e820_len)) ||
	    (r = fw_cfg_add_file(f, "etc/sercon-port", port, 2)))
		return r;
	/* SeaBIOS matches its device paths as prefixes of these lines
	 * (a disk in slot 4 is "/pci@i0cf8/ANY@4", boot.c, build_pci_path). */
	if (slot >= 0) {
		int n = snprintf(order, sizeof(order), "/pci@i0cf8/scsi@%x/disk@0,0\n", slot);

		if ((r = fw_cfg_add_file(f, "bootorder", order, (uint32_t)n + 1)))
			return r;
	}
	vm_acpi_config(vm, &ac);
	if ((r = firmware_acpi(f, &ac)))
		return r;
	return bus_register(&vm->pio, FW_CFG_PORT, FW_CFG_PORT_LEN, &fw_cfg_bus_ops, f, "fw_cfg");
}

int firmware_load(struct vm *vm, struct boot_entry *entry, struct cv_error *e)
{
	int r;

	if (vm->mem.regions[0].size < LAYOUT_HIMEM)
		return cv_fail(e, CV_EXIT_USAGE, -E2BIG, "guest memory too small for firmware");
	if ((r = read_image(vm, e)) || (r = map_image(vm, e)))
		return r;
	pci_host_bridge_set_device(&vm->pci, PCI_HOST_BRIDGE_I440FX);
	fill_cmos(vm);
	if ((r = fill_fw_cfg(vm)))
		return cv_fail(e, CV_EXIT_FAIL, r, "building fw_cfg: %s", strerror(-r));
	*entry = (struct boot_entry){ .mode = BOOT_FIRMWARE };
	return 0;
}

void firmware_destroy(struct vm *vm)
{
	fw_cfg_destroy(&vm->fw_cfg);
	if (vm->rom)
		munmap(vm->rom, vm->rom_len);
	vm->rom = NULL;
	vm->rom_len = 0;
}

/* ---- the image in a snapshot (device.h) ---- */

#define FIRMWARE_STATE_VERSION 1

/* u32 version, u32 length, the image's bytes: a restore or a migration
 * target needs no file, and runs the firmware the guest booted, even if
 * the host's bios.bin changed since. Its copy below 1 MiB is RAM. */
static int firmware_save(void *opaque, struct state_buf *b)
{
	struct vm *vm = opaque;

	state_put_u32(b, FIRMWARE_STATE_VERSION);
	state_put_u32(b, (uint32_t)vm->rom_len);
	state_put_bytes(b, vm->rom, vm->rom_len);
	return b->err;
}

/* A restore maps the saved image where the firmware found it; a reset in
 * place (vm_reset.c) loads its own boot state, the image it already has. */
static int firmware_load_state(void *opaque, struct state_rd *rd)
{
	struct vm *vm = opaque;
	uint32_t version = state_get_u32(rd), len = state_get_u32(rd);
	const uint8_t *bytes = rd->data + rd->pos;
	char err[160];
	int r;

	if (rd->err || version != FIRMWARE_STATE_VERSION ||
	    firmware_check_size(len, err, sizeof(err)) || len > rd->len - rd->pos)
		return -EINVAL;
	rd->pos += len;
	if (vm->rom)
		return vm->rom_len == len && !memcmp(vm->rom, bytes, len) ? 0 : -EINVAL;
	if ((r = rom_alloc(vm, len)))
		return r;
	memcpy(vm->rom, bytes, len);
	rom_seal(vm);
	return map_slot(vm);
}

const struct device_ops firmware_device_ops = {
	.name = "firmware",
	.save = firmware_save,
	.load = firmware_load_state,
};
