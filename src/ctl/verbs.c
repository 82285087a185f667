/* verbs.c - `cvisor ls|info|stop|kill|pause|resume|balloon|pin|ctl`: one
 * request each, its reply printed for people or, with --json, for scripts.
 * Also the dispatch of every verb but run. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvisor/config.h"
#include "cvisor/cpulist.h"
#include "cvisor/ctl.h"
#include "cvisor/migrate.h"

#define CALL_TIMEOUT_MS 10000
/* stop replies when the guest is gone: its timeout plus time to tear down. */
#define STOP_MARGIN_MS 30000
/* save writes all of guest RAM that holds data, then (without
 * --keep-running) waits for the guest to end. */
#define SAVE_TIMEOUT_MS 600000

static const char client_usage[] =
	"usage: cvisor ls [--json]\n"
	"       cvisor info NAME [--json]\n"
	"       cvisor stop NAME [--timeout SECONDS]   (default 30)\n"
	"       cvisor kill|pause|resume NAME\n"
	"       cvisor top [--once] [--json] [--delay SECONDS]\n"
	"       cvisor console NAME                    (Ctrl-] detaches)\n"
	"       cvisor balloon NAME SIZE\n"
	"       cvisor pin NAME VCPU CPULIST\n"
	"       cvisor save NAME FILE [--keep-running] (writes FILE and FILE.mem)\n"
	"       cvisor ctl NAME JSON|-                 (one raw protocol request)\n";

static void print_json(struct json_object *o)
{
	json_object_object_del(o, "ok");
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return "-";
}

static uint64_t get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int))
		return json_object_get_uint64(v);
	return 0;
}

