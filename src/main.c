/* main.c - argv -> subcommand (the guest itself runs in src/monitor). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/api.h"
#include "cvisor/cli.h"
#include "cvisor/config.h"
#include "cvisor/ctl.h"
#include "cvisor/migrate.h"
#include "cvisor/monitor.h"
#include "cvisor/snapshot.h"
#include "cvisor/virtio_vsock.h"

#define CVISOR_VERSION "0.1.0"

/* After the `cvisor run` synopsis, which config.c builds from its field
 * table and the device table: restore's and run --incoming's, then the
 * client verbs' lines from their table (cli_usage_lines). */
static const char restore_usage[] =
	"       cvisor restore FILE [--name NAME [-d]] [--count N [--cid FIRST]] [--ksm]\n"
	"                  [--ctl-group GROUP] [--seccomp on|log|off] [JAIL] [PLACE]\n"
	"       cvisor run --incoming HOST:PORT [--disk PATH]... [--storage-dir DIR]\n"
	"                  [--net user|tap=NAME]... [--vsock CID[,uds=PATH]]\n"
	"                  [--incoming-timeout SECONDS] [--tls-psk FILE | --tls-creds DIR]\n"
	"                  [--insecure] [--name NAME [-d]] [--ctl-group GROUP]\n"
	"                  [--seccomp on|log|off] [JAIL] [PLACE]\n";

static const char usage_notes[] =
	"\n"
	"run boots a Linux bzImage or a PVH ELF kernel with a serial console on stdin/stdout.\n"
	"On a terminal, Ctrl-A x quits. --name serves a control socket in $CVISOR_RUN_DIR\n"
	"(default /run/cvisor) for the other commands; -d detaches (cvisor console NAME\n"
	"attaches, Ctrl-] detaches). Flags override the keys of a --config file.\n"
	"restore --count N --name BASE -d starts N guests BASE-1 .. BASE-N from the\n"
	"snapshot, guest K with the vsock CID FIRST + K - 1 (default: the snapshot's + K)\n"
	"and its MACs + K; all start or none (the ones started are stopped if one cannot).\n"
	"PLACE: --cpu-weight, --cpu-cap, --memory-limit, --cpu-affinity for this host; a\n"
	"restore keeps the saved ones otherwise, an incoming guest the source's limits\n"
	"but not its host CPUs.\n"
	"JAIL: --jail [--jail-dir DIR] [--netns PATH] [--uid N] [--gid N] (root only): the\n"
	"monitor in its own namespaces and an empty root, as uid/gid 64000 by default.\n"
	"run --incoming takes the guest's host resources from its own flags, never from\n"
	"the source: --disk PATH per source disk in order (or --storage-dir DIR for\n"
	"migrate --with-storage), --net and --vsock per source device (the MAC and CID\n"
	"stay the guest's). It refuses any other source and waits for the next, until\n"
	"killed or --incoming-timeout ends the wait.\n"
	"Exit status: 0 guest powered off or rebooted, 2 bad input, 3 guest crashed (triple\n"
	"fault), 4 unrecoverable emulation error, 128+N ended by signal N, 137 ended by\n"
	"cvisor kill or a cvisor stop that timed out.\n"
	"\n"
	"Commands (cvisor COMMAND --help for their options):\n";

/* Every verb's usage, then the notes and the list of client verbs. */
static void usage(FILE *f)
{
	char run[1024];

	fprintf(f, "%s\n", config_usage(run, sizeof(run)));
	fputs(restore_usage, f);
	cli_usage_lines(f, "       ");
	fputs("       cvisor version\n", f);
	fputs(usage_notes, f);
	cli_verb_list(f);
}

/* --flag VALUE or --flag=VALUE at argv[*i]: the flag into flag, its
 * value (or NULL) into *val; *i moves past a separate value when
 * `separate` is returned true. */
static const char *split_flag(int argc, char **argv, int i, char *flag, size_t len, bool *separate)
{
	const char *a = argv[i], *eq = strchr(a, '=');

	*separate = false;
	if (a[0] == '-' && a[1] == '-' && eq && (size_t)(eq - a) < len) {
		snprintf(flag, len, "%.*s", (int)(eq - a), a);
		return eq + 1;
	}
	snprintf(flag, len, "%s", a);
	*separate = i + 1 < argc;
	return *separate ? argv[i + 1] : NULL;
}

