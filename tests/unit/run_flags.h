/* run_flags.h - `cvisor run FLAGS` parsed as main.c does when no --config
 * names a file: config_init, config_apply_flags, config_check. */
#ifndef TESTS_UNIT_RUN_FLAGS_H
#define TESTS_UNIT_RUN_FLAGS_H

#include "cvisor/config.h"

static inline int run_flags(struct vm_config *c, char *err, size_t n, int argc, char **argv)
{
	int r;

	config_init(c);
	if ((r = config_apply_flags(argc, argv, c, err, n)))
		return r;
	return config_check(c, err, n);
}

/* PARSE(&cfg, err, "--kernel", "k", ...): err is an array. */
#define PARSE(cfg, err, ...)                                                               \
	({                                                                                 \
		char *argv_[] = { "run", __VA_ARGS__ };                                    \
		run_flags(cfg, err, sizeof(err), sizeof(argv_) / sizeof(argv_[0]), argv_); \
	})

#endif