static void fmt_uptime(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (s >= 86400)
		snprintf(buf, len, "%llud%02llu:%02llu:%02llu", (unsigned long long)(s / 86400),
			 (unsigned long long)(s / 3600 % 24), (unsigned long long)(s / 60 % 60),
			 (unsigned long long)(s % 60));
	else
		snprintf(buf, len, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
			 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
}

static void fmt_size(uint64_t bytes, char *buf, size_t len)
{
	if (bytes && bytes % (1ULL << 30) == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(bytes >> 30));
	else
		snprintf(buf, len, "%lluM", (unsigned long long)(bytes >> 20));
}

/* Flags of the verbs: --json everywhere it prints data. */
static int take_flags(int argc, char **argv, bool *json, int *npos, char **pos, int maxpos)
{
	*npos = 0;
	for (int i = 1; i < argc; i++) {
		if (json && !strcmp(argv[i], "--json")) {
			*json = true;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			cv_err("%s: unknown flag %s (see cvisor help)", argv[0], argv[i]);
			return -EINVAL;
		} else if (*npos < maxpos) {
			pos[(*npos)++] = argv[i];
		} else {
			cv_err("%s: unexpected argument %s (see cvisor help)", argv[0], argv[i]);
			return -EINVAL;
		}
	}
	return 0;
}

static int need_args(const char *verb, int npos, int want, const char *what)
{
	if (npos == want)
		return 0;
	cv_err("%s: needs %s", verb, what);
	return -EINVAL;
}

static int verb_ls(int argc, char **argv)
{
	static const char *const keys[] = {
		"name", "pid", "state", "vcpus", "memory", "uptime_ms"
	};
	struct json_object *all = json_object_new_array();
	bool json = false;
	char **names, *pos[1];
	int n, npos;

	if (!all || take_flags(argc, argv, &json, &npos, pos, 0)) {
		json_object_put(all);
		return CV_EXIT_USAGE;
	}
	n = ctl_list_names(ctl_run_dir(), &names);
	if (n < 0) {
		cv_err("%s: %s", ctl_run_dir(), strerror(-n));
		json_object_put(all);
		return CV_EXIT_FAIL;
	}
	if (!json)
		printf("%-20s %8s %-12s %5s %8s %12s\n", "NAME", "PID", "STATE", "VCPUS", "MEMORY",
		       "UPTIME");
	for (int i = 0; i < n; i++) {
		struct json_object *info = NULL, *row;
		char err[512], mem[32], up[32];
		int fd, r;

		/* A socket whose monitor is gone (kill -9) is skipped: the next
		 * run of that name replaces it. */
		r = ctl_connect(ctl_run_dir(), names[i], &fd, err, sizeof(err));
		if (!r) {
			r = ctl_call(fd, "{\"cmd\":\"info\"}\n", CALL_TIMEOUT_MS / 2, &info, err,
				     sizeof(err));
			close(fd);
		}
		if (r == -ENOENT || r == -ECONNREFUSED) {
			free(names[i]);
			continue;
		}
		row = json_object_new_object();
		for (size_t k = 0; row && info && k < ARRAY_SIZE(keys); k++) {
			struct json_object *v;

			if (json_object_object_get_ex(info, keys[k], &v))
				json_object_object_add(row, keys[k], json_object_get(v));
		}
		if (row && !info) {
			json_object_object_add(row, "name", json_object_new_string(names[i]));
			json_object_object_add(row, "state",
					       json_object_new_string("unresponsive"));
		}
		if (!json) {
			fmt_size(get_u64(row, "memory"), mem, sizeof(mem));
			fmt_uptime(get_u64(row, "uptime_ms"), up, sizeof(up));
			printf("%-20s %8llu %-12s %5llu %8s %12s\n", get_str(row, "name"),
			       (unsigned long long)get_u64(row, "pid"), get_str(row, "state"),
			       (unsigned long long)get_u64(row, "vcpus"), info ? mem : "-",
			       info ? up : "-");
		}
		if (row)
			json_object_array_add(all, row);
		json_object_put(info);
		free(names[i]);
	}
	free(names);
	if (json)
		puts(json_object_to_json_string_ext(all, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(all);
	return 0;
}

/* The balloon and what the guest last said of its memory. */
static void print_balloon(struct json_object *b)
{
	struct json_object *g;
	char held[32], want[32], free_[32], total[32];

	fmt_size(get_u64(b, "actual"), held, sizeof(held));
	fmt_size(get_u64(b, "target"), want, sizeof(want));
	printf("%-14sholds %s of %s asked; pages: %llu inflated, %llu deflated, %llu reported "
	       "free\n",
	       "balloon", held, want, (unsigned long long)get_u64(b, "inflated_pages"),
	       (unsigned long long)get_u64(b, "deflated_pages"),
	       (unsigned long long)get_u64(b, "reported_pages"));
	if (!json_object_object_get_ex(b, "guest", &g))
		return;
	fmt_size(get_u64(g, "free_memory"), free_, sizeof(free_));
	fmt_size(get_u64(g, "total_memory"), total, sizeof(total));
	printf("%-14s%s free of %s (%llu s ago)\n", "guest memory", free_, total,
	       (unsigned long long)(get_u64(g, "age_ms") / 1000));
}

static void print_info(struct json_object *o)
{
	struct json_object *a, *v;
	char buf[64];

	printf("%-14s%s\n", "name", get_str(o, "name"));
	printf("%-14s%llu\n", "pid", (unsigned long long)get_u64(o, "pid"));
	printf("%-14s%s\n", "state", get_str(o, "state"));
	fmt_uptime(get_u64(o, "uptime_ms"), buf, sizeof(buf));
	printf("%-14s%s\n", "uptime", buf);
	printf("%-14s%llu\n", "vcpus", (unsigned long long)get_u64(o, "vcpus"));
	fmt_size(get_u64(o, "memory"), buf, sizeof(buf));
	printf("%-14s%s\n", "memory", buf);
	printf("%-14s%s\n", "kernel", get_str(o, "kernel"));
	printf("%-14s%s\n", "initrd", get_str(o, "initrd"));
	printf("%-14s%s\n", "cmdline", get_str(o, "cmdline"));
	printf("%-14s%llu\n", "cpu weight", (unsigned long long)get_u64(o, "cpu_weight"));
	if (get_u64(o, "cpu_cap"))
		printf("%-14s%llu%%\n", "cpu cap", (unsigned long long)get_u64(o, "cpu_cap"));
	else
		printf("%-14snone\n", "cpu cap");
	fmt_size(get_u64(o, "memory_limit"), buf, sizeof(buf));
	printf("%-14s%s\n", "memory limit", get_u64(o, "memory_limit") ? buf : "none");
	printf("%-14s%s\n", "cpu affinity", get_str(o, "cpu_affinity"));
	printf("%-14s%s\n", "cgroup", get_str(o, "cgroup"));
	printf("%-14s%s\n", "console log", get_str(o, "log"));
	if (json_object_object_get_ex(o, "vcpu", &a) && json_object_is_type(a, json_type_array))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			v = json_object_array_get_idx(a, i);
			snprintf(buf, sizeof(buf), "vcpu %llu",
				 (unsigned long long)get_u64(v, "id"));
			printf("%-14saffinity %s, %llu exits\n", buf, get_str(v, "affinity"),
			       (unsigned long long)get_u64(v, "exits"));
		}
	if (json_object_object_get_ex(o, "devices", &a) && json_object_is_type(a, json_type_array))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			v = json_object_array_get_idx(a, i);
			printf("%-14s%s %s +%llu %s\n", "device", get_str(v, "bus"),
			       get_str(v, "base"), (unsigned long long)get_u64(v, "len"),
			       get_str(v, "name"));
		}
	if (json_object_object_get_ex(o, "balloon", &v))
		print_balloon(v);
	if (json_object_object_get_ex(o, "net", &a) && json_object_is_type(a, json_type_array))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			v = json_object_array_get_idx(a, i);
			printf("%-14srx %llu packets (%llu dropped), tx %llu packets (%llu "
			       "dropped)\n",
			       get_str(v, "device"), (unsigned long long)get_u64(v, "rx_packets"),
			       (unsigned long long)get_u64(v, "rx_dropped"),
			       (unsigned long long)get_u64(v, "tx_packets"),
			       (unsigned long long)get_u64(v, "tx_dropped"));
		}
}

