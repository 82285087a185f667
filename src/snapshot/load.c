/* load.c - reading a snapshot's sections back (laid out at the top of
 * format.c): CONFIG into a vm_config, and the rest into a VM built from
 * it; and `cvisor restore`'s opening of FILE and FILE.mem. Everything read
 * is bounded and checked before it reaches KVM or a device; a failure
 * says which section. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/cpu_compat.h"
#include "cvisor/kvm.h"
#include "cvisor/snapshot_format.h"
#include "cvisor/vcpu_state.h"
#include "cvisor/x86.h"

#include "snapshot_priv.h"

static const char *section_name(uint32_t id)
{
	static const char *const names[] = { "?",      "MACHINE", "KSTATE", "VCPU",
					     "DEVICE", "CONFIG",  "MEMFILE" };

	return id < ARRAY_SIZE(names) ? names[id] : "?";
}

/* The newest version of each section this cvisor reads. */
static unsigned int section_max_version(uint32_t id)
{
	return id == SNAP_SEC_MACHINE  ? SNAPSHOT_MACHINE_VERSION
	       : id == SNAP_SEC_CONFIG ? SNAPSHOT_CONFIG_VERSION
				       : 1;
}

/* The sections of a payload, checked for known ids, versions and counts. */
struct sections {
	struct snap_section config, machine, kstate, memfile;
	struct snap_section vcpu[CONFIG_MAX_CPUS];
	struct snap_section dev[SNAPSHOT_MAX_DEVICES];
	unsigned int nvcpu, ndev;
	bool have_config, have_machine, have_kstate, have_memfile;
};

static int index_sections(const uint8_t *p, size_t len, struct sections *ss, char *err,
			  size_t errlen)
{
	struct snap_section s;
	size_t pos = 0;
	int r;

	memset(ss, 0, sizeof(*ss));
	while ((r = snap_next_section(p, len, &pos, &s)) > 0) {
		bool *have = NULL;
		struct snap_section *slot = NULL;

		if (s.id < SNAP_SEC_MACHINE || s.id > SNAP_SEC_MEMFILE)
			return cv_errf(err, errlen, -EINVAL,
				       "unknown section id %u (damaged, or from a newer "
				       "cvisor)",
				       s.id);
		/* Read 1..current of each (MACHINE is at 3, CONFIG at 2). */
		if (s.version < 1 || s.version > section_max_version(s.id))
			return cv_errf(err, errlen, -EINVAL,
				       "%s section version %u is not supported (this cvisor reads "
				       "1 to %u)",
				       section_name(s.id), s.version, section_max_version(s.id));
		switch (s.id) {
		case SNAP_SEC_CONFIG:
			have = &ss->have_config, slot = &ss->config;
			break;
		case SNAP_SEC_MACHINE:
			have = &ss->have_machine, slot = &ss->machine;
			break;
		case SNAP_SEC_KSTATE:
			have = &ss->have_kstate, slot = &ss->kstate;
			break;
		case SNAP_SEC_MEMFILE:
			have = &ss->have_memfile, slot = &ss->memfile;
			break;
		case SNAP_SEC_VCPU:
			if (ss->nvcpu == CONFIG_MAX_CPUS)
				return cv_errf(err, errlen, -EINVAL, "more than %d VCPU sections",
					       CONFIG_MAX_CPUS);
			ss->vcpu[ss->nvcpu++] = s;
			continue;
		default:
			if (ss->ndev == SNAPSHOT_MAX_DEVICES)
				return cv_errf(err, errlen, -EINVAL, "more than %d DEVICE sections",
					       SNAPSHOT_MAX_DEVICES);
			ss->dev[ss->ndev++] = s;
			continue;
		}
		if (*have)
			return cv_errf(err, errlen, -EINVAL, "two %s sections", section_name(s.id));
		*have = true;
		*slot = s;
	}
	if (r < 0)
		return cv_errf(err, errlen, -EINVAL, "a section runs past the end of the file");
	/* Building the machine needs CONFIG and MACHINE; loading its state
	 * needs the rest (load_vcpus and load_devices check their counts). */
	if (!ss->have_config || !ss->have_machine)
		return cv_errf(err, errlen, -EINVAL, "no %s section",
			       !ss->have_config ? "CONFIG" : "MACHINE");
	return 0;
}

/* ---- CONFIG ---- */

