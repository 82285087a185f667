/* top.c - `cvisor top`: a xentop-like table of every guest's cost, from two
 * "stats" samples per guest (rates need an interval). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cvisor/ctl_proto.h"
#include "verbs.h"

#define STATS_TIMEOUT_MS 3000

struct sample {
	char *name;
	struct json_object *stats;
};

static void free_samples(struct sample *s, int n)
{
	for (int i = 0; i < n; i++) {
		free(s[i].name);
		json_object_put(s[i].stats);
	}
	free(s);
}

/* Stats of every guest that answers; guests that vanish are left out. */
static int sample_all(struct sample **out)
{
	char **names;
	struct sample *s;
	struct cli_answer *ans;
	int n = cli_list_names(ctl_run_dir(), &names), k = 0;

	*out = NULL;
	if (n < 0)
		return n;
	s = calloc((size_t)n + 1, sizeof(*s));
	ans = calloc((size_t)n + 1, sizeof(*ans));
	if (s && ans)
		cli_ask_all(names, n, "{\"cmd\":\"stats\"}\n", STATS_TIMEOUT_MS, ans);
	for (int i = 0; i < n; i++) {
		if (s && ans && !ans[i].r) {
			s[k].stats = ans[i].reply;
			s[k].name = names[i];
			names[i] = NULL;
			k++;
		}
		free(names[i]);
	}
	free(names);
	if (!ans) {
		free_samples(s, k);
		s = NULL;
	}
	free(ans);
	if (!s)
		return -ENOMEM;
	*out = s;
	return k;
}

static struct json_object *find(const struct sample *s, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s[i].name, name))
			return s[i].stats;
	return NULL;
}

static double rate(struct json_object *a, struct json_object *b, const char *key, double secs)
{
	uint64_t x = cli_json_u64(a, key), y = cli_json_u64(b, key);

	return y > x && secs > 0 ? (double)(y - x) / secs : 0.0;
}

static void fmt_rate(double bps, char *buf, size_t len)
{
	static const char units[] = "BKMGT";
	unsigned int u = 0;

	while (bps >= 1024 && u + 1 < sizeof(units) - 1) {
		bps /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f%c" : "%.0f%c", bps, units[u]);
}

void cli_limit_name(struct json_object *lim, char *buf, size_t len)
{
	const char *dir = cli_json_str(lim, "dir");

	snprintf(buf, len, "%s%s%s", cli_json_str(lim, "device"), *dir ? " " : "", dir);
}

void cli_limit_text(struct json_object *lim, char *buf, size_t len)
{
	uint64_t bw = cli_json_u64(lim, "bytes_per_s"), ops = cli_json_u64(lim, "ops_per_s");
	/* Requests a disk takes, packets a network moves. */
	const char *unit = *cli_json_str(lim, "dir") ? "packets/s" : "iops";
	char r[16], b[16];
	size_t n = 0;

	buf[0] = '\0';
	if (bw) {
		fmt_rate((double)bw, r, sizeof(r));
		fmt_rate((double)cli_json_u64(lim, "bytes_burst"), b, sizeof(b));
		n = (size_t)snprintf(buf, len, "%s/s (burst %s)", r, b);
	}
	if (ops && n < len)
		snprintf(buf + n, len - n, "%s%llu %s (burst %llu)", bw ? ", " : "",
			 (unsigned long long)ops, unit,
			 (unsigned long long)cli_json_u64(lim, "ops_burst"));
	if (!bw && !ops)
		snprintf(buf, len, "no limit");
}

static const char *const rate_keys[] = { "blk_read_bytes", "blk_write_bytes", "net_rx_bytes",
					 "net_tx_bytes" };
static const char *const rate_names[] = { "blk_read_bps", "blk_write_bps", "net_rx_bps",
					  "net_tx_bps" };

/* The entry of limits array a for the same device and direction as l. */
static struct json_object *same_limit(struct json_object *a, struct json_object *l)
{
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		struct json_object *x = json_object_array_get_idx(a, i);

		if (!strcmp(cli_json_str(x, "device"), cli_json_str(l, "device")) &&
		    !strcmp(cli_json_str(x, "dir"), cli_json_str(l, "dir")))
			return x;
	}
	return NULL;
}

/* The limited devices of a guest (stats b, a before it): their limits and
 * how often a second they held I/O back. */
static struct json_object *limit_rows(struct json_object *a, struct json_object *b, double secs)
{
	struct json_object *out = json_object_new_array(), *la = NULL, *lb = NULL;

	json_object_object_get_ex(a, "limits", &la);
	json_object_object_get_ex(b, "limits", &lb);
	for (size_t i = 0; out && lb && i < json_object_array_length(lb); i++) {
		struct json_object *l = json_object_array_get_idx(lb, i), *r;

		if ((!cli_json_u64(l, "bytes_per_s") && !cli_json_u64(l, "ops_per_s")) ||
		    !(r = json_object_new_object()))
			continue;
		json_object_object_foreach(l, key, val)
		{
			json_object_object_add(r, key, json_object_get(val));
		}
		json_object_object_add(
			r, "throttled_per_s",
			json_object_new_double(rate(same_limit(la, l), l, "throttled", secs)));
		json_object_array_add(out, r);
	}
	return out;
}

/* One row per guest seen in both samples. */
static struct json_object *rows(const struct sample *prev, int np, const struct sample *cur, int nc)
{
	struct json_object *all = json_object_new_array();

