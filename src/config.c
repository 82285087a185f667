/* config.c - `cvisor run` arguments and config files -> struct vm_config.
 * Pure: no I/O (the caller reads the config file). */
#include "cvisor/config.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/cpulist.h"
#include "cvisor/ctl_proto.h"
#include "cvisor/devices.h"

/* Values quoted from the input must not break the one-line rule. */
static int one_line(char *err)
{
	for (char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return -EINVAL;
}

/* Setters shared by the flags and the file: `what` is "--memory" for a
 * flag and "FILE: memory" for a key, so that messages name either. */
typedef int (*setter_fn)(struct vm_config *cfg, const char *what, const char *v, char *err,
			 size_t errlen);

static int set_kernel(struct vm_config *cfg, const char *what, const char *v, char *err,
		      size_t errlen)
{
	if (!v[0])
		return cv_errf(err, errlen, -EINVAL, "%s: empty file name", what);
	cfg->kernel = v;
	return 0;
}

static int set_initrd(struct vm_config *cfg, const char *what, const char *v, char *err,
		      size_t errlen)
{
	if (!v[0])
		return cv_errf(err, errlen, -EINVAL, "%s: empty file name", what);
	cfg->initrd = v;
	return 0;
}

static int set_cmdline(struct vm_config *cfg, const char *what, const char *v, char *err,
		       size_t errlen)
{
	if (strlen(v) >= 4096)
		return cv_errf(err, errlen, -EINVAL, "%s: longer than 4095 bytes", what);
	cfg->cmdline = v;
	return 0;
}

/* A memory size of at least CONFIG_MIN_MEM (--memory, --memory-limit). */
static int parse_mem_size(const char *what, const char *v, uint64_t *sz, char *err, size_t errlen)
{
	if (cv_parse_size(v, 1, sz))
		return cv_errf(err, errlen, -EINVAL, "%s %s: not a size (try 512M or 2G)", what, v);
	if (*sz < CONFIG_MIN_MEM)
		return cv_errf(err, errlen, -EINVAL, "%s %s: at least %lluM is needed", what, v,
			       CONFIG_MIN_MEM >> 20);
	return 0;
}

static int set_memory(struct vm_config *cfg, const char *what, const char *v, char *err,
		      size_t errlen)
{
	uint64_t sz;
	int r;

	if ((r = parse_mem_size(what, v, &sz, err, errlen)))
		return r;
	if (sz % 4096)
		return cv_errf(err, errlen, -EINVAL, "%s %s: must be a multiple of 4 KiB", what, v);
	cfg->mem_size = sz;
	return 0;
}

static int set_cpus(struct vm_config *cfg, const char *what, const char *v, char *err,
		    size_t errlen)
{
	uint64_t n;

	if (cv_parse_uint(v, 1, CONFIG_MAX_CPUS, &n))
		return cv_errf(err, errlen, -EINVAL, "%s %s: must be a number from 1 to %d", what,
			       v, CONFIG_MAX_CPUS);
	cfg->ncpus = (unsigned int)n;
	return 0;
}

static int set_quirks(struct vm_config *cfg, const char *what, const char *v, char *err,
		      size_t errlen)
{
	if (!strcmp(v, "auto"))
		cfg->quirks = CONFIG_QUIRKS_AUTO;
	else if (!strcmp(v, "on"))
		cfg->quirks = CONFIG_QUIRKS_ON;
	else if (!strcmp(v, "off"))
		cfg->quirks = CONFIG_QUIRKS_OFF;
	else
		return cv_errf(err, errlen, -EINVAL, "%s %s: must be auto, on or off", what, v);
	return 0;
}

static int set_name(struct vm_config *cfg, const char *what, const char *v, char *err,
		    size_t errlen)
{
	if (!ctl_name_valid(v))
		return cv_errf(err, errlen, -EINVAL,
			       "%s %.80s: names are 1 to %d letters, digits, '_', '.' or '-', "
			       "not starting with '.' or '-'",
			       what, v, CTL_NAME_MAX);
	cfg->name = v;
	return 0;
}

static int set_weight(struct vm_config *cfg, const char *what, const char *v, char *err,
		      size_t errlen)
{
	uint64_t n;

	if (cv_parse_uint(v, 1, CONFIG_MAX_CPU_WEIGHT, &n))
		return cv_errf(err, errlen, -EINVAL,
			       "%s %s: must be a number from 1 to %d (default %d)", what, v,
			       CONFIG_MAX_CPU_WEIGHT, CONFIG_DEFAULT_CPU_WEIGHT);
	cfg->cpu_weight = (unsigned int)n;
	return 0;
}

static int set_cap(struct vm_config *cfg, const char *what, const char *v, char *err, size_t errlen)
{
	uint64_t n;

	if (cv_parse_uint(v, 1, CONFIG_MAX_CPU_CAP, &n))
		return cv_errf(err, errlen, -EINVAL,
			       "%s %s: must be a percentage of one host CPU from 1 to %d", what, v,
			       CONFIG_MAX_CPU_CAP);
	cfg->cpu_cap = (unsigned int)n;
	return 0;
}

static int set_memory_limit(struct vm_config *cfg, const char *what, const char *v, char *err,
			    size_t errlen)
{
	uint64_t sz;
	int r;

	if ((r = parse_mem_size(what, v, &sz, err, errlen)))
		return r;
	cfg->memory_limit = sz;
	return 0;
}

static int set_affinity(struct vm_config *cfg, const char *what, const char *v, char *err,
			size_t errlen)
{
	cpu_set_t set;

	if (cpulist_parse(v, &set))
		return cv_errf(err, errlen, -EINVAL, "%s %.80s: not a CPU list (try 0-3,6)", what,
			       v);
	cfg->cpu_affinity = v;
	return 0;
}

static int set_config_file(struct vm_config *cfg, const char *what, const char *v, char *err,
			   size_t errlen)
{
	if (!v[0])
		return cv_errf(err, errlen, -EINVAL, "%s: empty file name", what);
	cfg->config_file = v;
	return 0;
}

/* How a key's JSON value becomes the setter's text. */
enum jkind {
	J_STRING,
	J_INT,	  /* an integer */
	J_SIZE,	  /* a size string ("512M") or an integer (MiB, like the flag) */
	J_NONE,	  /* flag only */
	J_DETACH, /* a boolean */
};

static const struct option {
	const char *flag;
	const char *key;
	setter_fn set;
	enum jkind kind;
} options[] = {
	{ "--kernel", "kernel", set_kernel, J_STRING },
	{ "--initrd", "initrd", set_initrd, J_STRING },
	{ "--cmdline", "cmdline", set_cmdline, J_STRING },
	{ "--memory", "memory", set_memory, J_SIZE },
	{ "--cpus", "cpus", set_cpus, J_INT },
	{ "--emulated-host", "emulated_host", set_quirks, J_STRING },
	{ "--name", "name", set_name, J_STRING },
	{ "--cpu-weight", "cpu_weight", set_weight, J_INT },
	{ "--cpu-cap", "cpu_cap", set_cap, J_INT },
	{ "--memory-limit", "memory_limit", set_memory_limit, J_SIZE },
	{ "--cpu-affinity", "cpu_affinity", set_affinity, J_STRING },
	{ "--config", NULL, set_config_file, J_NONE },
	{ "--detach", "detach", NULL, J_DETACH },
};

void config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = CONFIG_DEFAULT_MEM;
	cfg->ncpus = 1;
	cfg->cmdline = "";
	cfg->cpu_weight = CONFIG_DEFAULT_CPU_WEIGHT;
}

