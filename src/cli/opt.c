/* opt.c - the verbs' option tables drive both the parsing of argv and the
 * usage text (kvmtool's parse-options, reduced to what cvisor's verbs
 * take). Pure: no I/O but the FILE the usage is written to. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cvisor/cli.h"

/* Usage lines wrap before this column. */
#define USAGE_WIDTH 79

/* "--name" or "--name=VALUE" for option o: 1 with *val (NULL without
 * '='), 0 when argument a is some other one. */
static int opt_match(const struct cli_opt *o, const char *a, const char **val)
{
	size_t n = strlen(o->name);

	if (strncmp(a, o->name, n) || (a[n] && a[n] != '='))
		return 0;
	*val = a[n] ? a + n + 1 : NULL;
	return 1;
}

/* Store value into the field o names. */
static int opt_set(const char *verb, const struct cli_opt *o, const char *val, struct cli_args *a,
		   char *err, size_t errlen)
{
	void *field = (char *)a + o->field;
	uint64_t v;

	if (o->kind == CLI_OPT_FLAG) {
		if (val)
			return cv_errf(err, errlen, -EINVAL, "%s: %s takes no value", verb,
				       o->name);
		*(bool *)field = true;
		return 0;
	}
	if (!val || (o->kind == CLI_OPT_STR && !val[0]))
		return cv_errf(err, errlen, -EINVAL, "%s: %s needs a value", verb, o->name);
	if (o->kind == CLI_OPT_STR) {
		*(const char **)field = val;
		return 0;
	}
	if (o->kind == CLI_OPT_SIZE) {
		if (cv_parse_size(val, 1, &v) || v < o->min)
			return cv_errf(err, errlen, -EINVAL, "%s: %s %s: %s", verb, o->name, val,
				       o->bad);
	} else if (cv_parse_uint(val, o->min, o->max, &v)) {
		return cv_errf(err, errlen, -EINVAL, "%s: %s %s: must be %s%llu to %llu%s%s", verb,
			       o->name, val, o->unit ? "" : "a number from ",
			       (unsigned long long)o->min, (unsigned long long)o->max,
			       o->unit ? " " : "", o->unit ? o->unit : "");
	}
	*(uint64_t *)field = v;
	return 0;
}

/* The options' defaults, before any is parsed. */
static void opt_defaults(const struct cli_verb *v, struct cli_args *a)
{
	memset(a, 0, sizeof(*a));
	for (const struct cli_opt *o = v->opts; o && o->name; o++)
		if (o->kind == CLI_OPT_UINT || o->kind == CLI_OPT_SIZE)
			*(uint64_t *)((char *)a + o->field) = o->def;
}

int cli_parse(const struct cli_verb *v, int argc, char **argv, struct cli_args *a, char *err,
	      size_t errlen)
{
	char line[512];

	opt_defaults(v, a);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;
		const struct cli_opt *o = v->opts;

		while (o && o->name && !opt_match(o, arg, &val))
			o++;
		if (o && o->name) {
			/* "--name VALUE": the value is the next argument. */
			if (o->kind != CLI_OPT_FLAG && !val && i + 1 < argc)
				val = argv[++i];
			if (opt_set(v->name, o, val, a, err, errlen))
				return -EINVAL;
		} else if (arg[0] == '-' && arg[1]) {
			/* A lone "-" is an argument: stdin, for ctl. */
			return cv_errf(err, errlen, -EINVAL,
				       "%s: unknown flag %s (see cvisor help)", v->name, arg);
		} else if (a->nargs < v->nargs) {
			a->arg[a->nargs++] = arg;
		} else {
			return cv_errf(err, errlen, -EINVAL,
				       "%s: unexpected argument %s (see cvisor help)", v->name,
				       arg);
		}
	}
	if (a->nargs == v->nargs)
		return 0;
	if (v->needs)
		return cv_errf(err, errlen, -EINVAL, "%s: needs %s", v->name, v->needs);
	(void)!cli_usage_line(v, line, sizeof(line));
	return cv_errf(err, errlen, -EINVAL, "usage: %s", line);
}

int cli_usage_line(const struct cli_verb *v, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "cvisor %s%s%s", v->name, v->args ? " " : "",
				    v->args ? v->args : "");

	for (const struct cli_opt *o = v->opts; o && o->name && n < len; o++)
		n += (size_t)snprintf(buf + n, len - n, " [%s%s%s]", o->name, o->arg ? " " : "",
				      o->arg ? o->arg : "");
	return n < len ? 0 : -ENOSPC;
}

/* line after lead, wrapped before an option ("[") where it would pass
 * USAGE_WIDTH; continuation lines start under the verb's arguments. */
static void print_wrapped(FILE *f, const char *lead, const char *line, const char *verb)
{
	size_t indent = strlen(lead) + strlen("cvisor ") + strlen(verb) + 1;
	size_t col = strlen(lead);
	const char *p = line;

	fputs(lead, f);
	while (*p) {
		const char *next = strstr(p + 1, " [");
		size_t n = next ? (size_t)(next - p) : strlen(p);

		if (p != line && col + n > USAGE_WIDTH) {
			fprintf(f, "\n%*s", (int)indent, "");
			col = indent;
			p++; /* the space before "[" */
			n--;
		}
		fwrite(p, 1, n, f);
		col += n;
		p += n;
	}
	fputc('\n', f);
}

void cli_usage_lines(FILE *f, const char *lead)
{
	for (const struct cli_verb *v = cli_verbs; v->name; v++) {
		char line[512];

		(void)!cli_usage_line(v, line, sizeof(line));
		print_wrapped(f, lead, line, v->name);
	}
}

void cli_verb_help(FILE *f, const struct cli_verb *v)
{
	char line[512];

	(void)!cli_usage_line(v, line, sizeof(line));
	print_wrapped(f, "usage: ", line, v->name);
	fprintf(f, "\n%c%s.\n", toupper((unsigned char)v->help[0]), v->help + 1);
	if (!v->opts || !v->opts->name)
		return;
	fputc('\n', f);
	for (const struct cli_opt *o = v->opts; o->name; o++) {
		char flag[64];

		snprintf(flag, sizeof(flag), "%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		fprintf(f, "  %-20s %s", flag, o->help);
		if (o->kind == CLI_OPT_UINT && o->def)
			fprintf(f, " (default %llu)", (unsigned long long)o->def);
		fputc('\n', f);
	}
}

void cli_verb_list(FILE *f)
{
	for (const struct cli_verb *v = cli_verbs; v->name; v++)
		fprintf(f, "  %-9s %s\n", v->name, v->help);
}
