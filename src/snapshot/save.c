/* save.c - a VM's state as snapshot sections (laid out at the top of
 * format.c): the devices a snapshot holds and the quiescing of those with
 * I/O in flight, the CONFIG, MACHINE, KSTATE, VCPU and DEVICE sections, and
 * `cvisor save`'s two files, FILE and FILE.mem (memfile.c), written
 * through temporary names and renamed into place. */
#include "cvisor/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/kvm.h"
#include "cvisor/snapshot_format.h"
#include "cvisor/vcpu_state.h"
#include "cvisor/vm.h"
#include "cvisor/x86.h"

#include "snapshot_priv.h"

int snapshot_devices_quiesce(struct vm *vm, char *err, size_t errlen)
{
	struct device devs[SNAPSHOT_MAX_DEVICES];
	unsigned int n = vm_devices_list(vm, devs, SNAPSHOT_MAX_DEVICES);

	for (unsigned int i = 0; i < n; i++) {
		int r;

		if (!devs[i].ops->quiesce || !(r = devs[i].ops->quiesce(devs[i].dev)))
			continue;
		snprintf(err, errlen, "%s: cannot finish its I/O: %s", devs[i].name, strerror(-r));
		while (i--)
			if (devs[i].ops->resume)
				devs[i].ops->resume(devs[i].dev);
		return r;
	}
	return 0;
}

void snapshot_devices_resume(struct vm *vm)
{
	struct device devs[SNAPSHOT_MAX_DEVICES];
	unsigned int n = vm_devices_list(vm, devs, SNAPSHOT_MAX_DEVICES);

	for (unsigned int i = 0; i < n; i++)
		if (devs[i].ops->resume)
			devs[i].ops->resume(devs[i].dev);
}

/* ---- saving ---- */

/* CONFIG: the canonical JSON config (config.c says why), no NUL, with
 * the devices as they are now (`cvisor set` may have changed them). */
static void save_config(const struct vm *vm, struct state_buf *b)
{
	size_t at = snap_section_begin(b, SNAP_SEC_CONFIG, SNAPSHOT_CONFIG_VERSION);
	struct json_object *o = json_object_new_object();
	const char *text;

	if (!o || config_to_json(vm->cfg, &vm->devcfg, CONFIG_VIEW_SNAPSHOT, o) ||
	    !(text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE)))
		b->err = b->err ? b->err : -ENOMEM;
	else
		state_put_bytes(b, text, strlen(text));
	json_object_put(o);
	snap_section_end(b, at);
}

/* MACHINE: version 3 only where its platform byte is needed (a firmware
 * guest, a multiboot kernel), so that every other guest's snapshot and
 * migration stay readable by a cvisor that reads version 2. */
static void save_machine(struct vm *vm, struct state_buf *b)
{
	unsigned int platform = vm_platform(vm);
	size_t at =
		snap_section_begin(b, SNAP_SEC_MACHINE, platform ? SNAPSHOT_MACHINE_VERSION : 2);
	const struct kvm_cpuid2 *c = vm->cpuid;

	state_put_u64(b, vm->mem.ram_size);
	state_put_u32(b, (uint32_t)sysconf(_SC_PAGESIZE));
	state_put_u32(b, vm->ncpus);
	state_put_u8(b, vm->quirks.active);
	state_put_u32(b, vm->mem.nr);
	for (unsigned int i = 0; i < vm->mem.nr; i++) {
		state_put_u64(b, vm->mem.regions[i].gpa);
		state_put_u64(b, vm->mem.regions[i].size);
		state_put_u64(b, (uint64_t)(vm->mem.regions[i].hva - vm->mem.base));
	}
	state_put_u32(b, c->nent);
	for (unsigned int i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		state_put_u32(b, e->function);
		state_put_u32(b, e->index);
		state_put_u32(b, e->flags);
		state_put_u32(b, e->eax);
		state_put_u32(b, e->ebx);
		state_put_u32(b, e->ecx);
		state_put_u32(b, e->edx);
	}
	state_put_u8(b, vm->shim.area);
	if (platform)
		state_put_u8(b, (uint8_t)platform);
	snap_section_end(b, at);
}

/* DEVICE: u16 name length, the name, the device's own state. */
static int save_device(const struct device *d, struct state_buf *b)
{
	size_t at = snap_section_begin(b, SNAP_SEC_DEVICE, SNAPSHOT_DEVICE_VERSION);
	size_t n = strlen(d->name);
	int r;

	state_put_u16(b, (uint16_t)n);
	state_put_bytes(b, d->name, n);
	r = d->ops->save ? d->ops->save(d->dev, b) : 0;
	snap_section_end(b, at);
	return r ? r : b->err;
}

int snapshot_config_save(struct vm *vm, struct state_buf *b)
{
	save_config(vm, b);
	save_machine(vm, b);
	return b->err;
}

