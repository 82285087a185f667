/* clones.c - `cvisor restore FILE --count N --name BASE -d`: N guests from
 * one snapshot, parsed and checked once, named BASE-1 .. BASE-N, started
 * CLONES_AT_ONCE at a time (each a detached monitor forked from this
 * process, as -d does for one).
 *
 * Each clone gets its own identity where the guest sees one: clone K's
 * vsock CID is --cid FIRST + K - 1 (by default the snapshot's CID + K),
 * its socket named after that CID (the default path of the CID, or
 * PATH-CID for uds=PATH), and each virtio-net device's MAC is the
 * snapshot's plus K in its fourth and fifth bytes. Disks cannot be told
 * apart that way: with N > 1 a writable disk, a tap device or a hostfwd
 * port (one host resource shared by every clone) is refused before any
 * guest starts.
 *
 * All or none: if clone K cannot start, the clones already started are
 * stopped (SIGTERM, each tears its guest down as for `cvisor kill`) and
 * one line says which could not start and why. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cvisor/ctl.h"
#include "cvisor/ctl_proto.h"
#include "cvisor/host_limits.h"
#include "cvisor/monitor.h"
#include "cvisor/virtio_blk.h"
#include "cvisor/virtio_net.h"
#include "cvisor/virtio_vsock.h"

/* Monitors starting at once: enough to keep both CPUs of a small host
 * busy while one waits in KVM's setup, few enough for its fds (2 each). */
#ifndef CLONES_AT_ONCE /* a build may try another (bench/RESULTS.md) */
#define CLONES_AT_ONCE 8
#endif
#define SPEC_MAX 1024

#define BAD(...) cv_fail(e, CV_EXIT_USAGE, -EINVAL, __VA_ARGS__)

/* Clone k's vsock spec: CID first + k - 1 (first 0: the snapshot's CID +
 * 1), and a socket named after it: the default one of that CID, or
 * PATH-CID for uds=PATH. */
static int vsock_spec(const char *spec, uint64_t first, unsigned int k, char *out, size_t len,
		      struct cv_error *e)
{
	struct virtio_vsock_config c, check;
	uint64_t cid;
	int r;

	if ((r = virtio_vsock_parse(spec, &c, e)))
		return r;
	cid = (first ? first : c.guest_cid + 1) + k - 1;
	if (cid > VIRTIO_VSOCK_CID_MAX)
		return BAD("--vsock %s: clone %u's CID %llu would be above %llu (choose --cid)",
			   spec, k, (unsigned long long)cid, VIRTIO_VSOCK_CID_MAX);
	if (c.uds_default)
		snprintf(out, len, "%llu", (unsigned long long)cid);
	else
		snprintf(out, len, "%llu,uds=%s-%llu", (unsigned long long)cid, c.uds_path,
			 (unsigned long long)cid);
	return virtio_vsock_parse(out, &check, e);
}

/* Clone k's spec for the index-th network: the same without its mac=
 * items, then mac= the snapshot's MAC plus k << 8 in its low 24 bits (the
 * last byte, which tells a guest's networks apart, is kept). */
static int net_spec(const char *spec, unsigned int index, unsigned int k, char *out, size_t len,
		    struct cv_error *e)
{
	struct virtio_net_config c;
	const char *p = spec;
	size_t n = 0;
	uint32_t v;
	int r;

	if ((r = virtio_net_parse(spec, index, &c, e)))
		return r;
	v = ((uint32_t)c.mac[3] << 16 | (uint32_t)c.mac[4] << 8 | c.mac[5]) + (k << 8);
	out[0] = '\0';
	while (*p) {
		size_t item = strcspn(p, ",");

		if (strncmp(p, "mac=", 4)) {
			if (n + item + 2 >= len)
				return BAD("--net %s: too long", spec);
			n += (size_t)snprintf(out + n, len - n, "%s%.*s", n ? "," : "", (int)item,
					      p);
		}
		p += item + (p[item] == ',');
	}
	if ((size_t)snprintf(out + n, len - n, ",mac=%02x:%02x:%02x:%02x:%02x:%02x", c.mac[0],
			     c.mac[1], c.mac[2], (v >> 16) & 0xff, (v >> 8) & 0xff,
			     v & 0xff) >= len - n)
		return BAD("--net %s: too long", spec);
	return virtio_net_parse(out, index, &c, e);
}

