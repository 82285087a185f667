/* info.c - `cvisor ls` and `cvisor info`: what the guests' monitors say of
 * them, printed for people or, with --json, for scripts. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/ctl_proto.h"
#include "verbs.h"

static void print_json(struct json_object *o)
{
	json_object_object_del(o, "ok");
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
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

/* One guest's row of `ls` from its answer a, or NULL when its socket is
 * stale (a monitor killed with kill -9: the next run of that name replaces
 * it) or memory ran out. A socket this user may not connect to is listed
 * as "permission denied" (*denied set), a monitor that does not answer as
 * unresponsive. */
static struct json_object *ls_row(const char *name, const struct cli_answer *a, bool *answered,
				  bool *denied)
{
	static const char *const keys[] = {
		"name", "pid", "state", "vcpus", "memory", "uptime_ms"
	};
	struct json_object *info = a->r ? NULL : a->reply, *row, *v;

	if (a->r == -ENOENT || a->r == -ECONNREFUSED)
		return NULL;
	*answered = info;
	*denied = a->r == -EACCES || a->r == -EPERM;
	row = json_object_new_object();
	for (size_t k = 0; row && info && k < ARRAY_SIZE(keys); k++)
		if (json_object_object_get_ex(info, keys[k], &v))
			json_object_object_add(row, keys[k], json_object_get(v));
	if (row && !info) {
		json_object_object_add(row, "name", json_object_new_string(name));
		json_object_object_add(
			row, "state",
			json_object_new_string(*denied ? "permission denied" : "unresponsive"));
	}
	return row;
}

static void print_ls_row(struct json_object *row, bool answered)
{
	char pid[24] = "-", vcpus[24] = "-", mem[32] = "-", up[32] = "-";

	if (answered) {
		snprintf(pid, sizeof(pid), "%llu", (unsigned long long)cli_json_u64(row, "pid"));
		snprintf(vcpus, sizeof(vcpus), "%llu",
			 (unsigned long long)cli_json_u64(row, "vcpus"));
		fmt_size(cli_json_u64(row, "memory"), mem, sizeof(mem));
		fmt_uptime(cli_json_u64(row, "uptime_ms"), up, sizeof(up));
	}
	printf("%-20s %8s %-12s %5s %8s %12s\n", cli_json_str(row, "name"), pid,
	       cli_json_str(row, "state"), vcpus, mem, up);
}

/* Each guest's row: "list", and "info" of the monitors that do not know
 * "list" (started by an older cvisor, which still runs them). */
static void ask_rows(char **names, int n, struct cli_answer *ans)
{
	char **old = calloc((size_t)n + 1, sizeof(*old));
	struct cli_answer *again = calloc((size_t)n + 1, sizeof(*again));
	int *at = calloc((size_t)n + 1, sizeof(*at)), k = 0;

	cli_ask_all(names, n, "{\"cmd\":\"list\"}\n", CLI_CALL_TIMEOUT_MS / 2, ans);
	for (int i = 0; old && again && at && i < n; i++)
		if (ans[i].unknown) {
			json_object_put(ans[i].reply);
			ans[i].reply = NULL;
			at[k] = i;
			old[k++] = names[i];
		}
	if (k)
		cli_ask_all(old, k, "{\"cmd\":\"info\"}\n", CLI_CALL_TIMEOUT_MS / 2, again);
	for (int j = 0; j < k; j++)
		ans[at[j]] = again[j];
	free(old);
	free(again);
	free(at);
}

