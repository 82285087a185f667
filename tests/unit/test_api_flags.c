/* test_api_flags.c - Cloud Hypervisor's direct VM flags to a vm.create
 * body (src/api/chflags.c): the body each command line makes, which the
 * translator then takes, and every malformed value refused with one line
 * naming the flag. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cvisor/api.h"

static char err[1024];

/* Run argv (NULL-terminated, argv[0] the program) through the flags:
 * 0 and the body in *body, or the error (err holds the line). Flags that
 * are not VM flags fail the test. */
static int flags(char **body, char **argv)
{
	struct api_vm_flags f = { 0 };
	int argc = 0, r = 0;

	while (argv[argc])
		argc++;
	err[0] = '\0';
	*body = NULL;
	for (int i = 1; !r && i < argc; i++) {
		r = api_vm_flag(&f, argc, argv, &i, err, sizeof(err));
		if (!r)
			fail_msg("%s: not a VM flag", argv[i]);
		r = r < 0 ? r : 0;
	}
	if (!r)
		r = api_vm_flags_body(&f, body, err, sizeof(err));
	api_vm_flags_free(&f);
	return r;
}

#define ARGV(...) ((char *[]){ "cloud-hypervisor", __VA_ARGS__, NULL })

static void expect_body(char **argv, const char *want)
{
	char *body;

	if (flags(&body, argv))
		fail_msg("refused: %s", err);
	assert_string_equal(body, want);
	free(body);
}

static void expect_error(char **argv, const char *want)
{
	char *body;

	assert_int_equal(flags(&body, argv), -EINVAL);
	assert_null(body);
	assert_string_equal(err, want);
	assert_null(strchr(err, '\n'));
}

static void test_bodies(void **state)
{
	(void)state;
	expect_body(ARGV("--kernel", "/k", "--cmdline", "console=ttyS0,115200 quiet", "--initramfs",
			 "/rd"),
		    "{\"payload\":{\"kernel\":\"\\/k\",\"cmdline\":\"console=ttyS0,115200 quiet\","
		    "\"initramfs\":\"\\/rd\"}}");
	expect_body(
		ARGV("--kernel=/k", "--cpus", "boot=2,max=2", "--memory=size=1G,mergeable=on"),
		"{\"payload\":{\"kernel\":\"\\/k\"},\"cpus\":{\"boot_vcpus\":2,\"max_vcpus\":2},"
		"\"memory\":{\"size\":1073741824,\"mergeable\":true}}");
	/* Sizes: bytes, K, M, G. */
	expect_body(ARGV("--kernel", "/k", "--memory", "size=524288K"),
		    "{\"payload\":{\"kernel\":\"\\/k\"},\"memory\":{\"size\":536870912}}");
	/* --disk: several values after one flag, and the flag again. */
	expect_body(
		ARGV("--kernel", "/k", "--disk", "path=/a", "path=/b,readonly=on", "--disk",
		     "path=\"/c d\",direct=true"),
		"{\"payload\":{\"kernel\":\"\\/k\"},\"disks\":[{\"path\":\"\\/a\"},"
		"{\"path\":\"\\/b\",\"readonly\":true},{\"path\":\"\\/c d\",\"direct\":true}]}");
	expect_body(ARGV("--kernel", "/k", "--net", "tap=t0,mac=52:54:00:00:00:01", "tap=t1"),
		    "{\"payload\":{\"kernel\":\"\\/k\"},\"net\":[{\"tap\":\"t0\",\"mac\":"
		    "\"52:54:00:00:00:01\"},{\"tap\":\"t1\"}]}");
	expect_body(ARGV("--kernel", "/k", "--serial", "file=/tmp/s.log", "--console", "pty"),
		    "{\"payload\":{\"kernel\":\"\\/k\"},\"serial\":{\"file\":\"\\/tmp\\/s.log\","
		    "\"mode\":\"File\"},\"console\":{\"mode\":\"Pty\"}}");
	expect_body(ARGV("--kernel", "/k", "--rng", "--balloon", "size=64M", "--vsock",
			 "cid=3,socket=/v.sock"),
		    "{\"payload\":{\"kernel\":\"\\/k\"},\"rng\":{},\"balloon\":{\"size\":67108864},"
		    "\"vsock\":{\"cid\":3,\"socket\":\"\\/v.sock\"}}");
}

/* Each command line (after argv[0]) and the one line it is refused with. */
static const struct {
	char *argv[8];
	const char *err;
} refusals[] = {
	{ { "--kernel", "/k", "--cpus", "boot=x" }, "--cpus boot=x: boot wants a number" },
	{ { "--kernel", "/k", "--memory", "size=12Q" },
	  "--memory size=12Q: size wants a size (bytes, or a number with K, M or G)" },
	{ { "--kernel", "/k", "--disk", "readonly=on" }, "--disk: disks[0].path: missing" },
	{ { "--kernel", "/k", "--disk" }, "--disk needs a value" },
	{ { "--kernel", "/k", "--disk", "--cpus", "boot=1" }, "--disk needs a value" },
	{ { "--kernel", "/k", "--disk", "path=/a,readonly" },
	  "--disk path=/a,readonly: readonly needs a value (readonly=...)" },
	{ { "--kernel", "/k", "--disk", "path=/a,readonly=yes" },
	  "--disk readonly=yes: readonly wants on or off" },
	{ { "--kernel", "/k", "--disk", "path=/a,colour=red" },
	  "--disk path=/a,colour=red: unknown option \"colour\"" },
	{ { "--kernel", "/k", "--disk", "path=\"/a" },
	  "--disk path=\"/a: unbalanced quotes or brackets" },
	{ { "--kernel", "/k", "--cpus", "boot=1", "--cpus", "boot=2" },
	  "--cpus: given twice (it takes one value)" },
	{ { "--kernel", "/k", "--cpus", "boot=1,max=2" },
	  "--cpus: cpus.max_vcpus: 2 with boot_vcpus 1: CPU hotplug unsupported (give "
	  "them equal)" },
	{ { "--kernel", "/k", "--serial", "socket=/s" },
	  "--serial socket=/s: want off, null, tty, pty or file=PATH (cvisor has no "
	  "socket backend)" },
	{ { "--kernel", "/k", "--net", "tap=t0,ip=10.0.0.1" },
	  "--net: net[0].ip: not supported by cvisor (cvisor takes an existing tap by "
	  "name (tap, mac))" },
	{ { "--kernel", "/k", "--fs", "tag=x" },
	  "--fs: not supported by cvisor (see README: the Cloud Hypervisor flags)" },
	{ { "--cpus", "boot=2" },
	  "the VM flags need --kernel (without it, vm.create on the API socket makes "
	  "the VM)" },
};

static void test_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		char *argv[10] = { "cloud-hypervisor" };

		memcpy(argv + 1, refusals[i].argv, sizeof(refusals[i].argv));
		expect_error(argv, refusals[i].err);
	}
}

/* Not a VM flag: left to the caller, argv untouched. */
static void test_others(void **state)
{
	struct api_vm_flags f = { 0 };
	char **argv = ARGV("--api-socket", "/s");
	char *body;
	int i = 1;

	(void)state;
	assert_int_equal(api_vm_flag(&f, 3, argv, &i, err, sizeof(err)), 0);
	assert_int_equal(i, 1);
	assert_int_equal(api_vm_flags_body(&f, &body, err, sizeof(err)), 0);
	assert_null(body);
	api_vm_flags_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bodies),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_others),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
