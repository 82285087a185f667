/* devices.c - attach virtio devices to the VM's transport. */
#include "cvisor/devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/virtio_balloon.h"
#include "cvisor/virtio_blk.h"
#include "cvisor/virtio_net.h"
#include "cvisor/virtio_rng.h"
#include "cvisor/virtio_vsock.h"
#include "cvisor/vm.h"

/* ISA IRQs free on this machine: not the PIT (0), keyboard (1), cascade
 * (2), COM1/COM2 (4/3), RTC (8), SCI (9) or the IDE pair. */
static const uint32_t mmio_gsis[] = { 5, 6, 7, 10, 11, 12, 14, 15 };

bool devices_flag_is_bool(const char *flag)
{
	return !strcmp(flag, "--rng");
}

int devices_parse_flag(struct devices_config *dc, const char *flag, const char *value, char *err,
		       size_t errlen)
{
	if (!strcmp(flag, "--disk")) {
		if (dc->ndisks == DEVICES_MAX_DISKS)
			goto too_many;
		dc->disks[dc->ndisks++] = value;
	} else if (!strcmp(flag, "--net")) {
		if (dc->nnets == DEVICES_MAX_NETS)
			goto too_many;
		dc->nets[dc->nnets++] = value;
	} else if (!strcmp(flag, "--rng")) {
		dc->rng = true;
	} else if (!strcmp(flag, "--balloon")) {
		if (cv_parse_size(value, 1, &dc->balloon_bytes)) {
			snprintf(err, errlen, "--balloon %s: not a size (try 128M)", value);
			return -EINVAL;
		}
		dc->balloon = true;
	} else if (!strcmp(flag, "--vsock")) {
		dc->vsock = value;
	} else if (!strcmp(flag, "--virtio")) {
		if (!strcmp(value, "pci")) {
			dc->transport = VIRTIO_TRANSPORT_PCI;
		} else if (!strcmp(value, "mmio")) {
			dc->transport = VIRTIO_TRANSPORT_MMIO;
		} else {
			snprintf(err, errlen, "--virtio %s: must be pci or mmio", value);
			return -EINVAL;
		}
	} else {
		return 0;
	}
	return 1;
too_many:
	snprintf(err, errlen, "%s: at most %d of them", flag,
		 !strcmp(flag, "--disk") ? DEVICES_MAX_DISKS : DEVICES_MAX_NETS);
	return -EINVAL;
}

int vm_devices_init(struct vm *vm)
{
	irq_router_init(&vm->router, vm->vm_fd);
	/* The host bridge is there with either transport: the DSDT describes
	 * it, and a PC without config space access looks broken to Linux. */
	return pci_bus_init(&vm->pci, &vm->pio, &vm->mmio);
}

int vm_attach_virtio(struct vm *vm, struct vm_virtio *v)
{
	unsigned int i = vm->nvirtio;
	int r;

	if (i == VM_MAX_VIRTIO)
		return -ENOSPC;
	if (vm->devcfg->transport == VIRTIO_TRANSPORT_PCI) {
		r = virtio_pci_attach(&v->t.pci, &v->dev, &vm->pci, &vm->router, &vm->loop);
	} else {
		size_t n = strlen(vm->virtio_cmdline);

		if (i >= ARRAY_SIZE(mmio_gsis))
			return -E2BIG; /* out of free ISA interrupts */
		r = virtio_mmio_attach(&v->t.mmio, &v->dev, &vm->mmio, vm->vm_fd, &vm->loop,
				       VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_STRIDE, mmio_gsis[i]);
		if (!r && n + 64 < sizeof(vm->virtio_cmdline)) {
			vm->virtio_cmdline[n] = n ? ' ' : '\0';
			virtio_mmio_cmdline(&v->t.mmio, vm->virtio_cmdline + n + !!n,
					    sizeof(vm->virtio_cmdline) - n - 1);
		}
	}
	if (r)
		return r;
	vm->virtio[vm->nvirtio++] = v;
	return 0;
}

static struct vm_virtio *new_virtio(void)
{
	struct vm_virtio *v = calloc(1, sizeof(*v));

	if (!v)
		cv_err("out of memory for a device");
	return v;
}

/* Attach v or free it (after its destroy) if attaching fails. */
static int attach_or_drop(struct vm *vm, struct vm_virtio *v)
{
	int r = vm_attach_virtio(vm, v);

	if (r == -E2BIG) {
		cv_err("%s: at most %zu devices with --virtio mmio (use --virtio pci)",
		       v->dev.label, ARRAY_SIZE(mmio_gsis));
		r = -EINVAL; /* the user's configuration: exit status 2 */
	} else if (r) {
		cv_err("%s: cannot attach: %s", v->dev.label, strerror(-r));
	}
	if (r) {
		if (v->destroy)
			v->destroy(&v->dev);
		free(v);
	}
	return r;
}

