/* devices.c - the device table, and the VM's devices built from it:
 * created in table order, attached to the transport, listed for the
 * snapshot code behind one interface (device.h). */
#include "cvisor/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/firmware.h"
#include "cvisor/fw_cfg.h"
#include "cvisor/virtio_balloon.h"
#include "cvisor/virtio_blk.h"
#include "cvisor/virtio_console.h"
#include "cvisor/virtio_net.h"
#include "cvisor/virtio_rng.h"
#include "cvisor/virtio_vsock.h"
#include "cvisor/vm.h"

/* The device table: one row per device type, in creation order (which
 * also fixes PCI slots and mmio addresses, so a restore rebuilds the same
 * machine). A row's create lives in the device's own file. */
static const struct device_type device_table[] = {
	/* key  value syntax (usage)  max  size_value  path  label  check  create
	 * rate limits */
	{ "disk", "PATH[,readonly][,serial=ID][,bw=RATE][,iops=N]", 8, false, true, "virtio-blk",
	  NULL, virtio_blk_device_create, virtio_blk_rate_keys, ARRAY_SIZE(virtio_blk_rate_keys) },
	{ "net", "user[,...]|tap=NAME[,rx-bw=RATE][,tx-bw=RATE]", 4, false, false, "virtio-net",
	  NULL, virtio_net_device_create, virtio_net_rate_keys, ARRAY_SIZE(virtio_net_rate_keys) },
	{ "rng", NULL, 1, false, false, "virtio-rng", NULL, virtio_rng_device_create, NULL, 0 },
	{ "balloon", "SIZE", 1, true, false, "virtio-balloon", virtio_balloon_check,
	  virtio_balloon_device_create, NULL, 0 },
	{ "vsock", "CID[,uds=PATH]", 1, false, false, "virtio-vsock", NULL,
	  virtio_vsock_device_create, NULL, 0 },
	{ "console", "pty", 1, false, false, "virtio-console", virtio_console_check,
	  virtio_console_device_create, NULL, 0 },
};

/* ISA IRQs free on this machine: not the PIT (0), keyboard (1), cascade
 * (2), COM1/COM2 (4/3), RTC (8), SCI (9) or the IDE pair. */
static const uint32_t mmio_gsis[] = { 5, 6, 7, 10, 11, 12, 14, 15 };

/* ---- what the user asked for ---- */

const struct device_type *devices_table(unsigned int *n)
{
	*n = ARRAY_SIZE(device_table);
	return device_table;
}

const struct device_type *devices_type(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(device_table); i++)
		if (!strcmp(device_table[i].key, key))
			return &device_table[i];
	return NULL;
}

const struct device_type *devices_type_of(const char *name, unsigned int *index)
{
	for (size_t i = 0; i < ARRAY_SIZE(device_table); i++) {
		size_t k = strlen(device_table[i].key);
		uint64_t v;

		if (!strncmp(name, device_table[i].key, k) &&
		    !cv_parse_uint(name + k, 0, device_table[i].max - 1, &v)) {
			*index = (unsigned int)v;
			return &device_table[i];
		}
	}
	return NULL;
}

unsigned int devices_count(const struct devices_config *dc, const struct device_type *t)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < dc->n; i++)
		n += dc->dev[i].type == t;
	return n;
}

/* Which of its type the spec in slot i is (the index in "net1"). */
static unsigned int devices_count_before(const struct devices_config *dc, unsigned int i)
{
	unsigned int n = 0;

	for (unsigned int k = 0; k < i; k++)
		n += dc->dev[k].type == dc->dev[i].type;
	return n;
}

/* The slot of the i-th spec of type t, or NULL. */
static struct device_spec *find_spec(const struct devices_config *dc, const struct device_type *t,
				     unsigned int i)
{
	for (unsigned int k = 0; k < dc->n; k++)
		if (dc->dev[k].type == t && !i--)
			return (struct device_spec *)&dc->dev[k];
	return NULL;
}

const char *devices_spec(const struct devices_config *dc, const struct device_type *t,
			 unsigned int i)
{
	struct device_spec *s = find_spec(dc, t, i);

	return s ? s->spec : NULL;
}