/* A version 1 str field: a malloc'd copy into *out (NULL if absent). */
static int get_str(struct state_rd *r, char **out)
{
	uint8_t present = state_get_u8(r);
	uint16_t n = state_get_u16(r);

	*out = NULL;
	if (r->err || present > 1 || n > SNAPSHOT_MAX_STRING || n > r->len - r->pos ||
	    (!present && n) || memchr(r->data + r->pos, '\0', n))
		return -EINVAL;
	if (present && !(*out = strndup((const char *)r->data + r->pos, n)))
		return -ENOMEM;
	r->pos += n;
	return 0;
}

/* Version 1 devices: u8 transport, u8 rng, u8 balloon, u64 balloon_bytes,
 * str vsock, u32 ndisks + strs, u32 nnets + strs; as the flags would
 * have given them. */
static int get_devices_v1(struct state_rd *r, struct vm_config *cfg, struct cv_error *e)
{
	static const char *const keys[] = { "vsock", "disk", "net" };
	uint8_t mmio = state_get_u8(r), rng = state_get_u8(r), balloon = state_get_u8(r);
	uint64_t balloon_bytes = state_get_u64(r);
	char num[32], *spec;
	int ret = 0;

	if (r->err)
		return -EINVAL;
	if (mmio > 1 || rng > 1 || balloon > 1 || balloon_bytes > cfg->mem_size)
		return -ERANGE;
	cfg->devices.transport = mmio ? VIRTIO_TRANSPORT_MMIO : VIRTIO_TRANSPORT_PCI;
	snprintf(num, sizeof(num), "%llub", (unsigned long long)balloon_bytes);
	if ((rng && devices_add(&cfg->devices, devices_type("rng"), "rng", "", e)) ||
	    (balloon && devices_add(&cfg->devices, devices_type("balloon"), "balloon", num, e)))
		return -EINVAL;
	for (unsigned int k = 0; k < ARRAY_SIZE(keys) && !ret; k++) {
		const struct device_type *t = devices_type(keys[k]);
		uint32_t n = k ? state_get_u32(r) : 1;

		if (r->err || n > t->max)
			return -EINVAL;
		for (uint32_t i = 0; i < n && !ret; i++) {
			if ((ret = get_str(r, &spec)) || (!spec && k))
				return ret ? ret : -EINVAL;
			if (spec)
				ret = devices_add(&cfg->devices, t, t->key, spec, e);
			free(spec);
		}
	}
	return ret;
}

/* A version 1 CONFIG: fixed fields (format.c keeps their layout).
 * -EINVAL malformed, -ERANGE out of range, -ENOMEM. */
static int config_load_v1(const struct snap_section *sec, struct vm_config *cfg)
{
	struct cv_error e = { 0 };
	struct state_rd r;
	char *cmdline = NULL;
	uint8_t quirks;
	int ret;

	state_rd_init(&r, sec->data, sec->len);
	cfg->mem_size = state_get_u64(&r);
	cfg->ncpus = state_get_u32(&r);
	quirks = state_get_u8(&r);
	cfg->cpu_weight = state_get_u32(&r);
	cfg->cpu_cap = state_get_u32(&r);
	cfg->memory_limit = state_get_u64(&r);
	if ((ret = get_str(&r, &cfg->kernel)) || (ret = get_str(&r, &cfg->initrd)) ||
	    (ret = get_str(&r, &cmdline)) || (ret = get_str(&r, &cfg->cpu_affinity)))
		goto out;
	ret = -EINVAL;
	if (cmdline && strlen(cmdline) >= sizeof(cfg->cmdline))
		goto out;
	snprintf(cfg->cmdline, sizeof(cfg->cmdline), "%s", cmdline ? cmdline : "");
	cfg->quirks = (enum config_quirks)quirks;
	if (cfg->mem_size < CONFIG_MIN_MEM || cfg->mem_size % 4096 || cfg->ncpus < 1 ||
	    cfg->ncpus > CONFIG_MAX_CPUS || quirks > CONFIG_QUIRKS_OFF || cfg->cpu_weight < 1 ||
	    cfg->cpu_weight > CONFIG_MAX_CPU_WEIGHT || cfg->cpu_cap > CONFIG_MAX_CPU_CAP) {
		ret = -ERANGE;
		goto out;
	}
	if (!(ret = get_devices_v1(&r, cfg, &e)) && (r.err || r.pos != r.len))
		ret = -EINVAL;
out:
	free(cmdline);
	return ret == -EINVAL && e.code == -ENOMEM ? -ENOMEM : ret;
}

