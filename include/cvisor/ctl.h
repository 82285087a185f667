/* ctl.h - the control server: each named guest's monitor serves a control
 * socket (src/ctl/server.c, requests carried out in commands.c) that the
 * `cvisor VERB` commands of the command-line client (cli.h, src/cli/) talk
 * to. The protocol both sides share is in ctl_proto.h / src/ctl/proto.c. */
#ifndef CVISOR_CTL_H
#define CVISOR_CTL_H

#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "cvisor/ctl_proto.h"
#include "cvisor/util.h"

struct vm;
struct ctl_console;

/* Connections served at once; more wait in the listen backlog, except
 * that a new connection takes the slot of the longest idle client when
 * every slot is taken (so that kill and stop always get through). */
#define CTL_MAX_CONNS 16
/* A client that has sent no complete request for this long (since it
 * connected or got its last reply) is disconnected. Attached console
 * readers and clients waiting for stop or kill are exempt. */
#define CTL_IDLE_TIMEOUT_S 10
/* With every slot taken, a client silent this long gives its slot to a new
 * one; a younger one may not have had the time to send its request. */
#define CTL_EVICT_GRACE_MS 500
/* Of those, attached console readers (so that readers cannot take every
 * slot from the other verbs). */
#define CTL_MAX_CONSOLES 8

/* What the server calls for requests that need a device the lead wires
 * later. A NULL function means the guest has no such device. Called on
 * the main thread; return 0 or -errno. */
struct ctl_hooks {
	int (*balloon_set)(void *ctx, uint64_t bytes);
	void *ctx;
};

/* Files a client may pass with its requests (save's FILE and FILE.mem);
 * more are closed as they arrive. */
#define CTL_MAX_FDS 2

struct ctl_server;

/* One connection to the server (a `cvisor VERB` process, or any client). */
struct ctl_conn {
	struct ctl_server *srv;
	int fd; /* -1: slot free */
	struct ctl_linebuf in;
	char *out; /* a reply being sent */
	size_t out_len, out_off;
	uint32_t events;     /* what epoll watches now */
	bool eof;	     /* the client sent everything it will */
	bool close_after;    /* close once out is sent (oversized request) */
	bool waiting;	     /* stop/kill: replied to when the guest has stopped */
	bool console;	     /* attached console: a raw stream now */
	bool throttled;	     /* console input waits for room in the UART */
	bool out_blocked;    /* console output waits for EPOLLOUT */
	uint64_t con_pos;    /* console stream position sent so far */
	bool busy;	     /* its request is being carried out (migrate pumps the loop) */
	uint64_t idle_since; /* CLOCK_MONOTONIC ns: connected, or last request or reply */
	bool owner;	     /* the peer is root or the owner: it may name host paths */
	/* Files passed by the client (SCM_RIGHTS, save's): they belong to the
	 * request line they came with, and are closed after it. */
	int fds[CTL_MAX_FDS];
	unsigned int nfds;
	bool fds_refused;  /* too many came with that line: it is refused */
	bool fds_now;	   /* they came with the request being served */
	uint64_t fds_line; /* the line they came with (0: the first) */
	uint64_t lines;	   /* request lines taken so far */
};

struct ctl_server {
	char name[CTL_NAME_MAX + 1];
	char dir[PATH_MAX];
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char lock_path[PATH_MAX];
	char log_path[PATH_MAX]; /* detached guests only, else "" */
	char cgroup[PATH_MAX];	 /* the guest's cgroup, "" if none */
	int lock_fd;
	int listen_fd;
	int pid;     /* the monitor's, as the host sees it (info, ls) */
	bool jailed; /* --jail: save needs the files passed (SCM_RIGHTS) */
	/* A jailed monitor cannot reach sock_path and lock_path: this removes
	 * them (the socket, and with lock the lock too). NULL: unlink here. */
	int (*unlink_hook)(void *ctx, bool lock);
	void *unlink_ctx;
	bool accepting; /* listen_fd is watched */
	struct vm *vm;
	struct ctl_hooks hooks;
	struct ctl_console *con;
	cpu_set_t host_cpus; /* what `pin` may use */
	struct ctl_conn conns[CTL_MAX_CONNS];
	int stop_timer; /* stop: kill when it fires */
	uint64_t stop_deadline_ns;
	int retry_fd;		  /* timer while console input is throttled */
	int idle_timer;		  /* fires at the earliest idle deadline */
	uint64_t idle_timeout_ns; /* CTL_IDLE_TIMEOUT_S; shorter in tests */
	bool killed;
	bool migrating; /* a migrate request runs: the loop is pumped from it */
	/* Who may connect (access.c): root, the owner, the group's members. */
	uid_t owner; /* the monitor's euid */
	gid_t group;
	bool has_group;		    /* --ctl-group */
	uint64_t refused_log_ns;    /* the last refusal logged */
	unsigned int refused_quiet; /* refusals not logged since */
	const char *outcome;
};

