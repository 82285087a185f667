/* incoming.c - the incoming build of the monitor's lifecycle (`cvisor run
 * --incoming`): listen for a live migration's source and receive the guest
 * (migrate_receive), whose build and start hooks run the lifecycle's make
 * and go steps. Until the guest runs, a waiter thread answers the control
 * socket with the control protocol's parser and replies. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cvisor/ctl_proto.h"
#include "cvisor/sandbox.h"
#include "monitor_priv.h"

/* Read one request line from a fresh connection, a second at most between
 * reads: 1 with *line and *len, 0 without one. */
static int waiter_read(int fd, struct ctl_linebuf *lb, char **line, size_t *len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = 0;

	while (r == 0 && poll(&p, 1, 1000) > 0) {
		char *room;
		size_t n = ctl_linebuf_room(lb, &room);
		ssize_t got = n ? read(fd, room, n) : 0;

		if (got <= 0)
			break;
		ctl_linebuf_added(lb, (size_t)got);
		r = ctl_linebuf_take(lb, line, len);
	}
	return r > 0;
}

/* info and stats while the guest is on its way: enough for ls, info and top
 * to find the monitor (its pid, its log) and say "incoming". */
static struct json_object *waiter_info(const struct monitor *m)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "name", json_object_new_string(m->srv.name));
	json_object_object_add(o, "pid", json_object_new_int(m->srv.pid));
	json_object_object_add(o, "state", json_object_new_string("incoming"));
	json_object_object_add(o, "vcpus", json_object_new_int(0));
	json_object_object_add(o, "memory", json_object_new_int(0));
	json_object_object_add(o, "uptime_ms", json_object_new_int(0));
	json_object_object_add(o, "detached", json_object_new_boolean(m->detach));
	json_object_object_add(o, "log",
			       m->srv.log_path[0] ? json_object_new_string(m->srv.log_path) : NULL);
	return o;
}

/* `cvisor kill` on the waiter's thread: end the transfer (the receive then
 * removes what it made: disk images, the half-built guest) and the wait
 * for a source. The main thread tears down either way. */
static char *waiter_kill(struct monitor *m)
{
	struct monitor_waiter *w = &m->wt;
	struct json_object *o = json_object_new_object();
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	atomic_store(&w->killed, true);
	/* Both: a connection that is dropped (a failed handshake) must not
	 * bring the receive back to waiting for the next. */
	if (w->conn_fd >= 0)
		shutdown(w->conn_fd, SHUT_RDWR);
	if (write(w->cancel_fd, &one, sizeof(one)) != sizeof(one))
		cv_debug("ending the wait for a source: %s", strerror(errno));
	pthread_mutex_unlock(&w->lock);
	/* The name is free before the answer, as for any kill (the main
	 * thread reads these paths only after joining this thread). */
	ctl_server_unlink(&m->srv, true);
	if (o)
		json_object_object_add(o, "outcome", json_object_new_string("killed"));
	return ctl_reply_ok(o);
}

/* One request per connection: info, stats and kill are answered; any other
 * waits for the guest. */
static void waiter_serve(struct monitor *m, int fd)
{
	struct ctl_linebuf lb;
	struct ctl_request req;
	char *line, *reply, err[CTL_NAME_MAX + 256];
	size_t len;

	if (ctl_linebuf_init(&lb, CTL_REQUEST_MAX))
		return;
	if (!waiter_read(fd, &lb, &line, &len) ||
	    ctl_request_parse(line, len, &req, err, sizeof(err)))
		req.cmd = CTL_CMD_COUNT;
	if (req.cmd == CTL_CMD_KILL) {
		reply = waiter_kill(m);
	} else if (req.cmd == CTL_CMD_INFO || req.cmd == CTL_CMD_STATS || req.cmd == CTL_CMD_LIST) {
		reply = ctl_reply_ok(waiter_info(m));
	} else {
		snprintf(err, sizeof(err), "guest %s is waiting for an incoming migration",
			 m->srv.name);
		reply = ctl_reply_error(err);
	}
	if (reply && send(fd, reply, strlen(reply), MSG_NOSIGNAL) < 0) {
		/* the client went away */
	}
	free(reply);
	ctl_linebuf_free(&lb);
}

