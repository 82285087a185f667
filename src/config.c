/* config.c - `cvisor run` arguments and config files -> struct vm_config;
 * config_out.c writes it back out (the snapshot's CONFIG, `cvisor info`).
 *
 * One description of the config: the field table below (with the device
 * table of devices.c for the device keys). It drives the flags (--KEY,
 * '-' for '_'), the config file's keys, the usage synopsis, the snapshot's
 * CONFIG section and the config part of `cvisor info`.
 *
 * The snapshot's CONFIG payload is the canonical JSON config (the config
 * file's form, CONFIG_VIEW_SNAPSHOT), rather than fields laid out by an
 * X-macro: a restore then reads it through config_apply_json, the parser
 * and range checks every user's config file already goes through, so the
 * snapshot can hold nothing a user could not have asked for; a field added
 * to the table is saved and restored with no format change (an absent key
 * keeps its default, so older files still load); and the section reads as
 * what the user asked for. Version 1 sections (fixed fields) are still
 * read by src/snapshot/load.c. */
#include "cvisor/config.h"

#include <errno.h>
#include <grp.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/cpulist.h"
#include "cvisor/ctl_proto.h"
#include "cvisor/devices.h"
#include "config_priv.h"

#define BAD(...) cv_fail(e, CV_EXIT_USAGE, -EINVAL, __VA_ARGS__)

static int set_str(char **field, const char *v, struct cv_error *e)
{
	return config_set_string(field, v) ? cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory") : 0;
}

static int set_kernel(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	return v[0] ? set_str(&cfg->kernel, v, e) : BAD("%s: empty file name", what);
}

static int set_firmware(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	return v[0] ? set_str(&cfg->firmware, v, e) : BAD("%s: empty file name", what);
}

static int set_initrd(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	return v[0] ? set_str(&cfg->initrd, v, e) : BAD("%s: empty file name", what);
}

/* --module FILE[,ARGS], repeatable: the list is kept one module a line
 * ("FILE[,ARGS]\n..."), which is also its config-file form. */
static int set_module(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	size_t old = cfg->modules ? strlen(cfg->modules) + 1 : 0, n = strlen(v);
	/* The modules so far (one a line), this one, and the lines in v. */
	unsigned int count = (cfg->modules ? 1 : 0) + 1;
	char *s;

	if (!v[0] || v[0] == ',' || v[0] == '\n')
		return BAD("%s: empty file name", what);
	for (const char *p = cfg->modules; p && *p; p++)
		count += *p == '\n';
	for (const char *p = v; *p; p++)
		count += *p == '\n';
	if (count > CONFIG_MAX_MODULES || old + n >= CONFIG_CMDLINE_MAX)
		return BAD("%s: at most %d modules, %d bytes in all", what, CONFIG_MAX_MODULES,
			   CONFIG_CMDLINE_MAX - 1);
	if (!(s = realloc(cfg->modules, old + n + 1)))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	if (old)
		s[old - 1] = '\n';
	memcpy(s + old, v, n + 1);
	cfg->modules = s;
	return 0;
}

static int set_config_file(struct vm_config *cfg, const char *what, const char *v,
			   struct cv_error *e)
{
	return v[0] ? set_str(&cfg->config_file, v, e) : BAD("%s: empty file name", what);
}

static int set_cmdline(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	if (strlen(v) >= CONFIG_CMDLINE_MAX)
		return BAD("%s: longer than %d bytes", what, CONFIG_CMDLINE_MAX - 1);
	memcpy(cfg->cmdline, v, strlen(v) + 1);
	return 0;
}

/* A memory size of at least CONFIG_MIN_MEM (--memory, --memory-limit). */
static int parse_mem_size(const char *what, const char *v, uint64_t *sz, struct cv_error *e)
{
	if (cv_parse_size(v, 1, sz))
		return BAD("%s %s: not a size (try 512M or 2G)", what, v);
	if (*sz < CONFIG_MIN_MEM)
		return BAD("%s %s: at least %lluM is needed", what, v, CONFIG_MIN_MEM >> 20);
	return 0;
}

static int set_memory(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	uint64_t sz;
	int r;

	if ((r = parse_mem_size(what, v, &sz, e)))
		return r;
	if (sz % 4096)
		return BAD("%s %s: must be a multiple of 4 KiB", what, v);
	cfg->mem_size = sz;
	return 0;
}