/* Claim the name (an flock on DIR/NAME.lock held for the monitor's life),
 * replace a stale socket and listen on DIR/NAME.sock. DIR is created 0700
 * if missing. Returns 0; -EADDRINUSE when the guest is already running;
 * other -errno. err gets one line either way. */
int ctl_server_bind(struct ctl_server *srv, const char *dir, const char *name, char *err,
		    size_t errlen) CV_MUST;

/* Does a monitor hold DIR/NAME.lock now (guest NAME is running)? A look
 * before starting many guests, so that a taken name is refused before any
 * starts; ctl_server_bind's lock is what decides. */
bool ctl_name_taken(const char *dir, const char *name);

/* --ctl-group GROUP (a name or a number): its members may use the socket
 * too, which becomes 0660 and GROUP's. The run directory must let GROUP
 * through (group GROUP with g+x, or o+x); if it does not, -EPERM with one
 * line saying how. Call after ctl_server_bind. 0 or -errno with err. */
int ctl_server_share(struct ctl_server *srv, const char *group, char *err, size_t errlen) CV_MUST;
/* Who the peer of a connection is, for what it may ask. */
enum ctl_peer {
	CTL_PEER_REFUSED, /* may not use the socket */
	CTL_PEER_MEMBER,  /* a --ctl-group member: may not name host paths */
	CTL_PEER_OWNER,	  /* root or the guest's owner */
};

/* May the peer of accepted connection fd use the socket? Root, the owner
 * and (with --ctl-group) the group's members may, by the credentials the
 * kernel took at connect() (SO_PEERCRED, SO_PEERGROUPS). When not, one
 * line in the log (at most one a second) and one error reply are sent,
 * and CTL_PEER_REFUSED (0) is returned: the caller closes fd. */
int ctl_server_admit(struct ctl_server *srv, int fd);

/* ctl_server_admit's check alone, for a socket with a protocol of its
 * own (the REST API's): the peer's class, and when refused the logged
 * line's reason in why (one line, no quotes) and nothing sent. */
int ctl_server_check(struct ctl_server *srv, int fd, char *why, size_t len);

/* Serve on vm->loop from now on. con is the detached console (NULL for a
 * guest whose console is the terminal). */
int ctl_server_start(struct ctl_server *srv, struct vm *vm, const struct ctl_hooks *hooks,
		     struct ctl_console *con) CV_MUST;

/* The guest has stopped (vCPUs joined): remove the socket so that no new
 * client connects, send the console's last output to the log and to the
 * readers and close them. The lock is kept. Idempotent. */
void ctl_server_shutdown(struct ctl_server *srv);

/* Last step before the monitor exits: release the name and answer the
 * stop/kill requests waiting for the end. Safe after a failed bind. */
void ctl_server_close(struct ctl_server *srv);

/* Remove the socket (no new client can connect) and with lock the lock
 * file (the name is free), through unlink_hook if set; each once. */
void ctl_server_unlink(struct ctl_server *srv, bool lock);

/* True if `kill` or the stop timeout ended the guest. */
bool ctl_server_killed(const struct ctl_server *srv);

/* commands.c, for server.c: carry out req for client c. Returns 0 with
 * *reply the success line, -errno with *reply the error line (NULL: out of
 * memory), or 0 with *reply NULL and c->waiting set when the reply comes at
 * the end (stop, kill). */
int ctl_command(struct ctl_server *srv, struct ctl_conn *c, const struct ctl_request *req,
		char **reply);

/* commands.c, for server.c: the requests parsed by their own code
 * (migrate, memsum) from the raw line. 1 with *reply set when line was
 * one of them, 0 when it is for ctl_request_parse. */
int ctl_command_raw(struct ctl_server *srv, struct ctl_conn *c, const char *line, size_t len,
		    char **reply);

/* server.c, for console_stream.c: watch c's fd for events (0: none), close
 * the connection, send the pending reply (false when the client broke). */
void ctl_conn_watch(struct ctl_conn *c, uint32_t events);
void ctl_conn_close(struct ctl_conn *c);
/* Close the files c passed and has not had used. */
void ctl_conn_drop_fds(struct ctl_conn *c);
bool ctl_conn_flush(struct ctl_conn *c);

/* console_stream.c, for server.c: switch c to the console stream after its
 * reply; an epoll event on such a connection; the console's wake event
 * (opaque: the server); send c the output it has not seen (false when the
 * client broke). */
void ctl_console_attach(struct ctl_conn *c);
void ctl_console_event(struct ctl_conn *c, uint32_t events);
void ctl_console_wake(void *opaque, int fd, uint32_t events);
bool ctl_console_pump(struct ctl_conn *c);

#endif
