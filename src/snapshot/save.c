/* save.c - a VM's state as snapshot sections (laid out at the top of
 * format.c): the devices a snapshot holds and the quiescing of those with
 * I/O in flight, the CONFIG, MACHINE, KSTATE, VCPU and DEVICE sections, and
 * `cvisor save`'s two files, FILE and FILE.mem (memfile.c), written
 * through temporary names and renamed into place. */
#include "cvisor/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/kvm.h"
#include "cvisor/snapshot_format.h"
#include "cvisor/vcpu_state.h"
#include "cvisor/virtio_blk.h"
#include "cvisor/vm.h"
#include "cvisor/x86.h"

#include "snapshot_priv.h"

/* Every device whose state a snapshot holds, in a fixed order. */
unsigned int snapshot_list_devices(struct vm *vm, struct snap_dev *d)
{
	unsigned int n = 0;

	d[n++] =
		(struct snap_dev){ "serial8250", DEV_OPS, &serial8250_device_ops, &vm->uart, NULL };
	d[n++] = (struct snap_dev){ "i8042", DEV_OPS, &i8042_device_ops, &vm->kbd, NULL };
	d[n++] = (struct snap_dev){ "rtc", DEV_OPS, &rtc_device_ops, &vm->rtc, NULL };
	d[n++] = (struct snap_dev){ "acpi_pm", DEV_OPS, &acpi_pm_device_ops, &vm->pm, NULL };
	if (vm->devcfg->transport == VIRTIO_TRANSPORT_PCI)
		d[n++] = (struct snap_dev){ "pci", DEV_PCI_BUS, NULL, &vm->pci, NULL };
	for (unsigned int i = 0; i < vm->nvirtio; i++)
		d[n++] = (struct snap_dev){ vm->virtio[i]->dev.label, DEV_VIRTIO, NULL, NULL,
					    vm->virtio[i] };
	return n;
}

static bool is_blk(const struct vm_virtio *v)
{
	return v->dev.ops->device_id == VIRTIO_ID_BLOCK;
}

int snapshot_devices_quiesce(struct vm *vm, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < vm->nvirtio; i++) {
		int r;

		if (!is_blk(vm->virtio[i]) || !(r = virtio_blk_quiesce(&vm->virtio[i]->dev)))
			continue;
		snprintf(err, errlen, "%s: cannot finish its I/O: %s", vm->virtio[i]->dev.label,
			 strerror(-r));
		while (i--)
			if (is_blk(vm->virtio[i]))
				virtio_blk_resume(&vm->virtio[i]->dev);
		return r;
	}
	return 0;
}

void snapshot_devices_resume(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nvirtio; i++)
		if (is_blk(vm->virtio[i]))
			virtio_blk_resume(&vm->virtio[i]->dev);
}

/* ---- saving ---- */

static void put_str(struct state_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n > SNAPSHOT_MAX_STRING) {
		b->err = -ENAMETOOLONG;
		return;
	}
	state_put_u8(b, s != NULL);
	state_put_u16(b, (uint16_t)n);
	state_put_bytes(b, s, n);
}

static void save_config(const struct vm_config *c, struct state_buf *b)
{
	const struct devices_config *dc = &c->devices;
	size_t at = snap_section_begin(b, SNAP_SEC_CONFIG, SNAPSHOT_CONFIG_VERSION);

	state_put_u64(b, c->mem_size);
	state_put_u32(b, c->ncpus);
	state_put_u8(b, (uint8_t)c->quirks);
	state_put_u32(b, c->cpu_weight);
	state_put_u32(b, c->cpu_cap);
	state_put_u64(b, c->memory_limit);
	put_str(b, c->kernel);
	put_str(b, c->initrd);
	put_str(b, c->cmdline);
	put_str(b, c->cpu_affinity);
	state_put_u8(b, dc->transport == VIRTIO_TRANSPORT_MMIO);
	state_put_u8(b, dc->rng);
	state_put_u8(b, dc->balloon);
	state_put_u64(b, dc->balloon_bytes);
	put_str(b, dc->vsock);
	state_put_u32(b, dc->ndisks);
	for (unsigned int i = 0; i < dc->ndisks; i++)
		put_str(b, dc->disks[i]);
	state_put_u32(b, dc->nnets);
	for (unsigned int i = 0; i < dc->nnets; i++)
		put_str(b, dc->nets[i]);
	snap_section_end(b, at);
}

