/* vmconfig.c - vm.create's VmConfig (Cloud Hypervisor's OpenAPI schema)
 * to cvisor's struct vm_config, through config.c's setters and the device
 * table's spec strings, so that every value is checked where `cvisor run`
 * checks it. A field is honoured or refused with its name: nothing a
 * client asked for is dropped. Fields whose value cvisor always has (the
 * schema's defaults, e.g. iommu false) are accepted at that value only. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cvisor/api.h"
#include "cvisor/virtio_blk.h"
#include "cvisor/virtio_net.h"
#include "cvisor/virtio_vsock.h"

struct ctx {
	struct vm_config *cfg;
	struct api_vm_io *io;
	char *err;
	size_t errlen;
	bool kernel; /* payload.kernel or kernel.path given */
};

/* ---- device ids ---- */

const char *api_dev_id(const struct api_vm_io *io, const char *name, char buf[API_ID_MAX])
{
	for (unsigned int i = 0; i < io->nids; i++)
		if (!strcmp(io->ids[i].name, name))
			return io->ids[i].id;
	snprintf(buf, API_ID_MAX, "_%s", name);
	return buf;
}

int api_dev_id_set(struct api_vm_io *io, const char *name, const char *id)
{
	unsigned int i = 0;

	while (i < io->nids && strcmp(io->ids[i].name, name))
		i++;
	if (i == ARRAY_SIZE(io->ids))
		return -ENOSPC;
	snprintf(io->ids[i].name, sizeof(io->ids[i].name), "%s", name);
	snprintf(io->ids[i].id, sizeof(io->ids[i].id), "%s", id);
	io->nids += i == io->nids;
	return 0;
}

