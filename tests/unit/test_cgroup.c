/* test_cgroup.c - the guest's cgroup on a fake cgroupfs in a temporary
 * directory: which files get which values, on v2 and on v1, and the
 * errors when a controller is missing. Real cgroupfs creates the control
 * files of a new cgroup by itself; here the test creates them first (an
 * existing directory is reused, as after a killed guest). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cvisor/cgroup.h"

static char root[64];

static void mk(const char *rel)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_true(mkdir(p, 0755) == 0 || errno == EEXIST);
}

static void touch(const char *rel, const char *content)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

/* Set rel's mtime to 1000 s after the epoch; unwritten: still so. */
static void age(const char *rel)
{
	const struct timespec t[2] = { { 1000, 0 }, { 1000, 0 } };
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
}

static bool unwritten(const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return stat(p, &st) == 0 && st.st_mtim.tv_sec == 1000;
}

static void expect(const char *rel, const char *want)
{
	char p[PATH_MAX], buf[256] = "";
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	f = fopen(p, "r");
	assert_non_null(f);
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	if (strcmp(buf, want))
		fail_msg("%s: '%s', want '%s'", rel, buf, want);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/cvisor-cgtest.XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void test_v2(void **state)
{
	static const char *const files[] = { "cgroup.subtree_control", "cpu.weight", "cpu.max",
					     "memory.max", "cgroup.procs" };
	struct cgroup_limits lim = { .weight = 250, .cap = 150, .memory = 1ULL << 30 };
	struct cgroup cg;
	char why[512], p[PATH_MAX];

	(void)state;
	touch("cgroup.controllers", "cpuset cpu io memory pids\n");
	touch("cgroup.subtree_control", "");
	mk("user.slice");
	touch("user.slice/cgroup.procs", "");
	mk("cvisor");
	mk("cvisor/g1");
	touch("cvisor/cgroup.subtree_control", "");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "cvisor/g1/%s", files[i]);
		touch(p, "");
	}
	assert_int_equal(
		cgroup_enter_at(&cg, root, "0::/user.slice\n", "g1", &lim, 4321, why, sizeof(why)),
		0);
	assert_int_equal(cg.version, 2);
	snprintf(p, sizeof(p), "%s/cvisor/g1", root);
	assert_string_equal(cgroup_path(&cg), p);
	expect("cgroup.subtree_control", "+cpu +memory");
	expect("cvisor/cgroup.subtree_control", "+cpu +memory");
	expect("cvisor/g1/cpu.weight", "250");
	expect("cvisor/g1/cpu.max", "150000 100000");
	expect("cvisor/g1/memory.max", "1073741824");
	expect("cvisor/g1/cgroup.procs", "4321");
	cgroup_leave(&cg);
	/* back home before the (here impossible) rmdir */
	expect("user.slice/cgroup.procs", "4321");
	assert_string_equal(cgroup_path(&cg), "");

	/* no memory controller: fine without a limit, an error with one */
	touch("cgroup.controllers", "cpu\n");
	touch("cvisor/g1/cpu.max", "");
	lim.cap = 0;
	lim.memory = 0;
	assert_int_equal(cgroup_enter_at(&cg, root, "0::/\n", "g1", &lim, 1, why, sizeof(why)), 0);
	expect("cvisor/g1/cpu.max", "max 100000");
	cgroup_leave(&cg);
	lim.memory = 64ULL << 20;
	assert_int_equal(cgroup_enter_at(&cg, root, "0::/\n", "g1", &lim, 1, why, sizeof(why)),
			 -ENOTSUP);
	assert_non_null(strstr(why, "without the memory controller"));
}