static int create_disk(struct vm *vm, const char *spec, unsigned int i, bool *usage)
{
	struct virtio_blk_config c;
	struct vm_virtio *v;
	char err[256];
	int r;

	if (virtio_blk_parse(spec, &c, err, sizeof(err))) {
		cv_err("%s", err);
		return -EINVAL;
	}
	if (!(v = new_virtio()))
		return -ENOMEM;
	r = virtio_blk_create(&v->dev, &c, &vm->mem, &vm->loop, &vm->stats.blk_read_bytes,
			      &vm->stats.blk_write_bytes, err, sizeof(err));
	if (r) {
		*usage = true; /* a missing image, or no permission on it */
		cv_err("%s", err);
		virtio_blk_destroy(&v->dev);
		free(v);
		return r;
	}
	snprintf(v->dev.label, sizeof(v->dev.label), "virtio-blk %u", i);
	v->destroy = virtio_blk_destroy;
	return attach_or_drop(vm, v);
}

static int create_net(struct vm *vm, const char *spec, unsigned int i, bool *usage)
{
	struct virtio_net_config c;
	struct vm_virtio *v;
	char err[256];
	int r;

	if (virtio_net_parse(spec, i, &c, err, sizeof(err))) {
		cv_err("%s", err);
		return -EINVAL;
	}
	if (!(v = new_virtio()))
		return -ENOMEM;
	r = virtio_net_create(&v->dev, &c, &vm->mem, &vm->loop, &vm->stats.net_rx_bytes,
			      &vm->stats.net_tx_bytes, err, sizeof(err));
	if (r) {
		*usage = true;
		cv_err("%s", err);
		free(v);
		return r;
	}
	snprintf(v->dev.label, sizeof(v->dev.label), "virtio-net %u", i);
	v->destroy = virtio_net_destroy;
	return attach_or_drop(vm, v);
}

static int create_rng(struct vm *vm)
{
	struct vm_virtio *v = new_virtio();
	int r;

	if (!v)
		return -ENOMEM;
	if ((r = virtio_rng_create(&v->dev, &vm->mem))) {
		cv_err("virtio-rng: %s", strerror(-r));
		free(v);
		return r;
	}
	return attach_or_drop(vm, v);
}

static int create_balloon(struct vm *vm, uint64_t bytes, bool *usage)
{
	struct vm_virtio *v = new_virtio();
	int r;

	if (!v)
		return -ENOMEM;
	if ((r = virtio_balloon_create(&v->dev, &vm->mem, &vm->loop, bytes))) {
		*usage = r == -ERANGE;
		cv_err("--balloon: %s", r == -ERANGE ? "larger than guest memory" : strerror(-r));
		free(v);
		return r;
	}
	v->destroy = virtio_balloon_destroy;
	vm->balloon = &v->dev;
	return attach_or_drop(vm, v);
}

static int create_vsock(struct vm *vm, const char *spec, bool *usage)
{
	struct virtio_vsock_config c;
	struct vm_virtio *v;
	char err[256];
	int r;

	if (virtio_vsock_parse(spec, &c, err, sizeof(err))) {
		cv_err("%s", err);
		return -EINVAL;
	}
	if (!(v = new_virtio()))
		return -ENOMEM;
	if ((r = virtio_vsock_create(&v->dev, &c, &vm->mem, &vm->loop, err, sizeof(err)))) {
		*usage = true;
		cv_err("%s", err);
		free(v);
		return r;
	}
	v->destroy = virtio_vsock_destroy;
	return attach_or_drop(vm, v);
}

int vm_devices_create(struct vm *vm, const struct devices_config *dc, bool *usage)
{
	int r = 0;

	*usage = false;
	for (unsigned int i = 0; !r && i < dc->ndisks; i++)
		if ((r = create_disk(vm, dc->disks[i], i, usage)) == -EINVAL)
			*usage = true;
	for (unsigned int i = 0; !r && i < dc->nnets; i++)
		if ((r = create_net(vm, dc->nets[i], i, usage)) == -EINVAL)
			*usage = true;
	if (!r && dc->rng)
		r = create_rng(vm);
	if (!r && dc->balloon)
		r = create_balloon(vm, dc->balloon_bytes, usage);
	if (!r && dc->vsock)
		r = create_vsock(vm, dc->vsock, usage);
	/* A spec that does not parse, or more devices than the transport takes. */
	if (r == -EINVAL)
		*usage = true;
	return r;
}

const char *vm_devices_cmdline(const struct vm *vm)
{
	return vm->virtio_cmdline;
}

void vm_devices_destroy(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nvirtio; i++) {
		struct vm_virtio *v = vm->virtio[i];

		if (v->destroy)
			v->destroy(&v->dev);
		free(v);
		vm->virtio[i] = NULL;
	}
	vm->nvirtio = 0;
}