void config_free(struct vm_config *cfg)
{
	json_object_put(cfg->json);
	cfg->json = NULL;
	free(cfg->strings);
	cfg->strings = NULL;
}

/* Match "--name VALUE" or "--name=VALUE"; advances *i past the value. */
static int take_value(int argc, char **argv, int *i, const char *name, const char **val, char *err,
		      size_t errlen)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return cv_errf(err, errlen, -EINVAL, "%s needs a value", name);
	*val = argv[++*i];
	return 1;
}

/* Does devices_parse_flag take flag (value or not)? Asked on a scratch
 * config, so that nothing is recorded. */
static bool is_device_flag(const char *flag)
{
	struct devices_config scratch = { 0 };
	char err[128];

	return devices_flag_is_bool(flag) ||
	       devices_parse_flag(&scratch, flag, "", err, sizeof(err)) != 0;
}

/* The device flags (--disk, --net, --rng, --balloon, --vsock, --virtio)
 * belong to devices.c: 1 when argv[*i] was one, 0 when it is not. */
static int device_flag(int argc, char **argv, int *i, struct vm_config *cfg, char *err,
		       size_t errlen)
{
	char flag[32];
	const char *a = argv[*i], *eq = strchr(a, '='), *v = NULL;
	size_t n = eq ? (size_t)(eq - a) : strlen(a);

	if (strncmp(a, "--", 2) || n >= sizeof(flag))
		return 0;
	memcpy(flag, a, n);
	flag[n] = '\0';
	if (!is_device_flag(flag))
		return 0;
	if (eq)
		v = eq + 1;
	else if (!devices_flag_is_bool(flag) && *i + 1 < argc)
		v = argv[++*i];
	else if (!devices_flag_is_bool(flag))
		return cv_errf(err, errlen, -EINVAL, "%s needs a value", flag);
	if (v && devices_flag_is_bool(flag))
		return cv_errf(err, errlen, -EINVAL, "%s takes no value", flag);
	return devices_parse_flag(&cfg->devices, flag, v, err, errlen) < 0 ? one_line(err) : 1;
}

