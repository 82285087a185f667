/* test_config_file.c - `cvisor run --config FILE` (JSON) and the toolstack
 * flags: good files, syntax errors named by line and column, unknown keys,
 * bad values named by key, and flags overriding the file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/config.h"
#include "run_flags.h"
#include "with_err.h"

/* c is zeroed or holds strings from before. */
static int apply(struct vm_config *c, const char *text, char *err, size_t errlen)
{
	struct cv_error e = { 0 };
	int r;

	config_free(c);
	config_init(c);
	r = config_apply_json("g.json", text, strlen(text), c, &e);
	copy_err(err, errlen, e.msg);
	return r;
}

/* config_check's line into err. */
static int check(const struct vm_config *c, char *err, size_t errlen)
{
	struct cv_error e = { 0 };
	int r = config_check(c, &e);

	copy_err(err, errlen, e.msg);
	return r;
}

static void test_good_file(void **state)
{
	static const char text[] = "{\n"
				   "  // comments are allowed\n"
				   "  \"kernel\": \"/boot/k\",\n"
				   "  \"initrd\": \"rd.cpio\",\n"
				   "  \"cmdline\": \"console=ttyS0 quiet\",\n"
				   "  \"memory\": \"512M\",\n"
				   "  \"cpus\": 4,\n"
				   "  \"name\": \"web-1\",\n"
				   "  \"detach\": true,\n"
				   "  \"cpu_weight\": 200,\n"
				   "  \"cpu_cap\": 150,\n"
				   "  \"memory_limit\": 1024,\n"
				   "  \"cpu_affinity\": \"0-1,3\",\n"
				   "  \"emulated_host\": \"off\"\n"
				   "}\n";
	struct vm_config c = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(apply(&c, text, err, sizeof(err)), 0);
	assert_string_equal(c.kernel, "/boot/k");
	assert_string_equal(c.initrd, "rd.cpio");
	assert_string_equal(c.cmdline, "console=ttyS0 quiet");
	assert_int_equal(c.mem_size, 512ULL << 20);
	assert_int_equal(c.ncpus, 4);
	assert_string_equal(c.name, "web-1");
	assert_true(c.detach);
	assert_int_equal(c.cpu_weight, 200);
	assert_int_equal(c.cpu_cap, 150);
	/* a plain number is MiB, as for the flag */
	assert_int_equal(c.memory_limit, 1024ULL << 20);
	assert_string_equal(c.cpu_affinity, "0-1,3");
	assert_int_equal(c.quirks, CONFIG_QUIRKS_OFF);
	assert_int_equal(check(&c, err, sizeof(err)), 0);
	config_free(&c);
	config_free(&c); /* idempotent */

	/* memory as a number of MiB; defaults kept for absent keys */
	assert_int_equal(apply(&c, "{\"kernel\":\"k\",\"memory\":64}", err, sizeof(err)), 0);
	assert_int_equal(c.mem_size, 64ULL << 20);
	assert_int_equal(c.ncpus, 1);
	assert_int_equal(c.cpu_weight, CONFIG_DEFAULT_CPU_WEIGHT);
	assert_null(c.name);
	config_free(&c);
}

