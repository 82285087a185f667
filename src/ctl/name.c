/* name.c - a guest's name in the run directory: the directory's checks,
 * the lock that holds the name, the control socket bound on it
 * (ctl_server_bind), and their removal (ctl_server_unlink); the server
 * that answers on the socket is server.c. */
#include "cvisor/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LISTEN_BACKLOG 64

/* mkdir -p, the last level 0700: sockets in it are for this user only. */
static int make_run_dir(const char *dir)
{
	char p[PATH_MAX];

	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The run directory holds our sockets, locks and logs, which root opens
 * by name: a directory another user owns or may write to could have them
 * replaced or turned into symlinks, so it is refused. */
static int check_run_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		int r = -errno;

		if (fd >= 0)
			close(fd);
		return cv_errf(err, errlen, r, "%s: %s", dir, strerror(-r));
	}
	close(fd);
	if (st.st_uid != geteuid())
		return cv_errf(err, errlen, -EPERM,
			       "run directory %s belongs to uid %u, not to this user (%u): remove "
			       "it or set CVISOR_RUN_DIR",
			       dir, (unsigned int)st.st_uid, (unsigned int)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return cv_errf(err, errlen, -EPERM,
			       "run directory %s is writable by group or others (mode %03o): "
			       "chmod go-w it or set CVISOR_RUN_DIR",
			       dir, (unsigned int)(st.st_mode & 0777));
	return 0;
}

/* Lock DIR/NAME.lock for the monitor's life. The file is unlinked on exit,
 * so a lock taken on a file that has just been unlinked is retried: only
 * the file the path names counts. */
static int take_lock(struct ctl_server *srv)
{
	for (int tries = 0; tries < 10; tries++) {
		struct stat a, b;
		int fd = open(srv->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int r = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;

			close(fd);
			return r;
		}
		if (fstat(fd, &a) == 0 && stat(srv->lock_path, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev) {
			srv->lock_fd = fd;
			return 0;
		}
		close(fd);
	}
	return -EAGAIN;
}

bool ctl_name_taken(const char *dir, const char *name)
{
	char path[PATH_MAX];
	bool taken;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s.lock", dir, name) >= sizeof(path))
		return false;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	taken = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return taken;
}

/* With the lock held, a socket file left behind is stale (its monitor was
 * killed with SIGKILL or crashed). A monitor that still answers on it
 * would be one that holds no lock: refuse rather than steal its name. */
static int replace_stale_socket(struct ctl_server *srv, const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		r = -EADDRINUSE;
	else if (errno == ECONNREFUSED)
		cv_debug("removing the stale socket %s", srv->sock_path);
	close(fd);
	if (!r && unlink(srv->sock_path) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

int ctl_server_bind(struct ctl_server *srv, const char *dir, const char *name, char *err,
		    size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char real[PATH_MAX];
	mode_t old;
	int r;

	memset(srv, 0, sizeof(*srv));
	srv->lock_fd = srv->listen_fd = srv->stop_timer = srv->retry_fd = srv->idle_timer = -1;
	srv->idle_timeout_ns = CTL_IDLE_TIMEOUT_S * 1000000000ULL;
	srv->owner = geteuid();
	for (unsigned int i = 0; i < CTL_MAX_CONNS; i++)
		srv->conns[i].fd = -1;
	snprintf(srv->name, sizeof(srv->name), "%s", name);
	srv->pid = getpid();
	if ((r = make_run_dir(dir)) || !realpath(dir, real)) {
		r = r ? r : -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	if ((r = check_run_dir(real, err, errlen)))
		return r;
	snprintf(srv->dir, sizeof(srv->dir), "%s", real);
	if ((size_t)snprintf(srv->sock_path, sizeof(srv->sock_path), "%s/%s.sock", real, name) >=
	    sizeof(srv->sock_path)) {
		snprintf(err, errlen, "%s/%s.sock: longer than a socket path may be (%zu bytes)",
			 real, name, sizeof(srv->sock_path) - 1);
		return -ENAMETOOLONG;
	}
	/* Shorter than the socket path, which fit. */
	snprintf(srv->lock_path, sizeof(srv->lock_path), "%.*s.lock",
		 (int)(strlen(srv->sock_path) - strlen(".sock")), srv->sock_path);
	memcpy(sa.sun_path, srv->sock_path, sizeof(srv->sock_path));
	r = take_lock(srv);
	if (!r)
		r = replace_stale_socket(srv, &sa);
	if (r == -EADDRINUSE) {
		snprintf(err, errlen, "guest %s is already running (socket %s)", name,
			 srv->sock_path);
		goto fail;
	}
	if (r) {
		snprintf(err, errlen, "%s: %s", srv->lock_path, strerror(-r));
		goto fail;
	}
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	/* Created 0600 from the start: still single-threaded here, so the
	 * process-wide umask is safe to borrow. */
	old = umask(0177);
	r = bind(srv->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old);
	if (!r && listen(srv->listen_fd, LISTEN_BACKLOG) < 0) {
		r = -errno;
		unlink(srv->sock_path);
	}
	if (r) {
		snprintf(err, errlen, "%s: %s", srv->sock_path, strerror(-r));
		goto fail;
	}
	return 0;
fail:
	cv_close(&srv->listen_fd);
	cv_close(&srv->lock_fd);
	srv->sock_path[0] = srv->lock_path[0] = '\0';
	return r;
}

void ctl_server_unlink(struct ctl_server *srv, bool lock)
{
	bool any = srv->sock_path[0] || (lock && srv->lock_path[0]);

	if (any && srv->unlink_hook) {
		if (srv->unlink_hook(srv->unlink_ctx, lock))
			cv_debug("control: the keeper did not remove %s", srv->sock_path);
	} else if (any) {
		if (srv->sock_path[0])
			unlink(srv->sock_path);
		if (lock && srv->lock_path[0])
			unlink(srv->lock_path);
	}
	srv->sock_path[0] = '\0';
	if (lock)
		srv->lock_path[0] = '\0';
}