int cli_ls(const struct cli_verb *v, const struct cli_args *a)
{
	struct json_object *all = json_object_new_array();
	struct cli_answer *ans;
	char **names;
	int n, denied = 0;

	(void)v;
	if (!all) {
		cv_err("out of memory");
		return CV_EXIT_FAIL;
	}
	n = cli_list_names(ctl_run_dir(), &names);
	if (n < 0 || !(ans = calloc((size_t)n + 1, sizeof(*ans)))) {
		cv_err("%s: %s", ctl_run_dir(), strerror(n < 0 ? -n : ENOMEM));
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(n < 0 ? NULL : names);
		json_object_put(all);
		return CV_EXIT_FAIL;
	}
	ask_rows(names, n, ans);
	if (!a->json)
		printf("%-20s %8s %-12s %5s %8s %12s\n", "NAME", "PID", "STATE", "VCPUS", "MEMORY",
		       "UPTIME");
	for (int i = 0; i < n; i++) {
		bool answered = false, no_access = false;
		struct json_object *row = ls_row(names[i], &ans[i], &answered, &no_access);

		denied += no_access;
		if (row && !a->json)
			print_ls_row(row, answered);
		if (row)
			json_object_array_add(all, row);
		json_object_put(ans[i].reply);
		free(names[i]);
	}
	free(ans);
	free(names);
	if (a->json)
		puts(json_object_to_json_string_ext(all, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(all);
	/* A list that cannot say what some guests are is no success: a
	 * script would take them for hung. */
	if (denied) {
		cv_err("ls: %d guest%s in %s: permission denied (run cvisor as the user who "
		       "started %s, or as root)",
		       denied, denied == 1 ? "" : "s", ctl_run_dir(), denied == 1 ? "it" : "them");
		return CV_EXIT_FAIL;
	}
	return 0;
}

/* The balloon and what the guest last said of its memory. */
static void print_balloon(struct json_object *b)
{
	struct json_object *g;
	char held[32], want[32], free_[32], total[32];

	fmt_size(cli_json_u64(b, "actual"), held, sizeof(held));
	fmt_size(cli_json_u64(b, "target"), want, sizeof(want));
	printf("%-14sholds %s of %s asked; pages: %llu inflated, %llu deflated, %llu reported "
	       "free\n",
	       "balloon", held, want, (unsigned long long)cli_json_u64(b, "inflated_pages"),
	       (unsigned long long)cli_json_u64(b, "deflated_pages"),
	       (unsigned long long)cli_json_u64(b, "reported_pages"));
	if (!json_object_object_get_ex(b, "guest", &g))
		return;
	fmt_size(cli_json_u64(g, "free_memory"), free_, sizeof(free_));
	fmt_size(cli_json_u64(g, "total_memory"), total, sizeof(total));
	printf("%-14s%s free of %s (%llu s ago)\n", "guest memory", free_, total,
	       (unsigned long long)(cli_json_u64(g, "age_ms") / 1000));
}

static void print_info(struct json_object *o)
{
	struct json_object *a, *v;
	char buf[64];

	printf("%-14s%s\n", "name", cli_json_str(o, "name"));
	printf("%-14s%llu\n", "pid", (unsigned long long)cli_json_u64(o, "pid"));
	printf("%-14s%s\n", "state", cli_json_str(o, "state"));
	fmt_uptime(cli_json_u64(o, "uptime_ms"), buf, sizeof(buf));
	printf("%-14s%s\n", "uptime", buf);
	printf("%-14s%llu\n", "vcpus", (unsigned long long)cli_json_u64(o, "vcpus"));
	fmt_size(cli_json_u64(o, "memory"), buf, sizeof(buf));
	printf("%-14s%s\n", "memory", buf);
	printf("%-14s%s\n", "kernel", cli_json_str(o, "kernel"));
	printf("%-14s%s\n", "initrd", cli_json_str(o, "initrd"));
	printf("%-14s%s\n", "cmdline", cli_json_str(o, "cmdline"));
	printf("%-14s%llu\n", "cpu weight", (unsigned long long)cli_json_u64(o, "cpu_weight"));
	if (cli_json_u64(o, "cpu_cap"))
		printf("%-14s%llu%%\n", "cpu cap", (unsigned long long)cli_json_u64(o, "cpu_cap"));
	else
		printf("%-14snone\n", "cpu cap");
	fmt_size(cli_json_u64(o, "memory_limit"), buf, sizeof(buf));
	printf("%-14s%s\n", "memory limit", cli_json_u64(o, "memory_limit") ? buf : "none");
	printf("%-14s%s\n", "cpu affinity", cli_json_str(o, "cpu_affinity"));
	printf("%-14s%s\n", "cgroup", cli_json_str(o, "cgroup"));
	printf("%-14s%s\n", "console log", cli_json_str(o, "log"));
	/* The default (tty) is left out of the config's JSON. */
	printf("%-14s%s\n", "serial",
	       strcmp(cli_json_str(o, "serial"), "-") ? cli_json_str(o, "serial") : "tty");
	printf("%-14s%s\n", "serial pty", cli_json_str(o, "serial_pty"));
	printf("%-14s%s\n", "console pty", cli_json_str(o, "console_pty"));
	if (json_object_object_get_ex(o, "vcpu", &a) && json_object_is_type(a, json_type_array))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			v = json_object_array_get_idx(a, i);
			snprintf(buf, sizeof(buf), "vcpu %llu",
				 (unsigned long long)cli_json_u64(v, "id"));
			printf("%-14saffinity %s, %llu exits\n", buf, cli_json_str(v, "affinity"),
			       (unsigned long long)cli_json_u64(v, "exits"));
		}
	if (json_object_object_get_ex(o, "devices", &a) && json_object_is_type(a, json_type_array))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			v = json_object_array_get_idx(a, i);
			printf("%-14s%s %s +%llu %s\n", "device", cli_json_str(v, "bus"),
			       cli_json_str(v, "base"), (unsigned long long)cli_json_u64(v, "len"),
			       cli_json_str(v, "name"));
		}
	if (json_object_object_get_ex(o, "balloon", &v))
		print_balloon(v);
	if (json_object_object_get_ex(o, "net", &a) && json_object_is_type(a, json_type_array))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			v = json_object_array_get_idx(a, i);
			printf("%-14srx %llu packets (%llu dropped), tx %llu packets (%llu "
			       "dropped)\n",
			       cli_json_str(v, "device"),
			       (unsigned long long)cli_json_u64(v, "rx_packets"),
			       (unsigned long long)cli_json_u64(v, "rx_dropped"),
			       (unsigned long long)cli_json_u64(v, "tx_packets"),
			       (unsigned long long)cli_json_u64(v, "tx_dropped"));
		}
	if (json_object_object_get_ex(o, "limits", &a) && json_object_is_type(a, json_type_array))
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			char name[32], text[128];

			v = json_object_array_get_idx(a, i);
			cli_limit_name(v, name, sizeof(name));
			cli_limit_text(v, text, sizeof(text));
			printf("%-14s%s; throttled %llu times\n", name, text,
			       (unsigned long long)cli_json_u64(v, "throttled"));
		}
}

int cli_info(const struct cli_verb *v, const struct cli_args *a)
{
	struct ctl_request req = { .cmd = CTL_CMD_INFO };
	struct json_object *reply;
	int st;

	if ((st = cli_request(a->arg[0], &req, NULL, v->timeout_ms, &reply)))
		return st;
	if (a->json)
		print_json(reply);
	else
		print_info(reply);
	json_object_put(reply);
	return 0;
}
