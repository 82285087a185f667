/* migrate_hello.c - the migration handshake: message framing on the
 * sending side, the HELLO's encoding and parsing, and the check of a
 * source's machine against this host (format: top of migrate.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migrate_priv.h"

void mig_put_header(uint8_t out[MIG_HDR_SIZE], uint32_t type, uint32_t len)
{
	cv_put_le(out, type, 4);
	cv_put_le(out + 4, len, 4);
}

void mig_msg_append(struct state_buf *b, uint32_t type, const void *body, uint32_t len)
{
	uint8_t h[MIG_HDR_SIZE];
	uint32_t crc;

	mig_put_header(h, type, len);
	crc = cv_crc32(cv_crc32(0, h, sizeof(h)), body, len);
	state_put_bytes(b, h, sizeof(h));
	state_put_bytes(b, body, len);
	state_put_u32(b, crc);
}

/* ---- HELLO ---- */

void mig_hello_encode(const struct mig_hello *h, struct state_buf *b)
{
	state_put_bytes(b, MIG_MAGIC, 8);
	state_put_u16(b, h->major);
	state_put_u16(b, h->minor);
	state_put_u32(b, h->page_size);
	state_put_u64(b, h->ram_size);
	state_put_u32(b, h->nregions);
	state_put_u32(b, h->ncpus);
	for (uint32_t i = 0; i < h->nregions && i < MIG_MAX_REGIONS; i++) {
		state_put_u64(b, h->regions[i].gpa);
		state_put_u64(b, h->regions[i].size);
	}
	state_put_bytes(b, h->cpu.vendor, 12);
	state_put_u32(b, h->cpu.signature);
	state_put_u32(b, h->cpu.f1_ecx);
	state_put_u32(b, h->cpu.f1_edx);
	state_put_u32(b, h->cpu.f7_ebx);
	state_put_u32(b, h->cpu.f7_ecx);
	state_put_u32(b, h->cpu.f7_edx);
	state_put_u32(b, h->cpu.e1_ecx);
	state_put_u32(b, h->cpu.e1_edx);
	state_put_u32(b, h->flags);
	state_put_u32(b, h->ndisks);
	for (uint32_t i = 0; i < h->ndisks && i < MIG_MAX_DISKS; i++) {
		size_t n = strlen(h->disks[i].name);

		state_put_u64(b, h->disks[i].size);
		state_put_u16(b, (uint16_t)n);
		state_put_bytes(b, h->disks[i].name, n);
	}
	state_put_u32(b, h->config_len);
	state_put_bytes(b, h->config, h->config_len);
}

int mig_hello_parse(const uint8_t *body, size_t len, struct mig_hello *h, char *err, size_t errlen)
{
	struct state_rd r;
	char magic[8];

	memset(h, 0, sizeof(*h));
	state_rd_init(&r, body, len);
	state_get_bytes(&r, magic, 8);
	if (r.err || memcmp(magic, MIG_MAGIC, 8))
		return cv_errf(err, errlen, -EINVAL, "not a cvisor migration stream (bad magic)");
	h->major = state_get_u16(&r);
	h->minor = state_get_u16(&r);
	/* The version decides how the rest reads: check it first. */
	if (h->major != MIG_MAJOR || h->minor > MIG_MINOR)
		return cv_errf(err, errlen, -EINVAL,
			       "migration stream version %u.%u is not supported (this cvisor takes "
			       "%u.0-%u.%u)",
			       h->major, h->minor, MIG_MAJOR, MIG_MAJOR, MIG_MINOR);
	h->page_size = state_get_u32(&r);
	h->ram_size = state_get_u64(&r);
	h->nregions = state_get_u32(&r);
	h->ncpus = state_get_u32(&r);
	if (r.err || !h->nregions || h->nregions > MIG_MAX_REGIONS)
		return cv_errf(err, errlen, -EINVAL,
			       "migration handshake is corrupt (memory regions)");
	for (uint32_t i = 0; i < h->nregions; i++) {
		h->regions[i].gpa = state_get_u64(&r);
		h->regions[i].size = state_get_u64(&r);
	}
	state_get_bytes(&r, h->cpu.vendor, 12);
	h->cpu.vendor[12] = 0;
	h->cpu.signature = state_get_u32(&r);
	h->cpu.f1_ecx = state_get_u32(&r);
	h->cpu.f1_edx = state_get_u32(&r);
	h->cpu.f7_ebx = state_get_u32(&r);
	h->cpu.f7_ecx = state_get_u32(&r);
	h->cpu.f7_edx = state_get_u32(&r);
	h->cpu.e1_ecx = state_get_u32(&r);
	h->cpu.e1_edx = state_get_u32(&r);
	h->flags = state_get_u32(&r);
	h->ndisks = state_get_u32(&r);
	if (r.err || h->ndisks > MIG_MAX_DISKS || (h->flags & ~MIG_F_KNOWN))
		return cv_errf(err, errlen, -EINVAL,
			       "migration handshake is corrupt (flags or disks)");
	for (uint32_t i = 0; i < h->ndisks; i++) {
		uint16_t n;

		h->disks[i].size = state_get_u64(&r);
		n = state_get_u16(&r);
		if (r.err || !n || n > MIG_MAX_DISK_NAME || n > r.len - r.pos)
			return cv_errf(err, errlen, -EINVAL,
				       "migration handshake is corrupt (disk names)");
		state_get_bytes(&r, h->disks[i].name, n);
		h->disks[i].name[n] = 0;
		if (strlen(h->disks[i].name) != n || h->disks[i].size % 512)
			return cv_errf(err, errlen, -EINVAL,
				       "migration handshake is corrupt (disk %u)", i);
	}
	h->config_len = state_get_u32(&r);
	if (r.err || h->config_len > MIG_MAX_CONFIG || h->config_len != r.len - r.pos)
		return cv_errf(err, errlen, -EINVAL,
			       "migration handshake is corrupt (configuration length)");
	h->config = body + r.pos;
	return 0;
}