int snapshot_state_save(struct vm *vm, struct state_buf *b)
{
	struct device devs[SNAPSHOT_MAX_DEVICES];
	unsigned int n = vm_devices_list(vm, devs, SNAPSHOT_MAX_DEVICES);
	size_t at;
	int r;

	save_config(vm, b);
	save_machine(vm, b);
	at = snap_section_begin(b, SNAP_SEC_KSTATE, SNAPSHOT_KSTATE_VERSION);
	r = vm_kstate_save(vm, b);
	snap_section_end(b, at);
	for (unsigned int i = 0; !r && i < vm->ncpus; i++) {
		at = snap_section_begin(b, SNAP_SEC_VCPU, SNAPSHOT_VCPU_VERSION);
		state_put_u32(b, i);
		r = vcpu_state_save(&vm->vcpus[i], b);
		snap_section_end(b, at);
	}
	for (unsigned int i = 0; !r && i < n; i++)
		r = save_device(&devs[i], b);
	return r ? r : b->err;
}

/* ---- FILE and FILE.mem ---- */

/* Where a save goes: path and path.mem through temporaries renamed into
 * place (fd < 0), or two files a client opened and passed (a jailed
 * monitor, which sees no host path): fd for FILE and mem_fd for FILE.mem,
 * empty regular files that the client names when the save is done. */
struct save_sink {
	const char *path;
	int fd, mem_fd;
};

static int sink_check(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	return S_ISREG(st.st_mode) && st.st_size == 0 ? 0 : -EINVAL;
}

static int save_to(struct vm *vm, const struct save_sink *k, uint64_t *mem_written, char *err,
		   size_t errlen)
{
	char mem[PATH_MAX];
	struct state_buf b = { 0 };
	struct cv_tmpfile t = { .fd = -1 };
	struct snapshot_mem_digest digest;
	size_t at;
	int r;

	*mem_written = 0;
	/* A reset the guest asked for is done first: its vCPUs are parked
	 * just after asking, a state no restore could finish. */
	vm_reset_run(vm);
	/* A passed tap is this process's: the restore would have no NIC. */
	if ((r = devices_check_portable(&vm->devcfg, err, errlen)))
		return r;
	if ((size_t)snprintf(mem, sizeof(mem), "%s.mem", k->path) >= sizeof(mem)) {
		snprintf(err, errlen, "%s: file name too long", k->path);
		return -ENAMETOOLONG;
	}
	if (k->fd >= 0 && (sink_check(k->fd) || sink_check(k->mem_fd))) {
		snprintf(err, errlen, "%s: the files passed are not empty regular files", k->path);
		return -EINVAL;
	}
	if ((r = snapshot_devices_quiesce(vm, err, errlen)))
		return r;
	if ((r = snapshot_state_save(vm, &b))) {
		snprintf(err, errlen, "saving the guest's state: %s", strerror(-r));
		goto fail;
	}
	/* Both files are written under names nobody can have planted and
	 * renamed into place, FILE.mem last (util.h, cv_tmpfile). */
	if (k->fd < 0)
		r = snapshot_mem_file_write(vm, &t, mem, mem_written, &digest);
	else if (!(r = snapshot_mem_write(&vm->mem, k->mem_fd, mem_written, &digest)))
		r = fsync(k->mem_fd) < 0 ? -errno : 0;
	if (r) {
		snprintf(err, errlen, "%s: %s", mem, strerror(-r));
		goto fail;
	}
	/* MEMFILE: FILE.mem's digest, checked by a restore (format.c). */
	at = snap_section_begin(&b, SNAP_SEC_MEMFILE, SNAPSHOT_MEMFILE_VERSION);
	state_put_u64(&b, digest.pages);
	state_put_u32(&b, digest.crc);
	snap_section_end(&b, at);
	if (k->fd < 0)
		r = snap_file_write(k->path, &b);
	else if (!(r = snap_fd_write(k->fd, &b)))
		r = fsync(k->fd) < 0 ? -errno : 0;
	if (r) {
		snprintf(err, errlen, "%s: %s", k->path, strerror(-r));
		goto fail;
	}
	if (k->fd < 0 && (r = cv_tmpfile_commit(&t, mem))) {
		snprintf(err, errlen, "%s: %s", mem, strerror(-r));
		unlink(k->path);
		goto fail;
	}
	state_buf_free(&b);
	return 0;
fail:
	cv_tmpfile_abort(&t);
	state_buf_free(&b);
	snapshot_devices_resume(vm);
	return r;
}

int snapshot_save(struct vm *vm, const char *path, uint64_t *mem_written, char *err, size_t errlen)
{
	struct save_sink k = { .path = path, .fd = -1, .mem_fd = -1 };

	return save_to(vm, &k, mem_written, err, errlen);
}

int snapshot_save_fds(struct vm *vm, const char *path, int fd, int mem_fd, uint64_t *mem_written,
		      char *err, size_t errlen)
{
	struct save_sink k = { .path = path, .fd = fd, .mem_fd = mem_fd };

	return save_to(vm, &k, mem_written, err, errlen);
}