int snapshot_config_load(const uint8_t *payload, size_t len, struct vm_config *cfg, char *err,
			 size_t errlen)
{
	struct sections *ss = malloc(sizeof(*ss));
	struct cv_error e = { 0 };
	int ret;

	if (!ss)
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	if ((ret = index_sections(payload, len, ss, err, errlen)))
		goto out;
	if (ss->config.version == 1) {
		ret = config_load_v1(&ss->config, cfg);
		if (ret == -ERANGE)
			ret = cv_errf(err, errlen, -EINVAL,
				      "CONFIG section holds values out of range");
		else if (ret)
			cv_errf(err, errlen, ret,
				ret == -ENOMEM ? "out of memory" : "CONFIG section is malformed");
	} else if ((ret = config_apply_json("CONFIG section", (const char *)ss->config.data,
					    ss->config.len, cfg, &e))) {
		cv_errf(err, errlen, ret, "%s", e.msg);
	}
out:
	if (ret)
		config_free(cfg);
	free(ss);
	return ret;
}

struct machine {
	uint64_t ram_size;
	uint32_t page_size, ncpus, nregions;
	uint8_t quirks;
	uint8_t shim_area; /* version 2 */
	uint8_t platform;  /* version 3: VM_PLATFORM_* */
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	uint64_t offsets[GUEST_MEM_MAX_REGIONS];
	struct kvm_cpuid2 *cpuid; /* malloc'd */
};

static int parse_machine(const struct snap_section *s, struct machine *m, char *err, size_t errlen)
{
	struct state_rd r;
	uint32_t n;

	memset(m, 0, sizeof(*m));
	state_rd_init(&r, s->data, s->len);
	m->ram_size = state_get_u64(&r);
	m->page_size = state_get_u32(&r);
	m->ncpus = state_get_u32(&r);
	m->quirks = state_get_u8(&r);
	m->nregions = state_get_u32(&r);
	if (r.err || m->nregions < 1 || m->nregions > GUEST_MEM_MAX_REGIONS || m->quirks > 1)
		return cv_errf(err, errlen, -EINVAL, "MACHINE section is malformed");
	for (unsigned int i = 0; i < m->nregions; i++) {
		m->regions[i].gpa = state_get_u64(&r);
		m->regions[i].size = state_get_u64(&r);
		m->offsets[i] = state_get_u64(&r);
	}
	n = state_get_u32(&r);
	if (r.err || n > SNAPSHOT_MAX_CPUID)
		return cv_errf(err, errlen, -EINVAL, "MACHINE section is malformed");
	m->cpuid = calloc(1, sizeof(*m->cpuid) + n * sizeof(m->cpuid->entries[0]));
	if (!m->cpuid) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->cpuid->nent = n;
	for (unsigned int i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &m->cpuid->entries[i];

		e->function = state_get_u32(&r);
		e->index = state_get_u32(&r);
		e->flags = state_get_u32(&r);
		e->eax = state_get_u32(&r);
		e->ebx = state_get_u32(&r);
		e->ecx = state_get_u32(&r);
		e->edx = state_get_u32(&r);
	}
	if (s->version >= 2)
		m->shim_area = state_get_u8(&r);
	if (s->version >= 3)
		m->platform = state_get_u8(&r);
	if (r.err || r.pos != r.len || m->shim_area > 1)
		return cv_errf(err, errlen, -EINVAL, "MACHINE section is malformed");
	if (m->page_size != (uint32_t)sysconf(_SC_PAGESIZE) || m->ram_size % m->page_size)
		return cv_errf(err, errlen, -EINVAL, "MACHINE: page size %u, this host's is %ld",
			       m->page_size, sysconf(_SC_PAGESIZE));
	return 0;
}

/* The MACHINE section of a payload, parsed; free m->cpuid after. */
static int payload_machine(const uint8_t *payload, size_t len, struct machine *m, char *err,
			   size_t errlen)
{
	struct sections *ss = malloc(sizeof(*ss));
	int r;

	memset(m, 0, sizeof(*m));
	if (!ss)
		return cv_errf(err, errlen, -EINVAL, "out of memory");
	r = index_sections(payload, len, ss, err, errlen);
	if (!r)
		r = parse_machine(&ss->machine, m, err, errlen);
	free(ss);
	return r;
}

