/* format.c - the snapshot file format: its specification, and the
 * container (header, sections) that carries it. What each section holds
 * is written by save.c and read back by load.c; guest RAM goes to a file
 * of its own (memfile.c).
 *
 * FILE, all integers little-endian:
 *
 *   header (32 bytes)
 *     0   u8[8]  magic "CVISNAP\0"
 *     8   u16    major (1)   a reader refuses any other major
 *     10  u16    minor (1)   a reader takes minors up to its own (1.1 adds
 *                            MEMFILE; 1.0 files, without it, still load)
 *     12  u32    header size (32)
 *     16  u64    payload length (at most 64 MiB)
 *     24  u32    CRC-32 of the payload (crc32.h)
 *     28  u32    CRC-32 of header bytes 0..27
 *   payload: sections, one after another
 *     0   u32    id (enum snap_section_id)
 *     4   u16    section version (each component versions its own)
 *     6   u16    flags (0)
 *     8   u64    length of the data that follows
 *     16  data   the component's explicit LE fields (state.h)
 *
 * SECTIONS. Every section's data is explicit little-endian fixed-width
 * fields. "str" is u8 present (0/1), u16 length (<= 4096), that many bytes
 * (no NUL). The payload holds, in this order:
 *
 * CONFIG  (id 5, version 2): what is needed to build the same machine:
 *   the canonical JSON config (no NUL), in the config file's form, as
 *   config.c's field table and the device table write it (config_to_json,
 *   CONFIG_VIEW_SNAPSHOT) and read it back (config_apply_json): kernel,
 *   firmware, initrd, module, cmdline, cpu_affinity (for `info` and a
 *   later save: a restore reads no kernel, module or firmware file),
 *   memory, cpus, emulated_host, pit, irqchip, serial, on_reboot (a
 *   restored guest's reset then says why it ends), cpu_weight, cpu_cap,
 *   memory_limit, virtio, and each device key ("disk": [specs with absolute paths],
 *   "net": [...], "rng": true, "balloon": "SIZE", "vsock": "SPEC"); sizes
 *   as exact strings ("512M", "16388K"), unset fields left out (their
 *   defaults), never the name or -d. A key added to the tables needs no
 *   new version: an older file without it gets the default.
 *   Version 1 (still read): u64 mem_size, u32 ncpus, u8 emulated_host
 *   (0 auto, 1 on, 2 off), u32 cpu_weight, u32 cpu_cap, u64 memory_limit,
 *   str kernel, str initrd, str cmdline, str cpu_affinity,
 *   u8 transport (0 pci, 1 mmio), u8 rng, u8 balloon, u64 balloon_bytes,
 *   str vsock, u32 ndisks + ndisks x str (--disk spec, absolute path),
 *   u32 nnets + nnets x str (--net spec).
 * MACHINE (id 1, version 3): the machine as built, checked on load
 *   u64 ram_size, u32 page_size, u32 ncpus, u8 quirks_active,
 *   u32 nregions + nregions x (u64 gpa, u64 size, u64 offset of the region
 *   in the RAM mapping = in FILE.mem),
 *   u32 ncpuid + ncpuid x (u32 function, index, flags, eax, ebx, ecx, edx):
 *   the CPUID table the guest was given (before per-vCPU topology). The
 *   loader refuses a host whose CPU lacks any of its feature bits (leaves
 *   1, 7, 0xd, 0x80000001) or has another vendor (cpu_compat.h; a
 *   migration target checks at its handshake instead), and gives the guest
 *   this table rather than the new host's.
 *   Version 2 adds, last: u8 syscall_shim_area (1: the guest's E820
 *   reserves the syscall shim's pages, syscall_shim.h; version 1: 0).
 *   Version 3 adds, last: u8 platform (VM_PLATFORM_* in vm.h: 1 fw_cfg,
 *   2 isa-debug-exit, 4 a firmware image; src/vm_platform.c), what the
 *   guest has beyond the machine every guest gets, which a restore adds
 *   before the devices' state loads. It must agree with CONFIG (firmware:
 *   1|4; a multiboot kernel: 1|2). Written only when it is not 0, so that
 *   every other guest's MACHINE stays version 2, which older readers
 *   take; versions 1 and 2 read as 0.
 * KSTATE  (id 2, version 1): PIC, IOAPIC, PIT, kvmclock (vcpu_state.c).
 * VCPU    (id 3, version 1) x ncpus: u32 index, then the vCPU state
 *   (vcpu_state.c: registers, XSAVE, LAPIC, MSRs with IA32_TSC, events).
 * DEVICE  (id 4, version 1) x every device: u16 name length, the name,
 *   then the device's own versioned state (its device_ops save, device.h;
 *   the list is vm_devices_list in src/devices.c). Names: serial8250,
 *   i8042, rtc, acpi_pm (src/dev), pci (u32 version 1, u32 config
 *   address, the host bridge's 256 config bytes; virtio-pci machines only),
 *   fw_cfg (with MACHINE platform bit 1; src/dev/fw_cfg.c: u32 version 1,
 *   u16 selector, u32 offset, u32 nfiles + nfiles x (u16 length, name),
 *   u32 nitems + nitems x (u16 key, u32 length, bytes), the directory
 *   rebuilt from the names on load), firmware (a --firmware guest;
 *   src/boot/firmware.c: u32 version 1, u32 length, the image's bytes,
 *   mapped read-only at 4 GiB - length by the restore, so that neither a
 *   restore nor a migration target needs the file; its copy below 1 MiB
 *   is RAM),
 *   and each virtio device by the device table's label ("virtio-blk 0",
 *   "virtio-net 0", "virtio-rng", "virtio-balloon", "virtio-vsock"): u8
 *   transport (0 pci, 1 mmio), the transport's state (virtio_pci_save /
 *   virtio_mmio_save), then virtio_dev_save (common part, queues, the
 *   device's own).
 * MEMFILE (id 6, version 1; format 1.1, last, written by `cvisor save`
 *   only: a migration has no FILE.mem): u64 pages, u32 crc: FILE.mem's
 *   digest (struct snapshot_mem_digest): the number of its pages that are
 *   not all zeros, and the CRC-32 over each of them, in offset order, of
 *   its u64 offset then its bytes. A restore reads FILE.mem's data extents
 *   (SEEK_DATA) and refuses a file whose digest differs, such as a
 *   right-sized file of zeros; a snapshot without MEMFILE is not checked.
 *
 * Loading checks every section's version (this cvisor reads version 1 of
 * each, 1 to 3 of MACHINE and 1 and 2 of CONFIG), that each is consumed exactly, and that
 * counts and names match the VM built from CONFIG. Unknown section ids are
 * refused, never skipped: a writer that adds one raises the container's
 * minor version, which older readers refuse anyway, so an unknown id means
 * a damaged or foreign file. When a layout changes, its section version
 * goes up, the loader keeps reading the old one, and a snapshot in the old
 * format is added under tests/data/ (see tests/data/README.md).
 *
 * FILE.mem: guest RAM as a sparse image: byte N of the RAM mapping
 * (regions in the order and at the offsets MACHINE lists) is byte N of the
 * file, pages that hold no data are holes, and the file's size is the RAM
 * size, so that untouched pages take no space and a restore can map it
 * copy-on-write. */
