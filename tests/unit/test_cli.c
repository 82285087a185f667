/* test_cli.c - the command-line client's verb table: option parsing (both
 * value forms, defaults, ranges, and the one line an unknown flag, a stray
 * argument or a missing one gets), the usage generated from the same
 * tables, and `cvisor migrate`'s command line (moved here from
 * test_migrate_helpers.c when its parser became the table's). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/cli.h"
#include "cvisor/ctl_proto.h"
#include "cvisor/migrate.h"

/* Parse the NULL-terminated argument list for verb argv0. */
static int parse(struct cli_args *a, char *err, size_t errlen, const char *argv0, ...)
{
	const struct cli_verb *v = cli_verb_find(argv0);
	char *argv[16] = { (char *)argv0 };
	int argc = 1;
	va_list ap;

	assert_non_null(v);
	va_start(ap, argv0);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	err[0] = '\0';
	return cli_parse(v, argc, argv, a, err, errlen);
}

static void test_find(void **state)
{
	static const char *const verbs[] = { "ls",     "info", "stop",	  "kill",    "pause",
					     "resume", "top",  "console", "balloon", "pin",
					     "ctl",    "save", "migrate" };

	(void)state;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		assert_non_null(cli_verb_find(verbs[i]));
		assert_string_equal(cli_verb_find(verbs[i])->name, verbs[i]);
	}
	assert_null(cli_verb_find("frobnicate"));
	/* run and restore are main.c's, not the client's. */
	assert_null(cli_verb_find("run"));
	assert_null(cli_verb_find("restore"));
}

static void test_values(void **state)
{
	struct cli_args a;
	char err[256];

	(void)state;
	assert_int_equal(parse(&a, err, sizeof(err), "stop", "web", NULL), 0);
	assert_string_equal(a.arg[0], "web");
	assert_int_equal(a.timeout, CTL_STOP_TIMEOUT_DEFAULT);
	assert_int_equal(parse(&a, err, sizeof(err), "stop", "--timeout", "5", "web", NULL), 0);
	assert_int_equal(a.timeout, 5);
	assert_int_equal(parse(&a, err, sizeof(err), "stop", "web", "--timeout=7", NULL), 0);
	assert_int_equal(a.timeout, 7);
	assert_int_equal(parse(&a, err, sizeof(err), "top", "--once", "--json", NULL), 0);
	assert_true(a.once && a.json);
	assert_int_equal(a.delay, 1);
	/* A lone "-" is an argument (ctl reads stdin), not a flag. */
	assert_int_equal(parse(&a, err, sizeof(err), "ctl", "web", "-", NULL), 0);
	assert_string_equal(a.arg[1], "-");
}

static void test_refused(void **state)
{
	struct cli_args a;
	char err[256];

	(void)state;
	assert_int_equal(parse(&a, err, sizeof(err), "info", "web", "--bogus", NULL), -EINVAL);
	assert_string_equal(err, "info: unknown flag --bogus (see cvisor help)");
	assert_int_equal(parse(&a, err, sizeof(err), "kill", "--json", "web", NULL), -EINVAL);
	assert_string_equal(err, "kill: unknown flag --json (see cvisor help)");
	assert_int_equal(parse(&a, err, sizeof(err), "ls", "web", NULL), -EINVAL);
	assert_string_equal(err, "ls: unexpected argument web (see cvisor help)");
	assert_int_equal(parse(&a, err, sizeof(err), "pin", "web", "0", NULL), -EINVAL);
	assert_string_equal(err, "pin: needs a guest NAME, a VCPU and a CPULIST");
	assert_int_equal(parse(&a, err, sizeof(err), "console", NULL), -EINVAL);
	assert_string_equal(err, "console: needs a guest NAME (see cvisor help)");
	assert_int_equal(parse(&a, err, sizeof(err), "stop", "web", "--timeout", "0", NULL),
			 -EINVAL);
	assert_string_equal(err, "stop: --timeout 0: must be 1 to 86400 seconds");
	assert_int_equal(parse(&a, err, sizeof(err), "top", "--delay", "x", NULL), -EINVAL);
	assert_string_equal(err, "top: --delay x: must be 1 to 3600 seconds");
	assert_int_equal(parse(&a, err, sizeof(err), "stop", "web", "--timeout", NULL), -EINVAL);
	assert_string_equal(err, "stop: --timeout needs a value");
	assert_int_equal(parse(&a, err, sizeof(err), "save", "web", "f", "--keep-running=1", NULL),
			 -EINVAL);
	assert_string_equal(err, "save: --keep-running takes no value");
	/* A prefix of a flag is not the flag. */
	assert_int_equal(parse(&a, err, sizeof(err), "save", "web", "f", "--keep", NULL), -EINVAL);
	assert_string_equal(err, "save: unknown flag --keep (see cvisor help)");
}

static void test_usage(void **state)
{
	char line[512], *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	assert_int_equal(cli_usage_line(cli_verb_find("stop"), line, sizeof(line)), 0);
	assert_string_equal(line, "cvisor stop NAME [--timeout SECONDS]");
	assert_int_equal(cli_usage_line(cli_verb_find("kill"), line, sizeof(line)), 0);
	assert_string_equal(line, "cvisor kill NAME");
	assert_int_equal(cli_usage_line(cli_verb_find("stop"), line, 12), -ENOSPC);
	/* Every verb and every option of its table is in the usage, and the
	 * lines stay within 79 columns. */
	f = open_memstream(&text, &len);
	assert_non_null(f);
	cli_usage_lines(f, "       ");
	cli_verb_list(f);
	fclose(f);
	for (const struct cli_verb *v = cli_verbs; v->name; v++) {
		char want[64];

		snprintf(want, sizeof(want), "cvisor %s", v->name);
		assert_non_null(strstr(text, want));
		for (const struct cli_opt *o = v->opts; o && o->name; o++) {
			snprintf(want, sizeof(want), "[%s%s%s]", o->name, o->arg ? " " : "",
				 o->arg ? o->arg : "");
			assert_non_null(strstr(text, want));
		}
		assert_non_null(strstr(text, v->help));
	}
	for (char *p = text, *nl; (nl = strchr(p, '\n')); p = nl + 1)
		assert_in_range(nl - p, 0, 79);
	free(text);
}

