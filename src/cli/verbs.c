/* verbs.c - the verb table: every `cvisor VERB` but run and restore, with
 * its options, and the verbs that are one request each (stop, kill, pause,
 * resume, balloon, pin, set, save, ctl). A new verb is one handler and one row
 * of cli_verbs; its options are rows of its own table, which give both
 * its parsing and its usage. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/config.h"
#include "cvisor/cpulist.h"
#include "cvisor/ctl_proto.h"
#include "cvisor/error.h"
#include "cvisor/migrate.h"
#include "verbs.h"

/* stop replies when the guest is gone: its timeout plus time to tear down. */
#define STOP_MARGIN_MS 30000
/* save writes all of guest RAM that holds data, then (without
 * --keep-running) waits for the guest to end. */
#define SAVE_TIMEOUT_MS 600000

/* One request with nothing to print: kill, pause, resume (the row's cmd). */
static int verb_simple(const struct cli_verb *v, const struct cli_args *a)
{
	struct ctl_request req = { .cmd = (enum ctl_cmd)v->cmd };
	struct json_object *reply;
	int st = cli_request(a->arg[0], &req, NULL, v->timeout_ms, &reply);

	json_object_put(reply);
	return st;
}

static int verb_stop(const struct cli_verb *v, const struct cli_args *a)
{
	struct ctl_request req = { .cmd = CTL_CMD_STOP, .timeout_s = (unsigned int)a->timeout };
	struct json_object *reply;
	int st;

	(void)v;
	st = cli_request(a->arg[0], &req, NULL, (int)req.timeout_s * 1000 + STOP_MARGIN_MS, &reply);
	if (st)
		return st;
	if (!strcmp(cli_json_str(reply, "outcome"), "killed")) {
		cv_err("guest %s did not power off within %u s: killed", a->arg[0], req.timeout_s);
		st = CV_EXIT_FAIL;
	}
	json_object_put(reply);
	return st;
}

static int verb_balloon(const struct cli_verb *v, const struct cli_args *a)
{
	struct ctl_request req = { .cmd = CTL_CMD_BALLOON };
	struct json_object *reply;
	int st;

	if (cv_parse_size(a->arg[1], 1, &req.bytes)) {
		cv_err("balloon: %s: not a size (try 512M or 2G)", a->arg[1]);
		return CV_EXIT_USAGE;
	}
	st = cli_request(a->arg[0], &req, NULL, v->timeout_ms, &reply);
	json_object_put(reply);
	return st;
}

static int verb_pin(const struct cli_verb *v, const struct cli_args *a)
{
	struct ctl_request req = { .cmd = CTL_CMD_PIN };
	struct json_object *reply;
	uint64_t vcpu;
	int st;

	if (cv_parse_uint(a->arg[1], 0, CONFIG_MAX_CPUS - 1, &vcpu)) {
		cv_err("pin: %s: not a vCPU number", a->arg[1]);
		return CV_EXIT_USAGE;
	}
	req.vcpu = (unsigned int)vcpu;
	if (cpulist_parse(a->arg[2], &req.cpus)) {
		cv_err("pin: %.80s: not a CPU list (try 0-3,6)", a->arg[2]);
		return CV_EXIT_USAGE;
	}
	st = cli_request(a->arg[0], &req, NULL, v->timeout_ms, &reply);
	json_object_put(reply);
	return st;
}

/* A save's destination must take a rename: a directory there would fail
 * it only after the monitor has written the files and, without
 * --keep-running, ended the guest. */
static int save_check_dest(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "save: %s: is a directory (name a file)", path);
		return -EISDIR;
	}
	return 0;
}

/* The temporaries of a save that may be all that is left of the guest
 * (the monitor may have written them and ended it): kept, and named at
 * the end of err. */
