/* tls_config.c - how a migration connection is secured, as the user gives
 * it (--tls-psk FILE, --tls-creds DIR, --insecure on `cvisor migrate` and
 * `cvisor run --incoming`), checked once at start so that a bad file or a
 * plain stream off loopback fails with one line before anything runs.
 * The TLS sessions themselves are tls.c's.
 *
 * PSK FILE. One line, IDENTITY:HEXKEY, as QEMU's tls-creds-psk keys.psk:
 * IDENTITY 1 to 64 letters, digits, '_', '.' or '-'; HEXKEY 64 hex digits
 * (a 32-byte key). The file must be readable by its owner only (mode 0600
 * or 0400): a key others can read authenticates nobody. Make one with
 *     (umask 077; printf 'cvisor:%s\n' "$(openssl rand -hex 32)" > mig.psk)
 *
 * CREDS DIR. As QEMU's tls-creds-x509: ca-cert.pem (the CA both ends
 * trust), and server-cert.pem + server-key.pem on the target,
 * client-cert.pem + client-key.pem on the source. Each end verifies the
 * other's certificate against ca-cert.pem; the source also checks that
 * the target's certificate names the HOST it connects to (an IP address
 * or DNS name in its subjectAltName). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate_priv.h"

int migrate_tls_flag(struct migrate_tls *t, const char *flag, const char *value, char *err,
		     size_t errlen)
{
	if (!strcmp(flag, "--insecure")) {
		t->insecure = true;
		return 2; /* takes no value */
	}
	if (strcmp(flag, "--tls-psk") && strcmp(flag, "--tls-creds"))
		return 0;
	if (!value || !value[0])
		return cv_errf(err, errlen, -EINVAL, "%s needs a %s", flag,
			       flag[6] == 'p' ? "key FILE" : "certificate DIR");
	if (flag[6] == 'p')
		t->psk_file = value;
	else
		t->creds_dir = value;
	return 1;
}

/* The key's identity: 1 to MIG_PSK_ID_MAX of [A-Za-z0-9_.-]. */
static bool identity_ok(const char *s, size_t n)
{
	if (!n || n > MIG_PSK_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

/* Parse "IDENTITY:HEXKEY" (one line, its newline stripped). */
static int psk_parse(const char *path, char *line, char *id, uint8_t *key, char *err, size_t errlen)
{
	char *colon = strchr(line, ':');
	size_t hl;

	if (!colon || !identity_ok(line, (size_t)(colon - line)))
		return cv_errf(err, errlen, -EINVAL,
			       "--tls-psk %s: want one line IDENTITY:HEXKEY (IDENTITY 1 to %d "
			       "letters, digits, '_', '.' or '-')",
			       path, MIG_PSK_ID_MAX);
	hl = strlen(colon + 1);
	for (size_t i = 0; i < hl; i++)
		if (!isxdigit((unsigned char)colon[1 + i]))
			return cv_errf(err, errlen, -EINVAL,
				       "--tls-psk %s: the key is not hex digits", path);
	if (hl != 2 * MIG_PSK_KEY_SIZE)
		return cv_errf(err, errlen, -EINVAL,
			       "--tls-psk %s: the key must be %d bytes (%d hex digits), not %zu "
			       "digits",
			       path, MIG_PSK_KEY_SIZE, 2 * MIG_PSK_KEY_SIZE, hl);
	memcpy(id, line, (size_t)(colon - line));
	id[colon - line] = '\0';
	for (size_t i = 0; i < MIG_PSK_KEY_SIZE; i++) {
		char b[3] = { colon[1 + 2 * i], colon[2 + 2 * i], 0 };

		key[i] = (uint8_t)strtoul(b, NULL, 16);
	}
	return 0;
}

int mig_psk_read(const char *path, char id[MIG_PSK_ID_MAX + 1], uint8_t key[MIG_PSK_KEY_SIZE],
		 char *err, size_t errlen)
{
	char buf[256];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), r;

	if (fd < 0 || fstat(fd, &st)) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return cv_errf(err, errlen, r, "--tls-psk %s: %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		close(fd);
		if (!S_ISREG(st.st_mode))
			return cv_errf(err, errlen, -EINVAL, "--tls-psk %s: not a regular file",
				       path);
		return cv_errf(err, errlen, -EPERM,
			       "--tls-psk %s: group or others may access it (mode %04o): chmod "
			       "600 it",
			       path, (unsigned int)(st.st_mode & 07777));
	}
	n = read(fd, buf, sizeof(buf));
	r = -errno;
	close(fd);
	if (n < 0)
		return cv_errf(err, errlen, r, "--tls-psk %s: %s", path, strerror(-r));
	if ((size_t)n >= sizeof(buf))
		return cv_errf(err, errlen, -EINVAL,
			       "--tls-psk %s: too long for one IDENTITY:HEXKEY line", path);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	r = psk_parse(path, buf, id, key, err, errlen);
	memset(buf, 0, sizeof(buf));
	return r;
}

/* Is every address HOST resolves to a loopback one? */
static bool host_is_loopback(const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	char host[256], port[8], why[160];
	bool lo = true;

	if (migrate_parse_addr(addr, host, sizeof(host), port, sizeof(port), why, sizeof(why)) ||
	    getaddrinfo(host, NULL, &hints, &res))
		return false;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		if (a->ai_family == AF_INET) {
			const struct sockaddr_in *s = (const void *)a->ai_addr;

			lo &= (ntohl(s->sin_addr.s_addr) >> 24) == 127;
		} else if (a->ai_family == AF_INET6) {
			lo &= IN6_IS_ADDR_LOOPBACK(
				&((const struct sockaddr_in6 *)(const void *)a->ai_addr)
					 ->sin6_addr);
		} else {
			lo = false;
		}
	}
	freeaddrinfo(res);
	return lo;
}

