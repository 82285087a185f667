/* policy.c - the convergence policy of pre-copy: after each round, go on
 * or stop the guest (and whether a migration that cannot meet its
 * downtime target may stop it anyway), and the options' defaults. Pure:
 * source.c measures, this decides. */
#include <string.h>

#include "cvisor/migrate.h"

enum migrate_decision migrate_decide(const struct migrate_converge *c, uint64_t *expected_us)
{
	uint64_t target_us = c->downtime_ms * 1000;
	bool hopeless;

	*expected_us = UINT64_MAX;
	if (!c->bandwidth)
		return c->remaining ? MIGRATE_CONTINUE : MIGRATE_STOP;
	/* remaining / bandwidth in microseconds, without overflow for any
	 * remaining below 2^44 bytes (16 TiB). */
	*expected_us =
		(uint64_t)((double)c->remaining * 1e6 / (double)c->bandwidth) + c->overhead_us;
	if (*expected_us <= target_us)
		return MIGRATE_STOP;
	hopeless = c->round >= c->max_rounds || c->stalled >= MIGRATE_STALL_ROUNDS;
	if (!hopeless)
		return MIGRATE_CONTINUE;
	return c->force ? MIGRATE_STOP : MIGRATE_GIVE_UP;
}

unsigned int migrate_stall_count(unsigned int stalled, uint64_t prev, uint64_t remaining)
{
	/* Less than 10% smaller than the round before: no headway. */
	return remaining * 10 > prev * 9 ? stalled + 1 : 0;
}

void migrate_opts_init(struct migrate_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->downtime_ms = MIGRATE_DEFAULT_DOWNTIME_MS;
	o->max_rounds = MIGRATE_DEFAULT_MAX_ROUNDS;
	o->force = true;
	o->fd = -1;
}