static void save_keep(struct cv_tmpfile *t, const char *const dest[2], char *err, size_t errlen)
{
	size_t n = strlen(err);
	const char *sep = "; kept: ";

	for (int i = 0; i < 2; i++) {
		const char *slash = strrchr(dest[i], '/');

		if (t[i].fd < 0)
			continue;
		cv_tmpfile_keep(&t[i]);
		if (n < errlen)
			n += (size_t)snprintf(err + n, errlen - n, "%s%.*s/%s (for %s)", sep,
					      (int)(slash - dest[i]), dest[i], t[i].name, dest[i]);
		sep = ", ";
	}
}

/* A jailed guest's monitor sees no host path: this process makes FILE's
 * and FILE.mem's files (temporaries nobody can have planted, named at once
 * so that a save that ends the guest is not lost if this process dies),
 * passes them over the socket and, once the monitor has written them,
 * renames them into place, FILE.mem last as the monitor does. Once the
 * request is out, only the monitor's refusal drops them: after a failed
 * rename, a timeout or a closed connection they may hold the only copy
 * of the guest, so they stay and the error line names them. */
static int save_passing_files(const char *name, const struct ctl_request *req, int timeout_ms)
{
	struct cv_tmpfile t[2] = { { .fd = -1 }, { .fd = -1 } };
	struct json_object *reply = NULL;
	char mem[sizeof(req->path) + 8], err[3 * PATH_MAX + 256], *line = ctl_request_format(req);
	const char *const dest[2] = { req->path, mem };
	int fds[2], fd = -1, r;
	bool sent = false;

	snprintf(mem, sizeof(mem), "%s.mem", req->path);
	if (!line) {
		cv_err("out of memory");
		return CV_EXIT_FAIL;
	}
	if ((r = save_check_dest(dest[0], err, sizeof(err))) ||
	    (r = save_check_dest(dest[1], err, sizeof(err))))
		goto out;
	/* The guest first: an unknown one is bad input (status 2), and no
	 * file is made for it. */
	if ((r = cli_connect(ctl_run_dir(), name, &fd, err, sizeof(err)))) {
		cv_err("%s", err);
		free(line);
		return cli_connect_status(r);
	}
	if ((r = cv_tmpfile_open(&t[0], req->path)) || (r = cv_tmpfile_name(&t[0])) ||
	    (r = cv_tmpfile_open(&t[1], mem)) || (r = cv_tmpfile_name(&t[1]))) {
		snprintf(err, sizeof(err), "save: %s: %s", t[0].fd < 0 ? req->path : mem,
			 strerror(-r));
		goto out;
	}
	fds[0] = t[0].fd;
	fds[1] = t[1].fd;
	r = cli_call_fds(fd, line, fds, 2, timeout_ms, &reply, err, sizeof(err));
	sent = r != -EREMOTEIO;
	for (int i = 0; !r && i < 2; i++)
		if ((r = cv_tmpfile_commit(&t[i], dest[i])))
			snprintf(err, sizeof(err), "save: %s: %s", dest[i], strerror(-r));
out:
	if (fd >= 0)
		close(fd);
	if (r && sent)
		save_keep(t, dest, err, sizeof(err));
	cv_tmpfile_abort(&t[0]);
	cv_tmpfile_abort(&t[1]);
	json_object_put(reply);
	free(line);
	if (!r)
		return 0;
	cv_err("%s", err);
	return r == -EREMOTEIO || r == -ENOENT ? CV_EXIT_FAIL
	       : r == -EISDIR		       ? CV_EXIT_USAGE
					       : cli_connect_status(r);
}

/* The device and its KEY=VALUE list are checked here, as the flags of
 * `cvisor run` are: a bad rate is bad input (status 2) before any guest
 * is asked. Whether the guest has that device, the guest says. */
