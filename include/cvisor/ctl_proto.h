/* ctl_proto.h - the control protocol between `cvisor VERB` and a guest's
 * monitor (see the description at the top of src/ctl/proto.c). Pure: no
 * I/O, so the CLI, the server, the unit tests and the fuzzer share it. */
#ifndef CVISOR_CTL_PROTO_H
#define CVISOR_CTL_PROTO_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/util.h"

struct json_object;

/* Longest request line, newline excluded. A longer one gets an error
 * reply and the connection is closed. */
#define CTL_REQUEST_MAX (64 * 1024)
/* Longest reply line a client accepts. */
#define CTL_REPLY_MAX (1024 * 1024)
/* Guest names: 1..CTL_NAME_MAX of [A-Za-z0-9_.-], not starting with . or -. */
#define CTL_NAME_MAX 64
#define CTL_STOP_TIMEOUT_DEFAULT 30
#define CTL_STOP_TIMEOUT_MAX 86400
/* save: the longest path, NUL included; peek: the most bytes at once. */
#define CTL_PATH_MAX 4096
#define CTL_PEEK_MAX 4096
/* set: a device name ("disk0"), and its KEY=VALUE list, NULs included. */
#define CTL_DEVICE_MAX 16
#define CTL_LIMITS_MAX 512
/* JSON nesting a request or a config file may use. */
#define CTL_JSON_DEPTH 8

enum ctl_cmd {
	CTL_CMD_INFO,
	CTL_CMD_STATS,
	CTL_CMD_PAUSE,
	CTL_CMD_RESUME,
	CTL_CMD_STOP,
	CTL_CMD_KILL,
	CTL_CMD_BALLOON,
	CTL_CMD_PIN,
	CTL_CMD_CONSOLE,
	CTL_CMD_SAVE,
	CTL_CMD_PEEK,
	CTL_CMD_SET,
	CTL_CMD_REBOOT,
	CTL_CMD_COUNT,
};

/* A decoded request; the arguments that cmd does not take are zero. */
struct ctl_request {
	enum ctl_cmd cmd;
	unsigned int timeout_s;	     /* stop: seconds before the kill */
	uint64_t bytes;		     /* balloon: target guest memory */
	unsigned int vcpu;	     /* pin */
	cpu_set_t cpus;		     /* pin */
	char path[CTL_PATH_MAX];     /* save: an absolute path */
	bool keep_running;	     /* save */
	uint64_t gpa;		     /* peek */
	unsigned int len;	     /* peek: 1..CTL_PEEK_MAX bytes */
	char device[CTL_DEVICE_MAX]; /* set: "disk0", "net1" */
	char limits[CTL_LIMITS_MAX]; /* set: "bw=50M,iops=off" */
};

/* True if name is a valid guest name. */
bool ctl_name_valid(const char *name);

/* Parse JSON text[0..len) holding exactly one value (whitespace around it
 * allowed). strict selects json-c's strict mode (no comments, no single
 * quotes). A NUL anywhere (a zero byte or a \u0000 escape, which json-c
 * would let cut keys and strings short) is refused. On error returns
 * -EINVAL with *err_off the byte offset where parsing stopped and *desc
 * what went wrong; *out is NULL. */
int ctl_json_parse(const char *text, size_t len, bool strict, struct json_object **out,
		   size_t *err_off, const char **desc) CV_MUST;

/* Decode one request line (no newline). Returns 0, or -EINVAL / -EMSGSIZE
 * with the one-line reason in err. */
int ctl_request_parse(const char *line, size_t len, struct ctl_request *req, char *err,
		      size_t errlen) CV_MUST;

/* Encode req as a request line ending in '\n'; malloc'd, NULL on ENOMEM. */
char *ctl_request_format(const struct ctl_request *req);

/* A success reply line {"ok":true, <data's members>}\n; data may be NULL
 * and is consumed. malloc'd, NULL on ENOMEM. */
char *ctl_reply_ok(struct json_object *data);

/* A failure reply line {"ok":false,"error":msg}\n; control characters in
 * msg become spaces so that the error stays one line. NULL on ENOMEM. */
char *ctl_reply_error(const char *msg);

/* Decode a reply line. 0 with *reply the whole object (the caller puts it)
 * when ok is true; -EREMOTEIO with the server's error in err when ok is
 * false; -EPROTO when the line is not a reply. */
int ctl_reply_parse(const char *line, size_t len, struct json_object **reply, char *err,
		    size_t errlen) CV_MUST;

#define CTL_RUN_DIR_DEFAULT "/run/cvisor"

/* Where the sockets are: $CVISOR_RUN_DIR; when unset or empty,
 * CTL_RUN_DIR_DEFAULT for root and $XDG_RUNTIME_DIR/cvisor (or
 * /tmp/cvisor-UID) for another user. */
const char *ctl_run_dir(void);

/* A bounded line splitter for a byte stream: read into the room it gives,
 * then take complete lines out. */
struct ctl_linebuf {
	char *buf;
	size_t cap;   /* longest line + 1 for its newline */
	size_t len;   /* bytes held */
	size_t start; /* first byte not yet taken */
};

int ctl_linebuf_init(struct ctl_linebuf *lb, size_t max_line) CV_MUST;
void ctl_linebuf_free(struct ctl_linebuf *lb);

/* Free space to read into (compacting first); *p points at it. 0 only
 * when a line that is too long fills the buffer. */
size_t ctl_linebuf_room(struct ctl_linebuf *lb, char **p);

/* Account for n bytes written at the room pointer. */
void ctl_linebuf_added(struct ctl_linebuf *lb, size_t n);

/* Take the next complete line: 1 with *line (NUL-terminated, newline
 * removed, valid until the next call) and *len; 0 when none is complete;
 * -EMSGSIZE when the buffer is full without a newline. */
int ctl_linebuf_take(struct ctl_linebuf *lb, char **line, size_t *len) CV_MUST;

/* The bytes held after the lines taken (for a connection that switches to
 * a raw stream); they are removed from the buffer. */
size_t ctl_linebuf_rest(struct ctl_linebuf *lb, const char **p);

#endif
