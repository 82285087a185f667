/* proto.c - the control protocol, shared by `cvisor VERB` and the monitor.
 *
 * Transport: a unix stream socket, $CVISOR_RUN_DIR/NAME.sock (default
 * /run/cvisor, a 0700 directory; the socket is 0600), served by guest NAME's
 * own monitor process on its main thread. Up to CTL_MAX_CONNS (16)
 * connections are served at once; when all are taken, a new one takes the
 * slot of the client that has been silent longest (it is closed), and only
 * when none is silent (every one busy, waiting for stop/kill, or a console)
 * do new ones wait in the listen backlog. A client that sends no complete
 * request for CTL_IDLE_TIMEOUT_S (10) seconds after connecting or after its
 * last reply is disconnected. Requests of a client that has hung up (closed
 * its end, not just half-closed) before the server read them are dropped,
 * not carried out.
 *
 * Framing: newline-delimited JSON. A request is one JSON object on one line
 * of at most CTL_REQUEST_MAX (65536) bytes before its '\n'. Every request
 * gets exactly one reply line, in order:
 *   {"ok": true, ...data}   or   {"ok": false, "error": "one line"}
 * A malformed request gets an error reply and the connection stays usable;
 * an oversized one gets {"ok":false,"error":"request larger than 65536
 * bytes"} and the connection is closed. Unknown keys are errors.
 *
 * Requests ({"cmd": ...} plus the arguments shown) and their reply data:
 *   info      name, pid, state ("running", "paused" or "stopping"), vcpus,
 *             memory (bytes), uptime_ms, kernel, initrd, cmdline,
 *             cpu_weight, cpu_cap (percent, 0 = none), memory_limit (bytes,
 *             0 = none), cpu_affinity, detached, jailed, log, cgroup,
 *             vcpu: [{id, affinity, exits}], devices: [{bus, name, base, len}]
 *   stats     time_ns (CLOCK_MONOTONIC), cpu_ns (the monitor's CPU time),
 *             exits (VM exits, all vCPUs), rss (bytes), blk_read_bytes,
 *             blk_write_bytes, net_rx_bytes, net_tx_bytes, state, vcpus.
 *             Rates come from two samples.
 *   pause, resume     {} (both idempotent)
 *   stop {"timeout": S}  press the ACPI power button (resuming a paused
 *             guest first); kill the guest if it has not powered off after
 *             S seconds (1..86400, default 30). The reply is sent when the
 *             guest has stopped and the socket is gone: {"outcome": ...},
 *             one of poweroff, reset, killed, crash, error, signal.
 *   kill      end the guest at once; replies like stop.
 *   balloon {"bytes": N}  set the balloon target: {"bytes": N}, or the
 *             error "guest NAME has no balloon device".
 *   pin {"vcpu": I, "cpus": "0-1,4"}  set vCPU I's host CPU affinity:
 *             {"vcpu": I, "cpus": "..."}
 *   console   {} and then the connection is a raw byte stream both ways:
 *             the console ring buffer (the last 64 KiB of output), then live
 *             output; bytes sent go to the guest's serial port. Only guests
 *             started with -d have a console to attach to.
 *   save {"path": "/abs/FILE", "keep_running": false}  pause the guest,
 *             write FILE and FILE.mem (see README "Snapshots"). Without
 *             keep_running the guest then ends and the reply is sent when
 *             it is gone, like stop: {"outcome": "saved"}. With it the
 *             guest resumes (unless it was paused) and the reply is
 *             {"path": ..., "mem_bytes": N} (data bytes in FILE.mem). On
 *             failure the guest keeps running and nothing is left behind.
 *             A jailed guest (info's "jailed") sees no host path: the
 *             request then comes with two files passed (SCM_RIGHTS, with
 *             its first byte), empty regular files for FILE and FILE.mem,
 *             which the monitor writes and fsyncs and the client names;
 *             without them it is refused.
 *   peek {"gpa": A, "len": N}  read N (1..4096, default 8) bytes of guest
 *             RAM at guest-physical A: {"gpa": A, "hex": "..."} and, for N
 *             <= 8, "value": the bytes as a little-endian integer.
 *   set {"device": "disk0", "limits": "bw=50M,iops=off"}  change a disk's
 *             or a network's rate limits now (the options of --disk and
 *             --net, "off" removing one; see README "I/O rate limits"):
 *             {"device", "spec": the device's spec now, "limits": [...] as
 *             in info}. A snapshot or migration carries the new spec.
 *   info and stats also hold "limits": per disk and network direction
 *             {device, dir ("", "rx", "tx"), bytes_per_s, bytes_burst,
 *             ops_per_s, ops_burst (0: no limit; bursts as in effect),
 *             throttled (times I/O waited for the limit)}. */
