/* proto.c - the live migration protocol: its specification, then the
 * message framing and the handshake (HELLO) as the source encodes it and
 * the target parses and checks it. The receive parser of both directions
 * is rx.c; the source's side source.c, the target's target.c.
 *
 * PROTOCOL, version 2.1. One TCP connection (inside TLS 1.3 when both ends
 * are given keys: see TLS below); the source connects to the target's
 * `cvisor run --incoming HOST:PORT`. All integers little-endian.
 * (2.0 added the target's nonce: 20 NONCE and its echo in HELLO. A 1.x
 * source is refused by its version; a 2.0 source gives up on a 1.x
 * target, which never sends NONCE, after MIG_NONCE_TIMEOUT_MS. 2.1 added
 * each disk's format; a source sends 2.0 unless a qcow2 disk travels, so
 * that a 2.0 target takes raw disks as before and refuses a qcow2 one by
 * its version instead of writing its bytes into a raw file.)
 *
 *   message   u32 type, u32 body length, body, u32 CRC-32 (IEEE, cv_crc32)
 *             of type, length and body. The reader bounds the length per
 *             type before reading or allocating anything.
 *
 *   source -> target
 *   1 HELLO   (<= 128 KiB) u8[8] "CVIMIGR\0", u16 major (2), u16 minor (0),
 *             u8[16] nonce (this connection's NONCE, echoed), u32 page
 *             size (4096), u64 RAM bytes, u32 regions (1-2), u32 vCPUs,
 *             regions {u64 gpa, u64 size} (must be the layout
 *             guest_mem gives that RAM size), CPU: u8[12] vendor, u32
 *             signature (leaf 1 eax), u32 leaf 1 ecx, edx, leaf 7 ebx,
 *             ecx, edx, leaf 0x80000001 ecx, edx (the guest's view; the
 *             target needs the same vendor and every bit: older targets
 *             check these, this one the whole CPUID table of the MACHINE
 *             section in config, cpu_compat.h), u32 flags
 *             (1 storage, 2 guest paused, 4 verify), u32 disks (<= 8),
 *             disks {u64 bytes, [2.1: u8 format (0 raw, 1 qcow2),
 *             u8 cluster bits (raw 0, qcow2 9-21)], u16 name length
 *             (1-255), name},
 *             u32 config length (<= 64 KiB), config: snapshot sections
 *             holding SNAP_SEC_CONFIG (snapshot_format.h; with MACHINE and
 *             KSTATE, which snapshot_config_load also wants).
 *             A major other than 2 or a minor above ours is refused, and
 *             so is a nonce that is not the one this target just sent (a
 *             recorded stream replayed) or a CONFIG naming host resources
 *             the target was not given (resources.c).
 *   2 PAGES   (<= 1 MiB + 4 KiB) u32 count (1-256), count records
 *             {u64 gpa (page aligned, inside RAM), u32 flags (1 = zero
 *             page: no data), u32 0}, then the 4 KiB of each non-zero
 *             record in record order (so the target can readv a batch
 *             straight into guest RAM). The body length must match.
 *   3 DISK    (<= 4 MiB + 1.5 KiB) u32 count (1-64), count records
 *             {u32 disk, u32 flags (1 = zeros), u64 offset, u32 length
 *             (multiples of 512, length up to 1 MiB, inside the disk),
 *             u32 0}, then the data of each non-zero record (at most 4 MiB
 *             in all). Only with the storage flag (see disk.c).
 *   4 STATE   (<= 64 MiB) the snapshot_state_save payload.
 *   5 END     (20 bytes) u32 flags, u64 RAM checksum (migrate_memsum, with
 *             the verify flag), u64 pages sent.
 *   6 SYNC    (4 bytes) u32 round: the end of a pre-copy round.
 *   7 HINT    (<= 1 MiB + 4) u32 count (<= 65536), count {u64 gpa, u64
 *             bytes} (page aligned, inside RAM): RAM round 0 will send, so
 *             that the target can populate it ahead of the data (a hint:
 *             it may be partial, and nothing depends on it).
 *
 *   target -> source
 *   20 NONCE   (16 bytes) sent at once on accept: 16 random bytes
 *             (getrandom), fresh for every connection.
 *   16 READY   (empty) the VM is built: send RAM.
 *   17 RUNNING (empty) state loaded, guest started: the source may end.
 *   18 ERROR   (1-256 bytes) one printable line; the target then closes.
 *   19 SYNC_ACK (4 bytes) u32 round: everything up to that SYNC is in place
 *             (the source measures end-to-end bandwidth with it, and never
 *             pauses the guest with megabytes still queued in sockets).
 *
 *   Sequence: NONCE, HELLO, READY, then rounds of PAGES and DISK (a page
 *   or block sent again replaces the earlier copy) each ended by SYNC /
 *   SYNC_ACK,
 *   then the final PAGES and DISK, STATE, END, RUNNING. PAGES, DISK or
 *   SYNC after STATE, a second HELLO or STATE, END before STATE, and any
 *   unknown type are errors. A broken connection at any point before
 *   RUNNING leaves the guest running on the source.
 *
 * HANDSHAKE FAILURES. A connection that fails before the target builds the
 * VM (not a stream, a bad checksum or version, a wrong nonce, a CONFIG
 * the target refuses, no HELLO within MIG_HELLO_TIMEOUT_MS) is answered
 * with ERROR when possible and dropped; the target logs one line and
 * waits for the next (until killed, or --incoming-timeout). Once it has
 * built the VM for a source, a failure ends the target, as it ends the
 * migration.
 *
 * TLS. With --tls-psk or --tls-creds on both ends (tls.c, tls_config.c)
 * the connection is a TLS 1.3 session before anything above is sent: the
 * source sends its ClientHello on connect, the handshake completes (both
 * ends authenticated: the PSK's binder, or each end's certificate chain
 * against the shared CA), and NONCE, HELLO and everything after are the
 * session's application data. On the source the session is the
 * `cvisor migrate` client's (link.c), which relays the monitor's plain
 * bytes through it over a socketpair; the monitor never does TLS. The
 * nonce is then bound to the
 * authenticated session: it travels encrypted under this session's keys,
 * so only the peer that completed this handshake can echo it, and a
 * recorded or spliced stream fails at the first record (its keys were
 * another session's) before the parser sees a byte. A failed handshake
 * is a handshake failure as above. Under TLS each message's CRC-32 field
 * is 0 and neither end computes or checks it: the record layer's AEAD tag
 * (AES-GCM, 128 bits) has already authenticated every byte it covers, and
 * the CRC passes cost each end CPU the cipher needs (8 % of the target's). Without TLS the stream is
 * plain, which both ends allow only when the address is loopback, or with
 * --insecure.
 *
 * LIMITS. A plain stream (loopback, --insecure) is neither authenticated
 * nor encrypted: whoever can reach the target's port can hand it a guest
 * (the parser is hardened, the guest it builds is not vetted, and the
 * nonce only stops a recorded stream from being replayed blind). With TLS
 * whoever holds the key or a certificate of the CA is trusted as fully as
 * the source itself. The target's own flags decide every host resource
 * the guest gets (disks, tap, vsock socket): the stream cannot name a
 * host file. If
 * the link dies after the target sent RUNNING and before the source read
 * it, both ends run the guest; the window is one message wide. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migrate_priv.h"

void mig_put_header(uint8_t out[MIG_HDR_SIZE], uint32_t type, uint32_t len)
{
	cv_put_le(out, type, 4);
	cv_put_le(out + 4, len, 4);
}

void mig_msg_append(struct state_buf *b, uint32_t type, const void *body, uint32_t len)
{
	uint8_t h[MIG_HDR_SIZE];
	uint32_t crc;

	mig_put_header(h, type, len);
	crc = cv_crc32(cv_crc32(0, h, sizeof(h)), body, len);
	state_put_bytes(b, h, sizeof(h));
	state_put_bytes(b, body, len);
	state_put_u32(b, crc);
}

/* ---- HELLO ---- */

