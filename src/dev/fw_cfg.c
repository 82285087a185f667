/* fw_cfg.c - QEMU's firmware configuration device (include/cvisor/fw_cfg.h;
 * QEMU docs/specs/fw_cfg.rst). The items are built once, before the vCPUs
 * run, by whoever sets up the guest (src/boot/firmware.c, or
 * src/vm_multiboot.c for a multiboot kernel); the guest only selects and
 * reads them. A snapshot holds the items too (fw_cfg_device_ops), so that
 * a restored guest reads the bytes it was booted with. */
#include "cvisor/fw_cfg.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define ID_TRADITIONAL 0x1 /* bit 1 (DMA) stays clear */
#define DIR_ENTRY 64	   /* be32 size, be16 select, u16 reserved, name[56] */

static struct fw_cfg_item *find(struct fw_cfg *f, uint16_t key)
{
	for (unsigned int i = 0; i < f->nitems; i++)
		if (f->items[i].key == key)
			return &f->items[i];
	return NULL;
}

static void put_be(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static int set_item(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len)
{
	struct fw_cfg_item *it = find(f, key);
	uint8_t *copy;

	if (len > FW_CFG_ITEM_MAX)
		return -EINVAL;
	if (!it && f->nitems == FW_CFG_MAX_ITEMS)
		return -ENOSPC;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	if (!it) {
		it = &f->items[f->nitems++];
		it->key = key;
	}
	free(it->data);
	it->data = copy;
	it->len = len;
	return 0;
}

int fw_cfg_init(struct fw_cfg *f)
{
	uint8_t id[4];
	int r;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	cv_put_le32(id, ID_TRADITIONAL);
	if ((r = set_item(f, FW_CFG_SIGNATURE, "QEMU", 4)) ||
	    (r = set_item(f, FW_CFG_ID, id, sizeof(id))))
		return r;
	return set_item(f, FW_CFG_FILE_DIR, (uint8_t[4]){ 0 }, 4);
}

int fw_cfg_add(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len)
{
	if ((key & 0x3fff) >= FW_CFG_FILE_FIRST || key == FW_CFG_FILE_DIR ||
	    key == FW_CFG_SIGNATURE || key == FW_CFG_ID)
		return -EINVAL;
	return set_item(f, key, data, len);
}

int fw_cfg_add_machine(struct fw_cfg *f, uint64_t ram_size, unsigned int ncpus)
{
	uint8_t ram[8], cpus[2];
	int r;

	cv_put_le64(ram, ram_size);
	cv_put_le16(cpus, (uint16_t)ncpus);
	if ((r = fw_cfg_add(f, FW_CFG_RAM_SIZE, ram, 8)) ||
	    (r = fw_cfg_add(f, FW_CFG_NB_CPUS, cpus, 2)))
		return r;
	return fw_cfg_add(f, FW_CFG_MAX_CPUS, cpus, 2);
}

/* FW_CFG_FILE_DIR: a be32 count, then one entry per file, sorted by name
 * as QEMU keeps them (SeaBIOS does not care; Linux's sysfs reader lists
 * them in this order). */
static int rebuild_dir(struct fw_cfg *f)
{
	uint32_t len = 4 + DIR_ENTRY * f->nfiles;
	uint8_t dir[4 + DIR_ENTRY * FW_CFG_MAX_FILES];
	unsigned int order[FW_CFG_MAX_FILES];

	memset(dir, 0, sizeof(dir));
	put_be(dir, f->nfiles, 4);
	for (unsigned int i = 0; i < f->nfiles; i++) {
		unsigned int j = i;

		for (; j > 0 && strcmp(f->names[order[j - 1]], f->names[i]) > 0; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	for (unsigned int i = 0; i < f->nfiles; i++) {
		uint8_t *e = dir + 4 + DIR_ENTRY * i;
		unsigned int n = order[i];
		const struct fw_cfg_item *it = find(f, (uint16_t)(FW_CFG_FILE_FIRST + n));

		put_be(e, it ? it->len : 0, 4);
		put_be(e + 4, FW_CFG_FILE_FIRST + n, 2);
		memcpy(e + 8, f->names[n], strlen(f->names[n]));
	}
	return set_item(f, FW_CFG_FILE_DIR, dir, len);
}

int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len)
{
	size_t n = strlen(name);
	int r;

	if (!n || n >= FW_CFG_NAME_MAX)
		return -EINVAL;
	for (unsigned int i = 0; i < f->nfiles; i++)
		if (!strcmp(f->names[i], name))
			return -EEXIST;
	if (f->nfiles == FW_CFG_MAX_FILES)
		return -ENOSPC;
	if ((r = set_item(f, (uint16_t)(FW_CFG_FILE_FIRST + f->nfiles), data, len)))
		return r;
	memcpy(f->names[f->nfiles], name, n + 1);
	f->nfiles++;
	return rebuild_dir(f);
}

void fw_cfg_destroy(struct fw_cfg *f)
{
	for (unsigned int i = 0; i < f->nitems; i++) {
		free(f->items[i].data);
		f->items[i].data = NULL;
	}
	f->nitems = 0;
	f->nfiles = 0;
}

static void fw_cfg_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct fw_cfg *f = opaque;
	const struct fw_cfg_item *it;

	memset(data, 0, len);
	if (off != 1)
		return; /* the selector is write-only */
	pthread_mutex_lock(&f->lock);
	/* The write channel bit (0x4000) selects the same item. */
	it = find(f, f->sel & (uint16_t)~0x4000);
	for (uint32_t i = 0; i < len; i++) {
		if (it && f->off < it->len)
			data[i] = it->data[f->off];
		if (f->off < UINT32_MAX)
			f->off++;
	}
	pthread_mutex_unlock(&f->lock);
}

static void fw_cfg_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct fw_cfg *f = opaque;

	/* A byte write to the selector is taken as its low byte, as QEMU's
	 * port does; the data port is read-only here. */
	if (off != 0)
		return;
	pthread_mutex_lock(&f->lock);
	f->sel = (uint16_t)(len >= 2 ? cv_le16(data) : data[0]);
	f->off = 0;
	pthread_mutex_unlock(&f->lock);
}

