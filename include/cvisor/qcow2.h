/* qcow2.h - qcow2 disk images (QEMU's docs/interop/qcow2.txt), versions 2
 * and 3, behind virtio-blk: the guest's view of an image as reads, writes,
 * zeroing, discard and flush at guest byte offsets.
 *
 * Every request runs synchronously with pread/pwrite on the image; the
 * caller serializes them (virtio-blk holds dev->lock). Metadata is written
 * through at once, in the order that keeps the image consistent after a
 * kill -9 at any point: a new data cluster is written, its refcount
 * raised, then the L2 (and L1) entry pointing at it; an entry is cleared
 * before the refcount of what it pointed at drops. qcow2_flush makes all
 * of it durable. Freed clusters are punched out of the file and reused
 * first; new ones come from the end of the file.
 *
 * Refused at open, with one line: encryption, external data files,
 * extended L2 entries, unknown incompatible features, internal snapshots
 * or the dirty/corrupt bits on a writable open, cluster_bits outside
 * 9..21, a refcount_order above 6, an L1 table over 32 MiB, a refcount
 * table over 8 MiB, a backing chain deeper than QCOW2_MAX_DEPTH or with a
 * loop. Damage found later fails that request with -EIO. */
#ifndef CVISOR_QCOW2_H
#define CVISOR_QCOW2_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cvisor/error.h"
#include "cvisor/util.h"

#define QCOW2_MAGIC 0x514649fbU /* "QFI\xfb" */
#define QCOW2_MAX_DEPTH 16	/* images in a chain, the top one included */

/* qcow2_open flags. */
#define QCOW2_READONLY 1u
/* Refuse an image that names a backing file: for a format found by
 * probing (virtio-blk without format=qcow2), and fuzzing. */
#define QCOW2_NO_BACKING 2u

struct qcow2;

/* True if the file starts with the qcow2 magic. */
bool qcow2_probe(int fd);

/* An upper bound on the size the qcow2 file on fd reaches while a guest
 * writes it through this layer (its size now plus every guest cluster
 * allocated anew, with its L2 and refcount share); 0 if fd is not qcow2.
 * For RLIMIT_FSIZE under --jail. */
uint64_t qcow2_max_file_size(int fd);

/* Open the image on fd (which stays the caller's; keep it open until
 * qcow2_close), path naming it in messages and anchoring relative backing
 * file names. Validates the header and loads the L1 and refcount tables;
 * backing files are opened read-only. Returns 0 with *out set, or -errno
 * with e filled (one line: which image, what is wrong, what to do). */
int qcow2_open(struct qcow2 **out, int fd, const char *path, unsigned int flags,
	       struct cv_error *e) CV_MUST;

/* Give back preallocated clusters, then free everything (fd stays open). */
void qcow2_close(struct qcow2 *q);

/* The virtual disk size in bytes. */
uint64_t qcow2_size(const struct qcow2 *q);

/* Guest bytes [off, off+len) to or from iov[0..n) (which hold at least len
 * bytes). off+len must lie within qcow2_size. 0 or -errno (-EIO for
 * damaged metadata, -ENOSPC when the refcount table would have to grow). */
int qcow2_readv(struct qcow2 *q, const struct iovec *iov, unsigned int n, uint64_t off,
		uint64_t len) CV_MUST;
int qcow2_writev(struct qcow2 *q, const struct iovec *iov, unsigned int n, uint64_t off,
		 uint64_t len) CV_MUST;

/* Make [off, off+len) read as zeros. Whole clusters become zero clusters
 * (v3) or unallocated (no backing file), releasing their host clusters;
 * the rest is written with zeros. */
int qcow2_zero(struct qcow2 *q, uint64_t off, uint64_t len) CV_MUST;

/* Discard: the same as qcow2_zero (reads of a discarded range return
 * zeros here, so that a backing file never shows through). */
int qcow2_discard(struct qcow2 *q, uint64_t off, uint64_t len) CV_MUST;

/* fdatasync the image: everything written before is durable. */
int qcow2_flush(struct qcow2 *q) CV_MUST;

/* Where [off, off+len) lives when it is plain data in this image's file,
 * in one contiguous host range that the file holds whole: 1 with *host
 * set (the caller may read there directly), 0 if the range needs
 * qcow2_readv, -EIO for damaged metadata. */
int qcow2_map(struct qcow2 *q, uint64_t off, uint64_t len, uint64_t *host) CV_MUST;

/* Write a new, empty qcow2 v3 image of size guest bytes (a multiple of
 * 512) on the empty file fd: clusters of 2^cluster_bits bytes (9..21),
 * no backing file, 16-bit refcounts (what qemu-img create -f qcow2 -o
 * cluster_size=... makes). Not made durable (qcow2_flush after writing).
 * 0, -EINVAL (a bad size or cluster_bits), -EFBIG (the size needs an L1
 * table over 32 MiB: take larger clusters) or -errno. */
int qcow2_create(int fd, uint64_t size, unsigned int cluster_bits) CV_MUST;

/* log2 of the image's cluster size. */
unsigned int qcow2_cluster_bits(const struct qcow2 *q);

/* Where the next guest bytes that may hold data lie in [off, lim) (lim
 * cut at the virtual size): the clusters allocated in this image or
 * anywhere in its backing chain (data or compressed; zero clusters and
 * holes of a raw backing file excepted, as far as SEEK_DATA tells). 0 with
 * *start in [off, lim) and [*start, *end) whole clusters of this image
 * (the extent may run past lim, by 64 MiB at most); -ENXIO if [off, lim)
 * holds only zeros; -EIO for damaged metadata. The caller bounds the work
 * (one table lookup per cluster of an allocated L2 table) with lim. */
int qcow2_next_data(struct qcow2 *q, uint64_t off, uint64_t lim, uint64_t *start,
		    uint64_t *end) CV_MUST;

/* Tests: after n more writes to the image file (data or metadata), the
 * process kills itself with SIGKILL, to leave the file as a crash does.
 * 0 disables. */
void qcow2_test_kill_after(struct qcow2 *q, unsigned long n);

#endif