/* Syntax errors name FILE:LINE:COL of the fault. */
static void test_malformed(void **state)
{
	static const struct {
		const char *text;
		const char *where;
	} bad[] = {
		{ "{\n  \"kernel\": \"k\"\n  \"cpus\": 2\n}\n", "g.json:3:" },
		{ "{\n  \"kernel\": \"k\",\n  \"cpus\": 2,,\n}\n", "g.json:3:" },
		{ "{\n  \"kernel\": \"k\",\n\n\n  \"cpus\": tru\n}\n", "g.json:5:" },
		{ "{\"kernel\": \"k\"", "g.json:1:" },
		{ "", "g.json:1:1:" },
		{ "{\"kernel\": \"k\"}\n}\n", "g.json:2:1:" },
		{ "{\"kernel\": \"k\"} {\"cpus\": 1}", "g.json:1:17:" },
	};
	struct vm_config c = { 0 };
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(apply(&c, bad[i].text, err, sizeof(err)), -EINVAL);
		if (strncmp(err, bad[i].where, strlen(bad[i].where)))
			fail_msg("case %zu: '%s' does not start with '%s'", i, err, bad[i].where);
		assert_non_null(strstr(err, "malformed JSON"));
		assert_null(strchr(err, '\n'));
		config_free(&c);
	}
	assert_int_equal(apply(&c, "[1, 2]", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the top level must be a JSON object"));
	config_free(&c);
	/* json-c's "success" with no object used to be the message */
	assert_int_equal(apply(&c, "null", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the top level must be a JSON object"));
	config_free(&c);
}

static void test_bad_keys(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} bad[] = {
		{ "{\"kernel\":\"k\",\"cpu\":2}", "g.json: unknown key \"cpu\"" },
		{ "{\"kernel\":\"k\",\"config\":\"x\"}", "unknown key \"config\"" },
		{ "{\"kernel\":\"k\",\"cpus\":\"2\"}", "g.json: cpus: must be an integer" },
		{ "{\"kernel\":\"k\",\"cpus\":65}",
		  "g.json: cpus 65: must be a number from 1 to 64" },
		{ "{\"kernel\":\"k\",\"cpus\":-1}", "g.json: cpus -1:" },
		{ "{\"kernel\":\"k\",\"cpus\":1.5}", "cpus: must be an integer" },
		{ "{\"kernel\":\"k\",\"memory\":\"12Q\"}", "g.json: memory 12Q: not a size" },
		{ "{\"kernel\":\"k\",\"memory\":true}", "g.json: memory: must be a size" },
		{ "{\"kernel\":3}", "g.json: kernel: must be a string" },
		{ "{\"kernel\":\"\"}", "g.json: kernel: empty file name" },
		{ "{\"kernel\":\"k\",\"name\":\"a/b\"}", "g.json: name a/b: names are" },
		{ "{\"kernel\":\"k\",\"detach\":1}", "g.json: detach: must be true or false" },
		{ "{\"kernel\":\"k\",\"cpu_weight\":0}", "cpu_weight 0: must be a number from 1" },
		{ "{\"kernel\":\"k\",\"cpu_cap\":0}", "cpu_cap 0: must be a percentage" },
		{ "{\"kernel\":\"k\",\"cpu_affinity\":\"1-0\"}",
		  "cpu_affinity 1-0: not a CPU list" },
		{ "{\"kernel\":\"k\",\"emulated_host\":\"x\"}", "emulated_host x: must be auto" },
		/* NULs are refused in the text: json-c would read the key as
		 * "cpus" and the value as "k" (issue 10). */
		{ "{\"kernel\":\"k\\u0000x\"}", "g.json:1:13: malformed JSON: a NUL character" },
		{ "{\"kernel\":\"k\",\"cpus\\u0000zzz\":2}", "g.json:1:20: malformed JSON: a NUL" },
	};
	struct vm_config c = { 0 };
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(apply(&c, bad[i].text, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].want))
			fail_msg("case %zu: '%s' does not contain '%s'", i, err, bad[i].want);
		config_free(&c);
	}
}

/* main.c's order: the file, then the flags over it. */
static void test_flags_override(void **state)
{
	char *argv[] = { "run", "--config", "g.json", "--cpus", "2", "--name=b" };
	struct vm_config c = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(apply(&c, "{\"kernel\":\"k\",\"cpus\":4,\"name\":\"a\",\"memory\":\"1G\"}",
			       err, sizeof(err)),
			 0);
	struct cv_error e = { 0 };

	assert_int_equal(config_apply_flags(6, argv, &c, &e), 0);
	assert_int_equal(c.ncpus, 2);
	assert_string_equal(c.name, "b");
	assert_int_equal(c.mem_size, 1ULL << 30);
	assert_string_equal(c.config_file, "g.json");
	assert_int_equal(check(&c, err, sizeof(err)), 0);
	config_free(&c);

	/* a file without a kernel is completed by the flag, or refused */
	assert_int_equal(apply(&c, "{\"cpus\":2}", err, sizeof(err)), 0);
	assert_int_equal(check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--kernel FILE is required"));
	config_free(&c);
}

static void test_toolstack_flags(void **state)
{
	struct vm_config c = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--name", "g1", "-d", "--cpu-weight",
			       "300", "--cpu-cap", "50", "--memory-limit", "2G", "--cpu-affinity",
			       "1"),
			 0);
	assert_string_equal(c.name, "g1");
	assert_true(c.detach);
	assert_int_equal(c.cpu_weight, 300);
	assert_int_equal(c.cpu_cap, 50);
	assert_int_equal(c.memory_limit, 2ULL << 30);
	assert_string_equal(c.cpu_affinity, "1");

	assert_int_equal(PARSE(&c, err, "--kernel", "k", "-d"), -EINVAL);
	assert_non_null(strstr(err, "-d needs --name"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--name", ".hidden"), -EINVAL);
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--name", ""), -EINVAL);
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--name",
			       "a1234567890123456789012345678901234567890123456789012345678901234"),
			 -EINVAL);
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--cpu-weight", "10001"), -EINVAL);
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--cpu-cap", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--memory-limit", "1M"), -EINVAL);
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--cpu-affinity", "0-"), -EINVAL);
	assert_non_null(strstr(err, "--cpu-affinity 0-: not a CPU list"));
	/* the flags name the file, which must exist (test_config.c: the merge) */
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--config", "/nonexistent/f.json"),
			 -ENOENT);
	assert_non_null(strstr(err, "--config /nonexistent/f.json: No such file"));
	config_free(&c);
}

