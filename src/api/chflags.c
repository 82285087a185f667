/* chflags.c - Cloud Hypervisor's direct VM flags (`cloud-hypervisor
 * --kernel K --cpus boot=2 --disk path=D ...`) to the vm.create body they
 * stand for, so that the flags and the API build the guest through one
 * translator (vmconfig.c) and one boot. The syntax is Cloud Hypervisor's
 * (its option_parser crate and cloud-hypervisor/src/main.rs): each value
 * is key=value pairs split at commas outside quotes and brackets; sizes
 * are bytes or K, M, G; toggles on|off|true|false; --disk and --net take
 * several values after one flag, and may be repeated. What the syntax
 * gets wrong is refused here, naming the flag; what cvisor cannot give is
 * refused by the translator, whose message is put under the flag. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cvisor/api.h"

enum kind {
	K_INT,	  /* a decimal number */
	K_SIZE,	  /* bytes, or a number with K, M or G */
	K_TOGGLE, /* on, off, true, false */
	K_STR,	  /* as given (refused by the translator where cvisor lacks it) */
};

struct key {
	const char *name, *field; /* the flag's key, the VmConfig field */
	enum kind kind;
};

static const struct key cpus_keys[] = {
	{ "boot", "boot_vcpus", K_INT },	  { "max", "max_vcpus", K_INT },
	{ "kvm_hyperv", "kvm_hyperv", K_TOGGLE }, { "max_phys_bits", "max_phys_bits", K_INT },
	{ "topology", "topology", K_STR },	  { "affinity", "affinity", K_STR },
	{ "features", "features", K_STR },	  { NULL, NULL, K_STR },
};

static const struct key memory_keys[] = {
	{ "size", "size", K_SIZE },
	{ "mergeable", "mergeable", K_TOGGLE },
	{ "shared", "shared", K_TOGGLE },
	{ "hugepages", "hugepages", K_TOGGLE },
	{ "hugepage_size", "hugepage_size", K_SIZE },
	{ "hotplug_method", "hotplug_method", K_STR },
	{ "hotplug_size", "hotplug_size", K_SIZE },
	{ "hotplugged_size", "hotplugged_size", K_SIZE },
	{ "prefault", "prefault", K_TOGGLE },
	{ "thp", "thp", K_TOGGLE },
	{ NULL, NULL, K_STR },
};

static const struct key disk_keys[] = {
	{ "path", "path", K_STR },
	{ "readonly", "readonly", K_TOGGLE },
	{ "direct", "direct", K_TOGGLE },
	{ "iommu", "iommu", K_TOGGLE },
	{ "num_queues", "num_queues", K_INT },
	{ "queue_size", "queue_size", K_INT },
	{ "vhost_user", "vhost_user", K_TOGGLE },
	{ "socket", "vhost_socket", K_STR },
	{ "id", "id", K_STR },
	{ "pci_segment", "pci_segment", K_INT },
	{ "serial", "serial", K_STR },
	{ "image_type", "image_type", K_STR },
	{ "rate_limit_group", "rate_limit_group", K_STR },
	{ NULL, NULL, K_STR },
};

static const struct key net_keys[] = {
	{ "tap", "tap", K_STR },
	{ "mac", "mac", K_STR },
	{ "ip", "ip", K_STR },
	{ "mask", "mask", K_STR },
	{ "host_mac", "host_mac", K_STR },
	{ "mtu", "mtu", K_INT },
	{ "iommu", "iommu", K_TOGGLE },
	{ "num_queues", "num_queues", K_INT },
	{ "queue_size", "queue_size", K_INT },
	{ "vhost_user", "vhost_user", K_TOGGLE },
	{ "socket", "vhost_socket", K_STR },
	{ "vhost_mode", "vhost_mode", K_STR },
	{ "id", "id", K_STR },
	{ "fd", "fds", K_STR },
	{ "pci_segment", "pci_segment", K_INT },
	{ "offload_tso", "offload_tso", K_TOGGLE },
	{ "offload_ufo", "offload_ufo", K_TOGGLE },
	{ "offload_csum", "offload_csum", K_TOGGLE },
	{ NULL, NULL, K_STR },
};

static const struct key rng_keys[] = {
	{ "src", "src", K_STR },
	{ "iommu", "iommu", K_TOGGLE },
	{ NULL, NULL, K_STR },
};

