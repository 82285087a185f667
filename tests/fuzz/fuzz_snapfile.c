/* fuzz_snapfile.c - libFuzzer target for snapshot parsing: header checks
 * and the section walk over any bytes. The CRCs stop most random inputs
 * at the door, so half the runs recompute them first to reach the walk. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cvisor/crc32.h"
#include "cvisor/snapshot_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *payload;
	struct snap_section s;
	size_t len, pos = 0;
	char err[256];
	uint8_t *f;
	int r;

	if (size < 1)
		return 0;
	f = malloc(size);
	memcpy(f, data, size);
	if ((data[0] & 1) && size >= SNAP_HEADER_SIZE) {
		uint64_t plen = size - SNAP_HEADER_SIZE;
		uint32_t c;

		memcpy(f, SNAP_MAGIC, 8);
		memcpy(f + 16, &plen, 8);
		c = cv_crc32(0, f + SNAP_HEADER_SIZE, plen);
		memcpy(f + 24, &c, 4);
		c = cv_crc32(0, f, 28);
		memcpy(f + 28, &c, 4);
	}
	if (snap_parse(f, size, &payload, &len, err, sizeof(err)) == 0) {
		while ((r = snap_next_section(payload, len, &pos, &s)) == 1)
			if (s.data < payload || s.data + s.len > payload + len)
				abort();
	}
	free(f);
	return 0;
}
