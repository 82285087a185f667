/* qcow2_priv.h - private to the qcow2 layer: the open image shared by
 * qcow2.c (header, backing chain), qcow2_map.c (L1/L2 lookup, the L2
 * cache, reads, compressed clusters) and qcow2_write.c (refcounts,
 * allocation, writes, zeroing). */
#ifndef CVISOR_QCOW2_PRIV_H
#define CVISOR_QCOW2_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cvisor/qcow2.h"

/* L1 / L2 entry bits (qcow2.txt "Cluster mapping"). */
#define QC_COPIED (1ULL << 63)
#define QC_COMPRESSED (1ULL << 62)
#define QC_ZERO 1ULL
#define QC_OFF_MASK 0x00fffffffffffe00ULL    /* bits 9-55 */
#define QC_L2_RESERVED 0x3f000000000001feULL /* bits 1-8, 56-61 */
#define QC_RT_OFF_MASK 0xfffffffffffffe00ULL

#define QC_MAX_L1_BYTES (32u << 20)
#define QC_MAX_RT_BYTES (8u << 20)
#define QC_L2_CACHE_BYTES (4u << 20)
#define QC_L2_CACHE_MIN 4
#define QC_L2_CACHE_MAX 64
#define QC_POOL 16     /* clusters whose refcount is raised ahead, in one batch */
#define QC_MAX_IOV 320 /* a request has at most VIRTQ_MAX_IOV segments */

/* What a guest cluster maps to. */
enum qc_kind { QC_UNALLOC, QC_ZEROES, QC_DATA, QC_COMP };

struct qc_l2 {
	uint64_t off;  /* host offset of the table; 0: slot empty */
	uint64_t *tab; /* host-endian entries */
	uint64_t used; /* LRU clock */
};

struct qcow2 {
	int fd;
	bool readonly;
	char path[256]; /* for messages, possibly cut */
	unsigned int version, cluster_bits, l2_bits, refcount_order;
	uint64_t csize, size, file_size;
	uint64_t l1_off, rt_off;
	uint32_t l1_size;
	uint64_t rt_size; /* entries */
	uint64_t *l1, *rt;
	uint64_t rb_entries;	  /* refcounts per refcount block */
	unsigned int compression; /* 0 zlib, 1 zstd */
	unsigned int depth;	  /* 0: the top image */
	struct qc_l2 *l2c;
	unsigned int nl2c;
	uint64_t clock;
	uint64_t rb_off; /* the refcount block in rb (0: none) */
	uint8_t *rb;
	uint8_t *cbuf, *dbuf; /* compressed input; one decompressed cluster */
	uint64_t dbuf_desc;   /* the descriptor dbuf holds (0: none) */
	void *zstd;	      /* ZSTD_DCtx */
	uint8_t *tmp;	      /* one cluster: copy-on-write */
	/* The backing file: a qcow2 image (bq) or raw (bfd alone). */
	struct qcow2 *bq;
	int bfd;
	uint64_t bsize;
	/* Allocation: the next host cluster to try, and clusters whose
	 * refcount is already 1 but nothing points at yet. */
	uint64_t alloc_next;
	uint64_t free_hint; /* lowest cluster freed since open (alloc_next: none) */
	uint64_t pool[QC_POOL];
	unsigned int npool;
	unsigned long kill_after;
};

/* qcow2_map.c */
int qc_l2_get(struct qcow2 *q, uint64_t l2_off, uint64_t **tab) CV_MUST;
void qc_l2_forget(struct qcow2 *q, uint64_t l2_off);
int qc_lookup(struct qcow2 *q, uint64_t off, enum qc_kind *kind, uint64_t *entry) CV_MUST;
bool qc_meta_overlap(const struct qcow2 *q, uint64_t off, uint64_t len);
int qc_read_cluster_part(struct qcow2 *q, uint64_t off, uint64_t len, const struct iovec *iov,
			 unsigned int n, uint64_t iov_off) CV_MUST;
int qc_pread(struct qcow2 *q, void *buf, uint64_t len, uint64_t off) CV_MUST;
unsigned int qc_iov_slice(const struct iovec *src, unsigned int n, uint64_t off, uint64_t len,
			  struct iovec *dst);
void qc_iov_to_buf(const struct iovec *iov, unsigned int n, uint64_t off, void *buf, uint64_t len);

/* qcow2_write.c */
int qc_pwrite(struct qcow2 *q, const void *buf, uint64_t len, uint64_t off) CV_MUST;
int qc_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *rc) CV_MUST;
void qc_pool_release(struct qcow2 *q);

static inline uint64_t qc_be(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static inline void qc_put_be(uint8_t *p, uint64_t v, unsigned int n)
{
	for (unsigned int i = n; i--; v >>= 8)
		p[i] = (uint8_t)v;
}

#endif