static void test_v1(void **state)
{
	struct cgroup_limits lim = { .weight = 200, .cap = 50, .memory = 512ULL << 20 };
	struct cgroup cg;
	char why[512];

	(void)state;
	mk("cpu");
	touch("cpu/cgroup.procs", "");
	mk("cpu/cvisor");
	mk("cpu/cvisor/g2");
	touch("cpu/cvisor/g2/cpu.shares", "");
	touch("cpu/cvisor/g2/cpu.cfs_period_us", "");
	touch("cpu/cvisor/g2/cpu.cfs_quota_us", "");
	touch("cpu/cvisor/g2/cgroup.procs", "");
	mk("memory");
	touch("memory/cgroup.procs", "");
	mk("memory/box");
	touch("memory/box/cgroup.procs", "");
	mk("memory/box/cvisor");
	mk("memory/box/cvisor/g2");
	touch("memory/box/cvisor/g2/memory.limit_in_bytes", "");
	touch("memory/box/cvisor/g2/cgroup.procs", "");
	/* the memory cgroup nests under the monitor's own (a limited box) */
	assert_int_equal(cgroup_enter_at(&cg, root,
					 "9:name=systemd:/\n4:memory:/box\n1:cpu,cpuacct:/\n", "g2",
					 &lim, 77, why, sizeof(why)),
			 0);
	assert_int_equal(cg.version, 1);
	assert_int_equal(cg.ndirs, 2);
	expect("cpu/cvisor/g2/cpu.shares", "2048");
	expect("cpu/cvisor/g2/cpu.cfs_period_us", "100000");
	expect("cpu/cvisor/g2/cpu.cfs_quota_us", "50000");
	expect("cpu/cvisor/g2/cgroup.procs", "77");
	expect("memory/box/cvisor/g2/memory.limit_in_bytes", "536870912");
	expect("memory/box/cvisor/g2/cgroup.procs", "77");
	cgroup_leave(&cg);
	expect("cpu/cgroup.procs", "77");
	expect("memory/box/cgroup.procs", "77");

	/* a control file the kernel refuses (here: missing) fails the whole */
	unlink(strcat(strcpy(why, root), "/cpu/cvisor/g2/cpu.cfs_quota_us"));
	assert_int_equal(cgroup_enter_at(&cg, root, "1:cpu:/\n4:memory:/box\n", "g2", &lim, 77, why,
					 sizeof(why)),
			 -ENOENT);
	assert_non_null(strstr(why, "cpu.cfs_quota_us"));
	assert_int_equal(cg.ndirs, 0);
}

/* v1 without a memory limit: the cpu cgroup only (a memory cgroup costs
 * the host memory per guest and would hold nothing the guest asked for). */
static void test_v1_no_memory_limit(void **state)
{
	struct cgroup_limits lim = { .weight = 100 };
	struct cgroup cg;
	char why[512], path[PATH_MAX + 64];

	(void)state;
	mk("cpu");
	touch("cpu/cgroup.procs", "");
	mk("memory");
	touch("memory/cgroup.procs", "");
	mk("cpu/cvisor");
	mk("cpu/cvisor/g4");
	touch("cpu/cvisor/g4/cpu.shares", "");
	/* A new cgroup's defaults, as the kernel shows them: left unwritten
	 * (their mtime stays in 1970), since each such write walks every task
	 * group on the host. */
	touch("cpu/cvisor/g4/cpu.cfs_period_us", "100000\n");
	touch("cpu/cvisor/g4/cpu.cfs_quota_us", "-1\n");
	age("cpu/cvisor/g4/cpu.cfs_period_us");
	age("cpu/cvisor/g4/cpu.cfs_quota_us");
	touch("cpu/cvisor/g4/cgroup.procs", "");
	assert_int_equal(cgroup_enter_at(&cg, root, "4:memory:/\n1:cpu,cpuacct:/\n", "g4", &lim, 78,
					 why, sizeof(why)),
			 0);
	assert_int_equal(cg.ndirs, 1);
	expect("cpu/cvisor/g4/cpu.shares", "1024");
	assert_true(unwritten("cpu/cvisor/g4/cpu.cfs_period_us"));
	assert_true(unwritten("cpu/cvisor/g4/cpu.cfs_quota_us"));
	expect("cpu/cvisor/g4/cgroup.procs", "78");
	snprintf(path, sizeof(path), "%s/memory/cvisor", root);
	assert_int_equal(access(path, F_OK), -1);
	cgroup_leave(&cg);
}

static void test_none(void **state)
{
	struct cgroup_limits lim = { .weight = 100 };
	struct cgroup cg;
	char why[512];

	(void)state;
	assert_int_equal(cgroup_enter_at(&cg, root, "0::/\n", "g3", &lim, 1, why, sizeof(why)),
			 -ENOTSUP);
	assert_non_null(strstr(why, "no cpu controller"));
	cgroup_leave(&cg); /* harmless after a failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1_no_memory_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_none, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