void mig_hello_encode(const struct mig_hello *h, struct state_buf *b)
{
	state_put_bytes(b, MIG_MAGIC, 8);
	state_put_u16(b, h->major);
	state_put_u16(b, h->minor);
	state_put_bytes(b, h->nonce, MIG_NONCE_SIZE);
	state_put_u32(b, h->page_size);
	state_put_u64(b, h->ram_size);
	state_put_u32(b, h->nregions);
	state_put_u32(b, h->ncpus);
	for (uint32_t i = 0; i < h->nregions && i < MIG_MAX_REGIONS; i++) {
		state_put_u64(b, h->regions[i].gpa);
		state_put_u64(b, h->regions[i].size);
	}
	state_put_bytes(b, h->cpu.vendor, 12);
	state_put_u32(b, h->cpu.signature);
	state_put_u32(b, h->cpu.f1_ecx);
	state_put_u32(b, h->cpu.f1_edx);
	state_put_u32(b, h->cpu.f7_ebx);
	state_put_u32(b, h->cpu.f7_ecx);
	state_put_u32(b, h->cpu.f7_edx);
	state_put_u32(b, h->cpu.e1_ecx);
	state_put_u32(b, h->cpu.e1_edx);
	state_put_u32(b, h->flags);
	state_put_u32(b, h->ndisks);
	for (uint32_t i = 0; i < h->ndisks && i < MIG_MAX_DISKS; i++) {
		size_t n = strlen(h->disks[i].name);

		state_put_u64(b, h->disks[i].size);
		if (h->minor >= 1) {
			state_put_u8(b, h->disks[i].format);
			state_put_u8(b, h->disks[i].cluster_bits);
		}
		state_put_u16(b, (uint16_t)n);
		state_put_bytes(b, h->disks[i].name, n);
	}
	state_put_u32(b, h->config_len);
	state_put_bytes(b, h->config, h->config_len);
}

