/* config_load.c - what `cvisor run ARGS` runs to get its config: the
 * flags, the --config file they name (read here, bounded before it is
 * read), the flags again over it, the checks, then the files' full names.
 * The parsing itself is config.c's (pure); this is the part with I/O. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/config.h"

#define BAD(...) cv_fail(e, CV_EXIT_USAGE, -EINVAL, __VA_ARGS__)

/* Read a --config file whole; its size is bounded before it is read. */
static int read_file(const char *path, char **text, size_t *len, struct cv_error *e)
{
	struct stat st;
	const char *why;
	ssize_t n = 0;
	int fd, r = cv_open_regular(path, O_RDONLY, CV_OPEN_NONEMPTY, &fd, &st, &why);

	*text = NULL;
	*len = 0;
	if (r)
		return cv_fail(e, CV_EXIT_USAGE, r, "--config %s: %s", path, why);
	if (st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return BAD("--config %s: larger than 1 MiB", path);
	}
	if ((*text = malloc((size_t)st.st_size + 1)))
		while ((n = read(fd, *text + *len, (size_t)st.st_size - *len)) > 0)
			*len += (size_t)n;
	if (!*text || n < 0) {
		n = !*text ? -ENOMEM : -errno;
		close(fd);
		free(*text);
		*text = NULL;
		return BAD("--config %s: %s", path, strerror((int)-n));
	}
	close(fd);
	(*text)[*len] = '\0';
	return 0;
}

/* *field by its full name, if it resolves. */
static int absolute(char **field, struct cv_error *e)
{
	char real[PATH_MAX];

	if (!*field || !realpath(*field, real))
		return 0;
	return config_set_string(field, real) ? cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory")
					      : 0;
}

/* "PATH[,OPTIONS]" with PATH by its full name, in *full (malloc'd); NULL
 * when PATH does not resolve. 0 or -ENOMEM. */
static int absolute_spec(const char *spec, size_t len, char **full)
{
	const char *opts = memchr(spec, ',', len);
	size_t n = opts ? (size_t)(opts - spec) : len;
	char path[PATH_MAX], real[PATH_MAX];

	*full = NULL;
	if (n >= sizeof(path))
		return 0;
	memcpy(path, spec, n);
	path[n] = '\0';
	if (!realpath(path, real))
		return 0;
	if (asprintf(full, "%s%.*s", real, (int)(len - n), spec + n) < 0) {
		*full = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Each device spec that starts with a file name (disk images), by its
 * full name, options kept. */
static int absolute_specs(struct devices_config *dc, struct cv_error *e)
{
	for (unsigned int i = 0; i < dc->n; i++) {
		char *full;

		if (!dc->dev[i].type->path)
			continue;
		if (absolute_spec(dc->dev[i].spec, strlen(dc->dev[i].spec), &full))
			return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
		if (!full)
			continue;
		free(dc->dev[i].spec);
		dc->dev[i].spec = full;
	}
	return 0;
}

/* Each --module's file by its full name (a detached monitor), its
 * arguments kept: the list is rebuilt a line at a time. */
static int absolute_modules(struct vm_config *cfg, struct cv_error *e)
{
	char *out = NULL;
	size_t outlen = 0;
	FILE *f;
	int r = 0;

	if (!cfg->modules)
		return 0;
	if (!(f = open_memstream(&out, &outlen)))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	for (const char *p = cfg->modules; *p && !r;) {
		size_t n = strcspn(p, "\n");
		char *full;

		r = absolute_spec(p, n, &full);
		fprintf(f, "%s%.*s", p == cfg->modules ? "" : "\n",
			full ? (int)strlen(full) : (int)n, full ? full : p);
		free(full);
		p += n + (p[n] == '\n');
	}
	if (fclose(f) || r) {
		free(out);
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	}
	free(cfg->modules);
	cfg->modules = out;
	return 0;
}

int config_load_run(int argc, char **argv, struct vm_config *cfg, struct cv_error *e)
{
	char *text, *file = NULL;
	size_t len;
	int r;

	config_init(cfg);
	r = config_apply_flags(argc, argv, cfg, e);
	if (!r && cfg->config_file) {
		if (!(file = strdup(cfg->config_file)))
			r = cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
		else if (!(r = read_file(file, &text, &len, e))) {
			config_free(cfg);
			config_init(cfg);
			r = config_apply_json(file, text, len, cfg, e);
			free(text);
			if (!r)
				r = config_apply_flags(argc, argv, cfg, e);
		}
		free(file);
	}
	if (!r)
		r = config_check(cfg, e);
	if (!r && cfg->detach && !(r = absolute(&cfg->kernel, e)) &&
	    !(r = absolute(&cfg->firmware, e)) && !(r = absolute(&cfg->initrd, e)))
		r = absolute_modules(cfg, e);
	if (!r)
		r = absolute_specs(&cfg->devices, e);
	if (r)
		config_free(cfg);
	return r;
}