	for (int i = 0; all && i < nc; i++) {
		struct json_object *a = find(prev, np, cur[i].name), *b = cur[i].stats, *r;
		double secs;

		if (!a || !(r = json_object_new_object()))
			continue;
		secs = (double)(cli_json_u64(b, "time_ns") - cli_json_u64(a, "time_ns")) / 1e9;
		json_object_object_add(r, "name", json_object_new_string(cur[i].name));
		json_object_object_add(r, "state",
				       json_object_new_string(cli_json_str(b, "state")));
		json_object_object_add(r, "cpu_percent",
				       json_object_new_double(rate(a, b, "cpu_ns", secs) / 1e7));
		json_object_object_add(r, "exits_per_s",
				       json_object_new_double(rate(a, b, "exits", secs)));
		json_object_object_add(r, "rss", json_object_new_uint64(cli_json_u64(b, "rss")));
		json_object_object_add(r, "vcpus",
				       json_object_new_uint64(cli_json_u64(b, "vcpus")));
		json_object_object_add(r, "memory",
				       json_object_new_uint64(cli_json_u64(b, "memory")));
		for (size_t k = 0; k < ARRAY_SIZE(rate_keys); k++)
			json_object_object_add(
				r, rate_names[k],
				json_object_new_double(rate(a, b, rate_keys[k], secs)));
		json_object_object_add(r, "limits", limit_rows(a, b, secs));
		json_object_array_add(all, r);
	}
	return all;
}

static double dbl(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_double(v) : 0.0;
}

/* Under a guest's row, a line per limited device (as xentop's -x and -n
 * lines): its limit, and how often a second it held I/O back. */
static void print_limits(struct json_object *r)
{
	struct json_object *a;

	if (!json_object_object_get_ex(r, "limits", &a))
		return;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *l = json_object_array_get_idx(a, i);
		char name[32], text[128];

		cli_limit_name(l, name, sizeof(name));
		cli_limit_text(l, text, sizeof(text));
		printf("  %-18s limit %s; throttled %.1f/s\n", name, text,
		       dbl(l, "throttled_per_s"));
	}
}

static void print_table(struct json_object *all)
{
	size_t n = json_object_array_length(all);
	unsigned int running = 0, paused = 0;
	char when[32];
	time_t now = time(NULL);

	for (size_t i = 0; i < n; i++) {
		const char *st = cli_json_str(json_object_array_get_idx(all, i), "state");

		running += !strcmp(st, "running");
		paused += !strcmp(st, "paused");
	}
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	printf("cvisor top - %s  %zu guests: %u running, %u paused\n", when, n, running, paused);
	printf("%-20s %-9s %7s %9s %8s %5s %7s %9s %9s %9s %9s\n", "NAME", "STATE", "CPU(%)",
	       "EXITS/s", "RSS(M)", "VCPUS", "MEM(M)", "BLK_RD/s", "BLK_WR/s", "NET_RX/s",
	       "NET_TX/s");
	for (size_t i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(all, i);
		char rates[ARRAY_SIZE(rate_names)][16];

		for (size_t k = 0; k < ARRAY_SIZE(rate_names); k++)
			fmt_rate(dbl(r, rate_names[k]), rates[k], sizeof(rates[k]));
		printf("%-20s %-9s %7.1f %9.0f %8.1f %5llu %7llu %9s %9s %9s %9s\n",
		       cli_json_str(r, "name"), cli_json_str(r, "state"), dbl(r, "cpu_percent"),
		       dbl(r, "exits_per_s"), (double)cli_json_u64(r, "rss") / (1 << 20),
		       (unsigned long long)cli_json_u64(r, "vcpus"),
		       (unsigned long long)(cli_json_u64(r, "memory") >> 20), rates[0], rates[1],
		       rates[2], rates[3]);
		print_limits(r);
	}
	fflush(stdout);
}

int cli_top(const struct cli_verb *v, const struct cli_args *a)
{
	struct sample *prev = NULL, *cur;
	bool once = a->once, json = a->json, tty = isatty(STDOUT_FILENO);
	uint64_t delay = a->delay;
	int np, nc;

	(void)v;
	if ((np = sample_all(&prev)) < 0) {
		cv_err("%s: %s", ctl_run_dir(), strerror(-np));
		return CV_EXIT_FAIL;
	}
	for (;;) {
		struct json_object *all;

		sleep((unsigned int)delay);
		if ((nc = sample_all(&cur)) < 0) {
			cv_err("%s: %s", ctl_run_dir(), strerror(-nc));
			free_samples(prev, np);
			return CV_EXIT_FAIL;
		}
		all = rows(prev, np, cur, nc);
		free_samples(prev, np);
		prev = cur;
		np = nc;
		if (!all) {
			cv_err("out of memory");
			free_samples(prev, np);
			return CV_EXIT_FAIL;
		}
		if (json) {
			puts(json_object_to_json_string_ext(all, JSON_C_TO_STRING_PLAIN));
			fflush(stdout);
		} else {
			/* Refresh in place on a terminal, like top; append otherwise. */
			if (tty && !once)
				fputs("\033[H\033[2J", stdout);
			print_table(all);
		}
		json_object_put(all);
		if (once)
			break;
	}
	free_samples(prev, np);
	return 0;
}