int snapshot_ram_size(const uint8_t *payload, size_t len, uint64_t *ram_size, char *err,
		      size_t errlen)
{
	struct machine m;
	int r = payload_machine(payload, len, &m, err, errlen);

	if (!r)
		*ram_size = m.ram_size;
	free(m.cpuid);
	return r;
}

int snapshot_cpu_model(const uint8_t *payload, size_t len, struct cpu_model *model, char *err,
		       size_t errlen)
{
	struct machine m;
	int r = payload_machine(payload, len, &m, err, errlen);

	if (!r)
		cpu_model_from_cpuid(m.cpuid, model);
	free(m.cpuid);
	return r;
}

/* ---- the state, into a VM built from the CONFIG ---- */

/* The guest may use every feature its CPUID showed: this host must offer
 * each one (cpu_compat.h). */
static int check_cpu(const struct kvm_cpuid2 *host, const struct kvm_cpuid2 *saved, char *err,
		     size_t errlen)
{
	struct cpu_model h, s;
	struct cpu_gap gap;

	cpu_model_from_cpuid(host, &h);
	cpu_model_from_cpuid(saved, &s);
	if (!cpu_compat_check(&s, &h, &gap))
		return 0;
	if (gap.kind == CPU_GAP_NO_VENDOR)
		return cv_errf(err, errlen, -EINVAL, "MACHINE: no CPUID vendor leaf");
	if (gap.kind == CPU_GAP_VENDOR)
		return cv_errf(err, errlen, -EINVAL, "saved on a %s CPU, this host has a %s CPU",
			       gap.guest_vendor, gap.host_vendor);
	return cv_errf(err, errlen, -EINVAL,
		       "this host's CPU lacks features the guest was given (CPUID %#x.%u %s bits "
		       "%#x)",
		       gap.fn, gap.index, gap.reg, gap.missing);
}

static int load_machine(struct vm *vm, const struct snap_section *s, bool cpu_checked, char *err,
			size_t errlen)
{
	struct machine m;
	int r = parse_machine(s, &m, err, errlen);

	if (r)
		goto out;
	r = -EINVAL;
	if (m.ram_size != vm->mem.ram_size || m.ncpus != vm->ncpus || m.nregions != vm->mem.nr) {
		cv_errf(err, errlen, -EINVAL, "MACHINE (%lluM, %u vCPUs) does not match its CONFIG",
			(unsigned long long)(m.ram_size >> 20), m.ncpus);
		goto out;
	}
	for (unsigned int i = 0; i < m.nregions; i++) {
		const struct guest_mem_region *g = &vm->mem.regions[i];

		if (m.regions[i].gpa != g->gpa || m.regions[i].size != g->size ||
		    m.offsets[i] != (uint64_t)(g->hva - vm->mem.base)) {
			cv_errf(err, errlen, -EINVAL,
				"MACHINE: RAM region %u is laid out differently", i);
			goto out;
		}
	}
	/* A migration target checked this CPU at the handshake already. */
	if (!cpu_checked && (r = check_cpu(vm->cpuid, m.cpuid, err, errlen)))
		goto out;
	/* fw_cfg, isa-debug-exit, the firmware's chipset: before the
	 * devices' state, which includes theirs. */
	if ((r = vm_platform_restore(vm, m.platform, err, errlen)))
		goto out;
	/* Whether the guest's E820 left the syscall shim its pages decides
	 * whether the shim can serve it here (syscall_shim.c). */
	vm->shim.area = m.shim_area;
	/* The guest keeps the CPUID it booted with, not this host's. */
	free(vm->cpuid);
	vm->cpuid = m.cpuid;
	m.cpuid = NULL;
	for (unsigned int i = 0; i < vm->ncpus; i++)
		if ((r = x86_vcpu_set_cpuid(&vm->vcpus[i]))) {
			snprintf(err, errlen, "vCPU %u: KVM refused the saved CPUID: %s", i,
				 strerror(-r));
			goto out;
		}
	r = 0;
out:
	free(m.cpuid);
	return r;
}

