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

/* Each device spec that starts with a file name (disk images), by its
 * full name, options kept. */
static int absolute_specs(struct devices_config *dc, struct cv_error *e)
{
	for (unsigned int i = 0; i < dc->n; i++) {
		const char *spec = dc->dev[i].spec, *opts = strchr(spec, ',');
		size_t n = opts ? (size_t)(opts - spec) : strlen(spec);
		char path[PATH_MAX], real[PATH_MAX], *full;

		if (!dc->dev[i].type->path || n >= sizeof(path))
			continue;
		memcpy(path, spec, n);
		path[n] = '\0';
		if (!realpath(path, real))
			continue;
		if (asprintf(&full, "%s%s", real, opts ? opts : "") < 0)
			return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
		free(dc->dev[i].spec);
		dc->dev[i].spec = full;
	}
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
	    !(r = absolute(&cfg->firmware, e)))
		r = absolute(&cfg->initrd, e);
	if (!r)
		r = absolute_specs(&cfg->devices, e);
	if (r)
		config_free(cfg);
	return r;
}