static int set_memory_limit(struct vm_config *cfg, const char *what, const char *v,
			    struct cv_error *e)
{
	return parse_mem_size(what, v, &cfg->memory_limit, e);
}

static int set_cpus(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	uint64_t n;

	if (cv_parse_uint(v, 1, CONFIG_MAX_CPUS, &n))
		return BAD("%s %s: must be a number from 1 to %d", what, v, CONFIG_MAX_CPUS);
	cfg->ncpus = (unsigned int)n;
	return 0;
}

static const char *const quirks_names[] = { "auto", "on", "off", NULL };
static const char *const pit_names[] = { "auto", "on", "off", NULL };
static const char *const irqchip_names[] = { "kernel", "split", NULL };
/* In the order of enum config_serial. */
static const char *const serial_names[] = { "tty", "pty", "off", NULL };
/* In the order of enum config_reboot. */
static const char *const reboot_names[] = { "exit", "restart", NULL };
static const char *const transport_names[] = { "pci", "mmio", NULL };
/* In the order of enum sandbox_mode. */
static const char *const seccomp_names[] = { "on", "log", "off", NULL };

/* An F_ENUM field: v one of f->names, stored as its index. */
static int set_enum(struct vm_config *cfg, const struct field *f, const char *what, const char *v,
		    struct cv_error *e)
{
	char list[64] = "";
	size_t n = 0;
	int i;

	for (i = 0; f->names[i]; i++)
		if (!strcmp(f->names[i], v)) {
			*FIELD(cfg, f, int) = i;
			return 0;
		}
	for (i = 0; f->names[i] && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", f->names[i],
				      !f->names[i + 1]	 ? ""
				      : !f->names[i + 2] ? " or "
							 : ", ");
	return BAD("%s %s: must be %s", what, v, list);
}

/* Set field f from the text v (what names it in a message). */
static int field_set(struct vm_config *cfg, const struct field *f, const char *what, const char *v,
		     struct cv_error *e)
{
	return f->type == F_ENUM ? set_enum(cfg, f, what, v, e) : f->set(cfg, what, v, e);
}

/* --uid, --gid: a number, not 0 (the jail's point is not to be root). */
static int set_id(unsigned int *id, const char *what, const char *v, struct cv_error *e)
{
	uint64_t n;

	if (cv_parse_uint(v, 1, 4294967294ULL, &n))
		return BAD("%s %.80s: must be a number from 1 to 4294967294 (not 0: the jail runs "
			   "unprivileged)",
			   what, v);
	*id = (unsigned int)n;
	return 0;
}

static int set_uid(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	return set_id(&cfg->jail.uid, what, v, e);
}

static int set_gid(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	return set_id(&cfg->jail.gid, what, v, e);
}

static int set_jail_dir(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	return v[0] ? set_str(&cfg->jail.dir, v, e) : BAD("%s: empty directory name", what);
}

static int set_netns(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	return v[0] ? set_str(&cfg->jail.netns, v, e) : BAD("%s: empty file name", what);
}

static int set_name(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	if (!ctl_name_valid(v))
		return BAD("%s %.80s: names are 1 to %d letters, digits, '_', '.' or '-', "
			   "not starting with '.' or '-'",
			   what, v, CTL_NAME_MAX);
	return set_str(&cfg->name, v, e);
}

static int set_weight(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	uint64_t n;

	if (cv_parse_uint(v, 1, CONFIG_MAX_CPU_WEIGHT, &n))
		return BAD("%s %s: must be a number from 1 to %d (default %d)", what, v,
			   CONFIG_MAX_CPU_WEIGHT, CONFIG_DEFAULT_CPU_WEIGHT);
	cfg->cpu_weight = (unsigned int)n;
	return 0;
}

static int set_cap(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	uint64_t n;

	if (cv_parse_uint(v, 1, CONFIG_MAX_CPU_CAP, &n))
		return BAD("%s %s: must be a percentage of one host CPU from 1 to %d", what, v,
			   CONFIG_MAX_CPU_CAP);
	cfg->cpu_cap = (unsigned int)n;
	return 0;
}