int config_apply_flags(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
{
	for (int i = 1; i < argc; i++) {
		const struct option *o = NULL;
		const char *v = NULL;
		int r = 0;

		if (!strcmp(argv[i], "-d") || !strcmp(argv[i], "--detach")) {
			cfg->detach = true;
			continue;
		}
		for (size_t k = 0; k < ARRAY_SIZE(options) && !r; k++) {
			if (!options[k].set)
				continue;
			r = take_value(argc, argv, &i, options[k].flag, &v, err, errlen);
			o = &options[k];
		}
		if (r < 0)
			return r;
		if (r > 0) {
			if ((r = o->set(cfg, o->flag, v, err, errlen)))
				return r;
			continue;
		}
		if ((r = device_flag(argc, argv, &i, cfg, err, errlen)) < 0)
			return r;
		if (r > 0)
			continue;
		if (argv[i][0] == '-')
			return cv_errf(err, errlen, -EINVAL,
				       "run: unknown flag %s (see cvisor run --help)", argv[i]);
		return cv_errf(err, errlen, -EINVAL, "run: unexpected argument %s", argv[i]);
	}
	return 0;
}

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

/* One device value (a string, or an integer for a size) to devices.c. */
static int apply_device_value(const char *file, const char *key, const char *flag,
			      struct json_object *val, struct vm_config *cfg, char *err,
			      size_t errlen)
{
	char num[32], msg[256];
	const char *v;

	if (json_object_is_type(val, json_type_int)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(val));
		v = num;
		/* devices.c keeps the pointer: only sizes may be numbers. */
		if (strcmp(flag, "--balloon"))
			return cv_errf(err, errlen, -EINVAL, "%s: %s: must be a string", file, key);
	} else if (json_object_is_type(val, json_type_string)) {
		v = json_object_get_string(val);
		if (strlen(v) != (size_t)json_object_get_string_len(val))
			return cv_errf(err, errlen, -EINVAL, "%s: %s: contains a NUL character",
				       file, key);
	} else {
		return cv_errf(err, errlen, -EINVAL, "%s: %s: must be a string", file, key);
	}
	if (devices_parse_flag(&cfg->devices, flag, v, msg, sizeof(msg)) < 0)
		return cv_errf(err, errlen, -EINVAL, "%s: %s", file, msg);
	return 0;
}

/* Device keys: "rng": true; "disk" and "net": a string or a list of them;
 * the others: a string (or a size for "balloon"). */
static int apply_device_key(const char *file, const char *key, const char *flag,
			    struct json_object *val, struct vm_config *cfg, char *err,
			    size_t errlen)
{
	char msg[256];
	int r;

	if (devices_flag_is_bool(flag)) {
		if (!json_object_is_type(val, json_type_boolean))
			return cv_errf(err, errlen, -EINVAL, "%s: %s: must be true or false", file,
				       key);
		if (json_object_get_boolean(val) &&
		    devices_parse_flag(&cfg->devices, flag, NULL, msg, sizeof(msg)) < 0)
			return cv_errf(err, errlen, -EINVAL, "%s: %s", file, msg);
		return 0;
	}
	if (!json_object_is_type(val, json_type_array))
		return apply_device_value(file, key, flag, val, cfg, err, errlen);
	if (strcmp(key, "disk") && strcmp(key, "net"))
		return cv_errf(err, errlen, -EINVAL, "%s: %s: must be a string", file, key);
	for (size_t i = 0; i < json_object_array_length(val); i++)
		if ((r = apply_device_value(file, key, flag, json_object_array_get_idx(val, i), cfg,
					    err, errlen)))
			return r;
	return 0;
}

