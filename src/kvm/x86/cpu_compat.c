/* cpu_compat.c - whether this host can run a guest that was given some CPU
 * (cpu_compat.h): one check for a snapshot restore (its MACHINE section's
 * CPUID table) and for a migration target (the table in the handshake),
 * against the CPUID this host offers (cpu.c). A guest may use any feature
 * its CPUID showed it, at any time: the host needs the same vendor (the
 * same instruction semantics, MSRs and errata) and every one of those
 * bits. Leaf 1 ebx is left out: it holds the APIC id of whichever host CPU
 * answered, not a feature. */
#include "cvisor/cpu_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "cvisor/x86.h"

enum { EAX, EBX, ECX, EDX };
static const char *const reg_names[] = { "eax", "ebx", "ecx", "edx" };

/* The feature registers compared, in the order they are checked. */
static const struct {
	uint32_t fn, index;
	uint8_t reg;
	size_t off; /* in struct cpu_model */
} features[] = {
	{ 1, 0, ECX, offsetof(struct cpu_model, f1_ecx) },
	{ 1, 0, EDX, offsetof(struct cpu_model, f1_edx) },
	{ 7, 0, EBX, offsetof(struct cpu_model, f7_ebx) },
	{ 7, 0, ECX, offsetof(struct cpu_model, f7_ecx) },
	{ 7, 0, EDX, offsetof(struct cpu_model, f7_edx) },
	{ 0xd, 0, EAX, offsetof(struct cpu_model, xsave0_eax) },
	{ 0xd, 0, EDX, offsetof(struct cpu_model, xsave0_edx) },
	{ 0xd, 1, EAX, offsetof(struct cpu_model, xsave1_eax) },
	{ 0x80000001, 0, ECX, offsetof(struct cpu_model, e1_ecx) },
	{ 0x80000001, 0, EDX, offsetof(struct cpu_model, e1_edx) },
};

static const struct kvm_cpuid_entry2 *find_leaf(const struct kvm_cpuid2 *c, uint32_t fn,
						uint32_t index)
{
	for (unsigned int i = 0; c && i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == index)
			return &c->entries[i];
	return NULL;
}

static uint32_t reg_of(const struct kvm_cpuid_entry2 *e, uint8_t reg)
{
	const uint32_t r[] = { e ? e->eax : 0, e ? e->ebx : 0, e ? e->ecx : 0, e ? e->edx : 0 };

	return r[reg];
}

static uint32_t *field(struct cpu_model *m, size_t i)
{
	return (uint32_t *)(void *)((char *)m + features[i].off);
}

static uint32_t field_of(const struct cpu_model *m, size_t i)
{
	return *(const uint32_t *)(const void *)((const char *)m + features[i].off);
}

void cpu_model_from_cpuid(const struct kvm_cpuid2 *c, struct cpu_model *m)
{
	const struct kvm_cpuid_entry2 *e = find_leaf(c, 0, 0);

	memset(m, 0, sizeof(*m));
	if (e) {
		m->has_vendor = true;
		memcpy(m->vendor, &e->ebx, 4);
		memcpy(m->vendor + 4, &e->edx, 4);
		memcpy(m->vendor + 8, &e->ecx, 4);
	}
	if ((e = find_leaf(c, 1, 0)))
		m->signature = e->eax;
	for (size_t i = 0; i < ARRAY_SIZE(features); i++)
		*field(m, i) =
			reg_of(find_leaf(c, features[i].fn, features[i].index), features[i].reg);
}

int cpu_model_host(bool emulated, struct cpu_model *m)
{
	struct kvm_cpuid2 *c;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), r;

	memset(m, 0, sizeof(*m));
	if (fd < 0)
		return -errno;
	r = x86_cpuid_supported(fd, emulated, CPUID_RESUME, &c);
	close(fd);
	if (r)
		return r;
	cpu_model_from_cpuid(c, m);
	free(c);
	return 0;
}

/* A vendor string fit for a message. */
static void printable(const char *v, char out[13])
{
	for (int i = 0; i < 12; i++)
		out[i] = v[i] >= 0x20 && v[i] <= 0x7e ? v[i] : '?';
	out[12] = '\0';
}

int cpu_compat_check(const struct cpu_model *guest, const struct cpu_model *host,
		     struct cpu_gap *gap)
{
	memset(gap, 0, sizeof(*gap));
	printable(guest->vendor, gap->guest_vendor);
	printable(host->vendor, gap->host_vendor);
	if (!guest->has_vendor || !host->has_vendor) {
		gap->kind = CPU_GAP_NO_VENDOR;
		return -EINVAL;
	}
	if (memcmp(guest->vendor, host->vendor, 12)) {
		gap->kind = CPU_GAP_VENDOR;
		return -EINVAL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(features); i++) {
		uint32_t missing = field_of(guest, i) & ~field_of(host, i);

		if (!missing)
			continue;
		gap->kind = CPU_GAP_FEATURES;
		gap->fn = features[i].fn;
		gap->index = features[i].index;
		gap->reg = reg_names[features[i].reg];
		gap->missing = missing;
		return -EINVAL;
	}
	return 0;
}
