/* migrate_proto.h - the live migration wire format (specified at the top
 * of src/migrate/proto.c): message encoding and the handshake's checks
 * (proto.c), and the receive parser (rx.c), which is pure (no I/O: the
 * caller moves bytes, the parser says where they go and what they meant)
 * so that it can be fuzzed and unit tested. Everything read is bounded
 * before it is allocated or written anywhere. */
#ifndef CVISOR_MIGRATE_PROTO_H
#define CVISOR_MIGRATE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cvisor/cpu_compat.h"
#include "cvisor/guest_mem.h"
#include "cvisor/state.h"
#include "cvisor/util.h"

#define MIG_MAGIC "CVIMIGR" /* 8 bytes with the NUL */
#define MIG_MAJOR 2	    /* 2.0: the target's nonce, echoed in HELLO */
#define MIG_MINOR 1	    /* 2.1: each disk's format (a qcow2 disk travels) */
#define MIG_PAGE_SIZE 4096U

/* Message types. Source to target: */
#define MIG_MSG_HELLO 1
#define MIG_MSG_PAGES 2
#define MIG_MSG_DISK 3
#define MIG_MSG_STATE 4
#define MIG_MSG_END 5
#define MIG_MSG_SYNC 6 /* end of a round: answer when you got here */
#define MIG_MSG_HINT 7 /* the RAM ranges round 0 will send */
/* Target to source: */
#define MIG_MSG_READY 16
#define MIG_MSG_RUNNING 17
#define MIG_MSG_ERROR 18
#define MIG_MSG_SYNC_ACK 19
#define MIG_MSG_NONCE 20 /* the target's first message: HELLO must echo it */

#define MIG_HDR_SIZE 8	   /* u32 type, u32 body length */
#define MIG_TRAILER_SIZE 4 /* u32 CRC-32 of header and body */

/* Record flags. */
#define MIG_REC_ZERO 1U /* no data follows: the page / range reads as zeros */

/* Bounds, checked before anything is allocated or written. */
#define MIG_BATCH_PAGES 256U  /* records in one PAGES message */
#define MIG_PAGE_REC_SIZE 16U /* u64 gpa, u32 flags, u32 reserved */
#define MIG_MAX_PAGES_BODY (4U + MIG_BATCH_PAGES * (MIG_PAGE_REC_SIZE + MIG_PAGE_SIZE))
#define MIG_BATCH_DISK 64U	  /* records in one DISK message */
#define MIG_DISK_REC_SIZE 24U	  /* u32 disk, u32 flags, u64 offset, u32 len, u32 reserved */
#define MIG_DISK_CHUNK (1U << 20) /* data bytes in one DISK record */
#define MIG_DISK_BATCH_DATA (4U << 20)
#define MIG_MAX_DISK_BODY (4U + MIG_BATCH_DISK * MIG_DISK_REC_SIZE + MIG_DISK_BATCH_DATA)
#define MIG_MAX_HELLO (128U << 10)
#define MIG_MAX_CONFIG (64U << 10)
#define MIG_MAX_STATE (64U << 20)  /* SNAP_MAX_PAYLOAD */
#define MIG_END_SIZE 20U	   /* u32 flags, u64 memsum, u64 pages */
#define MIG_SYNC_SIZE 4U	   /* u32 round */
#define MIG_MAX_HINT_RANGES 65536U /* u64 gpa, u64 bytes each */
#define MIG_MAX_ERROR 256U
#define MIG_NONCE_SIZE 16U
#define MIG_MAX_DISKS 8U
#define MIG_MAX_DISK_NAME 255U
#define MIG_MAX_REGIONS 2U
#define MIG_MAX_CPUS 64U
#define MIG_MAX_RAM (1ULL << 40)

/* HELLO flags. */
#define MIG_F_STORAGE 1U /* DISK messages follow: disk images travel */
#define MIG_F_PAUSED 2U	 /* the guest was paused on the source: keep it paused */
#define MIG_F_VERIFY 4U	 /* END carries a whole-RAM checksum to verify */
#define MIG_F_KNOWN (MIG_F_STORAGE | MIG_F_PAUSED | MIG_F_VERIFY)