static int verb_info(int argc, char **argv)
{
	struct ctl_request req = { .cmd = CTL_CMD_INFO };
	struct json_object *reply;
	bool json = false;
	char *pos[1];
	int npos, st;

	if (take_flags(argc, argv, &json, &npos, pos, 1) ||
	    need_args(argv[0], npos, 1, "a guest NAME"))
		return CV_EXIT_USAGE;
	if ((st = ctl_request(pos[0], &req, NULL, CALL_TIMEOUT_MS, &reply)))
		return st;
	if (json)
		print_json(reply);
	else
		print_info(reply);
	json_object_put(reply);
	return 0;
}

/* pause, resume, kill: nothing to print. */
static int verb_simple(int argc, char **argv, enum ctl_cmd cmd)
{
	struct ctl_request req = { .cmd = cmd };
	struct json_object *reply;
	char *pos[1];
	int npos, st;

	if (take_flags(argc, argv, NULL, &npos, pos, 1) ||
	    need_args(argv[0], npos, 1, "a guest NAME"))
		return CV_EXIT_USAGE;
	st = ctl_request(pos[0], &req, NULL, cmd == CTL_CMD_KILL ? STOP_MARGIN_MS : CALL_TIMEOUT_MS,
			 &reply);
	json_object_put(reply);
	return st;
}

