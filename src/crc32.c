/* crc32.c - CRC-32 (IEEE 802.3, reflected: the value zlib gives), the one
 * implementation behind the snapshot file's checksums and the migration
 * stream's. Migration needs it fast: every byte of RAM that travels is
 * checksummed on both ends, so a byte-at-a-time table (~0.4 GB/s) would
 * cap the link. With PCLMULQDQ the folding method of Intel's "Fast CRC
 * Computation for Generic Polynomials Using PCLMULQDQ Instruction" (2009;
 * the constants are the paper's bit-reflected k1..k5, mu and P(x), as in
 * zlib's and Chromium's crc32_simd) runs at memory speed; otherwise a
 * slicing-by-8 table. cv_crc32_combine lets a sender checksum page data as
 * it copies it and the message around it afterwards. */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "cvisor/crc32.h"

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static bool have_clmul;

static void x2n_init(void);

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t v = i;

		for (int k = 0; k < 8; k++)
			v = (v & 1) ? 0xedb88320U ^ (v >> 1) : v >> 1;
		table[0][i] = v;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
	x2n_init();
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
}

/* c is the running register (already inverted). */
static uint32_t crc_slice8(uint32_t c, const uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= c;
		c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
		    table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
		    table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
#include <immintrin.h>

#define CLMUL __attribute__((target("pclmul,sse4.1")))

/* Four 128-bit lanes from p, stored to dst too when there is one. */
CLMUL static inline void load4(const uint8_t *p, uint8_t *dst, __m128i x[4])
{
	x[0] = _mm_loadu_si128((const __m128i *)(const void *)(p + 0x00));
	x[1] = _mm_loadu_si128((const __m128i *)(const void *)(p + 0x10));
	x[2] = _mm_loadu_si128((const __m128i *)(const void *)(p + 0x20));
	x[3] = _mm_loadu_si128((const __m128i *)(const void *)(p + 0x30));
	if (!dst)
		return;
	_mm_storeu_si128((__m128i *)(void *)(dst + 0x00), x[0]);
	_mm_storeu_si128((__m128i *)(void *)(dst + 0x10), x[1]);
	_mm_storeu_si128((__m128i *)(void *)(dst + 0x20), x[2]);
	_mm_storeu_si128((__m128i *)(void *)(dst + 0x30), x[3]);
}

/* Carry the lane x forward over the distance k encodes, onto next. */
CLMUL static inline __m128i fold(__m128i x, __m128i k, __m128i next)
{
	return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x11), next),
			     _mm_clmulepi64_si128(x, k, 0x00));
}

/* 128 bits to the 32-bit CRC register: fold to 64 bits, then Barrett. */
CLMUL static inline uint32_t reduce(__m128i x1, __m128i k3k4)
{
	const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124);
	const __m128i poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
	const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
	__m128i x2;

	x2 = _mm_clmulepi64_si128(x1, k3k4, 0x10);
	x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
	x2 = _mm_srli_si128(x1, 4);
	x1 = _mm_and_si128(x1, mask32);
	x1 = _mm_xor_si128(_mm_clmulepi64_si128(x1, k5k0, 0x00), x2);
	x2 = _mm_and_si128(x1, mask32);
	x2 = _mm_clmulepi64_si128(x2, poly, 0x10);
	x2 = _mm_and_si128(x2, mask32);
	x2 = _mm_clmulepi64_si128(x2, poly, 0x00);
	x1 = _mm_xor_si128(x1, x2);
	return (uint32_t)_mm_extract_epi32(x1, 1);
}

/* n >= 64 and a multiple of 16; c is the running register. With dst, the
 * bytes are copied there too (one pass over the source instead of two). */
CLMUL static uint32_t crc_clmul(uint32_t c, const uint8_t *p, size_t n, uint8_t *dst)
{
	const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
	const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
	__m128i x[4], y[4];

	load4(p, dst, x);
	x[0] = _mm_xor_si128(x[0], _mm_cvtsi32_si128((int)c));
	p += 64;
	dst = dst ? dst + 64 : NULL;
	n -= 64;
	/* Fold four 128-bit lanes 512 bits ahead at a time. */
	while (n >= 64) {
		load4(p, dst, y);
		x[0] = fold(x[0], k1k2, y[0]);
		x[1] = fold(x[1], k1k2, y[1]);
		x[2] = fold(x[2], k1k2, y[2]);
		x[3] = fold(x[3], k1k2, y[3]);
		p += 64;
		dst = dst ? dst + 64 : NULL;
		n -= 64;
	}
	/* Fold the four lanes into one, then what is left 128 bits at a time. */
	for (int i = 1; i < 4; i++)
		x[0] = fold(x[0], k3k4, x[i]);
	while (n >= 16) {
		y[0] = _mm_loadu_si128((const __m128i *)(const void *)p);
		if (dst) {
			_mm_storeu_si128((__m128i *)(void *)dst, y[0]);
			dst += 16;
		}
		x[0] = fold(x[0], k3k4, y[0]);
		p += 16;
		n -= 16;
	}
	return reduce(x[0], k3k4);
}
#endif

uint32_t cv_crc32(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	pthread_once(&table_once, table_init);
#if defined(__x86_64__)
	if (have_clmul && n >= 64) {
		size_t k = n & ~(size_t)15;

		c = crc_clmul(c, p, k, NULL);
		p += k;
		n -= k;
	}
#endif
	return ~crc_slice8(c, p, n);
}

uint32_t cv_crc32_copy(uint32_t crc, void *dst, const void *src, size_t n)
{
	pthread_once(&table_once, table_init);
#if defined(__x86_64__)
	if (have_clmul && n >= 64 && !(n & 15))
		return ~crc_clmul(~crc, src, n, dst);
#endif
	memcpy(dst, src, n);
	return cv_crc32(crc, dst, n);
}

/* crc(A then B) = crc(A) * x^(8 |B|) mod P, xor crc(B): zlib 1.2.12's
 * crc32_combine (multmodp, x2nmodp), O(log |B|) products of 32-bit
 * polynomials: 0.6 us for a 1 MiB page batch, where the matrix squaring of
 * older zlib took 83 us (a sixth of the sender's CPU). Reflected bit
 * order: bit 31 is x^0. */
static uint32_t x2n_table[32]; /* x^(2^n) mod P */

static uint32_t multmodp(uint32_t a, uint32_t b)
{
	uint32_t p = 0;

	for (uint32_t m = 1U << 31; m; m >>= 1) {
		if (a & m) {
			p ^= b;
			if (!(a & (m - 1)))
				break;
		}
		b = b & 1 ? (b >> 1) ^ 0xedb88320U : b >> 1;
	}
	return p;
}

static void x2n_init(void)
{
	uint32_t p = 1U << 30; /* x^1 */

	x2n_table[0] = p;
	for (int n = 1; n < 32; n++)
		x2n_table[n] = p = multmodp(p, p);
}

/* x^(n * 2^k) mod P; the order of x divides 2^32 - 1, so k wraps at 32. */
static uint32_t x2nmodp(uint64_t n, unsigned int k)
{
	uint32_t p = 1U << 31; /* x^0 */

	for (; n; n >>= 1, k++)
		if (n & 1)
			p = multmodp(x2n_table[k & 31], p);
	return p;
}

uint32_t cv_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
	pthread_once(&table_once, table_init);
	return multmodp(x2nmodp(len2, 3), crc1) ^ crc2;
}