static int verb_set(const struct cli_verb *v, const struct cli_args *a)
{
	struct ctl_request req = { .cmd = CTL_CMD_SET };
	const struct device_type *t;
	struct json_object *reply;
	struct cv_error e = { 0 };
	unsigned int index;
	int st;

	t = devices_type_of(a->arg[1], &index);
	if (!t || !t->rate || strlen(a->arg[1]) >= sizeof(req.device)) {
		cv_err("set: %.64s: not a device with rate limits (disk0 to disk7, net0 to net3)",
		       a->arg[1]);
		return CV_EXIT_USAGE;
	}
	if (strlen(a->arg[2]) >= sizeof(req.limits)) {
		cv_err("set: %s: the limits are longer than %zu bytes", a->arg[1],
		       sizeof(req.limits) - 1);
		return CV_EXIT_USAGE;
	}
	if (rate_parse_changes(t->rate, NULL, t->nrate, a->arg[1], a->arg[2], &e)) {
		cv_err("set: %s", e.msg);
		return CV_EXIT_USAGE;
	}
	snprintf(req.device, sizeof(req.device), "%s", a->arg[1]);
	snprintf(req.limits, sizeof(req.limits), "%s", a->arg[2]);
	st = cli_request(a->arg[0], &req, NULL, v->timeout_ms, &reply);
	json_object_put(reply);
	return st;
}

/* FILE is made absolute here, since the monitor's working directory is
 * not ours. */
static int verb_save(const struct cli_verb *v, const struct cli_args *a)
{
	struct ctl_request req = { .cmd = CTL_CMD_SAVE, .keep_running = a->keep_running };
	const char *file = a->arg[1];
	char cwd[PATH_MAX];

	if (!file[0] || file[strlen(file) - 1] == '/') {
		cv_err("save: %s: not a file name", file);
		return CV_EXIT_USAGE;
	}
	if (file[0] == '/')
		cwd[0] = '\0';
	else if (!getcwd(cwd, sizeof(cwd))) {
		cv_err("save: the current directory: %s", strerror(errno));
		return CV_EXIT_FAIL;
	}
	if ((size_t)snprintf(req.path, sizeof(req.path), "%s%s%s", cwd, cwd[0] ? "/" : "", file) +
		    16 >=
	    sizeof(req.path)) {
		cv_err("save: %s: path too long", file);
		return CV_EXIT_USAGE;
	}
	/* Always the client's own files: a jailed monitor sees no host path,
	 * and a --ctl-group member must not have a root monitor write where
	 * it names (the monitor refuses a path from anyone but its owner). */
	return save_passing_files(a->arg[0], &req, v->timeout_ms);
}

/* The request line for ctl: the argument, or stdin for "-" (up to twice
 * the limit, so that oversized requests can be sent). malloc'd with room
 * for the newline and NUL; NULL on ENOMEM. */
