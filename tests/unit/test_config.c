/* test_config.c - size, number and `cvisor run` flag parsing, and the
 * merge of flags and config file that `cvisor run` runs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/config.h"
#include "run_flags.h"

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		int mib;
		uint64_t want;
	} ok[] = {
		{ "192M", 1, 192ULL << 20 },  { "192", 1, 192ULL << 20 }, { "2G", 1, 2ULL << 30 },
		{ "2g", 1, 2ULL << 30 },      { "64k", 0, 64ULL << 10 },  { "1GiB", 1, 1ULL << 30 },
		{ "512MB", 1, 512ULL << 20 }, { "4096", 0, 4096 },	  { "4096b", 1, 4096 },
		{ "1T", 0, 1ULL << 40 },
	};
	static const char *const bad[] = { "",
					   "M",
					   "12Q",
					   "-1",
					   " 5",
					   "5 ",
					   "1.5G",
					   "0x10",
					   "5MiBB",
					   "G5",
					   "99999999999999999999" };
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(cv_parse_size(ok[i].s, ok[i].mib, &v), 0);
		assert_int_equal(v, ok[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(cv_parse_size(bad[i], 1, &v), 0);
	/* 2^64 bytes and beyond overflow instead of wrapping */
	assert_int_equal(cv_parse_size("16777216T", 0, &v), -ERANGE);
	assert_int_equal(cv_parse_size("17179869184G", 0, &v), -ERANGE);
}

static void test_parse_uint(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(cv_parse_uint("4", 1, 64, &v), 0);
	assert_int_equal(v, 4);
	assert_int_equal(cv_parse_uint("0", 1, 64, &v), -ERANGE);
	assert_int_equal(cv_parse_uint("65", 1, 64, &v), -ERANGE);
	assert_int_equal(cv_parse_uint("4x", 1, 64, &v), -EINVAL);
	assert_int_equal(cv_parse_uint("-4", 1, 64, &v), -EINVAL);
	assert_int_equal(cv_parse_uint("", 1, 64, &v), -EINVAL);
}

static void test_run_flags(void **state)
{
	struct vm_config c = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--initrd=i", "--cmdline", "a b",
			       "--memory", "192M", "--cpus=4", "--emulated-host", "off"),
			 0);
	assert_string_equal(c.kernel, "k");
	assert_string_equal(c.initrd, "i");
	assert_string_equal(c.cmdline, "a b");
	assert_int_equal(c.mem_size, 192ULL << 20);
	assert_int_equal(c.ncpus, 4);
	assert_int_equal(c.quirks, CONFIG_QUIRKS_OFF);

	assert_int_equal(PARSE(&c, err, "--kernel", "k"), 0);
	assert_int_equal(c.mem_size, CONFIG_DEFAULT_MEM);
	assert_int_equal(c.ncpus, 1);
	assert_int_equal(c.quirks, CONFIG_QUIRKS_AUTO);
	assert_string_equal(c.cmdline, "");
	config_free(&c);
}

