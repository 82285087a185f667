/* tls_module.c - migration's TLS lives in a module of its own,
 * build/cvisor-tls.so (tls.c, the only code that links OpenSSL): the
 * cvisor binary maps libssl and libcrypto only in a process that asks for
 * TLS (a target given --tls-psk or --tls-creds, the `cvisor migrate`
 * client), never in the monitor of every guest. This file finds the
 * module, checks its ABI, and forwards the mig_tls_* calls to it.
 *
 * Where: next to the running binary (the build tree: build/cvisor and
 * build/cvisor-tls.so), else ../lib/cvisor/ from the binary's directory
 * (`make install`: PREFIX/bin/cvisor and PREFIX/lib/cvisor/cvisor-tls.so).
 * Never a search path: only the file that was installed with this binary.
 * dlopen opens the file and maps it executable, which the monitor's
 * seccomp filters refuse: a target loads it at start (migrate_incoming_check)
 * and builds its context then, before any filter and before the jail. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migrate_priv.h"

#define TLS_MODULE "cvisor-tls.so"

static const struct mig_tls_module *mod;

/* The module's candidate paths, from the binary's directory. */
static int module_paths(char paths[2][PATH_MAX], char *err, size_t errlen)
{
	char exe[PATH_MAX - 64], *slash; /* room for the suffixes below */
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return cv_errf(err, errlen, -errno,
			       "TLS migration needs " TLS_MODULE ": /proc/self/exe: %s",
			       strerror(errno));
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	snprintf(paths[0], PATH_MAX, "%s/" TLS_MODULE, exe);
	snprintf(paths[1], PATH_MAX, "%s/../lib/cvisor/" TLS_MODULE, exe);
	return 0;
}

int mig_tls_module_load(char *err, size_t errlen)
{
	char paths[2][PATH_MAX];
	const struct mig_tls_module *m;
	unsigned int i = 0;
	void *h;
	int r;

	if (mod)
		return 0;
	if ((r = module_paths(paths, err, errlen)))
		return r;
	if (access(paths[0], F_OK))
		i = 1;
	if (access(paths[i], F_OK))
		return cv_errf(err, errlen, -ENOENT,
			       "TLS migration needs " TLS_MODULE ": not found at %s or %s "
			       "(`make` builds it beside the binary, `make install` puts it in "
			       "lib/cvisor)",
			       paths[0], paths[1]);
	if (!(h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL)))
		return cv_errf(err, errlen, -ENOEXEC, "TLS migration needs " TLS_MODULE ": %s",
			       dlerror());
	m = dlsym(h, "cvisor_tls_module");
	if (!m || m->abi != MIG_TLS_ABI || m->size != sizeof(*m)) {
		r = cv_errf(err, errlen, -ENOEXEC,
			    "TLS migration needs " TLS_MODULE ": %s is not this cvisor's module "
			    "(%s; reinstall it with this binary)",
			    paths[i], !m ? "no cvisor_tls_module in it" : "another ABI version");
		dlclose(h);
		return r;
	}
	mod = m; /* never unloaded: its contexts live as long as the process */
	return 0;
}

int mig_tls_ctx_new(const struct migrate_tls *t, const char *addr, bool server,
		    struct mig_tls_ctx **out, char *err, size_t errlen)
{
	struct migrate_tls c = { .psk_file = t->psk_file,
				 .creds_dir = t->creds_dir,
				 .insecure = t->insecure };
	struct mig_tls_params p = { .server = server, .send = mig_send_iov };
	char id[MIG_PSK_ID_MAX + 1];
	uint8_t key[MIG_PSK_KEY_SIZE];
	int r = migrate_tls_check(&c, addr, server, err, errlen);

	*out = NULL;
	if (r || (!c.psk_file && !c.creds_dir))
		goto out;
	if ((r = mig_tls_module_load(err, errlen)))
		goto out;
	if (c.psk_file) {
		if ((r = mig_psk_read(c.psk_file, id, key, err, errlen)))
			goto out;
		p.psk_identity = id;
		p.psk_key = key;
	} else {
		p.creds_dir = c.creds_dir;
	}
	r = mod->ctx_new(&p, out, err, errlen);
out:
	memset(key, 0, sizeof(key));
	migrate_tls_free(&c);
	return r;
}

void mig_tls_ctx_free(struct mig_tls_ctx *c)
{
	if (c)
		mod->ctx_free(c);
}

int mig_tls_start(struct mig_tls_ctx *c, int fd, const char *host, int timeout_ms,
		  int (*wait)(void *ctx), void *ctx, struct mig_tls **out, char *err, size_t errlen)
{
	return mod->start(c, fd, host, timeout_ms, wait, ctx, out, err, errlen);
}

int mig_tls_send_iov(struct mig_tls *t, const struct iovec *iov, int n, int (*wait)(void *ctx),
		     void *ctx)
{
	return mod->send_iov(t, iov, n, wait, ctx);
}

ssize_t mig_tls_readv(struct mig_tls *t, const struct iovec *iov, unsigned int n)
{
	return mod->readv(t, iov, n);
}

const char *mig_tls_error(const struct mig_tls *t)
{
	return mod->error(t);
}

void mig_tls_free(struct mig_tls *t)
{
	if (t)
		mod->free(t);
}
