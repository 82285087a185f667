/* test_ratelimit.c - the token buckets behind --disk/--net rate limits
 * (src/virtio/ratelimit.c) on a clock the test drives: the long-run rate
 * is the rate given (bursts, debts of oversized I/O and fractions
 * included), waits are exact, and the options parse, refuse bad values
 * with one line, and rewrite a spec for `cvisor set`. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/ratelimit.h"
#include "with_err.h"

#define S 1000000000ULL

static const struct rate_keys blk_keys[] = { { "", "iops" } };
static const struct rate_keys net_keys[] = { { "rx-", "pps" }, { "tx-", "pps" } };

/* Send I/Os of `cost` bytes for `secs` seconds as fast as the limiter lets
 * them go, sleeping as long as it says and `late` more (a busy host's
 * wake-up): the bytes that went. */
static uint64_t drive_late(struct rate_limiter *rl, uint64_t cost, uint64_t ops, uint64_t secs,
			   uint64_t late, uint64_t *now)
{
	uint64_t end = *now + secs * S, sent = 0, w;

	while (*now < end) {
		if (!(w = rate_limiter_take(rl, cost, ops, *now)))
			sent += cost;
		else
			*now += w + late;
	}
	return sent;
}

static uint64_t drive(struct rate_limiter *rl, uint64_t cost, uint64_t ops, uint64_t secs,
		      uint64_t *now)
{
	return drive_late(rl, cost, ops, secs, 0, now);
}

