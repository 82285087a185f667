/* migrate_priv.h - private to src/migrate: the sending side's batches
 * (tx.c), sockets (sock.c), RAM (ram.c), the disks (disk.c) and the
 * handshake helpers (proto.c). */
#ifndef CVISOR_MIGRATE_PRIV_H
#define CVISOR_MIGRATE_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/kvm.h>

#include "cvisor/crc32.h"
#include "cvisor/migrate.h"
#include "cvisor/migrate_proto.h"

struct virtio_dev;
struct mig_tls;

/* ---- tx.c ---- */

/* Batches on their way to the socket. Page data is copied out of guest RAM
 * (the guest runs and may change it) before its CRC is taken. */
struct mig_tx {
	int fd;
	/* The stream reaches the target inside TLS (the client relays it),
	 * whose AEAD tag stands for the CRCs: none are computed. */
	bool no_crc;
	int err; /* sticky -errno: later sends do nothing */
	uint64_t bytes;
	uint64_t max_bw, bw_start_ns, bw_bytes;
	uint64_t last_pump_ns;
	void (*pump)(void *ctx);
	void *pump_ctx;
	void (*after_send)(void *ctx); /* progress ticks */
	void *after_ctx;
	/* PAGES */
	uint8_t phead[MIG_HDR_SIZE + 4];
	uint8_t precs[MIG_BATCH_PAGES * MIG_PAGE_REC_SIZE];
	uint8_t *pdata; /* MIG_BATCH_PAGES pages */
	uint32_t pcount, pndata;
	uint32_t pdata_crc; /* of pdata[0 .. pndata pages) */
	uint64_t pages, zero_pages;
	/* DISK */
	uint8_t dhead[MIG_HDR_SIZE + 4];
	uint8_t drecs[MIG_BATCH_DISK * MIG_DISK_REC_SIZE];
	uint8_t *ddata; /* MIG_DISK_BATCH_DATA bytes */
	uint32_t dcount, dndata;
	uint64_t disk_bytes;
};

/* Batches for fd (disks: room for DISK too), throttled to max_bw bytes/s
 * (0: not throttled). 0 or -ENOMEM. */
int mig_tx_init(struct mig_tx *tx, int fd, bool disks, uint64_t max_bw) CV_MUST;
/* Free the batches (not fd). */
void mig_tx_free(struct mig_tx *tx);
/* Queue the page at gpa (hva in our mapping); sends when the batch is full. */
void mig_tx_page(struct mig_tx *tx, uint64_t gpa, const uint8_t *hva);
/* Queue disk data (data NULL with zero). len <= MIG_DISK_CHUNK. */
void mig_tx_disk(struct mig_tx *tx, uint32_t disk, uint64_t off, const uint8_t *data, uint32_t len,
		 bool zero);
/* Room in the disk batch for len more data bytes without a flush. */
uint8_t *mig_tx_disk_buf(struct mig_tx *tx, uint32_t len);
/* Send whatever is queued. */
void mig_tx_flush(struct mig_tx *tx);
/* A whole small message (flushes first). */
void mig_tx_msg(struct mig_tx *tx, uint32_t type, const void *body, uint32_t len);
/* Run the pump (if any): when it is due (20 ms since the last turn), or
 * now, for a sender about to wait (a full socket, a throttle, a reply). */
void mig_tx_pump(struct mig_tx *tx, bool now);

/* ---- sock.c ---- */

/* Write all of iov (MSG_NOSIGNAL: a dead peer is an error, not SIGPIPE),
 * through tls when it is not NULL. With wait (a sender that must not
 * block: it has an event loop to run), the socket is written without
 * blocking, and while it is full wait(ctx) runs every 10 ms; its nonzero
 * return ends the write with that error. */
int mig_send_iov(int fd, struct mig_tls *tls, struct iovec *iov, int n, int (*wait)(void *ctx),
		 void *ctx) CV_MUST;

/* A connect gives up after this long; an established link with data
 * unacknowledged this long is broken (TCP_USER_TIMEOUT). */
#define MIG_CONNECT_TIMEOUT_S 10
#define MIG_LINK_TIMEOUT_MS 30000
/* The source waits this long for the target's NONCE, and the target as
 * long for the HELLO that follows: a connection that says nothing does
 * not hold a waiting target for long. */
#define MIG_NONCE_TIMEOUT_MS 10000
#define MIG_HELLO_TIMEOUT_MS 10000

/* A socket connected to addr (HOST:PORT) and tuned (mig_tune), or one
 * listening on it: the fd, or -errno with one line in err. mig_connect
 * runs tx's pump while it waits, and returns tx->err without a line when
 * the pump cancels (the caller knows why). */