static int load_vcpus(struct vm *vm, const struct sections *ss, char *err, size_t errlen)
{
	const struct snap_section *by_id[CONFIG_MAX_CPUS] = { 0 };

	if (ss->nvcpu != vm->ncpus)
		return cv_errf(err, errlen, -EINVAL, "%u VCPU sections for %u vCPUs", ss->nvcpu,
			       vm->ncpus);
	for (unsigned int i = 0; i < ss->nvcpu; i++) {
		struct state_rd rd;
		uint32_t id;

		state_rd_init(&rd, ss->vcpu[i].data, ss->vcpu[i].len);
		id = state_get_u32(&rd);
		if (rd.err || id >= vm->ncpus || by_id[id])
			return cv_errf(err, errlen, -EINVAL,
				       "VCPU section %u: bad or repeated vCPU index", i);
		by_id[id] = &ss->vcpu[i];
	}
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		struct state_rd rd;
		int r;

		state_rd_init(&rd, by_id[i]->data, by_id[i]->len);
		(void)state_get_u32(&rd);
		r = vcpu_state_load(&vm->vcpus[i], &rd);
		if (!r && rd.pos != rd.len)
			r = -EINVAL;
		if (r) {
			snprintf(err, errlen, "vCPU %u: the saved state does not load (%s)", i,
				 r == -EINVAL ? "malformed or refused by KVM" : strerror(-r));
			return r;
		}
	}
	return 0;
}

/* A name read from the file, printable. */
static void safe_name(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; i < n && i + 1 < outlen; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	out[i] = '\0';
}

static int load_devices(struct vm *vm, const struct sections *ss, char *err, size_t errlen)
{
	struct device devs[SNAPSHOT_MAX_DEVICES];
	bool seen[SNAPSHOT_MAX_DEVICES] = { 0 };
	unsigned int n = vm_devices_list(vm, devs, SNAPSHOT_MAX_DEVICES);

	if (ss->ndev != n)
		return cv_errf(err, errlen, -EINVAL,
			       "%u DEVICE sections for the %u devices of this machine", ss->ndev,
			       n);
	for (unsigned int i = 0; i < ss->ndev; i++) {
		struct state_rd rd;
		uint16_t len;
		unsigned int j;
		char name[64];
		int r;

		state_rd_init(&rd, ss->dev[i].data, ss->dev[i].len);
		len = state_get_u16(&rd);
		if (rd.err || len > rd.len - rd.pos)
			return cv_errf(err, errlen, -EINVAL, "DEVICE section %u is malformed", i);
		safe_name(rd.data + rd.pos, len, name, sizeof(name));
		for (j = 0; j < n; j++)
			if (strlen(devs[j].name) == len &&
			    !memcmp(devs[j].name, rd.data + rd.pos, len))
				break;
		if (j == n)
			return cv_errf(err, errlen, -EINVAL, "device \"%s\" is not in this machine",
				       name);
		if (seen[j])
			return cv_errf(err, errlen, -EINVAL, "two DEVICE sections for %s", name);
		seen[j] = true;
		rd.pos += len;
		r = devs[j].ops->load ? devs[j].ops->load(devs[j].dev, &rd) : 0;
		if (!r && (rd.err || rd.pos != rd.len))
			r = -EINVAL;
		if (r) {
			snprintf(err, errlen, "device %s: the saved state does not load (%s)", name,
				 r == -EINVAL ? "malformed or out of range" : strerror(-r));
			return r;
		}
	}
	return 0;
}

/* How state_load treats the MACHINE section. */
enum machine_load {
	MACHINE_LOAD,	      /* a restore: checked against this host, then set */
	MACHINE_LOAD_CHECKED, /* a migration: the CPU was checked in the handshake */
	MACHINE_SKIP,	      /* a reset in place: the machine is this one already */
};

static int state_load(struct vm *vm, const uint8_t *payload, size_t len, enum machine_load ml,
		      char *err, size_t errlen)
{
	struct sections *ss = malloc(sizeof(*ss));
	struct state_rd rd;
	int r;

	if (!ss)
		return cv_errf(err, errlen, -EINVAL, "out of memory");
	if ((r = index_sections(payload, len, ss, err, errlen)))
		goto out;
	if (!ss->have_kstate) {
		r = cv_errf(err, errlen, -EINVAL, "no KSTATE section");
		goto out;
	}
	if ((ml != MACHINE_SKIP &&
	     (r = load_machine(vm, &ss->machine, ml == MACHINE_LOAD_CHECKED, err, errlen))) ||
	    (r = load_vcpus(vm, ss, err, errlen)))
		goto out;
	/* After the vCPUs' TSCs, as QEMU does: kvmclock is set last. */
	state_rd_init(&rd, ss->kstate.data, ss->kstate.len);
	r = vm_kstate_load(vm, &rd);
	if (!r && rd.pos != rd.len)
		r = -EINVAL;
	if (r) {
		snprintf(err, errlen, "the irqchip, PIT or clock state does not load (%s)",
			 r == -EINVAL ? "malformed or refused by KVM" : strerror(-r));
		goto out;
	}
	if ((r = load_devices(vm, ss, err, errlen)))
		goto out;
	/* A request the guest queued while the source's devices were
	 * quiesced was kicked there, not here: resume looks at every live
	 * queue. */
	snapshot_devices_resume(vm);
out:
	free(ss);
	return r;
}