int devices_set_spec(struct devices_config *dc, const struct device_type *t, unsigned int i,
		     const char *spec)
{
	struct device_spec *s = find_spec(dc, t, i);
	char *copy;

	if (!s)
		return -ENOENT;
	if (!(copy = strdup(spec)))
		return -ENOMEM;
	free(s->spec);
	s->spec = copy;
	return 0;
}

int devices_add_fd(struct devices_config *dc, const struct device_type *t, const char *what,
		   const char *spec, int fd, struct cv_error *e)
{
	unsigned int have = devices_count(dc, t);
	int r;

	if (t->check && (r = t->check(what, spec, e)))
		goto fail;
	if (t->max == 1 && have && fd < 0)
		return devices_set_spec(dc, t, 0, spec)
			       ? cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory")
			       : 0;
	r = -EINVAL;
	if (have == t->max) {
		cv_fail(e, CV_EXIT_USAGE, r, "%s: at most %u of them", what, t->max);
		goto fail;
	}
	if (dc->n == VM_MAX_VIRTIO) {
		cv_fail(e, CV_EXIT_USAGE, r, "%s: at most %d devices", what, VM_MAX_VIRTIO);
		goto fail;
	}
	if (!(dc->dev[dc->n].spec = strdup(spec))) {
		r = cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
		goto fail;
	}
	dc->dev[dc->n].fd = fd;
	dc->dev[dc->n++].type = t;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return r;
}

int devices_add(struct devices_config *dc, const struct device_type *t, const char *what,
		const char *spec, struct cv_error *e)
{
	return devices_add_fd(dc, t, what, spec, -1, e);
}

int devices_order(const struct devices_config *dc, const struct device_type *t, unsigned int index)
{
	int at = 0;

	if (index >= devices_count(dc, t))
		return -1;
	for (size_t k = 0; &device_table[k] != t; k++)
		at += (int)devices_count(dc, &device_table[k]);
	return at + (int)index;
}

int devices_check_portable(const struct devices_config *dc, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < dc->n; i++) {
		const struct device_type *t = dc->dev[i].type;

		if (dc->dev[i].fd < 0)
			continue;
		return cv_errf(
			err, errlen, -ENOTSUP,
			"%s %s%u runs on a file descriptor passed to this process (vm.add-net), "
			"which a snapshot or a migration cannot carry",
			t->label, t->key, devices_count_before(dc, i));
	}
	return 0;
}

int devices_config_copy(struct devices_config *dst, const struct devices_config *src)
{
	dst->transport = src->transport;
	dst->n = 0;
	for (unsigned int i = 0; i < src->n; i++) {
		int fd = -1;

		if (src->dev[i].fd >= 0 && (fd = fcntl(src->dev[i].fd, F_DUPFD_CLOEXEC, 3)) < 0) {
			int r = -errno;

			devices_config_free(dst);
			return r;
		}
		if (!(dst->dev[i].spec = strdup(src->dev[i].spec))) {
			if (fd >= 0)
				close(fd);
			devices_config_free(dst);
			return -ENOMEM;
		}
		dst->dev[i].type = src->dev[i].type;
		dst->dev[i].fd = fd;
		dst->n++;
	}
	return 0;
}

void devices_config_free(struct devices_config *dc)
{
	for (unsigned int i = 0; i < dc->n; i++) {
		free(dc->dev[i].spec);
		if (dc->dev[i].fd >= 0)
			close(dc->dev[i].fd);
		dc->dev[i].fd = -1;
	}
	dc->n = 0;
}

/* ---- the devices of a VM ---- */

