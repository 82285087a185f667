/* main.c - argv -> subcommand (the guest itself runs in src/monitor). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/cli.h"
#include "cvisor/config.h"
#include "cvisor/ctl.h"
#include "cvisor/migrate.h"
#include "cvisor/monitor.h"
#include "cvisor/snapshot.h"

#define CVISOR_VERSION "0.1.0"

/* The usage of run and restore; the other verbs' lines come from their
 * table (cli_usage_lines). */
static const char run_usage[] =
	"usage: cvisor run --kernel FILE [--initrd FILE] [--cmdline STR] [--memory SIZE]\n"
	"                  [--cpus N] [--emulated-host auto|on|off] [--config FILE]\n"
	"                  [--name NAME [-d]] [--cpu-weight N] [--cpu-cap PERCENT]\n"
	"                  [--memory-limit SIZE] [--cpu-affinity CPULIST]\n"
	"                  [--disk PATH[,readonly][,serial=ID]]... [--net user[,...]|tap=NAME]...\n"
	"                  [--rng] [--balloon SIZE] [--vsock CID[,uds=PATH]] [--virtio pci|mmio]\n"
	"       cvisor restore FILE [--name NAME [-d]] [PLACE]\n"
	"       cvisor run --incoming HOST:PORT [--storage-dir DIR] [--name NAME [-d]] [PLACE]\n";

static const char usage_notes[] =
	"\n"
	"run boots a Linux bzImage or a PVH ELF kernel with a serial console on stdin/stdout.\n"
	"On a terminal, Ctrl-A x quits. --name serves a control socket in $CVISOR_RUN_DIR\n"
	"(default /run/cvisor) for the other commands; -d detaches (cvisor console NAME\n"
	"attaches, Ctrl-] detaches). Flags override the keys of a --config file.\n"
	"PLACE: --cpu-weight, --cpu-cap, --memory-limit, --cpu-affinity for this host; a\n"
	"restore keeps the saved ones otherwise, an incoming guest the source's limits\n"
	"but not its host CPUs.\n"
	"Exit status: 0 guest powered off or rebooted, 2 bad input, 3 guest crashed (triple\n"
	"fault), 4 unrecoverable emulation error, 128+N ended by signal N, 137 ended by\n"
	"cvisor kill or a cvisor stop that timed out.\n"
	"\n"
	"Commands (cvisor COMMAND --help for their options):\n";

/* Every verb's usage: run's and restore's, then the table's. */
static void usage(FILE *f)
{
	fputs(run_usage, f);
	cli_usage_lines(f, "       ");
	fputs("       cvisor version\n", f);
	fputs(usage_notes, f);
	cli_verb_list(f);
}

/* Read a --config file whole; its size is bounded before it is read. */
static int read_config_file(const char *path, char **text, size_t *len)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	*text = NULL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return -EFBIG;
	}
	*text = malloc((size_t)st.st_size + 1);
	if (!*text) {
		close(fd);
		return -ENOMEM;
	}
	*len = 0;
	while ((n = read(fd, *text + *len, (size_t)st.st_size - *len)) > 0)
		*len += (size_t)n;
	r = n < 0 ? -errno : 0;
	close(fd);
	(*text)[*len] = '\0';
	return r;
}

/* Flags, then the file they name (if any), then the flags again on top:
 * what is given on the command line overrides the file. */
static int parse_run_config(int argc, char **argv, struct vm_config *cfg)
{
	char err[512], *text;
	size_t len = 0;
	int r;

	config_init(cfg);
	r = config_apply_flags(argc, argv, cfg, err, sizeof(err));
	if (!r && cfg->config_file) {
		const char *file = cfg->config_file;

		if ((r = read_config_file(file, &text, &len))) {
			cv_err("--config %s: %s", file,
			       r == -EINVAL  ? "not a regular file"
			       : r == -EFBIG ? "larger than 1 MiB"
					     : strerror(-r));
			free(text);
			return CV_EXIT_USAGE;
		}
		config_init(cfg);
		r = config_apply_json(file, text, len, cfg, err, sizeof(err));
		free(text);
		if (!r)
			r = config_apply_flags(argc, argv, cfg, err, sizeof(err));
	}
	if (!r)
		r = config_check(cfg, err, sizeof(err));
	if (r) {
		cv_err("%s", err);
		config_free(cfg);
		return CV_EXIT_USAGE;
	}
	return 0;
}

