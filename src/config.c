/* config.c - `cvisor run` arguments -> struct vm_config. Pure: no I/O. */
#include "cvisor/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
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
		return fail(err, errlen, "%s needs a value", name);
	*val = argv[++*i];
	return 1;
}

static int parse_memory(const char *v, struct vm_config *cfg, char *err, size_t errlen)
{
	uint64_t sz;

	if (cv_parse_size(v, 1, &sz))
		return fail(err, errlen, "--memory %s: not a size (try 512M or 2G)", v);
	if (sz < CONFIG_MIN_MEM)
		return fail(err, errlen, "--memory %s: at least %lluM is needed", v,
			    CONFIG_MIN_MEM >> 20);
	if (sz % 4096)
		return fail(err, errlen, "--memory %s: must be a multiple of 4 KiB", v);
	cfg->mem_size = sz;
	return 0;
}

static int parse_cpus(const char *v, struct vm_config *cfg, char *err, size_t errlen)
{
	uint64_t n;

	if (cv_parse_uint(v, 1, CONFIG_MAX_CPUS, &n))
		return fail(err, errlen, "--cpus %s: must be a number from 1 to %d", v,
			    CONFIG_MAX_CPUS);
	cfg->ncpus = (unsigned int)n;
	return 0;
}

static int parse_quirks(const char *v, struct vm_config *cfg, char *err, size_t errlen)
{
	if (!strcmp(v, "auto"))
		cfg->quirks = CONFIG_QUIRKS_AUTO;
	else if (!strcmp(v, "on"))
		cfg->quirks = CONFIG_QUIRKS_ON;
	else if (!strcmp(v, "off"))
		cfg->quirks = CONFIG_QUIRKS_OFF;
	else
		return fail(err, errlen, "--emulated-host %s: must be auto, on or off", v);
	return 0;
}

int config_parse_run(int argc, char **argv, struct vm_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = CONFIG_DEFAULT_MEM;
	cfg->ncpus = 1;
	cfg->cmdline = "";
	cfg->cpu_weight = 100;

	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		int r;

#define VALUE_FLAG(name, action)                               \
	r = take_value(argc, argv, &i, name, &v, err, errlen); \
	if (r < 0)                                             \
		return r;                                      \
	if (r > 0) {                                           \
		action;                                        \
		continue;                                      \
	}
		VALUE_FLAG("--kernel", cfg->kernel = v);
		VALUE_FLAG("--initrd", cfg->initrd = v);
		VALUE_FLAG("--cmdline", cfg->cmdline = v);
		VALUE_FLAG("--memory", if ((r = parse_memory(v, cfg, err, errlen))) return r);
		VALUE_FLAG("--cpus", if ((r = parse_cpus(v, cfg, err, errlen))) return r);
		VALUE_FLAG("--emulated-host",
			   if ((r = parse_quirks(v, cfg, err, errlen))) return r);
#undef VALUE_FLAG
		if (argv[i][0] == '-')
			return fail(err, errlen, "run: unknown flag %s (see cvisor run --help)",
				    argv[i]);
		return fail(err, errlen, "run: unexpected argument %s", argv[i]);
	}
	if (!cfg->kernel || !cfg->kernel[0])
		return fail(err, errlen, "run: --kernel FILE is required");
	if (cfg->initrd && !cfg->initrd[0])
		return fail(err, errlen, "--initrd: empty file name");
	if (strlen(cfg->cmdline) >= 4096)
		return fail(err, errlen, "--cmdline: longer than 4095 bytes");
	return 0;
}
