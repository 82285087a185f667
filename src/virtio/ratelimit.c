/* ratelimit.c - token buckets for the virtio devices' I/O, and their
 * options on --disk, --net and `cvisor set` (see ratelimit.h). */
#include "cvisor/ratelimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NS_PER_S 1000000000ULL

/* ---- options ---- */

enum rate_key_kind { KEY_BW, KEY_BW_BURST, KEY_OPS, KEY_OPS_BURST };

/* Which option of which direction opt[0..klen) names: 0 with *d and *kind,
 * or -1. */
static int key_lookup(const struct rate_keys *dir, unsigned int nd, const char *opt, size_t klen,
		      unsigned int *d, enum rate_key_kind *kind)
{
	for (unsigned int i = 0; i < nd; i++) {
		size_t pl = strlen(dir[i].prefix), ol = strlen(dir[i].ops);
		const char *k = opt + pl;
		size_t n = klen - pl;

		if (klen < pl || memcmp(opt, dir[i].prefix, pl))
			continue;
		*d = i;
		if (n == 2 && !memcmp(k, "bw", 2))
			*kind = KEY_BW;
		else if (n == 8 && !memcmp(k, "bw-burst", 8))
			*kind = KEY_BW_BURST;
		else if (n == ol && !memcmp(k, dir[i].ops, ol))
			*kind = KEY_OPS;
		else if (n == ol + 6 && !memcmp(k, dir[i].ops, ol) && !memcmp(k + ol, "-burst", 6))
			*kind = KEY_OPS_BURST;
		else
			continue;
		return 0;
	}
	return -1;
}

int rate_parse_opt(const struct rate_keys *dir, struct rate_limits *lim, unsigned int nd,
		   const char *what, const char *opt, size_t n, struct cv_error *e)
{
	const char *eq = memchr(opt, '=', n);
	char val[32];
	enum rate_key_kind kind;
	struct rate_limit *l;
	unsigned int d;
	uint64_t v = 0;
	bool bytes, off;
	size_t vlen;

	if (!eq || key_lookup(dir, nd, opt, (size_t)(eq - opt), &d, &kind))
		return 0;
	bytes = kind == KEY_BW || kind == KEY_BW_BURST;
	l = bytes ? &lim[d].bytes : &lim[d].ops;
	vlen = n - (size_t)(eq + 1 - opt);
	if (vlen < sizeof(val)) {
		memcpy(val, eq + 1, vlen);
		val[vlen] = '\0';
	}
	off = vlen < sizeof(val) && !strcmp(val, "off");
	if (!off && (vlen >= sizeof(val) ||
		     (bytes ? cv_parse_size(val, 1, &v) : cv_parse_uint(val, 0, UINT64_MAX, &v)) ||
		     !v || v > RATE_MAX)) {
		if (bytes)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "%s: %.*s: must be a number of bytes%s above 0 such as "
				       "%s (a plain number is MiB), or off",
				       what, (int)(n < 64 ? n : 64), opt,
				       kind == KEY_BW ? " a second" : "",
				       kind == KEY_BW ? "50M" : "1M");
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "%s: %.*s: must be a whole number above 0 (at most %llu), or off",
			       what, (int)(n < 64 ? n : 64), opt, (unsigned long long)RATE_MAX);
	}
	if (kind == KEY_BW || kind == KEY_OPS) {
		l->rate = v;
		if (off)
			l->burst = 0; /* the burst goes with its rate */
	} else {
		l->burst = v;
	}
	return 1;
}

int rate_check(const struct rate_keys *dir, const struct rate_limits *lim, unsigned int nd,
	       const char *what, struct cv_error *e)
{
	for (unsigned int i = 0; i < nd; i++) {
		if (lim[i].bytes.burst && !lim[i].bytes.rate)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s: %sbw-burst needs %sbw", what,
				       dir[i].prefix, dir[i].prefix);
		if (lim[i].ops.burst && !lim[i].ops.rate)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s: %s%s-burst needs %s%s", what,
				       dir[i].prefix, dir[i].ops, dir[i].prefix, dir[i].ops);
	}
	return 0;
}

