/* cpulist.c - "0-3,8" CPU lists <-> cpu_set_t. */
#include "cvisor/cpulist.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One decimal CPU number; advances *s. */
static int parse_cpu(const char **s, unsigned long *cpu)
{
	unsigned long v = 0;

	if (!isdigit((unsigned char)**s))
		return -EINVAL;
	while (isdigit((unsigned char)**s)) {
		v = v * 10 + (unsigned long)(**s - '0');
		if (v >= CPU_SETSIZE)
			return -ERANGE;
		(*s)++;
	}
	*cpu = v;
	return 0;
}

int cpulist_parse(const char *s, cpu_set_t *set)
{
	CPU_ZERO(set);
	if (!s || strlen(s) > CPULIST_MAX_LEN)
		return -EINVAL;
	for (;;) {
		unsigned long lo, hi;
		int r = parse_cpu(&s, &lo);

		if (r)
			return r;
		hi = lo;
		if (*s == '-') {
			s++;
			if ((r = parse_cpu(&s, &hi)))
				return r;
			if (hi < lo)
				return -EINVAL;
		}
		for (unsigned long c = lo; c <= hi; c++)
			CPU_SET(c, set);
		if (*s == '\0')
			return 0;
		if (*s++ != ',')
			return -EINVAL;
	}
}

int cpulist_format(const cpu_set_t *set, char *buf, size_t len)
{
	size_t off = 0;

	if (!len)
		return -ENOSPC;
	buf[0] = '\0';
	for (int c = 0; c < CPU_SETSIZE; c++) {
		int end = c;
		int n;

		if (!CPU_ISSET(c, set))
			continue;
		while (end + 1 < CPU_SETSIZE && CPU_ISSET(end + 1, set))
			end++;
		if (end == c)
			n = snprintf(buf + off, len - off, "%s%d", off ? "," : "", c);
		else
			n = snprintf(buf + off, len - off, "%s%d-%d", off ? "," : "", c, end);
		if (n < 0 || (size_t)n >= len - off) {
			buf[0] = '\0';
			return -ENOSPC;
		}
		off += (size_t)n;
		c = end;
	}
	return 0;
}

int cpulist_first_missing(const cpu_set_t *a, const cpu_set_t *b)
{
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, a) && !CPU_ISSET(c, b))
			return c;
	return -1;
}