/* A detached monitor leaves the current directory: keep the files' full
 * names (also what `cvisor info` shows). A file that does not resolve is
 * left as given, for vm_create to report. */
static void absolute_paths(struct vm_config *cfg)
{
	static char kernel[PATH_MAX], initrd[PATH_MAX];

	if (realpath(cfg->kernel, kernel))
		cfg->kernel = kernel;
	if (cfg->initrd && realpath(cfg->initrd, initrd))
		cfg->initrd = initrd;
}

/* Disk images by their full names, in every run: a snapshot records them
 * for a restore started from another directory. */
static void absolute_disks(struct devices_config *dc)
{
	static char disks[DEVICES_MAX_DISKS][PATH_MAX + 256];

	for (unsigned int i = 0; i < dc->ndisks; i++) {
		const char *spec = dc->disks[i], *opts = strchr(spec, ',');
		size_t n = opts ? (size_t)(opts - spec) : strlen(spec);
		char path[PATH_MAX], real[PATH_MAX];

		if (n >= sizeof(path))
			continue;
		memcpy(path, spec, n);
		path[n] = '\0';
		if (!realpath(path, real) ||
		    (size_t)snprintf(disks[i], sizeof(disks[i]), "%s%s", real, opts ? opts : "") >=
			    sizeof(disks[i]))
			continue;
		dc->disks[i] = disks[i];
	}
}

/* cvisor run --incoming HOST:PORT [--storage-dir DIR] [--name NAME] [-d]
 *     [--cpu-weight N] [--cpu-cap P] [--memory-limit SIZE] [--cpu-affinity L] */
static int cmd_run_incoming(int argc, char **argv)
{
	static struct vm_config cfg;
	static char storage[PATH_MAX];
	static struct placement place;
	struct migrate_incoming in = { 0 };
	cpu_set_t set;
	const char *name = NULL;
	char err[512];
	bool detach = false;
	int status, r;

	config_init(&place.c);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '='), *val = NULL;
		char flag[64];

		if (!strcmp(a, "-d") || !strcmp(a, "--detach")) {
			detach = true;
			continue;
		}
		if (a[0] == '-' && a[1] == '-' && eq && (size_t)(eq - a) < sizeof(flag)) {
			memcpy(flag, a, (size_t)(eq - a));
			flag[eq - a] = '\0';
			val = eq + 1;
		} else {
			snprintf(flag, sizeof(flag), "%s", a);
			if (i + 1 < argc)
				val = argv[i + 1];
		}
		if (!strcmp(flag, "--name")) {
			name = val;
		} else if ((r = placement_flag(&place, flag, val, err, sizeof(err))) < 0) {
			cv_err("run: %s", err);
			return CV_EXIT_USAGE;
		} else if (r == 1) {
			/* applied */
		} else if ((r = migrate_incoming_flag(&in, flag, val, err, sizeof(err))) < 0) {
			cv_err("%s", err);
			return CV_EXIT_USAGE;
		} else if (r == 0) {
			cv_err("run --incoming: unexpected argument %s (the guest's configuration "
			       "comes from the source)",
			       a);
			return CV_EXIT_USAGE;
		}
		if (!eq && val)
			i++;
		else if (!val) {
			cv_err("run: %s needs a value", flag);
			return CV_EXIT_USAGE;
		}
	}
	if (name && !ctl_name_valid(name)) {
		cv_err("run: --name %.80s: names are 1 to %d letters, digits, '_', '.' or '-', "
		       "not starting with '.' or '-'",
		       name, CTL_NAME_MAX);
		return CV_EXIT_USAGE;
	}
	if (detach && !name) {
		cv_err("run: -d needs --name NAME (a detached guest is reached by its name)");
		return CV_EXIT_USAGE;
	}
	if (!in.listen) {
		cv_err("run: --incoming needs HOST:PORT to listen on");
		return CV_EXIT_USAGE;
	}
	if (place.affinity && monitor_check_affinity(place.c.cpu_affinity, &set))
		return CV_EXIT_USAGE;
	/* A detached monitor leaves the current directory. */
	if (in.storage_dir && realpath(in.storage_dir, storage))
		in.storage_dir = storage;
	config_init(&cfg);
	cfg.name = name;
	cfg.detach = detach;
	status = detach ? monitor_detach(&cfg, NULL, &in, &place)
			: monitor_run_incoming(&cfg, &in, &place, -1);
	config_free(&cfg);
	return status;
}