int mig_hello_parse(const uint8_t *body, size_t len, struct mig_hello *h, char *err, size_t errlen)
{
	struct state_rd r;
	char magic[8];

	memset(h, 0, sizeof(*h));
	state_rd_init(&r, body, len);
	state_get_bytes(&r, magic, 8);
	if (r.err || memcmp(magic, MIG_MAGIC, 8))
		return cv_errf(err, errlen, -EINVAL, "not a cvisor migration stream (bad magic)");
	h->major = state_get_u16(&r);
	h->minor = state_get_u16(&r);
	/* The version decides how the rest reads: check it first. */
	if (h->major != MIG_MAJOR || h->minor > MIG_MINOR)
		return cv_errf(err, errlen, -EINVAL,
			       "migration stream version %u.%u is not supported (this cvisor takes "
			       "%u.0-%u.%u)",
			       h->major, h->minor, MIG_MAJOR, MIG_MAJOR, MIG_MINOR);
	state_get_bytes(&r, h->nonce, MIG_NONCE_SIZE);
	h->page_size = state_get_u32(&r);
	h->ram_size = state_get_u64(&r);
	h->nregions = state_get_u32(&r);
	h->ncpus = state_get_u32(&r);
	if (r.err || !h->nregions || h->nregions > MIG_MAX_REGIONS)
		return cv_errf(err, errlen, -EINVAL,
			       "migration handshake is corrupt (memory regions)");
	for (uint32_t i = 0; i < h->nregions; i++) {
		h->regions[i].gpa = state_get_u64(&r);
		h->regions[i].size = state_get_u64(&r);
	}
	state_get_bytes(&r, h->cpu.vendor, 12);
	h->cpu.vendor[12] = 0;
	h->cpu.has_vendor = true;
	h->cpu.signature = state_get_u32(&r);
	h->cpu.f1_ecx = state_get_u32(&r);
	h->cpu.f1_edx = state_get_u32(&r);
	h->cpu.f7_ebx = state_get_u32(&r);
	h->cpu.f7_ecx = state_get_u32(&r);
	h->cpu.f7_edx = state_get_u32(&r);
	h->cpu.e1_ecx = state_get_u32(&r);
	h->cpu.e1_edx = state_get_u32(&r);
	h->flags = state_get_u32(&r);
	h->ndisks = state_get_u32(&r);
	if (r.err || h->ndisks > MIG_MAX_DISKS || (h->flags & ~MIG_F_KNOWN))
		return cv_errf(err, errlen, -EINVAL,
			       "migration handshake is corrupt (flags or disks)");
	for (uint32_t i = 0; i < h->ndisks; i++) {
		uint16_t n;

		h->disks[i].size = state_get_u64(&r);
		if (h->minor >= 1) {
			h->disks[i].format = state_get_u8(&r);
			h->disks[i].cluster_bits = state_get_u8(&r);
		}
		n = state_get_u16(&r);
		if (r.err || !n || n > MIG_MAX_DISK_NAME || n > r.len - r.pos)
			return cv_errf(err, errlen, -EINVAL,
				       "migration handshake is corrupt (disk names)");
		state_get_bytes(&r, h->disks[i].name, n);
		h->disks[i].name[n] = 0;
		if (strlen(h->disks[i].name) != n || h->disks[i].size % 512)
			return cv_errf(err, errlen, -EINVAL,
				       "migration handshake is corrupt (disk %u)", i);
		if (h->disks[i].format == MIG_DISK_RAW ? h->disks[i].cluster_bits != 0
		    : h->disks[i].format == MIG_DISK_QCOW2
			    ? h->disks[i].cluster_bits < 9 || h->disks[i].cluster_bits > 21
			    : true)
			return cv_errf(err, errlen, -EINVAL,
				       "migration handshake is corrupt (disk %u: format %u, "
				       "cluster bits %u)",
				       i, h->disks[i].format, h->disks[i].cluster_bits);
	}
	h->config_len = state_get_u32(&r);
	if (r.err || h->config_len > MIG_MAX_CONFIG || h->config_len != r.len - r.pos)
		return cv_errf(err, errlen, -EINVAL,
			       "migration handshake is corrupt (configuration length)");
	h->config = body + r.pos;
	return 0;
}

