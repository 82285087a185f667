/* cli.c - the `cvisor migrate` client side: the control request that
 * carries its options to the monitor, and the progress lines (`run
 * --incoming`'s flags are incoming.c's): pure functions the CLI
 * (src/cli/migrate.c, which parses the command line), the monitor and the
 * tests share.
 *
 * Streaming over the control socket: the monitor answers a "migrate"
 * request with any number of lines {"progress":{...}} (each tick and each
 * round) and then exactly one reply: {"ok":true,"migrated":{...}} or
 * {"ok":false,"error":"..."}. The client prints round lines and the last
 * one with --json, draws a bar from them on a tty, and otherwise prints
 * only the summary line. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/ctl_proto.h"
#include "cvisor/migrate.h"

int migrate_req_format(const struct migrate_opts *o, char *buf, size_t len)
{
	struct json_object *j = json_object_new_object();
	const char *s;
	int r = 0;

	if (!j)
		return -ENOMEM;
	json_object_object_add(j, "cmd", json_object_new_string("migrate"));
	json_object_object_add(j, "dest", json_object_new_string(o->dest ? o->dest : ""));
	json_object_object_add(j, "downtime_ms", json_object_new_int64((int64_t)o->downtime_ms));
	json_object_object_add(j, "max_rounds", json_object_new_int64(o->max_rounds));
	json_object_object_add(j, "force", json_object_new_boolean(o->force));
	json_object_object_add(j, "with_storage", json_object_new_boolean(o->with_storage));
	json_object_object_add(j, "verify", json_object_new_boolean(o->verify));
	json_object_object_add(j, "max_bandwidth",
			       json_object_new_int64((int64_t)o->max_bandwidth));
	if (o->encrypted)
		json_object_object_add(j, "tls", json_object_new_boolean(true));
	/* A monitor older than the passed connection rejects the key, rather
	 * than ignore the fd and connect to the target itself. */
	if (o->linked)
		json_object_object_add(j, "link", json_object_new_boolean(true));
	if (o->tls.insecure)
		json_object_object_add(j, "insecure", json_object_new_boolean(true));
	s = json_object_to_json_string_ext(j,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s || strlen(s) + 1 > len)
		r = -ENOSPC;
	else
		memcpy(buf, s, strlen(s) + 1);
	json_object_put(j);
	return r;
}

static int get_u64(struct json_object *v, const char *key, uint64_t min, uint64_t max,
		   uint64_t *out, char *err, size_t errlen)
{
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
	    json_object_get_uint64(v) < min || json_object_get_uint64(v) > max)
		return cv_errf(err, errlen, -EINVAL,
			       "malformed request: \"%s\" must be an integer from %llu to %llu",
			       key, (unsigned long long)min, (unsigned long long)max);
	*out = json_object_get_uint64(v);
	return 0;
}

static int get_bool(struct json_object *v, const char *key, bool *out, char *err, size_t errlen)
{
	if (!json_object_is_type(v, json_type_boolean))
		return cv_errf(err, errlen, -EINVAL,
			       "malformed request: \"%s\" must be true or false", key);
	*out = json_object_get_boolean(v);
	return 0;
}

/* "tls_psk", "tls_creds": a path, kept in o->tls.owned. */
static int get_path(struct migrate_opts *o, const char *key, struct json_object *v, char *err,
		    size_t errlen)
{
	unsigned int k = !strcmp(key, "tls_creds");

	if (!json_object_is_type(v, json_type_string) || !json_object_get_string_len(v))
		return cv_errf(err, errlen, -EINVAL, "malformed request: \"%s\" must be a path",
			       key);
	free(o->tls.owned[k]);
	if (!(o->tls.owned[k] = strdup(json_object_get_string(v))))
		return -ENOMEM;
	if (k)
		o->tls.creds_dir = o->tls.owned[k];
	else
		o->tls.psk_file = o->tls.owned[k];
	return 0;
}

