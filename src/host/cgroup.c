/* cgroup.c - one cgroup per guest (see cgroup.h for where it lives).
 *
 * The whole monitor process moves in before the VM is built, so guest
 * memory is charged to the guest's cgroup and the vCPU threads, created
 * later, inherit it. Writing a pid to cgroup.procs moves every thread of
 * the process on v1 and v2 alike. */
#include "cvisor/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int why_errno(char *why, size_t whylen, int r, const char *fmt, ...) CV_PRINTF(4, 5);
static int why_errno(char *why, size_t whylen, int r, const char *fmt, ...)
{
	char what[PATH_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(why, whylen, "%s: %s", what, strerror(-r));
	return r;
}

static int write_file(const char *dir, const char *file, const char *fmt, ...) CV_PRINTF(3, 4);
static int write_file(const char *dir, const char *file, const char *fmt, ...)
{
	char path[PATH_MAX + 64], val[64];
	va_list ap;
	ssize_t w;
	int fd, n, r = 0;

	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* cgroupfs takes a value in one write. */
	w = write(fd, val, (size_t)n);
	if (w < 0)
		r = -errno;
	else if (w != n)
		r = -EIO;
	close(fd);
	return r;
}

/* write_file, unless dir/file already reads as that value. For the CPU
 * bandwidth files (cpu.cfs_period_us, cpu.cfs_quota_us, cpu.max): the
 * kernel checks every write against every task group on the host
 * (tg_set_bandwidth walks the tree), so with 10,000 guests two such
 * writes a start took a fifth of the host's CPU and the start rate fell
 * from 371 a second to 93 (bench/RESULTS.md). A new cgroup already holds
 * the defaults an uncapped guest wants. */
static int set_file(const char *dir, const char *file, const char *fmt, ...) CV_PRINTF(3, 4);
static int set_file(const char *dir, const char *file, const char *fmt, ...)
{
	char path[PATH_MAX + 64], val[64], cur[66];
	va_list ap;
	ssize_t n;
	int fd;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, cur, sizeof(cur) - 1);
		close(fd);
		if (n > 0 && cur[n - 1] == '\n')
			n--;
		if (n >= 0 && (size_t)n == strlen(val) && !memcmp(cur, val, (size_t)n))
			return 0;
	}
	return write_file(dir, file, "%s", val);
}

static bool exists(const char *dir, const char *file)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

/* Does the space-separated list in file dir/cgroup.controllers name ctrl? */
static bool has_controller(const char *dir, const char *ctrl)
{
	char path[PATH_MAX + 64], buf[512], *tok, *save;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f))
		for (tok = strtok_r(buf, " \n", &save); tok && !found;
		     tok = strtok_r(NULL, " \n", &save))
			found = !strcmp(tok, ctrl);
	fclose(f);
	return found;
}

/* The path of the process's cgroup in the hierarchy of ctrl ("" for the
 * v2 line "0::/path"). Returns 0 or -ENOENT. */