int vm_devices_init(struct vm *vm)
{
	irq_router_init(&vm->router, vm->vm_fd, vm->cfg->irqchip == CONFIG_IRQCHIP_SPLIT);
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
	v->mmio = vm->devcfg.transport == VIRTIO_TRANSPORT_MMIO;
	if (!v->mmio) {
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

static void virtio_destroy(void *opaque)
{
	struct vm_virtio *v = opaque;

	/* The transport first: no kick reaches the device after this. */
	if (v->mmio)
		virtio_mmio_detach(&v->t.mmio);
	else
		virtio_pci_detach(&v->t.pci);
	if (v->dev.ops && v->dev.ops->destroy)
		v->dev.ops->destroy(&v->dev);
	free(v);
}

/* Create the index-th device of type t and attach it. */
static int create_one(struct vm *vm, const struct device_type *t, const struct device_spec *ds,
		      unsigned int index, struct cv_error *e)
{
	const struct virtio_env env = { &vm->mem, &vm->loop, &vm->stats, ds->fd };
	const char *spec = ds->spec;
	struct vm_virtio *v = calloc(1, sizeof(*v));
	int r;

	if (!v)
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "%s: out of memory", t->label);
	if ((r = t->create(&v->dev, spec, index, &env, e))) {
		free(v);
		return r;
	}
	v->type = t;
	v->index = index;
	if (t->max > 1)
		snprintf(v->dev.label, sizeof(v->dev.label), "%s %u", t->label, index);
	else
		snprintf(v->dev.label, sizeof(v->dev.label), "%s", t->label);
	r = vm_attach_virtio(vm, v);
	if (r == -E2BIG)
		r = cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			    "%s: at most %zu devices with --virtio mmio (use --virtio pci)",
			    v->dev.label, ARRAY_SIZE(mmio_gsis));
	else if (r)
		r = cv_fail(e, CV_EXIT_FAIL, r, "%s: cannot attach: %s", v->dev.label,
			    strerror(-r));
	if (r) {
		virtio_destroy(v);
		return r;
	}
	/* The control socket's `balloon` verb drives it from here. */
	if (v->dev.ops->device_id == VIRTIO_ID_BALLOON)
		vm->balloon = &v->dev;
	return 0;
}

int vm_devices_create(struct vm *vm, const struct devices_config *dc, struct cv_error *e)
{
	int r;

	for (size_t t = 0; t < ARRAY_SIZE(device_table); t++) {
		const struct device_type *type = &device_table[t];
		const struct device_spec *ds;

		for (unsigned int i = 0; (ds = find_spec(dc, type, i)); i++)
			if ((r = create_one(vm, type, ds, i, e)))
				return r;
	}
	return 0;
}

struct vm_virtio *vm_device_find(struct vm *vm, const char *name)
{
	unsigned int index;
	const struct device_type *t = devices_type_of(name, &index);

	for (unsigned int i = 0; t && i < vm->nvirtio; i++)
		if (vm->virtio[i]->type == t && vm->virtio[i]->index == index)
			return vm->virtio[i];
	return NULL;
}

const char *vm_devices_cmdline(const struct vm *vm)
{
	return vm->virtio_cmdline;
}

void vm_devices_destroy(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->nvirtio; i++) {
		virtio_destroy(vm->virtio[i]);
		vm->virtio[i] = NULL;
	}
	vm->nvirtio = 0;
}

/* ---- one interface for the snapshot code ---- */

/* A virtio device's state: u8 transport (0 pci, 1 mmio), the transport's
 * state, then the virtio core's (common part, queues, the model's own). */
static int virtio_save(void *opaque, struct state_buf *b)
{
	struct vm_virtio *v = opaque;
	int r;

	state_put_u8(b, v->mmio);
	r = v->mmio ? virtio_mmio_save(&v->t.mmio, b) : virtio_pci_save(&v->t.pci, b);
	return r ? r : virtio_dev_save(&v->dev, b);
}

static int virtio_load(void *opaque, struct state_rd *rd)
{
	struct vm_virtio *v = opaque;
	int r;

	if (state_get_u8(rd) != v->mmio)
		return -EINVAL;
	r = v->mmio ? virtio_mmio_load(&v->t.mmio, rd) : virtio_pci_load(&v->t.pci, rd);
	return r ? r : virtio_dev_load(&v->dev, rd);
}

static int virtio_quiesce(void *opaque)
{
	struct vm_virtio *v = opaque;

	return v->dev.ops->quiesce ? v->dev.ops->quiesce(&v->dev) : 0;
}

/* After a quiesce, and after a load: the guest may have queued requests
 * meanwhile, kicked while the device took none, or kicked on the source
 * of a migration; look at every live queue. */