/* Every verb's --help stays within 79 columns. */
static void test_help_width(void **state)
{
	(void)state;
	for (const struct cli_verb *v = cli_verbs; v->name; v++) {
		char *text = NULL, *nl;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);

		assert_non_null(f);
		cli_verb_help(f, v);
		fclose(f);
		for (char *p = text; (nl = strchr(p, '\n')); p = nl + 1)
			assert_in_range(nl - p, 0, 79);
		free(text);
	}
}

static void test_verb_help(void **state)
{
	const struct cli_verb *v = cli_verb_find("migrate");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	cli_verb_help(f, v);
	fclose(f);
	assert_true(strncmp(text, "usage: cvisor migrate NAME HOST:PORT", 36) == 0);
	for (const struct cli_opt *o = v->opts; o->name; o++) {
		assert_non_null(strstr(text, o->name));
		assert_non_null(strstr(text, o->help));
	}
	assert_non_null(strstr(text, "(default 50)"));
	free(text);
}

static void test_migrate_args(void **state)
{
	struct migrate_opts o;
	struct cli_args a;
	char err[256];

	(void)state;
	assert_int_equal(parse(&a, err, sizeof(err), "migrate", "web", "10.200.0.2:4444",
			       "--downtime-ms", "20", "--with-storage", "--json", "--no-force",
			       "--max-bandwidth=100M", "--max-rounds=5", "--verify", "--insecure",
			       NULL),
			 0);
	assert_int_equal(cli_migrate_opts(&a, &o, err, sizeof(err)), 0);
	assert_true(o.tls.insecure && !o.tls.psk_file && !o.tls.creds_dir);
	assert_string_equal(a.arg[0], "web");
	assert_string_equal(o.dest, "10.200.0.2:4444");
	assert_int_equal(o.downtime_ms, 20);
	assert_true(o.with_storage && a.json && !o.force && o.verify);
	assert_int_equal(o.max_bandwidth, 100ULL << 20);
	assert_int_equal(o.max_rounds, 5);
	/* Defaults; a plain stream off loopback needs --insecure. */
	assert_int_equal(parse(&a, err, sizeof(err), "migrate", "web", "127.0.0.1:1", NULL), 0);
	assert_int_equal(cli_migrate_opts(&a, &o, err, sizeof(err)), 0);
	assert_false(o.tls.insecure);
	assert_int_equal(parse(&a, err, sizeof(err), "migrate", "web", "10.200.0.2:1", NULL), 0);
	assert_int_equal(cli_migrate_opts(&a, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "migrate: 10.200.0.2:1 is not a loopback address"));
	assert_int_equal(parse(&a, err, sizeof(err), "migrate", "web", "10.200.0.2:1", "--tls-psk",
			       "/nonexistent.psk", NULL),
			 0);
	assert_int_equal(cli_migrate_opts(&a, &o, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "--tls-psk /nonexistent.psk: No such file"));
	assert_int_equal(o.downtime_ms, MIGRATE_DEFAULT_DOWNTIME_MS);
	assert_int_equal(o.max_rounds, MIGRATE_DEFAULT_MAX_ROUNDS);
	assert_true(o.force && !o.with_storage && !a.json && !o.max_bandwidth);
	/* Bad ones. */
	assert_int_equal(
		parse(&a, err, sizeof(err), "migrate", "web", "h:1", "--downtime-ms", "0", NULL),
		-EINVAL);
	assert_string_equal(err, "migrate: --downtime-ms 0: must be a number from 1 to 600000");
	assert_int_equal(
		parse(&a, err, sizeof(err), "migrate", "web", "h:1", "--max-bandwidth", "x", NULL),
		-EINVAL);
	assert_non_null(strstr(err, "--max-bandwidth x: must be a rate"));
	assert_int_equal(parse(&a, err, sizeof(err), "migrate", "web", "--bogus", NULL), -EINVAL);
	assert_non_null(strstr(err, "unknown flag --bogus"));
	assert_int_equal(parse(&a, err, sizeof(err), "migrate", "web", NULL), -EINVAL);
	assert_true(strncmp(err, "usage: cvisor migrate NAME HOST:PORT [", 38) == 0);
	assert_int_equal(parse(&a, err, sizeof(err), "migrate", "../x", "h:1", NULL), 0);
	assert_int_equal(cli_migrate_opts(&a, &o, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "migrate: '../x' is not a guest name");
	assert_int_equal(parse(&a, err, sizeof(err), "migrate", "web", "nowhere", NULL), 0);
	assert_int_equal(cli_migrate_opts(&a, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "HOST:PORT"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find),	     cmocka_unit_test(test_values),
		cmocka_unit_test(test_refused),	     cmocka_unit_test(test_usage),
		cmocka_unit_test(test_help_width),   cmocka_unit_test(test_verb_help),
		cmocka_unit_test(test_migrate_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