/* What `restore` and `run --incoming` take besides their own flags: --name,
 * -d, --seccomp, the jail's flags and the placement flags. 1 if argv[*i] was one, 0 if not. */
static int common_flag(int argc, char **argv, int *i, const char *verb, struct vm_config *cfg,
		       struct placement *place, struct cv_error *e)
{
	char flag[64], err[PATH_MAX + 256];
	bool separate;
	const char *val = split_flag(argc, argv, *i, flag, sizeof(flag), &separate);
	int r;

	if (!strcmp(argv[*i], "-d") || !strcmp(argv[*i], "--detach")) {
		cfg->detach = true;
		return 1;
	}
	if (!strcmp(flag, "--name")) {
		if (!val)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s: --name needs a value", verb);
		if (!ctl_name_valid(val))
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "%s: --name %.80s: names are 1 to %d letters, digits, '_', "
				       "'.' or '-', not starting with '.' or '-'",
				       verb, val, CTL_NAME_MAX);
		if (config_set_string(&cfg->name, val))
			return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	} else if (!strcmp(flag, "--jail") || !strcmp(flag, "--ksm")) {
		char *run_argv[] = { "run", argv[*i] };

		/* A flag without a value: nothing of argv[*i + 1] is taken. */
		return config_apply_flags(2, run_argv, cfg, e) ? -EINVAL : 1;
	} else if (!strcmp(flag, "--seccomp") || !strcmp(flag, "--jail-dir") ||
		   !strcmp(flag, "--netns") || !strcmp(flag, "--uid") || !strcmp(flag, "--gid")) {
		/* Through run's flag, so that the value is checked in one place. */
		char *run_argv[] = { "run", flag, (char *)(val ? val : "") };

		if ((r = config_apply_flags(val ? 3 : 2, run_argv, cfg, e)))
			return r;
	} else if (!strcmp(flag, "--ctl-group")) {
		if (!val)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s: --ctl-group needs a value",
				       verb);
		if ((r = config_set_field(cfg, "ctl_group", "--ctl-group", val, e)))
			return r;
	} else if ((r = placement_flag(place, flag, val, err, sizeof(err))) < 0) {
		return cv_fail(e, CV_EXIT_USAGE, r, "%s: %s", verb, err);
	} else if (!r) {
		return 0;
	}
	*i += separate;
	return 1;
}

/* -d needs a name: a detached guest is reached by it. */
static int check_detach(const struct vm_config *cfg, const char *verb, struct cv_error *e)
{
	if (cfg->detach && !cfg->name)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "%s: -d needs --name NAME (a detached guest is reached by its name)",
			       verb);
	return 0;
}

/* cvisor run --incoming HOST:PORT [--storage-dir DIR] [--disk PATH]...
 *     [--net SPEC]... [--vsock SPEC] [--incoming-timeout S] [--name NAME] [-d]
 *     [--cpu-weight N] [--cpu-cap P] [--memory-limit SIZE] [--cpu-affinity L]
 * Its directory and files are checked here, before the monitor starts. */
static int parse_incoming(int argc, char **argv, struct vm_config *cfg, struct placement *place,
			  struct migrate_incoming *in, struct cv_error *e)
{
	char flag[64], err[PATH_MAX + 256];
	bool separate;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *val = split_flag(argc, argv, i, flag, sizeof(flag), &separate);