#include "cvisor/snapshot_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/crc32.h"

#define SECTION_HEAD 16

size_t snap_section_begin(struct state_buf *b, uint32_t id, uint16_t version)
{
	size_t at = b->len;

	state_put_u32(b, id);
	state_put_u16(b, version);
	state_put_u16(b, 0);
	state_put_u64(b, 0); /* filled by snap_section_end */
	return at;
}

void snap_section_end(struct state_buf *b, size_t at)
{
	if (b->err || at + SECTION_HEAD > b->len)
		return;
	cv_put_le(b->data + at + 8, b->len - at - SECTION_HEAD, 8);
}

int snap_parse(const uint8_t *f, size_t flen, const uint8_t **payload, size_t *len, char *err,
	       size_t errlen)
{
	uint64_t plen;

	if (flen < SNAP_HEADER_SIZE || memcmp(f, SNAP_MAGIC, 8))
		return cv_errf(err, errlen, -EINVAL, "not a cvisor snapshot (bad magic)");
	if (cv_get_le(f + 28, 4) != cv_crc32(0, f, 28))
		return cv_errf(err, errlen, -EINVAL,
			       "snapshot header is corrupt (checksum mismatch)");
	if (cv_get_le(f + 8, 2) != SNAP_MAJOR || cv_get_le(f + 10, 2) > SNAP_MINOR)
		return cv_errf(
			err, errlen, -EINVAL,
			"snapshot format %u.%u is not supported (this cvisor reads %u.0-%u.%u)",
			(unsigned int)cv_get_le(f + 8, 2), (unsigned int)cv_get_le(f + 10, 2),
			SNAP_MAJOR, SNAP_MAJOR, SNAP_MINOR);
	plen = cv_get_le(f + 16, 8);
	if (cv_get_le(f + 12, 4) != SNAP_HEADER_SIZE || plen > SNAP_MAX_PAYLOAD)
		return cv_errf(err, errlen, -EINVAL, "snapshot header is corrupt (sizes)");
	if (plen > flen - SNAP_HEADER_SIZE)
		return cv_errf(err, errlen, -EINVAL, "snapshot is truncated (%zu of %llu bytes)",
			       flen - SNAP_HEADER_SIZE, (unsigned long long)plen);
	if (cv_get_le(f + 24, 4) != cv_crc32(0, f + SNAP_HEADER_SIZE, plen))
		return cv_errf(err, errlen, -EINVAL,
			       "snapshot is corrupt (payload checksum mismatch)");
	*payload = f + SNAP_HEADER_SIZE;
	*len = plen;
	return 0;
}