int mig_connect(const char *addr, struct mig_tx *tx, char *err, size_t errlen) CV_MUST;
int mig_listen(const char *addr, char *err, size_t errlen) CV_MUST;
/* TCP_NODELAY: the end of a migration is small messages on the downtime
 * path. */
void mig_tune(int fd);

/* Read from fd (through tls when not NULL) into the parser until it
 * reports an event (returned), the stream fails (-EINVAL, rx->err; a TLS
 * failure too, "TLS: why"), the peer closes (-ECONNRESET), timeout_ms
 * passes (-ETIMEDOUT; < 0 waits forever), or -errno. */
int mig_recv_event(int fd, struct mig_tls *tls, struct mig_rx *rx, int timeout_ms) CV_MUST;

/* ---- tls_config.c, tls.c: TLS 1.3 (the formats at the top of tls_config.c) ---- */

#define MIG_PSK_ID_MAX 64
#define MIG_PSK_KEY_SIZE 32

/* Read a PSK file (mode 0600 or stricter; one IDENTITY:HEXKEY line): 0 or
 * -errno with one line naming path in err. */
int mig_psk_read(const char *path, char id[MIG_PSK_ID_MAX + 1], uint8_t key[MIG_PSK_KEY_SIZE],
		 char *err, size_t errlen) CV_MUST;

/* One end's TLS setup: keys or certificates loaded once. */
struct mig_tls_ctx;

/* ---- the TLS module (tls.c, built as build/cvisor-tls.so) ---- */

/* How the module writes records: sock.c's mig_send_iov, called with tls
 * NULL (the module links nothing of cvisor's). */
typedef int (*mig_tls_send_fn)(int fd, struct mig_tls *tls, struct iovec *iov, int n,
			       int (*wait)(void *ctx), void *ctx);

/* One end's settings, checked by the caller: a PSK read from its file
 * (psk_identity non-NULL), or a --tls-creds directory. */
struct mig_tls_params {
	bool server;
	const char *psk_identity;
	const uint8_t *psk_key; /* MIG_PSK_KEY_SIZE bytes */
	const char *creds_dir;
	mig_tls_send_fn send;
};

/* Raised whenever a field below changes meaning or place: a module of
 * another build is refused, not called. */
#define MIG_TLS_ABI 1

/* The module's one exported symbol, "cvisor_tls_module". The functions
 * are those of the mig_tls_* wrappers below. */
struct mig_tls_module {
	uint32_t abi;  /* MIG_TLS_ABI */
	uint32_t size; /* sizeof(struct mig_tls_module) */
	int (*ctx_new)(const struct mig_tls_params *p, struct mig_tls_ctx **out, char *err,
		       size_t errlen);
	void (*ctx_free)(struct mig_tls_ctx *c);
	int (*start)(struct mig_tls_ctx *c, int fd, const char *host, int timeout_ms,
		     int (*wait)(void *ctx), void *ctx, struct mig_tls **out, char *err,
		     size_t errlen);
	int (*send_iov)(struct mig_tls *t, const struct iovec *iov, int n, int (*wait)(void *ctx),
			void *ctx);
	ssize_t (*readv)(struct mig_tls *t, const struct iovec *iov, unsigned int n);
	const char *(*error)(const struct mig_tls *t);
	void (*free)(struct mig_tls *t);
};

/* ---- tls_module.c: the module loaded, and calls into it ---- */

/* Load the module once (later calls return at once): cvisor-tls.so next
 * to /proc/self/exe, else in ../lib/cvisor/ from there (`make install`),
 * with RTLD_NOW, before any seccomp filter (dlopen opens the file and maps
 * it executable). 0, or -errno with "TLS migration needs cvisor-tls.so:
 * why" in err. */
int mig_tls_module_load(char *err, size_t errlen) CV_MUST;

/* The context t asks for (the target's when server), or *out NULL for a
 * plain stream (t names no key or certificates). t is checked again for
 * addr first (migrate_tls_check), the module loaded, the key read. 0 or
 * -errno with one line in err. */
int mig_tls_ctx_new(const struct migrate_tls *t, const char *addr, bool server,
		    struct mig_tls_ctx **out, char *err, size_t errlen) CV_MUST;
/* Free it (NULL is fine). */
void mig_tls_ctx_free(struct mig_tls_ctx *c);
/* A TLS session on connected fd: the handshake within timeout_ms, as the
 * client (host: the name the target's certificate must hold) or the
 * server c is. With wait, the socket is polled in 10 ms slices and
 * wait(ctx) runs between them; its nonzero return ends the handshake.
 * 0 with *out, or -errno with "TLS handshake failed: why" in err. */