static int verb_stop(int argc, char **argv)
{
	struct ctl_request req = { .cmd = CTL_CMD_STOP, .timeout_s = CTL_STOP_TIMEOUT_DEFAULT };
	struct json_object *reply;
	const char *name = NULL, *outcome;
	uint64_t t;
	int st;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			if (cv_parse_uint(argv[++i], 1, CTL_STOP_TIMEOUT_MAX, &t)) {
				cv_err("stop: --timeout %s: must be 1 to %d seconds", argv[i],
				       CTL_STOP_TIMEOUT_MAX);
				return CV_EXIT_USAGE;
			}
			req.timeout_s = (unsigned int)t;
		} else if (argv[i][0] == '-' || name) {
			cv_err("stop: unexpected argument %s (see cvisor help)", argv[i]);
			return CV_EXIT_USAGE;
		} else {
			name = argv[i];
		}
	}
	if (!name) {
		cv_err("stop: needs a guest NAME");
		return CV_EXIT_USAGE;
	}
	st = ctl_request(name, &req, NULL, (int)req.timeout_s * 1000 + STOP_MARGIN_MS, &reply);
	if (st)
		return st;
	outcome = get_str(reply, "outcome");
	if (!strcmp(outcome, "killed")) {
		cv_err("guest %s did not power off within %u s: killed", name, req.timeout_s);
		st = CV_EXIT_FAIL;
	}
	json_object_put(reply);
	return st;
}

static int verb_balloon(int argc, char **argv)
{
	struct ctl_request req = { .cmd = CTL_CMD_BALLOON };
	struct json_object *reply;
	char *pos[2];
	int npos, st;

	if (take_flags(argc, argv, NULL, &npos, pos, 2) ||
	    need_args(argv[0], npos, 2, "a guest NAME and a SIZE"))
		return CV_EXIT_USAGE;
	if (cv_parse_size(pos[1], 1, &req.bytes)) {
		cv_err("balloon: %s: not a size (try 512M or 2G)", pos[1]);
		return CV_EXIT_USAGE;
	}
	st = ctl_request(pos[0], &req, NULL, CALL_TIMEOUT_MS, &reply);
	json_object_put(reply);
	return st;
}

static int verb_pin(int argc, char **argv)
{
	struct ctl_request req = { .cmd = CTL_CMD_PIN };
	struct json_object *reply;
	uint64_t vcpu;
	char *pos[3];
	int npos, st;

	if (take_flags(argc, argv, NULL, &npos, pos, 3) ||
	    need_args(argv[0], npos, 3, "a guest NAME, a VCPU and a CPULIST"))
		return CV_EXIT_USAGE;
	if (cv_parse_uint(pos[1], 0, CONFIG_MAX_CPUS - 1, &vcpu)) {
		cv_err("pin: %s: not a vCPU number", pos[1]);
		return CV_EXIT_USAGE;
	}
	req.vcpu = (unsigned int)vcpu;
	if (cpulist_parse(pos[2], &req.cpus)) {
		cv_err("pin: %.80s: not a CPU list (try 0-3,6)", pos[2]);
		return CV_EXIT_USAGE;
	}
	st = ctl_request(pos[0], &req, NULL, CALL_TIMEOUT_MS, &reply);
	json_object_put(reply);
	return st;
}

/* save NAME FILE [--keep-running]: FILE is made absolute here, since the
 * monitor's working directory is not ours. */