static char *ctl_line(const char *arg, size_t *len)
{
	char *line;

	*len = 0;
	if (strcmp(arg, "-")) {
		*len = strlen(arg);
		line = malloc(*len + 2);
		if (line)
			memcpy(line, arg, *len);
		return line;
	}
	line = malloc(2 * CTL_REQUEST_MAX + 2);
	while (line && *len < 2 * CTL_REQUEST_MAX) {
		ssize_t r = read(STDIN_FILENO, line + *len, 2 * CTL_REQUEST_MAX - *len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		*len += (size_t)r;
	}
	while (line && *len && line[*len - 1] == '\n')
		(*len)--;
	return line;
}

/* One raw request line, for scripts and protocol tests: prints the reply. */
static int verb_ctl(const struct cli_verb *v, const struct cli_args *a)
{
	struct json_object *reply;
	size_t len;
	char *line = ctl_line(a->arg[1], &len);
	int st;

	if (!line) {
		cv_err("out of memory");
		return CV_EXIT_FAIL;
	}
	line[len] = '\n';
	line[len + 1] = '\0';
	st = cli_request(a->arg[0], NULL, line, v->timeout_ms, &reply);
	free(line);
	if (!st)
		puts(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(reply);
	return st;
}

#define FIELD(f) offsetof(struct cli_args, f)

static const struct cli_opt json_opts[] = {
	{ .name = "--json", .field = FIELD(json), .help = "one JSON line, for scripts" },
	{ 0 },
};

static const struct cli_opt stop_opts[] = {
	{ .name = "--timeout",
	  .kind = CLI_OPT_UINT,
	  .field = FIELD(timeout),
	  .arg = "SECONDS",
	  .help = "kill the guest if still on after SECONDS",
	  .min = 1,
	  .max = CTL_STOP_TIMEOUT_MAX,
	  .def = CTL_STOP_TIMEOUT_DEFAULT,
	  .unit = "seconds" },
	{ 0 },
};

static const struct cli_opt top_opts[] = {
	{ .name = "--once", .field = FIELD(once), .help = "one table from two samples, then exit" },
	{ .name = "--json", .field = FIELD(json), .help = "one JSON line per refresh" },
	{ .name = "--delay",
	  .kind = CLI_OPT_UINT,
	  .field = FIELD(delay),
	  .arg = "SECONDS",
	  .help = "between refreshes",
	  .min = 1,
	  .max = 3600,
	  .def = 1,
	  .unit = "seconds" },
	{ 0 },
};

static const struct cli_opt save_opts[] = {
	{ .name = "--keep-running",
	  .field = FIELD(keep_running),
	  .help = "the guest goes on (a paused one stays paused)" },
	{ 0 },
};

static const struct cli_opt migrate_opts[] = {
	{ .name = "--downtime-ms",
	  .kind = CLI_OPT_UINT,
	  .field = FIELD(downtime_ms),
	  .arg = "N",
	  .help = "the longest pause of the guest to aim for",
	  .min = 1,
	  .max = MIGRATE_MAX_DOWNTIME_MS,
	  .def = MIGRATE_DEFAULT_DOWNTIME_MS },
	{ .name = "--with-storage", .field = FIELD(with_storage), .help = "copy the disks too" },
	{ .name = "--json", .field = FIELD(json), .help = "one JSON line per round and a summary" },
	{ .name = "--max-rounds",
	  .kind = CLI_OPT_UINT,
	  .field = FIELD(max_rounds),
	  .arg = "N",
	  .help = "pre-copy rounds before stopping the guest",
	  .min = 0,
	  .max = MIGRATE_MAX_ROUNDS,
	  .def = MIGRATE_DEFAULT_MAX_ROUNDS },
	{ .name = "--max-bandwidth",
	  .kind = CLI_OPT_SIZE,
	  .field = FIELD(max_bandwidth),
	  .arg = "RATE",
	  .help = "bytes/s (a plain number is MiB/s); default: no limit",
	  .min = 1,
	  .bad = "must be a rate such as 100M (bytes per second; a plain number is MiB/s)" },
	{ .name = "--no-force",
	  .field = FIELD(no_force),
	  .help = "give up rather than miss the downtime target" },
	{ .name = "--verify",
	  .field = FIELD(verify),
	  .help = "the target compares a RAM checksum" },
	{ .name = "--tls-psk",
	  .kind = CLI_OPT_STR,
	  .field = FIELD(tls_psk),
	  .arg = "FILE",
	  .help = "TLS 1.3 with a key: one line IDENTITY:HEXKEY, mode 0600" },
	{ .name = "--tls-creds",
	  .kind = CLI_OPT_STR,
	  .field = FIELD(tls_creds),
	  .arg = "DIR",
	  .help = "TLS 1.3 with x509: ca-cert.pem, client-{cert,key}.pem" },
	{ .name = "--insecure",
	  .field = FIELD(insecure),
	  .help = "a plain stream to a HOST that is not loopback" },
	{ 0 },
};

/* name, handler, options, positionals and what a missing one is told,
 * help, the ctl_cmd of a shared handler, the request's timeout. */
const struct cli_verb cli_verbs[] = {
	{ "ls", cli_ls, json_opts, NULL, 0, NULL,
	  "name, pid, state, vCPUs, memory and uptime of every guest", 0, 0 },
	{ "info", cli_info, json_opts, "NAME", 1, "a guest NAME",
	  "a guest's configuration, cgroup, vCPUs and devices", 0, CLI_CALL_TIMEOUT_MS },
	{ "stop", verb_stop, stop_opts, "NAME", 1, "a guest NAME",
	  "press the ACPI power button; kill the guest if it stays on", 0, 0 },
	{ "kill", verb_simple, NULL, "NAME", 1, "a guest NAME", "end the guest at once",
	  CTL_CMD_KILL, STOP_MARGIN_MS },
	{ "pause", verb_simple, NULL, "NAME", 1, "a guest NAME", "park every vCPU outside KVM_RUN",
	  CTL_CMD_PAUSE, CLI_CALL_TIMEOUT_MS },
	{ "resume", verb_simple, NULL, "NAME", 1, "a guest NAME", "let a paused guest run again",
	  CTL_CMD_RESUME, CLI_CALL_TIMEOUT_MS },
	{ "reboot", verb_simple, NULL, "NAME", 1, "a guest NAME",
	  "reset the machine in place and boot again (--on-reboot restart)", CTL_CMD_REBOOT,
	  CLI_CALL_TIMEOUT_MS },
	{ "top", cli_top, top_opts, NULL, 0, NULL,
	  "CPU, exits, memory and I/O of every guest, refreshed (Ctrl-C quits)", 0, 0 },
	{ "console", cli_console, NULL, "NAME", 1, "a guest NAME (see cvisor help)",
	  "attach to a detached guest's serial console (Ctrl-] detaches)", 0, 0 },
	{ "balloon", verb_balloon, NULL, "NAME SIZE", 2, "a guest NAME and a SIZE",
	  "set the memory the balloon takes from the guest", 0, CLI_CALL_TIMEOUT_MS },
	{ "pin", verb_pin, NULL, "NAME VCPU CPULIST", 3, "a guest NAME, a VCPU and a CPULIST",
	  "set a vCPU thread's host CPUs (pin web 0 2-3)", 0, CLI_CALL_TIMEOUT_MS },
	{ "set", verb_set, NULL, "NAME DEVICE KEY=VALUE[,...]", 3,
	  "a guest NAME, a DEVICE (disk0, net0, ...) and KEY=VALUE[,...]",
	  "change a disk's or a network's I/O rate limits", 0, CLI_CALL_TIMEOUT_MS },
	{ "ctl", verb_ctl, NULL, "NAME JSON|-", 2,
	  "a guest NAME and a JSON request (or - for stdin)",
	  "send one raw protocol request and print the reply", 0, CLI_CALL_TIMEOUT_MS },
	{ "save", verb_save, save_opts, "NAME FILE", 2, "a guest NAME and a FILE",
	  "write a snapshot, FILE and FILE.mem, and end the guest", 0, SAVE_TIMEOUT_MS },
	{ "migrate", cli_migrate, migrate_opts, "NAME HOST:PORT", 2, NULL,
	  "move the guest live to `cvisor run --incoming` on HOST:PORT", 0, 0 },
	{ "host", cli_host, json_opts, NULL, 0, NULL,
	  "what /dev/kvm is, and kernel options GRUB-booted guests need", 0, 0 },
	{ 0 },
};

const struct cli_verb *cli_verb_find(const char *name)
{
	for (const struct cli_verb *v = cli_verbs; v->name; v++)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

int cli_main(int argc, char **argv)
{
	const struct cli_verb *v = cli_verb_find(argv[0]);
	struct cli_args a;
	char err[512];

	if (!v) {
		cv_err("unknown command %s (try cvisor help)", argv[0]);
		return CV_EXIT_USAGE;
	}
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		cli_verb_help(stdout, v);
		return 0;
	}
	/* A verb whose arguments have no message of their own shows its usage. */
	if (argc < 2 && v->nargs && !v->needs) {
		cli_verb_help(stderr, v);
		return CV_EXIT_USAGE;
	}
	if (cli_parse(v, argc, argv, &a, err, sizeof(err))) {
		cv_err("%s", err);
		return CV_EXIT_USAGE;
	}
	return v->run(v, &a);
}