		if ((r = common_flag(argc, argv, &i, "run", cfg, place, e)) < 0)
			return r;
		if (r)
			continue;
		if ((r = migrate_incoming_flag(in, flag, val, err, sizeof(err))) < 0)
			return cv_fail(e, CV_EXIT_USAGE, r, "%s", err);
		if (r == 2 && strchr(argv[i], '='))
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "run: %s takes no value", flag);
		if (r == 2)
			continue; /* a flag without a value */
		if (!r)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "run --incoming: unexpected argument %s (the guest's "
				       "configuration comes from the source)",
				       argv[i]);
		if (!val)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "run: %s needs a value", flag);
		i += separate;
	}
	if ((r = check_detach(cfg, "run", e)))
		return r;
	if (!in->listen)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "run: --incoming needs HOST:PORT to listen on");
	/* Paths made absolute: a detached monitor leaves the current directory. */
	if ((r = migrate_incoming_check(in, err, sizeof(err))))
		return cv_fail(e, CV_EXIT_USAGE, r, "run --incoming: %s", err);
	return 0;
}

static int cmd_run_incoming(int argc, char **argv)
{
	static struct vm_config cfg;
	static struct placement place;
	struct migrate_incoming in = { 0 };
	struct cv_error e = { 0 };
	cpu_set_t set;
	int status;

	config_init(&cfg);
	config_init(&place.c);
	if (parse_incoming(argc, argv, &cfg, &place, &in, &e)) {
		status = cv_error_report(&e, "run");
	} else if (place.affinity && monitor_check_affinity(place.c.cpu_affinity, &set)) {
		status = CV_EXIT_USAGE;
	} else {
		status = cfg.detach ? monitor_detach(&cfg, NULL, &in, &place)
				    : monitor_run_incoming(&cfg, &in, &place, -1);
	}
	migrate_incoming_free(&in);
	config_free(&place.c);
	config_free(&cfg);
	return status;
}

static int cmd_run(int argc, char **argv)
{
	static struct vm_config cfg;
	struct cv_error e = { 0 };
	int status;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--incoming") || !strncmp(argv[i], "--incoming=", 11))
			return cmd_run_incoming(argc, argv);
	if (config_load_run(argc, argv, &cfg, &e))
		return cv_error_report(&e, "run");
	status = cfg.detach ? monitor_detach(&cfg, NULL, NULL, NULL) : monitor_run(&cfg, -1, NULL);
	config_free(&cfg);
	return status;
}

/* restore --count N [--cid FIRST]: N guests BASE-1 .. BASE-N from one
 * snapshot. 1 if argv[*i] was one of them, 0 if not. */
static int clone_flag(const char *flag, const char *val, struct clone_opts *o, struct cv_error *e)
{
	bool count = !strcmp(flag, "--count");
	uint64_t n;

	if (!count && strcmp(flag, "--cid"))
		return 0;
	if (!val)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "restore: %s needs a value", flag);
	if (count && cv_parse_uint(val, 1, CLONES_MAX, &n))
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "restore: --count %.40s: must be a number of guests from 1 to %d",
			       val, CLONES_MAX);
	if (!count && cv_parse_uint(val, VIRTIO_VSOCK_CID_MIN, VIRTIO_VSOCK_CID_MAX, &n))
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "restore: --cid %.40s: must be a vsock CID from %llu to %llu", val,
			       (unsigned long long)VIRTIO_VSOCK_CID_MIN, VIRTIO_VSOCK_CID_MAX);
	if (count)
		o->count = (unsigned int)n;
	else
		o->first_cid = n;
	return 1;
}

/* --count starts detached, named guests, each in a jail of its own. */
static int check_count(const struct vm_config *cfg, const struct clone_opts *o, struct cv_error *e)
{
	if (o->first_cid && !o->count)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "restore: --cid goes with --count (one restore keeps the "
			       "snapshot's CID)");
	if (o->count && (!cfg->detach || !cfg->name))
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "restore: --count needs -d and --name BASE (the guests run "
			       "detached as BASE-1 .. BASE-N)");
	if (o->count > 1 && cfg->jail.dir)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "restore: --jail-dir with --count: each guest needs a jail "
			       "directory of its own (leave --jail-dir out)");
	return 0;
}

/* cvisor restore FILE [--name NAME] [-d] [--count N [--cid FIRST]] [--cpu-weight N]
 *     [--cpu-cap P] [--memory-limit SIZE] [--cpu-affinity L]: 1 for --help. */