void mig_ram_layout(uint64_t ram_size, struct mig_hello *h)
{
	uint64_t low = ram_size < GUEST_MEM_LOW_LIMIT ? ram_size : GUEST_MEM_LOW_LIMIT;

	h->ram_size = ram_size;
	h->nregions = 1;
	h->regions[0].gpa = 0;
	h->regions[0].size = low;
	if (ram_size > low) {
		h->nregions = 2;
		h->regions[1].gpa = GUEST_MEM_HIGH_BASE;
		h->regions[1].size = ram_size - low;
	}
}

int mig_hello_check(const struct mig_hello *h, const struct mig_local *l, char *err, size_t errlen)
{
	struct mig_hello want;

	if (h->page_size != l->page_size)
		return cv_errf(err, errlen, -EINVAL,
			       "the source's page size %u differs from this host's %u",
			       h->page_size, l->page_size);
	if (!h->ram_size || h->ram_size % MIG_PAGE_SIZE || h->ram_size > MIG_MAX_RAM)
		return cv_errf(err, errlen, -EINVAL,
			       "migration handshake is corrupt (RAM size %llu)",
			       (unsigned long long)h->ram_size);
	mig_ram_layout(h->ram_size, &want);
	if (want.nregions != h->nregions ||
	    memcmp(want.regions, h->regions, sizeof(want.regions[0]) * h->nregions))
		return cv_errf(err, errlen, -EINVAL,
			       "the source's RAM layout for %lluM differs from this cvisor's "
			       "(incompatible versions)",
			       (unsigned long long)(h->ram_size >> 20));
	if (!h->ncpus || h->ncpus > MIG_MAX_CPUS || h->ncpus > l->max_cpus)
		return cv_errf(err, errlen, -EINVAL, "the guest has %u vCPUs; this host allows %u",
			       h->ncpus, l->max_cpus);
	return 0;
}

int mig_cpu_check(const struct cpu_model *guest, const struct cpu_model *host, char *err,
		  size_t errlen)
{
	struct cpu_gap gap;
	char leaf[32];

	if (!cpu_compat_check(guest, host, &gap))
		return 0;
	if (gap.kind == CPU_GAP_NO_VENDOR)
		return cv_errf(err, errlen, -EINVAL, "the source's CPUID has no vendor leaf");
	if (gap.kind == CPU_GAP_VENDOR)
		return cv_errf(err, errlen, -EINVAL,
			       "the source's CPU vendor %s differs from this host's %s",
			       gap.guest_vendor, gap.host_vendor);
	/* "1.ecx", "0xd.1.eax", "0x80000001.edx" */
	if (gap.fn < 10)
		snprintf(leaf, sizeof(leaf), "%u", gap.fn);
	else
		snprintf(leaf, sizeof(leaf), "%#x", gap.fn);
	if (gap.index)
		snprintf(leaf + strlen(leaf), sizeof(leaf) - strlen(leaf), ".%u", gap.index);
	return cv_errf(err, errlen, -EINVAL,
		       "this host's CPU lacks features the guest uses (CPUID %s.%s bits %#x); "
		       "migrate to a host with the same CPU or a newer one",
		       leaf, gap.reg, gap.missing);
}