int mig_tls_start(struct mig_tls_ctx *c, int fd, const char *host, int timeout_ms,
		  int (*wait)(void *ctx), void *ctx, struct mig_tls **out, char *err,
		  size_t errlen) CV_MUST;
/* Send all of iov as records (mig_send_iov's wait); 0 or -errno. */
int mig_tls_send_iov(struct mig_tls *t, const struct iovec *iov, int n, int (*wait)(void *ctx),
		     void *ctx) CV_MUST;
/* Decrypted bytes into iov without blocking: how many (> 0), 0 at the
 * end of the stream, -EAGAIN when the socket has no whole record, -EPROTO
 * for a TLS failure (mig_tls_error says why), or -errno. */
ssize_t mig_tls_readv(struct mig_tls *t, const struct iovec *iov, unsigned int n) CV_MUST;
/* Why the last mig_tls_readv failed with -EPROTO. */
const char *mig_tls_error(const struct mig_tls *t);
/* Send close_notify if the socket takes it at once, and free (NULL is
 * fine). The socket stays open. */
void mig_tls_free(struct mig_tls *t);

/* ---- ram.c ---- */

/* Send the pages set in todo (bit i = page i of the mapping), clearing
 * it; check(ctx) every 4096 pages ends early with its error. */
int mig_send_bitmap(struct mig_tx *tx, const struct guest_mem *gm, uint64_t *todo,
		    int (*check)(void *ctx), void *ctx) CV_MUST;
/* The HINT for round 0: the runs of pages set in todo, as gpa ranges. */
void mig_send_hint(struct mig_tx *tx, const struct guest_mem *gm, const uint64_t *todo);

/* ---- disk.c: storage migration, source side ---- */
struct mig_src_disk {
	struct virtio_dev *dev;
	unsigned int cluster_bits; /* qcow2; 0 for raw */
	uint64_t size, nblocks;
	uint64_t *dirty; /* blocks to send again */
	char name[MIG_MAX_DISK_NAME + 1];
};

struct mig_disks {
	unsigned int n;
	struct mig_src_disk d[MIG_MAX_DISKS];
};

/* The VM's virtio-blk devices, in --disk order. */
int mig_disks_find(struct vm *vm, struct mig_disks *ds, char *err, size_t errlen) CV_MUST;
/* Record writes from now on. */
int mig_disks_track(struct mig_disks *ds, char *err, size_t errlen) CV_MUST;
/* Send every image whole (holes skipped: the target's file starts sparse). */
int mig_disks_send_all(struct mig_disks *ds, struct mig_tx *tx, char *err, size_t errlen) CV_MUST;
/* Collect the blocks written since the last call; returns their bytes. */
uint64_t mig_disks_collect(struct mig_disks *ds);
/* Send the collected blocks. */
int mig_disks_send_dirty(struct mig_disks *ds, struct mig_tx *tx, char *err, size_t errlen) CV_MUST;
/* Stop recording writes and free what find and track allocated. */
void mig_disks_stop(struct mig_disks *ds);
/* Quiesce every virtio-blk device (vCPUs paused): -EIO if one could not
 * finish its I/O. mig_disks_resume lets them all take requests again. */
int mig_disks_quiesce(struct vm *vm) CV_MUST;
void mig_disks_resume(struct vm *vm);

/* ---- disk.c: storage migration, target side ---- */
struct mig_dst_disks {
	unsigned int n;
	int fd[MIG_MAX_DISKS];
	char *path[MIG_MAX_DISKS];
	bool created[MIG_MAX_DISKS];
	struct qcow2 *q[MIG_MAX_DISKS]; /* a qcow2 disk: written through it */
};

/* Create DIR/NAME for each disk of the HELLO (O_EXCL, sized). */
int mig_dst_disks_create(struct mig_dst_disks *dd, const struct mig_hello *h, const char *dir,
			 char *err, size_t errlen) CV_MUST;
/* The parser's sink. */
int mig_dst_disk_write(void *ctx, uint32_t disk, uint64_t off, const uint8_t *data, uint32_t len,
		       bool zero);
/* The format= of disk i's --disk spec on the target: "raw" or "qcow2". */
const char *mig_dst_disk_format(const struct mig_dst_disks *dd, unsigned int i);
/* Make the images durable, have vm's qcow2 disks read theirs again, and
 * close. 0, or -errno with one line in err. */
int mig_dst_disks_finish(struct mig_dst_disks *dd, struct vm *vm, char *err, size_t errlen) CV_MUST;
/* Remove what was created (failure), close. */
void mig_dst_disks_abort(struct mig_dst_disks *dd);
/* Free the paths. */
void mig_dst_disks_free(struct mig_dst_disks *dd);

#endif