static int verb_save(int argc, char **argv)
{
	struct ctl_request req = { .cmd = CTL_CMD_SAVE };
	struct json_object *reply;
	const char *pos[2];
	char cwd[PATH_MAX];
	int npos = 0, st;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--keep-running")) {
			req.keep_running = true;
		} else if ((argv[i][0] == '-' && argv[i][1]) || npos == 2) {
			cv_err("save: unexpected argument %s (see cvisor help)", argv[i]);
			return CV_EXIT_USAGE;
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (need_args(argv[0], npos, 2, "a guest NAME and a FILE"))
		return CV_EXIT_USAGE;
	if (!pos[1][0] || pos[1][strlen(pos[1]) - 1] == '/') {
		cv_err("save: %s: not a file name", pos[1]);
		return CV_EXIT_USAGE;
	}
	if (pos[1][0] == '/')
		cwd[0] = '\0';
	else if (!getcwd(cwd, sizeof(cwd))) {
		cv_err("save: the current directory: %s", strerror(errno));
		return CV_EXIT_FAIL;
	}
	if ((size_t)snprintf(req.path, sizeof(req.path), "%s%s%s", cwd, cwd[0] ? "/" : "", pos[1]) +
		    16 >=
	    sizeof(req.path)) {
		cv_err("save: %s: path too long", pos[1]);
		return CV_EXIT_USAGE;
	}
	st = ctl_request(pos[0], &req, NULL, SAVE_TIMEOUT_MS, &reply);
	json_object_put(reply);
	return st;
}

/* One raw request line, for scripts and protocol tests: prints the reply. */
static int verb_ctl(int argc, char **argv)
{
	struct json_object *reply;
	char *pos[2], *line;
	size_t len = 0;
	int npos, st;

	if (take_flags(argc, argv, NULL, &npos, pos, 2) ||
	    need_args(argv[0], npos, 2, "a guest NAME and a JSON request (or - for stdin)"))
		return CV_EXIT_USAGE;
	if (strcmp(pos[1], "-")) {
		len = strlen(pos[1]);
		line = malloc(len + 2);
		if (line)
			memcpy(line, pos[1], len);
	} else {
		/* Up to twice the limit, so that oversized requests can be sent. */
		line = malloc(2 * CTL_REQUEST_MAX + 2);
		while (line && len < 2 * CTL_REQUEST_MAX) {
			ssize_t r = read(STDIN_FILENO, line + len, 2 * CTL_REQUEST_MAX - len);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			len += (size_t)r;
		}
		while (line && len && line[len - 1] == '\n')
			len--;
	}
	if (!line) {
		cv_err("out of memory");
		return CV_EXIT_FAIL;
	}
	line[len] = '\n';
	line[len + 1] = '\0';
	st = ctl_request(pos[0], NULL, line, CALL_TIMEOUT_MS, &reply);
	free(line);
	if (!st)
		puts(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(reply);
	return st;
}

#define MIGRATE_USAGE                                                                        \
	"usage: cvisor migrate NAME HOST:PORT [--downtime-ms N] [--with-storage] [--json]\n" \
	"                      [--max-rounds N] [--max-bandwidth RATE] [--no-force] [--verify]\n"

/* `cvisor migrate NAME HOST:PORT [...]`: the monitor streams progress
 * lines, then its reply (the summary or the error). */
static int verb_migrate(int argc, char **argv)
{
	struct migrate_cli cli;
	struct ctl_linebuf lb;
	char err[512], req[1024];
	bool tty = isatty(STDERR_FILENO), bar = false;
	int fd, r, st = CV_EXIT_FAIL;
	size_t off, n;

	if (argc < 2) {
		fputs(MIGRATE_USAGE, stderr);
		return CV_EXIT_USAGE;
	}
	if (migrate_parse_args(argc, argv, &cli, err, sizeof(err))) {
		cv_err("%s", err);
		return CV_EXIT_USAGE;
	}
	if (migrate_req_format(&cli.opts, req, sizeof(req) - 1)) {
		cv_err("migrate: request too long");
		return CV_EXIT_USAGE;
	}
	n = strlen(req);
	if (!n || req[n - 1] != '\n') {
		req[n++] = '\n';
		req[n] = '\0';
	}
	if ((r = ctl_connect(ctl_run_dir(), cli.name, &fd, err, sizeof(err)))) {
		cv_err("%s", err);
		return r == -ENOENT || r == -ECONNREFUSED || r == -EINVAL ? CV_EXIT_USAGE
									  : CV_EXIT_FAIL;
	}
	for (off = 0; off < n;) {
		ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			cv_err("migrate: sending the request: %s", strerror(errno));
			close(fd);
			return CV_EXIT_FAIL;
		}
		off += (size_t)w;
	}
	if (ctl_linebuf_init(&lb, CTL_REPLY_MAX)) {
		cv_err("out of memory");
		close(fd);
		return CV_EXIT_FAIL;
	}
	for (;;) {
		struct migrate_progress p;
		char *line, *room;
		size_t len;
		ssize_t got;
		int t = ctl_linebuf_take(&lb, &line, &len);

		if (t < 0) {
			cv_err("migrate: reply from the monitor too long");
			break;
		}
		if (t == 0) {
			size_t rn = ctl_linebuf_room(&lb, &room);

			got = read(fd, room, rn);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				if (bar)
					fputc('\n', stderr);
				cv_err("migrate: the monitor of %s closed the connection without a "
				       "reply",
				       cli.name);
				break;
			}
			ctl_linebuf_added(&lb, (size_t)got);
			continue;
		}
		r = migrate_progress_parse(line, len, &p);
		if (r == 1) {
			if (cli.json) {
				printf("%s\n", line);
				fflush(stdout);
			} else if (tty) {
				char buf[512];

				migrate_progress_bar(&p, buf, sizeof(buf));
				fputs(buf, stderr);
				bar = true;
			}
			continue;
		}
		if (bar)
			fputc('\n', stderr);
		if (r == 2) {
			if (cli.json) {
				printf("%s\n", line);
			} else {
				char buf[512];

				p.dest = cli.opts.dest;
				p.downtime_target_ms = cli.opts.downtime_ms;
				migrate_summary_line(&p, buf, sizeof(buf));
				printf("%s\n", buf);
			}
			st = 0;
			break;
		}
		{
			struct json_object *reply = NULL;

			if (ctl_reply_parse(line, len, &reply, err, sizeof(err)) == 0)
				cv_err("migrate: unexpected reply from the monitor");
			else
				cv_err("%s", err);
			json_object_put(reply);
		}
		break;
	}
	ctl_linebuf_free(&lb);
	close(fd);
	return st;
}

