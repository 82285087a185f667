/* fw_acpi.c - cvisor's ACPI tables for a firmware guest, through QEMU's
 * table loader (QEMU hw/acpi/bios-linker-loader.c; SeaBIOS
 * src/fw/romfile_loader.c). The tables (src/boot/acpi.c, built at address
 * 0 so that every pointer in them is an offset) go in fw_cfg file
 * "etc/acpi/tables", the RSDP alone in "etc/acpi/rsdp", and
 * "etc/table-loader" tells the firmware to place both (the RSDP in the
 * F segment, where an OS scans for it), to add each file's address to the
 * pointers, and to fix the checksums. The pointers are found by walking
 * the tables as an OS would (RSDP -> RSDT/XSDT -> FADT -> FACS/DSDT), so
 * the loader script follows whatever acpi.c builds. */
#include "cvisor/firmware.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/acpi.h"
#include "cvisor/fw_cfg.h"

#define TABLES_MAX 0x10000
#define RSDP_LEN 36
#define SDT_HDR 36
#define LOADER_ENTRY 128
#define LOADER_MAX 64
#define CMD_ALLOCATE 1
#define CMD_ADD_POINTER 2
#define CMD_ADD_CHECKSUM 3
#define ZONE_HIGH 1
#define ZONE_FSEG 2
#define FILE_TABLES "etc/acpi/tables"
#define FILE_RSDP "etc/acpi/rsdp"

struct loader {
	uint8_t cmd[LOADER_MAX][LOADER_ENTRY];
	unsigned int n;
	/* Offsets of the tables already given a checksum command. */
	uint32_t summed[16];
	unsigned int nsummed;
	const uint8_t *t;
	uint32_t len;
	bool bad;
};

static uint8_t *entry(struct loader *l, uint32_t command)
{
	uint8_t *e;

	if (l->n == LOADER_MAX) {
		l->bad = true;
		return NULL;
	}
	e = l->cmd[l->n++];
	memset(e, 0, LOADER_ENTRY);
	cv_put_le32(e, command);
	return e;
}

static void allocate(struct loader *l, const char *file, uint32_t align, uint8_t zone)
{
	uint8_t *e = entry(l, CMD_ALLOCATE);

	if (!e)
		return;
	memcpy(e + 4, file, strlen(file));
	cv_put_le32(e + 60, align);
	e[64] = zone;
}

/* The size-byte field at off in dest holds an offset into FILE_TABLES:
 * add that file's address. */
static void pointer(struct loader *l, const char *dest, uint32_t off, uint8_t size)
{
	uint8_t *e = entry(l, CMD_ADD_POINTER);

	if (!e)
		return;
	memcpy(e + 4, dest, strlen(dest));
	memcpy(e + 60, FILE_TABLES, strlen(FILE_TABLES));
	cv_put_le32(e + 116, off);
	e[120] = size;
}

static void checksum(struct loader *l, const char *file, uint32_t at, uint32_t start, uint32_t len)
{
	uint8_t *e = entry(l, CMD_ADD_CHECKSUM);

	if (!e)
		return;
	memcpy(e + 4, file, strlen(file));
	cv_put_le32(e + 60, at);
	cv_put_le32(e + 64, start);
	cv_put_le32(e + 68, len);
}

/* A table at off, inside the blob with its whole length, or 0. */
static uint32_t table_len(struct loader *l, uint64_t off)
{
	uint32_t n;

	if (off < RSDP_LEN || off > l->len || l->len - off < SDT_HDR) {
		l->bad = true;
		return 0;
	}
	n = cv_le32(l->t + off + 4);
	if (n < SDT_HDR || n > l->len - off) {
		l->bad = true;
		return 0;
	}
	return n;
}

static bool summed(const struct loader *l, uint64_t off)
{
	for (unsigned int i = 0; i < l->nsummed; i++)
		if (l->summed[i] == off)
			return true;
	return false;
}

/* Fix a table's checksum once, after every pointer in it. */
static void sum_table(struct loader *l, uint32_t off, uint32_t len)
{
	if (summed(l, off))
		return;
	if (l->nsummed == sizeof(l->summed) / sizeof(l->summed[0])) {
		l->bad = true;
		return;
	}
	l->summed[l->nsummed++] = off;
	checksum(l, FILE_TABLES, off + 9, off, len);
}

/* The FADT's FIRMWARE_CTRL (FACS, no checksum) and DSDT / X_DSDT. */
static void walk_fadt(struct loader *l, uint32_t off, uint32_t len)
{
	uint32_t dsdt = cv_le32(l->t + off + 40), n;

	if (len < 44) {
		l->bad = true;
		return;
	}
	if (cv_le32(l->t + off + 36))
		pointer(l, FILE_TABLES, off + 36, 4);
	pointer(l, FILE_TABLES, off + 40, 4);
	if (len >= 148 && cv_get_le(l->t + off + 140, 8))
		pointer(l, FILE_TABLES, off + 140, 8);
	if ((n = table_len(l, dsdt)))
		sum_table(l, dsdt, n);
}

/* RSDT (4-byte entries) or XSDT (8-byte): each entry a pointer, each
 * table it names summed (the FADT after its own pointers) unless the
 * other list already did it: RSDT and XSDT name the same tables. */
static void walk_sdt(struct loader *l, uint64_t off, unsigned int width)
{
	uint32_t len = table_len(l, off);

	if (!len)
		return;
	for (uint32_t p = (uint32_t)off + SDT_HDR; p + width <= off + len; p += width) {
		uint64_t to = cv_get_le(l->t + p, width);
		uint32_t n = table_len(l, to);

		pointer(l, FILE_TABLES, p, (uint8_t)width);
		if (!n)
			return;
		if (summed(l, to))
			continue;
		if (!memcmp(l->t + to, "FACP", 4))
			walk_fadt(l, (uint32_t)to, n);
		sum_table(l, (uint32_t)to, n);
	}
	sum_table(l, (uint32_t)off, len);
}

int firmware_acpi(struct fw_cfg *f, const struct acpi_config *ac)
{
	struct loader *l = calloc(1, sizeof(*l));
	uint8_t *t = calloc(1, TABLES_MAX);
	size_t used = 0;
	int r = -ENOMEM;

	if (!l || !t)
		goto out;
	if ((r = acpi_build(t, TABLES_MAX, 0, ac, &used)))
		goto out;
	l->t = t;
	l->len = (uint32_t)used;
	allocate(l, FILE_RSDP, 16, ZONE_FSEG);
	allocate(l, FILE_TABLES, 64, ZONE_HIGH);
	walk_sdt(l, cv_le32(t + 16), 4);
	walk_sdt(l, cv_get_le(t + 24, 8), 8);
	pointer(l, FILE_RSDP, 16, 4);
	pointer(l, FILE_RSDP, 24, 8);
	checksum(l, FILE_RSDP, 8, 0, 20);  /* ACPI 6.4, 5.2.5.3: the first 20 bytes */
	checksum(l, FILE_RSDP, 32, 0, 36); /* then the extended checksum over all */
	r = -EINVAL;
	if (l->bad)
		goto out;
	if ((r = fw_cfg_add_file(f, FILE_RSDP, t, RSDP_LEN)) ||
	    (r = fw_cfg_add_file(f, FILE_TABLES, t, l->len)))
		goto out;
	r = fw_cfg_add_file(f, "etc/table-loader", l->cmd, l->n * LOADER_ENTRY);
out:
	free(t);
	free(l);
	return r;
}