static int bad(struct ctx *x, const char *fmt, ...) CV_PRINTF(2, 3);
static int bad(struct ctx *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->err, x->errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A setter's failure, its message under the field's name. */
static int from_cv(struct ctx *x, const char *path, int r, const struct cv_error *e)
{
	if (r == -ENOMEM)
		return bad(x, "%s: out of memory", path), -ENOMEM;
	return bad(x, "%s: %s", path, e->msg[0] ? e->msg : strerror(-r));
}

static const char *type_name(json_type t)
{
	switch (t) {
	case json_type_int:
		return "an integer";
	case json_type_boolean:
		return "a boolean";
	case json_type_string:
		return "a string";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	default:
		return "a value";
	}
}

static int want(struct ctx *x, const char *path, struct json_object *v, json_type t)
{
	if (json_object_is_type(v, t))
		return 0;
	return bad(x, "%s: must be %s", path, type_name(t));
}

/* A non-negative integer within max. */
static int want_u64(struct ctx *x, const char *path, struct json_object *v, uint64_t max,
		    uint64_t *out)
{
	int64_t i;

	if (want(x, path, v, json_type_int))
		return -EINVAL;
	errno = 0;
	i = json_object_get_int64(v);
	/* json-c keeps values past INT64_MAX as uint64 */
	if (i < 0 || (uint64_t)i > max || errno)
		return bad(x, "%s: %s is out of range (0 to %" PRIu64 ")", path,
			   json_object_to_json_string(v), max);
	*out = (uint64_t)i;
	return 0;
}

/* A field cvisor has at one value only (the schema's default): that value
 * is accepted, any other refused. */
static int only_bool(struct ctx *x, const char *path, struct json_object *v, bool have,
		     const char *why)
{
	if (want(x, path, v, json_type_boolean))
		return -EINVAL;
	if (json_object_get_boolean(v) != have)
		return bad(x, "%s: %s is not supported by cvisor (%s)", path,
			   have ? "false" : "true", why);
	return 0;
}

static int only_u64(struct ctx *x, const char *path, struct json_object *v, uint64_t have,
		    const char *why)
{
	uint64_t u;

	if (want_u64(x, path, v, UINT64_MAX, &u))
		return -EINVAL;
	if (u != have)
		return bad(x, "%s: %" PRIu64 " is not supported by cvisor (%s)", path, u, why);
	return 0;
}

static int unsupported(struct ctx *x, const char *path, const char *what)
{
	return bad(x, "%s: not supported by cvisor (%s)", path, what);
}

/* An array field cvisor has none of: empty or null is fine. */
static int none_of(struct ctx *x, const char *path, struct json_object *v, const char *what)
{
	if (!v || (json_object_is_type(v, json_type_array) && !json_object_array_length(v)))
		return 0;
	return unsupported(x, path, what);
}

static int set_field(struct ctx *x, const char *path, const char *key, const char *val)
{
	struct cv_error e = { 0 };
	int r = config_set_field(x->cfg, key, path, val, &e);

	return r ? from_cv(x, path, r, &e) : 0;
}

static int add_device(struct ctx *x, const char *path, const char *type, const char *spec)
{
	struct cv_error e = { 0 };
	int r = devices_add(&x->cfg->devices, devices_type(type), path, spec, &e);

	return r ? from_cv(x, path, r, &e) : 0;
}

/* A string field into a spec: no ',' (the spec's separator). */
static int spec_string(struct ctx *x, const char *path, struct json_object *v, const char **out)
{
	if (want(x, path, v, json_type_string))
		return -EINVAL;
	*out = json_object_get_string(v);
	if (!**out || strchr(*out, ','))
		return bad(x, "%s: \"%.200s\": must be non-empty without ','", path, *out);
	return 0;
}

/* A device's "id": a string of 1 to API_ID_MAX-1 characters that no other
 * device has; ids starting with '_' are cvisor's own ("_disk0"). Into id. */
static int want_id(struct ctx *x, const char *path, struct json_object *v, char id[API_ID_MAX])
{
	const char *s;

	if (want(x, path, v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	if (!*s || *s == '_' || strlen(s) >= API_ID_MAX)
		return bad(x,
			   "%s: \"%.80s\": 1 to %d characters, not starting with '_' (cvisor's "
			   "own ids are _disk0, _net0, ...)",
			   path, s, API_ID_MAX - 1);
	for (unsigned int i = 0; i < x->io->nids; i++)
		if (!strcmp(x->io->ids[i].id, s))
			return bad(x, "%s: \"%.80s\" is already the id of another device", path, s);
	snprintf(id, API_ID_MAX, "%s", s);
	return 0;
}

/* Record device KEY INDEX's id (when given). */
static int keep_id(struct ctx *x, const char *key, unsigned int index, const char *id)
{
	char name[16];

	snprintf(name, sizeof(name), "%s%u", key, index);
	if (*id && api_dev_id_set(x->io, name, id))
		return bad(x, "%s: too many device ids", name);
	return 0;
}

#define FOREACH(obj, k, v) json_object_object_foreach(obj, k, v)

/* ---- cpus, memory ---- */

static int do_cpus(struct ctx *x, struct json_object *o)
{
	uint64_t boot = 1, max = 0;
	bool have_max = false;
	char path[64], num[24];

	if (want(x, "cpus", o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		snprintf(path, sizeof(path), "cpus.%s", k);
		if (!strcmp(k, "boot_vcpus")) {
			if (want_u64(x, path, v, UINT32_MAX, &boot))
				return -EINVAL;
		} else if (!strcmp(k, "max_vcpus")) {
			if (want_u64(x, path, v, UINT32_MAX, &max))
				return -EINVAL;
			have_max = true;
		} else if (!strcmp(k, "kvm_hyperv")) {
			if (only_bool(x, path, v, false, "no Hyper-V enlightenments"))
				return -EINVAL;
		} else {
			return unsupported(x, path,
					   "topology, affinity, features and "
					   "max_phys_bits are cvisor's own");
		}
	}
	if (boot == 0)
		return bad(x, "cpus.boot_vcpus: must be at least 1");
	if (have_max && max != boot)
		return bad(x,
			   "cpus.max_vcpus: %" PRIu64 " with boot_vcpus %" PRIu64
			   ": CPU hotplug unsupported (give them equal)",
			   max, boot);
	snprintf(num, sizeof(num), "%" PRIu64, boot);
	return set_field(x, "cpus.boot_vcpus", "cpus", num);
}

static int do_memory(struct ctx *x, struct json_object *o)
{
	char path[64], num[32];
	uint64_t size = 0, u;
	bool have_size = false;

	if (want(x, "memory", o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		snprintf(path, sizeof(path), "memory.%s", k);
		if (!strcmp(k, "size")) {
			if (want_u64(x, path, v, UINT64_MAX, &size))
				return -EINVAL;
			have_size = true;
		} else if (!strcmp(k, "mergeable")) {
			if (want(x, path, v, json_type_boolean))
				return -EINVAL;
			x->cfg->ksm = json_object_get_boolean(v); /* --ksm */
		} else if (!strcmp(k, "hotplug_size") || !strcmp(k, "hotplugged_size")) {
			if (want_u64(x, path, v, UINT64_MAX, &u))
				return -EINVAL;
			if (u)
				return unsupported(x, path, "memory hotplug");
		} else if (!strcmp(k, "hotplug_method")) {
			/* Meaningless without hotplug_size, which must be 0. */
			if (want(x, path, v, json_type_string))
				return -EINVAL;
		} else if (!strcmp(k, "shared")) {
			if (only_bool(x, path, v, false, "guest RAM is private memory"))
				return -EINVAL;
		} else if (!strcmp(k, "hugepages")) {
			if (only_bool(x, path, v, false, "no hugetlbfs backing"))
				return -EINVAL;
		} else if (!strcmp(k, "prefault")) {
			if (only_bool(x, path, v, false, "RAM is faulted in on use"))
				return -EINVAL;
		} else if (!strcmp(k, "thp")) {
			if (want(x, path, v, json_type_boolean))
				return -EINVAL; /* a hint: the kernel's THP policy decides */
		} else if (!strcmp(k, "zones") && none_of(x, path, v, "memory zones")) {
			return -EINVAL;
		} else if (strcmp(k, "zones")) {
			return unsupported(x, path, "unknown memory field");
		}
	}
	if (!have_size)
		return bad(x, "memory.size: missing");
	snprintf(num, sizeof(num), "%" PRIu64 "b", size);
	return set_field(x, "memory.size", "memory", num);
}

/* ---- the kernel: payload, or the old top-level kernel/cmdline/initramfs ---- */

static int set_path(struct ctx *x, const char *path, const char *key, struct json_object *v)
{
	if (want(x, path, v, json_type_string))
		return -EINVAL;
	if (!strcmp(key, "kernel"))
		x->kernel = true;
	return set_field(x, path, key, json_object_get_string(v));
}

static int do_payload(struct ctx *x, struct json_object *o)
{
	char path[64];

	if (want(x, "payload", o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		const char *key = !strcmp(k, "kernel")	    ? "kernel"
				  : !strcmp(k, "cmdline")   ? "cmdline"
				  : !strcmp(k, "initramfs") ? "initrd"
							    : NULL;

		snprintf(path, sizeof(path), "payload.%s", k);
		if (!key)
			return unsupported(x, path, "cvisor boots a kernel (payload.kernel)");
		if (set_path(x, path, key, v))
			return -EINVAL;
	}
	return 0;
}

/* The old form: {"kernel":{"path":P}}, {"cmdline":{"args":S}},
 * {"initramfs":{"path":P}}. */
static int do_old(struct ctx *x, const char *top, const char *inner, const char *key,
		  struct json_object *o)
{
	char path[64];

	if (want(x, top, o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		snprintf(path, sizeof(path), "%s.%s", top, k);
		if (strcmp(k, inner))
			return unsupported(x, path, "unknown field");
		if (set_path(x, path, key, v))
			return -EINVAL;
	}
	return 0;
}

/* ---- devices ---- */

/* Fields every device of the schema has, at the value cvisor gives. */
static int common_dev(struct ctx *x, const char *path, const char *k, struct json_object *v,
		      bool *done)
{
	*done = true;
	if (!strcmp(k, "iommu"))
		return only_bool(x, path, v, false, "no virtual IOMMU");
	if (!strcmp(k, "pci_segment"))
		return only_u64(x, path, v, 0, "one PCI segment");
	if (!strcmp(k, "id"))
		return want(x, path, v,
			    json_type_string); /* names for hotplug, which cvisor lacks */
	*done = false;
	return 0;
}

static int do_disk(struct ctx *x, unsigned int i, struct json_object *o)
{
	char path[64], spec[4200];
	const char *file = NULL, *serial = NULL;
	bool ro = false, direct = false, done;
	uint64_t queues = 0;
	struct virtio_blk_config bc;
	struct cv_error e = { 0 };
	char id[API_ID_MAX] = "";
	int r;

	snprintf(path, sizeof(path), "disks[%u]", i);
	if (want(x, path, o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		snprintf(path, sizeof(path), "disks[%u].%s", i, k);
		if (!strcmp(k, "id")) {
			if (want_id(x, path, v, id))
				return -EINVAL;
			continue;
		}
		if (common_dev(x, path, k, v, &done))
			return -EINVAL;
		if (done)
			continue;
		if (!strcmp(k, "path")) {
			if (spec_string(x, path, v, &file))
				return -EINVAL;
		} else if (!strcmp(k, "readonly")) {
			if (want(x, path, v, json_type_boolean))
				return -EINVAL;
			ro = json_object_get_boolean(v);
		} else if (!strcmp(k, "serial")) {
			if (spec_string(x, path, v, &serial))
				return -EINVAL;
		} else if (!strcmp(k, "direct")) {
			if (want(x, path, v, json_type_boolean))
				return -EINVAL;
			direct = json_object_get_boolean(v);
		} else if (!strcmp(k, "vhost_user")) {
			if (only_bool(x, path, v, false, "no vhost-user"))
				return -EINVAL;
		} else if (!strcmp(k, "num_queues")) {
			if (want_u64(x, path, v, 1024, &queues))
				return -EINVAL;
			if (!queues)
				return bad(x, "%s: must be at least 1", path);
		} else {
			return unsupported(x, path, "unknown or unsupported disk field");
		}
	}
	if (!file)
		return bad(x, "disks[%u].path: missing", i);
	snprintf(path, sizeof(path), "disks[%u]", i);
	r = snprintf(spec, sizeof(spec), "%s%s%s%s%s", file, ro ? ",readonly" : "",
		     direct ? ",direct" : "", serial ? ",serial=" : "", serial ? serial : "");
	if (queues && r > 0 && (size_t)r < sizeof(spec))
		snprintf(spec + r, sizeof(spec) - (size_t)r, ",queues=%" PRIu64, queues);
	/* The device's own parser, now rather than at vm.boot. */
	if ((r = virtio_blk_parse(spec, &bc, &e)))
		return from_cv(x, path, r, &e);
	if ((r = add_device(x, path, "disk", spec)))
		return r;
	return keep_id(x, "disk", i, id);
}

/* The body's "fds": the sender's numbers of the descriptors that came
 * with the request (cvisor uses those); their count must match. nfds < 0:
 * vm.create, which takes no descriptors. */
static int body_fds(struct ctx *x, const char *path, struct json_object *v, int nfds)
{
	if (nfds < 0)
		return unsupported(x, path, "tap descriptors come with vm.add-net, as SCM_RIGHTS");
	if (want(x, path, v, json_type_array))
		return -EINVAL;
	for (size_t i = 0; i < json_object_array_length(v); i++)
		if (want(x, path, json_object_array_get_idx(v, i), json_type_int))
			return -EINVAL;
	if (json_object_array_length(v) != (size_t)nfds)
		return bad(x, "%s: %zu listed, %d passed with the request (SCM_RIGHTS)", path,
			   json_object_array_length(v), nfds);
	return 0;
}

/* One NetConfig (where: "net[0]" of vm.create, or "vm.add-net" with nfds
 * descriptors passed) for the index-th NIC: its spec, and its id ("" if
 * not given). */
static int net_spec(struct ctx *x, const char *where, struct json_object *o, int nfds,
		    unsigned int index, char *spec, size_t speclen, char id[API_ID_MAX])
{
	char path[96];
	const char *tap = NULL, *mac = NULL;
	bool done;
	struct virtio_net_config nc;
	struct cv_error e = { 0 };
	int r;

	*id = '\0';
	if (want(x, where, o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		snprintf(path, sizeof(path), "%s.%s", where, k);
		if (!strcmp(k, "id")) {
			if (want_id(x, path, v, id))
				return -EINVAL;
			continue;
		}
		if (common_dev(x, path, k, v, &done))
			return -EINVAL;
		if (done)
			continue;
		if (!strcmp(k, "tap")) {
			if (spec_string(x, path, v, &tap))
				return -EINVAL;
		} else if (!strcmp(k, "mac")) {
			if (spec_string(x, path, v, &mac))
				return -EINVAL;
		} else if (!strcmp(k, "num_queues")) {
			if (only_u64(x, path, v, 2, "one queue pair"))
				return -EINVAL;
		} else if (!strcmp(k, "queue_size")) {
			if (only_u64(x, path, v, VIRTIO_NET_QUEUE_SIZE, "queues of 256"))
				return -EINVAL;
		} else if (!strcmp(k, "vhost_user")) {
			if (only_bool(x, path, v, false, "no vhost-user"))
				return -EINVAL;
		} else if (!strncmp(k, "offload_", 8)) {
			if (only_bool(x, path, v, true, "the offloads the tap takes are offered"))
				return -EINVAL;
		} else if (!strcmp(k, "fds")) {
			if (body_fds(x, path, v, nfds))
				return -EINVAL;
		} else {
			/* ip, mask, host_mac, mtu, queue_size, ...: the host
			 * side of the tap is the client's to set up. */
			return unsupported(
				x, path,
				nfds < 0 ? "cvisor takes an existing tap by name (tap, mac)"
					 : "cvisor takes an existing tap: its descriptor "
					   "or name (tap), and mac");
		}
	}
	if (nfds > 1)
		return bad(x,
			   "%s: %d descriptors came with the request: cvisor's virtio-net has one "
			   "queue pair and takes exactly one tap descriptor",
			   where, nfds);
	if (nfds == 1 && tap)
		return bad(x, "%s: both tap \"%s\" and a descriptor: give one", where, tap);
	if (nfds < 0 && !tap)
		return bad(x, "%s.tap: missing (cvisor takes an existing tap by name)", where);
	if (nfds == 0 && !tap)
		return bad(x,
			   "%s: no tap: pass its descriptor with the request (SCM_RIGHTS), or "
			   "name it (tap)",
			   where);
	snprintf(spec, speclen, "%s%s%s%s", nfds == 1 ? "tapfd" : "tap=", nfds == 1 ? "" : tap,
		 mac ? ",mac=" : "", mac ? mac : "");
	if ((r = virtio_net_parse(spec, index, &nc, &e)))
		return from_cv(x, where, r, &e);
	return 0;
}

static int do_net(struct ctx *x, unsigned int i, struct json_object *o)
{
	char path[64], spec[256], id[API_ID_MAX];
	int r;

	snprintf(path, sizeof(path), "net[%u]", i);
	if (net_spec(x, path, o, -1, i, spec, sizeof(spec), id))
		return -EINVAL;
	if ((r = add_device(x, path, "net", spec)))
		return r;
	return keep_id(x, "net", i, id);
}

static int do_array(struct ctx *x, const char *name, struct json_object *a,
		    int (*fn)(struct ctx *, unsigned int, struct json_object *))
{
	if (want(x, name, a, json_type_array))
		return -EINVAL;
	for (size_t i = 0; i < json_object_array_length(a); i++)
		if (fn(x, (unsigned int)i, json_object_array_get_idx(a, i)))
			return -EINVAL;
	return 0;
}

static int do_rng(struct ctx *x, struct json_object *o)
{
	char path[64];
	bool done;

	if (want(x, "rng", o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		snprintf(path, sizeof(path), "rng.%s", k);
		if (common_dev(x, path, k, v, &done))
			return -EINVAL;
		if (done)
			continue;
		if (strcmp(k, "src"))
			return unsupported(x, path, "unknown rng field");
		if (want(x, path, v, json_type_string))
			return -EINVAL;
		/* cvisor's rng reads getrandom(), the kernel's urandom pool. */
		if (strcmp(json_object_get_string(v), "/dev/urandom"))
			return bad(x, "%s: \"%.200s\": cvisor's rng is /dev/urandom's source only",
				   path, json_object_get_string(v));
	}
	return add_device(x, "rng", "rng", "");
}

static int do_vsock(struct ctx *x, struct json_object *o)
{
	char path[64], spec[4200];
	const char *sock = NULL;
	uint64_t cid = 0;
	bool have_cid = false, done;
	struct virtio_vsock_config vc;
	struct cv_error e = { 0 };
	int r;

	if (want(x, "vsock", o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		snprintf(path, sizeof(path), "vsock.%s", k);
		if (common_dev(x, path, k, v, &done))
			return -EINVAL;
		if (done)
			continue;
		if (!strcmp(k, "cid")) {
			if (want_u64(x, path, v, UINT32_MAX, &cid))
				return -EINVAL;
			have_cid = true;
		} else if (!strcmp(k, "socket")) {
			if (spec_string(x, path, v, &sock))
				return -EINVAL;
		} else {
			return unsupported(x, path, "unknown vsock field");
		}
	}
	if (!have_cid || !sock)
		return bad(x, "vsock: needs cid and socket");
	snprintf(spec, sizeof(spec), "%" PRIu64 ",uds=%s", cid, sock);
	if ((r = virtio_vsock_parse(spec, &vc, &e)))
		return from_cv(x, "vsock", r, &e);
	return add_device(x, "vsock", "vsock", spec);
}

static int do_balloon(struct ctx *x, struct json_object *o)
{
	char path[64], spec[32];
	uint64_t size = 0;
	bool have = false;

	if (want(x, "balloon", o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		snprintf(path, sizeof(path), "balloon.%s", k);
		if (!strcmp(k, "size")) {
			if (want_u64(x, path, v, UINT64_MAX, &size))
				return -EINVAL;
			have = true;
		} else if (!strcmp(k, "deflate_on_oom") || !strcmp(k, "free_page_reporting")) {
			if (only_bool(x, path, v, false, "not offered by cvisor's balloon"))
				return -EINVAL;
		} else {
			return unsupported(x, path, "unknown balloon field");
		}
	}
	if (!have)
		return bad(x, "balloon.size: missing");
	snprintf(spec, sizeof(spec), "%" PRIu64 "b", size);
	return add_device(x, "balloon", "balloon", spec);
}

/* serial and console: {mode, file, socket, iommu}. */
static int do_io(struct ctx *x, const char *name, struct json_object *o, char *mode, size_t modelen)
{
	static const char *const modes[] = { "Off", "Pty", "Tty", "File", "Null" };
	const char *m = NULL, *file = NULL;
	char path[64];
	bool ok = false, serial = !strcmp(name, "serial");

	if (want(x, name, o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		snprintf(path, sizeof(path), "%s.%s", name, k);
		if (!strcmp(k, "mode")) {
			if (want(x, path, v, json_type_string))
				return -EINVAL;
			m = json_object_get_string(v);
		} else if (!strcmp(k, "file")) {
			if (json_object_is_type(v, json_type_null))
				continue;
			if (want(x, path, v, json_type_string))
				return -EINVAL;
			file = json_object_get_string(v);
		} else if (!strcmp(k, "iommu")) {
			if (only_bool(x, path, v, false, "no virtual IOMMU"))
				return -EINVAL;
		} else if (!strcmp(k, "socket") && !json_object_is_type(v, json_type_null)) {
			return unsupported(x, path, "no socket backend");
		} else if (strcmp(k, "socket")) {
			return unsupported(x, path, "unknown field");
		}
	}
	if (!m)
		return bad(x, "%s.mode: missing", name);
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
		ok |= !strcmp(m, modes[i]);
	if (!ok)
		return bad(x, "%s.mode: \"%.40s\": cvisor has Off, Pty, Tty, File and Null", name,
			   m);
	if (!strcmp(m, "File") != (file != NULL))
		return bad(x, "%s.file: %s", name,
			   file ? "only with mode File" : "mode File needs a file");
	if (file && !serial)
		return unsupported(x, "console.file", "the virtio console has no file backend");
	if (file && strlen(file) >= sizeof(x->io->serial_file))
		return bad(x, "serial.file: too long");
	if (file)
		snprintf(x->io->serial_file, sizeof(x->io->serial_file), "%s", file);
	snprintf(mode, modelen, "%s", m);
	return 0;
}

/* The serial and console modes (given or Cloud Hypervisor's defaults) as
 * cvisor's devices: serial Pty is the 8250 on a pty, Off and Null no
 * output (--serial pty|off); console Pty is a virtio-console on a pty
 * (--console pty). A Tty console stays the 8250 on the VMM's stdout (no
 * virtio-console on a terminal); File serial is wired at boot. */
static int io_devices(struct ctx *x)
{
	const char *s = x->io->serial_mode;
	int r = 0;

	if (!strcmp(s, "Pty"))
		r = set_field(x, "serial.mode", "serial", "pty");
	else if (!strcmp(s, "Off") || !strcmp(s, "Null"))
		r = set_field(x, "serial.mode", "serial", "off");
	if (!r && !strcmp(x->io->console_mode, "Pty"))
		r = add_device(x, "console.mode", "console", "pty");
	return r;
}

static int do_platform(struct ctx *x, struct json_object *o)
{
	char path[64];

	if (want(x, "platform", o, json_type_object))
		return -EINVAL;
	FOREACH(o, k, v)
	{
		snprintf(path, sizeof(path), "platform.%s", k);
		if (!strcmp(k, "num_pci_segments")) {
			if (only_u64(x, path, v, 1, "one PCI segment"))
				return -EINVAL;
		} else {
			return unsupported(x, path, "unknown or unsupported platform field");
		}
	}
	return 0;
}

static int top_key(struct ctx *x, const char *k, struct json_object *v)
{
	struct api_vm_io *io = x->io;

	if (!strcmp(k, "cpus"))
		return do_cpus(x, v);
	if (!strcmp(k, "memory"))
		return do_memory(x, v);
	if (!strcmp(k, "payload"))
		return do_payload(x, v);
	if (!strcmp(k, "kernel"))
		return do_old(x, "kernel", "path", "kernel", v);
	if (!strcmp(k, "cmdline"))
		return do_old(x, "cmdline", "args", "cmdline", v);
	if (!strcmp(k, "initramfs"))
		return do_old(x, "initramfs", "path", "initrd", v);
	if (!strcmp(k, "disks"))
		return do_array(x, "disks", v, do_disk);
	if (!strcmp(k, "net"))
		return do_array(x, "net", v, do_net);
	if (!strcmp(k, "rng"))
		return do_rng(x, v);
	if (!strcmp(k, "vsock"))
		return do_vsock(x, v);
	if (!strcmp(k, "balloon"))
		return do_balloon(x, v);
	if (!strcmp(k, "serial"))
		return do_io(x, "serial", v, io->serial_mode, sizeof(io->serial_mode));
	if (!strcmp(k, "console"))
		return do_io(x, "console", v, io->console_mode, sizeof(io->console_mode));
	if (!strcmp(k, "platform"))
		return do_platform(x, v);
	if (!strcmp(k, "iommu"))
		return only_bool(x, k, v, false, "no virtual IOMMU");
	if (!strcmp(k, "watchdog"))
		return only_bool(x, k, v, false, "no watchdog device");
	if (!strcmp(k, "pvpanic"))
		return only_bool(x, k, v, false, "no pvpanic device");
	if (!strcmp(k, "fs"))
		return none_of(x, k, v, "virtio-fs");
	if (!strcmp(k, "pmem"))
		return none_of(x, k, v, "virtio-pmem");
	if (!strcmp(k, "devices"))
		return none_of(x, k, v, "VFIO device passthrough");
	if (!strcmp(k, "vdpa"))
		return none_of(x, k, v, "vDPA devices");
	if (!strcmp(k, "numa"))
		return none_of(x, k, v, "guest NUMA nodes");
	if (!strcmp(k, "sgx_epc"))
		return none_of(x, k, v, "SGX");
	return unsupported(x, k, "unknown or unsupported VmConfig field");
}

/* body[0..len): exactly one JSON object (strict), into *out; else
 * -EINVAL (-ENOMEM) with err naming `what`. */
static int parse_body(struct ctx *x, const char *what, const char *body, size_t len,
		      struct json_object **out)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	char path[64];

	*out = NULL;
	if (!tok)
		return bad(x, "out of memory"), -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = len > (size_t)INT32_MAX ? NULL : json_tokener_parse_ex(tok, body, (int)len);
	if (!o || json_tokener_get_parse_end(tok) != len) {
		enum json_tokener_error je = json_tokener_get_error(tok);
		size_t at = json_tokener_get_parse_end(tok);

		json_object_put(o);
		json_tokener_free(tok);
		return bad(x, "%s: the body is not one JSON object (%s at byte %zu)", what,
			   je == json_tokener_success ? "trailing data"
						      : json_tokener_error_desc(je),
			   at);
	}
	json_tokener_free(tok);
	snprintf(path, sizeof(path), "%s body", what);
	if (want(x, path, o, json_type_object)) {
		json_object_put(o);
		return -EINVAL;
	}
	*out = o;
	return 0;
}

int api_net_config(const char *body, size_t len, unsigned int nfds, unsigned int index,
		   const struct api_vm_io *io, char *spec, size_t speclen, char id[API_ID_MAX],
		   char *err, size_t errlen)
{
	struct ctx x = { .io = (struct api_vm_io *)io, .err = err, .errlen = errlen };
	struct json_object *o;
	int r;

	if ((r = parse_body(&x, "vm.add-net", body, len, &o)))
		return r;
	r = net_spec(&x, "vm.add-net", o, nfds > INT32_MAX ? INT32_MAX : (int)nfds, index, spec,
		     speclen, id);
	json_object_put(o);
	return r;
}

int api_vm_config(const char *body, size_t len, struct vm_config *cfg, struct api_vm_io *io,
		  char *err, size_t errlen)
{
	struct ctx x = { .cfg = cfg, .io = io, .err = err, .errlen = errlen };
	struct json_object *o;
	int r = 0;

	*io = (struct api_vm_io){ .serial_mode = "Null", .console_mode = "Tty" };
	if ((r = parse_body(&x, "vm.create", body, len, &o)))
		return r;
	FOREACH(o, k, v)
	{
		if ((r = top_key(&x, k, v)))
			break;
	}
	if (!r && !x.kernel)
		r = bad(&x, "payload.kernel: missing (cvisor boots a kernel)");
	/* Cloud Hypervisor's default (MemoryConfig), not cvisor's. */
	if (!r && !json_object_object_get_ex(o, "memory", NULL))
		r = set_field(&x, "memory", "memory", "512M");
	if (!r)
		r = io_devices(&x);
	json_object_put(o);
	return r;
}