/* *path made absolute into t->owned[k]. */
static int absolute(struct migrate_tls *t, unsigned int k, const char **path, const char *flag,
		    char *err, size_t errlen)
{
	char *abs = realpath(*path, NULL);

	if (!abs)
		return cv_errf(err, errlen, -errno, "%s %s: %s", flag, *path, strerror(errno));
	free(t->owned[k]);
	t->owned[k] = abs;
	*path = abs;
	return 0;
}

/* The files an end needs in its --tls-creds DIR. */
static int creds_check(const char *dir, bool server, char *err, size_t errlen)
{
	static const char *const names[2][3] = {
		{ "ca-cert.pem", "client-cert.pem", "client-key.pem" },
		{ "ca-cert.pem", "server-cert.pem", "server-key.pem" },
	};
	char p[PATH_MAX];
	struct stat st;

	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		return cv_errf(err, errlen, -ENOTDIR, "--tls-creds %s: not a directory", dir);
	for (unsigned int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[server][i]);
		if (access(p, R_OK))
			return cv_errf(err, errlen, -ENOENT,
				       "--tls-creds %s: no readable %s (a %s needs %s, %s and %s)",
				       dir, names[server][i], server ? "target" : "source",
				       names[server][0], names[server][1], names[server][2]);
	}
	return 0;
}

int migrate_tls_check(struct migrate_tls *t, const char *addr, bool server, char *err,
		      size_t errlen)
{
	char id[MIG_PSK_ID_MAX + 1];
	uint8_t key[MIG_PSK_KEY_SIZE];
	int r;

	if (t->psk_file && t->creds_dir)
		return cv_errf(err, errlen, -EINVAL,
			       "--tls-psk and --tls-creds: give one of them, not both");
	if (t->psk_file) {
		if ((r = absolute(t, 0, &t->psk_file, "--tls-psk", err, errlen)))
			return r;
		r = mig_psk_read(t->psk_file, id, key, err, errlen);
		memset(key, 0, sizeof(key));
		return r;
	}
	if (t->creds_dir) {
		if ((r = absolute(t, 1, &t->creds_dir, "--tls-creds", err, errlen)))
			return r;
		return creds_check(t->creds_dir, server, err, errlen);
	}
	if (!t->insecure && !host_is_loopback(addr))
		return cv_errf(err, errlen, -EINVAL,
			       "%s is not a loopback address, and a plain migration stream is "
			       "neither authenticated nor encrypted: give --tls-psk FILE or "
			       "--tls-creds DIR (or --insecure on a network you trust)",
			       addr);
	return 0;
}

void migrate_tls_free(struct migrate_tls *t)
{
	for (unsigned int k = 0; k < 2; k++) {
		free(t->owned[k]);
		t->owned[k] = NULL;
	}
}