int snapshot_state_load(struct vm *vm, const uint8_t *payload, size_t len, char *err, size_t errlen)
{
	return state_load(vm, payload, len, MACHINE_LOAD, err, errlen);
}

int snapshot_state_reload(struct vm *vm, const uint8_t *payload, size_t len, char *err,
			  size_t errlen)
{
	return state_load(vm, payload, len, MACHINE_SKIP, err, errlen);
}

int snapshot_state_load_incoming(struct vm *vm, const uint8_t *payload, size_t len, char *err,
				 size_t errlen)
{
	return state_load(vm, payload, len, MACHINE_LOAD_CHECKED, err, errlen);
}

/* ---- FILE and FILE.mem ---- */

/* FILE.mem's data against the MEMFILE section, if the snapshot has one
 * (format 1.0 did not): a right-sized file of other data (all zeros, or
 * another save's) is refused. */
static int check_mem_digest(const char *path, const uint8_t *payload, size_t len, int fd, char *err,
			    size_t errlen)
{
	struct sections *ss = malloc(sizeof(*ss));
	struct snapshot_mem_digest want, got;
	struct state_rd rd;
	int r;

	if (!ss)
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	if ((r = index_sections(payload, len, ss, err, errlen)) || !ss->have_memfile)
		goto out;
	state_rd_init(&rd, ss->memfile.data, ss->memfile.len);
	want.pages = state_get_u64(&rd);
	want.crc = state_get_u32(&rd);
	if (rd.err || rd.pos != rd.len) {
		r = cv_errf(err, errlen, -EINVAL, "MEMFILE section is malformed");
		goto out;
	}
	if ((r = snapshot_mem_digest(fd, &got)))
		cv_errf(err, errlen, r, "its memory file %s.mem: %s", path, strerror(-r));
	else if (got.pages != want.pages || got.crc != want.crc)
		r = cv_errf(err, errlen, -EINVAL,
			    "its memory file %s.mem does not hold the data that was saved (%llu "
			    "pages of data, %llu saved; replaced, or from another save?)",
			    path, (unsigned long long)got.pages, (unsigned long long)want.pages);
out:
	free(ss);
	return r;
}

int snapshot_open(const char *path, struct vm_config *cfg, uint8_t **payload, size_t *len,
		  int *mem_fd, char *err, size_t errlen)
{
	uint64_t ram;
	size_t plen = strlen(path);
	int r;

	*payload = NULL;
	*mem_fd = -1;
	if ((r = snap_file_read(path, payload, len, err, errlen))) {
		/* The caller names the file: drop format.c's "PATH: ". */
		if (!strncmp(err, path, plen) && err[plen] == ':' && err[plen + 1] == ' ')
			memmove(err, err + plen + 2, strlen(err + plen + 2) + 1);
		return r;
	}
	if ((r = snapshot_config_load(*payload, *len, cfg, err, errlen)) ||
	    (r = snapshot_ram_size(*payload, *len, &ram, err, errlen)))
		goto fail;
	if (ram != cfg->mem_size) {
		r = cv_errf(err, errlen, -EINVAL,
			    "CONFIG (%lluM) and MACHINE (%lluM) disagree on the RAM size",
			    (unsigned long long)(cfg->mem_size >> 20),
			    (unsigned long long)(ram >> 20));
		goto fail;
	}
	if ((r = snapshot_mem_file_open(path, ram, mem_fd, err, errlen)) ||
	    (r = check_mem_digest(path, *payload, *len, *mem_fd, err, errlen)))
		goto fail;
	return 0;
fail:
	free(*payload);
	*payload = NULL;
	config_free(cfg);
	return r;
}
