/* snapfile.c - the snapshot container.
 *
 * Format, all integers little-endian:
 *
 *   header (32 bytes)
 *     0   u8[8]  magic "CVISNAP\0"
 *     8   u16    major (1)   a reader refuses any other major
 *     10  u16    minor (0)   a reader takes minors up to its own
 *     12  u32    header size (32)
 *     16  u64    payload length (at most 64 MiB)
 *     24  u32    CRC-32 of the payload
 *     28  u32    CRC-32 of header bytes 0..27
 *   payload: sections, one after another
 *     0   u32    id (enum snap_section_id)
 *     4   u16    section version (each component versions its own)
 *     6   u16    flags (0)
 *     8   u64    length of the data that follows
 *     16  data   the component's explicit LE fields (state.h)
 *
 * Guest memory is not in this file: it is FILE.mem, a sparse image of RAM
 * (offset = position in the RAM mapping), so that untouched pages take no
 * space and a restore can map it copy-on-write. */
#include "cvisor/snapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cvisor/crc32.h"

#define SECTION_HEAD 16

size_t snap_section_begin(struct state_buf *b, uint32_t id, uint16_t version)
{
	size_t at = b->len;

	state_put_u32(b, id);
	state_put_u16(b, version);
	state_put_u16(b, 0);
	state_put_u64(b, 0); /* filled by snap_section_end */
	return at;
}

void snap_section_end(struct state_buf *b, size_t at)
{
	if (b->err || at + SECTION_HEAD > b->len)
		return;
	cv_put_le(b->data + at + 8, b->len - at - SECTION_HEAD, 8);
}

int snap_parse(const uint8_t *f, size_t flen, const uint8_t **payload, size_t *len, char *err,
	       size_t errlen)
{
	uint64_t plen;

	if (flen < SNAP_HEADER_SIZE || memcmp(f, SNAP_MAGIC, 8))
		return cv_errf(err, errlen, -EINVAL, "not a cvisor snapshot (bad magic)");
	if (cv_get_le(f + 28, 4) != cv_crc32(0, f, 28))
		return cv_errf(err, errlen, -EINVAL,
			       "snapshot header is corrupt (checksum mismatch)");
	if (cv_get_le(f + 8, 2) != SNAP_MAJOR || cv_get_le(f + 10, 2) > SNAP_MINOR)
		return cv_errf(
			err, errlen, -EINVAL,
			"snapshot format %u.%u is not supported (this cvisor reads %u.0-%u.%u)",
			(unsigned int)cv_get_le(f + 8, 2), (unsigned int)cv_get_le(f + 10, 2),
			SNAP_MAJOR, SNAP_MAJOR, SNAP_MINOR);
	plen = cv_get_le(f + 16, 8);
	if (cv_get_le(f + 12, 4) != SNAP_HEADER_SIZE || plen > SNAP_MAX_PAYLOAD)
		return cv_errf(err, errlen, -EINVAL, "snapshot header is corrupt (sizes)");
	if (plen > flen - SNAP_HEADER_SIZE)
		return cv_errf(err, errlen, -EINVAL, "snapshot is truncated (%zu of %llu bytes)",
			       flen - SNAP_HEADER_SIZE, (unsigned long long)plen);
	if (cv_get_le(f + 24, 4) != cv_crc32(0, f + SNAP_HEADER_SIZE, plen))
		return cv_errf(err, errlen, -EINVAL,
			       "snapshot is corrupt (payload checksum mismatch)");
	*payload = f + SNAP_HEADER_SIZE;
	*len = plen;
	return 0;
}

int snap_next_section(const uint8_t *p, size_t len, size_t *pos, struct snap_section *s)
{
	uint64_t dlen;

	if (*pos == len)
		return 0;
	if (len - *pos < SECTION_HEAD)
		return -EINVAL;
	dlen = cv_get_le(p + *pos + 8, 8);
	if (dlen > len - *pos - SECTION_HEAD)
		return -EINVAL;
	s->id = (uint32_t)cv_get_le(p + *pos, 4);
	s->version = (uint16_t)cv_get_le(p + *pos + 4, 2);
	s->data = p + *pos + SECTION_HEAD;
	s->len = dlen;
	*pos += SECTION_HEAD + dlen;
	return 1;
}

int snap_file_write(const char *path, const struct state_buf *payload)
{
	uint8_t h[SNAP_HEADER_SIZE] = { 0 };
	char tmp[4096];
	int fd, r = 0;

	if (payload->err)
		return payload->err;
	if (payload->len > SNAP_MAX_PAYLOAD)
		return -EFBIG;
	memcpy(h, SNAP_MAGIC, 8);
	cv_put_le(h + 8, SNAP_MAJOR, 2);
	cv_put_le(h + 10, SNAP_MINOR, 2);
	cv_put_le(h + 12, SNAP_HEADER_SIZE, 4);
	cv_put_le(h + 16, payload->len, 8);
	cv_put_le(h + 24, cv_crc32(0, payload->data, payload->len), 4);
	cv_put_le(h + 28, cv_crc32(0, h, 28), 4);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, h, sizeof(h)) != (ssize_t)sizeof(h) ||
	    write(fd, payload->data, payload->len) != (ssize_t)payload->len || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

int snap_file_read(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	const uint8_t *payload;
	uint8_t *buf;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return cv_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > SNAP_MAX_PAYLOAD + SNAP_HEADER_SIZE) {
		close(fd);
		return cv_errf(err, errlen, -EINVAL, "%s: not a snapshot file", path);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return cv_errf(err, errlen, -ENOMEM, "%s: out of memory", path);
	}
	got = pread(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (got != st.st_size) {
		free(buf);
		return cv_errf(err, errlen, -EIO, "%s: short read", path);
	}
	r = snap_parse(buf, (size_t)got, &payload, len, err, errlen);
	if (r) {
		free(buf);
		return r;
	}
	memmove(buf, payload, *len);
	*out = buf;
	return 0;
}