static int cmd_run(int argc, char **argv)
{
	static struct vm_config cfg;
	int status;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--incoming") || !strncmp(argv[i], "--incoming=", 11))
			return cmd_run_incoming(argc, argv);
	if ((status = parse_run_config(argc, argv, &cfg)))
		return status;
	if (cfg.detach)
		absolute_paths(&cfg);
	absolute_disks(&cfg.devices);
	status = cfg.detach ? monitor_detach(&cfg, NULL, NULL, NULL) : monitor_run(&cfg, -1, NULL);
	config_free(&cfg);
	return status;
}

/* cvisor restore FILE [--name NAME] [-d] [--cpu-weight N] [--cpu-cap P]
 *     [--memory-limit SIZE] [--cpu-affinity L] */
static int cmd_restore(int argc, char **argv)
{
	static struct vm_config cfg;
	static struct placement place;
	struct restore_src rs = { .mem_fd = -1 };
	const char *name = NULL;
	char err[PATH_MAX + 256];
	bool detach = false;
	int status, r;

	config_init(&place.c);
	for (int i = 1; i < argc; i++) {
		const char *eq = strchr(argv[i], '='), *val = i + 1 < argc ? argv[i + 1] : NULL;
		int len = eq ? (int)(eq - argv[i]) : (int)strlen(argv[i]);
		char flag[32];

		/* --flag VALUE or --flag=VALUE */
		snprintf(flag, sizeof(flag), "%.*s", len, argv[i]);
		if ((r = placement_flag(&place, flag, eq ? eq + 1 : val, err, sizeof(err))) < 0) {
			cv_err("restore: %s", err);
			return CV_EXIT_USAGE;
		} else if (r == 1) {
			i += !eq;
			continue;
		}
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "-d") || !strcmp(argv[i], "--detach")) {
			detach = true;
		} else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
			name = argv[++i];
		} else if (!strncmp(argv[i], "--name=", 7)) {
			name = argv[i] + 7;
		} else if (argv[i][0] == '-' || rs.path) {
			cv_err("restore: unexpected argument %s (see cvisor help)", argv[i]);
			return CV_EXIT_USAGE;
		} else {
			rs.path = argv[i];
		}
	}
	if (!rs.path) {
		cv_err("restore: needs a snapshot FILE (written by cvisor save)");
		return CV_EXIT_USAGE;
	}
	if (name && !ctl_name_valid(name)) {
		cv_err("restore: --name %.80s: names are 1 to %d letters, digits, '_', '.' or '-', "
		       "not starting with '.' or '-'",
		       name, CTL_NAME_MAX);
		return CV_EXIT_USAGE;
	}
	if (detach && !name) {
		cv_err("restore: -d needs --name NAME (a detached guest is reached by its name)");
		return CV_EXIT_USAGE;
	}
	config_init(&cfg);
	r = snapshot_open(rs.path, &cfg, &rs.payload, &rs.len, &rs.mem_fd, err, sizeof(err));
	if (r) {
		cv_err("snapshot %s: %s", rs.path, err);
		return r == -ENOMEM ? CV_EXIT_FAIL : CV_EXIT_USAGE;
	}
	cfg.name = name;
	cfg.detach = detach;
	placement_apply(&place, &cfg);
	status = detach ? monitor_detach(&cfg, &rs, NULL, NULL) : monitor_run(&cfg, -1, &rs);
	close(rs.mem_fd);
	free(rs.payload);
	config_free(&cfg);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CV_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (cli_verb_find(argv[1]))
		return cli_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("cvisor %s\n", CVISOR_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "cvisor: unknown command %s (try cvisor help)\n", argv[1]);
	return CV_EXIT_USAGE;
}
