/* client.c - the client side of the control socket: connect to a guest by
 * name, send a request, wait (bounded) for its reply. The verbs that use
 * it are in the table of verbs.c. */
#include "cvisor/cli.h"
#include "cvisor/ctl.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cvisor/ctl_proto.h"
#include "verbs.h"

#define CONNECT_TIMEOUT_S 10

/* cli_connect, or with nonblock an O_NONBLOCK socket whose connect does
 * not wait: -EAGAIN when the monitor's backlog is full. */
static int connect_to(const char *dir, const char *name, bool nonblock, int *fd, char *err,
		      size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* A monitor whose backlog is full makes connect() wait: bound it. */
	struct timeval tv = { .tv_sec = CONNECT_TIMEOUT_S };
	int s, r;

	*fd = -1;
	if (!ctl_name_valid(name)) {
		snprintf(err, errlen, "%.80s: not a guest name", name);
		return -EINVAL;
	}
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", dir, name) >=
	    sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s/%s.sock: path too long for a socket", dir, name);
		return -ENAMETOOLONG;
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (s < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (!nonblock)
		setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		*fd = s;
		return 0;
	}
	r = -errno;
	close(s);
	if (r == -ENOENT)
		snprintf(err, errlen, "no guest named %s (no socket in %s)", name, dir);
	else if (r == -ECONNREFUSED)
		snprintf(err, errlen,
			 "no guest named %s (%s is stale: its monitor died; the next "
			 "cvisor run --name %s replaces it)",
			 name, sa.sun_path, name);
	else if (r == -EACCES || r == -EPERM)
		snprintf(err, errlen,
			 "%s: permission denied (run cvisor as the user who started guest %s, "
			 "or as root)",
			 sa.sun_path, name);
	else
		snprintf(err, errlen, "%s: %s", sa.sun_path, strerror(-r));
	return r;
}

int cli_connect(const char *dir, const char *name, int *fd, char *err, size_t errlen)
{
	return connect_to(dir, name, false, fd, err, errlen);
}

int cli_connect_nb(const char *dir, const char *name, int *fd, char *err, size_t errlen)
{
	return connect_to(dir, name, true, fd, err, errlen);
}

int cli_reply_step(int fd, struct ctl_linebuf *lb, char **line, size_t *len, char *err,
		   size_t errlen)
{
	char *room;
	size_t n = ctl_linebuf_room(lb, &room);
	ssize_t r = read(fd, room, n);
	int t;

	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (r <= 0) {
		snprintf(err, errlen, "the monitor closed the connection without a reply");
		return r < 0 ? -errno : -EPIPE;
	}
	ctl_linebuf_added(lb, (size_t)r);
	t = ctl_linebuf_take(lb, line, len);
	if (t < 0)
		snprintf(err, errlen, "reply from the monitor too long");
	return t < 0 ? -EPROTO : t;
}

/* Read one reply line within timeout_ms. */
static int read_reply(int fd, struct ctl_linebuf *lb, int timeout_ms, char **line, size_t *len,
		      char *err, size_t errlen)
{
	uint64_t deadline = cv_now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = cv_now_ns();
		int t = ctl_linebuf_take(lb, line, len);

		if (t > 0)
			return 0;
		if (t < 0 || now >= deadline) {
			snprintf(err, errlen,
				 t < 0 ? "reply from the monitor too long"
				       : "no reply from the monitor within %d s",
				 timeout_ms / 1000);
			return t < 0 ? -EPROTO : -ETIMEDOUT;
		}
		if (poll(&p, 1, (int)((deadline - now) / 1000000ULL) + 1) < 0 && errno != EINTR)
			return -errno;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		/* one read: the fd blocks */
		if ((t = cli_reply_step(fd, lb, line, len, err, errlen)))
			return t > 0 ? 0 : t;
	}
}

int cli_call(int fd, const char *line, int timeout_ms, struct json_object **reply, char *err,
	     size_t errlen)
{
	return cli_call_fds(fd, line, NULL, 0, timeout_ms, reply, err, errlen);
}

int cli_call_fds(int fd, const char *line, const int *fds, unsigned int nfds, int timeout_ms,
		 struct json_object **reply, char *err, size_t errlen)
{
	struct ctl_linebuf lb;
	char *l;
	size_t len;
	int r, w;

	*reply = NULL;
	/* A monitor that refuses this client (access.c) answers at once and
	 * closes: its line says more than the broken pipe, so read it. */
	w = nfds ? cv_send_fds(fd, line, strlen(line), fds, nfds)
		 : cv_send_all(fd, line, strlen(line));
	if (w && w != -EPIPE && w != -ECONNRESET) {
		snprintf(err, errlen, "sending the request: %s", strerror(-w));
		return w;
	}
	if ((r = ctl_linebuf_init(&lb, CTL_REPLY_MAX))) {
		snprintf(err, errlen, "out of memory");
		return r;
	}
	r = read_reply(fd, &lb, timeout_ms, &l, &len, err, errlen);
	if (!r)
		r = ctl_reply_parse(l, len, reply, err, errlen);
	else if (w)
		r = cv_errf(err, errlen, w, "sending the request: %s", strerror(-w));
	ctl_linebuf_free(&lb);
	return r;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cli_list_names(const char *dir, char ***names)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	int n = 0;

	*names = NULL;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char **nv;

		if (len <= 5 || strcmp(e->d_name + len - 5, ".sock"))
			continue;
		nv = realloc(v, sizeof(*v) * (size_t)(n + 1));
		if (!nv || !(nv[n] = strndup(e->d_name, len - 5))) {
			v = nv ? nv : v;
			for (int i = 0; i < n; i++)
				free(v[i]);
			free(v);
			closedir(d);
			return -ENOMEM;
		}
		v = nv;
		if (ctl_name_valid(v[n]))
			n++;
		else
			free(v[n]);
	}
	closedir(d);
	if (n)
		qsort(v, (size_t)n, sizeof(*v), cmp_names);
	*names = v;
	return n;
}

/* A request the guest refused or could not answer is 1; the user's input
 * (flags, an unknown guest) is 2. */
int cli_connect_status(int r)
{
	return r == -ENOENT || r == -ECONNREFUSED || r == -EINVAL ? CV_EXIT_USAGE : CV_EXIT_FAIL;
}

int cli_request(const char *name, const struct ctl_request *req, const char *raw, int timeout_ms,
		struct json_object **reply)
{
	char err[512], *line = raw ? NULL : ctl_request_format(req);
	int fd, r;

	*reply = NULL;
	if (!raw && !line) {
		cv_err("out of memory");
		return CV_EXIT_FAIL;
	}
	r = cli_connect(ctl_run_dir(), name, &fd, err, sizeof(err));
	if (!r) {
		r = cli_call(fd, raw ? raw : line, timeout_ms, reply, err, sizeof(err));
		close(fd);
	}
	free(line);
	if (r) {
		cv_err("%s", err);
		return r == -EREMOTEIO ? CV_EXIT_FAIL : cli_connect_status(r);
	}
	return 0;
}

const char *cli_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return "-";
}

uint64_t cli_json_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int))
		return json_object_get_uint64(v);
	return 0;
}