static int parse_restore(int argc, char **argv, struct vm_config *cfg, struct placement *place,
			 const char **path, struct clone_opts *o, struct cv_error *e)
{
	char flag[64];
	bool separate;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *val = split_flag(argc, argv, i, flag, sizeof(flag), &separate);

		if ((r = common_flag(argc, argv, &i, "restore", cfg, place, e)) < 0)
			return r;
		if (r)
			continue;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
		if ((r = clone_flag(flag, val, o, e)) < 0)
			return r;
		if (r) {
			i += separate;
			continue;
		}
		if (argv[i][0] == '-' || *path)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "restore: unexpected argument %s (see cvisor help)",
				       argv[i]);
		*path = argv[i];
	}
	if (!*path)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "restore: needs a snapshot FILE (written by cvisor save)");
	if ((r = check_count(cfg, o, e)))
		return r;
	return check_detach(cfg, "restore", e);
}

/* The snapshot's CONFIG under the name, -d and placement given here. */
static int open_restore(struct restore_src *rs, struct vm_config *cfg,
			const struct vm_config *given, const struct placement *place,
			struct cv_error *e)
{
	char err[PATH_MAX + 256];
	int r;

	config_init(cfg);
	r = snapshot_open(rs->path, cfg, &rs->payload, &rs->len, &rs->mem_fd, err, sizeof(err));
	if (r)
		return cv_fail(e, r == -ENOMEM ? CV_EXIT_FAIL : CV_EXIT_USAGE, r, "snapshot %s: %s",
			       rs->path, err);
	cfg->detach = given->detach;
	if (config_set_string(&cfg->name, given->name) || config_copy_host(cfg, given))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	if ((r = placement_apply(place, cfg)))
		return cv_fail(e, CV_EXIT_FAIL, r, "out of memory");
	return 0;
}

static int cmd_restore(int argc, char **argv)
{
	static struct vm_config cfg, given;
	static struct placement place;
	struct restore_src rs = { .mem_fd = -1 };
	struct cv_error e = { 0 };
	struct clone_opts clones = { 0 };
	int status, r;

	config_init(&given);
	config_init(&place.c);
	config_init(&cfg);
	if ((r = parse_restore(argc, argv, &given, &place, &rs.path, &clones, &e)) > 0) {
		usage(stdout);
		status = 0;
	} else if (r || open_restore(&rs, &cfg, &given, &place, &e)) {
		status = cv_error_report(&e, "restore");
	} else if (clones.count) {
		status = monitor_clones(&cfg, &rs, &clones);
	} else {
		status = cfg.detach ? monitor_detach(&cfg, &rs, NULL, NULL)
				    : monitor_run(&cfg, -1, &rs);
	}
	if (rs.mem_fd >= 0)
		close(rs.mem_fd);
	free(rs.payload);
	config_free(&cfg);
	config_free(&given);
	config_free(&place.c);
	return status;
}

static const char api_usage[] =
	"usage: cloud-hypervisor --api-socket PATH|fd=N [--event-monitor path=FILE|fd=N]\n"
	"                        [--seccomp true|false|log] [--name NAME] [-v]...\n"
	"       cloud-hypervisor [--api-socket PATH|fd=N] ... --kernel FILE [--cmdline ARGS]\n"
	"                        [--initramfs FILE] [--cpus boot=N[,max=N]] [--memory size=SIZE]\n"
	"                        [--disk path=FILE[,readonly=on]]... [--net "
	"tap=NAME[,mac=MAC]]...\n"
	"                        [--serial MODE] [--console MODE] [--rng] [--balloon size=SIZE]\n"
	"                        [--vsock cid=N,socket=PATH]\n"
	"       cloud-hypervisor --version\n"
	"cvisor serving Cloud Hypervisor's REST API (" API_CH_VERSION "; see README): the same as\n"
	"cvisor --api-socket ... The guest's cvisor name (cvisor ls, console, info) is\n"
	"--name, else $CVISOR_CH_NAME, else ch-PID. With --kernel, the VM the flags describe\n"
	"(Cloud Hypervisor's syntax; MODE off|null|tty|pty|file=PATH) is created and booted\n"
	"at once; a guest poweroff ends the VMM.\n";