static int set_affinity(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	cpu_set_t set;

	if (cpulist_parse(v, &set))
		return BAD("%s %.80s: not a CPU list (try 0-3,6)", what, v);
	return set_str(&cfg->cpu_affinity, v, e);
}

/* A group that exists here, by name or number (its members may use the
 * control socket). */
static int set_ctl_group(struct vm_config *cfg, const char *what, const char *v, struct cv_error *e)
{
	uint64_t gid;

	if (!getgrnam(v) && (cv_parse_uint(v, 0, UINT32_MAX - 1, &gid) || !getgrgid((gid_t)gid)))
		return BAD("%s %.80s: no such group", what, v);
	return set_str(&cfg->ctl_group, v, e);
}

const struct field config_fields[] = {
#define OFF(m) offsetof(struct vm_config, m)
	{ "kernel", "--kernel FILE", F_STR, OFF(kernel), set_kernel, NULL,
	  IN_FILE | IN_SNAP | IN_INFO },
	{ "firmware", "| --firmware FILE", F_STR, OFF(firmware), set_firmware, NULL,
	  IN_FILE | IN_SNAP | IN_INFO },
	{ "initrd", "[--initrd FILE]", F_STR, OFF(initrd), set_initrd, NULL,
	  IN_FILE | IN_SNAP | IN_INFO },
	{ "module", "[--module FILE[,ARGS]]...", F_STR, OFF(modules), set_module, NULL,
	  IN_FILE | IN_SNAP | IN_INFO },
	{ "cmdline", "[--cmdline STR]", F_CHARS, OFF(cmdline), set_cmdline, NULL,
	  IN_FILE | IN_SNAP | IN_INFO },
	{ "memory", "[--memory SIZE]", F_SIZE, OFF(mem_size), set_memory, NULL,
	  IN_FILE | IN_SNAP | IN_INFO },
	{ "cpus", "[--cpus N]", F_UINT, OFF(ncpus), set_cpus, NULL, IN_FILE | IN_SNAP },
	{ "emulated_host", "[--emulated-host auto|on|off]", F_ENUM, OFF(quirks), NULL, quirks_names,
	  IN_FILE | IN_SNAP },
	{ "pit", "[--pit auto|on|off]", F_ENUM, OFF(pit), NULL, pit_names, IN_FILE | IN_SNAP },
	{ "irqchip", "[--irqchip kernel|split]", F_ENUM, OFF(irqchip), NULL, irqchip_names,
	  IN_FILE | IN_SNAP },
	{ "serial", "[--serial tty|pty|off]", F_ENUM, OFF(serial), NULL, serial_names,
	  IN_FILE | IN_SNAP | IN_INFO },
	/* In the snapshot so that a restored guest's reset says why it ends. */
	{ "on_reboot", "[--on-reboot exit|restart]", F_ENUM, OFF(on_reboot), NULL, reboot_names,
	  IN_FILE | IN_SNAP | IN_INFO },
	{ "config", "[--config FILE]", F_STR, OFF(config_file), set_config_file, NULL, 0 },
	{ "name", "[--name NAME [-d]]", F_STR, OFF(name), set_name, NULL, IN_FILE },
	{ "detach", NULL, F_BOOL, OFF(detach), NULL, NULL, IN_FILE },
	{ "cpu_weight", "[--cpu-weight N]", F_UINT, OFF(cpu_weight), set_weight, NULL,
	  IN_FILE | IN_SNAP | IN_INFO },
	{ "cpu_cap", "[--cpu-cap PERCENT]", F_UINT, OFF(cpu_cap), set_cap, NULL,
	  IN_FILE | IN_SNAP | IN_INFO },
	{ "memory_limit", "[--memory-limit SIZE]", F_SIZE, OFF(memory_limit), set_memory_limit,
	  NULL, IN_FILE | IN_SNAP | IN_INFO },
	{ "cpu_affinity", "[--cpu-affinity CPULIST]", F_STR, OFF(cpu_affinity), set_affinity, NULL,
	  IN_FILE | IN_SNAP | IN_INFO },
	{ "ctl_group", "[--ctl-group GROUP]", F_STR, OFF(ctl_group), set_ctl_group, NULL,
	  IN_FILE | IN_INFO },
	{ "virtio", "[--virtio pci|mmio]", F_ENUM, OFF(devices.transport), NULL, transport_names,
	  IN_FILE | IN_SNAP },
	/* The host's choice, not the guest's: not in the snapshot. */
	{ "seccomp", "[--seccomp on|log|off]", F_ENUM, OFF(seccomp), NULL, seccomp_names, IN_FILE },
	{ "jail", "[--jail [--jail-dir DIR] [--netns PATH] [--uid N] [--gid N]]", F_BOOL,
	  OFF(jail.on), NULL, NULL, IN_FILE },
	{ "jail_dir", NULL, F_STR, OFF(jail.dir), set_jail_dir, NULL, IN_FILE },
	{ "netns", NULL, F_STR, OFF(jail.netns), set_netns, NULL, IN_FILE },
	{ "uid", NULL, F_UINT, OFF(jail.uid), set_uid, NULL, IN_FILE },
	{ "gid", NULL, F_UINT, OFF(jail.gid), set_gid, NULL, IN_FILE },
	{ "ksm", "[--ksm]", F_BOOL, OFF(ksm), NULL, NULL, IN_FILE | IN_INFO },
#undef OFF
};
const size_t config_nfields = ARRAY_SIZE(config_fields);

