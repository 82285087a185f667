/* crc32.h - CRC-32 (IEEE 802.3, the zlib polynomial and value), the one
 * implementation (src/crc32.c) behind the snapshot file's checksums and the
 * live migration stream's. */
#ifndef CVISOR_CRC32_H
#define CVISOR_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32 of n bytes at p, incremental: start with crc = 0 and feed the
 * previous result to continue (cv_crc32(0, "123456789", 9) = 0xcbf43926).
 * Uses PCLMULQDQ when the CPU has it. Any thread. */
uint32_t cv_crc32(uint32_t crc, const void *p, size_t n);

/* Copy n bytes from src to dst and return cv_crc32(crc, src, n), in one
 * pass over the source. The ranges must not overlap. */
uint32_t cv_crc32_copy(uint32_t crc, void *dst, const void *src, size_t n);

/* The CRC of A then B from crc_a = cv_crc32(0, A), crc_b = cv_crc32(0, B)
 * and B's length, in O(log len_b). */
uint32_t cv_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

#endif