/* What would make count clones of cfg step on each other, or a name
 * BASE-count that is not a name: refused before any starts. */
static int clones_check(const struct vm_config *cfg, const char *base, const struct clone_opts *o,
			struct cv_error *e)
{
	unsigned int count = o->count;
	const struct device_type *disk = devices_type("disk"), *net = devices_type("net");
	char name[CTL_NAME_MAX + 16];
	int r;

	snprintf(name, sizeof(name), "%s-%u", base, count);
	if (!ctl_name_valid(name))
		return BAD("--name %s: the clones' names (%s) must be 1 to %d letters, digits, "
			   "'_', '.' or '-'",
			   base, name, CTL_NAME_MAX);
	if (o->first_cid && !devices_count(&cfg->devices, devices_type("vsock")))
		return BAD("--cid %llu: the snapshot's guest has no vsock device",
			   (unsigned long long)o->first_cid);
	for (unsigned int k = 1; k <= count; k++) {
		snprintf(name, sizeof(name), "%s-%u", base, k);
		if (ctl_name_taken(ctl_run_dir(), name))
			return BAD("guest %s is already running: choose another --name", name);
	}
	for (unsigned int i = 0; count > 1 && i < devices_count(&cfg->devices, disk); i++) {
		struct virtio_blk_config b;

		if ((r = virtio_blk_parse(devices_spec(&cfg->devices, disk, i), &b, e)))
			return r;
		if (!b.readonly)
			return BAD("disk %u (%s) is writable and clones must not share it: save "
				   "a guest whose disks are readonly (--disk PATH,readonly), or "
				   "restore it once per copy of the disk",
				   i, b.path);
	}
	for (unsigned int i = 0; count > 1 && i < devices_count(&cfg->devices, net); i++) {
		struct virtio_net_config c;

		if ((r = virtio_net_parse(devices_spec(&cfg->devices, net, i), i, &c, e)))
			return r;
		if (c.backend == VIRTIO_NET_TAP)
			return BAD("network %u is the tap device %s, which serves one guest: "
				   "clones need --net user",
				   i, c.tap);
		if (c.nr_hostfwd)
			return BAD("network %u forwards host port %u, which only one clone could "
				   "have: save a guest without hostfwd=",
				   i, c.hostfwd[0].host_port);
	}
	return 0;
}

/* cfg as clone k: its name and identity (from the snapshot's specs in
 * orig). */
static int clone_config(struct vm_config *cfg, const struct devices_config *orig, const char *base,
			uint64_t first_cid, unsigned int k, struct cv_error *e)
{
	const struct device_type *vsock = devices_type("vsock"), *net = devices_type("net");
	char name[CTL_NAME_MAX + 16], spec[SPEC_MAX];
	int r;

	snprintf(name, sizeof(name), "%s-%u", base, k);
	if (config_set_string(&cfg->name, name))
		return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	for (unsigned int i = 0; i < devices_count(orig, vsock); i++) {
		if ((r = vsock_spec(devices_spec(orig, vsock, i), first_cid, k, spec, sizeof(spec),
				    e)))
			return r;
		if (devices_set_spec(&cfg->devices, vsock, i, spec))
			return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	}
	for (unsigned int i = 0; i < devices_count(orig, net); i++) {
		if ((r = net_spec(devices_spec(orig, net, i), i, k, spec, sizeof(spec), e)))
			return r;
		if (devices_set_spec(&cfg->devices, net, i, spec))
			return cv_fail(e, CV_EXIT_FAIL, -ENOMEM, "out of memory");
	}
	return 0;
}