static const struct key balloon_keys[] = {
	{ "size", "size", K_SIZE },
	{ "deflate_on_oom", "deflate_on_oom", K_TOGGLE },
	{ "free_page_reporting", "free_page_reporting", K_TOGGLE },
	{ NULL, NULL, K_STR },
};

static const struct key vsock_keys[] = {
	{ "cid", "cid", K_INT },
	{ "socket", "socket", K_STR },
	{ "iommu", "iommu", K_TOGGLE },
	{ "id", "id", K_STR },
	{ "pci_segment", "pci_segment", K_INT },
	{ NULL, NULL, K_STR },
};

enum form {
	F_OPTIONS, /* key=value,... into the object `field` */
	F_LIST,	   /* key=value,... per value, each an object of the array `field` */
	F_PAYLOAD, /* one string into payload.`field` */
	F_MODE,	   /* off|null|tty|pty|file=PATH into the object `field` */
};

static const struct flag {
	const char *flag, *field;
	enum form form;
	const struct key *keys;
} flags[] = {
	{ "--cpus", "cpus", F_OPTIONS, cpus_keys },
	{ "--memory", "memory", F_OPTIONS, memory_keys },
	{ "--kernel", "kernel", F_PAYLOAD, NULL },
	{ "--cmdline", "cmdline", F_PAYLOAD, NULL },
	{ "--initramfs", "initramfs", F_PAYLOAD, NULL },
	{ "--disk", "disks", F_LIST, disk_keys },
	{ "--net", "net", F_LIST, net_keys },
	{ "--rng", "rng", F_OPTIONS, rng_keys },
	{ "--balloon", "balloon", F_OPTIONS, balloon_keys },
	{ "--vsock", "vsock", F_OPTIONS, vsock_keys },
	{ "--serial", "serial", F_MODE, NULL },
	{ "--console", "console", F_MODE, NULL },
};

/* Cloud Hypervisor's other VM flags: named, and refused. */
static const char *const refused[] = {
	"--firmware",	    "--memory-zone",   "--fs",	     "--pmem",
	"--device",	    "--user-device",   "--vdpa",     "--numa",
	"--watchdog",	    "--pvpanic",       "--platform", "--tpm",
	"--sgx-epc",	    "--restore",       "--log-file", "--landlock",
	"--landlock-rules", "--debug-console", "--gdb",	     "--pci-segment",
	"--igvm",	    "--host-data",
};

static int fail(char *err, size_t errlen, int r, const char *fmt, ...) CV_PRINTF(4, 5);
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

#define NOMEM() fail(err, errlen, -ENOMEM, "out of memory")

/* One key's value as its kind wants it; NULL with err when it is not. */
static struct json_object *key_value(const struct flag *fl, const struct key *k, const char *v,
				     char *err, size_t errlen)
{
	uint64_t n;
	struct json_object *o = NULL;

	switch (k->kind) {
	case K_INT:
		if (cv_parse_uint(v, 0, INT64_MAX, &n))
			return fail(err, errlen, -EINVAL, "%s %s=%.80s: %s wants a number",
				    fl->flag, k->name, v, k->name),
			       NULL;
		o = json_object_new_int64((int64_t)n);
		break;
	case K_SIZE:
		if (cv_parse_size(v, 0, &n) || n > INT64_MAX)
			return fail(err, errlen, -EINVAL,
				    "%s %s=%.80s: %s wants a size (bytes, or a number with K, M "
				    "or G)",
				    fl->flag, k->name, v, k->name),
			       NULL;
		o = json_object_new_int64((int64_t)n);
		break;
	case K_TOGGLE:
		if (!*v || !strcasecmp(v, "off") || !strcasecmp(v, "false"))
			o = json_object_new_boolean(0);
		else if (!strcasecmp(v, "on") || !strcasecmp(v, "true"))
			o = json_object_new_boolean(1);
		else
			return fail(err, errlen, -EINVAL, "%s %s=%.80s: %s wants on or off",
				    fl->flag, k->name, v, k->name),
			       NULL;
		break;
	case K_STR:
		o = json_object_new_string(v);
		break;
	}
	if (!o)
		NOMEM();
	return o;
}

/* Split s at commas outside quotes and brackets, as Cloud Hypervisor's
 * option parser does (quotes dropped), into out (NUL-separated parts in
 * a copy); the number of parts, or -EINVAL. */
