/* ratelimit.h - I/O rate limits for the virtio devices that move data for
 * the guest (virtio-blk: bytes and requests per second; virtio-net: bytes
 * and packets per second, each direction): token buckets in the manner of
 * Firecracker's RateLimiter, and the `KEY=VALUE` options that set them on
 * --disk and --net and through `cvisor set`.
 *
 * A bucket holds at most `burst` tokens and gains `rate` a second. An I/O of
 * cost c goes when the bucket holds min(c, burst / 2) tokens (rounded up); it takes
 * c, so one larger than that leaves a debt the next ones wait out
 * (Firecracker's over-consumption: the average stays the rate). Half, not
 * all of the bucket: tokens earned while I/O waits are lost only once the
 * bucket is full, so a wake-up that comes late (a busy host) costs nothing
 * up to half a bucket's time (50 ms by default). A device
 * that finds too few tokens leaves the request where it is (on the ring,
 * or the frame in its backend) and comes back when a timer says the tokens
 * are there: a limited device delays I/O and never drops or fails it.
 *
 * Firecracker's terms: size = burst, refill_time = burst / rate. Its
 * one_time_burst (an initial credit that never refills) is not offered:
 * every bucket starts full. Pure but for the timer at the end: no clock
 * is read here, callers pass the time. */
#ifndef CVISOR_RATELIMIT_H
#define CVISOR_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cvisor/error.h"
#include "cvisor/evloop.h"
#include "cvisor/util.h"

/* Highest rate or burst accepted: 1 TiB (or 2^40 operations) a second. */
#define RATE_MAX (1ULL << 40)
/* A bucket without an explicit burst holds this fraction of a second's
 * tokens (100 ms), and at least one. */
#define RATE_DEFAULT_BURST_DIV 10
/* The shortest wait a device sleeps: bounds the timer's wakeups. */
#define RATE_MIN_WAIT_NS 100000ULL

/* One bucket's setting. rate 0: no limit. burst 0: the default. */
struct rate_limit {
	uint64_t rate;	/* tokens a second */
	uint64_t burst; /* the bucket's size */
};

/* One direction of a device: bytes and operations (requests, packets). */
struct rate_limits {
	struct rate_limit bytes, ops;
};

/* How one direction's options are spelled in a device's spec:
 * PREFIX "bw", PREFIX "bw-burst", PREFIX OPS, PREFIX OPS "-burst",
 * e.g. bw= and iops= for a disk, rx-bw= and rx-pps= for a network. */
struct rate_keys {
	const char *prefix; /* "", "rx-", "tx-" */
	const char *ops;    /* "iops", "pps" */
};

/* One option of a spec, opt[0..n) ("bw=50M"), for the directions dir[0..nd)
 * whose limits are lim[0..nd): 1 when it was a rate option (parsed into
 * lim), 0 when it is not one, -EINVAL with e filled (CV_EXIT_USAGE, naming
 * `what`, e.g. "--disk") for a bad value. A VALUE of "off" removes the
 * limit (and its burst with the rate); 0, a negative number or a value
 * that does not parse is refused. Rates of bytes are sizes (50M; a plain
 * number is MiB, 1500000B is bytes), of operations plain numbers. */
int rate_parse_opt(const struct rate_keys *dir, struct rate_limits *lim, unsigned int nd,
		   const char *what, const char *opt, size_t n, struct cv_error *e) CV_MUST;

/* `changes` ("KEY=VALUE[,KEY=VALUE]...") holds rate options only, each
 * with a good value, over lim (may be NULL: checked, kept nowhere).
 * -EINVAL with e filled. A client checks `cvisor set` with it. */
int rate_parse_changes(const struct rate_keys *dir, struct rate_limits *lim, unsigned int nd,
		       const char *what, const char *changes, struct cv_error *e) CV_MUST;

/* The bucket size l gives: its burst, or RATE_DEFAULT_BURST_DIV of its
 * rate (at least 1); 0 without a rate. */
