/* qcow2_create.c - a new, empty qcow2 v3 image (qcow2.txt "Header"): no
 * backing file, 16-bit refcounts, every guest cluster unallocated. The
 * layout is qemu-img's: the header cluster, the refcount table, the
 * refcount blocks counting the metadata, then the L1 table. The target
 * of a storage migration flattens a qcow2 chain into one (src/migrate/
 * disk.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2_priv.h"

#define REFCOUNT_ORDER 4 /* 16-bit refcounts, qemu-img's default */
#define HDR_LEN 104	 /* a v3 header without compression_type */

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

int qcow2_create(int fd, uint64_t size, unsigned int cluster_bits)
{
	uint64_t csize, l2_span, l1_size, l1_cl, rb_entries, nrb = 1, rt_cl = 1, total;
	uint8_t *buf;
	int r;

	if (cluster_bits < 9 || cluster_bits > 21 || !size || size % 512 ||
	    size > (uint64_t)1 << 56)
		return -EINVAL;
	csize = 1ULL << cluster_bits;
	l2_span = csize << (cluster_bits - 3);
	l1_size = div_up(size, l2_span);
	if (l1_size * 8 > QC_MAX_L1_BYTES)
		return -EFBIG;
	l1_cl = div_up(l1_size * 8, csize);
	rb_entries = csize * 8 >> REFCOUNT_ORDER;
	/* The refcount blocks count the metadata, themselves included. */
	for (;;) {
		total = 1 + rt_cl + nrb + l1_cl;
		if (div_up(total, rb_entries) == nrb && div_up(nrb * 8, csize) == rt_cl)
			break;
		nrb = div_up(total, rb_entries);
		rt_cl = div_up(nrb * 8, csize);
	}
	if (rt_cl * csize > QC_MAX_RT_BYTES)
		return -EFBIG;
	/* The file's whole size first: the L1 table stays a hole of zeros. */
	if (ftruncate(fd, (off_t)(total * csize)))
		return -errno;
	if (!(buf = calloc(1 + rt_cl + nrb, csize)))
		return -ENOMEM;
	qc_put_be(buf, QCOW2_MAGIC, 4);
	qc_put_be(buf + 4, 3, 4);
	qc_put_be(buf + 20, cluster_bits, 4);
	qc_put_be(buf + 24, size, 8);
	qc_put_be(buf + 36, l1_size, 4);
	qc_put_be(buf + 40, (1 + rt_cl + nrb) * csize, 8);
	qc_put_be(buf + 48, csize, 8);
	qc_put_be(buf + 56, rt_cl, 4);
	qc_put_be(buf + 96, REFCOUNT_ORDER, 4);
	qc_put_be(buf + 100, HDR_LEN, 4);
	/* Bytes 104-111 stay zero: the end of the header extensions. */
	for (uint64_t i = 0; i < nrb; i++)
		qc_put_be(buf + csize + i * 8, (1 + rt_cl + i) * csize, 8);
	for (uint64_t c = 0; c < total; c++)
		qc_put_be(buf + (1 + rt_cl) * csize + c * 2, 1, 2);
	r = cv_pwrite_all(fd, buf, (1 + rt_cl + nrb) * csize, 0);
	free(buf);
	return r;
}
