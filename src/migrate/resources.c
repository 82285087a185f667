/* resources.c - live migration, the target side: which host resources the
 * incoming guest gets. The stream's CONFIG comes from a network peer, so
 * the host side of every device that touches the host (a disk's image
 * file, a network's tap or forwarded host ports, a vsock's socket file) is
 * taken from the target's own flags, never from the stream:
 *
 *   disk   --disk PATH on the target, one per source disk, in order (the
 *          source's readonly, serial=, queues= and direct options stay:
 *          they are what the guest saw); or, with `migrate --with-storage`,
 *          --storage-dir DIR, where the images are written (disk.c)
 *   net    --net user[,hostfwd=...]|tap=NAME, one per source network, in
 *          order; the MAC is the guest's (the source's, default or mac=):
 *          a target's mac= must equal it. The source's rate limits stay,
 *          but where the target's --net sets one (rx-bw=, ...), which wins
 *   vsock  --vsock CID[,uds=PATH]; the CID is the guest's: it must equal
 *          the source's
 *
 * Every such device needs its flag, and every flag its device: a stream
 * that names a device the target was not given is refused with one line
 * naming it. The other devices (rng, balloon) hold no host resource. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/devices.h"
#include "cvisor/virtio_net.h"
#include "cvisor/virtio_vsock.h"
#include "migrate_priv.h"

/* The target was given no more of flag than the guest has of noun. */
static int none_extra(unsigned int given, unsigned int n, const char *flag, const char *noun,
		      char *err, size_t errlen)
{
	if (given <= n)
		return 0;
	return cv_errf(err, errlen, -EINVAL, "the target was given %u %s, the guest has %u %s%s",
		       given, flag, n, noun, n == 1 ? "" : "s");
}

/* The source's disks: the target's paths with the source's options. */
static int map_disks(struct devices_config *dc, const struct migrate_incoming *in, bool storage,
		     char *err, size_t errlen)
{
	const struct device_type *t = devices_type("disk");
	unsigned int n = devices_count(dc, t);
	char spec[PATH_MAX + 512];

	if (storage) {
		if (!in->storage_dir)
			return cv_errf(err, errlen, -EINVAL,
				       "the source sends its disk images: give --storage-dir DIR");
		if (in->ndisks)
			return cv_errf(err, errlen, -EINVAL,
				       "the source sends its disk images to --storage-dir: the "
				       "target's --disk is for disks that stay (give one or the "
				       "other)");
		return 0; /* DIR/NAME, once created (target.c) */
	}
	for (unsigned int i = 0; i < n; i++) {
		const char *src = devices_spec(dc, t, i), *opts = strchr(src, ',');
		int len = opts ? (int)(opts - src) : (int)strlen(src);

		if (i >= in->ndisks)
			return cv_errf(err, errlen, -EINVAL,
				       "the source's disk %u (%.*s): give the target --disk PATH "
				       "(one per source disk, in order), or --storage-dir DIR and "
				       "migrate --with-storage",
				       i, len < 200 ? len : 200, src);
		snprintf(spec, sizeof(spec), "%s%s", in->disks[i], opts ? opts : "");
		if (devices_set_spec(dc, t, i, spec))
			return cv_errf(err, errlen, -ENOMEM, "out of memory");
	}
	return none_extra(in->ndisks, n, "--disk", "disk", err, errlen);
}

/* The source's limits where the target's --net sets none. */
static void merge_limits(struct rate_limits *dst, const struct rate_limits *src)
{
	for (unsigned int i = 0; i < 2; i++) {
		if (!dst[i].bytes.rate)
			dst[i].bytes = src[i].bytes;
		if (!dst[i].ops.rate)
			dst[i].ops = src[i].ops;
	}
}