static const char *const verbs[] = { "ls",	"info",	   "stop", "kill", "pause", "resume", "top",
				     "console", "balloon", "pin",  "ctl",  "save",  "migrate" };

bool ctl_client_verb(const char *verb)
{
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (!strcmp(verb, verbs[i]))
			return true;
	return false;
}

int ctl_client_main(int argc, char **argv)
{
	const char *v = argv[0];

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(client_usage, stdout);
		return 0;
	}
	if (!strcmp(v, "ls"))
		return verb_ls(argc, argv);
	if (!strcmp(v, "info"))
		return verb_info(argc, argv);
	if (!strcmp(v, "stop"))
		return verb_stop(argc, argv);
	if (!strcmp(v, "kill"))
		return verb_simple(argc, argv, CTL_CMD_KILL);
	if (!strcmp(v, "pause"))
		return verb_simple(argc, argv, CTL_CMD_PAUSE);
	if (!strcmp(v, "resume"))
		return verb_simple(argc, argv, CTL_CMD_RESUME);
	if (!strcmp(v, "balloon"))
		return verb_balloon(argc, argv);
	if (!strcmp(v, "pin"))
		return verb_pin(argc, argv);
	if (!strcmp(v, "ctl"))
		return verb_ctl(argc, argv);
	if (!strcmp(v, "save"))
		return verb_save(argc, argv);
	if (!strcmp(v, "migrate"))
		return verb_migrate(argc, argv);
	if (!strcmp(v, "top"))
		return ctl_cmd_top(argc, argv);
	if (!strcmp(v, "console"))
		return ctl_cmd_console(argc, argv);
	fputs(client_usage, stderr);
	return CV_EXIT_USAGE;
}