void config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = CONFIG_DEFAULT_MEM;
	cfg->ncpus = 1;
	cfg->cpu_weight = CONFIG_DEFAULT_CPU_WEIGHT;
}

int config_set_string(char **field, const char *value)
{
	char *copy = NULL;

	if (value && !(copy = strdup(value)))
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

int config_copy_host(struct vm_config *dst, const struct vm_config *src)
{
	dst->seccomp = src->seccomp;
	dst->ksm = src->ksm;
	dst->jail.on = src->jail.on;
	dst->jail.uid = src->jail.uid;
	dst->jail.gid = src->jail.gid;
	if (config_set_string(&dst->jail.dir, src->jail.dir) ||
	    config_set_string(&dst->jail.netns, src->jail.netns) ||
	    config_set_string(&dst->ctl_group, src->ctl_group))
		return -ENOMEM;
	return 0;
}

void config_free(struct vm_config *cfg)
{
	for (size_t i = 0; i < config_nfields; i++) {
		if (config_fields[i].type == F_STR) {
			free(*FIELD(cfg, &config_fields[i], char *));
			*FIELD(cfg, &config_fields[i], char *) = NULL;
		}
	}
	devices_config_free(&cfg->devices);
}

/* ---- flags ---- */

int config_set_field(struct vm_config *cfg, const char *key, const char *flag, const char *val,
		     struct cv_error *e)
{
	for (size_t k = 0; k < config_nfields; k++)
		if (!strcmp(config_fields[k].key, key) && config_fields[k].type != F_BOOL)
			return field_set(cfg, &config_fields[k], flag, val, e);
	return cv_fail(e, CV_EXIT_FAIL, -ENOENT, "%s: no such setting", flag);
}

/* The flag of a key: "--cpu-weight" for "cpu_weight". */
static void flag_of(const char *key, char *flag, size_t len)
{
	snprintf(flag, len, "--%s", key);
	for (char *p = flag; *p; p++)
		*p = *p == '_' ? '-' : *p;
}

/* argv[*i] is "--FLAG", "--FLAG=VALUE" or "--FLAG VALUE" for flag? 1 with
 * *val set (NULL without one; *i advanced past a separate value when
 * `takes`), 0 if not this flag. */
static int match_flag(int argc, char **argv, int *i, const char *flag, bool takes, const char **val,
		      struct cv_error *e)
{
	const char *a = argv[*i];
	size_t n = strlen(flag);

	*val = NULL;
	if (strncmp(a, flag, n) || (a[n] != '\0' && a[n] != '='))
		return 0;
	if (a[n] == '=')
		*val = a + n + 1;
	else if (takes && *i + 1 < argc)
		*val = argv[++*i];
	else if (takes)
		return BAD("%s needs a value", flag);
	if (*val && !takes)
		return BAD("%s takes no value", flag);
	return 1;
}

/* A field's or a device's flag at argv[*i]: 1 if taken, 0 if neither. */
static int apply_flag(int argc, char **argv, int *i, struct vm_config *cfg, struct cv_error *e)
{
	const struct device_type *types;
	unsigned int ntypes;
	char flag[32];
	const char *v;
	int r;

	for (size_t k = 0; k < config_nfields; k++) {
		const struct field *f = &config_fields[k];

		flag_of(f->key, flag, sizeof(flag));
		if ((r = match_flag(argc, argv, i, flag, f->type != F_BOOL, &v, e)) <= 0) {
			if (r < 0)
				return r;
			continue;
		}
		if (f->type == F_BOOL)
			*FIELD(cfg, f, bool) = true;
		else if ((r = field_set(cfg, f, flag, v, e)))
			return r;
		return 1;
	}
	types = devices_table(&ntypes);
	for (unsigned int k = 0; k < ntypes; k++) {
		flag_of(types[k].key, flag, sizeof(flag));
		if ((r = match_flag(argc, argv, i, flag, types[k].arg != NULL, &v, e)) <= 0) {
			if (r < 0)
				return r;
			continue;
		}
		if ((r = devices_add(&cfg->devices, &types[k], flag, v ? v : "", e)))
			return r;
		return 1;
	}
	return 0;
}

int config_apply_flags(int argc, char **argv, struct vm_config *cfg, struct cv_error *e)
{
	for (int i = 1; i < argc; i++) {
		int r;

		if (!strcmp(argv[i], "-d")) {
			cfg->detach = true;
			continue;
		}
		if ((r = apply_flag(argc, argv, &i, cfg, e)) < 0)
			return r;
		if (r > 0)
			continue;
		if (argv[i][0] == '-')
			return BAD("run: unknown flag %s (see cvisor run --help)", argv[i]);
		return BAD("run: unexpected argument %s", argv[i]);
	}
	return 0;
}

/* ---- the config file ---- */

/* "FILE:LINE:COL" of byte off in text. */
static void text_position(const char *text, size_t off, unsigned int *line, unsigned int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* A JSON value as the text a flag would carry: a string, or an integer
 * where ints is set. NULL with e filled ("must be ...") otherwise. */
static const char *value_text(const char *what, struct json_object *val, bool ints,
			      const char *want, char *num, size_t numlen, struct cv_error *e)
{
	const char *v;

	if (ints && json_object_is_type(val, json_type_int)) {
		snprintf(num, numlen, "%lld", (long long)json_object_get_int64(val));
		return num;
	}
	if (!json_object_is_type(val, json_type_string))
		return BAD("%s: must be %s", what, want), NULL;
	v = json_object_get_string(val);
	/* An embedded NUL would silently shorten the value. */
	if (strlen(v) != (size_t)json_object_get_string_len(val))
		return BAD("%s: contains a NUL character", what), NULL;
	return v;
}

/* A device key: true for a flag without value, a string (or a number
 * for a size), or a list of them for a repeatable device. */
static int apply_device_key(const char *what, const struct device_type *t, struct json_object *val,
			    struct vm_config *cfg, struct cv_error *e)
{
	char num[32];
	const char *v;
	int r;

	if (!t->arg) {
		if (!json_object_is_type(val, json_type_boolean))
			return BAD("%s: must be true or false", what);
		return json_object_get_boolean(val) ? devices_add(&cfg->devices, t, what, "", e)
						    : 0;
	}
	if (t->max > 1 && json_object_is_type(val, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(val); i++)
			if ((r = apply_device_key(what, t, json_object_array_get_idx(val, i), cfg,
						  e)))
				return r;
		return 0;
	}
	if (!(v = value_text(what, val, t->size_value, "a string", num, sizeof(num), e)))
		return -EINVAL;
	return devices_add(&cfg->devices, t, what, v, e);
}

/* "(keys: kernel, initrd, ...)" for the unknown key message. */
static void key_list(char *buf, size_t len)
{
	unsigned int nt;
	const struct device_type *t = devices_table(&nt);
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < config_nfields && n < len; i++)
		if (config_fields[i].in & IN_FILE)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
					      config_fields[i].key);
	for (unsigned int i = 0; i < nt && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, ", %s", t[i].key);
}