#include "cvisor/ctl_proto.h"

#include <errno.h>
#include <limits.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cvisor/config.h"
#include "cvisor/cpulist.h"

static const char *const cmd_names[CTL_CMD_COUNT] = {
	[CTL_CMD_INFO] = "info",       [CTL_CMD_STATS] = "stats", [CTL_CMD_PAUSE] = "pause",
	[CTL_CMD_RESUME] = "resume",   [CTL_CMD_STOP] = "stop",	  [CTL_CMD_KILL] = "kill",
	[CTL_CMD_BALLOON] = "balloon", [CTL_CMD_PIN] = "pin",	  [CTL_CMD_CONSOLE] = "console",
	[CTL_CMD_SAVE] = "save",       [CTL_CMD_PEEK] = "peek",	  [CTL_CMD_SET] = "set",
	[CTL_CMD_REBOOT] = "reboot",
};

/* The argument keys each command takes besides "cmd". */
static const char *const cmd_args[CTL_CMD_COUNT][3] = {
	[CTL_CMD_STOP] = { "timeout" },	    [CTL_CMD_BALLOON] = { "bytes" },
	[CTL_CMD_PIN] = { "vcpu", "cpus" }, [CTL_CMD_SAVE] = { "path", "keep_running" },
	[CTL_CMD_PEEK] = { "gpa", "len" },  [CTL_CMD_SET] = { "device", "limits" },
};

const char *ctl_run_dir(void)
{
	const char *d = getenv("CVISOR_RUN_DIR");

	static char user[PATH_MAX];
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (d && d[0])
		return d;
	if (geteuid() == 0)
		return CTL_RUN_DIR_DEFAULT;
	/* A user cannot make /run/cvisor: the session's runtime directory
	 * (systemd's, 0700), else one in /tmp that the bind checks is the
	 * user's own and not writable by others. */
	if (!user[0]) {
		if (xdg && xdg[0] == '/')
			snprintf(user, sizeof(user), "%s/cvisor", xdg);
		else
			snprintf(user, sizeof(user), "/tmp/cvisor-%u", (unsigned int)geteuid());
	}
	return user;
}

bool ctl_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > CTL_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
	       n;
}

/* The offset of the first NUL in text, as a byte or as a \u0000 escape;
 * len if there is none. json-c cuts an object key at a NUL before the
 * caller sees it ("cpus\u0000zzz" arrives as "cpus"), and a value read as
 * a C string ends there ("kill\u0000x" reads as "kill"), so the text is
 * refused instead. A backslash and the byte after it are taken as a pair,
 * so that "\\u0000" (a backslash, then "u0000") is no NUL; outside a
 * string (in a comment) an escape is refused as well, which errs on the
 * safe side. */
static size_t find_nul(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\0')
			return i;
		if (text[i] != '\\' || i + 1 >= len)
			continue;
		if (len - i >= 6 && !memcmp(text + i + 1, "u0000", 5))
			return i;
		i++;
	}
	return len;
}