/* The device flags and keys come from devices.c's table. */
#define DEV(key) devices_type(key)
static void test_device_flags(void **state)
{
	struct vm_config c = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--disk", "a.img", "--disk=b.img,readonly",
			       "--rng", "--virtio", "mmio", "--balloon", "64M", "--net", "user"),
			 0);
	assert_int_equal(devices_count(&c.devices, DEV("disk")), 2);
	assert_string_equal(devices_spec(&c.devices, DEV("disk"), 1), "b.img,readonly");
	assert_int_equal(devices_count(&c.devices, DEV("rng")), 1);
	assert_int_equal(c.devices.transport, VIRTIO_TRANSPORT_MMIO);
	assert_string_equal(devices_spec(&c.devices, DEV("balloon"), 0), "64M");
	assert_int_equal(devices_count(&c.devices, DEV("net")), 1);
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--disk"), -EINVAL);
	assert_non_null(strstr(err, "--disk needs a value"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--rng=yes"), -EINVAL);
	assert_non_null(strstr(err, "--rng takes no value"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--virtio", "isa"), -EINVAL);
	assert_non_null(strstr(err, "must be pci or mmio"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--diskette", "x"), -EINVAL);
	assert_non_null(strstr(err, "unknown flag --diskette"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--vsock", "3", "--vsock", "4"), 0);
	assert_string_equal(devices_spec(&c.devices, DEV("vsock"), 0), "4"); /* replaced */
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--net", "user", "--net", "user", "--net",
			       "user", "--net", "user", "--net", "user"),
			 -EINVAL);
	assert_non_null(strstr(err, "--net: at most 4 of them"));

	assert_int_equal(apply(&c,
			       "{\"kernel\":\"k\",\"disk\":[\"a.img\",\"b.img\"],\"rng\":true,"
			       "\"virtio\":\"mmio\",\"balloon\":32,\"net\":\"user\"}",
			       err, sizeof(err)),
			 0);
	assert_int_equal(devices_count(&c.devices, DEV("disk")), 2);
	assert_string_equal(devices_spec(&c.devices, DEV("disk"), 0), "a.img");
	assert_int_equal(devices_count(&c.devices, DEV("rng")), 1);
	assert_int_equal(c.devices.transport, VIRTIO_TRANSPORT_MMIO);
	/* a number is MiB, as for the flag: the balloon reads it so */
	assert_string_equal(devices_spec(&c.devices, DEV("balloon"), 0), "32");
	assert_int_equal(devices_count(&c.devices, DEV("net")), 1);
	config_free(&c);
	assert_int_equal(apply(&c, "{\"kernel\":\"k\",\"balloon\":\"12Q\"}", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "g.json: balloon 12Q: not a size"));
	assert_int_equal(PARSE(&c, err, "--kernel", "k", "--balloon", "12Q"), -EINVAL);
	assert_non_null(strstr(err, "--balloon 12Q: not a size"));
	assert_int_equal(apply(&c, "{\"kernel\":\"k\",\"rng\":1}", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "g.json: rng: must be true or false"));
	config_free(&c);
	assert_int_equal(apply(&c, "{\"kernel\":\"k\",\"virtio\":[\"pci\"]}", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "g.json: virtio: must be a string"));
	config_free(&c);
	assert_int_equal(apply(&c, "{\"kernel\":\"k\",\"virtio\":\"isa\"}", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "g.json: virtio isa: must be pci or mmio"));
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_file),	cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bad_keys),	cmocka_unit_test(test_flags_override),
		cmocka_unit_test(test_toolstack_flags), cmocka_unit_test(test_device_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