/* --seccomp: Cloud Hypervisor's true|false|log, or cvisor's on|off|log. */
static int api_seccomp(const char *v, enum sandbox_mode *m)
{
	if (!strcmp(v, "true") || !strcmp(v, "on"))
		*m = SANDBOX_ON;
	else if (!strcmp(v, "false") || !strcmp(v, "off"))
		*m = SANDBOX_OFF;
	else if (!strcmp(v, "log"))
		*m = SANDBOX_LOG;
	else
		return -EINVAL;
	return 0;
}

/* The Cloud Hypervisor mode's flags into o, the VM flags into vmf.
 * 0, 1 (--version or --help done) or an exit status (> 1). */
static int parse_api(const char *prog, int argc, char **argv, struct api_opts *o,
		     struct api_vm_flags *vmf)
{
	char flag[64], err[512];
	bool separate;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *val = split_flag(argc, argv, i, flag, sizeof(flag), &separate);
		const char **dst = !strcmp(flag, "--api-socket")      ? &o->socket
				   : !strcmp(flag, "--event-monitor") ? &o->events
				   : !strcmp(flag, "--name")	      ? &o->name
								      : NULL;

		if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf("cloud-hypervisor %s\n", API_CH_VERSION);
			return 1;
		}
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(api_usage, stdout);
			return 1;
		}
		if ((r = api_vm_flag(vmf, argc, argv, &i, err, sizeof(err))) < 0) {
			fprintf(stderr, "%s: %s\n", prog, err);
			return r == -ENOMEM ? CV_EXIT_FAIL : CV_EXIT_USAGE;
		}
		if (r)
			continue;
		/* Cloud Hypervisor's verbosity: cvisor logs what it logs. */
		if (argv[i][0] == '-' && argv[i][1] == 'v' &&
		    !argv[i][strspn(argv[i] + 1, "v") + 1])
			continue;
		if (!dst && strcmp(flag, "--seccomp")) {
			fprintf(stderr,
				"%s: unsupported argument %s (the Cloud Hypervisor mode takes "
				"--api-socket, --event-monitor, --seccomp, --name, -v, "
				"--version and the VM flags of --help)\n",
				prog, argv[i]);
			return CV_EXIT_USAGE;
		}
		if (!val) {
			fprintf(stderr, "%s: %s needs a value\n", prog, flag);
			return CV_EXIT_USAGE;
		}
		if (dst)
			*dst = val;
		else if (api_seccomp(val, &o->seccomp)) {
			fprintf(stderr, "%s: --seccomp %s: want true, false or log\n", prog, val);
			return CV_EXIT_USAGE;
		}
		i += separate;
	}
	return 0;
}

/* The Cloud Hypervisor mode: `cloud-hypervisor ARGS` or `cvisor
 * --api-socket ...` (prog names the binary in messages). */
static int cmd_api(const char *prog, int argc, char **argv)
{
	struct api_opts o = { .seccomp = SANDBOX_ON, .build_version = "cvisor " CVISOR_VERSION };
	struct api_vm_flags vmf = { 0 };
	char err[1024], *body = NULL;
	int r = parse_api(prog, argc, argv, &o, &vmf);

	if (!r && (r = api_vm_flags_body(&vmf, &body, err, sizeof(err)))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		r = r == -ENOMEM ? CV_EXIT_FAIL : CV_EXIT_USAGE;
	}
	api_vm_flags_free(&vmf);
	if (r)
		return r == 1 ? 0 : r;
	if (!o.socket && !body) {
		fprintf(stderr, "%s: needs --api-socket PATH|fd=N or --kernel FILE\n%s", prog,
			api_usage);
		return CV_EXIT_USAGE;
	}
	o.create_body = body;
	r = api_main(&o);
	free(body);
	return r;
}

int main(int argc, char **argv)
{
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;

	base = base ? base + 1 : argc > 0 ? argv[0] : "";
	if (!strcmp(base, "cloud-hypervisor"))
		return cmd_api("cloud-hypervisor", argc, argv);
	if (argc >= 2 && !strncmp(argv[1], "--api-socket", 12))
		return cmd_api("cvisor", argc, argv);
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