uint64_t rate_burst(const struct rate_limit *l);

/* After every option: a burst needs its rate. -EINVAL with e filled. */
int rate_check(const struct rate_keys *dir, const struct rate_limits *lim, unsigned int nd,
	       const char *what, struct cv_error *e) CV_MUST;

/* Apply `changes` ("KEY=VALUE[,KEY=VALUE]...", rate options only) over
 * lim[0..nd) and write into *new_spec (malloc'd) spec without its rate
 * options followed by the resulting limits in canonical form. All or
 * nothing: -EINVAL with e filled (lim unchanged), or -ENOMEM. */
int rate_spec_change(const struct rate_keys *dir, struct rate_limits *lim, unsigned int nd,
		     const char *what, const char *spec, const char *changes, char **new_spec,
		     struct cv_error *e) CV_MUST;

/* *new_spec (malloc'd) = spec without its rate options, then lim's in
 * canonical form. 0 or -ENOMEM. */
int rate_spec_rewrite(const struct rate_keys *dir, const struct rate_limits *lim, unsigned int nd,
		      const char *spec, char **new_spec) CV_MUST;

/* The limits as options, each preceded by a comma (",bw=50M,iops=100"),
 * into buf; "" when none is set. Returns the length (truncated at len). */
size_t rate_format(const struct rate_keys *dir, const struct rate_limits *lim, unsigned int nd,
		   char *buf, size_t len);

/* A bucket as it runs. */
struct rate_bucket {
	uint64_t rate, size; /* size: the burst in effect (default applied) */
	int64_t budget;	     /* tokens; negative: the debt of an oversized I/O */
	uint64_t frac;	     /* token fractions carried between refills (ns * rate) */
	uint64_t last_ns;    /* when budget was last refilled */
};

/* One direction's buckets as they run, and what they did. */
struct rate_limiter {
	struct rate_limits set; /* as given (bursts 0 when default) */
	struct rate_bucket bytes, ops;
	uint64_t throttled; /* times an I/O had to wait */
	bool waiting;	    /* the last take failed */
};

/* Set the limits (full buckets, as Firecracker's start); counters kept. */
void rate_limiter_set(struct rate_limiter *rl, const struct rate_limits *l, uint64_t now_ns);

/* The limits the limiter runs with, as given to rate_limiter_set. */
void rate_limiter_get(const struct rate_limiter *rl, struct rate_limits *out);

/* True if rl limits anything. */
bool rate_limiter_on(const struct rate_limiter *rl);

/* An I/O of `bytes` bytes and `ops` operations at now_ns: 0 when it may go
 * (its tokens are taken from both buckets), else the nanoseconds until it
 * may (at least RATE_MIN_WAIT_NS; nothing taken, throttled counted). */
uint64_t rate_limiter_take(struct rate_limiter *rl, uint64_t bytes, uint64_t ops, uint64_t now_ns);

/* What `cvisor info` and `top` show of one direction of a device. */
struct rate_status {
	const char *dir; /* "" (a disk), "rx", "tx" */
	struct rate_limits lim;
	uint64_t throttled;
};

/* A device's wake-up for I/O that waits for tokens: a timerfd on the main
 * loop, armed for the earliest wait asked for. */
struct rate_timer {
	int fd;
	struct evloop *loop;
	uint64_t due_ns; /* when it fires; 0: disarmed */
};

/* A disarmed timer calling fn (which calls rate_timer_fired first).
 * 0 or -errno. */
int rate_timer_init(struct rate_timer *t, struct evloop *loop, evloop_fn fn, void *opaque) CV_MUST;

/* Fire wait_ns after now_ns, unless it fires sooner already. */
void rate_timer_arm(struct rate_timer *t, uint64_t now_ns, uint64_t wait_ns);

/* In fn: read the timerfd; it is disarmed. */
void rate_timer_fired(struct rate_timer *t);

/* Remove and close it (main thread). Safe on a timer whose init failed. */
void rate_timer_destroy(struct rate_timer *t);

#endif
