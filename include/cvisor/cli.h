/* cli.h - the command-line client: `cvisor VERB ...` for every verb but
 * run and restore, talking to a guest's control server (ctl.h) over the
 * protocol of ctl_proto.h.
 *
 * One table (src/cli/verbs.c) holds every verb: its name, its handler, its
 * options and one line of help. The options are rows too (kvmtool's option
 * table): the same rows parse argv (src/cli/opt.c) and write the usage, so
 * the help cannot drift from what is accepted. */
#ifndef CVISOR_CLI_H
#define CVISOR_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cvisor/util.h"

struct ctl_request;
struct migrate_opts;
struct json_object;

/* The most positional arguments a verb takes. */
#define CLI_MAX_ARGS 3

/* What the options of every verb parse into; a verb reads the fields its
 * own options name. */
struct cli_args {
	const char *arg[CLI_MAX_ARGS]; /* positional, in order */
	unsigned int nargs;
	bool json;	   /* --json */
	bool once;	   /* top --once */
	bool keep_running; /* save --keep-running */
	bool with_storage; /* migrate --with-storage */
	bool no_force;	   /* migrate --no-force */
	bool verify;	   /* migrate --verify */
	uint64_t timeout;  /* stop --timeout, seconds */
	uint64_t delay;	   /* top --delay, seconds */
	uint64_t downtime_ms;
	uint64_t max_rounds;
	uint64_t max_bandwidth; /* bytes per second */
	const char *tls_psk;	/* migrate --tls-psk FILE */
	const char *tls_creds;	/* migrate --tls-creds DIR */
	bool insecure;		/* migrate --insecure */
};

enum cli_opt_kind {
	CLI_OPT_FLAG, /* no value: sets a bool */
	CLI_OPT_UINT, /* a number from min to max */
	CLI_OPT_SIZE, /* a size or rate, 512M or 2G; a plain number is MiB */
	CLI_OPT_STR,  /* a string: a const char * field */
};

/* One option of a verb. "--name VALUE" and "--name=VALUE" both work. */
struct cli_opt {
	const char *name; /* "--timeout"; NULL ends a table */
	enum cli_opt_kind kind;
	size_t field;	  /* offsetof(struct cli_args, ...): a bool, a uint64_t or a char * */
	const char *arg;  /* the value's name in the usage ("SECONDS") */
	const char *help; /* one line */
	uint64_t min, max, def;
	/* A number out of range is told "must be MIN to MAX UNIT", or "must
	 * be a number from MIN to MAX" without a unit; a size that does not
	 * parse is told bad. */
	const char *unit;
	const char *bad;
};

/* One verb. */
struct cli_verb {
	const char *name;
	/* Carry out the parsed command line. Returns the exit status: 0, 1
	 * when the guest refused or failed the request, 2 for bad input. */
	int (*run)(const struct cli_verb *v, const struct cli_args *a);
	const struct cli_opt *opts; /* may be NULL */
	const char *args;	    /* the positionals in the usage: "NAME SIZE" */
	unsigned int nargs;	    /* how many it needs (all of them) */
	/* What a short command line is told ("a guest NAME"); NULL: the
	 * verb's usage line. */
	const char *needs;
	const char *help; /* one line, for `cvisor help` */
	int cmd;	  /* enum ctl_cmd, for the verbs that share a handler */
	int timeout_ms;	  /* how long its request may take */
};

/* The verb table, ending with a row whose name is NULL. */
extern const struct cli_verb cli_verbs[];

/* The verb named name, or NULL. */
const struct cli_verb *cli_verb_find(const char *name);

/* Parse argv (argv[0] is the verb) by v's option table into *a, the
 * options' defaults first. Pure. 0, or -EINVAL with the one-line reason
 * (starting with the verb's name) in err. */
int cli_parse(const struct cli_verb *v, int argc, char **argv, struct cli_args *a, char *err,
	      size_t errlen) CV_MUST;

/* v's usage line from its tables: "cvisor stop NAME [--timeout SECONDS]".
 * 0, or -ENOSPC when len is too small (buf holds what fitted). */
int cli_usage_line(const struct cli_verb *v, char *buf, size_t len) CV_MUST;

/* Every verb's usage line, each after lead ("usage: " or its indent). */
void cli_usage_lines(FILE *f, const char *lead);

/* `cvisor VERB --help`: the usage line, the verb's help and each option
 * with its own. */
void cli_verb_help(FILE *f, const struct cli_verb *v);

/* The verbs and their one-line help, for `cvisor help`. */
void cli_verb_list(FILE *f);

/* `cvisor VERB ...` (argv[0] is the verb, one of the table's). Returns
 * the process exit status: 0, 1 when the request failed, 2 for bad input
 * (flags, an unknown guest). */
int cli_main(int argc, char **argv);

/* migrate's command line (cli_parse'd) as the options its request
 * carries; o->dest points into a. Pure. 0, or -EINVAL with one line in
 * err (a bad guest name, or HOST:PORT). */
int cli_migrate_opts(const struct cli_args *a, struct migrate_opts *o, char *err,
		     size_t errlen) CV_MUST;

/* ---- the client side of the control socket (client.c) ---- */

/* Connect to guest name's socket in dir. -ENOENT / -ECONNREFUSED with
 * the one-line reason in err. */
int cli_connect(const char *dir, const char *name, int *fd, char *err, size_t errlen) CV_MUST;

/* cli_connect without waiting: the socket is O_NONBLOCK, and a monitor
 * whose backlog is full gives -EAGAIN (try again later). */
int cli_connect_nb(const char *dir, const char *name, int *fd, char *err, size_t errlen) CV_MUST;

struct ctl_linebuf;

/* One read of a reply from fd into lb: 1 with the reply's line in *line
 * and *len (ctl_linebuf_take), 0 when it is not complete yet (or fd would
 * block), -EPIPE, -EPROTO or -errno with the reason in err. */
int cli_reply_step(int fd, struct ctl_linebuf *lb, char **line, size_t *len, char *err,
		   size_t errlen) CV_MUST;

/* Send one request line and wait up to timeout_ms for its reply. 0 with
 * *reply; -EREMOTEIO with the server's error; -ETIMEDOUT, -EPROTO or
 * -errno otherwise, the reason in err. */
int cli_call(int fd, const char *line, int timeout_ms, struct json_object **reply, char *err,
	     size_t errlen) CV_MUST;

/* cli_call passing nfds files with the request (SCM_RIGHTS): save to a
 * jailed guest. */
int cli_call_fds(int fd, const char *line, const int *fds, unsigned int nfds, int timeout_ms,
		 struct json_object **reply, char *err, size_t errlen) CV_MUST;

/* One request to guest name in ctl_run_dir(): req formatted, or the raw
 * line. Prints the one-line error itself; returns the exit status (0, 1
 * when the guest refused or failed, 2 for an unknown guest) and the reply
 * in *reply (NULL on failure). */
int cli_request(const char *name, const struct ctl_request *req, const char *raw, int timeout_ms,
		struct json_object **reply);

/* The exit status for a failed cli_connect: 2 when the guest is unknown
 * or the name invalid (the user's input), 1 otherwise. */
int cli_connect_status(int r);

/* Names of the guests with a socket in dir, sorted; *names is malloc'd
 * (free each and the array). Returns the count or -errno. */
int cli_list_names(const char *dir, char ***names) CV_MUST;

#endif