static void test_long_run_rate(void **state)
{
	/* rate, request size: small, equal to the bucket, larger (debt) */
	static const uint64_t cases[][2] = {
		{ 10 << 20, 4096 },  { 10 << 20, 1 << 20 }, { 10 << 20, 4 << 20 },
		{ 1000000, 131072 }, { 3333333, 4097 },	    { 1 << 30, 512 << 10 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct rate_limiter rl = { 0 };
		struct rate_limits l = { .bytes = { cases[i][0], 0 } };
		uint64_t now = 5 * S, sent, want = cases[i][0] * 20;

		rate_limiter_set(&rl, &l, now);
		sent = drive(&rl, cases[i][1], 1, 20, &now);
		/* At most the first bucket (100 ms) and one I/O above the
		 * rate, and at most one I/O below it. */
		assert_true(sent + 2 * cases[i][1] >= want);
		assert_true(sent <= want + cases[i][0] / 10 + cases[i][1]);
	}
}

/* Waking up late loses nothing while the lateness is under half the
 * bucket's time (50 ms with the default burst): the tokens earned meanwhile
 * are kept, whatever the request size. */
static void test_late_wakeups(void **state)
{
	static const uint64_t sizes[] = { 4096, 100 << 10, 256 << 10, 1 << 20 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct rate_limiter rl = { 0 };
		struct rate_limits l = { .bytes = { 2 << 20, 0 } }; /* bucket 204.8K */
		uint64_t now = 0, sent;

		rate_limiter_set(&rl, &l, now);
		sent = drive_late(&rl, sizes[i], 1, 20, 45 * S / 1000, &now);
		assert_true(sent + 2 * sizes[i] >= 20ULL * (2 << 20));
		assert_true(sent <= 20ULL * (2 << 20) + (2 << 20) / 10 + sizes[i]);
	}
}

static void test_ops_limit(void **state)
{
	struct rate_limiter rl = { 0 };
	struct rate_limits l = { .ops = { 100, 0 } };
	uint64_t now = 0, sent;

	(void)state;
	rate_limiter_set(&rl, &l, now);
	/* 1-byte operations: 100 a second, plus the 10 of a full bucket. */
	sent = drive(&rl, 1, 1, 10, &now);
	assert_true(sent >= 998 && sent <= 1010);
	assert_true(rl.throttled > 0);
}

static void test_burst(void **state)
{
	struct rate_limiter rl = { 0 };
	struct rate_limits l = { .bytes = { 1000, 5000 } };
	uint64_t now = 0;

	(void)state;
	rate_limiter_set(&rl, &l, now);
	/* A full bucket: 5000 at once, then 1000 a second. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(rate_limiter_take(&rl, 1000, 1, now), 0);
	assert_int_equal(rate_limiter_take(&rl, 1000, 1, now), S);
	assert_int_equal(rl.throttled, 1);
	/* Asked again while waiting: counted once. */
	assert_int_equal(rate_limiter_take(&rl, 1000, 1, now + S / 2), S / 2);
	assert_int_equal(rl.throttled, 1);
	assert_int_equal(rate_limiter_take(&rl, 1000, 1, now + S), 0);
	/* Idle long: never more than the bucket. */
	now += 3600 * S;
	for (int i = 0; i < 5; i++)
		assert_int_equal(rate_limiter_take(&rl, 1000, 1, now), 0);
	assert_true(rate_limiter_take(&rl, 1000, 1, now) > 0);
}

static void test_oversized_debt(void **state)
{
	struct rate_limiter rl = { 0 };
	struct rate_limits l = { .bytes = { 1000, 0 } }; /* bucket 100 */
	uint64_t now = 0;

	(void)state;
	rate_limiter_set(&rl, &l, now);
	/* Larger than the bucket: goes at once, then a debt of 9900. The next
	 * waits for half the bucket (its cost is more than that). */
	assert_int_equal(rate_limiter_take(&rl, 10000, 1, now), 0);
	assert_int_equal(rate_limiter_take(&rl, 100, 1, now), 9950 * S / 1000);
	assert_int_equal(rate_limiter_take(&rl, 100, 1, now + 9950 * S / 1000), 0);
	/* A debt of 50 now: 40 bytes wait for 90 tokens. */
	assert_int_equal(rate_limiter_take(&rl, 40, 1, now + 9950 * S / 1000), 90 * S / 1000);
	/* Zero bytes (a flush) never waits on the bytes bucket. */
	assert_int_equal(rate_limiter_take(&rl, 0, 1, now + 9950 * S / 1000), 0);
}

static void test_both_buckets(void **state)
{
	struct rate_limiter rl = { 0 };
	struct rate_limits l = { .bytes = { 1000, 1000 }, .ops = { 10, 1 } };
	uint64_t now = 0;

	(void)state;
	rate_limiter_set(&rl, &l, now);
	assert_int_equal(rate_limiter_take(&rl, 500, 1, now), 0);
	/* The ops bucket is empty: nothing is taken from the bytes one. */
	assert_int_equal(rate_limiter_take(&rl, 500, 1, now), S / 10);
	assert_int_equal(rate_limiter_take(&rl, 500, 1, now + S / 10), 0);
	assert_int_equal(rate_limiter_take(&rl, 500, 1, now + S / 5), 3 * S / 10); /* 200 held */
}

/* Short waits are stretched to a floor that bounds the timer's wakeups. */
static void test_wait_floor(void **state)
{
	struct rate_limiter rl = { 0 };
	struct rate_limits l = { .bytes = { 1000000000, 0 } };

	(void)state;
	rate_limiter_set(&rl, &l, 0);
	assert_int_equal(rate_limiter_take(&rl, 100000000, 1, 0), 0);
	assert_int_equal(rate_limiter_take(&rl, 1000, 1, 0), RATE_MIN_WAIT_NS);
	assert_int_equal(rate_limiter_take(&rl, 1000, 1, 1000), 0);
}

static void test_unlimited(void **state)
{
	struct rate_limiter rl = { 0 };
	struct rate_limits l = { 0 };

	(void)state;
	rate_limiter_set(&rl, &l, 0);
	assert_false(rate_limiter_on(&rl));
	for (int i = 0; i < 1000; i++)
		assert_int_equal(rate_limiter_take(&rl, 1 << 30, 1, 0), 0);
	assert_int_equal(rl.throttled, 0);
}

static int parse(const struct rate_keys *k, unsigned int nk, struct rate_limits *l, const char *opt,
		 char *err, size_t errlen)
{
	struct cv_error e = { 0 };
	int r = rate_parse_opt(k, l, nk, "--disk", opt, strlen(opt), &e);

	copy_err(err, errlen, e.msg);
	return r;
}

static void test_parse(void **state)
{
	struct rate_limits l[2] = { 0 };
	char err[CV_ERROR_MAX];

	(void)state;
	assert_int_equal(parse(blk_keys, 1, l, "bw=50M", err, sizeof(err)), 1);
	assert_int_equal(l[0].bytes.rate, 50ULL << 20);
	assert_int_equal(parse(blk_keys, 1, l, "bw=7", err, sizeof(err)), 1);
	assert_int_equal(l[0].bytes.rate, 7ULL << 20); /* a plain number is MiB */
	assert_int_equal(parse(blk_keys, 1, l, "bw-burst=1500000B", err, sizeof(err)), 1);
	assert_int_equal(l[0].bytes.burst, 1500000);
	assert_int_equal(parse(blk_keys, 1, l, "iops=250", err, sizeof(err)), 1);
	assert_int_equal(l[0].ops.rate, 250);
	assert_int_equal(parse(blk_keys, 1, l, "iops-burst=30", err, sizeof(err)), 1);
	assert_int_equal(l[0].ops.burst, 30);
	assert_int_equal(parse(blk_keys, 1, l, "serial=x", err, sizeof(err)), 0);
	assert_int_equal(parse(blk_keys, 1, l, "readonly", err, sizeof(err)), 0);
	assert_int_equal(parse(blk_keys, 1, l, "rx-bw=1M", err, sizeof(err)), 0);
	assert_int_equal(parse(blk_keys, 1, l, "bw=off", err, sizeof(err)), 1);
	assert_int_equal(l[0].bytes.rate, 0);
	assert_int_equal(l[0].bytes.burst, 0); /* the burst goes with it */

	assert_int_equal(parse(net_keys, 2, l, "tx-pps=1000", err, sizeof(err)), 1);
	assert_int_equal(l[1].ops.rate, 1000);
	assert_int_equal(parse(net_keys, 2, l, "rx-bw=1G", err, sizeof(err)), 1);
	assert_int_equal(l[0].bytes.rate, 1ULL << 30);
	assert_int_equal(parse(net_keys, 2, l, "bw=1G", err, sizeof(err)), 0);
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = { "bw=0",    "bw=-5M", "bw=",	     "bw=fast",
					   "bw=2T",   "iops=0", "iops=-1",   "iops=1.5",
					   "iops=1k", "bw=0B",	"bw-burst=0" };
	struct rate_limits l[1] = { 0 };
	char err[CV_ERROR_MAX];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(parse(blk_keys, 1, l, bad[i], err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, bad[i]));
		assert_null(strchr(err, '\n'));
	}
	assert_non_null(strstr(err, "above 0"));
	memset(l, 0, sizeof(l));
	l[0].ops.burst = 5;
	assert_int_equal(WITH_ERR(err, rate_check(blk_keys, l, 1, "--disk", &e_)), -EINVAL);
	assert_string_equal(err, "--disk: iops-burst needs iops");
}

