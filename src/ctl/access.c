/* access.c - who may use a guest's control socket. The file modes are
 * the first gate: the socket is 0600 in the owner's 0700 run directory,
 * or with --ctl-group GROUP 0660 and GROUP's, in a directory GROUP may
 * pass through. This is the second, for a socket whose modes someone made
 * wider (or a directory shared by mistake): each accepted client's
 * credentials, as the kernel took them at connect() (SO_PEERCRED for the
 * uid and gid, SO_PEERGROUPS for the supplementary groups), must be
 * root's, the owner's (the monitor's effective uid), or a GROUP member's.
 * A refused client gets one error line and is closed; the monitor's log
 * says so in one line, at most once a second (a client looping on
 * connect() cannot fill the disk). */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/ctl.h"

#define MAX_PEER_GROUPS 256

int ctl_server_share(struct ctl_server *srv, const char *group, char *err, size_t errlen)
{
	struct group *g = getgrnam(group);
	struct stat st;
	uint64_t n;

	if (!g && !cv_parse_uint(group, 0, UINT32_MAX - 1, &n))
		g = getgrgid((gid_t)n);
	if (!g)
		return cv_errf(err, errlen, -EINVAL, "--ctl-group %s: no such group", group);
	if (stat(srv->dir, &st))
		return cv_errf(err, errlen, -errno, "%s: %s", srv->dir, strerror(errno));
	if (!(st.st_mode & S_IXOTH) && !(st.st_gid == g->gr_gid && (st.st_mode & S_IXGRP)))
		return cv_errf(err, errlen, -EPERM,
			       "--ctl-group %s: the run directory %s does not let the group in: "
			       "chgrp %s %s && chmod 0710 %s (or give this guest a CVISOR_RUN_DIR "
			       "of its own)",
			       group, srv->dir, group, srv->dir, srv->dir);
	if (chown(srv->sock_path, (uid_t)-1, g->gr_gid) || chmod(srv->sock_path, 0660))
		return cv_errf(err, errlen, -errno, "--ctl-group %s: %s: %s", group, srv->sock_path,
			       strerror(errno));
	srv->group = g->gr_gid;
	srv->has_group = true;
	return 0;
}

/* Is the peer in srv->group (its gid or a supplementary group)? */
static bool peer_in_group(const struct ctl_server *srv, int fd, gid_t gid)
{
	gid_t groups[MAX_PEER_GROUPS];
	socklen_t len = sizeof(groups);

	if (gid == srv->group)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == srv->group)
			return true;
	return false;
}

/* One line in the log, at most once a second, counting the others. */
static void log_refusal(struct ctl_server *srv, const struct ucred *cr)
{
	uint64_t now = cv_now_ns();

	if (srv->refused_log_ns && now - srv->refused_log_ns < 1000000000ULL) {
		srv->refused_quiet++;
		return;
	}
	if (srv->refused_quiet)
		cv_warn("control socket: refused uid %u (gid %u, pid %d): not the guest's owner "
			"(uid %u)%s; %u more refused since the last such line",
			(unsigned int)cr->uid, (unsigned int)cr->gid, (int)cr->pid,
			(unsigned int)srv->owner, srv->has_group ? " nor in --ctl-group" : "",
			srv->refused_quiet);
	else
		cv_warn("control socket: refused uid %u (gid %u, pid %d): not the guest's owner "
			"(uid %u)%s",
			(unsigned int)cr->uid, (unsigned int)cr->gid, (int)cr->pid,
			(unsigned int)srv->owner, srv->has_group ? " nor in --ctl-group" : "");
	srv->refused_log_ns = now;
	srv->refused_quiet = 0;
}

int ctl_server_check(struct ctl_server *srv, int fd, char *why, size_t len)
{
	struct ucred cr;
	socklen_t crlen = sizeof(cr);

	snprintf(why, len, "permission denied: the peer's credentials are unknown");
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) || crlen != sizeof(cr))
		return CTL_PEER_REFUSED;
	if (cr.uid == 0 || cr.uid == srv->owner)
		return CTL_PEER_OWNER;
	if (srv->has_group && peer_in_group(srv, fd, cr.gid))
		return CTL_PEER_MEMBER;
	log_refusal(srv, &cr);
	snprintf(why, len, "permission denied: uid %u is not the guest's owner",
		 (unsigned int)cr.uid);
	return CTL_PEER_REFUSED;
}

int ctl_server_admit(struct ctl_server *srv, int fd)
{
	char why[96], line[160];
	int peer = ctl_server_check(srv, fd, why, sizeof(why));
	int n;

	if (peer != CTL_PEER_REFUSED)
		return peer;
	n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n", why);
	/* A fresh socket's buffer takes one short line: never blocks. */
	(void)!send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return CTL_PEER_REFUSED;
}