static void virtio_resume(void *opaque)
{
	struct virtio_dev *d = &((struct vm_virtio *)opaque)->dev;

	if (d->ops->resume)
		d->ops->resume(d);
	for (unsigned int q = 0; d->active && q < d->ops->num_queues; q++)
		if (d->vqs[q].ready)
			virtio_dev_notify(d, q);
}

/* A reset of the machine (src/vm_reset.c): what a driver's status write
 * of 0 does (the device model's backends stopped, the queues dropped). */
static void virtio_reset(void *opaque)
{
	struct virtio_dev *d = &((struct vm_virtio *)opaque)->dev;

	pthread_mutex_lock(&d->lock);
	virtio_dev_set_status(d, 0);
	pthread_mutex_unlock(&d->lock);
}

static const struct device_ops virtio_device_ops = {
	.name = "virtio",
	.reset = virtio_reset,
	.quiesce = virtio_quiesce,
	.resume = virtio_resume,
	.save = virtio_save,
	.load = virtio_load,
	.destroy = virtio_destroy,
};

#define PCI_BUS_STATE_VERSION 1

/* The host bridge: u32 version, u32 config address, its config space. */
static int pci_bus_save(void *opaque, struct state_buf *b)
{
	struct pci_bus *pb = opaque;

	pthread_mutex_lock(&pb->lock);
	state_put_u32(b, PCI_BUS_STATE_VERSION);
	state_put_u32(b, pb->config_addr);
	state_put_bytes(b, pb->host_bridge.cfg, PCI_CFG_SIZE);
	pthread_mutex_unlock(&pb->lock);
	return b->err;
}

static int pci_bus_load(void *opaque, struct state_rd *rd)
{
	struct pci_bus *pb = opaque;
	uint8_t cfg[PCI_CFG_SIZE];
	uint32_t version = state_get_u32(rd), addr = state_get_u32(rd);

	state_get_bytes(rd, cfg, sizeof(cfg));
	if (rd->err || version != PCI_BUS_STATE_VERSION)
		return -EINVAL;
	/* Only the bits the guest may write can differ. */
	for (unsigned int i = 0; i < PCI_CFG_SIZE; i++)
		if ((cfg[i] ^ pb->host_bridge.cfg[i]) & ~pb->host_bridge.wmask[i])
			return -EINVAL;
	pthread_mutex_lock(&pb->lock);
	pb->config_addr = addr;
	memcpy(pb->host_bridge.cfg, cfg, sizeof(cfg));
	pthread_mutex_unlock(&pb->lock);
	return 0;
}

static const struct device_ops pci_bus_device_ops = {
	.name = "pci",
	.save = pci_bus_save,
	.load = pci_bus_load,
};

unsigned int vm_devices_list(struct vm *vm, struct device *d, unsigned int max)
{
	const struct device fixed[] = {
		{ "serial8250", &serial8250_device_ops, &vm->uart },
		{ "i8042", &i8042_device_ops, &vm->kbd },
		{ "rtc", &rtc_device_ops, &vm->rtc },
		{ "acpi_pm", &acpi_pm_device_ops, &vm->pm },
		{ "pci", &pci_bus_device_ops, &vm->pci },
	};
	/* The host bridge's state is saved only where the guest uses it. */
	size_t nfixed = ARRAY_SIZE(fixed) - (vm->devcfg.transport != VIRTIO_TRANSPORT_PCI);
	unsigned int n = 0;

	for (size_t i = 0; i < nfixed && n < max; i++)
		d[n++] = fixed[i];
	/* A firmware guest's and a multiboot kernel's (src/vm_platform.c). */
	if (fw_cfg_present(&vm->fw_cfg) && n < max)
		d[n++] = (struct device){ "fw_cfg", &fw_cfg_device_ops, &vm->fw_cfg };
	if (vm->cfg->firmware && n < max)
		d[n++] = (struct device){ "firmware", &firmware_device_ops, vm };
	for (unsigned int i = 0; i < vm->nvirtio && n < max; i++)
		d[n++] = (struct device){ vm->virtio[i]->dev.label, &virtio_device_ops,
					  vm->virtio[i] };
	return n;
}
