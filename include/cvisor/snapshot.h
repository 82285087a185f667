/* snapshot.h - a VM's whole state (but RAM) as snapshot sections, shared
 * by save/restore (src/snapshot/save.c, load.c, memfile.c) and live
 * migration (src/migrate/). The container is in snapshot_format.h; the
 * whole format, sections included, is specified at the top of
 * src/snapshot/format.c.
 *
 * Saving (source):   vm_pause(vm); snapshot_devices_quiesce(vm, ...);
 *                    snapshot_state_save(vm, &buf);  guest RAM separately;
 *                    then either end the guest, or snapshot_devices_resume
 *                    and vm_resume to keep it running.
 * Loading (target):  snapshot_config_load(payload, ...) -> cfg;
 *                    vm_create_restore(vm, &cfg, mem_fd or -1, &e);
 *                    fill RAM if mem_fd was -1;
 *                    snapshot_state_load(vm, payload, ...); vm_start(vm). */
#ifndef CVISOR_SNAPSHOT_H
#define CVISOR_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/state.h"
#include "cvisor/util.h"

struct vm;
struct vm_config;
struct guest_mem;
struct cpu_model;

/* Section versions this cvisor writes (and the newest it reads). */
#define SNAPSHOT_CONFIG_VERSION 2
#define SNAPSHOT_MACHINE_VERSION 3 /* written only for a guest with VM_PLATFORM_* bits */
#define SNAPSHOT_KSTATE_VERSION 1
#define SNAPSHOT_VCPU_VERSION 1
#define SNAPSHOT_DEVICE_VERSION 1
#define SNAPSHOT_MEMFILE_VERSION 1
/* Bounds a loader applies before it allocates or trusts anything. */
#define SNAPSHOT_MAX_STRING 4096
#define SNAPSHOT_MAX_CPUID 256
#define SNAPSHOT_MAX_DEVICES 32

/* Quiesce every device (device_ops quiesce: virtio-blk finishes what
 * was taken from the rings and takes nothing new) so that their state can
 * be saved. Main thread, vCPUs paused. On failure nothing stays quiesced and
 * one line is in err. */
int snapshot_devices_quiesce(struct vm *vm, char *err, size_t errlen) CV_MUST;

/* Undo snapshot_devices_quiesce (a guest that keeps running); also run
 * after a load, for what the guest queued meanwhile. */
void snapshot_devices_resume(struct vm *vm);

/* Append the sections for everything but guest RAM: CONFIG (what is
 * needed to build the same machine again), MACHINE, KSTATE, one VCPU per
 * vCPU, one DEVICE per device. The vCPUs must be paused (vm_pause) and the
 * devices quiesced. 0 or -errno. */
int snapshot_state_save(struct vm *vm, struct state_buf *out) CV_MUST;

/* Append only CONFIG and MACHINE: enough for snapshot_config_load and
 * snapshot_ram_size on the other side (a migration handshake). Needs no
 * pause. 0 or -errno. */
int snapshot_config_save(struct vm *vm, struct state_buf *out) CV_MUST;

/* Read the CONFIG section of a payload into cfg (config_init first; cfg
 * owns copies of the strings until config_free). The name and -d are not
 * part of it. The payload needs CONFIG and MACHINE (every section's id
 * and version is checked). -EINVAL with one line in err. */
int snapshot_config_load(const uint8_t *payload, size_t len, struct vm_config *cfg, char *err,
			 size_t errlen) CV_MUST;

/* The guest RAM size the MACHINE section records (for checking a memory
 * file or stream before the VM is built). -EINVAL with one line in err. */
int snapshot_ram_size(const uint8_t *payload, size_t len, uint64_t *ram_size, char *err,
		      size_t errlen) CV_MUST;

/* Load every other section into a VM built by vm_create_restore from that
 * config (vCPUs created, not started, guest RAM in place): MACHINE (checked
 * against the VM; its CPUID replaces this host's after checking the host
 * has every feature in it), the vCPUs, the in-kernel irqchip, PIT and
 * kvmclock (so guest time continues from the save), then each device by
 * name. Every section is length- and version-checked, unknown sections
 * are refused, counts and names must match the VM. Ends by kicking every
 * live virtqueue, for requests queued while the source was quiesced.
 * -EINVAL (or the -errno KVM gave) with one line in err. */
int snapshot_state_load(struct vm *vm, const uint8_t *payload, size_t len, char *err,
			size_t errlen) CV_MUST;

/* snapshot_state_load for a migration target, whose handshake checked the
 * guest's CPU against this host already (snapshot_cpu_model on the
 * MACHINE section the HELLO carries, the one the state holds too): all
 * of it but that check, so that a target runs the check once. */
int snapshot_state_load_incoming(struct vm *vm, const uint8_t *payload, size_t len, char *err,
				 size_t errlen) CV_MUST;