/* A byte count as the shortest exact size: 50M, 1536K, 1500000B. */
static void format_bytes(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (u + 1 < (int)sizeof(units) - 1 && v && !(v & 1023)) {
		v >>= 10;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%lluB", (unsigned long long)v);
	else
		snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
}

size_t rate_format(const struct rate_keys *dir, const struct rate_limits *lim, unsigned int nd,
		   char *buf, size_t len)
{
	size_t at = 0;

	if (len)
		buf[0] = '\0';
	for (unsigned int i = 0; i < nd; i++) {
		const char *p = dir[i].prefix, *o = dir[i].ops;
		char b[32], bb[32];

		format_bytes(lim[i].bytes.rate, b, sizeof(b));
		format_bytes(lim[i].bytes.burst, bb, sizeof(bb));
		if (lim[i].bytes.rate && at < len)
			at += (size_t)snprintf(buf + at, len - at, ",%sbw=%s", p, b);
		if (lim[i].bytes.burst && at < len)
			at += (size_t)snprintf(buf + at, len - at, ",%sbw-burst=%s", p, bb);
		if (lim[i].ops.rate && at < len)
			at += (size_t)snprintf(buf + at, len - at, ",%s%s=%llu", p, o,
					       (unsigned long long)lim[i].ops.rate);
		if (lim[i].ops.burst && at < len)
			at += (size_t)snprintf(buf + at, len - at, ",%s%s-burst=%llu", p, o,
					       (unsigned long long)lim[i].ops.burst);
	}
	return at < len ? at : len ? len - 1 : 0;
}

/* Call fn on each comma-separated item of s; stop at its first non-zero. */
static int each_item(const char *s, int (*fn)(void *ctx, const char *item, size_t n), void *ctx)
{
	while (s && *s) {
		const char *c = strchr(s, ',');
		size_t n = c ? (size_t)(c - s) : strlen(s);
		int r = fn(ctx, s, n);

		if (r)
			return r;
		s = c ? c + 1 : NULL;
	}
	return 0;
}

struct change_ctx {
	const struct rate_keys *dir;
	struct rate_limits *lim;
	unsigned int nd;
	const char *what;
	struct cv_error *e;
	char *out; /* the spec being written */
	size_t at, cap;
	bool first;
};

static int change_one(void *opaque, const char *item, size_t n)
{
	struct change_ctx *c = opaque;
	int r = rate_parse_opt(c->dir, c->lim, c->nd, c->what, item, n, c->e);

	if (r < 0)
		return r;
	if (!r)
		return cv_fail(c->e, CV_EXIT_USAGE, -EINVAL,
			       "%s: %.*s: only the rate limits change while the guest runs "
			       "(%sbw=, %s%s=, ... and their -burst)",
			       c->what, (int)(n < 64 ? n : 64), item, c->dir[0].prefix,
			       c->dir[0].prefix, c->dir[0].ops);
	return 0;
}

/* Copy the spec's items that are not rate options. */
static int keep_one(void *opaque, const char *item, size_t n)
{
	struct change_ctx *c = opaque;
	const char *eq = memchr(item, '=', n);
	unsigned int d;
	enum rate_key_kind kind;

	if (!c->first && eq && !key_lookup(c->dir, c->nd, item, (size_t)(eq - item), &d, &kind))
		return 0;
	if (c->at + n + 2 > c->cap)
		return -ENOMEM; /* cap was sized for the whole spec */
	if (!c->first)
		c->out[c->at++] = ',';
	memcpy(c->out + c->at, item, n);
	c->at += n;
	c->out[c->at] = '\0';
	c->first = false;
	return 0;
}

int rate_parse_changes(const struct rate_keys *dir, struct rate_limits *lim, unsigned int nd,
		       const char *what, const char *changes, struct cv_error *e)
{
	struct rate_limits scratch[4] = { 0 };
	struct change_ctx c = { dir, lim ? lim : scratch, nd, what, e, NULL, 0, 0, true };

	if (nd > ARRAY_SIZE(scratch))
		return -EINVAL;
	if (!changes || !*changes)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "%s: no KEY=VALUE to set", what);
	return each_item(changes, change_one, &c);
}

uint64_t rate_burst(const struct rate_limit *l)
{
	uint64_t def = l->rate / RATE_DEFAULT_BURST_DIV;

	if (!l->rate)
		return 0;
	return l->burst ? l->burst : def ? def : 1;
}

int rate_spec_rewrite(const struct rate_keys *dir, const struct rate_limits *lim, unsigned int nd,
		      const char *spec, char **new_spec)
{
	struct change_ctx c = { .dir = dir, .nd = nd, .first = true };
	int r;

	*new_spec = NULL;
	/* Room for the kept items and every option of every direction. */
	c.cap = strlen(spec) + 256 * nd + 2;
	if (!(c.out = malloc(c.cap)))
		return -ENOMEM;
	c.out[0] = '\0';
	/* The first item is the device's main value (a path, user, tap=),
	 * never a rate option, whatever it looks like. */
	if ((r = each_item(spec, keep_one, &c))) {
		free(c.out);
		return r;
	}
	rate_format(dir, lim, nd, c.out + c.at, c.cap - c.at);
	*new_spec = c.out;
	return 0;
}

int rate_spec_change(const struct rate_keys *dir, struct rate_limits *lim, unsigned int nd,
		     const char *what, const char *spec, const char *changes, char **new_spec,
		     struct cv_error *e)
{
	struct rate_limits next[4];
	int r;