static int req_key(struct migrate_opts *o, const char *key, struct json_object *v, char **owned,
		   char *err, size_t errlen)
{
	char host[256], port[8], why[200];
	uint64_t u;

	if (!strcmp(key, "cmd"))
		return json_object_is_type(v, json_type_string) &&
				       !strcmp(json_object_get_string(v), "migrate")
			       ? 0
			       : cv_errf(err, errlen, -EINVAL,
					 "malformed request: \"cmd\" must be \"migrate\"");
	if (!strcmp(key, "dest")) {
		if (!json_object_is_type(v, json_type_string) ||
		    migrate_parse_addr(json_object_get_string(v), host, sizeof(host), port,
				       sizeof(port), why, sizeof(why)))
			return cv_errf(err, errlen, -EINVAL,
				       "malformed request: \"dest\" must be HOST:PORT");
		free(*owned);
		*owned = strdup(json_object_get_string(v));
		o->dest = *owned;
		return *owned ? 0 : -ENOMEM;
	}
	if (!strcmp(key, "downtime_ms")) {
		if (get_u64(v, key, 1, MIGRATE_MAX_DOWNTIME_MS, &u, err, errlen))
			return -EINVAL;
		o->downtime_ms = u;
		return 0;
	}
	if (!strcmp(key, "max_rounds")) {
		if (get_u64(v, key, 0, MIGRATE_MAX_ROUNDS, &u, err, errlen))
			return -EINVAL;
		o->max_rounds = (unsigned int)u;
		return 0;
	}
	if (!strcmp(key, "max_bandwidth"))
		return get_u64(v, key, 0, UINT64_MAX >> 1, &o->max_bandwidth, err, errlen);
	if (!strcmp(key, "force"))
		return get_bool(v, key, &o->force, err, errlen);
	if (!strcmp(key, "with_storage"))
		return get_bool(v, key, &o->with_storage, err, errlen);
	if (!strcmp(key, "verify"))
		return get_bool(v, key, &o->verify, err, errlen);
	if (!strcmp(key, "insecure"))
		return get_bool(v, key, &o->tls.insecure, err, errlen);
	if (!strcmp(key, "tls"))
		return get_bool(v, key, &o->encrypted, err, errlen);
	if (!strcmp(key, "link"))
		return get_bool(v, key, &o->linked, err, errlen);
	if (!strcmp(key, "tls_psk") || !strcmp(key, "tls_creds"))
		return get_path(o, key, v, err, errlen);
	return cv_errf(err, errlen, -EINVAL, "malformed request: unknown key \"%s\" for migrate",
		       key);
}

int migrate_req_parse(const char *json, size_t len, struct migrate_opts *o, char **owned, char *err,
		      size_t errlen)
{
	struct json_object *j;
	const char *desc;
	size_t off;
	int r = 0;

	migrate_opts_init(o);
	*owned = NULL;
	if (ctl_json_parse(json, len, true, &j, &off, &desc))
		return cv_errf(err, errlen, -EINVAL, "malformed request at byte %zu: %s", off,
			       desc);
	if (!json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		return cv_errf(err, errlen, -EINVAL, "malformed request: not a JSON object");
	}
	json_object_object_foreach(j, key, val)
	{
		if ((r = req_key(o, key, val, owned, err, errlen)))
			break;
	}
	if (!r && !o->dest)
		r = cv_errf(err, errlen, -EINVAL, "malformed request: migrate needs \"dest\"");
	json_object_put(j);
	if (r) {
		free(*owned);
		*owned = NULL;
		o->dest = NULL;
		migrate_tls_free(&o->tls);
	}
	return r;
}

static const char *const phase_names[] = {
	[MIGRATE_SETUP] = "setup",     [MIGRATE_DISKS] = "disks", [MIGRATE_PRECOPY] = "precopy",
	[MIGRATE_STOPPED] = "stopped", [MIGRATE_DONE] = "done",
};