int ctl_json_parse(const char *text, size_t len, bool strict, struct json_object **out,
		   size_t *err_off, const char **desc)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;

	*out = NULL;
	*err_off = 0;
	*desc = NULL;
	if (len >= INT32_MAX) {
		*desc = "too large";
		return -EINVAL;
	}
	if ((*err_off = find_nul(text, len)) < len) {
		*desc = "a NUL character (\\u0000 or a zero byte) is not allowed";
		return -EINVAL;
	}
	tok = json_tokener_new_ex(CTL_JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	if (strict)
		json_tokener_set_flags(tok,
				       JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	o = json_tokener_parse_ex(tok, text, (int)len);
	end = json_tokener_get_parse_end(tok);
	/* Only a complete value counts: numbers have no end of their own, so
	 * tell the tokener where the input ends. */
	if (!o && json_tokener_get_error(tok) == json_tokener_continue) {
		o = json_tokener_parse_ex(tok, "", 1);
		end = len;
	}
	if (!o) {
		enum json_tokener_error e = json_tokener_get_error(tok);

		*desc = e == json_tokener_continue ? "unexpected end of data"
						   : json_tokener_error_desc(e);
		/* json-c stops just past the byte it could not take. */
		*err_off = end > len ? len : end;
		json_tokener_free(tok);
		return -EINVAL;
	}
	json_tokener_free(tok);
	/* json-c stops after the first value; whatever follows must be space. */
	while (end < len && strchr(" \t\r\n", text[end]) && text[end])
		end++;
	if (end < len) {
		json_object_put(o);
		*err_off = end;
		*desc = "unexpected text after the JSON value";
		return -EINVAL;
	}
	*out = o;
	return 0;
}

/* An integer argument in [min, max]. */
static int get_uint(struct json_object *v, const char *key, uint64_t min, uint64_t max,
		    uint64_t *out, char *err, size_t errlen)
{
	uint64_t u;

	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		goto bad;
	u = json_object_get_uint64(v);
	if (u < min || u > max)
		goto bad;
	*out = u;
	return 0;
bad:
	return cv_errf(err, errlen, -EINVAL,
		       "malformed request: \"%s\" must be an integer from %llu to %llu", key,
		       (unsigned long long)min, (unsigned long long)max);
}

static int parse_save(struct json_object *o, struct ctl_request *req, char *err, size_t errlen)
{
	struct json_object *v;
	const char *p;

	if (!json_object_object_get_ex(o, "path", &v) || !json_object_is_type(v, json_type_string))
		return cv_errf(err, errlen, -EINVAL,
			       "malformed request: save needs a \"path\" string");
	p = json_object_get_string(v);
	/* The monitor's working directory is not the client's: absolute only. */
	if (p[0] != '/' || strlen(p) != (size_t)json_object_get_string_len(v) ||
	    strlen(p) + 16 >= CTL_PATH_MAX)
		return cv_errf(err, errlen, -EINVAL,
			       "malformed request: \"path\" must be an absolute path shorter than "
			       "%d bytes",
			       CTL_PATH_MAX - 16);
	snprintf(req->path, sizeof(req->path), "%s", p);
	if (json_object_object_get_ex(o, "keep_running", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return cv_errf(err, errlen, -EINVAL,
				       "malformed request: \"keep_running\" must be true or false");
		req->keep_running = json_object_get_boolean(v);
	}
	return 0;
}

/* A string argument that fits out[len] (NUL excluded from the text). */
static int get_str(struct json_object *o, const char *key, char *out, size_t len, char *err,
		   size_t errlen)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||
	    !json_object_get_string_len(v) || (size_t)json_object_get_string_len(v) >= len)
		return cv_errf(err, errlen, -EINVAL,
			       "malformed request: \"%s\" must be a string of 1 to %zu bytes", key,
			       len - 1);
	snprintf(out, len, "%s", json_object_get_string(v));
	return 0;
}

static int parse_args(struct json_object *o, struct ctl_request *req, char *err, size_t errlen)
{
	struct json_object *v;
	uint64_t u;
	int r;

	if (req->cmd == CTL_CMD_STOP) {
		req->timeout_s = CTL_STOP_TIMEOUT_DEFAULT;
		if (json_object_object_get_ex(o, "timeout", &v)) {
			if ((r = get_uint(v, "timeout", 1, CTL_STOP_TIMEOUT_MAX, &u, err, errlen)))
				return r;
			req->timeout_s = (unsigned int)u;
		}
	} else if (req->cmd == CTL_CMD_BALLOON) {
		if (!json_object_object_get_ex(o, "bytes", &v))
			return cv_errf(err, errlen, -EINVAL,
				       "malformed request: balloon needs \"bytes\"");
		if ((r = get_uint(v, "bytes", 0, UINT64_MAX, &req->bytes, err, errlen)))
			return r;
	} else if (req->cmd == CTL_CMD_SAVE) {
		return parse_save(o, req, err, errlen);
	} else if (req->cmd == CTL_CMD_SET) {
		if ((r = get_str(o, "device", req->device, sizeof(req->device), err, errlen)))
			return r;
		return get_str(o, "limits", req->limits, sizeof(req->limits), err, errlen);
	} else if (req->cmd == CTL_CMD_PEEK) {
		if (!json_object_object_get_ex(o, "gpa", &v))
			return cv_errf(err, errlen, -EINVAL,
				       "malformed request: peek needs \"gpa\"");
		if ((r = get_uint(v, "gpa", 0, UINT64_MAX, &req->gpa, err, errlen)))
			return r;
		req->len = 8;
		if (json_object_object_get_ex(o, "len", &v)) {
			if ((r = get_uint(v, "len", 1, CTL_PEEK_MAX, &u, err, errlen)))
				return r;
			req->len = (unsigned int)u;
		}
	} else if (req->cmd == CTL_CMD_PIN) {
		if (!json_object_object_get_ex(o, "vcpu", &v))
			return cv_errf(err, errlen, -EINVAL,
				       "malformed request: pin needs \"vcpu\"");
		if ((r = get_uint(v, "vcpu", 0, CONFIG_MAX_CPUS - 1, &u, err, errlen)))
			return r;
		req->vcpu = (unsigned int)u;
		if (!json_object_object_get_ex(o, "cpus", &v))
			return cv_errf(err, errlen, -EINVAL,
				       "malformed request: pin needs \"cpus\"");
		if (!json_object_is_type(v, json_type_string) ||
		    cpulist_parse(json_object_get_string(v), &req->cpus))
			return cv_errf(
				err, errlen, -EINVAL,
				"malformed request: \"cpus\" must be a CPU list such as \"0-3,6\"");
	}
	return 0;
}