/* A clone whose monitor is starting. */
struct slot {
	struct monitor_child c;
	unsigned int k;
	char err[CV_ERROR_MAX];
	size_t n;
};

/* The first clone that did not start: its number, status and reason. */
struct failure {
	unsigned int k;
	int status;
	char why[CV_ERROR_MAX];
};

/* What the child wrote on stderr, into one line without "cvisor: ". */
static void slot_read_err(struct slot *s, bool drain)
{
	char buf[512];
	ssize_t n;

	while (s->c.err_fd >= 0) {
		n = read(s->c.err_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && !drain)
			return;
		if (n <= 0) {
			cv_close(&s->c.err_fd);
			return;
		}
		for (ssize_t i = 0; i < n && s->n + 3 < sizeof(s->err); i++) {
			if (buf[i] == '\n')
				s->n += (size_t)snprintf(s->err + s->n, sizeof(s->err) - s->n,
							 "; ");
			else
				s->err[s->n++] = buf[i];
		}
		s->err[s->n] = '\0';
		if (drain && n < (ssize_t)sizeof(buf))
			return;
	}
}

static void fail_with(struct failure *f, unsigned int k, int status, const char *why)
{
	if (f->k)
		return;
	f->k = k;
	f->status = status;
	snprintf(f->why, sizeof(f->why), "%s",
		 strncmp(why, "cvisor: ", 8) ? why : why + strlen("cvisor: "));
}

/* The clone in s has reported: running (its pid into started) or not. */
static void slot_done(struct slot *s, pid_t *started, unsigned int *nstarted, struct failure *f)
{
	char one;
	ssize_t n;
	int ws;

	do
		n = read(s->c.ready_fd, &one, 1);
	while (n < 0 && errno == EINTR);
	cv_close(&s->c.ready_fd);
	if (n == 1) {
		started[(*nstarted)++] = s->c.pid;
		cv_close(&s->c.err_fd);
		return;
	}
	slot_read_err(s, true);
	cv_close(&s->c.err_fd);
	while (s->n && (s->err[s->n - 1] == ' ' || s->err[s->n - 1] == ';'))
		s->err[--s->n] = '\0'; /* the last line's "; " */
	if (waitpid(s->c.pid, &ws, 0) < 0)
		ws = CV_EXIT_FAIL << 8;
	fail_with(f, s->k,
		  WIFSIGNALED(ws)   ? 128 + WTERMSIG(ws)
		  : WEXITSTATUS(ws) ? WEXITSTATUS(ws)
				    : CV_EXIT_FAIL,
		  s->n ? s->err : "its monitor ended before the guest ran");
}

/* Wait for any starting clone to report, and handle every one that did. */
static void slots_wait(struct slot *slots, unsigned int *nslots, pid_t *started,
		       unsigned int *nstarted, struct failure *f)
{
	struct pollfd pfd[2 * CLONES_AT_ONCE];
	unsigned int i, n = 0;

	for (i = 0; i < *nslots; i++) {
		pfd[2 * i] = (struct pollfd){ .fd = slots[i].c.ready_fd, .events = POLLIN };
		pfd[2 * i + 1] = (struct pollfd){ .fd = slots[i].c.err_fd, .events = POLLIN };
	}
	if (poll(pfd, 2 * *nslots, -1) < 0)
		return; /* EINTR: look again */
	for (i = 0; i < *nslots; i++) {
		if (pfd[2 * i + 1].revents)
			slot_read_err(&slots[i], false);
		if (!pfd[2 * i].revents) {
			slots[n++] = slots[i];
			continue;
		}
		slot_done(&slots[i], started, nstarted, f);
	}
	*nslots = n;
}

/* All or none: the clones started before one failed end again. */
static void clones_stop(const pid_t *started, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		kill(started[i], SIGTERM);
	for (unsigned int i = 0; i < n; i++)
		while (waitpid(started[i], NULL, 0) < 0 && errno == EINTR)
			;
}

/* SIGINT, SIGTERM or SIGHUP while the clones start (0: none): all or
 * none holds for an interrupted start too. */