int migrate_progress_json(const struct migrate_progress *p, char *buf, size_t len)
{
	int n;

	if (p->event == MIGRATE_EV_DONE)
		n = snprintf(buf, len,
			     "{\"ok\":true,\"migrated\":{\"total_ms\":%.3f,\"downtime_ms\":%.3f,"
			     "\"downtime_target_ms\":%llu,\"bytes\":%llu,\"throughput\":%llu,"
			     "\"rounds\":%u,\"pages\":%llu,\"zero_pages\":%llu,\"disk_bytes\":%llu,"
			     "\"dirty_rate\":%llu,\"expected_downtime_ms\":%.3f,\"forced\":%s}}",
			     (double)p->elapsed_ns / 1e6, (double)p->downtime_us / 1e3,
			     (unsigned long long)p->downtime_target_ms,
			     (unsigned long long)p->bytes, (unsigned long long)p->throughput,
			     p->round + 1, (unsigned long long)p->pages,
			     (unsigned long long)p->zero_pages, (unsigned long long)p->disk_bytes,
			     (unsigned long long)p->dirty_rate,
			     p->expected_downtime_us == UINT64_MAX
				     ? -1.0
				     : (double)p->expected_downtime_us / 1e3,
			     p->forced ? "true" : "false");
	else
		n = snprintf(buf, len,
			     "{\"progress\":{\"event\":\"%s\",\"phase\":\"%s\",\"round\":%u,"
			     "\"elapsed_ms\":%llu,\"bytes\":%llu,\"ram_bytes\":%llu,\"pages\":%llu,"
			     "\"zero_pages\":%llu,\"disk_bytes\":%llu,\"remaining\":%llu,"
			     "\"rate\":%llu,\"dirty_rate\":%llu,\"expected_downtime_ms\":%.3f}}",
			     p->event == MIGRATE_EV_ROUND ? "round" : "tick", phase_names[p->phase],
			     p->round, (unsigned long long)(p->elapsed_ns / 1000000),
			     (unsigned long long)p->bytes, (unsigned long long)p->ram_bytes,
			     (unsigned long long)p->pages, (unsigned long long)p->zero_pages,
			     (unsigned long long)p->disk_bytes, (unsigned long long)p->remaining,
			     (unsigned long long)p->rate, (unsigned long long)p->dirty_rate,
			     p->expected_downtime_us == UINT64_MAX
				     ? -1.0
				     : (double)p->expected_downtime_us / 1e3);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static double mib(uint64_t b)
{
	return (double)b / (1 << 20);
}

void migrate_progress_bar(const struct migrate_progress *p, char *buf, size_t len)
{
	char exp[32];

	if (p->expected_downtime_us == UINT64_MAX)
		snprintf(exp, sizeof(exp), "-");
	else
		snprintf(exp, sizeof(exp), "%.1f ms", (double)p->expected_downtime_us / 1e3);
	snprintf(buf, len,
		 "\r%-7s round %-3u sent %8.1f MiB  %6.2f Gbit/s  dirty %7.1f MiB/s  "
		 "left %7.1f MiB  expected downtime %s   ",
		 phase_names[p->phase], p->round, mib(p->bytes), (double)p->rate * 8 / 1e9,
		 mib(p->dirty_rate), mib(p->remaining), exp);
}

void migrate_summary_line(const struct migrate_progress *p, char *buf, size_t len)
{
	snprintf(buf, len,
		 "migrated to %s in %.3f s: %.1f MiB at %.2f Gbit/s, %u rounds, downtime %.3f ms "
		 "(target %llu ms), dirty rate %.1f MiB/s%s",
		 p->dest ? p->dest : "the target", (double)p->elapsed_ns / 1e9, mib(p->bytes),
		 (double)p->throughput * 8 / 1e9, p->round + 1, (double)p->downtime_us / 1e3,
		 (unsigned long long)p->downtime_target_ms, mib(p->dirty_rate),
		 p->forced ? " (forced: the downtime target could not be met)" : "");
}

static uint64_t jget(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static uint64_t jget_ms_us(struct json_object *o, const char *k)
{
	struct json_object *v;
	double d;

	if (!json_object_object_get_ex(o, k, &v))
		return 0;
	d = json_object_get_double(v);
	return d < 0 ? UINT64_MAX : (uint64_t)(d * 1e3);
}

int migrate_progress_parse(const char *line, size_t len, struct migrate_progress *p)
{
	struct json_object *j, *o, *v;
	const char *desc;
	size_t off;
	int r = 0;

	memset(p, 0, sizeof(*p));
	if (ctl_json_parse(line, len, true, &j, &off, &desc))
		return -EINVAL;
	if (json_object_object_get_ex(j, "progress", &o) &&
	    json_object_is_type(o, json_type_object)) {
		p->event = MIGRATE_EV_TICK;
		if (json_object_object_get_ex(o, "event", &v) &&
		    !strcmp(json_object_get_string(v), "round"))
			p->event = MIGRATE_EV_ROUND;
		p->phase = MIGRATE_PRECOPY;
		if (json_object_object_get_ex(o, "phase", &v))
			for (unsigned int i = 0; i < sizeof(phase_names) / sizeof(phase_names[0]);
			     i++)
				if (!strcmp(json_object_get_string(v), phase_names[i]))
					p->phase = (enum migrate_phase)i;
		p->round = (unsigned int)jget(o, "round");
		p->elapsed_ns = jget(o, "elapsed_ms") * 1000000;
		p->bytes = jget(o, "bytes");
		p->ram_bytes = jget(o, "ram_bytes");
		p->pages = jget(o, "pages");
		p->zero_pages = jget(o, "zero_pages");
		p->disk_bytes = jget(o, "disk_bytes");
		p->remaining = jget(o, "remaining");
		p->rate = jget(o, "rate");
		p->dirty_rate = jget(o, "dirty_rate");
		p->expected_downtime_us = jget_ms_us(o, "expected_downtime_ms");
		r = 1;
	} else if (json_object_object_get_ex(j, "migrated", &o) &&
		   json_object_is_type(o, json_type_object)) {
		p->event = MIGRATE_EV_DONE;
		p->phase = MIGRATE_DONE;
		p->elapsed_ns = jget_ms_us(o, "total_ms") * 1000;
		p->downtime_us = jget_ms_us(o, "downtime_ms");
		p->downtime_target_ms = jget(o, "downtime_target_ms");
		p->bytes = jget(o, "bytes");
		p->throughput = jget(o, "throughput");
		p->round = (unsigned int)jget(o, "rounds");
		p->round = p->round ? p->round - 1 : 0;
		p->pages = jget(o, "pages");
		p->zero_pages = jget(o, "zero_pages");
		p->disk_bytes = jget(o, "disk_bytes");
		p->dirty_rate = jget(o, "dirty_rate");
		p->expected_downtime_us = jget_ms_us(o, "expected_downtime_ms");
		if (json_object_object_get_ex(o, "forced", &v))
			p->forced = json_object_get_boolean(v);
		r = 2;
	}
	json_object_put(j);
	return r;
}
