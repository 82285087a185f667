/* migrate.c - `cvisor migrate NAME HOST:PORT [...]`: the connection to
 * the target (made here, with TLS relayed here: src/migrate/link.c), then
 * one request to the source's monitor with that connection, which streams
 * progress lines and then its reply (the summary or the error); see
 * src/migrate/cli.c for the stream. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvisor/ctl_proto.h"
#include "cvisor/migrate.h"
#include "verbs.h"

int cli_migrate_opts(const struct cli_args *a, struct migrate_opts *o, char *err, size_t errlen)
{
	char host[256], port[8], why[480];
	int r;

	migrate_opts_init(o);
	if (!ctl_name_valid(a->arg[0]))
		return cv_errf(err, errlen, -EINVAL, "migrate: '%s' is not a guest name",
			       a->arg[0]);
	if (migrate_parse_addr(a->arg[1], host, sizeof(host), port, sizeof(port), err, errlen))
		return -EINVAL;
	o->dest = a->arg[1];
	o->downtime_ms = a->downtime_ms;
	o->max_rounds = (unsigned int)a->max_rounds;
	o->max_bandwidth = a->max_bandwidth;
	o->with_storage = a->with_storage;
	o->force = !a->no_force;
	o->verify = a->verify;
	o->tls.psk_file = a->tls_psk;
	o->tls.creds_dir = a->tls_creds;
	o->tls.insecure = a->insecure;
	if ((r = migrate_tls_check(&o->tls, o->dest, false, why, sizeof(why))))
		return cv_errf(err, errlen, r, "migrate: %s", why);
	return 0;
}

/* Check that the source's monitor answers, make the link to the target,
 * then connect to the monitor again and send the request line with the
 * link's fd at once: making the link can take longer than the monitor
 * waits for a silent client (CTL_IDLE_TIMEOUT_S). 0 with *fd, or the exit
 * status after printing why. */
static int send_request(const char *name, struct migrate_opts *o, struct migrate_link *l, int *fd)
{
	char err[512], req[8192];
	size_t n;
	int pass, r;

	if ((r = cli_connect(ctl_run_dir(), name, fd, err, sizeof(err)))) {
		cv_err("%s", err);
		return cli_connect_status(r);
	}
	cv_close(fd);
	if ((r = migrate_link_connect(l, o, &pass, err, sizeof(err)))) {
		cv_err("migration to %s failed: %s; the guest keeps running here", o->dest, err);
		return CV_EXIT_FAIL;
	}
	if ((r = cli_connect(ctl_run_dir(), name, fd, err, sizeof(err)))) {
		cv_err("%s", err);
		close(pass);
		return cli_connect_status(r);
	}
	o->linked = true;
	if (migrate_req_format(o, req, sizeof(req) - 1)) {
		cv_err("migrate: request too long");
		close(pass);
		cv_close(fd);
		return CV_EXIT_USAGE;
	}
	n = strlen(req);
	if (!n || req[n - 1] != '\n') {
		req[n++] = '\n';
		req[n] = '\0';
	}
	r = cv_send_fds(*fd, req, n, &pass, 1);
	/* The monitor's copy is the one that counts: the relay ends when it
	 * is closed. */
	close(pass);
	if (r) {
		cv_err("migrate: sending the request: %s", strerror(-r));
		cv_close(fd);
		return CV_EXIT_FAIL;
	}
	return 0;
}

/* How the stream is shown: --json lines, a bar on a tty, or the summary. */
struct migrate_view {
	const struct migrate_opts *o;
	const char *name;
	bool json, tty, bar;
	char failed[512]; /* the error line, printed once the link is closed */
};

/* One line of the monitor's stream: 1 for progress (more to come), 0 for
 * the final summary, -1 for the reply that ends a failed migration. */
static int show_line(struct migrate_view *mv, char *line, size_t len)
{
	struct migrate_progress p;
	struct json_object *reply = NULL;
	char buf[512];
	int r = migrate_progress_parse(line, len, &p);

	if (r == 1) {
		if (mv->json) {
			printf("%s\n", line);
			fflush(stdout);
		} else if (mv->tty) {
			migrate_progress_bar(&p, buf, sizeof(buf));
			fputs(buf, stderr);
			mv->bar = true;
		}
		return 1;
	}
	if (mv->bar)
		fputc('\n', stderr);
	if (r == 2) {
		if (!mv->json) {
			p.dest = mv->o->dest;
			p.downtime_target_ms = mv->o->downtime_ms;
			migrate_summary_line(&p, buf, sizeof(buf));
			line = buf;
		}
		printf("%s\n", line);
		return 0;
	}
	if (ctl_reply_parse(line, len, &reply, buf, sizeof(buf)) == 0)
		snprintf(mv->failed, sizeof(mv->failed),
			 "migrate: unexpected reply from the monitor");
	else
		snprintf(mv->failed, sizeof(mv->failed), "%s", buf);
	json_object_put(reply);
	return -1;
}

/* Read the stream until its last line. Returns the exit status. */
static int follow(int fd, struct migrate_view *mv)
{
	struct ctl_linebuf lb;
	int st = CV_EXIT_FAIL;

	if (ctl_linebuf_init(&lb, CTL_REPLY_MAX)) {
		cv_err("out of memory");
		return CV_EXIT_FAIL;
	}
	for (;;) {
		char *line, *room;
		size_t len;
		ssize_t got;
		int t = ctl_linebuf_take(&lb, &line, &len);

		if (t < 0) {
			cv_err("migrate: reply from the monitor too long");
			break;
		}
		if (t > 0) {
			if ((t = show_line(mv, line, len)) <= 0) {
				st = t ? CV_EXIT_FAIL : 0;
				break;
			}
			continue;
		}
		len = ctl_linebuf_room(&lb, &room);
		got = read(fd, room, len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (mv->bar)
				fputc('\n', stderr);
			snprintf(mv->failed, sizeof(mv->failed),
				 "migrate: the monitor of %s closed the connection without a reply",
				 mv->name);
			break;
		}
		ctl_linebuf_added(&lb, (size_t)got);
	}
	ctl_linebuf_free(&lb);
	return st;
}

int cli_migrate(const struct cli_verb *v, const struct cli_args *a)
{
	struct migrate_opts o;
	struct migrate_view mv = { .o = &o, .name = a->arg[0], .json = a->json };
	struct migrate_link *l = NULL;
	char err[512], why[320];
	int fd, st;

	(void)v;
	if (cli_migrate_opts(a, &o, err, sizeof(err)) ||
	    migrate_link_new(&o, &l, err, sizeof(err))) {
		cv_err("%s%s", strncmp(err, "migrate: ", 9) ? "migrate: " : "", err);
		migrate_tls_free(&o.tls);
		return CV_EXIT_USAGE;
	}
	o.encrypted = o.tls.psk_file || o.tls.creds_dir;
	if (!(st = send_request(mv.name, &o, l, &fd))) {
		mv.tty = isatty(STDERR_FILENO);
		st = follow(fd, &mv);
		close(fd);
	}
	migrate_link_close(l, why, sizeof(why));
	/* What the relay saw says why the monitor's link broke. */
	if (mv.failed[0])
		cv_err("%s%s%s%s", mv.failed, why[0] ? " (" : "", why, why[0] ? ")" : "");
	migrate_tls_free(&o.tls);
	return st;
}