	*new_spec = NULL;
	if (nd > ARRAY_SIZE(next))
		return -EINVAL;
	memcpy(next, lim, nd * sizeof(*lim));
	if ((r = rate_parse_changes(dir, next, nd, what, changes, e)) ||
	    (r = rate_check(dir, next, nd, what, e)) ||
	    (r = rate_spec_rewrite(dir, next, nd, spec, new_spec)))
		return r;
	memcpy(lim, next, nd * sizeof(*lim));
	return 0;
}

/* ---- buckets ---- */

static void bucket_set(struct rate_bucket *b, const struct rate_limit *l, uint64_t now_ns)
{
	b->rate = l->rate;
	b->size = l->rate ? rate_burst(l) : 1;
	b->budget = (int64_t)b->size;
	b->frac = 0;
	b->last_ns = now_ns;
}

/* Add the tokens earned since last_ns, up to size. dt * rate fits in
 * 128 bits whatever the gap (2^64 ns times at most 2^40). */
static void bucket_refill(struct rate_bucket *b, uint64_t now_ns)
{
	uint64_t room = (uint64_t)((int64_t)b->size - b->budget);
	unsigned __int128 earned;

	if (now_ns <= b->last_ns)
		return;
	earned = (unsigned __int128)(now_ns - b->last_ns) * b->rate + b->frac;
	b->last_ns = now_ns;
	b->frac = (uint64_t)(earned % NS_PER_S);
	earned /= NS_PER_S;
	if (earned >= room) {
		b->budget = (int64_t)b->size;
		b->frac = 0;
	} else {
		b->budget += (int64_t)earned;
	}
}

/* 0 if cost may be taken now, else the nanoseconds until it may. */
static uint64_t bucket_wait(struct rate_bucket *b, uint64_t cost, uint64_t now_ns)
{
	uint64_t need_ns;
	int64_t want;

	if (!b->rate || !cost)
		return 0;
	bucket_refill(b, now_ns);
	/* At most half the bucket: the other half is the slack for a late
	 * wake-up (ratelimit.h). */
	want = (int64_t)(cost < (b->size + 1) / 2 ? cost : (b->size + 1) / 2);
	if (b->budget >= want)
		return 0;
	/* (want - budget) tokens, less the fraction already earned. */
	need_ns = (uint64_t)(((unsigned __int128)(uint64_t)(want - b->budget) * NS_PER_S - b->frac +
			      b->rate - 1) /
			     b->rate);
	return need_ns ? need_ns : 1;
}

static void bucket_take(struct rate_bucket *b, uint64_t cost)
{
	if (!b->rate)
		return;
	/* cost <= 2^63: a chain's bytes are far fewer. */
	b->budget -= (int64_t)cost;
}

void rate_limiter_set(struct rate_limiter *rl, const struct rate_limits *l, uint64_t now_ns)
{
	rl->set = *l;
	bucket_set(&rl->bytes, &l->bytes, now_ns);
	bucket_set(&rl->ops, &l->ops, now_ns);
	rl->waiting = false;
}

void rate_limiter_get(const struct rate_limiter *rl, struct rate_limits *out)
{
	*out = rl->set;
}

bool rate_limiter_on(const struct rate_limiter *rl)
{
	return rl->bytes.rate || rl->ops.rate;
}

uint64_t rate_limiter_take(struct rate_limiter *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns)
{
	uint64_t wb = bucket_wait(&rl->bytes, bytes, now_ns);
	uint64_t wo = bucket_wait(&rl->ops, ops, now_ns);
	uint64_t w = wb > wo ? wb : wo;

	if (!w) {
		bucket_take(&rl->bytes, bytes);
		bucket_take(&rl->ops, ops);
		rl->waiting = false;
		return 0;
	}
	if (!rl->waiting)
		rl->throttled++;
	rl->waiting = true;
	return w > RATE_MIN_WAIT_NS ? w : RATE_MIN_WAIT_NS;
}

/* ---- the wake-up ---- */

int rate_timer_init(struct rate_timer *t, struct evloop *loop, evloop_fn fn, void *opaque)
{
	int fd = evloop_add_timer(loop, 0, 0, fn, opaque);

	*t = (struct rate_timer){ .fd = fd < 0 ? -1 : fd, .loop = loop };
	return fd < 0 ? fd : 0;
}

void rate_timer_arm(struct rate_timer *t, uint64_t now_ns, uint64_t wait_ns)
{
	uint64_t due = now_ns + wait_ns;

	if (t->fd < 0 || (t->due_ns && t->due_ns <= due))
		return;
	/* Only a bad fd fails: the I/O then waits for the guest's next kick. */
	if (!evloop_timer_arm(t->fd, wait_ns, 0))
		t->due_ns = due;
}

void rate_timer_fired(struct rate_timer *t)
{
	uint64_t n;

	if (read(t->fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: disarmed meanwhile (a re-arm); nothing to count */
	}
	t->due_ns = 0;
}

void rate_timer_destroy(struct rate_timer *t)
{
	if (t->fd < 0)
		return;
	evloop_del(t->loop, t->fd);
	close(t->fd);
	t->fd = -1;
}