void mig_ram_layout(uint64_t ram_size, struct mig_hello *h)
{
	uint64_t low = ram_size < GUEST_MEM_LOW_LIMIT ? ram_size : GUEST_MEM_LOW_LIMIT;

	h->ram_size = ram_size;
	h->nregions = 1;
	h->regions[0].gpa = 0;
	h->regions[0].size = low;
	if (ram_size > low) {
		h->nregions = 2;
		h->regions[1].gpa = GUEST_MEM_HIGH_BASE;
		h->regions[1].size = ram_size - low;
	}
}

/* One CPUID register: the bits the guest sees that the target lacks. */
static int cpu_bits(uint32_t src, uint32_t dst, const char *reg, char *err, size_t errlen)
{
	if (src & ~dst)
		return cv_errf(err, errlen, -EINVAL,
			       "this host's CPU lacks features the guest uses (CPUID %s bits %#x); "
			       "migrate to a host with the same CPU or a newer one",
			       reg, src & ~dst);
	return 0;
}

int mig_hello_check(const struct mig_hello *h, const struct mig_local *l, char *err, size_t errlen)
{
	struct mig_hello want;
	int r;

	if (h->page_size != l->page_size)
		return cv_errf(err, errlen, -EINVAL,
			       "the source's page size %u differs from this host's %u",
			       h->page_size, l->page_size);
	if (!h->ram_size || h->ram_size % MIG_PAGE_SIZE || h->ram_size > MIG_MAX_RAM)
		return cv_errf(err, errlen, -EINVAL,
			       "migration handshake is corrupt (RAM size %llu)",
			       (unsigned long long)h->ram_size);
	mig_ram_layout(h->ram_size, &want);
	if (want.nregions != h->nregions ||
	    memcmp(want.regions, h->regions, sizeof(want.regions[0]) * h->nregions))
		return cv_errf(err, errlen, -EINVAL,
			       "the source's RAM layout for %lluM differs from this cvisor's "
			       "(incompatible versions)",
			       (unsigned long long)(h->ram_size >> 20));
	if (!h->ncpus || h->ncpus > MIG_MAX_CPUS || h->ncpus > l->max_cpus)
		return cv_errf(err, errlen, -EINVAL, "the guest has %u vCPUs; this host allows %u",
			       h->ncpus, l->max_cpus);
	if (!l->have_cpu)
		return 0;
	if (strcmp(h->cpu.vendor, l->cpu.vendor))
		return cv_errf(err, errlen, -EINVAL,
			       "the source's CPU vendor %s differs from this host's %s",
			       h->cpu.vendor, l->cpu.vendor);
	if ((r = cpu_bits(h->cpu.f1_ecx, l->cpu.f1_ecx, "1.ecx", err, errlen)) ||
	    (r = cpu_bits(h->cpu.f1_edx, l->cpu.f1_edx, "1.edx", err, errlen)) ||
	    (r = cpu_bits(h->cpu.f7_ebx, l->cpu.f7_ebx, "7.ebx", err, errlen)) ||
	    (r = cpu_bits(h->cpu.f7_ecx, l->cpu.f7_ecx, "7.ecx", err, errlen)) ||
	    (r = cpu_bits(h->cpu.f7_edx, l->cpu.f7_edx, "7.edx", err, errlen)) ||
	    (r = cpu_bits(h->cpu.e1_ecx, l->cpu.e1_ecx, "0x80000001.ecx", err, errlen)) ||
	    (r = cpu_bits(h->cpu.e1_edx, l->cpu.e1_edx, "0x80000001.edx", err, errlen)))
		return r;
	return 0;
}

void mig_cpu_from_cpuid(const struct kvm_cpuid2 *c, struct mig_cpu *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; c && i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 0) {
			memcpy(out->vendor, &e->ebx, 4);
			memcpy(out->vendor + 4, &e->edx, 4);
			memcpy(out->vendor + 8, &e->ecx, 4);
		} else if (e->function == 1) {
			out->signature = e->eax;
			out->f1_ecx = e->ecx;
			out->f1_edx = e->edx;
		} else if (e->function == 7 && e->index == 0) {
			out->f7_ebx = e->ebx;
			out->f7_ecx = e->ecx;
			out->f7_edx = e->edx;
		} else if (e->function == 0x80000001) {
			out->e1_ecx = e->ecx;
			out->e1_edx = e->edx;
		}
	}
}