static int split_options(const char *s, char *out, size_t outlen)
{
	int depth = 0, parts = 1;
	bool quoted = false;
	size_t o = 0;

	for (; *s; s++) {
		if (o + 2 > outlen)
			return -EINVAL;
		if (*s == '"') {
			quoted = !quoted;
			continue;
		}
		if (*s == '[')
			depth++;
		if (*s == ']' && --depth < 0)
			return -EINVAL;
		if (*s == ',' && !depth && !quoted) {
			out[o++] = '\0';
			parts++;
			continue;
		}
		out[o++] = *s;
	}
	out[o] = '\0';
	return depth || quoted ? -EINVAL : parts;
}

/* key=value,... into the object o. */
static int parse_options(const struct flag *fl, const char *val, struct json_object *o, char *err,
			 size_t errlen)
{
	size_t len = strlen(val) + 2;
	char *buf = malloc(len);
	int parts = buf ? split_options(val, buf, len) : -ENOMEM, r = 0;

	if (parts == -ENOMEM)
		return NOMEM();
	if (parts < 0)
		r = fail(err, errlen, -EINVAL, "%s %.200s: unbalanced quotes or brackets", fl->flag,
			 val);
	for (int i = 0, next = 0; !r && i < parts; i++) {
		char *p = buf + next, *eq = strchr(p, '=');
		const struct key *k = fl->keys;
		struct json_object *v;

		next += (int)strlen(p) + 1;
		if (!*p && parts == 1)
			break; /* an empty value sets nothing */
		if (eq)
			*eq = '\0';
		while (k->name && strcmp(k->name, p))
			k++;
		if (!k->name) {
			r = fail(err, errlen, -EINVAL, "%s %.200s: unknown option \"%.40s\"",
				 fl->flag, val, p);
		} else if (!eq) {
			r = fail(err, errlen, -EINVAL, "%s %.200s: %s needs a value (%s=...)",
				 fl->flag, val, p, p);
		} else if (!(v = key_value(fl, k, eq + 1, err, errlen))) {
			r = -EINVAL;
		} else if (json_object_object_add(o, k->field, v)) {
			r = NOMEM();
		}
	}
	free(buf);
	return r;
}

/* off|null|tty|pty|file=PATH: {"mode":...[,"file":PATH]}. */
static int parse_mode(const struct flag *fl, const char *val, struct json_object *o, char *err,
		      size_t errlen)
{
	static const char *const modes[][2] = {
		{ "off", "Off" }, { "null", "Null" }, { "tty", "Tty" }, { "pty", "Pty" }
	};
	const char *mode = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
		if (!strcasecmp(val, modes[i][0]))
			mode = modes[i][1];
	if (!mode && !strncmp(val, "file=", 5) && val[5]) {
		mode = "File";
		if (json_object_object_add(o, "file", json_object_new_string(val + 5)))
			return NOMEM();
	}
	if (!mode)
		return fail(err, errlen, -EINVAL,
			    "%s %.200s: want off, null, tty, pty or file=PATH (cvisor has no "
			    "socket backend)",
			    fl->flag, val);
	return json_object_object_add(o, "mode", json_object_new_string(mode)) ? NOMEM() : 0;
}

/* The object the flag fills (made on first use). */
static struct json_object *target(struct api_vm_flags *f, const struct flag *fl)
{
	const char *key = fl->form == F_PAYLOAD ? "payload" : fl->field;
	struct json_object *o = NULL;

	if (!json_object_object_get_ex(f->body, key, &o)) {
		o = fl->form == F_LIST ? json_object_new_array() : json_object_new_object();
		if (!o || json_object_object_add(f->body, key, o))
			return NULL;
	}
	return o;
}

/* One value of fl. */
static int take_value(struct api_vm_flags *f, const struct flag *fl, const char *val, char *err,
		      size_t errlen)
{
	struct json_object *t = target(f, fl), *o;
	int r;

	if (!t)
		return NOMEM();
	switch (fl->form) {
	case F_PAYLOAD:
		return json_object_object_add(t, fl->field, json_object_new_string(val)) ? NOMEM()
											 : 0;
	case F_MODE:
		return parse_mode(fl, val, t, err, errlen);
	case F_OPTIONS:
		return parse_options(fl, val, t, err, errlen);
	case F_LIST:
		if (!(o = json_object_new_object()))
			return NOMEM();
		if ((r = parse_options(fl, val, o, err, errlen)) ||
		    (r = json_object_array_add(t, o) ? NOMEM() : 0)) {
			json_object_put(o);
			return r;
		}
		return 0;
	}
	return 0;
}