int snap_next_section(const uint8_t *p, size_t len, size_t *pos, struct snap_section *s)
{
	uint64_t dlen;

	if (*pos == len)
		return 0;
	if (len - *pos < SECTION_HEAD)
		return -EINVAL;
	dlen = cv_get_le(p + *pos + 8, 8);
	if (dlen > len - *pos - SECTION_HEAD)
		return -EINVAL;
	s->id = (uint32_t)cv_get_le(p + *pos, 4);
	s->version = (uint16_t)cv_get_le(p + *pos + 4, 2);
	s->data = p + *pos + SECTION_HEAD;
	s->len = dlen;
	*pos += SECTION_HEAD + dlen;
	return 1;
}

int snap_fd_write(int fd, const struct state_buf *payload)
{
	uint8_t h[SNAP_HEADER_SIZE] = { 0 };
	int r;

	if (payload->err)
		return payload->err;
	if (payload->len > SNAP_MAX_PAYLOAD)
		return -EFBIG;
	memcpy(h, SNAP_MAGIC, 8);
	cv_put_le(h + 8, SNAP_MAJOR, 2);
	cv_put_le(h + 10, SNAP_MINOR, 2);
	cv_put_le(h + 12, SNAP_HEADER_SIZE, 4);
	cv_put_le(h + 16, payload->len, 8);
	cv_put_le(h + 24, cv_crc32(0, payload->data, payload->len), 4);
	cv_put_le(h + 28, cv_crc32(0, h, 28), 4);
	if ((r = cv_write_all(fd, h, sizeof(h))) ||
	    (r = cv_write_all(fd, payload->data, payload->len)))
		return r;
	return 0;
}

int snap_file_write(const char *path, const struct state_buf *payload)
{
	struct cv_tmpfile t;
	int r;

	/* Not FILE.tmp: a name someone may have planted (util.h). */
	if ((r = cv_tmpfile_open(&t, path)))
		return r;
	if ((r = snap_fd_write(t.fd, payload))) {
		cv_tmpfile_abort(&t);
		return r;
	}
	if ((r = cv_tmpfile_commit(&t, path)))
		cv_tmpfile_abort(&t);
	return r;
}

int snap_file_read(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	const uint8_t *payload;
	uint8_t *buf;
	ssize_t got;
	const char *why;
	int fd, r = cv_open_regular(path, O_RDONLY, CV_OPEN_NONEMPTY, &fd, &st, &why);

	if (r)
		return cv_errf(err, errlen, r, "%s: %s", path, why);
	if ((uint64_t)st.st_size > SNAP_MAX_PAYLOAD + SNAP_HEADER_SIZE) {
		close(fd);
		return cv_errf(err, errlen, -EINVAL, "%s: not a snapshot file", path);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return cv_errf(err, errlen, -ENOMEM, "%s: out of memory", path);
	}
	got = pread(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (got != st.st_size) {
		free(buf);
		return cv_errf(err, errlen, -EIO, "%s: short read", path);
	}
	r = snap_parse(buf, (size_t)got, &payload, len, err, errlen);
	if (r) {
		free(buf);
		return r;
	}
	memmove(buf, payload, *len);
	*out = buf;
	return 0;
}
