/* limits.c - which host limit a resource error ran into (host_limits.h).
 * Everything is read when the error happens, from /proc and the cgroup
 * files of this process, so the hint names what is full now. */
#include "cvisor/host_limits.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cvisor/cgroup.h"

/* Within this many tasks of a task limit counts as reached: other
 * processes start and end while the guest's monitor fails. */
#define TASKS_SLACK 64
/* Pids below 300 are not handed out again once pid_max wrapped
 * (RESERVED_PIDS in the kernel's kernel/pid.c). */
#define PIDS_RESERVED 300

/* The first number in file dir/name (dir may be NULL); -1 when it cannot be
 * read or says "max". */
static long long read_num(const char *dir, const char *name)
{
	char path[PATH_MAX + 64], buf[64];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f) || sscanf(buf, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* A field of /proc/meminfo in KiB, -1 when missing. */
static long long meminfo_kib(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long long v = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

/* The host's tasks (threads), from the fourth field of /proc/loadavg. */
static long long host_tasks(void)
{
	long long run, all = -1;
	FILE *f = fopen("/proc/loadavg", "re");

	if (f && fscanf(f, "%*s %*s %*s %lld/%lld", &run, &all) != 2)
		all = -1;
	if (f)
		fclose(f);
	return all;
}

/* The tasks of this pid namespace (kernel.pid_max is its own since Linux
 * 6.14): the entries of /proc/PID/task. Slow with many (one directory a
 * process), so only when a limit is suspected. */
static long long ns_tasks(void)
{
	char path[64];
	long long n = 0;
	struct dirent *e, *t;
	DIR *d = opendir("/proc"), *td;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9') {
			snprintf(path, sizeof(path), "/proc/%.20s/task", e->d_name);
			if (!(td = opendir(path)))
				continue; /* it ended meanwhile */
			while ((t = readdir(td)))
				n += t->d_name[0] != '.';
			closedir(td);
		}
	closedir(d);
	return n;
}

/* The directory above dir, in place; false at the hierarchy's root. */
static bool parent_dir(char *dir, const char *root)
{
	char *slash = strrchr(dir, '/');

	if (!slash || (size_t)(slash - dir) < strlen(root))
		return false;
	*slash = '\0';
	return true;
}

/* A cgroup of this process, or one above it, whose controller ctrl is at
 * its limit: limit_file against usage_file, within slack. */
static bool cgroup_full(const char *ctrl, const char *limit_file, const char *usage_file,
			long long slack, char *dir, size_t len, long long *max, long long *cur)
{
	char root[PATH_MAX];

	if (cgroup_self_dir(ctrl, dir, len))
		return false;
	snprintf(root, sizeof(root), "%s/%s", CGROUP_FS, ctrl);
	if (strncmp(dir, root, strlen(root)))
		snprintf(root, sizeof(root), "%s", CGROUP_FS); /* v2 */
	do {
		*max = read_num(dir, limit_file);
		*cur = read_num(dir, usage_file);
		if (*max >= 0 && *cur >= 0 && *cur + slack >= *max)
			return true;
	} while (parent_dir(dir, root));
	return false;
}

static bool tasks_hint(char *buf, size_t len, bool nproc)
{
	char dir[PATH_MAX];
	long long max, cur, tasks = host_tasks(), pid_max, threads_max;
	struct rlimit rl;

	if (cgroup_full("pids", "pids.max", "pids.current", 2, dir, sizeof(dir), &max, &cur))
		return snprintf(buf, len,
				" (the pids cgroup %s allows %lld tasks and has %lld: raise its "
				"pids.max)",
				dir, max, cur),
		       true;
	pid_max = read_num(NULL, "/proc/sys/kernel/pid_max");
	/* The host's count first (cheap); a pid namespace may have fewer tasks
	 * and a lower pid_max: count its own then. */
	if (tasks >= 0 && pid_max > 0 && tasks + PIDS_RESERVED + TASKS_SLACK >= pid_max &&
	    (cur = ns_tasks()) >= 0 && cur + PIDS_RESERVED + TASKS_SLACK >= pid_max)
		return snprintf(
			       buf, len,
			       " (%lld tasks run and kernel.pid_max is %lld: raise it, e.g. sysctl "
			       "kernel.pid_max=4194304)",
			       cur, pid_max),
		       true;
	threads_max = read_num(NULL, "/proc/sys/kernel/threads-max");
	if (tasks >= 0 && threads_max > 0 && tasks + TASKS_SLACK >= threads_max)
		return snprintf(buf, len,
				" (the host runs %lld tasks and kernel.threads-max is %lld: raise "
				"it with sysctl)",
				tasks, threads_max),
		       true;
	/* Root is not held to RLIMIT_NPROC; how many tasks the user has is not
	 * cheap to count, so say it only when nothing else explains it. */
	if (nproc && geteuid() != 0 && !getrlimit(RLIMIT_NPROC, &rl) &&
	    rl.rlim_cur != RLIM_INFINITY)
		return snprintf(buf, len,
				" (this user may run %llu tasks, RLIMIT_NPROC: raise ulimit -u)",
				(unsigned long long)rl.rlim_cur),
		       true;
	return false;
}

/* This process's memory mappings: the lines of /proc/self/maps. */
static long long maps_count(void)
{
	long long n = 0;
	int c;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static bool memory_hint(char *buf, size_t len)
{
	char dir[PATH_MAX];
	long long avail = meminfo_kib("MemAvailable"), total = meminfo_kib("MemTotal");
	long long maps = maps_count(), max_maps = read_num(NULL, "/proc/sys/vm/max_map_count");
	long long max, cur;
	bool v2 = access(CGROUP_FS "/cgroup.controllers", F_OK) == 0;

	if (avail >= 0 && total > 0 && (avail < 64 * 1024 || avail < total / 50))
		return snprintf(buf, len,
				" (the host has %lld MiB of memory available of %lld MiB: stop "
				"guests or add memory)",
				avail / 1024, total / 1024),
		       true;
	if (cgroup_full("memory", v2 ? "memory.max" : "memory.limit_in_bytes",
			v2 ? "memory.current" : "memory.usage_in_bytes", 1 << 20, dir, sizeof(dir),
			&max, &cur))
		return snprintf(buf, len,
				" (the memory cgroup %s is at its limit of %lld MiB: raise it)",
				dir, max >> 20),
		       true;
	if (maps >= 0 && max_maps > 0 && maps + 16 >= max_maps)
		return snprintf(buf, len,
				" (this process has %lld memory mappings and vm.max_map_count is "
				"%lld: raise it with sysctl)",
				maps, max_maps),
		       true;
	return false;
}

void host_limit_hint(int r, char *buf, size_t len)
{
	struct rlimit rl;
	long long open, max;
	FILE *f;

	buf[0] = '\0';
	switch (r) {
	case -EAGAIN:
		(void)tasks_hint(buf, len, true);
		break;
	case -ENOMEM:
		/* RLIMIT_NPROC fails a fork with EAGAIN, never ENOMEM. */
		if (!tasks_hint(buf, len, false))
			(void)memory_hint(buf, len);
		break;
	case -EMFILE:
		if (!getrlimit(RLIMIT_NOFILE, &rl))
			snprintf(buf, len,
				 " (this process may open %llu files, RLIMIT_NOFILE: raise "
				 "ulimit -n; a monitor needs up to about 40)",
				 (unsigned long long)rl.rlim_cur);
		break;
	case -ENFILE:
		/* fs/file-nr: allocated, free, max */
		f = fopen("/proc/sys/fs/file-nr", "re");
		if (f && fscanf(f, "%lld %*d %lld", &open, &max) == 2)
			snprintf(buf, len,
				 " (the host has %lld files open and fs.file-max is %lld: raise "
				 "it with sysctl)",
				 open, max);
		if (f)
			fclose(f);
		break;
	default:
		break;
	}
}

void host_limit_explain(struct cv_error *e)
{
	size_t n = strlen(e->msg);

	if (e->code && n + 1 < sizeof(e->msg))
		host_limit_hint(e->code, e->msg + n, sizeof(e->msg) - n);
}