static int check_keys(struct json_object *o, enum ctl_cmd cmd, char *err, size_t errlen)
{
	json_object_object_foreach(o, key, val)
	{
		bool known = !strcmp(key, "cmd");

		(void)val;
		for (size_t i = 0; i < ARRAY_SIZE(cmd_args[cmd]) && !known; i++)
			known = cmd_args[cmd][i] && !strcmp(key, cmd_args[cmd][i]);
		if (!known)
			return cv_errf(err, errlen, -EINVAL,
				       "malformed request: %s takes no \"%.64s\"", cmd_names[cmd],
				       key);
	}
	return 0;
}

int ctl_request_parse(const char *line, size_t len, struct ctl_request *req, char *err,
		      size_t errlen)
{
	struct json_object *o, *v;
	const char *desc, *name;
	size_t off;
	int r;

	memset(req, 0, sizeof(*req));
	if (len > CTL_REQUEST_MAX) {
		snprintf(err, errlen, "request larger than %d bytes", CTL_REQUEST_MAX);
		return -EMSGSIZE;
	}
	if ((r = ctl_json_parse(line, len, true, &o, &off, &desc))) {
		if (r == -ENOMEM)
			return cv_errf(err, errlen, -EINVAL, "out of memory");
		return cv_errf(err, errlen, -EINVAL, "malformed request: %s at byte %zu", desc,
			       off);
	}
	r = -EINVAL;
	if (!json_object_is_type(o, json_type_object)) {
		cv_errf(err, errlen, -EINVAL, "malformed request: not a JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(o, "cmd", &v) || !json_object_is_type(v, json_type_string)) {
		cv_errf(err, errlen, -EINVAL, "malformed request: no \"cmd\" string");
		goto out;
	}
	name = json_object_get_string(v);
	for (req->cmd = 0; req->cmd < CTL_CMD_COUNT; req->cmd++)
		if (!strcmp(name, cmd_names[req->cmd]))
			break;
	if (req->cmd == CTL_CMD_COUNT) {
		cv_errf(err, errlen, -EINVAL, "unknown command \"%.64s\"", name);
		goto out;
	}
	if (!(r = check_keys(o, req->cmd, err, errlen)))
		r = parse_args(o, req, err, errlen);
out:
	json_object_put(o);
	return r;
}

/* obj as one line plus '\n', malloc'd; consumes obj. */
static char *to_line(struct json_object *obj)
{
	const char *s;
	char *line = NULL;
	size_t n;

	if (!obj)
		return NULL;
	s = json_object_to_json_string_ext(obj,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s) {
		n = strlen(s);
		line = malloc(n + 2);
		if (line) {
			memcpy(line, s, n);
			line[n] = '\n';
			line[n + 1] = '\0';
		}
	}
	json_object_put(obj);
	return line;
}

char *ctl_request_format(const struct ctl_request *req)
{
	struct json_object *o = json_object_new_object();
	char cpus[CPULIST_MAX_LEN + 1];

	if (!o || (unsigned int)req->cmd >= CTL_CMD_COUNT) {
		json_object_put(o);
		return NULL;
	}
	json_object_object_add(o, "cmd", json_object_new_string(cmd_names[req->cmd]));
	switch (req->cmd) {
	case CTL_CMD_STOP:
		json_object_object_add(o, "timeout", json_object_new_int64(req->timeout_s));
		break;
	case CTL_CMD_BALLOON:
		json_object_object_add(o, "bytes", json_object_new_uint64(req->bytes));
		break;
	case CTL_CMD_SAVE:
		json_object_object_add(o, "path", json_object_new_string(req->path));
		json_object_object_add(o, "keep_running",
				       json_object_new_boolean(req->keep_running));
		break;
	case CTL_CMD_SET:
		json_object_object_add(o, "device", json_object_new_string(req->device));
		json_object_object_add(o, "limits", json_object_new_string(req->limits));
		break;
	case CTL_CMD_PEEK:
		json_object_object_add(o, "gpa", json_object_new_uint64(req->gpa));
		json_object_object_add(o, "len", json_object_new_int64(req->len));
		break;
	case CTL_CMD_PIN:
		if (cpulist_format(&req->cpus, cpus, sizeof(cpus))) {
			json_object_put(o);
			return NULL;
		}
		json_object_object_add(o, "vcpu", json_object_new_int64(req->vcpu));
		json_object_object_add(o, "cpus", json_object_new_string(cpus));
		break;
	default:
		break;
	}
	return to_line(o);
}

char *ctl_reply_ok(struct json_object *data)
{
	struct json_object *o = json_object_new_object();

	if (!o) {
		json_object_put(data);
		return NULL;
	}
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	if (data) {
		json_object_object_foreach(data, key, val)
		{
			if (strcmp(key, "ok"))
				json_object_object_add(o, key, json_object_get(val));
		}
		json_object_put(data);
	}
	return to_line(o);
}

char *ctl_reply_error(const char *msg)
{
	struct json_object *o = json_object_new_object();
	char *one = strdup(msg);

	if (!o || !one) {
		json_object_put(o);
		free(one);
		return NULL;
	}
	for (char *p = one; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(one));
	free(one);
	return to_line(o);
}

int ctl_reply_parse(const char *line, size_t len, struct json_object **reply, char *err,
		    size_t errlen)
{
	struct json_object *o, *ok, *e;
	const char *desc;
	size_t off;

	*reply = NULL;
	if (len > CTL_REPLY_MAX || ctl_json_parse(line, len, true, &o, &off, &desc)) {
		snprintf(err, errlen, "malformed reply from the monitor");
		return -EPROTO;
	}
	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		json_object_put(o);
		snprintf(err, errlen, "malformed reply from the monitor");
		return -EPROTO;
	}
	if (!json_object_get_boolean(ok)) {
		if (json_object_object_get_ex(o, "error", &e) &&
		    json_object_is_type(e, json_type_string))
			snprintf(err, errlen, "%s", json_object_get_string(e));
		else
			snprintf(err, errlen, "the monitor refused the request");
		json_object_put(o);
		return -EREMOTEIO;
	}
	*reply = o;
	return 0;
}