static int self_path(const char *self_cgroup, const char *ctrl, char *out, size_t outlen)
{
	const char *line = self_cgroup;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		char buf[PATH_MAX + 128], *ctrls, *path, *c, *save;

		if (n < sizeof(buf)) {
			memcpy(buf, line, n);
			buf[n] = '\0';
			ctrls = strchr(buf, ':');
			path = ctrls ? strchr(ctrls + 1, ':') : NULL;
			if (path) {
				*path++ = '\0';
				ctrls++;
				if (!ctrl[0] && !ctrls[0]) {
					snprintf(out, outlen, "%s", path);
					return 0;
				}
				for (c = strtok_r(ctrls, ",", &save); c && ctrl[0];
				     c = strtok_r(NULL, ",", &save)) {
					if (!strcmp(c, ctrl)) {
						snprintf(out, outlen, "%s", path);
						return 0;
					}
				}
			}
		}
		line = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

/* mkdir parent/cvisor and parent/cvisor/name; a directory left by a guest
 * that was killed is reused. */
static int make_dirs(const char *parent, const char *name, char *dir, size_t dirlen, char *why,
		     size_t whylen)
{
	char mid[PATH_MAX];

	snprintf(mid, sizeof(mid), "%s/cvisor", strcmp(parent, "/") ? parent : "");
	if (mkdir(mid, 0755) < 0 && errno != EEXIST)
		return why_errno(why, whylen, -errno, "%s", mid);
	if ((size_t)snprintf(dir, dirlen, "%s/%s", mid, name) >= dirlen)
		return why_errno(why, whylen, -ENAMETOOLONG, "%s", mid);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return why_errno(why, whylen, -errno, "%s", dir);
	return 0;
}

static int enter_v2(struct cgroup *cg, const char *root, const char *self, const char *name,
		    const struct cgroup_limits *lim, char *why, size_t whylen)
{
	char mid[PATH_MAX], cur[PATH_MAX];
	const char *ctrls;
	bool mem = has_controller(root, "memory");
	int r;

	if (!has_controller(root, "cpu"))
		return why_errno(why, whylen, -ENOTSUP, "%s: cgroup v2 without the cpu controller",
				 root);
	if (lim->memory && !mem)
		return why_errno(why, whylen, -ENOTSUP,
				 "%s: cgroup v2 without the memory controller", root);
	if (self_path(self, "", cur, sizeof(cur)))
		return why_errno(why, whylen, -ENOENT, "/proc/self/cgroup: no v2 entry");
	snprintf(cg->home[0], sizeof(cg->home[0]), "%s%s", root, strcmp(cur, "/") ? cur : "");
	/* v2 puts the guests beside the monitor's own cgroup, not below it: a
	 * cgroup with processes may not hand controllers to children. The
	 * controllers must be enabled on every level above the guest's. */
	ctrls = mem ? "+cpu +memory" : "+cpu";
	snprintf(mid, sizeof(mid), "%s/cvisor", root);
	if ((r = write_file(root, "cgroup.subtree_control", "%s", ctrls)))
		return why_errno(why, whylen, r, "%s/cgroup.subtree_control", root);
	if ((r = make_dirs(root, name, cg->dir[0], sizeof(cg->dir[0]), why, whylen)))
		return r;
	cg->ndirs = 1;
	if ((r = write_file(mid, "cgroup.subtree_control", "%s", ctrls)))
		return why_errno(why, whylen, r, "%s/cgroup.subtree_control", mid);
	if ((r = write_file(cg->dir[0], "cpu.weight", "%u", lim->weight)))
		return why_errno(why, whylen, r, "%s/cpu.weight", cg->dir[0]);
	if (lim->cap)
		r = set_file(cg->dir[0], "cpu.max", "%llu %u",
			     (unsigned long long)lim->cap * CGROUP_CPU_PERIOD_US / 100,
			     CGROUP_CPU_PERIOD_US);
	else
		r = set_file(cg->dir[0], "cpu.max", "max %u", CGROUP_CPU_PERIOD_US);
	if (r)
		return why_errno(why, whylen, r, "%s/cpu.max", cg->dir[0]);
	if (mem) {
		if (lim->memory)
			r = write_file(cg->dir[0], "memory.max", "%llu",
				       (unsigned long long)lim->memory);
		else
			r = write_file(cg->dir[0], "memory.max", "max");
		if (r)
			return why_errno(why, whylen, r, "%s/memory.max", cg->dir[0]);
	}
	return 0;
}

/* One v1 hierarchy: returns 1 when the controller is not mounted. */
static int enter_v1_one(struct cgroup *cg, const char *root, const char *self, const char *ctrl,
			const char *name, const struct cgroup_limits *lim, char *why, size_t whylen)
{
	char mount[PATH_MAX], cur[PATH_MAX];
	char *dir = cg->dir[cg->ndirs], *home = cg->home[cg->ndirs];
	int r;

	snprintf(mount, sizeof(mount), "%s/%s", root, ctrl);
	if (!exists(mount, "cgroup.procs") || self_path(self, ctrl, cur, sizeof(cur)))
		return 1;
	if ((size_t)snprintf(home, PATH_MAX, "%s%s", mount, strcmp(cur, "/") ? cur : "") >=
	    PATH_MAX)
		return why_errno(why, whylen, -ENAMETOOLONG, "%s", mount);
	if ((r = make_dirs(home, name, dir, PATH_MAX, why, whylen)))
		return r;
	cg->ndirs++;
	if (!strcmp(ctrl, "cpu")) {
		/* v1 shares default to 1024 where v2 weights default to 100. */
		unsigned int shares = lim->weight * 1024 / 100;

		if ((r = write_file(dir, "cpu.shares", "%u", shares < 2 ? 2 : shares)))
			return why_errno(why, whylen, r, "%s/cpu.shares", dir);
		if ((r = set_file(dir, "cpu.cfs_period_us", "%u", CGROUP_CPU_PERIOD_US)))
			return why_errno(why, whylen, r, "%s/cpu.cfs_period_us", dir);
		if (lim->cap)
			r = set_file(dir, "cpu.cfs_quota_us", "%llu",
				     (unsigned long long)lim->cap * CGROUP_CPU_PERIOD_US / 100);
		else
			r = set_file(dir, "cpu.cfs_quota_us", "-1");
		if (r)
			return why_errno(why, whylen, r, "%s/cpu.cfs_quota_us", dir);
	} else {
		if (lim->memory)
			r = write_file(dir, "memory.limit_in_bytes", "%llu",
				       (unsigned long long)lim->memory);
		else
			r = write_file(dir, "memory.limit_in_bytes", "-1");
		if (r)
			return why_errno(why, whylen, r, "%s/memory.limit_in_bytes", dir);
	}
	return 0;
}

static int enter_v1(struct cgroup *cg, const char *root, const char *self, const char *name,
		    const struct cgroup_limits *lim, char *why, size_t whylen)
{
	int r = enter_v1_one(cg, root, self, "cpu", name, lim, why, whylen);

	if (r == 1)
		return why_errno(why, whylen, -ENOTSUP, "%s: no cpu controller (v1 or v2)", root);
	if (r)
		return r;
	/* A v1 memory cgroup only for a memory limit: each costs the host
	 * about 60 KiB (an idle tiny guest's whole footprint is about 1 MiB:
	 * bench/RESULTS.md), and a removed one lives on, dying, while page
	 * cache charged to it (the guest's log) stays cached. Without a limit
	 * the monitor's own RSS and PSS are the guest's memory (top, info). */
	if (!lim->memory)
		return 0;
	r = enter_v1_one(cg, root, self, "memory", name, lim, why, whylen);
	if (r == 1)
		return why_errno(why, whylen, -ENOTSUP, "%s/memory: no memory controller", root);
	return r < 0 ? r : 0;
}

int cgroup_enter_at(struct cgroup *cg, const char *fsroot, const char *self_cgroup,
		    const char *name, const struct cgroup_limits *lim, int pid, char *why,
		    size_t whylen)
{
	int r;

	memset(cg, 0, sizeof(*cg));
	cg->pid = pid;
	cg->version = exists(fsroot, "cgroup.controllers") ? 2 : 1;
	if (cg->version == 2)
		r = enter_v2(cg, fsroot, self_cgroup, name, lim, why, whylen);
	else
		r = enter_v1(cg, fsroot, self_cgroup, name, lim, why, whylen);
	for (unsigned int i = 0; !r && i < cg->ndirs; i++)
		if ((r = write_file(cg->dir[i], "cgroup.procs", "%d", pid)))
			why_errno(why, whylen, r, "%s/cgroup.procs", cg->dir[i]);
	if (r)
		cgroup_leave(cg);
	return r;
}

/* The text of /proc/self/cgroup into buf. */
static int read_self(char *buf, size_t len)
{
	ssize_t n;
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

int cgroup_enter(struct cgroup *cg, const char *name, const struct cgroup_limits *lim, char *why,
		 size_t whylen)
{
	char self[4096];
	int r = read_self(self, sizeof(self));

	memset(cg, 0, sizeof(*cg));
	if (r)
		return why_errno(why, whylen, r, "/proc/self/cgroup");
	return cgroup_enter_at(cg, CGROUP_FS, self, name, lim, (int)getpid(), why, whylen);
}

int cgroup_self_dir(const char *ctrl, char *dir, size_t len)
{
	char self[4096], path[PATH_MAX];
	bool v2 = exists(CGROUP_FS, "cgroup.controllers");
	int r = read_self(self, sizeof(self));

	if (r || (r = self_path(self, v2 ? "" : ctrl, path, sizeof(path))))
		return r;
	if (!strcmp(path, "/"))
		path[0] = '\0';
	if (v2)
		r = snprintf(dir, len, "%s%s", CGROUP_FS, path);
	else
		r = snprintf(dir, len, "%s/%s%s", CGROUP_FS, ctrl, path);
	return (size_t)r < len ? 0 : -ENAMETOOLONG;
}

void cgroup_leave(struct cgroup *cg)
{
	for (unsigned int i = 0; i < cg->ndirs; i++) {
		char mid[PATH_MAX];
		char *slash;

		/* A cgroup with a process in it cannot be removed. */
		if (write_file(cg->home[i], "cgroup.procs", "%d", cg->pid))
			cv_debug("cgroup: moving back to %s failed", cg->home[i]);
		if (rmdir(cg->dir[i]) < 0)
			cv_debug("cgroup: rmdir %s: %s", cg->dir[i], strerror(errno));
		/* The shared cvisor/ level goes with the last guest (EBUSY otherwise). */
		snprintf(mid, sizeof(mid), "%s", cg->dir[i]);
		slash = strrchr(mid, '/');
		if (slash) {
			*slash = '\0';
			if (rmdir(mid) < 0 && errno != EBUSY && errno != ENOTEMPTY)
				cv_debug("cgroup: rmdir %s: %s", mid, strerror(errno));
		}
	}
	cg->ndirs = 0;
	cg->version = 0;
}

const char *cgroup_path(const struct cgroup *cg)
{
	return cg->ndirs ? cg->dir[0] : "";
}