static void test_spec_change(void **state)
{
	struct rate_limits l[2] = { { .bytes = { 10 << 20, 0 } } };
	char err[CV_ERROR_MAX], *spec;

	(void)state;
	assert_int_equal(WITH_ERR(err, rate_spec_change(blk_keys, l, 1, "disk0", "/img,ro,bw=10M",
							"iops=100,bw=20M", &spec, &e_)),
			 0);
	assert_string_equal(spec, "/img,ro,bw=20M,iops=100");
	assert_int_equal(l[0].bytes.rate, 20 << 20);
	free(spec);
	assert_int_equal(
		WITH_ERR(err, rate_spec_change(blk_keys, l, 1, "disk0", "/img,ro,bw=20M,iops=100",
					       "bw=off,iops-burst=7", &spec, &e_)),
		0);
	assert_string_equal(spec, "/img,ro,iops=100,iops-burst=7");
	free(spec);
	/* All or nothing: a bad item leaves the limits alone. */
	assert_int_equal(WITH_ERR(err, rate_spec_change(blk_keys, l, 1, "disk0", "/img",
							"iops=5,serial=zz", &spec, &e_)),
			 -EINVAL);
	assert_null(spec);
	assert_non_null(strstr(err, "only the rate limits"));
	assert_int_equal(l[0].ops.rate, 100);
	assert_int_equal(WITH_ERR(err, rate_spec_change(blk_keys, l, 1, "disk0", "/img", "iops=off",
							&spec, &e_)),
			 0);
	free(spec);
	/* iops went, its burst with it: nothing left over. */
	assert_int_equal(l[0].ops.burst, 0);
	assert_int_equal(WITH_ERR(err, rate_spec_change(blk_keys, l, 1, "disk0", "/img",
							"bw-burst=1M", &spec, &e_)),
			 -EINVAL);
	assert_string_equal(err, "disk0: bw-burst needs bw");

	memset(l, 0, sizeof(l));
	assert_int_equal(
		WITH_ERR(err, rate_spec_change(net_keys, l, 2, "net0",
					       "user,hostfwd=tcp::2222-:22,mac=52:54:00:12:34:56",
					       "tx-bw=1536K,rx-pps=10", &spec, &e_)),
		0);
	assert_string_equal(
		spec, "user,hostfwd=tcp::2222-:22,mac=52:54:00:12:34:56,rx-pps=10,tx-bw=1536K");
	free(spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_run_rate),  cmocka_unit_test(test_late_wakeups),
		cmocka_unit_test(test_ops_limit),      cmocka_unit_test(test_burst),
		cmocka_unit_test(test_oversized_debt), cmocka_unit_test(test_both_buckets),
		cmocka_unit_test(test_wait_floor),     cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_parse),	       cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_spec_change),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