/* Disk formats (HELLO 2.1). */
#define MIG_DISK_RAW 0
#define MIG_DISK_QCOW2 1

struct mig_disk {
	uint64_t size; /* bytes, a multiple of 512 */
	/* The source image's format; the target makes one of the same (a
	 * qcow2 chain arrives flattened: its guest-visible bytes). */
	uint8_t format;
	uint8_t cluster_bits; /* qcow2: 9-21; raw: 0 */
	char name[MIG_MAX_DISK_NAME + 1];
};

struct mig_hello {
	uint16_t major, minor;
	uint8_t nonce[MIG_NONCE_SIZE]; /* the target's, from its NONCE message */
	uint32_t page_size;
	uint64_t ram_size;
	uint32_t nregions;
	struct {
		uint64_t gpa, size;
	} regions[MIG_MAX_REGIONS];
	uint32_t ncpus;
	/* What the guest sees of the CPU: vendor, signature, leaves 1, 7 and
	 * 0x80000001 (not 0xd: not on the wire). Older targets compare it with
	 * their host; this one checks the MACHINE table in config instead,
	 * which holds these leaves and more (mig_cpu_check). */
	struct cpu_model cpu;
	uint32_t flags;
	uint32_t ndisks;
	struct mig_disk disks[MIG_MAX_DISKS];
	const uint8_t *config; /* snapshot sections holding CONFIG */
	uint32_t config_len;
};

struct mig_end {
	uint32_t flags;
	uint64_t memsum; /* with MIG_F_VERIFY */
	uint64_t pages;	 /* pages sent in all (informational) */
};

/* Encoding (proto.c). The 8-byte message header: u32 type, u32 length. */
void mig_put_header(uint8_t out[MIG_HDR_SIZE], uint32_t type, uint32_t len);
/* A whole small message (header, body, CRC) appended to b. */
void mig_msg_append(struct state_buf *b, uint32_t type, const void *body, uint32_t len);
/* The HELLO body. */
void mig_hello_encode(const struct mig_hello *h, struct state_buf *b);

/* Parse a HELLO body; config points into body. 0 or -EINVAL with one line. */
int mig_hello_parse(const uint8_t *body, size_t len, struct mig_hello *h, char *err,
		    size_t errlen) CV_MUST;

/* What the target can take. */
struct mig_local {
	uint32_t page_size;
	uint32_t max_cpus;
};

/* The layout guest_mem gives ram_size (what the target will build). */
void mig_ram_layout(uint64_t ram_size, struct mig_hello *h);

/* Can this target hold the machine the HELLO describes (page size, RAM
 * layout, vCPUs)? Pure. 0, or -EINVAL with one line naming the
 * incompatibility. The CPU is mig_cpu_check's. */
int mig_hello_check(const struct mig_hello *h, const struct mig_local *l, char *err,
		    size_t errlen) CV_MUST;

/* Can a host offering the CPU host (cpu_model_host) run the guest given
 * the CPU guest? cpu_compat_check, worded for the source. Pure. 0, or
 * -EINVAL with one line. */
int mig_cpu_check(const struct cpu_model *guest, const struct cpu_model *host, char *err,
		  size_t errlen) CV_MUST;

/* The receive parser. */
enum mig_rx_event {
	MIG_RX_MORE = 0,  /* feed more bytes */
	MIG_RX_HELLO,	  /* rx->hello is valid; call mig_rx_set_mem before more */
	MIG_RX_PAGES,	  /* a batch of pages is in guest RAM */
	MIG_RX_DISK,	  /* a batch of disk data went to the disk_write sink */
	MIG_RX_STATE,	  /* rx->body[0..body_len) is the state payload */
	MIG_RX_END,	  /* rx->end is valid */
	MIG_RX_READY,	  /* (source side) the target built the VM */
	MIG_RX_RUNNING,	  /* (source side) the guest runs on the target */
	MIG_RX_ERROR_MSG, /* (source side) rx->err holds the target's message */
	MIG_RX_SYNC,	  /* (target side) answer SYNC_ACK with rx->sync_round */
	MIG_RX_SYNC_ACK,  /* (source side) the target got through rx->sync_round */
	MIG_RX_HINT,	  /* rx->hint[0..nhint) RAM ranges (checked) the source will send */
	MIG_RX_NONCE,	  /* (source side) rx->nonce: echo it in HELLO */
};