/* The target's --net with the guest's MAC and rate limits. */
static int map_net(const char *src, const char *dst, unsigned int i, char *spec, size_t len,
		   char *err, size_t errlen)
{
	struct virtio_net_config s, d;
	struct cv_error e = { 0 };
	const uint8_t *m;
	char *limited;

	if (virtio_net_parse(src, i, &s, &e))
		return cv_errf(err, errlen, -EINVAL, "the source's network %u: %s", i, e.msg);
	if (virtio_net_parse(dst, i, &d, &e))
		return cv_errf(err, errlen, -EINVAL, "%s", e.msg);
	m = s.mac;
	if (strstr(dst, ",mac=") && memcmp(s.mac, d.mac, sizeof(s.mac)))
		return cv_errf(err, errlen, -EINVAL,
			       "--net %s: the guest's MAC is %02x:%02x:%02x:%02x:%02x:%02x (it "
			       "goes with the guest: leave mac= out)",
			       dst, m[0], m[1], m[2], m[3], m[4], m[5]);
	merge_limits(d.rate, s.rate);
	if (rate_spec_rewrite(virtio_net_rate_keys, d.rate, 2, dst, &limited))
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	if (strstr(dst, ",mac="))
		snprintf(spec, len, "%s", limited);
	else
		snprintf(spec, len, "%s,mac=%02x:%02x:%02x:%02x:%02x:%02x", limited, m[0], m[1],
			 m[2], m[3], m[4], m[5]);
	free(limited);
	return 0;
}

static int map_nets(struct devices_config *dc, const struct migrate_incoming *in, char *err,
		    size_t errlen)
{
	const struct device_type *t = devices_type("net");
	unsigned int n = devices_count(dc, t);
	char spec[1400];
	int r;

	for (unsigned int i = 0; i < n; i++) {
		const char *src = devices_spec(dc, t, i);

		if (i >= in->nnets)
			return cv_errf(err, errlen, -EINVAL,
				       "the source's network %u (%.100s): give the target --net "
				       "user|tap=NAME (one per source network, in order)",
				       i, src);
		if ((r = map_net(src, in->nets[i], i, spec, sizeof(spec), err, errlen)))
			return r;
		if (devices_set_spec(dc, t, i, spec))
			return cv_errf(err, errlen, -ENOMEM, "out of memory");
	}
	return none_extra(in->nnets, n, "--net", "network", err, errlen);
}

static int map_vsock(struct devices_config *dc, const struct migrate_incoming *in, char *err,
		     size_t errlen)
{
	const struct device_type *t = devices_type("vsock");
	const char *src = devices_spec(dc, t, 0);
	struct virtio_vsock_config s, d;
	struct cv_error e = { 0 };

	if (!src && !in->vsock)
		return 0;
	if (!src)
		return cv_errf(err, errlen, -EINVAL,
			       "the target was given --vsock, the guest has no vsock");
	if (virtio_vsock_parse(src, &s, &e))
		return cv_errf(err, errlen, -EINVAL, "the source's vsock: %s", e.msg);
	if (!in->vsock)
		return cv_errf(err, errlen, -EINVAL,
			       "the source's vsock (%.100s): give the target --vsock "
			       "%llu[,uds=PATH]",
			       src, (unsigned long long)s.guest_cid);
	if (virtio_vsock_parse(in->vsock, &d, &e))
		return cv_errf(err, errlen, -EINVAL, "%s", e.msg);
	if (d.guest_cid != s.guest_cid)
		return cv_errf(err, errlen, -EINVAL,
			       "--vsock %s: the guest's CID is %llu (it goes with the guest)",
			       in->vsock, (unsigned long long)s.guest_cid);
	if (devices_set_spec(dc, t, 0, in->vsock))
		return cv_errf(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

int migrate_target_resources(struct devices_config *dc, const struct migrate_incoming *in,
			     bool storage, char *err, size_t errlen)
{
	int r;

	if ((r = map_disks(dc, in, storage, err, errlen)) || (r = map_nets(dc, in, err, errlen)))
		return r;
	return map_vsock(dc, in, err, errlen);
}