static int apply_key(const char *file, const char *key, struct json_object *val,
		     struct vm_config *cfg, char *err, size_t errlen)
{
	const struct option *o = NULL;
	char what[160], num[32];
	const char *v;

	for (size_t k = 0; k < ARRAY_SIZE(options) && !o; k++)
		if (options[k].key && !strcmp(options[k].key, key))
			o = &options[k];
	if (!o && strlen(key) < 24) {
		snprintf(what, sizeof(what), "--%s", key);
		for (char *p = what; *p; p++)
			*p = *p == '_' ? '-' : *p;
		if (!strchr(key, '-') && is_device_flag(what))
			return apply_device_key(file, key, what, val, cfg, err, errlen);
	}
	if (!o)
		return cv_errf(
			err, errlen, -EINVAL,
			"%s: unknown key \"%.64s\" (keys: kernel, initrd, cmdline, memory, "
			"cpus, name, detach, cpu_weight, cpu_cap, memory_limit, cpu_affinity, "
			"emulated_host, disk, net, rng, balloon, vsock, virtio)",
			file, key);
	snprintf(what, sizeof(what), "%s: %s", file, key);
	if (o->kind == J_DETACH) {
		if (!json_object_is_type(val, json_type_boolean))
			return cv_errf(err, errlen, -EINVAL, "%s: must be true or false", what);
		cfg->detach = json_object_get_boolean(val);
		return 0;
	}
	if ((o->kind == J_INT || o->kind == J_SIZE) && json_object_is_type(val, json_type_int)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(val));
		v = num;
	} else if (o->kind != J_INT && json_object_is_type(val, json_type_string)) {
		v = json_object_get_string(val);
		/* An embedded NUL would silently shorten the value. */
		if (strlen(v) != (size_t)json_object_get_string_len(val))
			return cv_errf(err, errlen, -EINVAL, "%s: contains a NUL character", what);
	} else {
		return cv_errf(err, errlen, -EINVAL, "%s: must be %s", what,
			       o->kind == J_INT	   ? "an integer"
			       : o->kind == J_SIZE ? "a size such as \"512M\" or a number of MiB"
						   : "a string");
	}
	return o->set(cfg, what, v, err, errlen);
}

int config_apply_json(const char *file, const char *text, size_t len, struct vm_config *cfg,
		      char *err, size_t errlen)
{
	struct json_object *root;
	const char *desc;
	unsigned int line, col;
	size_t off;
	int r;

	if (len > CONFIG_FILE_MAX)
		return cv_errf(err, errlen, -EINVAL, "%s: larger than %d bytes", file,
			       CONFIG_FILE_MAX);
	/* Not strict: json-c's relaxed mode allows comments in the file. */
	if ((r = ctl_json_parse(text, len, false, &root, &off, &desc))) {
		if (r == -ENOMEM)
			return cv_errf(err, errlen, -EINVAL, "%s: out of memory", file);
		text_position(text, off, &line, &col);
		return cv_errf(err, errlen, -EINVAL, "%s:%u:%u: malformed JSON: %s", file, line,
			       col, desc);
	}
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return cv_errf(err, errlen, -EINVAL,
			       "%s: must hold one JSON object ({\"kernel\": ...})", file);
	}
	json_object_put(cfg->json);
	cfg->json = root;
	json_object_object_foreach(root, key, val)
	{
		if ((r = apply_key(file, key, val, cfg, err, errlen)))
			return r;
	}
	return 0;
}

int config_check(const struct vm_config *cfg, char *err, size_t errlen)
{
	if (!cfg->kernel || !cfg->kernel[0])
		return cv_errf(err, errlen, -EINVAL, "run: --kernel FILE is required");
	if (cfg->detach && !cfg->name)
		return cv_errf(
			err, errlen, -EINVAL,
			"run: -d needs --name NAME (a detached guest is reached by its name)");
	return 0;
}
