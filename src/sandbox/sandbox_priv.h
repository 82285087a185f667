/* sandbox_priv.h - the seccomp tables' shape, shared by the tables
 * (src/sandbox/seccomp.c), the generator that compiles them into BPF at
 * build time (scripts/seccomp-bpf.c) and the code that installs the
 * generated programs (src/sandbox/sandbox.c). */
#ifndef CVISOR_SANDBOX_PRIV_H
#define CVISOR_SANDBOX_PRIV_H

#include <linux/filter.h>
#include <stdint.h>

#include "cvisor/sandbox.h"

/* One allowed system call: outright (arg < 0), or when
 * (args[arg] & mask) == val. */
struct sc_rule {
	int nr;
	int arg;
	uint64_t mask, val;
};

/* A list of rules, ioctl request numbers or socket families. */
struct sc_rules {
	const struct sc_rule *v;
	unsigned int n;
};
struct sc_ulongs {
	const unsigned long *v;
	unsigned int n;
};
struct sc_ints {
	const int *v;
	unsigned int n;
};

/* A class's filter: the common rules and ioctls, then its own. */
struct class_filter {
	const char *name;
	struct sc_rules rules;
	struct sc_ulongs ioctls;
	struct sc_ints families;
};

/* Allowed to every class. */
extern const struct sc_rules sandbox_common_rules;
extern const struct sc_ulongs sandbox_common_ioctls;
/* Allowed to every class in a build with ASan or TSan only (their
 * runtimes' allocator and reports): the generator emits each program with
 * and without them. */
extern const struct sc_rules sandbox_sanitizer_rules;
/* The classes, in the order of enum sandbox_class. */
extern const struct class_filter sandbox_classes[SANDBOX_NCLASS];

/* One compiled program, as the generated build/gen/seccomp_bpf.h holds
 * them: sandbox_bpf[sanitizers][mode][class], mode SANDBOX_ON (refused
 * calls trap) or SANDBOX_LOG; beside them sandbox_syscall_names[], the
 * report's names by number. */
struct sandbox_bpf {
	unsigned short len;
	const struct sock_filter *insns;
};

#endif