const struct bus_ops fw_cfg_bus_ops = { .read = fw_cfg_read, .write = fw_cfg_write };

/* ---- the device lifecycle (device.h) ---- */

#define FW_CFG_STATE_VERSION 1

/* A device reset: nothing selected, as at power-on (QEMU's fw_cfg_reset
 * selects 0 at offset 0). */
static void fw_cfg_reset(void *opaque)
{
	struct fw_cfg *f = opaque;

	pthread_mutex_lock(&f->lock);
	f->sel = 0;
	f->off = 0;
	pthread_mutex_unlock(&f->lock);
}

/* u32 version, u16 selector, u32 offset, u32 nfiles + nfiles x (u16
 * length, name), u32 nitems + nitems x (u16 key, u32 length, bytes). The
 * directory item is left out: the loader rebuilds it from the names. */
static int fw_cfg_save(void *opaque, struct state_buf *b)
{
	struct fw_cfg *f = opaque;

	pthread_mutex_lock(&f->lock);
	state_put_u32(b, FW_CFG_STATE_VERSION);
	state_put_u16(b, f->sel);
	state_put_u32(b, f->off);
	state_put_u32(b, f->nfiles);
	for (unsigned int i = 0; i < f->nfiles; i++) {
		size_t n = strlen(f->names[i]);

		state_put_u16(b, (uint16_t)n);
		state_put_bytes(b, f->names[i], n);
	}
	state_put_u32(b, f->nitems - (find(f, FW_CFG_FILE_DIR) != NULL));
	for (unsigned int i = 0; i < f->nitems; i++) {
		const struct fw_cfg_item *it = &f->items[i];

		if (it->key == FW_CFG_FILE_DIR)
			continue;
		state_put_u16(b, it->key);
		state_put_u32(b, it->len);
		state_put_bytes(b, it->data, it->len);
	}
	pthread_mutex_unlock(&f->lock);
	return b->err;
}

/* The saved items into t (zeroed by the caller), every field checked:
 * names unique, non-empty and without NULs, keys unique, file keys only
 * for the names there are, lengths within FW_CFG_ITEM_MAX. */
static int load_into(struct fw_cfg *t, struct state_rd *rd)
{
	uint32_t nfiles, nitems;
	int r;

	if (state_get_u32(rd) != FW_CFG_STATE_VERSION)
		return -EINVAL;
	t->sel = state_get_u16(rd);
	t->off = state_get_u32(rd);
	nfiles = state_get_u32(rd);
	if (rd->err || nfiles > FW_CFG_MAX_FILES)
		return -EINVAL;
	for (uint32_t i = 0; i < nfiles; i++) {
		uint16_t n = state_get_u16(rd);

		if (rd->err || !n || n >= FW_CFG_NAME_MAX || n > rd->len - rd->pos ||
		    memchr(rd->data + rd->pos, '\0', n))
			return -EINVAL;
		state_get_bytes(rd, t->names[i], n);
		t->names[i][n] = '\0';
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(t->names[j], t->names[i]))
				return -EINVAL;
	}
	t->nfiles = nfiles;
	nitems = state_get_u32(rd);
	if (rd->err || nitems >= FW_CFG_MAX_ITEMS) /* the directory is one more */
		return -EINVAL;
	for (uint32_t i = 0; i < nitems; i++) {
		uint16_t key = state_get_u16(rd);
		uint32_t len = state_get_u32(rd);
		bool file = key >= FW_CFG_FILE_FIRST;

		if (rd->err || len > FW_CFG_ITEM_MAX || len > rd->len - rd->pos ||
		    key == FW_CFG_FILE_DIR ||
		    (file && (uint32_t)(key - FW_CFG_FILE_FIRST) >= nfiles) || find(t, key))
			return -EINVAL;
		if ((r = set_item(t, key, rd->data + rd->pos, len)))
			return r;
		rd->pos += len;
	}
	return rebuild_dir(t);
}

static int fw_cfg_load(void *opaque, struct state_rd *rd)
{
	struct fw_cfg *f = opaque, *t = calloc(1, sizeof(*t));
	struct fw_cfg_item old[FW_CFG_MAX_ITEMS];
	unsigned int nold;
	int r;

	if (!t)
		return -ENOMEM;
	if ((r = load_into(t, rd))) {
		fw_cfg_destroy(t);
		free(t);
		return r;
	}
	pthread_mutex_lock(&f->lock);
	memcpy(old, f->items, sizeof(old));
	nold = f->nitems;
	f->sel = t->sel;
	f->off = t->off;
	memcpy(f->items, t->items, sizeof(f->items));
	f->nitems = t->nitems;
	f->nfiles = t->nfiles;
	memcpy(f->names, t->names, sizeof(f->names));
	pthread_mutex_unlock(&f->lock);
	for (unsigned int i = 0; i < nold; i++)
		free(old[i].data);
	free(t);
	return 0;
}

const struct device_ops fw_cfg_device_ops = {
	.name = "fw_cfg",
	.reset = fw_cfg_reset,
	.save = fw_cfg_save,
	.load = fw_cfg_load,
};
