/* incoming.c - `cvisor run --incoming`'s own flags: where to listen, how
 * long to wait, and the host resources the incoming guest gets here (its
 * disks, networks and vsock; resources.c maps them onto the stream's
 * CONFIG). Parsed when read (migrate_incoming_flag, pure), then checked
 * against this host once, before the monitor starts
 * (migrate_incoming_check), so that a missing directory or file fails at
 * start with one line rather than when a source connects. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/virtio_net.h"
#include "cvisor/virtio_vsock.h"
#include "migrate_priv.h"

#define MAX_TIMEOUT_S 2592000U /* 30 days: the milliseconds fit an unsigned int */

/* A repeatable flag's next slot: 1 taken, or -EINVAL when full. */
static int add_value(const char **slot, unsigned int *n, unsigned int max, const char *flag,
		     const char *value, char *err, size_t errlen)
{
	if (!value || !value[0])
		return cv_errf(err, errlen, -EINVAL, "%s needs a value", flag);
	if (*n >= max)
		return cv_errf(err, errlen, -EINVAL, "%s: at most %u", flag, max);
	slot[(*n)++] = value;
	return 1;
}

/* The flags that name the guest's host resources here. */
static int resource_flag(struct migrate_incoming *in, const char *flag, const char *value,
			 char *err, size_t errlen)
{
	if (!strcmp(flag, "--disk")) {
		if (value && strchr(value, ','))
			return cv_errf(err, errlen, -EINVAL,
				       "--disk %s: on the target, only a path without ',' (the "
				       "guest's disk options come from the source)",
				       value);
		return add_value(in->disks, &in->ndisks, MIG_MAX_DISKS, flag, value, err, errlen);
	}
	if (!strcmp(flag, "--net"))
		return add_value(in->nets, &in->nnets, MIGRATE_MAX_NETS, flag, value, err, errlen);
	if (!strcmp(flag, "--vsock")) {
		if (!value || !value[0])
			return cv_errf(err, errlen, -EINVAL, "--vsock needs CID[,uds=PATH]");
		in->vsock = value;
		return 1;
	}
	return 0;
}

int migrate_incoming_flag(struct migrate_incoming *in, const char *flag, const char *value,
			  char *err, size_t errlen)
{
	char host[256], port[8], why[200];
	uint64_t secs;
	int r;

	if (!strcmp(flag, "--incoming")) {
		if (!value || migrate_parse_addr(value, host, sizeof(host), port, sizeof(port), why,
						 sizeof(why)))
			return cv_errf(err, errlen, -EINVAL, "--incoming %s: %s",
				       value ? value : "(missing)",
				       value ? why : "needs HOST:PORT to listen on");
		in->listen = value;
		return 1;
	}
	if (!strcmp(flag, "--storage-dir")) {
		if (!value || !value[0])
			return cv_errf(err, errlen, -EINVAL, "--storage-dir needs a directory");
		in->storage_dir = value;
		return 1;
	}
	if (!strcmp(flag, "--incoming-timeout")) {
		if (!value || cv_parse_uint(value, 1, MAX_TIMEOUT_S, &secs))
			return cv_errf(err, errlen, -EINVAL,
				       "--incoming-timeout %s: want whole seconds, 1 to %u",
				       value ? value : "(missing)", MAX_TIMEOUT_S);
		in->accept_timeout_ms = (unsigned int)secs * 1000;
		return 1;
	}
	if ((r = migrate_tls_flag(&in->tls, flag, value, err, errlen)))
		return r;
	return resource_flag(in, flag, value, err, errlen);
}

/* *path made absolute into a slot of in->owned; it must exist and be a
 * directory (dir) or not one. */
static int resolve(struct migrate_incoming *in, const char **path, bool dir, char *err,
		   size_t errlen)
{
	unsigned int k = 0;
	struct stat st;
	char *abs;

	/* The last slot is vsock_check's. */
	while (k < MIG_MAX_DISKS + 1 && in->owned[k])
		k++;
	if (k == MIG_MAX_DISKS + 1)
		return cv_errf(err, errlen, -EINVAL, "too many paths");
	if (!(abs = realpath(*path, NULL)) || stat(abs, &st)) {
		int r = -errno;

		free(abs);
		return cv_errf(err, errlen, r, "%s %s: %s", dir ? "--storage-dir" : "--disk", *path,
			       strerror(-r));
	}
	in->owned[k] = abs;
	*path = abs;
	if (dir && !S_ISDIR(st.st_mode))
		return cv_errf(err, errlen, -ENOTDIR, "--storage-dir %s: not a directory", abs);
	if (!dir && S_ISDIR(st.st_mode))
		return cv_errf(err, errlen, -EISDIR, "--disk %s: a directory, not a disk image",
			       abs);
	if (dir && access(abs, W_OK | X_OK))
		return cv_errf(err, errlen, -errno, "--storage-dir %s: not writable (%s)", abs,
			       strerror(errno));
	if (dir && strchr(abs, ','))
		return cv_errf(err, errlen, -EINVAL, "--storage-dir %s: the path may not hold ','",
			       abs);
	return 0;
}

/* --vsock's uds= made absolute against the current directory (a detached
 * monitor leaves it). */
static int vsock_check(struct migrate_incoming *in, char *err, size_t errlen)
{
	struct virtio_vsock_config c;
	struct cv_error e = { 0 };
	const char *uds = strstr(in->vsock, ",uds=");
	char cwd[PATH_MAX];

	if (virtio_vsock_parse(in->vsock, &c, &e))
		return cv_errf(err, errlen, -EINVAL, "%s", e.msg);
	if (!uds || uds[5] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)))
		return cv_errf(err, errlen, -errno, "--vsock: %s", strerror(errno));
	if (asprintf(&in->owned[MIG_MAX_DISKS + 1], "%.*s,uds=%s/%s", (int)(uds - in->vsock),
		     in->vsock, cwd, uds + 5) < 0) {
		in->owned[MIG_MAX_DISKS + 1] = NULL;
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	}
	in->vsock = in->owned[MIG_MAX_DISKS + 1];
	return 0;
}

int migrate_incoming_check(struct migrate_incoming *in, char *err, size_t errlen)
{
	struct virtio_net_config nc;
	struct cv_error e = { 0 };
	int r;

	if (in->storage_dir && (r = resolve(in, &in->storage_dir, true, err, errlen)))
		return r;
	for (unsigned int i = 0; i < in->ndisks; i++)
		if ((r = resolve(in, &in->disks[i], false, err, errlen)))
			return r;
	for (unsigned int i = 0; i < in->nnets; i++)
		if (virtio_net_parse(in->nets[i], i, &nc, &e))
			return cv_errf(err, errlen, -EINVAL, "%s", e.msg);
	if (in->listen && (r = migrate_tls_check(&in->tls, in->listen, true, err, errlen)))
		return r;
	/* Now, not when a source comes: the module's dlopen and the key's
	 * files are out of reach once the filters and the jail are in. */
	if (in->listen && !in->tlsc &&
	    (r = mig_tls_ctx_new(&in->tls, in->listen, true, &in->tlsc, err, errlen)))
		return r;
	return in->vsock ? vsock_check(in, err, errlen) : 0;
}

void migrate_incoming_free(struct migrate_incoming *in)
{
	mig_tls_ctx_free(in->tlsc);
	in->tlsc = NULL;
	migrate_tls_free(&in->tls);
	for (unsigned int k = 0; k < MIG_MAX_DISKS + 2; k++) {
		free(in->owned[k]);
		in->owned[k] = NULL;
	}
}