static volatile sig_atomic_t clones_signal;

static void on_signal(int sig)
{
	clones_signal = sig;
}

/* Start clone k in a free slot. 1 in the child (its status in *status). */
static int clone_start(struct vm_config *cfg, const struct restore_src *rs,
		       const struct devices_config *orig, const char *base, uint64_t first_cid,
		       unsigned int k, struct slot *slots, unsigned int *nslots, struct failure *f,
		       int *status)
{
	int fds[2 * CLONES_AT_ONCE], r;
	struct cv_error e = { 0 };
	struct slot *s = &slots[*nslots];
	unsigned int nfds = 0;

	if (clone_config(cfg, orig, base, first_cid, k, &e)) {
		fail_with(f, k, e.status, e.msg);
		return 0;
	}
	for (unsigned int i = 0; i < *nslots; i++) {
		fds[nfds++] = slots[i].c.ready_fd;
		if (slots[i].c.err_fd >= 0)
			fds[nfds++] = slots[i].c.err_fd;
	}
	memset(s, 0, sizeof(*s));
	s->k = k;
	r = monitor_spawn(cfg, rs, NULL, NULL, fds, nfds, &s->c);
	if (r > 0) {
		*status = s->c.status;
		return 1;
	}
	if (r < 0) {
		(void)cv_fail(&e, CV_EXIT_FAIL, r, "starting its monitor: %s", strerror(-r));
		host_limit_explain(&e);
		fail_with(f, k, CV_EXIT_FAIL, e.msg);
		return 0;
	}
	(void)fcntl(s->c.err_fd, F_SETFL, O_NONBLOCK);
	(*nslots)++;
	return 0;
}

int monitor_clones(struct vm_config *cfg, const struct restore_src *rs, const struct clone_opts *o)
{
	unsigned int count = o->count;
	struct slot slots[CLONES_AT_ONCE];
	struct devices_config orig = { 0 };
	struct failure f = { 0 };
	struct cv_error e = { 0 };
	unsigned int next = 1, nslots = 0, nstarted = 0;
	bool child = false;
	char *base = cfg->name ? strdup(cfg->name) : NULL;
	pid_t *started = calloc(count, sizeof(*started));
	int status = 0;

	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_signal }, old[3];

	/* No SA_RESTART: the wait in slots_wait returns at once. */
	sigemptyset(&sa.sa_mask);
	clones_signal = 0;
	for (unsigned int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	if (!base || !started || devices_config_copy(&orig, &cfg->devices)) {
		cv_err("out of memory");
		status = CV_EXIT_FAIL;
	} else if (clones_check(cfg, base, o, &e)) {
		cv_err("restore --count %u: %s", count, e.msg);
		status = e.status;
	}
	while (!status && (nslots || (next <= count && !f.k))) {
		if (clones_signal && !f.k)
			fail_with(&f, next <= count ? next : count, 128 + clones_signal,
				  clones_signal == SIGINT    ? "interrupted (SIGINT)"
				  : clones_signal == SIGTERM ? "interrupted (SIGTERM)"
							     : "interrupted (SIGHUP)");
		if (!f.k && next <= count && nslots < CLONES_AT_ONCE) {
			child = clone_start(cfg, rs, &orig, base, o->first_cid, next++, slots,
					    &nslots, &f, &status);
			if (child)
				break; /* its guest has ended */
			continue;
		}
		slots_wait(slots, &nslots, started, &nstarted, &f);
	}
	if (!child && !status && f.k) {
		clones_stop(started, nstarted);
		cv_err("cannot start guest %u of %u (%s-%u): %s%s", f.k, count, base, f.k, f.why,
		       nstarted ? "; the guests started were stopped" : "");
		status = f.status;
	}
	if (!child)
		for (unsigned int i = 0; i < 3; i++)
			sigaction(sigs[i], &old[i], NULL);
	devices_config_free(&orig);
	free(started);
	free(base);
	return status;
}