/* A file in a fresh directory under /tmp; dir gets the directory. */
static void write_file(char *dir, size_t len, const char *name, const char *text, char *path,
		       size_t plen)
{
	FILE *f;

	if (!dir[0]) {
		snprintf(dir, len, "/tmp/cvisor-test-config-XXXXXX");
		assert_non_null(mkdtemp(dir));
	}
	snprintf(path, plen, "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

/* What `cvisor run` runs: flags, the file, flags over it, checks, full
 * names (config_load_run, main.c's one call). */
static void test_run_merge(void **state)
{
	char dir[64] = "", file[128], img[128], kern[128], want[320], err[256], cwd[4096];
	struct vm_config c = { 0 };

	(void)state;
	write_file(dir, sizeof(dir), "img", "", img, sizeof(img));
	write_file(dir, sizeof(dir), "kern", "", kern, sizeof(kern));
	write_file(dir, sizeof(dir), "g.json",
		   "{\"kernel\": \"kern\", \"cpus\": 4, \"name\": \"a\", \"memory\": \"1G\",\n"
		   " \"disk\": [\"img,readonly\"], \"rng\": true, \"vsock\": \"3\"}\n",
		   file, sizeof(file));
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	/* the flags win, repeatable devices add up, single ones are replaced */
	assert_int_equal(PARSE(&c, err, "--config", "g.json", "--cpus", "2", "--name=b", "-d",
			       "--disk", "img", "--vsock", "4"),
			 0);
	assert_int_equal(c.ncpus, 2);
	assert_string_equal(c.name, "b");
	assert_true(c.detach);
	assert_int_equal(c.mem_size, 1ULL << 30);
	assert_string_equal(c.config_file, "g.json");
	/* full names: the kernel with -d, disk images always, options kept */
	assert_string_equal(c.kernel, kern);
	assert_int_equal(devices_count(&c.devices, devices_type("disk")), 2);
	snprintf(want, sizeof(want), "%s,readonly", img);
	assert_string_equal(devices_spec(&c.devices, devices_type("disk"), 0), want);
	assert_string_equal(devices_spec(&c.devices, devices_type("disk"), 1), img);
	assert_int_equal(devices_count(&c.devices, devices_type("rng")), 1);
	assert_string_equal(devices_spec(&c.devices, devices_type("vsock"), 0), "4");
	/* --module adds up, one a line; with -d each file by its full name,
	 * its arguments kept, a name that does not resolve as given */
	assert_int_equal(PARSE(&c, err, "--kernel", "kern", "--name", "m", "-d", "--module",
			       "img,a b", "--module", "nothere,x", "--module", "kern"),
			 0);
	snprintf(want, sizeof(want), "%s,a b\nnothere,x\n%s", img, kern);
	assert_string_equal(c.modules, want);
	assert_int_equal(PARSE(&c, err, "--kernel", "kern", "--module", ",x"), -EINVAL);
	assert_non_null(strstr(err, "--module: empty file name"));
	/* without -d the kernel keeps the name it was given */
	assert_int_equal(PARSE(&c, err, "--config", "g.json"), 0);
	assert_string_equal(c.kernel, "kern");
	/* a file's bad value is named by file and key; no leak on failure */
	write_file(dir, sizeof(dir), "bad.json", "{\"kernel\": \"k\", \"cpus\": 99}", file,
		   sizeof(file));
	assert_int_equal(PARSE(&c, err, "--config", "bad.json"), -EINVAL);
	assert_non_null(strstr(err, "bad.json: cpus 99: must be a number from 1 to 64"));
	assert_int_equal(PARSE(&c, err, "--config", "."), -EISDIR);
	assert_non_null(strstr(err, "--config .: is a directory"));
	assert_int_equal(chdir(cwd), 0);
	config_free(&c);
	unlink(img);
	unlink(kern);
	unlink(file);
	snprintf(file, sizeof(file), "%s/g.json", dir);
	unlink(file);
	rmdir(dir);
}

static void test_run_errors(void **state)
{
	struct vm_config c = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&c, err, "--memory", "1G"), -EINVAL);
	assert_non_null(strstr(err, "--kernel FILE is required"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--bogus"), -EINVAL);
	assert_non_null(strstr(err, "unknown flag --bogus"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "stray"), -EINVAL);
	assert_non_null(strstr(err, "unexpected argument stray"));
	assert_int_equal(PARSE(&c, err, "--kernel"), -EINVAL);
	assert_non_null(strstr(err, "needs a value"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--cpus", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--cpus", "65"), -EINVAL);
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--memory", "8M"), -EINVAL);
	assert_non_null(strstr(err, "at least"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--memory", "16385k"), -EINVAL);
	assert_non_null(strstr(err, "multiple of 4 KiB"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--emulated-host", "maybe"), -EINVAL);
	/* a flag that merely starts like a known one is unknown */
	assert_int_equal(PARSE(&c, err, "--kernelx", "k"), -EINVAL);
	assert_non_null(strstr(err, "unknown flag --kernelx"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size), cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_run_flags),  cmocka_unit_test(test_run_errors),
		cmocka_unit_test(test_run_merge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