/* Load a state this same VM saved with snapshot_state_save (the machine
 * before its first instruction, for a reset in place: src/vm_reset.c):
 * the vCPUs, the irqchip, PIT and clock, and every device, but not
 * MACHINE (this VM's CPUID and layout are the ones it was saved with,
 * and KVM refuses new CPUID once a vCPU has run). vCPUs paused, devices
 * reset. -errno with one line in err. */
int snapshot_state_reload(struct vm *vm, const uint8_t *payload, size_t len, char *err,
			  size_t errlen) CV_MUST;

/* The CPU the guest was given: the MACHINE section's CPUID table as a
 * cpu_model (cpu_compat.h), for a migration target to check against this
 * host before it builds anything. -EINVAL with one line in err. */
int snapshot_cpu_model(const uint8_t *payload, size_t len, struct cpu_model *m, char *err,
		       size_t errlen) CV_MUST;

/* ---- files: FILE (save.c, load.c) and FILE.mem (memfile.c) ---- */

/* What FILE records of FILE.mem's data (the MEMFILE section), so that a
 * restore can tell the file it finds from the one saved: the number of
 * pages that are not all zeros and the CRC-32 of each such page's u64 LE
 * offset followed by its bytes, in offset order. Holes and zero pages do
 * not count, so a copy with other holes matches. */
struct snapshot_mem_digest {
	uint64_t pages;
	uint32_t crc;
};

/* Write RAM's image into fd at offsets equal to positions in the RAM
 * mapping, only the pages that may hold data (resident, swapped, or in
 * the memory file a restored guest maps) and are not all zeros, then
 * ftruncate to the full size: untouched memory takes no disk space.
 * *written gets the bytes of data written, *digest their digest. 0 or
 * -errno. */
int snapshot_mem_write(const struct guest_mem *gm, int fd, uint64_t *written,
		       struct snapshot_mem_digest *digest) CV_MUST;

/* The digest of the file open at fd, read through its data extents
 * (SEEK_DATA/SEEK_HOLE). 0 or -errno. */
int snapshot_mem_digest(int fd, struct snapshot_mem_digest *digest) CV_MUST;

/* Save the paused VM to path and path.mem: quiesce the devices, write
 * both (fsync'd, through temporary files renamed into place; nothing is
 * left behind on failure). The devices stay quiesced on success (call
 * snapshot_devices_resume to keep the guest running) and are resumed on
 * failure. One line in err on failure. */
int snapshot_save(struct vm *vm, const char *path, uint64_t *mem_written, char *err,
		  size_t errlen) CV_MUST;

/* snapshot_save into two files a client opened and passed over the
 * control socket (a jailed monitor sees no host path): fd gets FILE and
 * mem_fd FILE.mem; both must be empty regular files, and are fsync'd. The
 * client gives them their names (path is for messages). */
int snapshot_save_fds(struct vm *vm, const char *path, int fd, int mem_fd, uint64_t *mem_written,
		      char *err, size_t errlen) CV_MUST;

/* Open a snapshot for restore: read and check path (header, CRC), its
 * CONFIG into cfg, and open path.mem, which must be a regular file of the
 * RAM size MACHINE records whose data has the digest MEMFILE records
 * (snapshots written before MEMFILE are not checked). *payload is malloc'd (keep it until the state
 * is loaded); *mem_fd is open read-only. -EINVAL for a corrupt, foreign
 * or inconsistent snapshot, -errno otherwise; one line in err. */
int snapshot_open(const char *path, struct vm_config *cfg, uint8_t **payload, size_t *len,
		  int *mem_fd, char *err, size_t errlen) CV_MUST;

/* A restored guest's RAM maps FILE.mem copy-on-write, and whoever may
 * write that file can truncate it under the guest: the pages past the new
 * end are gone, and touching one is SIGBUS for the monitor, EFAULT from
 * KVM_RUN, or a guest that crashes. Take that over for vm (RAM mapped with
 * guest_mem_init_file; one such VM per process): a SIGBUS on its RAM puts
 * a page of zeros where the lost one was (so that the access completes)
 * and stops the guest with VM_STOP_MEMFILE and the line of
 * snapshot_mem_lost, so that the monitor ends it as any other (exit status
 * CV_EXIT_MEMFILE, socket and lock removed). Any other SIGBUS stays
 * fatal. 0 or -errno. */
int snapshot_mem_guard(struct vm *vm) CV_MUST;

/* Whether the memory file vm's RAM maps (snapshot_mem_guard) is now
 * shorter than the RAM or was rewritten: true with the line for the user
 * in msg ("guest memory file X was truncated under the guest"). */
bool snapshot_mem_lost(const struct vm *vm, char *msg, size_t len);

#endif