/* Disk data sink: write len bytes at off of disk (zero: a hole). Data is
 * NULL for zero ranges. 0 or -errno (ends the migration). */
typedef int (*mig_disk_write_fn)(void *ctx, uint32_t disk, uint64_t off, const uint8_t *data,
				 uint32_t len, bool zero);

struct mig_rx {
	bool source_side; /* parse the target's replies instead */
	bool no_crc;	  /* TLS: the AEAD tag checked every byte (proto.c, TLS) */
	int state;
	uint32_t type, len;				    /* current message */
	uint32_t crc;					    /* running CRC of the current message */
	uint32_t pos;					    /* body bytes consumed */
	uint8_t small[MIG_BATCH_PAGES * MIG_PAGE_REC_SIZE]; /* headers, records, CRC */
	uint32_t small_have, small_need;
	/* Buffered bodies (HELLO, STATE, END, replies), bounded per type. */
	uint8_t *body;
	uint32_t body_len, body_have;
	/* Batches. */
	uint32_t count, rec;
	uint64_t gpa[MIG_BATCH_PAGES];
	uint8_t zero[MIG_BATCH_PAGES];
	struct {
		uint32_t disk, flags, len;
		uint64_t off;
	} drec[MIG_BATCH_DISK];
	uint8_t *chunk; /* disk record data, MIG_DISK_CHUNK bytes */
	uint32_t chunk_have;
	/* Sequence. */
	bool got_hello, got_state;
	struct mig_hello hello;
	struct mig_end end;
	uint32_t sync_round;
	uint8_t nonce[MIG_NONCE_SIZE]; /* (source side) the target's NONCE */
	struct mig_range {
		uint64_t gpa, len;
	} * hint; /* points into body until the next message */
	uint32_t nhint;
	const struct guest_mem *mem; /* where pages go */
	mig_disk_write_fn disk_write;
	void *disk_ctx;
	uint64_t pages, zero_pages, disk_bytes, bytes;
	char err[256];
};

/* A parser at the start of a stream: the target's view of the source
 * (source_side false) or the source's view of the replies (true). Free
 * its buffers with mig_rx_free. */
void mig_rx_init(struct mig_rx *rx, bool source_side);
void mig_rx_free(struct mig_rx *rx);

/* Guest RAM for the pages (after MIG_RX_HELLO; its size must be the
 * HELLO's RAM size). */
void mig_rx_set_mem(struct mig_rx *rx, const struct guest_mem *mem);

/* Where the next bytes go: up to max iovecs, in order; returns how many
 * (at least 1 while the parser is not failed). Page data lands straight in
 * guest RAM, so one readv can fill a batch. */
unsigned int mig_rx_want(struct mig_rx *rx, struct iovec *iov, unsigned int max);

/* n bytes were stored where mig_rx_want said (n may stop anywhere inside
 * those iovecs; they never reach past the current message). Returns an
 * event (> 0) once a message is complete, MIG_RX_MORE, or -EINVAL
 * (corrupt, out of order, out of bounds) with one line in rx->err. After
 * an error the parser stays failed. */
int mig_rx_advance(struct mig_rx *rx, size_t n) CV_MUST;

/* Convenience for tests and fuzzing: feed a buffer, copying into what
 * mig_rx_want asks for, until it is used up or an event or error occurs. */
int mig_rx_feed(struct mig_rx *rx, const uint8_t *buf, size_t len, size_t *used) CV_MUST;

#endif