static int apply_key(const char *file, const char *key, struct json_object *val,
		     struct vm_config *cfg, struct cv_error *e)
{
	const struct field *f = NULL;
	const struct device_type *t = devices_type(key);
	char what[160], num[32], keys[256];
	const char *v;

	for (size_t k = 0; k < config_nfields && !f; k++)
		if ((config_fields[k].in & IN_FILE) && !strcmp(config_fields[k].key, key))
			f = &config_fields[k];
	snprintf(what, sizeof(what), "%s: %s", file, key);
	if (!f && t)
		return apply_device_key(what, t, val, cfg, e);
	if (!f) {
		key_list(keys, sizeof(keys));
		return BAD("%s: unknown key \"%.64s\" (keys: %s)", file, key, keys);
	}
	if (f->type == F_BOOL) {
		if (!json_object_is_type(val, json_type_boolean))
			return BAD("%s: must be true or false", what);
		*FIELD(cfg, f, bool) = json_object_get_boolean(val);
		return 0;
	}
	if (f->type == F_UINT && !json_object_is_type(val, json_type_int))
		return BAD("%s: must be an integer", what);
	v = value_text(what, val, f->type == F_UINT || f->type == F_SIZE,
		       f->type == F_SIZE ? "a size such as \"512M\" or a number of MiB"
					 : "a string",
		       num, sizeof(num), e);
	return v ? field_set(cfg, f, what, v, e) : -EINVAL;
}

