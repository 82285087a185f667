/* run_flags.h - `cvisor run FLAGS` parsed by what main.c runs:
 * config_load_run (flags, the --config file, flags again, checks, full
 * paths). The error's line goes into err. */
#ifndef TESTS_UNIT_RUN_FLAGS_H
#define TESTS_UNIT_RUN_FLAGS_H

#include "cvisor/config.h"
#include "with_err.h"

static inline int run_flags(struct vm_config *c, char *err, size_t n, int argc, char **argv)
{
	struct cv_error e = { 0 };
	int r;

	config_free(c); /* c is zeroed or holds the previous PARSE's strings */
	r = config_load_run(argc, argv, c, &e);

	copy_err(err, n, e.msg);
	return r;
}

/* PARSE(&cfg, err, "--kernel", "k", ...): err is an array, cfg starts zeroed. */
#define PARSE(cfg, err, ...)                                                               \
	({                                                                                 \
		char *argv_[] = { "run", __VA_ARGS__ };                                    \
		run_flags(cfg, err, sizeof(err), sizeof(argv_) / sizeof(argv_[0]), argv_); \
	})

#endif
