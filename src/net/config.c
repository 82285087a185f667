/* config.c - the `--net` flag (see virtio_net_parse in virtio_net.h): pure
 * parsing, no host access, so config.c and the fuzzers may call it. */
#include "cvisor/virtio_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

void virtio_net_default_mac(unsigned int index, uint8_t mac[6])
{
	uint32_t v = 0x123456u + index;

	/* 52: locally administered (bit 1), unicast (bit 0 clear). */
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(v >> 16);
	mac[4] = (uint8_t)(v >> 8);
	mac[5] = (uint8_t)v;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++, s += 3) {
		int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);

		if (lo < 0 || s[2] != (i == 5 ? '\0' : ':'))
			return -1;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return (mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) ? -1 : 0;
}

/* "[ADDR:]PORT" into addr (host order; left alone if ADDR is absent or
 * empty) and port. Modifies s. */
static int parse_endpoint(char *s, uint32_t *addr, uint16_t *port)
{
	char *colon = strrchr(s, ':');
	struct in_addr a;
	uint64_t v;

	if (colon) {
		*colon = '\0';
		if (*s) {
			if (inet_pton(AF_INET, s, &a) != 1)
				return -1;
			*addr = ntohl(a.s_addr);
		}
		s = colon + 1;
	}
	if (cv_parse_uint(s, 1, 65535, &v))
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* tcp|udp:[HOSTADDR:]HOSTPORT-[GUESTADDR]:GUESTPORT (QEMU's form, plus
 * tcp:HOSTPORT-:GUESTPORT). */
static int parse_hostfwd(char *s, struct net_hostfwd *f)
{
	char *dash;
	uint32_t host;

	*f = (struct net_hostfwd){ .guest_addr = NET_USER_GUEST };
	if (!strncmp(s, "udp:", 4))
		f->udp = true;
	else if (strncmp(s, "tcp:", 4))
		return -1;
	s += 4;
	dash = strchr(s, '-');
	if (!dash)
		return -1;
	*dash = '\0';
	if (parse_endpoint(s, &f->host_addr, &f->host_port) ||
	    parse_endpoint(dash + 1, &f->guest_addr, &f->guest_port))
		return -1;
	/* The guest is on the user network, not its network or broadcast. */
	host = f->guest_addr & 0xff;
	return (f->guest_addr & 0xffffff00u) != NET_USER_NETWORK || !host || host == 255 ? -1 : 0;
}

/* Linux's dev_valid_name, without "%d" patterns. */
static bool valid_ifname(const char *s)
{
	if (!*s || strlen(s) >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	return !strpbrk(s, "/:% \t\n\v\f\r");
}

const struct rate_keys virtio_net_rate_keys[2] = {
	[VIRTIO_NET_RXQ] = { "rx-", "pps" },
	[VIRTIO_NET_TXQ] = { "tx-", "pps" },
};

static int parse_option(char *item, const char *orig, struct virtio_net_config *c, bool *have_mac,
			struct cv_error *e)
{
	struct net_hostfwd *f;
	int r = rate_parse_opt(virtio_net_rate_keys, c->rate, 2, "--net", item, strlen(item), e);

	if (r)
		return r < 0 ? r : 0;
	if (!strncmp(item, "mac=", 4)) {
		if (*have_mac)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "--net: mac= given twice");
		if (parse_mac(item + 4, c->mac))
			return cv_fail(
				e, CV_EXIT_USAGE, -EINVAL,
				"--net: bad mac '%s' (expected six hex bytes xx:xx:xx:xx:xx:xx, "
				"unicast and not all zero)",
				item + 4);
		*have_mac = true;
		return 0;
	}
	if (strncmp(item, "hostfwd=", 8))
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--net: unknown option '%s' in '%s' (expected hostfwd=, mac=, or "
			       "rx-bw=, rx-pps=, tx-bw=, tx-pps= and their -burst)",
			       item, orig);
	if (c->backend != VIRTIO_NET_USER)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--net: hostfwd= works with --net user only");
	if (c->nr_hostfwd == VIRTIO_NET_MAX_HOSTFWD)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "--net: at most %d hostfwd= rules",
			       VIRTIO_NET_MAX_HOSTFWD);
	f = &c->hostfwd[c->nr_hostfwd];
	{
		char copy[128];

		snprintf(copy, sizeof(copy), "%s", item + 8);
		if (strlen(item + 8) >= sizeof(copy) || parse_hostfwd(copy, f))
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "--net: bad hostfwd '%s' (expected "
				       "tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, guest on "
				       "10.0.2.0/24)",
				       item + 8);
	}
	for (unsigned int i = 0; i < c->nr_hostfwd; i++)
		if (c->hostfwd[i].udp == f->udp && c->hostfwd[i].host_port == f->host_port &&
		    c->hostfwd[i].host_addr == f->host_addr)
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "--net: host port %u is forwarded twice", f->host_port);
	c->nr_hostfwd++;
	return 0;
}

int virtio_net_parse(const char *spec, unsigned int index, struct virtio_net_config *c,
		     struct cv_error *e)
{
	char buf[1024], *p, *item;
	bool have_mac = false;
	int r;

	memset(c, 0, sizeof(*c));
	virtio_net_default_mac(index, c->mac);
	if (!spec || !*spec)
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--net: empty value (expected user[,...] or tap=NAME)");
	if (strlen(spec) >= sizeof(buf))
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL, "--net: value longer than %zu bytes",
			       sizeof(buf) - 1);
	strcpy(buf, spec);
	p = buf;
	item = strsep(&p, ",");
	if (!strcmp(item, "user")) {
		c->backend = VIRTIO_NET_USER;
	} else if (!strncmp(item, "tap=", 4)) {
		c->backend = VIRTIO_NET_TAP;
		if (!valid_ifname(item + 4))
			return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
				       "--net: bad tap name '%s' (1 to %d characters, no '/', ':', "
				       "'%%' or spaces)",
				       item + 4, IFNAMSIZ - 1);
		strcpy(c->tap, item + 4);
	} else if (!strcmp(item, "tapfd")) {
		c->backend = VIRTIO_NET_TAP_FD;
	} else {
		return cv_fail(e, CV_EXIT_USAGE, -EINVAL,
			       "--net: unknown network '%s' (expected user or tap=NAME)", item);
	}
	while ((item = strsep(&p, ",")))
		if ((r = parse_option(item, spec, c, &have_mac, e)))
			return r;
	return rate_check(virtio_net_rate_keys, c->rate, 2, "--net", e);
}