static void *waiter_main(void *opaque)
{
	struct monitor *m = opaque;
	int r;

	pthread_setname_np(pthread_self(), "ctl-wait");
	/* Unfiltered, it would serve nothing: the guest is not here yet, and
	 * the main thread's wait ends with `cvisor kill` or a timeout. */
	if ((r = sandbox_enter(SANDBOX_WORKER))) {
		cv_err("seccomp: control thread: %s", strerror(-r));
		return NULL;
	}

	while (!atomic_load(&m->wt.killed)) {
		struct pollfd p[2] = { { .fd = m->srv.listen_fd, .events = POLLIN },
				       { .fd = m->wt.wake_fd, .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(m->srv.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		/* The same check as the server's (access.c): a waiting
		 * target's socket serves kill too. */
		if (ctl_server_admit(&m->srv, fd))
			waiter_serve(m, fd);
		close(fd);
	}
	return NULL;
}

static int waiter_start(struct monitor *m)
{
	struct monitor_waiter *w = &m->wt;
	int r;

	w->conn_fd = -1;
	w->wake_fd = eventfd(0, EFD_CLOEXEC);
	w->cancel_fd = eventfd(0, EFD_CLOEXEC);
	if (w->wake_fd < 0 || w->cancel_fd < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = -pthread_mutex_init(&w->lock, NULL)))
		goto fail;
	if ((r = -pthread_create(&w->thread, NULL, waiter_main, m))) {
		pthread_mutex_destroy(&w->lock);
		goto fail;
	}
	w->started = true;
	return 0;
fail:
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->cancel_fd >= 0)
		close(w->cancel_fd);
	return cv_fail(&m->err, CV_EXIT_FAIL, r, "control thread: %s", strerror(-r));
}

/* The main thread takes the control socket back; idempotent. */
static void waiter_stop(struct monitor *m)
{
	struct monitor_waiter *w = &m->wt;
	uint64_t one = 1;

	if (!w->started)
		return;
	if (write(w->wake_fd, &one, sizeof(one)) != sizeof(one))
		cv_debug("waking the control thread: %s", strerror(errno));
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	close(w->wake_fd);
	close(w->cancel_fd);
	w->started = false;
}

/* A make or go step failed under migrate_receive, which reports through
 * err: hand it the step's message (WHAT: the error, when the step's callee
 * printed its own), and clear m->err for the receive's final line. */
static int hook_fail(struct monitor *m, char *err, size_t errlen, const char *what)
{
	int r = m->err.code;

	if (m->err.msg[0])
		snprintf(err, errlen, "%s", m->err.msg);
	else
		snprintf(err, errlen, "%s: %s", what, strerror(-r));
	m->err = (struct cv_error){ 0 };
	return r;
}

static int incoming_build(void *ctx, struct vm_config *cfg, struct vm **out, char *err,
			  size_t errlen)
{
	struct monitor *m = ctx;

	cfg->detach = m->cfg->detach;
	/* The source's host CPUs mean nothing here: only ours count. */
	if (config_set_string(&cfg->name, m->cfg->name) ||
	    config_set_string(&cfg->cpu_affinity, NULL) || placement_apply(m->src->place, cfg))
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	if (monitor_make(m, cfg))
		return hook_fail(m, err, errlen, "building the guest");
	*out = &m->vm;
	return 0;
}

/* The state is loaded: the monitor's own control server takes over from
 * the waiter (which kept answering while RAM arrived), then the vCPUs run. */
static int incoming_start(void *ctx, struct vm *vm, char *err, size_t errlen)
{
	struct monitor *m = ctx;

	(void)vm;
	waiter_stop(m);
	/* Joined: no kill can come in after this check. One that came while
	 * the last bytes were read must not leave the guest running here. */
	if (atomic_load(&m->wt.killed))
		return cv_errf(err, errlen, -ECANCELED, "killed by cvisor kill");
	if (monitor_go(m))
		return hook_fail(m, err, errlen, "starting the vCPUs");
	return 0;
}

static void incoming_destroy(void *ctx, struct vm *vm)
{
	(void)vm;
	monitor_unmake(ctx);
}

static void incoming_connected(void *ctx, int fd)
{
	struct monitor_waiter *w = &((struct monitor *)ctx)->wt;

	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->conn_fd = fd;
	if (fd >= 0) {
		w->source = true;
		/* A kill between the accept and now found no connection. */
		if (atomic_load(&w->killed))
			shutdown(fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&w->lock);
}

static void incoming_listening(void *ctx, const char *addr)
{
	(void)addr;
	monitor_ready(ctx);
}

int monitor_receive(struct monitor *m)
{
	struct migrate_target_ops ops = migrate_default_target_ops;
	struct migrate_incoming in = *m->src->in;
	char err[PATH_MAX + 256];
	int r;

	ops.build = incoming_build;
	ops.start = incoming_start;
	ops.destroy = incoming_destroy;
	ops.listening = incoming_listening;
	ops.connected = incoming_connected;
	in.ops = &ops;
	in.ctx = m;
	if (m->named) {
		if ((r = waiter_start(m)))
			return r;
		in.cancel_fd = &m->wt.cancel_fd;
	}
	r = migrate_receive(&in, &m->tgt, err, sizeof(err));
	waiter_stop(m);
	if (!r) {
		m->received = true;
		return 0;
	}
	m->killed = atomic_load(&m->wt.killed);
	/* Killed before any source came: nothing was made but the name. */
	if (m->killed && !m->wt.source)
		return monitor_said(m, CV_EXIT_FAIL, r);
	return cv_fail(&m->err, CV_EXIT_FAIL, r, "incoming migration on %s: %s", in.listen,
		       m->killed ? "killed by cvisor kill" : err);
}

void monitor_receive_free(struct monitor *m)
{
	if (m->received)
		migrate_target_free(&m->tgt);
	m->received = false;
}
