/* verbs.h - private to src/cli: the handlers the verb table in verbs.c
 * names (each a `struct cli_verb` run function: returns the exit status),
 * and the reply accessors they share. */
#ifndef CVISOR_CLI_VERBS_H
#define CVISOR_CLI_VERBS_H

#include <stddef.h>
#include <stdint.h>

#include "cvisor/cli.h"

struct json_object;

/* Requests that answer at once. */
#define CLI_CALL_TIMEOUT_MS 10000

/* `cvisor ls [--json]` (info.c). */
int cli_ls(const struct cli_verb *v, const struct cli_args *a);

/* `cvisor info NAME [--json]` (info.c). */
int cli_info(const struct cli_verb *v, const struct cli_args *a);

/* `cvisor top [--once] [--json] [--delay S]` (top.c). */
int cli_top(const struct cli_verb *v, const struct cli_args *a);

/* `cvisor console NAME` (console.c). */
int cli_console(const struct cli_verb *v, const struct cli_args *a);

/* `cvisor host [--json]`: /dev/kvm, whether the host emulates guest
 * kernel code, and the kernel options a guest booted by its own loader
 * needs here (host.c). */
int cli_host(const struct cli_verb *v, const struct cli_args *a);

/* `cvisor migrate NAME HOST:PORT [...]` (migrate.c). */
int cli_migrate(const struct cli_verb *v, const struct cli_args *a);

/* One guest's answer to cli_ask_all: r as cli_connect or cli_call return
 * it, and the reply when r is 0. */
struct cli_answer {
	int r;
	struct json_object *reply;
	bool unknown; /* r -EREMOTEIO: the monitor does not know the command */
};

/* Send request line to each of guests names[0..n) in ctl_run_dir() at
 * once (a few threads), each waiting up to timeout_ms; out[i] is names[i]'s
 * answer (fanout.c). The caller puts the replies. */
void cli_ask_all(char *const *names, int n, const char *line, int timeout_ms,
		 struct cli_answer *out);

/* One entry of a reply's "limits" (ctl proto.c) as words: "10.0M/s (burst
 * 1.0M), 100 iops (burst 10)", or "no limit" (top.c). */
void cli_limit_text(struct json_object *lim, char *buf, size_t len);

/* The entry's device and direction: "disk0", "net0 rx" (top.c). */
void cli_limit_name(struct json_object *lim, char *buf, size_t len);

/* The string member key of reply object o, or "-" (o may be NULL). */
const char *cli_json_str(struct json_object *o, const char *key);

/* The integer member key of reply object o, or 0 (o may be NULL). */
uint64_t cli_json_u64(struct json_object *o, const char *key);

#endif