int config_apply_json(const char *file, const char *text, size_t len, struct vm_config *cfg,
		      struct cv_error *e)
{
	struct json_object *root;
	const char *desc;
	unsigned int line, col;
	size_t off;
	int r;

	if (len > CONFIG_FILE_MAX)
		return BAD("%s: larger than %d bytes", file, CONFIG_FILE_MAX);
	/* Not strict: json-c's relaxed mode allows comments in the file. */
	if ((r = ctl_json_parse(text, len, false, &root, &off, &desc))) {
		if (r == -ENOMEM)
			return BAD("%s: out of memory", file);
		/* json-c parses a lone `null` as no object and no error. */
		if (desc == json_tokener_error_desc(json_tokener_success))
			return BAD("%s: the top level must be a JSON object ({\"kernel\": ...}), "
				   "not null",
				   file);
		text_position(text, off, &line, &col);
		return BAD("%s:%u:%u: malformed JSON: %s", file, line, col, desc);
	}
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return BAD("%s: the top level must be a JSON object ({\"kernel\": ...})", file);
	}
	r = 0;
	json_object_object_foreach(root, key, val)
	{
		if ((r = apply_key(file, key, val, cfg, e)))
			break;
	}
	/* cfg holds copies: the tree goes now. */
	json_object_put(root);
	return r;
}

int config_check(const struct vm_config *cfg, struct cv_error *e)
{
	if (cfg->firmware && cfg->kernel)
		return BAD("run: --kernel and --firmware exclude each other (firmware boots "
			   "from --disk); give one");
	if (cfg->firmware && (cfg->initrd || cfg->cmdline[0]))
		return BAD("run: --firmware boots from --disk: --initrd and --cmdline belong "
			   "with --kernel");
	if (cfg->firmware && cfg->devices.transport == VIRTIO_TRANSPORT_MMIO)
		return BAD("run: --firmware needs --virtio pci (the firmware finds disks on "
			   "PCI)");
	if (cfg->firmware && cfg->modules)
		return BAD("run: --module belongs with a multiboot --kernel");
	if (!cfg->firmware && (!cfg->kernel || !cfg->kernel[0]))
		return BAD("run: --kernel FILE is required (or --firmware FILE)");
	if (cfg->detach && !cfg->name)
		return BAD("run: -d needs --name NAME (a detached guest is reached by its name)");
	return config_check_irqchip(cfg, e);
}

int config_check_irqchip(const struct vm_config *cfg, struct cv_error *e)
{
	if (cfg->irqchip == CONFIG_IRQCHIP_SPLIT && cfg->pit == CONFIG_PIT_ON)
		return BAD("--irqchip split has no in-kernel PIT: drop --pit on (or use "
			   "--irqchip kernel)");
	return 0;
}

bool config_pit_on(const struct vm_config *cfg)
{
	return cfg->pit == CONFIG_PIT_ON ||
	       (cfg->pit == CONFIG_PIT_AUTO && cfg->irqchip == CONFIG_IRQCHIP_KERNEL);
}
