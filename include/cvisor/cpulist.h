/* cpulist.h - host CPU lists in the kernel's "0-3,8,10-11" notation
 * (as in /sys/devices/system/cpu/online and taskset -c). Pure. */
#ifndef CVISOR_CPULIST_H
#define CVISOR_CPULIST_H

#include <sched.h>
#include <stddef.h>

#include "cvisor/util.h"

/* Longest list text accepted (flags, config files, control requests). */
#define CPULIST_MAX_LEN 256

/* Parse s into set. Ranges are inclusive and ascending; an empty list is
 * an error. Returns 0, -EINVAL (syntax) or -ERANGE (a CPU >= CPU_SETSIZE). */
int cpulist_parse(const char *s, cpu_set_t *set) CV_MUST;

/* Write set as a list ("" when empty). Returns 0 or -ENOSPC. */
int cpulist_format(const cpu_set_t *set, char *buf, size_t len) CV_MUST;

/* The lowest CPU in a that is not in b, or -1 if a is a subset of b. */
int cpulist_first_missing(const cpu_set_t *a, const cpu_set_t *b);

#endif