int api_vm_flag(struct api_vm_flags *f, int argc, char **argv, int *i, char *err, size_t errlen)
{
	const char *a = argv[*i], *eq = strchr(a, '=');
	size_t n = eq ? (size_t)(eq - a) : strlen(a);
	const struct flag *fl = NULL;
	unsigned int idx;
	int r;

	for (size_t k = 0; k < ARRAY_SIZE(refused); k++)
		if (strlen(refused[k]) == n && !strncmp(a, refused[k], n))
			return fail(err, errlen, -EINVAL,
				    "%.*s: not supported by cvisor (see README: the Cloud "
				    "Hypervisor flags)",
				    (int)n, a);
	for (idx = 0; idx < ARRAY_SIZE(flags); idx++)
		if (strlen(flags[idx].flag) == n && !strncmp(a, flags[idx].flag, n)) {
			fl = &flags[idx];
			break;
		}
	if (!fl)
		return 0;
	if (fl->form != F_LIST && (f->seen & (1u << idx)))
		return fail(err, errlen, -EINVAL, "%s: given twice (it takes one value)", fl->flag);
	f->seen |= 1u << idx;
	if (!f->body && !(f->body = json_object_new_object()))
		return NOMEM();
	if (eq) /* --flag=VALUE: that value alone */
		return take_value(f, fl, eq + 1, err, errlen) < 0 ? -EINVAL : 1;
	if (*i + 1 >= argc || argv[*i + 1][0] == '-') {
		/* --rng alone: the default entropy source */
		if (fl->keys == rng_keys)
			return take_value(f, fl, "", err, errlen) < 0 ? -EINVAL : 1;
		return fail(err, errlen, -EINVAL, "%s needs a value", fl->flag);
	}
	/* --disk and --net: every value up to the next flag. */
	do {
		if ((r = take_value(f, fl, argv[++*i], err, errlen)))
			return r;
	} while (fl->form == F_LIST && *i + 1 < argc && argv[*i + 1][0] != '-');
	return 1;
}

/* The flag a translator message is about: its first word is the field. */
static const char *flag_of(const char *msg)
{
	static const char *const payload[][2] = {
		{ "payload.kernel", "--kernel" },
		{ "payload.cmdline", "--cmdline" },
		{ "payload.initramfs", "--initramfs" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(payload); i++)
		if (!strncmp(msg, payload[i][0], strlen(payload[i][0])))
			return payload[i][1];
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		size_t n = strlen(flags[i].field);

		if (!strncmp(msg, flags[i].field, n) && strchr(".[:", msg[n]))
			return flags[i].flag;
	}
	return "the VM flags";
}

int api_vm_flags_body(struct api_vm_flags *f, char **out, char *err, size_t errlen)
{
	static struct vm_config cfg;
	struct api_vm_io io;
	struct json_object *payload;
	const char *s;
	char msg[512];
	int r;

	*out = NULL;
	if (!f->body)
		return 0;
	/* Cloud Hypervisor makes a VM from its flags only with a kernel. */
	if (!json_object_object_get_ex(f->body, "payload", &payload) ||
	    !json_object_object_get_ex(payload, "kernel", NULL))
		return fail(err, errlen, -EINVAL,
			    "the VM flags need --kernel (without it, vm.create on the API socket "
			    "makes the VM)");
	if (!(s = json_object_to_json_string_ext(f->body, JSON_C_TO_STRING_PLAIN)))
		return NOMEM();
	/* The translator's checks now, so that a bad value ends the VMM
	 * before it serves anything. */
	config_init(&cfg);
	r = api_vm_config(s, strlen(s), &cfg, &io, msg, sizeof(msg));
	config_free(&cfg);
	if (r)
		return fail(err, errlen, r, "%s: %s", flag_of(msg), msg);
	if (!(*out = strdup(s)))
		return NOMEM();
	return 0;
}

void api_vm_flags_free(struct api_vm_flags *f)
{
	json_object_put(f->body);
	f->body = NULL;
	f->seen = 0;
}