int ctl_linebuf_init(struct ctl_linebuf *lb, size_t max_line)
{
	memset(lb, 0, sizeof(*lb));
	lb->buf = malloc(max_line + 1);
	if (!lb->buf)
		return -ENOMEM;
	lb->cap = max_line + 1;
	return 0;
}

void ctl_linebuf_free(struct ctl_linebuf *lb)
{
	free(lb->buf);
	memset(lb, 0, sizeof(*lb));
}

size_t ctl_linebuf_room(struct ctl_linebuf *lb, char **p)
{
	if (lb->start) {
		memmove(lb->buf, lb->buf + lb->start, lb->len - lb->start);
		lb->len -= lb->start;
		lb->start = 0;
	}
	*p = lb->buf + lb->len;
	return lb->cap - lb->len;
}

void ctl_linebuf_added(struct ctl_linebuf *lb, size_t n)
{
	lb->len += n;
}

int ctl_linebuf_take(struct ctl_linebuf *lb, char **line, size_t *len)
{
	char *s = lb->buf + lb->start;
	char *nl = memchr(s, '\n', lb->len - lb->start);

	if (!nl)
		return lb->start == 0 && lb->len == lb->cap ? -EMSGSIZE : 0;
	*nl = '\0';
	*line = s;
	*len = (size_t)(nl - s);
	lb->start += *len + 1;
	return 1;
}

size_t ctl_linebuf_rest(struct ctl_linebuf *lb, const char **p)
{
	size_t n = lb->len - lb->start;

	*p = lb->buf + lb->start;
	lb->start = lb->len;
	return n;
}