static void save_machine(struct vm *vm, struct state_buf *b)
{
	size_t at = snap_section_begin(b, SNAP_SEC_MACHINE, SNAPSHOT_MACHINE_VERSION);
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
	snap_section_end(b, at);
}

static int save_pci_bus(struct pci_bus *pb, struct state_buf *b)
{
	pthread_mutex_lock(&pb->lock);
	state_put_u32(b, PCI_BUS_STATE_VERSION);
	state_put_u32(b, pb->config_addr);
	state_put_bytes(b, pb->host_bridge.cfg, PCI_CFG_SIZE);
	pthread_mutex_unlock(&pb->lock);
	return b->err;
}

static int save_device(struct vm *vm, const struct snap_dev *d, struct state_buf *b)
{
	size_t at = snap_section_begin(b, SNAP_SEC_DEVICE, SNAPSHOT_DEVICE_VERSION);
	size_t n = strlen(d->name);
	bool pci = vm->devcfg->transport == VIRTIO_TRANSPORT_PCI;
	int r;

	state_put_u16(b, (uint16_t)n);
	state_put_bytes(b, d->name, n);
	if (d->kind == DEV_OPS) {
		r = d->ops->save(d->dev, b);
	} else if (d->kind == DEV_PCI_BUS) {
		r = save_pci_bus(d->dev, b);
	} else {
		state_put_u8(b, !pci);
		r = pci ? virtio_pci_save(&d->v->t.pci, b) : virtio_mmio_save(&d->v->t.mmio, b);
		if (!r)
			r = virtio_dev_save(&d->v->dev, b);
	}
	snap_section_end(b, at);
	return r ? r : b->err;
}

int snapshot_config_save(struct vm *vm, struct state_buf *b)
{
	save_config(vm->cfg, b);
	save_machine(vm, b);
	return b->err;
}

int snapshot_state_save(struct vm *vm, struct state_buf *b)
{
	struct snap_dev devs[SNAPSHOT_MAX_DEVICES];
	unsigned int n = snapshot_list_devices(vm, devs);
	size_t at;
	int r;

	save_config(vm->cfg, b);
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
		r = save_device(vm, &devs[i], b);
	return r ? r : b->err;
}

/* ---- FILE and FILE.mem ---- */

/* Make the renames durable too. */
static void sync_dir(const char *path)
{
	char copy[PATH_MAX];
	int fd;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0)
			cv_debug("fsync of the directory of %s: %s", path, strerror(errno));
		close(fd);
	}
}

int snapshot_save(struct vm *vm, const char *path, uint64_t *mem_written, char *err, size_t errlen)
{
	char mem[PATH_MAX], tmp[PATH_MAX];
	struct state_buf b = { 0 };
	int r;

	*mem_written = 0;
	if ((size_t)snprintf(mem, sizeof(mem), "%s.mem", path) >= sizeof(mem) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.mem.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: file name too long", path);
		return -ENAMETOOLONG;
	}
	if ((r = snapshot_devices_quiesce(vm, err, errlen)))
		return r;
	if ((r = snapshot_state_save(vm, &b))) {
		snprintf(err, errlen, "saving the guest's state: %s", strerror(-r));
		goto fail;
	}
	if ((r = snapshot_mem_file_write(vm, tmp, mem_written))) {
		snprintf(err, errlen, "%s: %s", mem, strerror(-r));
		goto fail;
	}
	if ((r = snap_file_write(path, &b))) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto fail;
	}
	if (rename(tmp, mem) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", mem, strerror(errno));
		unlink(path);
		goto fail;
	}
	sync_dir(path);
	state_buf_free(&b);
	return 0;
fail:
	unlink(tmp);
	state_buf_free(&b);
	snapshot_devices_resume(vm);
	return r;
}
